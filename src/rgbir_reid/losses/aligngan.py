"""AlignGAN objectives: cosine batch-hard triplet loss and the joint discriminator's loss.

Source: Wang et al., ICCV 2019, official code (wangguanan/AlignGAN: ``tools/loss2.py``,
``tools/metric.py``, ``core/train.py``, ``core/base.py``), as this project's reference notes
describe it (``aligngan-and-baselines.md`` §1.3). The least-squares GAN terms are those of
:mod:`rgbir_reid.losses.gan` (official ``MSELoss`` against all-ones / all-zeros targets):
``lsgan_generator_loss(s) = mean((s - 1)^2)`` and ``lsgan_discriminator_loss(real, fake) =
0.5 * (mean((real - 1)^2) + mean(fake^2))``, re-exported here. Identity losses are plain
cross-entropy (no label smoothing), ``torch.nn.functional.cross_entropy``.

Every loss is a pure function of tensors returning a scalar.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from rgbir_reid.losses.gan import lsgan_discriminator_loss, lsgan_generator_loss

__all__ = [
    "TRIPLET_MARGIN",
    "cosine_batch_hard_triplet",
    "joint_discriminator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "roll_identities",
]

# Official TripletLoss(margin=1.0, soft_bh=[0, 0], 'cosine').
TRIPLET_MARGIN = 1.0


def cosine_batch_hard_triplet(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    anchor_pids: torch.Tensor,
    positive_pids: torch.Tensor,
    negative_pids: torch.Tensor,
    margin: float = TRIPLET_MARGIN,
) -> torch.Tensor:
    """Batch-hard triplet loss on cosine similarity (official ``TripletLoss(1.0, [0, 0], 'cosine')``).

    For anchor ``i``: ``s_p = min_j cos(a_i, p_j)`` over ``positive_pids[j] == anchor_pids[i]``
    (the least similar positive) and ``s_n = max_k cos(a_i, n_k)`` over ``negative_pids[k] !=
    anchor_pids[i]`` (the most similar negative); the loss is ``mean_i max(0, s_n - s_p + margin)``
    (official ``MarginRankingLoss(margin)(s_n, s_p, y=-1)``). Similarities are unitless, in
    [-1, 1], so the loss lies in [0, 2 + margin]. An anchor without any positive or any
    negative contributes 0 but still counts in the mean (the official code's +-9999999 masking
    gives the same). The official code calls it as ``(fake, real, real)`` / ``(real, fake, fake)``
    across modalities and ``(ir, ir, ir)`` in the feature warm-up, where an anchor is its own
    positive (similarity 1) among the others.

    Args:
        anchors: ``[M, D]``; positives: ``[P, D]``; negatives: ``[Q, D]`` (not necessarily normalised).
        anchor_pids: ``[M]``; positive_pids: ``[P]``; negative_pids: ``[Q]`` identity labels.
        margin: official 1.0.

    Raises:
        ValueError: on mismatched shapes.
    """
    if anchors.ndim != 2 or positives.ndim != 2 or negatives.ndim != 2:
        raise ValueError(f"embeddings must be [N, D], got {tuple(anchors.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}")
    for emb, pids, name in ((anchors, anchor_pids, "anchor"), (positives, positive_pids, "positive"), (negatives, negative_pids, "negative")):
        if pids.shape != (emb.shape[0],):
            raise ValueError(f"{name}_pids must be [{emb.shape[0]}], got {tuple(pids.shape)}")
    a = F.normalize(anchors, dim=1)
    sim_p = a @ F.normalize(positives, dim=1).T  # [M, P]
    sim_n = a @ F.normalize(negatives, dim=1).T  # [M, Q]
    same_p = anchor_pids[:, None] == positive_pids[None, :]
    diff_n = anchor_pids[:, None] != negative_pids[None, :]
    hard_p = sim_p.masked_fill(~same_p, float("inf")).min(dim=1).values
    hard_n = sim_n.masked_fill(~diff_n, float("-inf")).max(dim=1).values
    valid = same_p.any(dim=1) & diff_n.any(dim=1)
    # Fill invalid anchors before the subtraction: inf - inf would be NaN (and NaN gradients).
    hard_p = torch.where(valid, hard_p, torch.zeros_like(hard_p))
    hard_n = torch.where(valid, hard_n, torch.full_like(hard_n, -margin))
    return F.relu(hard_n - hard_p + margin).mean()


def roll_identities(x: torch.Tensor, instances: int) -> torch.Tensor:
    """Shift a batch laid out identity by identity by one identity (official ``generate_wrong_images``).

    ``x`` ``[B, ...]`` holds ``B / instances`` identities of ``instances`` consecutive rows
    each; the result is ``cat(x[instances:], x[:instances])``, so row ``i`` of the result
    belongs to the next identity of the batch: a different one whenever the batch's
    identities are distinct and there are at least two.

    Raises:
        ValueError: if ``instances < 1`` or ``B`` is not a multiple of it holding two or more identities.
    """
    b = x.shape[0]
    if instances < 1 or b % instances or b // instances < 2:
        raise ValueError(f"roll_identities: batch of {b} rows is not >= 2 identities of {instances} rows")
    return torch.cat([x[instances:], x[:instances]], 0)


def joint_discriminator_loss(
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    real_images: torch.Tensor,
    real_features: torch.Tensor,
    fake_images: torch.Tensor,
    fake_features: torch.Tensor,
    instances: int,
) -> torch.Tensor:
    """Loss of the joint discriminator ``D_ir`` on (image, feature) pairs (official ``core/train.py``).

    ``0.5 * [ mean((D(x, f) - 1)^2) + 1/4 * sum_k mean(D(pair_k)^2) ]`` with the real pair
    ``(x, f)`` = (real infrared image, its real feature) and four fake pairs:

    1. (real infrared image of the *next identity*, ``f``) — a wrong identity (:func:`roll_identities`)
    2. (``x``, the fake-infrared feature ``f~``)
    3. (the fake infrared image ``x~``, ``f``)
    4. (``x~``, ``f~``)

    Everything given is detached first, so only the discriminator's parameters get gradients.
    The batches are identity-aligned: row ``i`` of every input shows the same identity
    (official: the RGB and IR loaders share seeds, so ``x~`` = G_rgb2ir(visible image of the
    identity of ``x``)).

    Args:
        discriminator: ``D(images [B, 3, H, W], features [B, C, h, w]) -> scores`` (any shape).
        real_images: ``x`` ``[B, 3, H, W]``; real_features: ``f`` ``[B, C, h, w]``.
        fake_images: ``x~``; fake_features: ``f~`` (same shapes).
        instances: rows per identity in the batch (official K_gan = 4).

    Raises:
        ValueError: from :func:`roll_identities` when the batch does not hold >= 2 identities.
    """
    x, f = real_images.detach(), real_features.detach()
    x_fake, f_fake = fake_images.detach(), fake_features.detach()
    real = discriminator(x, f)
    fakes = [
        discriminator(roll_identities(x, instances), f),
        discriminator(x, f_fake),
        discriminator(x_fake, f),
        discriminator(x_fake, f_fake),
    ]
    return 0.5 * ((real - 1.0).pow(2).mean() + sum(s.pow(2).mean() for s in fakes) / 4.0)
