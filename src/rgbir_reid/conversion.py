"""Modality conversion: the trained CycleGAN generators applied to images.

The part of the pipeline that applies conversion: converters of uint8 image batches
(:func:`make_converters`, :func:`convert_images`) and the per-trial HDF5 cache of real and
converted training images (:func:`build_cache`), and the generator file (``generator.pt``)
they come from (:func:`save_generators`, written by the CycleGAN trainer in
:mod:`rgbir_reid.training.cyclegan`, and :func:`load_generators`). Evaluation and reporting see
only the images converted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from rgbir_reid.data.cache import write_cache
from rgbir_reid.data.records import ImageRecord
from rgbir_reid.io import CheckpointError, load_checkpoint, save_torch, sha256_file
from rgbir_reid.models.cyclegan import GENERATOR_NAMES, ResnetGenerator, translate

# Version of the generator file layout (see save_generators).
GENERATOR_FORMAT = 1

# Conversion directions and the generator that performs each.
DIRECTIONS = {"rgb2ir": "G_rgb2ir", "ir2rgb": "G_ir2rgb"}


def save_generators(path: str | Path, generators: Mapping[str, nn.Module], *, extra: Mapping | None = None) -> Path:
    """Write both generators to ``path`` atomically, with what is needed to rebuild them.

    Layout (plain dict; ``torch.load(weights_only=True)`` loads it): ``format`` (int),
    ``G_rgb2ir`` and ``G_ir2rgb`` (state dicts, CPU tensors), ``ngf``, ``n_blocks`` (int),
    plus the items of ``extra`` (e.g. ``settings``, ``iterations``, ``seed``). Same generators,
    same bytes (:func:`rgbir_reid.io.save_torch`), so a cache naming the file's sha256 is
    rebuilt only when the generators change.
    """
    g = generators["G_rgb2ir"]
    payload = {
        "format": GENERATOR_FORMAT,
        "ngf": int(g.ngf),
        "n_blocks": int(g.n_blocks),
        **{name: {k: v.detach().cpu() for k, v in generators[name].state_dict().items()} for name in GENERATOR_NAMES},
        **dict(extra or {}),
    }
    return save_torch(payload, path)


def load_generators(path: str | Path, device: torch.device | str = "cpu") -> dict[str, nn.Module]:
    """Rebuild ``{"G_rgb2ir": ..., "G_ir2rgb": ...}`` from a ``generator.pt``, in eval mode on ``device``.

    Raises:
        CheckpointError: (a ``ValueError``) the file is missing, truncated, not a torch file, not
            a generator file of this format, or its weights do not fit the generator its
            ``ngf`` / ``n_blocks`` describe; the message names the file.
    """
    state = load_checkpoint(path, required=("format", "ngf", "n_blocks", *GENERATOR_NAMES))
    if state["format"] != GENERATOR_FORMAT:
        raise CheckpointError(f"{path} is a generator file of format {state['format']!r}; this version reads "
                              f"format {GENERATOR_FORMAT} (retrain the CycleGAN)")
    out = {}
    for name in GENERATOR_NAMES:
        g = ResnetGenerator(int(state["ngf"]), int(state["n_blocks"]))
        try:
            g.load_state_dict(state[name])
        except (RuntimeError, TypeError, AttributeError) as e:  # wrong shapes or keys, or not a state dict
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{path}: its {name} weights do not fit a generator of ngf {state['ngf']}, "
                                  f"{state['n_blocks']} residual blocks: {detail}") from None
        out[name] = g.to(device).eval()
    return out

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


