"""The loss glue of re-ID training: which cache rows are which set, and the three CE²L terms of a batch.

    loss = weight_cross · l_cross (ρ1) + weight_intra · l_intra (ρ2) + weight_id · l_id,

with ``l_cross`` the cross-modality top-ranking loss and ``l_intra`` the intra-modality
constraint (:mod:`rgbir_reid.losses.ranking`, both directions as in CE²L), and ``l_id``
cross-entropy with label smoothing (LSR) on the sets named in ``lsr_sets``
(:mod:`rgbir_reid.losses.lsr`). AGW and CAJ add ``weight_triplet · l_triplet``, their softly
mined triplet loss over the whole batch (:mod:`rgbir_reid.losses.triplet`; off by default).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rgbir_reid.data.records import MODALITY_CODE, TRAIN_SETS, VISIBLE
from rgbir_reid.losses.lsr import lsr_cross_entropy
from rgbir_reid.losses.ranking import cross_modality_top_ranking, intra_modality_constraint
from rgbir_reid.losses.triplet import triplet_loss
from rgbir_reid.training.reid_settings import ReidSettings


def set_of_rows(kind: np.ndarray, modality: np.ndarray) -> np.ndarray:
    """Name of the training set of each cache row, ``[N]`` object array (see ``TRAIN_SETS``)."""
    names = np.empty(len(kind), dtype=object)
    for name, (k, m) in TRAIN_SETS.items():
        names[(kind == k) & (modality == m)] = name
    return names


def reid_loss_terms(
    emb: torch.Tensor,
    logits: torch.Tensor,
    pid: torch.Tensor,
    modality: torch.Tensor,
    target: torch.Tensor,
    smooth: torch.Tensor,
    settings: ReidSettings,
    *,
    check_labels: bool = True,
) -> dict[str, torch.Tensor]:
    """The loss terms of one batch (unweighted): CE²L's three and AGW/CAJ's triplet.

    Args:
        emb: embeddings ``[N, D]``; logits: ``[N, C]``; pid: dataset identities ``[N]``;
        modality: pixel modality ``[N]`` (0 visible, 1 thermal); target: labels ``0..C-1``
        ``[N]``; smooth: bool ``[N]``, LSR for these samples.
        check_labels: passed to :func:`lsr_cross_entropy`; ``False`` only when ``target`` is
            known to lie in ``0..C-1``.

    Returns:
        ``{"cross": l_cross, "intra": l_intra, "id": l_id, "triplet": l_triplet}``; a term
        whose weight is 0 (the triplet's also with ``triplet_loss="none"``) is a constant zero
        (not computed).

    Raises:
        ValueError: from :func:`lsr_cross_entropy` (label outside ``0..C-1`` when checked).
    """
    zero = emb.new_zeros(())
    terms = {"cross": zero, "intra": zero, "id": zero, "triplet": zero}
    use_triplet = settings.triplet_loss != "none" and settings.weight_triplet
    if settings.weight_cross or settings.weight_intra or use_triplet:
        f = F.normalize(emb, dim=1) if settings.normalize_embedding else emb
    if use_triplet:
        terms["triplet"] = triplet_loss(settings.triplet_loss, f, pid)
    if settings.weight_cross or settings.weight_intra:
        vis = modality == MODALITY_CODE[VISIBLE]
        f_vis, pid_vis = f[vis], pid[vis]
        f_th, pid_th = f[~vis], pid[~vis]
        if settings.weight_cross:
            terms["cross"] = cross_modality_top_ranking(
                f_vis, pid_vis, f_th, pid_th, settings.margin_cross, settings.loss_reduction
            )
        if settings.weight_intra:
            terms["intra"] = intra_modality_constraint(
                f_vis, pid_vis, settings.margin_intra, settings.loss_reduction
            ) + intra_modality_constraint(f_th, pid_th, settings.margin_intra, settings.loss_reduction)
    if settings.weight_id:
        terms["id"] = lsr_cross_entropy(logits, target, settings.lsr_epsilon, smooth, check_labels=check_labels)
    return terms
