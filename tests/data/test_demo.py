"""Built-in demo dataset generator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rgbir_reid.data.demo as demo
from rgbir_reid.data.demo import generate_demo
from rgbir_reid.data.sysu_mm01 import read_id_list, read_sysu_mm01
from rgbir_reid.data.transforms import load_image

TINY = dict(n_train_ids=3, n_val_ids=2, n_test_ids=3, images_per_camera=2, height=32, width=16)


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes(tmp_path: Path):
    generate_demo(tmp_path / "a", seed=7, **TINY)
    generate_demo(tmp_path / "b", seed=7, **TINY)
    generate_demo(tmp_path / "c", seed=8, **TINY)
    assert _tree_hash(tmp_path / "a") == _tree_hash(tmp_path / "b")
    assert _tree_hash(tmp_path / "a") != _tree_hash(tmp_path / "c")


def test_worker_processes_write_the_same_bytes(tmp_path: Path):
    generate_demo(tmp_path / "one", seed=7, **TINY)
    generate_demo(tmp_path / "three", seed=7, workers=3, **TINY)
    assert _tree_hash(tmp_path / "one") == _tree_hash(tmp_path / "three")
    assert not list(tmp_path.glob(".*tmp-*"))


def test_layout_and_id_lists(tmp_path: Path):
    root = tmp_path / "demo"
    generate_demo(root, seed=1, **TINY)
    assert sorted(p.name for p in (root / "exp").iterdir()) == [
        "available_id.txt", "test_id.txt", "train_id.txt", "val_id.txt"
    ]
    ids = {n: read_id_list(root / "exp" / f"{n}_id.txt") for n in ("train", "val", "test", "available")}
    assert [len(ids[n]) for n in ("train", "val", "test")] == [3, 2, 3]
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == ids["available"] == list(range(1, 9))
    # Nothing left beside the root by the temporary build folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]

    records = read_sysu_mm01(root)
    assert {r.pid for r in records} == set(range(1, 9))
    for pid in range(1, 9):
        cams = {r.camera for r in records if r.pid == pid}
        assert len(cams & {1, 2, 4, 5}) >= 2 and len(cams & {3, 6}) >= 1
        for c in cams:
            names = sorted(Path(r.path).name for r in records if r.pid == pid and r.camera == c)
            assert names == ["0001.jpg", "0002.jpg"]
    for r in records[:: max(1, len(records) // 12)]:
        with Image.open(r.path) as im:
            assert im.size == (16, 32)  # (W, H)
            assert im.mode == ("L" if r.camera in (3, 6) else "RGB")


def test_empty_val_list_and_existing_root(tmp_path: Path):
    root = tmp_path / "demo"
    root.mkdir()  # an empty folder (e.g. made by a workflow manager) is accepted
    generate_demo(root, **{**TINY, "n_val_ids": 0})
    assert read_id_list(root / "exp" / "val_id.txt") == []
    with pytest.raises(FileExistsError, match="not empty"):
        generate_demo(root, **TINY)
    with pytest.raises(ValueError, match="n_test_ids"):
        generate_demo(tmp_path / "x", **{**TINY, "n_test_ids": 0})


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls = {"n": 0}
    real_render = demo._render

    def failing_render(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real_render(*args, **kwargs)

    monkeypatch.setattr(demo, "_render", failing_render)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(tmp_path / "demo", **TINY)
    assert list(tmp_path.iterdir()) == []


def test_folder_left_by_a_killed_run_is_removed(tmp_path: Path):
    # SIGKILL skips the clean-up, so the half-written folder of that (other) process stays;
    # the next run removes it before writing its own.
    stale = tmp_path / ".demo.tmp-99999999"
    (stale / "cam1").mkdir(parents=True)
    generate_demo(tmp_path / "demo", **TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def _rank1_colour_histogram(paths: list[str], pids: np.ndarray, cams: np.ndarray) -> float:
    """Rank-1 of a joint RGB histogram (8 bins per channel, Hellinger distance), other cameras only."""
    descriptors = []
    for p in paths:
        im = load_image(p) // 32
        codes = (im[..., 0].astype(int) * 8 + im[..., 1]) * 8 + im[..., 2]
        hist = np.bincount(codes.ravel(), minlength=512).astype(float)
        descriptors.append(np.sqrt(hist / hist.sum()))
    d = np.stack(descriptors)
    dist = ((d[:, None] - d[None]) ** 2).sum(-1)
    hits = []
    for i in range(len(paths)):
        other = cams != cams[i]
        if (other & (pids == pids[i])).any():
            j = np.flatnonzero(other)[np.argmin(dist[i, other])]
            hits.append(pids[j] == pids[i])
    return float(np.mean(hits))


def test_identities_learnable_and_thermal_grey(tmp_path: Path):
    root = tmp_path / "demo"
    generate_demo(root, seed=0, n_train_ids=1, n_test_ids=32, images_per_camera=2)
    records = [r for r in read_sysu_mm01(root, verify_images=False) if r.subset == "test"]
    visible = [r for r in records if r.modality == "visible"]
    rank1 = _rank1_colour_histogram(
        [r.path for r in visible], np.array([r.pid for r in visible]), np.array([r.camera for r in visible])
    )
    assert rank1 > 0.3  # chance is 1/32; identities live in clothing colours across cameras

    thermal = [r for r in records if r.modality == "thermal"]
    for r in thermal[:10]:
        im = load_image(r.path).astype(int)
        assert (im[..., 0] == im[..., 1]).all() and (im[..., 1] == im[..., 2]).all()
        # Warm body on a dark background: the centre column is brighter than the side strips.
        assert im[:, 24:40].mean() > im[:, :6].mean()
    colourful = [np.abs(np.diff(load_image(r.path).astype(int), axis=-1)).mean() for r in visible[:10]]
    assert min(colourful) > 2.0
