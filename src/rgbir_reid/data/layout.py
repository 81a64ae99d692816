"""Folder-listing and image checks shared by the native-layout readers (SYSU-MM01, RegDB).

Both layouts keep one folder per identity, named by its number, holding that identity's
image files; both readers decode every listed image once so that a corrupt file fails
indexing, naming the file, rather than a later training job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from PIL import Image, UnidentifiedImageError

from rgbir_reid.data.records import DatasetFormatError, ImageRecord

# A folder name or list entry made of decimal digits only (``0001``, ``12``).
NUMBER = re.compile(r"^[0-9]+$")


def numbered_subdirs(folder: Path, expected: str) -> list[tuple[int, Path]]:
    """Sub-folders of ``folder`` named by a number, as ``(number, path)`` sorted by number.

    Files beside them are skipped (stray thumbnails are not part of a layout).

    Args:
        folder: the folder to list.
        expected: what the error message says was expected, e.g.
            ``"identity folders named by a number such as '0001'"``.

    Raises:
        DatasetFormatError: a sub-folder whose name is not a number; the message names it
            (``unexpected folder <path>: expected <expected>``).
    """
    out = []
    for child in folder.iterdir():
        if not child.is_dir():
            continue
        if not NUMBER.fullmatch(child.name):
            raise DatasetFormatError(f"unexpected folder {child}: expected {expected}")
        out.append((int(child.name), child))
    return sorted(out)


def image_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of ``folder`` whose lower-cased suffix is in ``suffixes`` (e.g. ``(".bmp",)``), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def verify_image_file(path: str | Path) -> None:
    """Check that an image file decodes, cheaply.

    ``PIL.Image.verify`` does not read JPEG entropy data (a truncated JPEG passes it), so
    the image is decoded for real; for JPEG the decoder is asked for its smallest DCT
    scale (``draft``), which still reads the whole stream but skips most of the work
    (measured: 1.8 ms against 2.9 ms for a full decode of a 250x600 noise JPEG, the worst
    case; person crops of the real datasets take well under 1 ms).

    Raises:
        DatasetFormatError: if the file is missing, unreadable, not an image or truncated;
            the message names the file.
    """
    try:
        with Image.open(path) as im:
            im.draft(im.mode, (1, 1))
            im.load()
    except FileNotFoundError as e:
        raise DatasetFormatError(f"image file not found: {path}") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetFormatError(f"corrupt image {path}: {e}") from e


def verify_images_of(records: Iterable[ImageRecord]) -> None:
    """Run :func:`verify_image_file` on every record's path (stops at the first bad file)."""
    for record in records:
        verify_image_file(record.path)
