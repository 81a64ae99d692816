"""Hand-crafted descriptors for the CE²L table's baselines: HOG, LOMO and MLBP (no training, CPU).

Each descriptor maps ``uint8 [N, H, W, 3]`` RGB images (infrared images replicated to three
channels) to ``float32 [N, D]`` features compared by Euclidean distance, as in the table
(reference doc ``aligngan-and-baselines.md`` §4). Images must already have the descriptor's
input size (:func:`input_size`); resizing belongs to the caller, with the project's image
loader.

=========  ==================  =========  =====================================================
name       input (H x W)       D          source
=========  ==================  =========  =====================================================
``hog``    128 x 64            3,780      Dalal & Triggs 2005 via scikit-image (:mod:`.hog`)
``lomo``   128 x 48            26,960     Liao et al. 2015, our implementation (:mod:`.lomo`)
``mlbp``   128 x 64            5,664      multi-scale uniform LBP via scikit-image (:mod:`.mlbp`)
=========  ==================  =========  =====================================================
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from rgbir_reid.descriptors import hog, lomo, mlbp

DESCRIPTORS: dict[str, Callable[..., np.ndarray]] = {
    "hog": hog.hog,
    "lomo": lomo.lomo,
    "mlbp": mlbp.mlbp,
}

INPUT_SIZES: dict[str, tuple[int, int]] = {
    "hog": hog.INPUT_SIZE,
    "lomo": lomo.INPUT_SIZE,
    "mlbp": mlbp.INPUT_SIZE,
}


def _check_name(name: str) -> None:
    if name not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {name!r}; valid names: {', '.join(sorted(DESCRIPTORS))}")


def input_size(name: str) -> tuple[int, int]:
    """``(height, width)`` in pixels that descriptor ``name`` expects.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    _check_name(name)
    return INPUT_SIZES[name]


def describe(name: str, images: np.ndarray, **options) -> np.ndarray:
    """Descriptor ``name`` of a batch of images.

    Args:
        name: a key of :data:`DESCRIPTORS`.
        images: ``uint8 [N, H, W, 3]`` RGB, ``(H, W) == input_size(name)``; infrared images
            replicated to three channels. ``N`` may be 0.
        options: keyword options of the descriptor function (e.g. ``orientations`` for HOG).

    Returns:
        ``float32 [N, D]``, finite.

    Raises:
        ValueError: for an unknown name (valid names listed), or images that are not
            ``uint8 [N, H, W, 3]`` of the descriptor's input size.
    """
    _check_name(name)
    images = np.asarray(images)
    size = INPUT_SIZES[name]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"{name}: expected uint8 images [N, H, W, 3], got {images.dtype} {images.shape}")
    if images.shape[1:3] != size:
        raise ValueError(f"{name}: expected images of {size[0]}x{size[1]} (H x W), got {images.shape[1]}x{images.shape[2]}")
    if len(images) == 0:  # the length D comes from describing one blank image
        return DESCRIPTORS[name](np.zeros((1, *size, 3), dtype=np.uint8), **options)[:0]
    return DESCRIPTORS[name](images, **options)
