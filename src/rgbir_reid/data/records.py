"""One typed record per image, shared by every dataset reader.

A manifest (``results/{dataset}/manifest.csv``) and a split
(``results/{dataset}/splits/trial{t}.csv``) are tables of these records with the
columns ``path, pid, camera, modality, subset``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable

import pandas as pd

from rgbir_reid.io import atomic_output

VISIBLE = "visible"
THERMAL = "thermal"
MODALITIES = (VISIBLE, THERMAL)
# Integer codes used in HDF5 files and tensors: 0 = visible (RGB), 1 = thermal (IR).
MODALITY_CODE = {VISIBLE: 0, THERMAL: 1}
# Kinds of training-cache rows: a real image, or a CycleGAN conversion of one.
KIND_REAL = 0
KIND_CONVERTED = 1
# The training sets a method can draw on, by (kind, code of the modality the pixels show).
# A converted_thermal row is an RGB image converted RGB->IR, so its pixels are thermal.
TRAIN_SETS: dict[str, tuple[int, int]] = {
    "real_visible": (KIND_REAL, MODALITY_CODE[VISIBLE]),
    "real_thermal": (KIND_REAL, MODALITY_CODE[THERMAL]),
    "converted_thermal": (KIND_CONVERTED, MODALITY_CODE[THERMAL]),
    "converted_visible": (KIND_CONVERTED, MODALITY_CODE[VISIBLE]),
}
REAL_SETS = ("real_visible", "real_thermal")
CONVERTED_SETS = ("converted_thermal", "converted_visible")

TRAIN = "train"
TEST = "test"


class DatasetFormatError(ValueError):
    """A dataset root does not hold the layout its format promises.

    The message always names the offending file or folder and what was expected.
    """


@dataclass(frozen=True)
class ImageRecord:
    """One image of a re-ID dataset.

    Attributes:
        path: absolute path of the image file.
        pid: identity label as the dataset numbers it (SYSU-MM01: folder number; RegDB: folder number).
        camera: camera number as the dataset numbers it (SYSU-MM01: 1..6; RegDB: 1 visible, 2 thermal).
        modality: ``"visible"`` (RGB) or ``"thermal"`` (infrared).
        subset: ``"train"`` or ``"test"`` for the trial the record belongs to, ``""`` when unassigned.
    """

    path: str
    pid: int
    camera: int
    modality: str
    subset: str = ""

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r} for {self.path}")


COLUMNS = [f.name for f in fields(ImageRecord)]


def records_to_frame(records: Iterable[ImageRecord]) -> pd.DataFrame:
    """Table of records with the columns ``path, pid, camera, modality, subset``."""
    return pd.DataFrame([asdict(r) for r in records], columns=COLUMNS)


def frame_to_records(frame: pd.DataFrame) -> list[ImageRecord]:
    """Inverse of :func:`records_to_frame`.

    Raises:
        DatasetFormatError: if a column is missing.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetFormatError(f"record table lacks columns {missing}; expected {COLUMNS}")
    subset = frame["subset"].fillna("").astype(str)
    return [
        ImageRecord(str(p), int(i), int(c), str(m), str(s))
        for p, i, c, m, s in zip(frame["path"], frame["pid"], frame["camera"], frame["modality"], subset)
    ]


def read_records_csv(path: str | Path) -> list[ImageRecord]:
    """Read a manifest or split CSV written by :func:`write_records_csv`."""
    return frame_to_records(pd.read_csv(path, keep_default_na=False))


def write_records_csv(records: Iterable[ImageRecord], path: str | Path) -> None:
    """Write records atomically (temporary name, then rename)."""
    with atomic_output(path) as tmp:
        records_to_frame(records).to_csv(tmp, index=False)
