"""Modality conversion: the trained CycleGAN generators applied to images.

The part of the pipeline that applies conversion: converters of uint8 image batches
(:func:`make_converters`, :func:`convert_images`) and the per-trial HDF5 cache of real and
converted training images (:func:`build_cache`). The generator file (``generator.pt``) is the
CycleGAN trainer's output, written and read by :mod:`rgbir_reid.training.cyclegan`
(``save_generators`` / ``load_generators``, importable from here too), as ``model.pt`` is the
re-ID trainer's; evaluation and reporting see only the images converted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from rgbir_reid.data.cache import write_cache
from rgbir_reid.data.records import ImageRecord
from rgbir_reid.io import sha256_file
from rgbir_reid.models.cyclegan import translate
from rgbir_reid.training.cyclegan import GENERATOR_FORMAT, load_generators, save_generators

__all__ = ["DIRECTIONS", "GENERATOR_FORMAT", "build_cache", "convert_images", "load_generators",
           "make_converters", "save_generators"]

# Conversion directions and the generator that performs each.
DIRECTIONS = {"rgb2ir": "G_rgb2ir", "ir2rgb": "G_ir2rgb"}


def make_converters(
    generator_path: str | Path,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Converters for :func:`rgbir_reid.data.cache.write_cache`: ``{"rgb2ir": f, "ir2rgb": g}``.

    Each maps uint8 ``[B, H, W, 3]`` to uint8 ``[B, H, W, 3]`` in the other modality, at the
    size given (the generators are fully convolutional; sides not divisible by 4 are padded and
    cropped back), running ``batch_size`` images per forward pass in inference mode.
    """
    gens = load_generators(generator_path, device)

    def converter(name: str) -> Callable[[np.ndarray], np.ndarray]:
        return lambda images: translate(gens[name], images, device, batch_size)

    return {direction: converter(name) for direction, name in DIRECTIONS.items()}


def build_cache(
    out_path: str | Path,
    records: Sequence[ImageRecord],
    image_size: tuple[int, int],
    generator_path: str | Path | None,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    config_hash: str = "",
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write the trial's HDF5 cache of real + converted images (``write_cache`` + :func:`make_converters`).

    The cache's ``generator_sha256`` attribute is the sha256 of ``generator_path``'s bytes, so a
    different generator is visible in the file (and ``cache_is_current`` turns false).
    ``generator_path=None`` stores real images only (no method of the run uses conversion).
    """
    return write_cache(
        out_path,
        records,
        image_size,
        converters=make_converters(generator_path, device, batch_size) if generator_path else None,
        batch_size=batch_size,
        generator_sha256=sha256_file(generator_path) if generator_path else "",
        config_hash=config_hash,
        progress=progress,
    )


def convert_images(
    generator_path: str | Path,
    images: np.ndarray,
    direction: str,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> np.ndarray:
    """Convert uint8 ``[N, H, W, 3]`` images with one generator of a ``generator.pt``.

    Args:
        direction: ``"rgb2ir"`` (visible -> infrared) or ``"ir2rgb"``.

    Returns:
        uint8 ``[N, H, W, 3]`` images in the other modality.

    Raises:
        ValueError: unknown direction.
        CheckpointError: (a ``ValueError``) the file is missing, damaged or not a generator
            file (names it; see :func:`load_generators`).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
    return make_converters(generator_path, device, batch_size)[direction](images)


