"""Reader of the native RegDB layout.

RegDB (Nguyen et al., "Person Recognition System Based on a Combination of Body Images from
Visible Light and Thermal Cameras", Sensors 2017) holds 412 identities, each with 10 visible
and 10 thermal images taken by one pair of co-located cameras::

    <root>/Visible/<pid>/*.bmp
    <root>/Thermal/<pid>/*.bmp
    <root>/idx/{train,test}_{visible,thermal}_{1..10}.txt

Each idx file has one line per image, ``<path relative to root> <label>``; the labels are
re-numbered 0..205 within each trial, so the identity of a record is the ``<pid>`` folder
number of its path, never the label. The 10 trials are 10 random halvings of the
identities into 206 training and 206 test ids (the protocol of Ye et al., used by CE²L).

Camera numbers: visible = 1, thermal = 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from rgbir_reid.data.completeness import name_some, warn_incomplete
from rgbir_reid.data.layout import NUMBER, image_files, numbered_subdirs, verify_images_of
from rgbir_reid.data.records import TEST, THERMAL, TRAIN, VISIBLE, DatasetFormatError, ImageRecord

REGDB_VISIBLE_CAMERA = 1
REGDB_THERMAL_CAMERA = 2
REGDB_CAMERA = {VISIBLE: REGDB_VISIBLE_CAMERA, THERMAL: REGDB_THERMAL_CAMERA}
REGDB_FOLDER = {VISIBLE: "Visible", THERMAL: "Thermal"}
REGDB_TRIALS = tuple(range(1, 11))
IMAGE_SUFFIXES = (".bmp",)
# What the dataset fixes: identity folders 1..412 in each modality, 10 images in each folder.
REGDB_IDENTITIES = tuple(range(1, 413))
REGDB_IMAGES_PER_IDENTITY = 10


def check_regdb_trial(trial: int) -> None:
    """Raise ``ValueError`` naming ``trial`` unless it is one of 1..10."""
    if trial not in REGDB_TRIALS:
        raise ValueError(f"RegDB trial must be one of {REGDB_TRIALS[0]}..{REGDB_TRIALS[-1]}, got trial {trial!r}")


def regdb_idx_path(root: str | Path, subset: str, modality: str, trial: int) -> Path:
    """``<root>/idx/<subset>_<modality>_<trial>.txt`` (subset ``train``/``test``, modality ``visible``/``thermal``)."""
    return Path(root) / "idx" / f"{subset}_{modality}_{trial}.txt"


def _check_root(root: str | Path) -> Path:
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        raise DatasetFormatError(f"RegDB root not found: {root_path} (expected a folder with Visible/, Thermal/, idx/)")
    root_path = root_path.resolve()
    for folder in (*REGDB_FOLDER.values(), "idx"):
        if not (root_path / folder).is_dir():
            raise DatasetFormatError(
                f"RegDB root {root_path} has no {folder}/ folder (expected Visible/, Thermal/, idx/)"
            )
    return root_path


def read_regdb_idx(root: str | Path, subset: str, modality: str, trial: int) -> list[tuple[str, int, int]]:
    """Parse one idx file of a trial.

    Args:
        root: RegDB root (absolute, resolved: paths are joined to it as they are).
        subset: ``"train"`` or ``"test"``.
        modality: ``"visible"`` or ``"thermal"``.
        trial: 1..10.

    Returns:
        ``(absolute image path, pid, label)`` per line, in file order; pid is the folder number.

    Raises:
        DatasetFormatError: naming the idx file and line, if the file is missing, a line is not
            ``<relative path> <label>``, the path is not ``<Visible|Thermal>/<pid>/<file>`` of
            this modality, a path is listed twice, or one folder has two labels (or two folders
            one label) in the file; or, after the whole file is read, listed images that do not
            exist (all named, with their lines).
    """
    path = regdb_idx_path(root, subset, modality, trial)
    if not path.is_file():
        raise DatasetFormatError(f"RegDB idx file not found: {path} (expected lines '<relative path> <label>')")
    folder = REGDB_FOLDER[modality]
    entries: list[tuple[str, int, int]] = []
    label_of_pid: dict[int, int] = {}
    pid_of_label: dict[int, int] = {}
    seen: set[str] = set()
    missing: list[str] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_no}"
        tokens = line.split()
        if len(tokens) != 2 or not NUMBER.fullmatch(tokens[1]):
            raise DatasetFormatError(f"{where}: expected '<relative path> <label>', got {line.strip()!r}")
        rel, label = tokens[0], int(tokens[1])
        parts = Path(rel).parts
        if len(parts) != 3 or parts[0] != folder or not NUMBER.fullmatch(parts[1]):
            raise DatasetFormatError(f"{where}: expected a path '{folder}/<pid>/<file>', got {rel!r}")
        pid = int(parts[1])
        image = os.path.normpath(os.path.join(root, rel))
        if not os.path.isfile(image):
            missing.append(f"{where}: image {image} does not exist")
            continue
        if image in seen:
            raise DatasetFormatError(f"{where}: image {rel} is listed twice")
        seen.add(image)
        if label_of_pid.setdefault(pid, label) != label:
            raise DatasetFormatError(
                f"{where}: folder {folder}/{parts[1]} has label {label} here but {label_of_pid[pid]} earlier; "
                "expected one label per identity folder"
            )
        if pid_of_label.setdefault(label, pid) != pid:
            raise DatasetFormatError(
                f"{where}: label {label} is given to folder {parts[1]} here "
                f"but to folder {pid_of_label[label]} earlier; "
                "expected one identity folder per label"
            )
        entries.append((image, pid, label))
    if missing:
        raise DatasetFormatError(
            f"{len(missing)} image(s) listed in {path.name} do not exist: {name_some(missing)}; "
            "expected every listed file under the root"
        )
    return entries


def read_regdb(root: str | Path, trial: int, *, verify_images: bool = False) -> list[ImageRecord]:
    """Records of one RegDB trial, from its four idx files.

    Args:
        root: RegDB root folder.
        trial: 1..10.
        verify_images: decode every listed image once (off by default: :func:`index_regdb`
            already checks every image of the dataset).

    Returns:
        one record per idx line, ``subset`` ``"train"`` or ``"test"``, absolute paths, sorted by
        (camera, pid, path).

    Raises:
        ValueError: ``trial`` outside 1..10.
        DatasetFormatError: layout or idx problems (see :func:`read_regdb_idx`), or an identity
            listed for both training and test; the message names the idx file.
    """
    check_regdb_trial(trial)
    root_path = _check_root(root)
    records: list[ImageRecord] = []
    pids_of: dict[str, set[int]] = {TRAIN: set(), TEST: set()}
    for subset in (TRAIN, TEST):
        for modality in (VISIBLE, THERMAL):
            for image, pid, _label in read_regdb_idx(root_path, subset, modality, trial):
                records.append(ImageRecord(image, pid, REGDB_CAMERA[modality], modality, subset))
                pids_of[subset].add(pid)
    overlap = sorted(pids_of[TRAIN] & pids_of[TEST])
    if overlap:
        raise DatasetFormatError(
            f"RegDB trial {trial}: identity folders {overlap[:10]} are listed in both "
            f"{regdb_idx_path(root_path, TRAIN, '*', trial)} and {regdb_idx_path(root_path, TEST, '*', trial)}; "
            "expected disjoint training and test identities"
        )
    records.sort(key=lambda r: (r.camera, r.pid, r.path))
    if verify_images:
        verify_images_of(records)
    return records


def check_regdb_counts(modality_dir: Path, counts: Mapping[int, int]) -> None:
    """Compare one modality folder with what RegDB fixes: folders 1..412, 10 images each.

    Args:
        modality_dir: ``<root>/Visible`` or ``<root>/Thermal`` (for messages).
        counts: image count per identity folder found there.

    Warns:
        DatasetCompletenessWarning: identity folders of 1..412 missing (named), folders outside
            1..412 (named), folders with another image count than 10 (named with their count).
            Not errors: the idx files name every image a trial reads and are checked on their
            own (:func:`read_regdb_idx`), so an incomplete copy still runs what it lists.
    """
    missing = [pid for pid in REGDB_IDENTITIES if pid not in counts]
    if missing:
        warn_incomplete(
            f"{modality_dir} lacks {len(missing)} of the dataset's {len(REGDB_IDENTITIES)} identity folders: "
            f"{name_some(missing)}; expected folders {REGDB_IDENTITIES[0]}..{REGDB_IDENTITIES[-1]}"
        )
    extra = [pid for pid in sorted(counts) if pid not in set(REGDB_IDENTITIES)]
    if extra:
        warn_incomplete(
            f"{modality_dir} holds identity folders outside the dataset's "
            f"{REGDB_IDENTITIES[0]}..{REGDB_IDENTITIES[-1]}: {name_some(extra)}"
        )
    odd = [f"{pid} ({n})" for pid, n in sorted(counts.items()) if n != REGDB_IMAGES_PER_IDENTITY]
    if odd:
        warn_incomplete(
            f"{len(odd)} identity folder(s) of {modality_dir} do not hold {REGDB_IMAGES_PER_IDENTITY} .bmp images "
            f"(folder (count)): {name_some(odd)}; the dataset has {REGDB_IMAGES_PER_IDENTITY} per identity and modality"
        )


def index_regdb(root: str | Path, *, verify_images: bool = True) -> list[ImageRecord]:
    """Every image of a RegDB root (the manifest), ``subset=""`` since it depends on the trial.

    The idx files of all 10 trials are parsed too, so that a broken one fails here, naming
    its file and line, rather than in a later job.

    Args:
        root: RegDB root folder.
        verify_images: decode every image once, naming the first corrupt file.

    Returns:
        one record per ``Visible/<pid>/*.bmp`` and ``Thermal/<pid>/*.bmp``, absolute paths,
        sorted by (camera, pid, file name).

    Raises:
        DatasetFormatError: root, ``Visible/``, ``Thermal/`` or ``idx/`` missing, a
            non-numeric identity folder, no image at all, an idx problem (a listed image that
            does not exist included, see :func:`read_regdb_idx`), or a corrupt image.

    Warns:
        DatasetCompletenessWarning: identity folders or image counts other than the dataset's
            (see :func:`check_regdb_counts`); the idx files decide what is read, so the run goes
            on, but not on the published dataset.
    """
    root_path = _check_root(root)
    records: list[ImageRecord] = []
    for modality in (VISIBLE, THERMAL):
        modality_dir = root_path / REGDB_FOLDER[modality]
        folders = numbered_subdirs(modality_dir, "identity folders named by a number")
        images_of = {pid: image_files(pid_dir, IMAGE_SUFFIXES) for pid, pid_dir in folders}
        check_regdb_counts(modality_dir, {pid: len(images) for pid, images in images_of.items()})
        for pid, images in images_of.items():
            records.extend(ImageRecord(str(image), pid, REGDB_CAMERA[modality], modality, "") for image in images)
    if not records:
        raise DatasetFormatError(f"RegDB root {root_path} holds no .bmp image under Visible/<pid>/ or Thermal/<pid>/")
    records.sort(key=lambda r: (r.camera, r.pid, r.path))
    for trial in REGDB_TRIALS:
        read_regdb(root_path, trial)
    if verify_images:
        verify_images_of(records)
    return records


def regdb_trial_split(root: str | Path, records: Sequence[ImageRecord], trial: int) -> list[ImageRecord]:
    """The manifest records of one trial, with ``subset`` set from the trial's idx files.

    Args:
        root: RegDB root the manifest was made from.
        records: the manifest (:func:`index_regdb`), any subset values.
        trial: 1..10.

    Returns:
        the records listed by the trial's idx files, in manifest order, ``subset``
        ``"train"``/``"test"``; records not listed by the trial are dropped.

    Raises:
        ValueError: ``trial`` outside 1..10.
        DatasetFormatError: an image listed by the trial is missing from the manifest (stale
            manifest or another root); the message names the image and the idx file.
    """
    trial_records = read_regdb(root, trial)
    subset_of = {r.path: r.subset for r in trial_records}
    # The idx paths are normalised (read_regdb_idx), so the manifest's are compared normalised.
    manifest_paths = [os.path.normpath(r.path) for r in records]
    in_manifest = set(manifest_paths)
    for r in trial_records:
        if r.path not in in_manifest:
            idx = regdb_idx_path(Path(root).expanduser().resolve(), r.subset, r.modality, trial)
            raise DatasetFormatError(
                f"image {r.path}, listed in {idx}, is not in the manifest; expected a manifest made by "
                "index_dataset('regdb', ...) from the same root"
            )
    out = []
    for r, path in zip(records, manifest_paths):
        subset = subset_of.get(path)
        if subset is not None:
            out.append(ImageRecord(r.path, r.pid, r.camera, r.modality, subset))
    return out
