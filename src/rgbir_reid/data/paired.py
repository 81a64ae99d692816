"""Reader for registered visible/infrared image pairs (e.g. LLVIP).

Layout: ``root/visible/NAME.ext`` and ``root/infrared/NAME.ext`` — a pair is two files of the
same name, pixel-aligned. Used only to measure modality-conversion fidelity (a converted
visible image can be compared with the real infrared one); never for re-identification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from rgbir_reid.data.records import DatasetFormatError
from rgbir_reid.data.transforms import load_image

VISIBLE_DIR = "visible"
INFRARED_DIR = "infrared"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class ImagePair:
    """One registered pair: ``visible`` and ``infrared`` image files showing the same scene."""

    name: str
    visible: str
    infrared: str


def _images_in(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DatasetFormatError(f"paired dataset: folder {folder} not found; expected {VISIBLE_DIR}/ and {INFRARED_DIR}/")
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def read_pairs(root: str | Path) -> list[ImagePair]:
    """All pairs under ``root`` (sorted by file name).

    Raises:
        DatasetFormatError: if ``root/visible`` or ``root/infrared`` is missing, holds no images,
            or a file has no partner of the same name (the message lists the unmatched files).
    """
    root = Path(root)
    vis, ir = _images_in(root / VISIBLE_DIR), _images_in(root / INFRARED_DIR)
    only_vis, only_ir = sorted(set(vis) - set(ir)), sorted(set(ir) - set(vis))
    if only_vis or only_ir:
        parts = []
        if only_vis:
            parts.append(f"visible files without an infrared partner: {[str(vis[n]) for n in only_vis]}")
        if only_ir:
            parts.append(f"infrared files without a visible partner: {[str(ir[n]) for n in only_ir]}")
        raise DatasetFormatError(f"paired dataset {root}: " + "; ".join(parts))
    if not vis:
        raise DatasetFormatError(f"paired dataset {root}: no images ({', '.join(IMAGE_SUFFIXES)}) in {VISIBLE_DIR}/")
    return [ImagePair(Path(n).stem, str(vis[n].resolve()), str(ir[n].resolve())) for n in sorted(vis)]


def load_pairs(pairs: Sequence[ImagePair], image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize pairs to ``(visible, infrared)``, each uint8 ``[N, H, W, 3]``.

    ``image_size`` is ``(height, width)`` in pixels; both images of a pair are resized the same
    way so they stay registered.

    Raises:
        DatasetFormatError: if a file cannot be decoded (names it).
    """
    h, w = int(image_size[0]), int(image_size[1])
    if not pairs:
        empty = np.zeros((0, h, w, 3), np.uint8)
        return empty, empty.copy()
    visible = np.stack([load_image(p.visible, (h, w)) for p in pairs])
    infrared = np.stack([load_image(p.infrared, (h, w)) for p in pairs])
    return visible, infrared
