"""Sample grids of CycleGAN translations, for eyeballing a generator."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from rgbir_reid.io import atomic_output
from rgbir_reid.models.cyclegan import translate

COLUMNS = ("real RGB", "fake IR", "real IR", "fake RGB")
_GAP = 2  # pixels of white between tiles
_HEADER = 12  # pixels of header row holding the column titles


def save_sample_grid(
    generators_or_path: Mapping[str, nn.Module] | str | Path,
    visible: np.ndarray,
    thermal: np.ndarray,
    out_png: str | Path,
    *,
    device: torch.device | str = "cpu",
) -> Path:
    """Write a PNG with one row per sample: ``real RGB | fake IR | real IR | fake RGB``.

    ``fake IR = G_rgb2ir(real RGB)`` and ``fake RGB = G_ir2rgb(real IR)`` of the same row; the
    RGB and IR images of a row need not show the same scene (CycleGAN data are unpaired).

    Args:
        generators_or_path: ``{"G_rgb2ir": ..., "G_ir2rgb": ...}`` (as returned by
            :func:`rgbir_reid.training.cyclegan.load_generators`) or a ``generator.pt`` path.
        visible: uint8 ``[N, H, W, 3]`` real visible images.
        thermal: uint8 ``[N, H, W, 3]`` real thermal images, same shape as ``visible``.
        out_png: destination, written atomically.
        device: where the generators run.

    Raises:
        ValueError: if the two arrays differ in shape or are not uint8 ``[N, H, W, 3]`` with N >= 1.
    """
    if visible.shape != thermal.shape or visible.ndim != 4 or visible.shape[-1] != 3 or len(visible) == 0:
        raise ValueError(f"save_sample_grid: expected two uint8 [N, H, W, 3] arrays of one shape, N >= 1; got {visible.shape} and {thermal.shape}")
    if visible.dtype != np.uint8 or thermal.dtype != np.uint8:
        raise ValueError(f"save_sample_grid: expected uint8 images, got {visible.dtype} and {thermal.dtype}")
    if isinstance(generators_or_path, (str, Path)):
        from rgbir_reid.training.cyclegan import load_generators  # training imports this module

        generators = load_generators(generators_or_path, device)
    else:
        generators = generators_or_path
    fake_ir = translate(generators["G_rgb2ir"], visible, device)
    fake_rgb = translate(generators["G_ir2rgb"], thermal, device)
    n, h, w, _ = visible.shape
    grid = np.full((_HEADER + n * (h + _GAP), 4 * (w + _GAP), 3), 255, np.uint8)
    for i, row in enumerate(zip(visible, fake_ir, thermal, fake_rgb)):
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
