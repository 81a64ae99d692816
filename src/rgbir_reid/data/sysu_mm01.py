"""Reader of the native SYSU-MM01 layout.

SYSU-MM01 (Wu et al., "RGB-Infrared Cross-Modality Person Re-Identification", ICCV 2017)
is stored as::

    <root>/cam1 .. cam6/<pid, 4 digits>/<image, 4 digits>.jpg
    <root>/exp/train_id.txt, val_id.txt, test_id.txt, available_id.txt

Each id list is one comma-separated line of integers (``1,2,4,5,...``). Cameras 1, 2, 4, 5
are RGB (visible), cameras 3 and 6 are near-infrared (thermal); cameras 1-3 are indoor,
4-6 outdoor. Not every identity appears in every camera. Infrared JPEGs may be stored with
one or three (identical) channels; listing files does not care, decoding is
:func:`rgbir_reid.data.transforms.load_image`'s job.

The built-in demo dataset (:mod:`rgbir_reid.data.demo`) is written in this same layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rgbir_reid.data.layout import NUMBER, image_files, numbered_subdirs, verify_images_of
from rgbir_reid.data.records import TEST, THERMAL, TRAIN, VISIBLE, DatasetFormatError, ImageRecord

SYSU_MM01_VISIBLE_CAMERAS = (1, 2, 4, 5)
SYSU_MM01_THERMAL_CAMERAS = (3, 6)
SYSU_MM01_CAMERAS = (1, 2, 3, 4, 5, 6)
# Indoor cameras: the indoor-search protocol takes its gallery from cameras 1 and 2 only.
SYSU_MM01_INDOOR_CAMERAS = (1, 2, 3)
SYSU_MM01_ID_LISTS = ("train", "val", "test", "available")
# The standard practice (and the paper's): train on train + val ids, test on test ids.
SYSU_MM01_DEFAULT_TRAIN_ID_LISTS = ("train", "val")
SYSU_MM01_TEST_ID_LIST = "test"
IMAGE_SUFFIXES = (".jpg", ".jpeg")


def sysu_mm01_modality(camera: int) -> str:
    """``"visible"`` for cameras 1, 2, 4, 5; ``"thermal"`` for 3, 6.

    Raises:
        ValueError: for a camera outside 1..6.
    """
    if camera in SYSU_MM01_VISIBLE_CAMERAS:
        return VISIBLE
    if camera in SYSU_MM01_THERMAL_CAMERAS:
        return THERMAL
    raise ValueError(f"SYSU-MM01 has cameras {SYSU_MM01_CAMERAS}, got camera {camera}")


def id_list_path(root: str | Path, name: str) -> Path:
    """Path of ``exp/<name>_id.txt`` under a SYSU-MM01 root (``name`` in train/val/test/available)."""
    return Path(root) / "exp" / f"{name}_id.txt"


def read_id_list(path: str | Path) -> list[int]:
    """Parse one SYSU-MM01 id list file: a single comma-separated line of positive integers.

    Surrounding whitespace and a trailing newline are accepted; an empty file is an empty list
    (the demo writes an empty ``val_id.txt`` when it has no validation ids).

    Returns:
        the ids in file order.

    Raises:
        DatasetFormatError: if the file is missing or an entry is not a positive integer or is
            repeated; the message names the file and the entry.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"SYSU-MM01 id list not found: {path} (expected one comma-separated line of ids)")
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    if not text:
        return []
    ids: list[int] = []
    seen: set[int] = set()
    for position, token in enumerate(text.split(","), start=1):
        token = token.strip()
        if not NUMBER.fullmatch(token) or int(token) == 0:
            raise DatasetFormatError(
                f"malformed SYSU-MM01 id list {path}: entry {position} is {token!r}; "
                "expected one line of comma-separated positive integers such as '1,2,4'"
            )
        i = int(token)
        if i in seen:
            raise DatasetFormatError(f"malformed SYSU-MM01 id list {path}: id {i} is listed twice")
        seen.add(i)
        ids.append(i)
    return ids


def read_sysu_mm01(
    root: str | Path,
    *,
    train_id_lists: Sequence[str] = SYSU_MM01_DEFAULT_TRAIN_ID_LISTS,
    verify_images: bool = True,
) -> list[ImageRecord]:
    """List every image of a SYSU-MM01 root whose identity is a training or test identity.

    Args:
        root: dataset folder holding ``cam1``..``cam6`` and ``exp/``.
        train_id_lists: which id lists form the training identities, among
            ``"train"``, ``"val"``, ``"available"``; default ``("train", "val")`` as in the paper.
            Test identities always come from ``exp/test_id.txt``.
        verify_images: decode every image once (see
            :func:`rgbir_reid.data.layout.verify_image_file`) so that a
            corrupt file fails indexing, naming the file, rather than a later training job.

    Returns:
        one :class:`ImageRecord` per image, absolute paths, ``subset`` ``"train"`` or
        ``"test"``, sorted by (camera, pid, file name). Images of identities in neither the
        training nor the test lists are left out. All four id list files must exist.

    Raises:
        DatasetFormatError: root or ``exp/`` missing, an id list missing or malformed,
            training and test ids overlapping, no ``camK`` folder at all, a non-numeric
            identity folder, or (with ``verify_images``) a corrupt image. The message names
            the path and what was expected.
        ValueError: an unknown name in ``train_id_lists``.
    """
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        raise DatasetFormatError(f"SYSU-MM01 root not found: {root_path} (expected a folder with cam1..cam6 and exp/)")
    root_path = root_path.resolve()
    exp = root_path / "exp"
    if not exp.is_dir():
        raise DatasetFormatError(
            f"SYSU-MM01 root {root_path} has no exp/ folder (expected exp/{{train,val,test,available}}_id.txt)"
        )
    if isinstance(train_id_lists, str):
        train_id_lists = (train_id_lists,)
    bad = [n for n in train_id_lists if n not in SYSU_MM01_ID_LISTS or n == SYSU_MM01_TEST_ID_LIST]
    if bad or not train_id_lists:
        allowed = [n for n in SYSU_MM01_ID_LISTS if n != SYSU_MM01_TEST_ID_LIST]
        raise ValueError(f"train_id_lists must be a non-empty selection of {allowed}, got {list(train_id_lists)}")

    id_lists = {name: read_id_list(id_list_path(root_path, name)) for name in SYSU_MM01_ID_LISTS}
    train_ids = {i for name in train_id_lists for i in id_lists[name]}
    test_ids = set(id_lists[SYSU_MM01_TEST_ID_LIST])
    overlap = sorted(train_ids & test_ids)
    if overlap:
        files = ", ".join(str(id_list_path(root_path, n)) for n in train_id_lists)
        raise DatasetFormatError(
            f"ids {overlap[:10]} are in both the training lists ({files}) and "
            f"{id_list_path(root_path, SYSU_MM01_TEST_ID_LIST)}; expected disjoint training and test ids"
        )

    camera_dirs = [(c, root_path / f"cam{c}") for c in SYSU_MM01_CAMERAS if (root_path / f"cam{c}").is_dir()]
    if not camera_dirs:
        raise DatasetFormatError(f"SYSU-MM01 root {root_path} has no camera folders (expected cam1..cam6)")

    records: list[ImageRecord] = []
    for camera, cam_dir in camera_dirs:
        modality = sysu_mm01_modality(camera)
        for pid, pid_dir in numbered_subdirs(cam_dir, "identity folders named by a number such as '0001'"):
            subset = TRAIN if pid in train_ids else TEST if pid in test_ids else None
            if subset is None:
                continue
            for image in image_files(pid_dir, IMAGE_SUFFIXES):
                records.append(ImageRecord(str(image), pid, camera, modality, subset))
    if verify_images:
        verify_images_of(records)
    return records


# One fixed training split; the 10 random gallery draws of the official protocol are an
# evaluation matter (rgbir_reid.evaluation), not separate trials with their own models.
SYSU_MM01_TRIALS = (1,)


def sysu_mm01_trial_split(root: str | Path, records: Sequence[ImageRecord], trial: int) -> list[ImageRecord]:
    """The records of the single SYSU-MM01 training split (also used for the demo dataset).

    The subsets were fixed by the id lists when the manifest was made
    (:func:`read_sysu_mm01`), so the records are returned as they are; ``root`` is accepted
    for a signature shared with RegDB.

    Raises:
        ValueError: ``trial`` is not 1.
        DatasetFormatError: a record has no ``"train"``/``"test"`` subset (not a manifest
            made by :func:`read_sysu_mm01`); the message names its path.
    """
    if trial not in SYSU_MM01_TRIALS:
        raise ValueError(
            f"SYSU-MM01 has one training split, trial 1, got trial {trial!r} "
            "(its 10 gallery trials are drawn at evaluation time)"
        )
    for r in records:
        if r.subset not in (TRAIN, TEST):
            raise DatasetFormatError(
                f"record {r.path} has subset {r.subset!r}; expected 'train' or 'test' "
                f"(a manifest made from the id lists under {Path(root) / 'exp'})"
            )
    return list(records)
