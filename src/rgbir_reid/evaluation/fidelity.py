"""Fidelity of visible->thermal conversion on registered pairs (e.g. LLVIP test pairs).

Registered pairs give each visible image its real infrared counterpart, so a converted image
``G_rgb2ir(visible)`` can be compared with the truth pixel by pixel: mean L1, PSNR and SSIM
(Wang et al. 2004, via ``skimage.metrics.structural_similarity``). The baseline row is the
visible image turned grey (ITU-R BT.601 luma, the same weights PIL uses for mode ``"L"``),
i.e. what a converter that only drops colour would score.

All metrics take uint8 images ``[H, W, 3]`` or ``[N, H, W, 3]``; for a batch they return the
mean of the per-image values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.metrics import structural_similarity

# ITU-R BT.601 luma weights (R, G, B).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
BASELINE_NAME = "grey visible (baseline)"
GENERATOR_NAME = "G_rgb2ir"  # the table row label of the converted images


def _as_batch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {a.dtype} and {b.dtype}")
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.ndim != 4 or a.shape[-1] != 3 or a.shape[0] == 0:
        raise ValueError(f"expected [H, W, 3] or [N, H, W, 3] with N >= 1, got {a.shape}")
    return a, b


def l1_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference on the [0, 1] pixel scale (0 for identical images, at most 1)."""
    a, b = _as_batch(a, b)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean() / 255.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(255^2 / MSE)``, averaged over images.

    Identical images have ``MSE = 0`` and PSNR ``+inf`` (returned as ``float("inf")``, not
    capped); the batch mean is then ``inf`` as well if any image pair is identical.
    """
    a, b = _as_batch(a, b)
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(255.0**2 / mse)
    return float(values.mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004), mean over images; 1 for identical images.

    ``skimage.metrics.structural_similarity`` with ``channel_axis=-1`` (SSIM per colour channel,
    averaged) and ``data_range=255`` (uint8), its default 7x7 uniform window. Images must be at
    least 7 pixels on each side.
    """
    a, b = _as_batch(a, b)
    return float(np.mean([structural_similarity(x, y, channel_axis=-1, data_range=255) for x, y in zip(a, b)]))


def to_grey(images: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` RGB -> uint8 ``[..., 3]`` with the BT.601 luma in every channel."""
    luma = np.clip(np.round(images.astype(np.float64) @ LUMA_WEIGHTS), 0, 255).astype(np.uint8)
    return np.repeat(luma[..., None], 3, axis=-1)


def fidelity_row(method: str, converted: np.ndarray, truth: np.ndarray) -> dict:
    """``{"method", "n_pairs", "l1", "psnr_db", "ssim"}`` of ``converted`` against ``truth``."""
    return {
        "method": method,
        "n_pairs": int(len(truth)),
        "l1": l1_error(converted, truth),
        "psnr_db": psnr(converted, truth),
        "ssim": ssim(converted, truth),
    }


def conversion_fidelity(visible: np.ndarray, infrared: np.ndarray, converted: np.ndarray) -> pd.DataFrame:
    """Score converted images against the real infrared images of registered pairs.

    Args:
        visible: uint8 ``[N, H, W, 3]`` visible images of held-out pairs.
        infrared: uint8 ``[N, H, W, 3]`` their registered infrared images (the truth).
        converted: uint8 ``[N, H, W, 3]``, ``G_rgb2ir(visible)`` as the conversion stage wrote
            it (:func:`rgbir_reid.conversion.convert_images`).

    Returns:
        Two rows, ``G_rgb2ir`` and ``grey visible (baseline)``, with columns ``method``,
        ``n_pairs``, ``l1`` (mean absolute error, [0, 1] pixel scale, lower is better),
        ``psnr_db`` (dB, higher is better) and ``ssim`` ([-1, 1], higher is better).

    Raises:
        ValueError: if there are no pairs or the three arrays differ in shape.
    """
    if len(infrared) == 0:
        raise ValueError("conversion_fidelity: no pairs given")
    if not visible.shape == infrared.shape == converted.shape:
        raise ValueError(
            f"conversion_fidelity: visible {visible.shape}, infrared {infrared.shape} and converted "
            f"{converted.shape} must have one shape"
        )
    rows = [fidelity_row(GENERATOR_NAME, converted, infrared), fidelity_row(BASELINE_NAME, to_grey(visible), infrared)]
    return pd.DataFrame(rows, columns=["method", "n_pairs", "l1", "psnr_db", "ssim"])
