"""Cross-modality top-ranking loss and intra-modality constraint of CE²L (Dai et al.).

Paper symbols: ``v_i`` visible embeddings, ``t_j`` thermal embeddings, ``y`` identities,
``D`` the distance between embeddings, ``ρ1`` (``margin`` of
:func:`cross_modality_top_ranking`) and ``ρ2`` (``margin`` of :func:`intra_modality_constraint`).

``D`` is the Euclidean distance ``D(a, b) = ||a - b||_2`` between the embeddings as given;
whether they are L2-normalised first is the caller's choice (the re-ID training loop
normalises them, so ``D`` lies in [0, 2]).

Reduction: the paper writes plain sums (Σ). Both functions take ``reduction``:
``"sum"`` is the paper's equation verbatim; ``"mean"`` (the training default) divides each
sum by its number of terms, so the loss scale, and hence the learning rate, does not depend
on the batch size. For the cross-modality loss each direction (V→T and T→V) is reduced
separately and the two are added.
"""

from __future__ import annotations

import torch

REDUCTIONS = ("sum", "mean")


def euclidean_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Pairwise Euclidean distances ``[Na, Nb]`` between rows of ``a [Na, D]`` and ``b [Nb, D]``.

    Computed as ``sqrt(|a|^2 + |b|^2 - 2 a b^T)`` (one matrix product; as BDTR's and AGW's
    code do): no ``[Na, Nb, D]`` difference tensor, which made forward and backward ~13x
    slower at the demo's 128 x 128 x 128 and cost ~18 % of a demo training step. The squared
    distance is clamped at ``eps`` before the square root, so rounding cannot make it negative
    and the gradient stays finite for coincident points.
    """
    squared = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2.0 * (a @ b.T)
    return squared.clamp_min(eps).sqrt()


def _reduce(terms: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    total = (terms * mask).sum()
    if reduction == "sum":
        return total
    return total / mask.sum().clamp_min(1)


def _check(emb: torch.Tensor, pid: torch.Tensor, name: str) -> None:
    if emb.ndim != 2 or pid.ndim != 1 or emb.shape[0] != pid.shape[0]:
        raise ValueError(
            f"{name}: expected embeddings [N, D] and pid [N], got {tuple(emb.shape)} and {tuple(pid.shape)}"
        )


def _top_ranking_one_direction(
    anchor: torch.Tensor, pid_a: torch.Tensor, other: torch.Tensor, pid_o: torch.Tensor, margin: float, reduction: str
) -> torch.Tensor:
    dist = euclidean_distance(anchor, other)  # [Na, No]
    if dist.numel() == 0:  # one modality absent from the batch: no term is defined
        return dist.sum()
    same = pid_a.unsqueeze(1) == pid_o.unsqueeze(0)
    # Hardest negative of the other modality: the closest t_k with y_k != y_i.
    hardest_neg = dist.masked_fill(same, float("inf")).min(dim=1).values  # [Na]
    has_neg = torch.isfinite(hardest_neg)
    hinge = (dist - hardest_neg.masked_fill(~has_neg, 0.0).unsqueeze(1) + margin).clamp_min(0.0)
    # Anchors without any negative in the other modality have no defined term and are skipped.
    mask = (same & has_neg.unsqueeze(1)).to(dist.dtype)
    return _reduce(hinge, mask, reduction)


def cross_modality_top_ranking(
    emb_v: torch.Tensor,
    pid_v: torch.Tensor,
    emb_t: torch.Tensor,
    pid_t: torch.Tensor,
    margin: float,
    reduction: str = "mean",
) -> torch.Tensor:
    """Bi-directional cross-modality top-ranking loss (CE²L, eq. of ``l_cross``).

    ``l_cross = Σ_{i,j: y_i = y_j} max[D(v_i, t_j) − min_{k: y_k ≠ y_i} D(v_i, t_k) + ρ1, 0]``
    ``        + Σ_{j,i: y_j = y_i} max[D(t_j, v_i) − min_{k: y_k ≠ y_j} D(t_j, v_k) + ρ1, 0]``

    The first sum (V→T) takes each visible anchor ``v_i``, every thermal positive ``t_j`` of
    its identity and the hardest (closest) thermal negative; the second (T→V) swaps the
    modalities. An anchor with no negative in the other modality contributes nothing.

    Args:
        emb_v: visible embeddings ``[Nv, D]``.
        pid_v: identities of ``emb_v``, int ``[Nv]``.
        emb_t: thermal embeddings ``[Nt, D]``.
        pid_t: identities of ``emb_t``, int ``[Nt]``.
        margin: ``ρ1`` ≥ 0, in the units of ``D`` (Euclidean distance).
        reduction: ``"sum"`` (the paper's Σ) or ``"mean"`` (each direction divided by its
            number of (anchor, positive) terms, then the two added).

    Returns:
        Scalar loss ≥ 0; zero (with a graph) when no anchor has both a positive and a negative.

    Raises:
        ValueError: on mismatched shapes or an unknown ``reduction``.
    """
    _check(emb_v, pid_v, "emb_v/pid_v")
    _check(emb_t, pid_t, "emb_t/pid_t")
    if emb_v.shape[1] != emb_t.shape[1]:
        raise ValueError(f"embedding sizes differ: visible {emb_v.shape[1]}, thermal {emb_t.shape[1]}")
    v2t = _top_ranking_one_direction(emb_v, pid_v, emb_t, pid_t, margin, reduction)
    t2v = _top_ranking_one_direction(emb_t, pid_t, emb_v, pid_v, margin, reduction)
    return v2t + t2v


def intra_modality_constraint(
    emb: torch.Tensor, pid: torch.Tensor, margin: float, reduction: str = "mean"
) -> torch.Tensor:
    """Intra-modality constraint of one modality (CE²L, one sum of ``l_intra``).

    ``Σ_{j<k: y_j ≠ y_k} max[ρ2 − D(x_j, x_k), 0]`` over unordered pairs of images of
    different identities within the modality. Call it once for the visible and once for the
    thermal embeddings and add the results to get the paper's ``l_intra``.

    Args:
        emb: embeddings of one modality ``[N, D]``.
        pid: identities, int ``[N]``.
        margin: ``ρ2`` ≥ 0, in the units of ``D`` (Euclidean distance).
        reduction: ``"sum"`` (the paper's Σ over unordered pairs) or ``"mean"`` (divided by
            the number of different-identity pairs).

    Returns:
        Scalar loss ≥ 0; zero (with a graph) when there is no pair of different identities.

    Raises:
        ValueError: on mismatched shapes or an unknown ``reduction``.
    """
    _check(emb, pid, "emb/pid")
    dist = euclidean_distance(emb, emb)
    n = emb.shape[0]
    upper = torch.ones(n, n, dtype=torch.bool, device=emb.device).triu(diagonal=1)
    mask = ((pid.unsqueeze(1) != pid.unsqueeze(0)) & upper).to(dist.dtype)
    return _reduce((margin - dist).clamp_min(0.0), mask, reduction)
