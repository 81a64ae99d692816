"""Reader of registered visible/infrared pairs (LLVIP layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rgbir_reid.data.paired import load_pairs, read_pairs
from rgbir_reid.data.records import DatasetFormatError


def test_reads_real_llvip_pairs(shared_data):
    train = read_pairs(shared_data / "llvip_pairs" / "train")
    test = read_pairs(shared_data / "llvip_pairs" / "test")
    assert (len(train), len(test)) == (32, 12)  # as the data README states
    for p in train:
        assert Path(p.visible).name == Path(p.infrared).name
        assert Path(p.visible).parent.name == "visible" and Path(p.infrared).parent.name == "infrared"
    assert [p.name for p in train] == sorted(p.name for p in train)
    vis, ir = load_pairs(test[:2], (32, 40))
    assert vis.shape == ir.shape == (2, 32, 40, 3) and vis.dtype == np.uint8
    # Infrared images are grey: the three channels agree (up to JPEG chroma noise).
    assert np.abs(ir[..., 0].astype(int) - ir[..., 1].astype(int)).mean() < 2


def _write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)


def test_unmatched_files_are_named(tmp_path):
    _write(tmp_path / "visible" / "a.png")
    _write(tmp_path / "infrared" / "a.png")
    _write(tmp_path / "visible" / "only_vis.png")
    _write(tmp_path / "infrared" / "only_ir.png")
    with pytest.raises(DatasetFormatError, match="only_vis.png") as e:
        read_pairs(tmp_path)
    assert "only_ir.png" in str(e.value)


def test_missing_folder_is_named(tmp_path):
    _write(tmp_path / "visible" / "a.png")
    with pytest.raises(DatasetFormatError, match="infrared"):
        read_pairs(tmp_path)


def test_empty_folders_are_an_error(tmp_path):
    (tmp_path / "visible").mkdir()
    (tmp_path / "infrared").mkdir()
    with pytest.raises(DatasetFormatError, match="no images"):
        read_pairs(tmp_path)
