"""Sample grids of modality conversions, for eyeballing a generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rgbir_reid.io import atomic_output

COLUMNS = ("real RGB", "fake IR", "real IR", "fake RGB")
_GAP = 2  # pixels of white between tiles
_HEADER = 12  # pixels of header row holding the column titles


def save_sample_grid(
    visible: np.ndarray,
    fake_ir: np.ndarray,
    thermal: np.ndarray,
    fake_rgb: np.ndarray,
    out_png: str | Path,
) -> Path:
    """Write a PNG with one row per sample: ``real RGB | fake IR | real IR | fake RGB``.

    ``fake_ir[i]`` is the conversion of ``visible[i]`` and ``fake_rgb[i]`` that of
    ``thermal[i]`` (e.g. by :func:`rgbir_reid.conversion.convert_images`); the RGB and IR
    images of a row need not show the same scene (CycleGAN data are unpaired).

    Args:
        visible, fake_ir, thermal, fake_rgb: uint8 ``[N, H, W, 3]`` arrays of one shape, N >= 1.
        out_png: destination, written atomically.

    Raises:
        ValueError: if the arrays differ in shape or are not uint8 ``[N, H, W, 3]`` with N >= 1.
    """
    columns = (visible, fake_ir, thermal, fake_rgb)
    shape = visible.shape
    if any(c.shape != shape for c in columns) or len(shape) != 4 or shape[-1] != 3 or shape[0] == 0:
        raise ValueError(
            "save_sample_grid: expected four uint8 [N, H, W, 3] arrays of one shape, N >= 1; got "
            + ", ".join(str(c.shape) for c in columns)
        )
    if any(c.dtype != np.uint8 for c in columns):
        raise ValueError(f"save_sample_grid: expected uint8 images, got {[str(c.dtype) for c in columns]}")
    n, h, w, _ = shape
    grid = np.full((_HEADER + n * (h + _GAP), 4 * (w + _GAP), 3), 255, np.uint8)
    for i, row in enumerate(zip(*columns)):
        for j, tile in enumerate(row):
            y, x = _HEADER + i * (h + _GAP), j * (w + _GAP)
            grid[y : y + h, x : x + w] = tile
    image = Image.fromarray(grid)
    draw = ImageDraw.Draw(image)
    for j, title in enumerate(COLUMNS):
        draw.text((j * (w + _GAP) + 1, 0), title, fill=(0, 0, 0))
    with atomic_output(out_png) as tmp:
        image.save(tmp, format="PNG")
    return Path(out_png)
