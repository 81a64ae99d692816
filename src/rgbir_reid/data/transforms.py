"""Image decoding and resizing shared by every stage.

Images travel as ``uint8`` arrays ``[H, W, 3]`` (RGB channel order; infrared images are
grey replicated to three channels) and as float tensors ``[N, 3, H, W]`` in [-1, 1] for
the networks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

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


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Float ``[N, 3, H, W]`` in grey levels [0, 255] -> ``(x / 255 - mean) / std`` per channel.

    The one definition of the networks' input scaling, used by the training augmentation and
    at test time alike, so both feed bit-identical values for the same pixels.
    """
    return TF.normalize(images.float() / 255.0, list(mean), list(std))


# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale uses them. Applied here as one
# weighted channel sum rather than through rgb_to_grayscale, whose summation order differs in
# the last float bit: this keeps the training stream, and so the README's measured demo
# results, bit for bit as they were measured.
_LUMA = (0.2989, 0.587, 0.114)


class BatchAugmentation:
    """Training augmentation of a whole batch at once, on the batch's device.

    ``uint8 [N, 3, H, W]`` -> float32 ``[N, 3, h, w]``: resize to ``image_size`` (bilinear,
    antialiased), zero-pad by ``crop_padding``, random crop to ``crop_size`` (one offset per
    image), random horizontal flip (p = 0.5 per image), random grayscale (p =
    ``random_grayscale`` per image: the ITU-R 601 luma in all three channels), then ``(x / 255 - mean) / std`` per channel (:func:`normalize`).

    The same steps, in the same order, as a per-image torchvision pipeline, but as a few
    tensor operations per batch (torchvision's functional resize, pad and normalise; the
    per-image crop offsets are one gather): on this project's 2-core CPU, reading and
    augmenting a 64-image batch of 64x32 crops from the demo cache took 4.4 ms against
    33.7 ms per image through the torchvision pipeline, in one process
    (``benchmarks/train_speed.py`` prints both through a DataLoader); on a GPU it runs where
    the batch already is. The random draws (offsets, flips, grayscale
    choices) come from ``generator`` on the CPU, so the same seed gives the same batch on
    every device, and a checkpoint of that generator's state resumes the stream exactly.

    Args:
        image_size: ``(height, width)`` of the resize.
        crop_size: ``(height, width)`` of the crop, at most ``image_size + 2 * crop_padding``.
        crop_padding: zero pixels added on each side before the crop.
        random_grayscale: probability in [0, 1] that an image is turned grey.
        mean, std: per-channel statistics of the normalisation (RGB order, in [0, 1] units).

    Raises:
        ValueError: on a crop larger than the padded image or a probability outside [0, 1].
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        crop_size: tuple[int, int],
        *,
        crop_padding: int = 0,
        random_grayscale: float = 0.0,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.crop_padding = int(crop_padding)
        if any(c > s + 2 * self.crop_padding for c, s in zip(self.crop_size, self.image_size)):
            raise ValueError(
                f"crop_size {self.crop_size} exceeds image_size {self.image_size} + 2 * crop_padding {self.crop_padding}"
            )
        if not 0.0 <= random_grayscale <= 1.0:
            raise ValueError(f"random_grayscale must be in [0, 1], got {random_grayscale}")
        self.random_grayscale = float(random_grayscale)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``images`` (uint8 ``[N, 3, H, W]``, any device); returns float32 ``[N, 3, h, w]``.

        Raises:
            ValueError: if ``images`` is not a uint8 ``[N, 3, H, W]`` tensor.
        """
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        n, device = images.shape[0], images.device
        # Every random draw first, in a fixed order, on the CPU generator.
        pad, (h, w) = self.crop_padding, self.crop_size
        free_y = self.image_size[0] + 2 * pad - h
        free_x = self.image_size[1] + 2 * pad - w
        top = torch.randint(0, free_y + 1, (n,), generator=generator)
        left = torch.randint(0, free_x + 1, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5
        grey = torch.rand(n, generator=generator) < self.random_grayscale

        x = images.float()
        if tuple(x.shape[-2:]) != self.image_size:
            x = TF.resize(x, list(self.image_size), antialias=True)
            x = x.round_().clamp_(0, 255)  # as a uint8 resize would store it
        if pad:
            x = TF.pad(x, [pad])
        if free_y or free_x:
            rows = (top[:, None] + torch.arange(h)[None]).to(device)  # [N, h]
            cols = (left[:, None] + torch.arange(w)[None]).to(device)  # [N, w]
            batch = torch.arange(n, device=device)[:, None, None]
            x = x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        flip, grey = flip.to(device), grey.to(device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.random_grayscale:
            luma = torch.tensor(_LUMA, device=device).view(1, 3, 1, 1)
            x = torch.where(grey[:, None, None, None], (x * luma).sum(1, keepdim=True).expand_as(x), x)
        return normalize(x, self.mean, self.std).contiguous()
