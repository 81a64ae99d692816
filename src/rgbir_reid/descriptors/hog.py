"""HOG descriptor (Dalal & Triggs, CVPR 2005) through :func:`skimage.feature.hog`.

The SYSU-MM01 paper (Wu et al., ICCV 2017), where the HOG baseline on SYSU-MM01 comes from,
does not state its HOG settings [not found]; we use Dalal and Triggs' pedestrian settings on
a grey 128x64 image (reference doc ``aligngan-and-baselines.md`` §4, recorded there as an
assumption): 9 unsigned orientations, 8x8-pixel cells, 2x2-cell blocks with a one-cell stride,
L2-Hys block normalisation, no square-root gamma compression. That gives
15 x 7 blocks x 2 x 2 cells x 9 = 3,780 values at 128x64.

Grey is :func:`skimage.color.rgb2gray` (ITU-R BT.709 weights) of the uint8 RGB image, in
[0, 1]; an infrared image replicated to three channels becomes its own grey.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2gray
from skimage.feature import hog as skimage_hog

INPUT_SIZE = (128, 64)  # (height, width): Dalal & Triggs' detection window


def hog(
    images: np.ndarray,
    *,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (2, 2),
) -> np.ndarray:
    """HOG descriptors of a batch of RGB images.

    Args:
        images: ``uint8 [N, H, W, 3]`` RGB (infrared replicated to three channels).
        orientations, pixels_per_cell, cells_per_block: as in :func:`skimage.feature.hog`
            (defaults: Dalal & Triggs); block normalisation is always L2-Hys.

    Returns:
        ``float32 [N, D]`` in [0, 1]: after L2-Hys each block of 2x2 cells has unit L2 norm
        (zero on a flat image); D = 3,780 at 128x64 with the defaults.

    Raises:
        ValueError: from scikit-image if the image is smaller than one block.
    """
    rows = [
        skimage_hog(
            rgb2gray(im),
            orientations=orientations,
            pixels_per_cell=pixels_per_cell,
            cells_per_block=cells_per_block,
            block_norm="L2-Hys",
            feature_vector=True,
        )
        for im in images
    ]
    return np.asarray(rows, dtype=np.float32).reshape(len(images), -1)
