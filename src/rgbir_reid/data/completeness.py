"""Completeness of a dataset copy against its own bookkeeping: warnings the run can go on with.

The readers (:mod:`rgbir_reid.data.sysu_mm01`, :mod:`rgbir_reid.data.regdb`) compare a root
with what its id lists, idx files and evaluation files imply. What makes the run meaningless
(a listed identity with no image, an idx line naming a missing file, a camera folder missing
altogether, an evaluation file naming images that are not there) raises
:class:`~rgbir_reid.data.records.DatasetFormatError`. What the run can honestly go on with
(an empty identity folder, a test identity seen in one modality only, image counts that differ
from the ones the dataset fixes) is a :class:`DatasetCompletenessWarning`, issued with
:func:`warnings.warn` so that the readers keep returning plain records. The ``index_dataset``
stage catches them (:func:`capture_completeness_warnings`), logs them and writes them beside
the manifest (:func:`write_warnings_file`, ``results/{dataset}/index_warnings.txt``) for the
report.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from rgbir_reid.io import atomic_output

# How many names a message lists before it says "and N more".
MAX_NAMED = 10


class DatasetCompletenessWarning(UserWarning):
    """A dataset copy lacks something its bookkeeping implies, but the run can go on.

    The message names the file or folder and what was expected, like a DatasetFormatError.
    """


def warn_incomplete(message: str) -> None:
    """Issue ``message`` as a :class:`DatasetCompletenessWarning` (one line: newlines are folded)."""
    warnings.warn(" ".join(message.split("\n")), DatasetCompletenessWarning, stacklevel=3)


def name_some(items: Iterable[object], limit: int = MAX_NAMED) -> str:
    """``"a, b, c"``, or the first ``limit`` items and ``"... and N more"``; for messages."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} ... and {len(items) - limit} more"


@contextmanager
def capture_completeness_warnings() -> Iterator[list[str]]:
    """Collect the messages of every :class:`DatasetCompletenessWarning` issued inside the block.

    Yields:
        a list that holds the messages, in the order issued, once the block has run (repeated
        messages are kept: the ``"default"`` filter would show each only once per place).
        Other warnings are issued again after the block, unchanged.
    """
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    for w in caught:
        if issubclass(w.category, DatasetCompletenessWarning):
            messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def write_warnings_file(messages: Iterable[str], path: str | Path) -> None:
    """Write one message per line (an empty file when there is none), atomically.

    Format of ``results/{dataset}/index_warnings.txt``: UTF-8 text, one warning per line, no
    header; a message's own newlines are folded into spaces so that a line is a warning.
    """
    lines = [" ".join(m.split()) for m in messages]
    with atomic_output(path) as tmp:
        Path(tmp).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def read_warnings_file(path: str | Path) -> list[str]:
    """The warnings written by :func:`write_warnings_file` (``[]`` for an empty file)."""
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
