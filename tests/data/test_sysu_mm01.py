"""SYSU-MM01 reader, checked on the real sample (read-only) and broken copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from rgbir_reid.data.layout import verify_image_file
from rgbir_reid.data.records import DatasetFormatError
from rgbir_reid.data.sysu_mm01 import (
    SYSU_MM01_THERMAL_CAMERAS,
    SYSU_MM01_VISIBLE_CAMERAS,
    read_id_list,
    read_sysu_mm01,
    sysu_mm01_modality,
    sysu_mm01_trial_split,
)


@pytest.fixture
def sample(shared_data: Path) -> Path:
    """The real SYSU-MM01 sample beside the project (read-only)."""
    return shared_data / "sysu_mm01_sample"


@pytest.fixture
def sample_copy(sample: Path, tmp_path: Path) -> Path:
    """A writable copy of the real sample, for broken variants."""
    root = tmp_path / "sysu"
    shutil.copytree(sample, root)
    return root


def test_camera_modalities():
    assert SYSU_MM01_VISIBLE_CAMERAS == (1, 2, 4, 5)
    assert SYSU_MM01_THERMAL_CAMERAS == (3, 6)
    modalities = [sysu_mm01_modality(c) for c in range(1, 7)]
    assert modalities == ["visible", "visible", "thermal", "visible", "visible", "thermal"]
    with pytest.raises(ValueError, match="camera 7"):
        sysu_mm01_modality(7)


def test_real_sample_default_split(sample: Path):
    records = read_sysu_mm01(sample)
    # 5 ids x 6 cameras x 2 images; train = train (1, 2) + val (3), test = 4, 5.
    assert len(records) == 60
    assert {r.pid for r in records if r.subset == "train"} == {1, 2, 3}
    assert {r.pid for r in records if r.subset == "test"} == {4, 5}
    assert sum(r.subset == "train" for r in records) == 36
    assert sum(r.modality == "thermal" for r in records) == 20
    for r in records:
        p = Path(r.path)
        assert p.is_absolute() and p.is_file()
        assert p.parent.parent.name == f"cam{r.camera}"
        assert int(p.parent.name) == r.pid
        assert r.modality == ("thermal" if r.camera in (3, 6) else "visible")
    assert records == sorted(records, key=lambda r: (r.camera, r.pid, r.path))
    first = records[0]
    assert (first.camera, first.pid, Path(first.path).name) == (1, 1, "0001.jpg")


def test_train_id_lists_option_leaves_out_unlisted_ids(sample: Path):
    records = read_sysu_mm01(sample, train_id_lists=("train",))
    assert {r.pid for r in records} == {1, 2, 4, 5}  # val id 3 is in neither list now
    assert len(records) == 48
    with pytest.raises(ValueError, match="train_id_lists"):
        read_sysu_mm01(sample, train_id_lists=("test",))
    with pytest.raises(ValueError, match="train_id_lists"):
        read_sysu_mm01(sample, train_id_lists=("bogus",))


def test_read_id_list_formats(tmp_path: Path):
    f = tmp_path / "ids.txt"
    f.write_text(" 1, 2 ,4,533 \n\n")
    assert read_id_list(f) == [1, 2, 4, 533]
    f.write_text("")
    assert read_id_list(f) == []
    for bad in ("1;2", "1,,2", "1,2,", "1,x", "1\n2", "0,1", "-3"):
        f.write_text(bad)
        with pytest.raises(DatasetFormatError, match="ids.txt"):
            read_id_list(f)
    f.write_text("1,2,1")
    with pytest.raises(DatasetFormatError, match="listed twice"):
        read_id_list(f)


def test_missing_root(tmp_path: Path):
    with pytest.raises(DatasetFormatError, match="root not found"):
        read_sysu_mm01(tmp_path / "nowhere")


def test_no_exp_folder(sample_copy: Path):
    shutil.rmtree(sample_copy / "exp")
    with pytest.raises(DatasetFormatError, match="no exp/ folder") as e:
        read_sysu_mm01(sample_copy)
    assert str(sample_copy.resolve()) in str(e.value)


def test_missing_id_list(sample_copy: Path):
    (sample_copy / "exp" / "test_id.txt").unlink()
    with pytest.raises(DatasetFormatError, match=r"exp/test_id\.txt"):
        read_sysu_mm01(sample_copy)


def test_malformed_id_list(sample_copy: Path):
    (sample_copy / "exp" / "train_id.txt").write_text("1 2\n")
    with pytest.raises(DatasetFormatError, match=r"train_id\.txt.*'1 2'"):
        read_sysu_mm01(sample_copy)


def test_overlapping_train_and_test_ids(sample_copy: Path):
    (sample_copy / "exp" / "val_id.txt").write_text("3,4")
    with pytest.raises(DatasetFormatError, match=r"\[4\].*test_id\.txt"):
        read_sysu_mm01(sample_copy)


def test_no_camera_folders(sample_copy: Path):
    for c in range(1, 7):
        shutil.rmtree(sample_copy / f"cam{c}")
    with pytest.raises(DatasetFormatError, match="no camera folders") as e:
        read_sysu_mm01(sample_copy)
    assert str(sample_copy.resolve()) in str(e.value)


def test_non_numeric_identity_folder(sample_copy: Path):
    (sample_copy / "cam2" / "misc").mkdir()
    with pytest.raises(DatasetFormatError, match=r"cam2/misc: expected identity folders named by a number such as '0001'"):
        read_sysu_mm01(sample_copy)


def test_corrupt_jpeg_named_unless_verification_is_off(sample_copy: Path):
    bad = sample_copy / "cam4" / "0005" / "0002.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated mid-stream: Image.verify() alone misses this
    with pytest.raises(DatasetFormatError, match=r"cam4/0005/0002\.jpg"):
        read_sysu_mm01(sample_copy)
    assert len(read_sysu_mm01(sample_copy, verify_images=False)) == 60


def test_verify_image_file_rejects_garbage_and_missing(tmp_path: Path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(DatasetFormatError, match="junk.jpg"):
        verify_image_file(junk)
    with pytest.raises(DatasetFormatError, match="not found"):
        verify_image_file(tmp_path / "missing.jpg")


def test_absent_cameras_and_one_channel_infrared(sample_copy: Path):
    shutil.rmtree(sample_copy / "cam5" / "0004")  # not every id in every camera
    shutil.rmtree(sample_copy / "cam6")  # nor every camera present
    grey = sample_copy / "cam3" / "0001" / "0001.jpg"
    Image.open(grey).convert("L").save(grey, quality=95)  # 1-channel infrared JPEG
    records = read_sysu_mm01(sample_copy)
    assert len(records) == 60 - 2 - 10
    assert not any(r.camera == 5 and r.pid == 4 for r in records)
    assert {r.camera for r in records} == {1, 2, 3, 4, 5}


def test_trial_split_is_the_manifest_for_trial_1_only(sample: Path):
    records = read_sysu_mm01(sample, verify_images=False)
    assert sysu_mm01_trial_split(sample, records, 1) == records
    with pytest.raises(ValueError, match="trial 2"):
        sysu_mm01_trial_split(sample, records, 2)
    from dataclasses import replace

    with pytest.raises(DatasetFormatError, match="subset ''"):
        sysu_mm01_trial_split(sample, [replace(records[0], subset="")], 1)
