"""Image decoding and resizing shared by every stage.

Images travel as ``uint8`` arrays ``[H, W, 3]`` (RGB channel order; infrared images are
grey replicated to three channels) and as float tensors ``[N, 3, H, W]`` in [-1, 1] for
the networks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from rgbir_reid.data.records import DatasetFormatError


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to ``uint8 [H, W, 3]``; 1-channel images are replicated.

    Args:
        path: image file (JPEG, BMP, PNG).
        size: optional ``(height, width)`` in pixels to resize to (bilinear).

    Raises:
        DatasetFormatError: if the file is missing or cannot be decoded; the message names it.
    """
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None:
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError as e:
        raise DatasetFormatError(f"image file not found: {path}") from e
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetFormatError(f"cannot decode image {path}: {e}") from e


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``uint8 [N, H, W, 3]`` (or ``[H, W, 3]``) -> float ``[N, 3, H, W]`` in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    if t.ndim == 3:
        t = t.unsqueeze(0)
    return t.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float ``[N, 3, H, W]`` in [-1, 1] -> ``uint8 [N, H, W, 3]`` (values clipped)."""
    x = images.detach().float().add(1.0).mul(127.5).round().clamp(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
