"""RegDB reader on a tiny synthetic layout built in tmp_path."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rgbir_reid.data.completeness import DatasetCompletenessWarning
from rgbir_reid.data.records import DatasetFormatError
from rgbir_reid.data.regdb import (
    REGDB_TRIALS,
    check_regdb_counts,
    index_regdb,
    read_regdb,
    read_regdb_idx,
    regdb_idx_path,
    regdb_trial_split,
)

# A tiny copy, far from RegDB's 412 identities x 10 images: its count warnings are expected.
pytestmark = pytest.mark.filterwarnings("ignore::rgbir_reid.data.completeness.DatasetCompletenessWarning")

PIDS = (1, 2, 3, 4, 5, 6)
IMAGES_PER_ID = 2


def _name(modality: str, pid: int, n: int) -> str:
    return f"male_front_{modality[0]}_{pid:05d}_{n}.bmp"


def _train_pids(trial: int) -> list[int]:
    return sorted(np.random.default_rng(trial).permutation(PIDS)[:3].tolist())


def _write_idx(root: Path, subset: str, modality: str, trial: int, pids: list[int]) -> None:
    folder = {"visible": "Visible", "thermal": "Thermal"}[modality]
    lines = [
        f"{folder}/{pid}/{_name(modality, pid, n)} {label}"
        for label, pid in enumerate(sorted(pids))  # labels re-indexed 0.. per trial, as in RegDB
        for n in range(1, IMAGES_PER_ID + 1)
    ]
    regdb_idx_path(root, subset, modality, trial).write_text("\n".join(lines) + "\n")


@pytest.fixture
def regdb_root(tmp_path: Path) -> Path:
    root = tmp_path / "RegDB"
    for modality, folder in (("visible", "Visible"), ("thermal", "Thermal")):
        for pid in PIDS:
            (root / folder / str(pid)).mkdir(parents=True)
            for n in range(1, IMAGES_PER_ID + 1):
                mode = "RGB" if modality == "visible" else "L"
                Image.new(mode, (4, 8), 10 * pid + n).save(root / folder / str(pid) / _name(modality, pid, n))
    (root / "idx").mkdir()
    for trial in REGDB_TRIALS:
        train = _train_pids(trial)
        test = [p for p in PIDS if p not in train]
        for modality in ("visible", "thermal"):
            _write_idx(root, "train", modality, trial, train)
            _write_idx(root, "test", modality, trial, test)
    return root


def _replace_line(path: Path, line_no: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_index_lists_every_image(regdb_root: Path):
    records = index_regdb(regdb_root)
    assert len(records) == len(PIDS) * IMAGES_PER_ID * 2
    assert all(r.subset == "" for r in records)
    for r in records:
        p = Path(r.path)
        assert p.is_absolute() and p.is_file()
        assert int(p.parent.name) == r.pid
        assert (r.camera, p.parent.parent.name) == ((1, "Visible") if r.modality == "visible" else (2, "Thermal"))
    assert records == sorted(records, key=lambda r: (r.camera, r.pid, r.path))


@pytest.mark.parametrize("trial", [1, 7, 10])
def test_trial_records_use_folder_pids_not_labels(regdb_root: Path, trial: int):
    records = read_regdb(regdb_root, trial)
    train = _train_pids(trial)
    assert sorted({r.pid for r in records if r.subset == "train"}) == train
    assert sorted({r.pid for r in records if r.subset == "test"}) == [p for p in PIDS if p not in train]
    assert len(records) == len(PIDS) * IMAGES_PER_ID * 2
    assert sum(r.camera == 2 and r.subset == "train" for r in records) == 3 * IMAGES_PER_ID


def test_idx_labels_returned_per_line(regdb_root: Path):
    entries = read_regdb_idx(regdb_root.resolve(), "train", "thermal", 1)
    train = _train_pids(1)
    assert [(pid, label) for _, pid, label in entries] == [(p, i) for i, p in enumerate(train) for _ in range(2)]


def test_trial_split_of_manifest_keeps_manifest_order(regdb_root: Path):
    manifest = index_regdb(regdb_root, verify_images=False)
    split = regdb_trial_split(regdb_root, manifest, 3)
    assert [r.path for r in split] == [r.path for r in manifest]
    train = set(_train_pids(3))
    assert all(r.subset == ("train" if r.pid in train else "test") for r in split)


def test_trial_split_rejects_stale_manifest(regdb_root: Path):
    manifest = index_regdb(regdb_root, verify_images=False)
    with pytest.raises(DatasetFormatError, match=r"not in the manifest"):
        regdb_trial_split(regdb_root, manifest[1:], 1)


@pytest.mark.parametrize("trial", [0, 11])
def test_trial_out_of_range(regdb_root: Path, trial: int):
    with pytest.raises(ValueError, match=f"trial {trial}"):
        read_regdb(regdb_root, trial)


def test_missing_folders(regdb_root: Path, tmp_path: Path):
    with pytest.raises(DatasetFormatError, match="root not found"):
        index_regdb(tmp_path / "nowhere")
    os.rename(regdb_root / "Thermal", regdb_root / "thermal_images")
    with pytest.raises(DatasetFormatError, match="no Thermal/ folder"):
        index_regdb(regdb_root)


def test_non_numeric_identity_folder(regdb_root: Path):
    (regdb_root / "Visible" / "misc").mkdir()
    (regdb_root / "Visible" / "notes.txt").write_text("stray files beside the folders are skipped")
    with pytest.raises(DatasetFormatError, match=r"Visible/misc: expected identity folders named by a number$"):
        index_regdb(regdb_root)


def test_missing_idx_file_fails_indexing(regdb_root: Path):
    regdb_idx_path(regdb_root, "test", "visible", 9).unlink()
    with pytest.raises(DatasetFormatError, match=r"idx/test_visible_9\.txt"):
        index_regdb(regdb_root)


@pytest.mark.parametrize(
    "line, message",
    [
        ("Visible/1/only_a_path.bmp", "expected '<relative path> <label>'"),
        ("Visible/1/x.bmp 0 extra", "expected '<relative path> <label>'"),
        ("Visible/1/x.bmp minus", "expected '<relative path> <label>'"),
        ("Thermal/1/x.bmp 0", "expected a path 'Visible/<pid>/<file>'"),
        ("Visible/abc/x.bmp 0", "expected a path 'Visible/<pid>/<file>'"),
        ("Visible/1/missing.bmp 0", "does not exist"),
    ],
)
def test_bad_idx_line_named(regdb_root: Path, line: str, message: str):
    idx = regdb_idx_path(regdb_root, "train", "visible", 2)
    _replace_line(idx, 3, line)
    with pytest.raises(DatasetFormatError, match=r"train_visible_2\.txt, line 3") as e:
        read_regdb(regdb_root, 2)
    assert message in str(e.value)


def test_inconsistent_labels_named(regdb_root: Path):
    idx = regdb_idx_path(regdb_root, "test", "thermal", 4)
    first_path, label = idx.read_text().splitlines()[1].split()
    _replace_line(idx, 2, f"{first_path} {int(label) + 1}")  # same folder as line 1, other label
    with pytest.raises(DatasetFormatError, match=r"test_thermal_4\.txt, line 2: folder .* has label"):
        read_regdb(regdb_root, 4)
    second = idx.read_text().splitlines()[2].split()[0]
    _replace_line(idx, 2, f"{first_path} {label}")
    _replace_line(idx, 3, f"{second} {label}")  # another folder with line 1's label
    with pytest.raises(DatasetFormatError, match=r"test_thermal_4\.txt, line 3: label"):
        read_regdb(regdb_root, 4)


def test_duplicate_line_named(regdb_root: Path):
    idx = regdb_idx_path(regdb_root, "train", "thermal", 5)
    _replace_line(idx, 2, idx.read_text().splitlines()[0])
    with pytest.raises(DatasetFormatError, match=r"train_thermal_5\.txt, line 2: .*listed twice"):
        read_regdb(regdb_root, 5)


def test_identity_in_train_and_test_rejected(regdb_root: Path):
    train = _train_pids(6)
    _write_idx(regdb_root, "test", "visible", 6, [p for p in PIDS if p not in train] + [train[0]])
    with pytest.raises(DatasetFormatError, match=rf"trial 6: identity folders \[{train[0]}\]"):
        read_regdb(regdb_root, 6)


def test_corrupt_bmp_named(regdb_root: Path):
    bad = regdb_root / "Thermal" / "4" / _name("thermal", 4, 2)
    bad.write_bytes(bad.read_bytes()[:20])
    with pytest.raises(DatasetFormatError, match=r"Thermal/4/male_front_t_00004_2\.bmp"):
        index_regdb(regdb_root)
    assert len(index_regdb(regdb_root, verify_images=False)) == len(PIDS) * IMAGES_PER_ID * 2


# --------------------------------------------------------------------------- completeness


def test_every_missing_listed_image_is_named_with_its_idx_line(regdb_root: Path):
    a, b = _train_pids(1)[:2]  # both in train_thermal_1.txt, the first idx file indexing reads
    gone = [regdb_root / "Thermal" / str(a) / _name("thermal", a, 1), regdb_root / "Thermal" / str(b) / _name("thermal", b, 2)]
    for p in gone:
        p.unlink()
    with pytest.raises(DatasetFormatError, match=r"2 image\(s\) listed in train_thermal_1\.txt do not exist") as e:
        index_regdb(regdb_root)
    message = str(e.value)
    for p in gone:
        assert f"{p.resolve()} does not exist" in message
    assert "train_thermal_1.txt, line 1: image" in message and "train_thermal_1.txt, line 4: image" in message


def test_tiny_copy_warns_about_the_counts_the_dataset_fixes(regdb_root: Path):
    with pytest.warns(DatasetCompletenessWarning) as caught:
        index_regdb(regdb_root, verify_images=False)
    messages = [str(w.message) for w in caught]
    lacks = [m for m in messages if "lacks 406 of the dataset's 412 identity folders" in m]
    assert len(lacks) == 2  # Visible and Thermal
    assert any(str(regdb_root.resolve() / "Thermal") in m and ": 7, 8, 9," in m for m in lacks)
    odd = [m for m in messages if "do not hold 10 .bmp images" in m]
    assert len(odd) == 2 and all("1 (2), 2 (2)" in m for m in odd)


def test_counts_of_the_genuine_layout_give_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_regdb_counts(Path("Visible"), {pid: 10 for pid in range(1, 413)})


@pytest.mark.parametrize(
    "counts, expected",
    [
        ({pid: 10 for pid in range(1, 413) if pid != 17}, r"Visible lacks 1 of the dataset's 412 identity folders: 17;"),
        ({**{pid: 10 for pid in range(1, 413)}, 230: 9}, r"1 identity folder\(s\) of Visible do not hold 10 .bmp images .*: 230 \(9\)"),
        ({**{pid: 10 for pid in range(1, 413)}, 5: 0}, r"Visible do not hold 10 .bmp images .*: 5 \(0\)"),  # empty folder
        ({**{pid: 10 for pid in range(1, 413)}, 999: 10}, r"outside the dataset's 1..412: 999"),
    ],
)
def test_count_deviations_named(counts, expected):
    with pytest.warns(DatasetCompletenessWarning, match=expected):
        check_regdb_counts(Path("Visible"), counts)
