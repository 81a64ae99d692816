"""Completeness warnings: caught apart from other warnings, written one per line."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from rgbir_reid.data.completeness import (
    DatasetCompletenessWarning,
    capture_completeness_warnings,
    name_some,
    read_warnings_file,
    warn_incomplete,
    write_warnings_file,
)


def test_capture_keeps_repeats_and_passes_other_warnings_on():
    with pytest.warns(DeprecationWarning, match="unrelated"):
        with capture_completeness_warnings() as messages:
            for _ in range(2):
                warn_incomplete("cam2/0001 is empty")  # same place twice: both kept
            warnings.warn("unrelated", DeprecationWarning)
            assert messages == []  # filled once the block has run
    assert messages == ["cam2/0001 is empty", "cam2/0001 is empty"]


def test_warnings_file_one_line_each_and_empty_when_none(tmp_path: Path):
    path = tmp_path / "results" / "sysu" / "index_warnings.txt"
    write_warnings_file([], path)
    assert path.read_text() == "" and read_warnings_file(path) == []
    write_warnings_file(["first\nfolded", "second"], path)
    assert path.read_text() == "first folded\nsecond\n"
    assert read_warnings_file(path) == ["first folded", "second"]


def test_warning_message_is_one_line():
    with pytest.warns(DatasetCompletenessWarning) as caught:
        warn_incomplete("a\nb")
    assert str(caught[0].message) == "a b"


def test_name_some_says_how_many_it_left_out():
    assert name_some([1, 2, 3]) == "1, 2, 3"
    assert name_some(range(1, 13)) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ... and 2 more"
