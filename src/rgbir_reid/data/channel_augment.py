"""CAJ's channel augmentation (Ye et al., "Channel Augmented Joint Learning for Visible-Infrared
Recognition", ICCV 2021), batched, on ImageNet-normalised float images ``[N, 3, H, W]``.

What the CAJ code (``ICCV21_CAJ/ChannelAug.py`` and ``data_loader.py`` of
``mangye16/Cross-Modal-Re-ID-baseline``) applies after pad, crop, flip and normalisation:

=====================  ==============================================================  =========================
image                  steps                                                           here
=====================  ==============================================================  =========================
visible, view 1        random erasing (p = 0.5)                                        :func:`channel_random_erasing`
visible, view 2        random erasing (p = 0.5), then random channel exchange          :func:`random_channel_exchange`
infrared               random erasing (p = 0.5), then channel-adaptive grey            :func:`channel_adaptive_grey`
=====================  ==============================================================  =========================

Each visible image is thus in the batch twice (two independent pad/crop/flip draws), and the
identity and triplet losses see all ``3 P K`` images (:class:`ChannelViews`). Like the code,
the channel steps work on normalised values (the grey of :func:`channel_adaptive_grey` is the
luma of normalised channels, and erasing fills the normalised image with the constants
``(0.4914, 0.4822, 0.4465)``, CIFAR-10's channel means, which the code inherits from
Zhong et al.'s random erasing).

Randomness comes from ``generator`` (a CPU ``torch.Generator``; ``None`` = torch's global
one, which the training loop seeds and checkpoints), drawn in a fixed order on the CPU, so a
seed gives the same batch on every device.
"""

from __future__ import annotations

from typing import Callable

import torch

# ITU-R 601 luma weights as the CAJ code writes them.
CAJ_LUMA = (0.2989, 0.5870, 0.1140)
# Random erasing of the CAJ code: area fraction in [0.02, 0.4], aspect ratio in [0.3, 1/0.3],
# up to 100 tries for a rectangle that fits, fill per channel (in normalised units).
ERASE_AREA = (0.02, 0.4)
ERASE_MIN_ASPECT = 0.3
ERASE_ATTEMPTS = 100
ERASE_FILL = (0.4914, 0.4822, 0.4465)


def _check(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"expected float images [N, 3, H, W], got {x.dtype} {tuple(x.shape)}")


def _copy_channel(x: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
    """Each image ``n`` with its channel ``channel[n]`` in all three channels."""
    index = channel.to(x.device).view(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
    return x.gather(1, index).expand_as(x)


def random_channel_exchange(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random channel exchange (CAJ ``ChannelExchange(gray=2)``): every image has one channel,
    R, G or B with probability 1/3 each, copied to all three. ``[N, 3, H, W]`` -> same shape.

    Raises:
        ValueError: if ``x`` is not a float ``[N, 3, H, W]`` tensor.
    """
    _check(x)
    channel = torch.randint(0, 3, (x.shape[0],), generator=generator)
    return _copy_channel(x, channel).contiguous()


def channel_adaptive_grey(
    x: torch.Tensor, generator: torch.Generator | None = None, grey_probability: float = 0.5
) -> torch.Tensor:
    """Channel-adaptive grey (CAJ ``ChannelAdapGray(probability=0.5)``), ``[N, 3, H, W]`` -> same shape.

    Per image one of four cases with probability 1/4 each: channel R, G or B copied to all
    three; or, in the fourth, the luma ``0.2989 R + 0.587 G + 0.114 B`` in all three with
    probability ``grey_probability`` and the image unchanged otherwise.

    Raises:
        ValueError: if ``x`` is not a float ``[N, 3, H, W]`` tensor or the probability is outside [0, 1].
    """
    _check(x)
    if not 0.0 <= grey_probability <= 1.0:
        raise ValueError(f"grey_probability must be in [0, 1], got {grey_probability}")
    n = x.shape[0]
    case = torch.randint(0, 4, (n,), generator=generator)
    grey = torch.rand(n, generator=generator) <= grey_probability
    copied = _copy_channel(x, case.clamp(max=2))
    luma = (x * x.new_tensor(CAJ_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True).expand_as(x)
    case, grey = case.to(x.device).view(-1, 1, 1, 1), grey.to(x.device).view(-1, 1, 1, 1)
    return torch.where(case < 3, copied, torch.where(grey, luma, x)).contiguous()


def channel_random_erasing(
    x: torch.Tensor, generator: torch.Generator | None = None, probability: float = 0.5
) -> torch.Tensor:
    """Random erasing as CAJ's ``ChannelRandomErasing`` does it, ``[N, 3, H, W]`` -> same shape.

    With probability ``probability`` an image gets one rectangle filled with :data:`ERASE_FILL`
    (per channel): up to :data:`ERASE_ATTEMPTS` tries draw an area ``U(0.02, 0.4) · H·W`` and an
    aspect ratio ``r ~ U(0.3, 1/0.3)``, ``h = round(sqrt(area · r))``, ``w = round(sqrt(area / r))``;
    the first with ``h < H`` and ``w < W`` is placed at a uniform top-left corner
    (``0..H-h``, ``0..W-w``); if none fits the image is unchanged (Zhong et al., AAAI 2020, Alg. 1).

    Raises:
        ValueError: if ``x`` is not a float ``[N, 3, H, W]`` tensor or the probability is outside [0, 1].
    """
    _check(x)
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"erasing probability must be in [0, 1], got {probability}")
    n, _, height, width = x.shape
    apply = torch.rand(n, generator=generator) < probability
    area = torch.empty(n, ERASE_ATTEMPTS).uniform_(*ERASE_AREA, generator=generator) * (height * width)
    aspect = torch.empty(n, ERASE_ATTEMPTS).uniform_(ERASE_MIN_ASPECT, 1 / ERASE_MIN_ASPECT, generator=generator)
    u_top, u_left = torch.rand(n, generator=generator), torch.rand(n, generator=generator)
    h = torch.sqrt(area * aspect).round().long()
    w = torch.sqrt(area / aspect).round().long()
    fits = (h < height) & (w < width)
    first = fits.long().argmax(1)  # the first try that fits (0 when none does; then ``fits`` is all False)
    ok = apply & fits.any(1)
    h, w = h.gather(1, first[:, None]).squeeze(1), w.gather(1, first[:, None]).squeeze(1)
    top = (u_top * (height - h + 1)).long().clamp(max=height - 1)
    left = (u_left * (width - w + 1)).long().clamp(max=width - 1)
    rows = torch.arange(height)[None, :]
    cols = torch.arange(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])  # [N, H]
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])  # [N, W]
    mask = (ok[:, None, None] & in_rows[:, :, None] & in_cols[:, None, :]).to(x.device)[:, None]
    fill = x.new_tensor(ERASE_FILL).view(1, 3, 1, 1)
    return torch.where(mask, fill, x)


class ChannelViews:
    """CAJ's training views of a batch (module docstring): ``(x [N + N_v, 3, h, w], source [N + N_v])``.

    Args:
        exchange: add a second view of every visible image with :func:`random_channel_exchange`.
        adaptive_grey: apply :func:`channel_adaptive_grey` to the infrared images.
        erasing: probability of :func:`channel_random_erasing` on every view (0 = off).

    ``active`` is False when all three are off (the batch is then left as it is).
    """

    def __init__(self, *, exchange: bool = False, adaptive_grey: bool = False, erasing: float = 0.0) -> None:
        if not 0.0 <= erasing <= 1.0:
            raise ValueError(f"channel_erasing must be in [0, 1], got {erasing}")
        self.exchange, self.adaptive_grey, self.erasing = bool(exchange), bool(adaptive_grey), float(erasing)
        self.active = self.exchange or self.adaptive_grey or self.erasing > 0

    def __call__(
        self,
        x: torch.Tensor,
        images: torch.Tensor,
        modality: torch.Tensor,
        augment: Callable[[torch.Tensor], torch.Tensor],
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel-augment a batch.

        Args:
            x: the augmented batch ``augment(images)``, float ``[N, 3, h, w]``.
            images: the batch's uint8 ``[N, 3, H, W]`` (re-augmented for the second views).
            modality: ``[N]`` (CPU), 0 visible / 1 thermal.
            augment: the pad/crop/flip/normalise augmentation (the loop's ``BatchAugmentation``).

        Returns:
            ``(views, source)``: the ``N`` original rows first, then (``exchange``) one more
            view of each visible row; ``source`` (CPU int64) is the batch row of each view, to
            index the batch's identities, modalities and labels with.
        """
        source = torch.arange(x.shape[0])
        visible = (modality == 0).nonzero().squeeze(1)
        second = None
        if self.exchange and visible.numel():
            second = augment(images[visible.to(images.device)])
            source = torch.cat([source, visible])
        if self.erasing:
            x = channel_random_erasing(x, generator, self.erasing)
            if second is not None:
                second = channel_random_erasing(second, generator, self.erasing)
        if second is not None:
            second = random_channel_exchange(second, generator)
        if self.adaptive_grey:
            thermal = (modality != 0).to(x.device)
            x = torch.where(thermal.view(-1, 1, 1, 1), channel_adaptive_grey(x, generator), x)
        if second is not None:
            x = torch.cat([x, second])
        return x, source
