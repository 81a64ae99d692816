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

Completeness: a copy is checked against its own bookkeeping when it is indexed. The six
camera folders and an image of every identity the run reads (train/val/test lists) are
required (:class:`DatasetFormatError`); empty identity folders and listed identities seen in
one modality only are :class:`~rgbir_reid.data.completeness.DatasetCompletenessWarning`
warnings (the genuine dataset has neither: all 491 listed ids have RGB and infrared images, though some
lack some cameras). The official evaluation files are checked against the folders by
:func:`check_sysu_mm01_evaluation_files`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import scipy.io

from rgbir_reid.data.completeness import name_some, warn_incomplete
from rgbir_reid.data.layout import NUMBER, image_files, numbered_subdirs, verify_images_of
from rgbir_reid.data.records import TEST, THERMAL, TRAIN, VISIBLE, DatasetFormatError, ImageRecord

SYSU_MM01_VISIBLE_CAMERAS = (1, 2, 4, 5)
SYSU_MM01_THERMAL_CAMERAS = (3, 6)
SYSU_MM01_CAMERAS = (1, 2, 3, 4, 5, 6)
# Indoor cameras: the indoor-search protocol takes its gallery from cameras 1 and 2 only.
SYSU_MM01_INDOOR_CAMERAS = (1, 2, 3)
# The RGB cameras of the indoor-search gallery (test_id_indoor.mat: the test ids they see).
SYSU_SEARCH_INDOOR_GALLERY = (1, 2)
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


def list_sysu_mm01_folders(root: str | Path) -> dict[tuple[int, int], list[Path]]:
    """Every identity folder of a SYSU-MM01 root with its images, ``{(camera, pid): [image, ...]}``.

    Args:
        root: dataset folder holding ``cam1``..``cam6`` (absolute paths come out if it is absolute).

    Returns:
        one entry per ``camK/PPPP/`` folder, empty folders included (with ``[]``); images are the
        ``.jpg``/``.jpeg`` files, sorted by name.

    Raises:
        DatasetFormatError: no ``camK`` folder at all, or some of the six missing (the dataset
            has all six; an identity may be absent from a camera, a camera is never absent from
            the dataset), or a non-numeric identity folder; the message names the folders.
    """
    root_path = Path(root)
    missing = [root_path / f"cam{c}" for c in SYSU_MM01_CAMERAS if not (root_path / f"cam{c}").is_dir()]
    if len(missing) == len(SYSU_MM01_CAMERAS):
        raise DatasetFormatError(f"SYSU-MM01 root {root_path} has no camera folders (expected cam1..cam6)")
    if missing:
        raise DatasetFormatError(
            f"SYSU-MM01 root {root_path} lacks camera folder(s) {name_some(missing)}; expected all of cam1..cam6 "
            f"(RGB cameras {SYSU_MM01_VISIBLE_CAMERAS}, infrared {SYSU_MM01_THERMAL_CAMERAS}): an incomplete copy"
        )
    folders: dict[tuple[int, int], list[Path]] = {}
    for camera in SYSU_MM01_CAMERAS:
        for pid, pid_dir in numbered_subdirs(root_path / f"cam{camera}", "identity folders named by a number such as '0001'"):
            folders[(camera, pid)] = image_files(pid_dir, IMAGE_SUFFIXES)
    return folders


def check_sysu_mm01_ids(
    root: str | Path,
    id_lists: Mapping[str, Sequence[int]],
    folders: Mapping[tuple[int, int], Sequence[Path]],
    *,
    used_lists: Sequence[str] = (*SYSU_MM01_DEFAULT_TRAIN_ID_LISTS, SYSU_MM01_TEST_ID_LIST),
) -> None:
    """Check that the identities of the train, val and test lists are present with their images.

    In the genuine SYSU-MM01 every one of the 491 listed identities has images in at least one
    RGB and one infrared camera, while some lack some cameras (40 test ids are never seen by
    cameras 1 and 2, for instance); so a missing camera of an identity is not reported, a
    missing modality or identity is.

    Args:
        root: the dataset root (for messages).
        id_lists: ``{"train": [...], "val": [...], "test": [...], ...}`` as read from ``exp/``;
            lists other than train, val and test (``available``) are not checked.
        folders: from :func:`list_sysu_mm01_folders`.
        used_lists: the lists this run reads (the training lists and ``"test"``).

    Raises:
        DatasetFormatError: an identity of a used list has no image in any camera; the message
            names the ids (with their ``camK/PPPP`` folders if empty) and the list file.

    Warns:
        DatasetCompletenessWarning: an empty identity folder of a listed id (named); an identity
            of an unused list without images; an identity of a used list with images in one
            modality only: a training one is left out by the sampler, which pairs the modalities;
            a test one has infrared queries without a true match (not counted by the
            evaluation, which counts queries with a match only) or RGB images that are gallery
            distractors only, so the test set is smaller than the protocol's.
    """
    root_path = Path(root)
    images_of: dict[int, dict[int, int]] = defaultdict(dict)  # pid -> camera -> image count
    for (camera, pid), images in folders.items():
        images_of[pid][camera] = len(images)
    checked = [name for name in SYSU_MM01_ID_LISTS if name != "available" and name in id_lists]
    listed = {i for name in checked for i in id_lists[name]}
    empty = sorted(
        (camera, pid) for (camera, pid), images in folders.items() if not images and pid in listed
    )
    if empty:
        warn_incomplete(
            f"{len(empty)} empty identity folder(s) of listed ids: "
            f"{name_some(root_path / f'cam{c}' / f'{p:04d}' for c, p in empty)}; expected .jpg images in each"
        )
    for name in checked:
        path = id_list_path(root_path, name)
        absent = [i for i in id_lists[name] if not any(images_of.get(i, {}).values())]
        if absent:
            where = [
                f"{i} ({', '.join(f'cam{c}/{i:04d} empty' for c in sorted(images_of[i])) or 'no folder'})"
                for i in absent
            ]
            message = (
                f"{len(absent)} id(s) listed in {path} have no image in any of cam1..cam6: {name_some(where)}; "
                "expected a folder camK/<id, 4 digits>/ with images in at least one RGB and one infrared camera"
            )
            if name in used_lists:
                raise DatasetFormatError(message)
            warn_incomplete(message + f" (the {name} list is not used by this run)")
            continue
        if name not in used_lists:
            continue
        for lacking, cameras in (("RGB", SYSU_MM01_VISIBLE_CAMERAS), ("infrared", SYSU_MM01_THERMAL_CAMERAS)):
            one_modality = [i for i in id_lists[name] if not any(images_of[i].get(c, 0) for c in cameras)]
            if not one_modality:
                continue
            if name != SYSU_MM01_TEST_ID_LIST:
                effect = "the sampler leaves them out of training (it pairs the modalities of an identity)"
            elif lacking == "RGB":
                effect = "their infrared queries have no true match and are not counted by the evaluation"
            else:
                effect = "their RGB images are gallery distractors only, with no query"
            cams = "/".join(f"cam{c}" for c in cameras)
            warn_incomplete(
                f"{len(one_modality)} id(s) listed in {path} have no {lacking} image ({cams}): "
                f"{name_some(one_modality)}; {effect}. In the genuine SYSU-MM01 every listed id has both modalities"
            )


def read_rand_perm_image_counts(path: str | Path) -> dict[tuple[int, int], int]:
    """Image count per (camera, pid) that the official ``rand_perm_cam.mat`` records.

    The file's cell ``rand_perm_cam{camera}{pid}`` holds permutations of ``1..n`` over the
    sorted images of ``camK/PPPP/`` (see :mod:`rgbir_reid.evaluation.protocols`, which samples
    galleries from it), so ``n`` is the folder's image count in the genuine dataset. Empty cells
    (no folder) are left out.

    Raises:
        DatasetFormatError: the file is unreadable, lacks ``rand_perm_cam`` or is not a 6-cell
            array of cell arrays; the message names the file.
    """
    try:
        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError) as err:
        raise DatasetFormatError(f"{path}: cannot read as a MATLAB file ({err})") from err
    cams = mat.get("rand_perm_cam")
    if cams is None or cams.dtype != object or cams.size != len(SYSU_MM01_CAMERAS):
        raise DatasetFormatError(f"{path}: expected a variable 'rand_perm_cam', a cell array of 6 cameras")
    counts: dict[tuple[int, int], int] = {}
    for camera, cell in zip(SYSU_MM01_CAMERAS, cams.ravel()):
        if cell.dtype != object:
            raise DatasetFormatError(f"{path}: rand_perm_cam{{{camera}}} should be a cell array of ids")
        for pid, perm in enumerate(cell.ravel(), start=1):
            perm = np.asarray(perm)
            if perm.size:
                counts[(camera, pid)] = int(perm.shape[-1])
    return counts


def read_indoor_ids(path: str | Path) -> list[int]:
    """The ids of ``test_id_indoor.mat`` (variable ``id``), sorted.

    Raises:
        DatasetFormatError: the file is unreadable or has no ``id`` variable; names the file.
    """
    try:
        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError) as err:
        raise DatasetFormatError(f"{path}: cannot read as a MATLAB file ({err})") from err
    if "id" not in mat:
        raise DatasetFormatError(f"{path}: expected a variable 'id' (the indoor-search test ids)")
    return sorted(int(i) for i in np.asarray(mat["id"]).ravel())


def check_sysu_mm01_evaluation_files(
    root: str | Path,
    *,
    rand_perm_file: str | Path | None = None,
    indoor_id_file: str | Path | None = None,
    train_id_lists: Sequence[str] = SYSU_MM01_DEFAULT_TRAIN_ID_LISTS,
) -> None:
    """Check the official evaluation files against the images of a SYSU-MM01 root.

    Sources: ``exp/test_id.txt`` (and the training lists) of ``root``, its ``camK/PPPP/``
    folders, ``rand_perm_cam.mat`` (:func:`read_rand_perm_image_counts`) and
    ``test_id_indoor.mat`` (:func:`read_indoor_ids`), each only when given.

    Args:
        root: the dataset root (already indexed by :func:`read_sysu_mm01`).
        rand_perm_file: the dataset's ``rand_perm_cam.mat``, or None.
        indoor_id_file: ``test_id_indoor.mat``, or None.
        train_id_lists: the training lists of the run (their counts are compared too).

    Raises:
        DatasetFormatError: ``rand_perm_cam.mat`` records a different image count than the
            folder holds for a test id in an RGB camera (1, 2, 4, 5; the official sampler draws
            the gallery from those positions, and evaluation would stop on it after training),
            or ``test_id_indoor.mat`` names an id that is not in ``exp/test_id.txt`` or has no
            image in cameras 1 and 2. The message names the file and the ``camK/PPPP`` folders.

    Warns:
        DatasetCompletenessWarning: a count differs for a test id in an infrared camera (the
            queries are then not the protocol's 3803), or for a training id (training sees other
            images than the genuine dataset's).
    """
    root_path = Path(root).expanduser().resolve()
    if rand_perm_file is None and indoor_id_file is None:
        return
    folders = list_sysu_mm01_folders(root_path)
    test_ids = read_id_list(id_list_path(root_path, SYSU_MM01_TEST_ID_LIST))
    if rand_perm_file is not None:
        expected = read_rand_perm_image_counts(rand_perm_file)

        def differing(ids: Iterable[int], cameras: Sequence[int]) -> list[str]:
            out = []
            for pid in sorted(ids):
                for camera in cameras:
                    have, want = len(folders.get((camera, pid), [])), expected.get((camera, pid), 0)
                    if have != want:
                        out.append(f"cam{camera}/{pid:04d} holds {have}, expected {want}")
            return out

        gallery = differing(test_ids, SYSU_MM01_VISIBLE_CAMERAS)
        if gallery:
            raise DatasetFormatError(
                f"{rand_perm_file} records other image counts than {root_path} holds for test ids in the RGB "
                f"(gallery) cameras: {name_some(gallery)}; expected the genuine dataset's images "
                "(the official gallery sampler indexes them)"
            )
        queries = differing(test_ids, SYSU_MM01_THERMAL_CAMERAS)
        if queries:
            warn_incomplete(
                f"{rand_perm_file} records other image counts than {root_path} holds for test ids in the infrared "
                f"(query) cameras: {name_some(queries)}; the queries are not the protocol's"
            )
        train_ids = {i for name in train_id_lists for i in read_id_list(id_list_path(root_path, name))}
        training = differing(train_ids, SYSU_MM01_CAMERAS)
        if training:
            warn_incomplete(
                f"{rand_perm_file} records other image counts than {root_path} holds for training ids: "
                f"{name_some(training)}; training sees other images than the genuine dataset's"
            )
    if indoor_id_file is not None:
        indoor = read_indoor_ids(indoor_id_file)
        not_test = [i for i in indoor if i not in set(test_ids)]
        if not_test:
            raise DatasetFormatError(
                f"{indoor_id_file} names id(s) {name_some(not_test)} that are not in "
                f"{id_list_path(root_path, SYSU_MM01_TEST_ID_LIST)}; expected a subset of the test ids"
            )
        unseen = [i for i in indoor if not any(folders.get((c, i)) for c in SYSU_SEARCH_INDOOR_GALLERY)]
        if unseen:
            named = (f"{i} ({', '.join(f'cam{c}/{i:04d}' for c in SYSU_SEARCH_INDOOR_GALLERY)})" for i in unseen)
            raise DatasetFormatError(
                f"{indoor_id_file} names id(s) with no image under {root_path} in the indoor RGB cameras: "
                f"{name_some(named)}; expected the test ids seen by cameras 1 and 2"
            )


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
            training and test ids overlapping, a ``camK`` folder missing (all six exist in the
            dataset), a non-numeric identity folder, an identity of the training or test lists
            without any image (see :func:`check_sysu_mm01_ids`), or (with ``verify_images``)
            a corrupt image. The message names the path and what was expected.
        ValueError: an unknown name in ``train_id_lists``.

    Warns:
        DatasetCompletenessWarning: what the run can go on with (see
            :func:`check_sysu_mm01_ids`): empty identity folders, listed identities seen in
            one modality only, ids of an unused list without images.
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

    folders = list_sysu_mm01_folders(root_path)
    check_sysu_mm01_ids(root_path, id_lists, folders, used_lists=(*train_id_lists, SYSU_MM01_TEST_ID_LIST))

    records: list[ImageRecord] = []
    for (camera, pid), images in sorted(folders.items()):
        subset = TRAIN if pid in train_ids else TEST if pid in test_ids else None
        if subset is None:
            continue
        modality = sysu_mm01_modality(camera)
        records.extend(ImageRecord(str(image), pid, camera, modality, subset) for image in images)
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
