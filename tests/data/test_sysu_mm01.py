"""SYSU-MM01 reader, checked on the real sample (read-only) and broken copies of it."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import scipy.io

import pytest
from PIL import Image

from conftest import SHARED_DATA
from rgbir_reid.data.completeness import DatasetCompletenessWarning
from rgbir_reid.data.layout import verify_image_file
from rgbir_reid.data.records import DatasetFormatError
from rgbir_reid.data.sysu_mm01 import (
    SYSU_MM01_THERMAL_CAMERAS,
    SYSU_MM01_VISIBLE_CAMERAS,
    check_sysu_mm01_evaluation_files,
    read_id_list,
    read_rand_perm_image_counts,
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


def test_absent_identity_cameras_and_one_channel_infrared(sample_copy: Path):
    # Not every id in every camera, as in the genuine dataset (40 test ids lack cameras 1 and 2):
    # no error and no warning while each id keeps both modalities.
    shutil.rmtree(sample_copy / "cam5" / "0004")
    shutil.rmtree(sample_copy / "cam6" / "0002")
    grey = sample_copy / "cam3" / "0001" / "0001.jpg"
    Image.open(grey).convert("L").save(grey, quality=95)  # 1-channel infrared JPEG
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = read_sysu_mm01(sample_copy)
    assert len(records) == 60 - 2 - 2
    assert not any(r.camera == 5 and r.pid == 4 for r in records)
    assert {r.camera for r in records} == {1, 2, 3, 4, 5, 6}


def test_real_sample_is_complete():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_sysu_mm01(SHARED_DATA / "sysu_mm01_sample", verify_images=False)) == 60


def test_trial_split_is_the_manifest_for_trial_1_only(sample: Path):
    records = read_sysu_mm01(sample, verify_images=False)
    assert sysu_mm01_trial_split(sample, records, 1) == records
    with pytest.raises(ValueError, match="trial 2"):
        sysu_mm01_trial_split(sample, records, 2)
    from dataclasses import replace

    with pytest.raises(DatasetFormatError, match="subset ''"):
        sysu_mm01_trial_split(sample, [replace(records[0], subset="")], 1)



# --------------------------------------------------------------------------- completeness


def test_missing_camera_folder_is_an_error_naming_it(sample_copy: Path):
    shutil.rmtree(sample_copy / "cam6")
    with pytest.raises(DatasetFormatError, match="lacks camera folder") as e:
        read_sysu_mm01(sample_copy)
    assert str(sample_copy.resolve() / "cam6") in str(e.value)
    assert "cam3" not in str(e.value).split("lacks")[1].split(";")[0]


def test_listed_id_without_folder_is_an_error_naming_id_and_list(sample_copy: Path):
    for c in range(1, 7):
        shutil.rmtree(sample_copy / f"cam{c}" / "0003")  # 3 is the sample's val id
    with pytest.raises(DatasetFormatError, match=r"1 id\(s\) listed in .*exp/val_id\.txt have no image .*: 3 \(no folder\)"):
        read_sysu_mm01(sample_copy)
    # When the val list is not read by the run, the run can go on: a warning names it.
    with pytest.warns(DatasetCompletenessWarning, match=r"val_id\.txt have no image .*: 3 \(no folder\).*not used by this run"):
        records = read_sysu_mm01(sample_copy, train_id_lists=("train",))
    assert {r.pid for r in records} == {1, 2, 4, 5}


def test_listed_id_with_only_empty_folders_names_them(sample_copy: Path):
    for c in range(1, 7):
        for image in (sample_copy / f"cam{c}" / "0004").iterdir():
            image.unlink()
    with pytest.warns(DatasetCompletenessWarning, match=r"6 empty identity folder\(s\)"):
        with pytest.raises(DatasetFormatError, match=r"test_id\.txt have no image .*: 4 \(cam1/0004 empty, cam2/0004 empty"):
            read_sysu_mm01(sample_copy)


def test_empty_identity_folder_is_a_warning_naming_it(sample_copy: Path):
    for image in (sample_copy / "cam2" / "0001").iterdir():
        image.unlink()
    with pytest.warns(DatasetCompletenessWarning, match="empty identity folder") as caught:
        records = read_sysu_mm01(sample_copy)
    assert len(caught) == 1 and str(sample_copy.resolve() / "cam2" / "0001") in str(caught[0].message)
    assert len(records) == 58


@pytest.mark.parametrize(
    "cameras, expected",
    [
        ((3, 6), r"test_id\.txt have no infrared image \(cam3/cam6\): 5; their RGB images are gallery distractors only"),
        ((1, 2, 4, 5), r"test_id\.txt have no RGB image \(cam1/cam2/cam4/cam5\): 5; their infrared queries have no true match"),
    ],
)
def test_test_id_in_one_modality_is_a_warning_naming_it(sample_copy: Path, cameras, expected):
    for c in cameras:
        shutil.rmtree(sample_copy / f"cam{c}" / "0005")
    with pytest.warns(DatasetCompletenessWarning, match=expected):
        records = read_sysu_mm01(sample_copy)
    assert any(r.pid == 5 for r in records)


def test_training_id_in_one_modality_is_a_warning_naming_it(sample_copy: Path):
    for c in (3, 6):
        shutil.rmtree(sample_copy / f"cam{c}" / "0002")
    with pytest.warns(DatasetCompletenessWarning, match=r"train_id\.txt have no infrared image .*: 2; the sampler leaves them out"):
        read_sysu_mm01(sample_copy)


# Evaluation files. The sample's ids 1..5 are not the real ones, so its rand_perm_cam.mat is
# written here in the official file's shape: a 6-cell array of per-id cells of 10 x n permutations.


def _write_rand_perm(path: Path, counts: dict[tuple[int, int], int], n_ids: int = 5) -> Path:
    rng = np.random.default_rng(0)
    cams = np.empty((6, 1), dtype=object)
    for c in range(1, 7):
        cell = np.empty((n_ids, 1), dtype=object)
        for pid in range(1, n_ids + 1):
            n = counts.get((c, pid), 0)
            cell[pid - 1, 0] = np.stack([rng.permutation(n) + 1 for _ in range(10)]).astype(np.float64) if n else np.zeros((0, 0))
        cams[c - 1, 0] = cell
    scipy.io.savemat(str(path), {"rand_perm_cam": cams})
    return path


SAMPLE_COUNTS = {(c, p): 2 for c in range(1, 7) for p in range(1, 6)}


def test_rand_perm_counts_of_the_real_file(shared_data: Path):
    counts = read_rand_perm_image_counts(shared_data / "sysu_mm01_protocol" / "evaluation" / "rand_perm_cam.mat")
    assert sum(counts.values()) == 45863  # the genuine dataset's images, unlisted ids included
    test_ids = read_id_list(shared_data / "sysu_mm01_protocol" / "exp" / "test_id.txt")
    assert sum(counts.get((c, p), 0) for p in test_ids for c in (3, 6)) == 3803  # the protocol's queries
    assert sum((c, p) in counts for p in test_ids for c in (1, 2, 4, 5)) == 301  # single-shot gallery


def test_matching_rand_perm_and_indoor_ids_pass(sample: Path, tmp_path: Path):
    rand_perm = _write_rand_perm(tmp_path / "rand_perm_cam.mat", SAMPLE_COUNTS)
    scipy.io.savemat(str(tmp_path / "indoor.mat"), {"id": np.array([[4, 5]], dtype=np.float64)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_sysu_mm01_evaluation_files(sample, rand_perm_file=rand_perm, indoor_id_file=tmp_path / "indoor.mat")


def test_rand_perm_naming_a_missing_gallery_folder_is_an_error(sample_copy: Path, tmp_path: Path):
    shutil.rmtree(sample_copy / "cam2" / "0005")
    rand_perm = _write_rand_perm(tmp_path / "rand_perm_cam.mat", SAMPLE_COUNTS)
    with pytest.raises(DatasetFormatError, match=r"rand_perm_cam\.mat records other image counts .* RGB \(gallery\) cameras: cam2/0005 holds 0, expected 2;"):
        check_sysu_mm01_evaluation_files(sample_copy, rand_perm_file=rand_perm)


def test_rand_perm_with_more_images_than_a_folder_is_an_error(sample: Path, tmp_path: Path):
    rand_perm = _write_rand_perm(tmp_path / "rand_perm_cam.mat", {**SAMPLE_COUNTS, (4, 4): 3})
    with pytest.raises(DatasetFormatError, match=r"cam4/0004 holds 2, expected 3"):
        check_sysu_mm01_evaluation_files(sample, rand_perm_file=rand_perm)


def test_rand_perm_count_differences_in_queries_or_training_are_warnings(sample: Path, tmp_path: Path):
    rand_perm = _write_rand_perm(tmp_path / "rand_perm_cam.mat", {**SAMPLE_COUNTS, (6, 4): 5, (1, 2): 20})
    with pytest.warns(DatasetCompletenessWarning) as caught:
        check_sysu_mm01_evaluation_files(sample, rand_perm_file=rand_perm)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "infrared (query) cameras: cam6/0004 holds 2, expected 5" in messages[0]
    assert "training ids: cam1/0002 holds 2, expected 20" in messages[1]


def test_indoor_ids_must_be_test_ids_seen_by_cameras_1_and_2(sample_copy: Path, tmp_path: Path):
    indoor = tmp_path / "test_id_indoor.mat"
    scipy.io.savemat(str(indoor), {"id": np.array([[4, 9]], dtype=np.float64)})
    with pytest.raises(DatasetFormatError, match=r"test_id_indoor\.mat names id\(s\) 9 that are not in .*test_id\.txt"):
        check_sysu_mm01_evaluation_files(sample_copy, indoor_id_file=indoor)
    scipy.io.savemat(str(indoor), {"id": np.array([[4, 5]], dtype=np.float64)})
    for c in (1, 2):
        shutil.rmtree(sample_copy / f"cam{c}" / "0004")
    with pytest.raises(DatasetFormatError, match=r"no image .* in the indoor RGB cameras: 4 \(cam1/0004, cam2/0004\)"):
        check_sysu_mm01_evaluation_files(sample_copy, indoor_id_file=indoor)
