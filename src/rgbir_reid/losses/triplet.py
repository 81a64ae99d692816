"""Softly mined triplet losses of AGW and CAJ: the weighted regularised triplet and its CAJ variant.

Both work on one batch of features ``f [N, D]`` with identities ``pid [N]`` (both modalities
together) and Euclidean distances ``d_ij = sqrt(max(|f_i|² + |f_j|² - 2 f_i·f_j, 1e-12))``.
For each anchor ``i`` the positives ``P(i)`` (same identity, ``i`` itself included, as in the
code) and the negatives ``N(i)`` are weighted by a softmax over the distances:

    d_p(i) = Σ_{j∈P(i)} w⁺_ij d_ij,   w⁺_ij = exp(α d_ij) / Σ_{k∈P(i)} exp(α d_ik)
    d_n(i) = Σ_{j∈N(i)} w⁻_ij d_ij,   w⁻_ij = exp(-α d_ij) / Σ_{k∈N(i)} exp(-α d_ik)

so far positives and close negatives count most, with no margin to tune (Ye et al., TPAMI
2021, §4.2, eq. 4; α = 1). The softmax is the code's (``softmax_weights`` in
``mangye16/Cross-Modal-Re-ID-baseline`` ``loss.py``): its shift is the row maximum of
``score · mask`` (0 for the negatives, whose scores are ≤ 0, not their own maximum) and its
denominator gets ``+ 1e-6``; so when every negative is farther than about 14 units the
negative weights shrink below 1 in sum. Kept for faithfulness (our features are the same
unnormalised GeM features).

* **WRT** (AGW): ``mean_i log(1 + exp(-(d_n(i) - d_p(i))))`` (``SoftMarginLoss`` with target 1).
* **ADP** (CAJ's ``TripletLoss_ADP`` with ``square = 1``, the setting of its ``main.sh``): with
  ``s_i = min(γ (d_p(i) - d_n(i))², 88)`` and ``y_i = -1`` when ``d_p(i) > d_n(i)`` (violated),
  ``+1`` otherwise: ``mean_i log(1 + exp(-y_i s_i))``. The clamp at 88 (an exp overflow guard)
  stops the gradient of badly violated anchors: Cross-Modal-Re-ID-baseline issue #27 reports
  the loss stuck at 88. ``square = False`` gives ``SoftMarginLoss(γ (d_n - d_p), 1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TRIPLET_LOSSES = ("none", "wrt", "adp")
ADP_CLAMP = 88.0  # CAJ code: max of the squared difference before the soft margin


def pairwise_euclidean(features: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[N, N]`` of the rows of ``features [N, D]``, clamped at 1e-6 (sqrt 1e-12)."""
    sq = features.pow(2).sum(1, keepdim=True)
    return (sq + sq.t() - 2.0 * features @ features.t()).clamp(min=1e-12).sqrt()


def softmax_weights(score: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row softmax of ``score [N, N]`` over the entries where ``mask`` (float 0/1) is 1, as the
    AGW code computes it (shift by the row max of ``score * mask``, ``+ 1e-6`` in the sum)."""
    shift = (score * mask).max(dim=1, keepdim=True).values
    e = torch.exp(score - shift) * mask
    return e / (e.sum(dim=1, keepdim=True) + 1e-6)


def soft_mined_distances(features: torch.Tensor, pid: torch.Tensor, alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d_p [N], d_n [N])``: the softmax-weighted positive and negative distance of each anchor.

    Args:
        features: ``[N, D]`` float. pid: identities ``[N]`` (any integers).
        alpha: sharpness α of the weights (CAJ's ``--alpha``, 1 in AGW and CAJ).

    An anchor without negatives (a batch of one identity) gets ``d_n = 0``.

    Raises:
        ValueError: if the shapes disagree.
    """
    if features.ndim != 2 or pid.shape != (features.shape[0],):
        raise ValueError(f"expected features [N, D] and pid [N], got {tuple(features.shape)} and {tuple(pid.shape)}")
    dist = pairwise_euclidean(features)
    same = pid[:, None] == pid[None, :]
    is_pos, is_neg = same.to(dist.dtype), (~same).to(dist.dtype)
    dist_ap, dist_an = dist * is_pos, dist * is_neg
    d_p = (dist_ap * softmax_weights(dist_ap * alpha, is_pos)).sum(1)
    d_n = (dist_an * softmax_weights(-dist_an * alpha, is_neg)).sum(1)
    return d_p, d_n


def weighted_regularized_triplet(features: torch.Tensor, pid: torch.Tensor) -> torch.Tensor:
    """AGW's weighted regularised triplet (WRT) loss, a scalar (module docstring; Ye et al., TPAMI 2021, eq. 4).

    Args:
        features: ``[N, D]`` (AGW: the GeM-pooled feature, not normalised). pid: ``[N]``.

    Raises:
        ValueError: see :func:`soft_mined_distances`.
    """
    d_p, d_n = soft_mined_distances(features, pid)
    return F.softplus(-(d_n - d_p)).mean()


def adaptive_triplet(
    features: torch.Tensor, pid: torch.Tensor, *, alpha: float = 1.0, gamma: float = 1.0, square: bool = True
) -> torch.Tensor:
    """CAJ's triplet variant (``TripletLoss_ADP``), a scalar (module docstring).

    Args:
        features: ``[N, D]``. pid: ``[N]``. alpha: weight sharpness; gamma: scale of the
            difference (both 1 in CAJ's ``main.sh``); square: the squared, clamped form (CAJ: on).

    Raises:
        ValueError: see :func:`soft_mined_distances`.
    """
    d_p, d_n = soft_mined_distances(features, pid, alpha)
    if not square:
        return F.softplus(-gamma * (d_n - d_p)).mean()
    s = (gamma * (d_p - d_n).pow(2)).clamp(max=ADP_CLAMP)
    y = torch.where(d_p > d_n, -1.0, 1.0).to(s.dtype)
    return F.softplus(-y * s).mean()


def triplet_loss(name: str, features: torch.Tensor, pid: torch.Tensor) -> torch.Tensor:
    """The triplet loss ``name`` (``"wrt"`` or ``"adp"``, CAJ's settings) of a batch.

    Raises:
        ValueError: unknown name (lists the valid ones) or a batch :func:`soft_mined_distances` rejects.
    """
    if name == "wrt":
        return weighted_regularized_triplet(features, pid)
    if name == "adp":
        return adaptive_triplet(features, pid)
    raise ValueError(f"unknown triplet loss {name!r}; valid: {[n for n in TRIPLET_LOSSES if n != 'none']}")
