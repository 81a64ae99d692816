"""Dataset formats: one registry entry per native layout, and per-trial splits.

Two workflow stages call this module:

* ``index_dataset`` -> ``results/{dataset}/manifest.csv``: every image of a root, one
  :class:`~rgbir_reid.data.records.ImageRecord` each (SYSU-MM01 / demo: subset from the
  id lists; RegDB: subset ``""``, since it depends on the trial).
* ``make_splits`` -> ``results/{dataset}/splits/trial{t}.csv``: the manifest records of one
  trial with subset ``"train"``/``"test"``.

A trial is one train/test division with its own models: SYSU-MM01 (and the demo, written
in its layout) has one (trial 1; its 10 random gallery draws are an evaluation matter),
RegDB has 10 (trials 1..10, from its idx files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from rgbir_reid.data.records import ImageRecord
from rgbir_reid.data.regdb import REGDB_TRIALS, index_regdb, regdb_trial_split
from rgbir_reid.data.sysu_mm01 import SYSU_MM01_TRIALS, read_sysu_mm01, sysu_mm01_trial_split


@dataclass(frozen=True)
class DatasetFormat:
    """How to read one native layout.

    Attributes:
        index: ``(root, **options) -> records`` listing every image of the dataset.
        trial_split: ``(root, manifest records, trial) -> records`` of one trial.
        trials: the valid trial numbers.
        options: keyword options ``index`` accepts (checked by :func:`index_dataset`).
    """

    index: Callable[..., list[ImageRecord]]
    trial_split: Callable[[str | Path, Sequence[ImageRecord], int], list[ImageRecord]]
    trials: tuple[int, ...]
    options: tuple[str, ...]


_SYSU_LAYOUT = DatasetFormat(
    index=read_sysu_mm01,
    trial_split=sysu_mm01_trial_split,
    trials=SYSU_MM01_TRIALS,
    options=("train_id_lists", "verify_images"),
)

DATASET_FORMATS: dict[str, DatasetFormat] = {
    "sysu_mm01": _SYSU_LAYOUT,
    "regdb": DatasetFormat(
        index=index_regdb,
        trial_split=regdb_trial_split,
        trials=REGDB_TRIALS,
        options=("verify_images",),
    ),
    # The demo generator (rgbir_reid.data.demo.generate_demo) writes the SYSU-MM01 layout.
    "demo": _SYSU_LAYOUT,
}


def get_format(name: str) -> DatasetFormat:
    """The registry entry of a format name.

    Raises:
        ValueError: unknown name; the message lists the valid names.
    """
    try:
        return DATASET_FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset format {name!r}; valid formats: {sorted(DATASET_FORMATS)}") from None


def index_dataset(format: str, root: str | Path, **options: object) -> list[ImageRecord]:
    """Every image of a dataset root (the manifest).

    Args:
        format: ``"sysu_mm01"``, ``"regdb"`` or ``"demo"`` (a root written by
            :func:`rgbir_reid.data.demo.generate_demo`, read as SYSU-MM01).
        root: dataset folder in the format's native layout.
        **options: per format —
            ``sysu_mm01``/``demo``: ``train_id_lists`` (default ``["train", "val"]``),
            ``verify_images`` (default ``True``); ``regdb``: ``verify_images`` (default ``True``).

    Returns:
        records with absolute paths, sorted by (camera, pid, file name); subset from the id
        lists (SYSU-MM01, demo) or ``""`` (RegDB).

    Raises:
        ValueError: unknown format (valid ones listed) or option (valid ones listed).
        DatasetFormatError: the root does not hold the layout; the message names the path.
    """
    fmt = get_format(format)
    unknown = sorted(set(options) - set(fmt.options))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for dataset format {format!r}; valid options: {list(fmt.options)}"
        )
    return fmt.index(root, **options)


def make_trial_split(format: str, root: str | Path, records: Sequence[ImageRecord], trial: int) -> list[ImageRecord]:
    """The manifest records of one trial, subset ``"train"`` or ``"test"``.

    Args:
        format: as for :func:`index_dataset`.
        root: the dataset root the manifest was made from (RegDB reads its idx files).
        records: the manifest from :func:`index_dataset` (e.g. read back from manifest.csv).
        trial: one of :func:`trials_of` ``(format)``.

    Raises:
        ValueError: unknown format, or ``trial`` out of range (the message names it).
        DatasetFormatError: the manifest and the root disagree; the message names the file.
    """
    fmt = get_format(format)
    if trial not in fmt.trials:
        raise ValueError(f"dataset format {format!r} has trials {list(fmt.trials)}, got trial {trial!r}")
    return fmt.trial_split(root, records, trial)


def trials_of(format: str) -> list[int]:
    """Trial numbers of a format: ``[1]`` for SYSU-MM01 and the demo, ``[1, ..., 10]`` for RegDB."""
    return list(get_format(format).trials)
