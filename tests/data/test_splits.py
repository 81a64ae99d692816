"""Dataset format registry: index_dataset, make_trial_split, trials_of."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from rgbir_reid.data.demo import generate_demo
from rgbir_reid.data.records import DatasetFormatError, read_records_csv, write_records_csv
from rgbir_reid.data.regdb import REGDB_TRIALS, regdb_idx_path
from rgbir_reid.data.splits import DATASET_FORMATS, get_format, index_dataset, make_trial_split, trials_of
from rgbir_reid.data.sysu_mm01 import read_sysu_mm01


@pytest.fixture
def sample(shared_data: Path) -> Path:
    """The real SYSU-MM01 sample beside the project (read-only)."""
    return shared_data / "sysu_mm01_sample"


def test_registry_names_and_trials(sample: Path):
    assert sorted(DATASET_FORMATS) == ["demo", "regdb", "sysu_mm01"]
    assert trials_of("sysu_mm01") == [1]
    assert trials_of("demo") == [1]
    assert trials_of("regdb") == list(range(1, 11))
    with pytest.raises(ValueError, match=r"unknown dataset format 'market1501'.*\['demo', 'regdb', 'sysu_mm01'\]"):
        get_format("market1501")
    with pytest.raises(ValueError, match="valid formats"):
        index_dataset("llvip", sample)


def test_index_sysu_sample_with_options(sample: Path):
    records = index_dataset("sysu_mm01", sample)
    assert records == read_sysu_mm01(sample)
    assert len(index_dataset("sysu_mm01", sample, train_id_lists=["train"], verify_images=False)) == 48
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['trial'\].*'train_id_lists', 'verify_images'"):
        index_dataset("sysu_mm01", sample, trial=1)
    with pytest.raises(ValueError, match=r"\['train_id_lists'\].*'regdb'"):
        index_dataset("regdb", sample, train_id_lists=["train"])


def test_sysu_split_survives_csv_round_trip(sample: Path, tmp_path: Path):
    manifest = tmp_path / "manifest.csv"
    write_records_csv(index_dataset("sysu_mm01", sample), manifest)
    records = read_records_csv(manifest)
    split = make_trial_split("sysu_mm01", sample, records, 1)
    assert split == records
    # the read-back split matches a fresh index of the root, path, pid, camera, modality and subset
    assert split == index_dataset("sysu_mm01", sample, verify_images=False)
    assert {r.subset for r in split} == {"train", "test"}
    with pytest.raises(ValueError, match=r"'sysu_mm01' has trials \[1\], got trial 3"):
        make_trial_split("sysu_mm01", sample, records, 3)


def test_demo_format_reads_generated_root(tmp_path: Path):
    root = tmp_path / "demo"
    generate_demo(root, n_train_ids=2, n_test_ids=2, images_per_camera=1, height=32, width=16)
    records = index_dataset("demo", root)
    assert {r.subset for r in records} == {"train", "test"}
    assert len({r.pid for r in records if r.subset == "test"}) == 2
    assert make_trial_split("demo", root, records, 1) == records
    with pytest.raises(ValueError, match="got trial 2"):
        make_trial_split("demo", root, records, 2)


def test_regdb_manifest_then_every_trial(tmp_path: Path):
    root = tmp_path / "RegDB"
    pids = [3, 8, 12, 40]
    for folder in ("Visible", "Thermal"):
        for pid in pids:
            (root / folder / str(pid)).mkdir(parents=True)
            Image.new("L", (4, 8), pid).save(root / folder / str(pid) / "a.bmp")
    (root / "idx").mkdir()
    for trial in REGDB_TRIALS:
        train = [pids[trial % 4], pids[(trial + 1) % 4]]
        for subset, chosen in (("train", train), ("test", [p for p in pids if p not in train])):
            for modality, folder in (("visible", "Visible"), ("thermal", "Thermal")):
                lines = [f"{folder}/{p}/a.bmp {label}" for label, p in enumerate(chosen)]
                regdb_idx_path(root, subset, modality, trial).write_text("\n".join(lines))

    manifest = index_dataset("regdb", root)
    assert len(manifest) == 8 and {r.subset for r in manifest} == {""}
    for trial in trials_of("regdb"):
        split = make_trial_split("regdb", root, manifest, trial)
        assert len(split) == 8
        assert {r.pid for r in split if r.subset == "train"} == {pids[trial % 4], pids[(trial + 1) % 4]}
    with pytest.raises(ValueError, match="got trial 11"):
        make_trial_split("regdb", root, manifest, 11)
    with pytest.raises(DatasetFormatError, match="not in the manifest"):
        make_trial_split("regdb", root, manifest[:-1], 1)
