"""MLBP: multi-scale uniform local binary pattern histograms, through scikit-image.

The CE²L table's MLBP row is cited from earlier papers; no code or settings for it are
available to this project (reference doc ``aligngan-and-baselines.md`` §3: "MLBP, GSM and
TONE have no usable code for this project"). This is therefore our own definition from the
issue's description ("multi-scale uniform LBP histograms"), built from Ojala, Pietikäinen &
Mäenpää (IEEE TPAMI 2002; multi-resolution LBP_{P,R}) and the cell-histogram layout of
Ahonen, Hadid & Pietikäinen (IEEE TPAMI 2006):

* grey image: :func:`skimage.color.rgb2gray` (BT.709) of the uint8 RGB image, rounded to 0..255;
* input size 128x64 (height x width), the same pedestrian window as HOG (our choice: no source
  gives one);
* P = 8 neighbours on circles of radius R = 1, 2 and 3 px (bilinear sampling, as
  :func:`skimage.feature.local_binary_pattern`);
* uniform patterns without rotation invariance (LBP^{u2}, scikit-image ``"nri_uniform"``):
  the 58 patterns with at most two 0/1 transitions around the circle get one label each and
  all other patterns share label 58, so 59 labels; upright pedestrians keep their orientation,
  so rotation invariance would only discard information;
* the border is extended by edge replication before coding, so that samples outside the image
  do not read as black;
* non-overlapping 16x16-pixel cells (8 x 4 cells at 128x64), each cell's 59-bin histogram
  divided by its pixel count (each cell sums to 1); radii in order, cells row-major inside
  each radius. D = 3 x 32 x 59 = 5,664 at 128x64.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2gray
from skimage.feature import local_binary_pattern

INPUT_SIZE = (128, 64)  # (height, width); our choice, as HOG
RADII = (1, 2, 3)
POINTS = 8
CELL = (16, 16)  # (height, width) in pixels
N_LABELS = POINTS * (POINTS - 1) + 3  # LBP^{u2}: 58 uniform patterns + 1 shared label
NON_UNIFORM_LABEL = N_LABELS - 1


def uniform_lbp(grey_image: np.ndarray, radius: int, points: int = POINTS) -> np.ndarray:
    """LBP^{u2} labels of one grey image, borders extended by edge replication.

    Args:
        grey_image: ``uint8 [H, W]``.
        radius: circle radius in pixels, >= 1.
        points: neighbours on the circle.

    Returns:
        ``int64 [H, W]`` labels in ``0 .. points * (points - 1) + 2``; the last one marks
        non-uniform patterns.
    """
    pad = int(np.ceil(radius)) + 1
    padded = np.pad(grey_image, pad, mode="edge")
    codes = local_binary_pattern(padded, points, radius, method="nri_uniform")
    return codes[pad:-pad, pad:-pad].astype(np.int64)


def mlbp(images: np.ndarray, *, radii: tuple[int, ...] = RADII, cell: tuple[int, int] = CELL) -> np.ndarray:
    """MLBP descriptors of a batch of RGB images (definition in the module docstring).

    Args:
        images: ``uint8 [N, H, W, 3]`` RGB (infrared replicated to three channels).
        radii: LBP radii in pixels.
        cell: ``(height, width)`` of the histogram cells; rows and columns of pixels beyond
            the last whole cell are not counted.

    Returns:
        ``float32 [N, D]`` in [0, 1], ``D = len(radii) * (H // cell_h) * (W // cell_w) * 59``
        (5,664 at 128x64); each cell's 59 values sum to 1.

    Raises:
        ValueError: if the image is smaller than one cell.
    """
    n, h, w = images.shape[:3]
    ch, cw = cell
    gy, gx = h // ch, w // cw
    if gy == 0 or gx == 0:
        raise ValueError(f"MLBP needs images of at least one {ch}x{cw} cell, got {h}x{w}")
    out = np.empty((n, len(radii), gy * gx, N_LABELS), dtype=np.float32)
    # Cell index of every pixel kept, so that one bincount gives all cell histograms.
    cell_of = (np.arange(gy * ch)[:, None] // ch) * gx + np.arange(gx * cw)[None, :] // cw
    for i, im in enumerate(images):
        g = np.round(rgb2gray(im) * 255.0).astype(np.uint8)
        for k, r in enumerate(radii):
            labels = uniform_lbp(g, r)[: gy * ch, : gx * cw]
            counts = np.bincount((cell_of * N_LABELS + labels).ravel(), minlength=gy * gx * N_LABELS)
            out[i, k] = counts.reshape(gy * gx, N_LABELS) / (ch * cw)
    return out.reshape(n, -1)
