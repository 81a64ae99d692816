"""Hand-computed checks of the CE²L ranking losses on tiny 2-D embeddings."""

import math

import pytest
import torch

from rgbir_reid.losses.ranking import cross_modality_top_ranking, euclidean_distance, intra_modality_constraint


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_euclidean_distance_hand_values():
    d = euclidean_distance(t([[0, 0], [3, 0]]), t([[0, 4], [3, 0]]))
    assert torch.allclose(d, t([[4, 3], [5, 0]]), atol=1e-6)


def test_euclidean_distance_matches_the_definition_with_finite_gradients():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=gen, dtype=torch.float64), torch.randn(4, 5, generator=gen, dtype=torch.float64)
    b[0] = a[2]  # a coincident pair: distance 0
    expected = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1).sqrt()
    a.requires_grad_(True)
    d = euclidean_distance(a, b)
    assert torch.allclose(d, expected, atol=1e-6) and d[2, 0].item() < 1e-5
    d.sum().backward()
    assert torch.isfinite(a.grad).all()


def test_cross_modality_top_ranking_both_directions():
    # v0=(0,0) id1, v1=(3,0) id2; t0=(0,1) id1, t1=(1,0) id2; rho1 = 0.5
    # V->T: v0: D(v0,t0)=1, hardest neg D(v0,t1)=1 -> 1-1+0.5 = 0.5
    #       v1: D(v1,t1)=2, hardest neg D(v1,t0)=sqrt(10) -> negative -> 0
    # T->V: t0: D(t0,v0)=1, neg D(t0,v1)=sqrt(10) -> 0
    #       t1: D(t1,v1)=2, neg D(t1,v0)=1 -> 2-1+0.5 = 1.5
    ev, pv = t([[0, 0], [3, 0]]), torch.tensor([1, 2])
    et, pt = t([[0, 1], [1, 0]]), torch.tensor([1, 2])
    total = cross_modality_top_ranking(ev, pv, et, pt, margin=0.5, reduction="sum")
    assert total.item() == pytest.approx(2.0)
    # mean: each direction has 2 (anchor, positive) terms: 0.5/2 + 1.5/2
    mean = cross_modality_top_ranking(ev, pv, et, pt, margin=0.5, reduction="mean")
    assert mean.item() == pytest.approx(1.0)


def test_cross_modality_uses_hardest_negative_and_skips_undefined_anchors():
    # v0=(0,0) id1; thermal: (0,1) id1, (2,0) id2, (0,3) id3; rho1 = 1.5
    # V->T: positive D=1, negatives D=2 and 3 -> hardest 2 -> 1-2+1.5 = 0.5
    # T->V: t0 has a positive but no visible negative; t1, t2 have no visible positive -> nothing
    ev, pv = t([[0, 0]]), torch.tensor([1])
    et, pt = t([[0, 1], [2, 0], [0, 3]]), torch.tensor([1, 2, 3])
    assert cross_modality_top_ranking(ev, pv, et, pt, 1.5, "sum").item() == pytest.approx(0.5)
    assert cross_modality_top_ranking(ev, pv, et, pt, 1.5, "mean").item() == pytest.approx(0.5)


def test_cross_modality_multiple_positives():
    # v0=(0,0) id1; thermal (0,1) id1, (0,2) id1, (0,1.5) id2; rho1 = 1
    # V->T: positives D=1 and 2, hardest neg 1.5 -> 0.5 + 1.5 = 2.0
    # T->V: t0 (0,1): pos D=1, no visible negative -> skipped; same for t1; t2 no positive
    ev, pv = t([[0, 0]]), torch.tensor([1])
    et, pt = t([[0, 1], [0, 2], [0, 1.5]]), torch.tensor([1, 1, 2])
    assert cross_modality_top_ranking(ev, pv, et, pt, 1.0, "sum").item() == pytest.approx(2.0)
    assert cross_modality_top_ranking(ev, pv, et, pt, 1.0, "mean").item() == pytest.approx(1.0)


def test_cross_modality_no_terms_is_zero_with_grad():
    ev = t([[0, 0]]).requires_grad_()
    loss = cross_modality_top_ranking(ev, torch.tensor([1]), t([[1, 1]]), torch.tensor([2]), 0.5)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(ev.grad, torch.zeros_like(ev))


def test_cross_modality_batch_of_one_modality_is_zero_with_grad():
    # A batch with no thermal (or no visible) image at all has no term in either direction.
    v = torch.randn(4, 8, requires_grad=True)
    for reduction in ("mean", "sum"):
        loss = cross_modality_top_ranking(v, torch.arange(4), v.new_zeros(0, 8), torch.zeros(0, dtype=torch.long),
                                          0.5, reduction)
        assert loss.item() == 0.0
        loss.backward()
        assert v.grad is not None and torch.all(v.grad == 0)


def test_intra_modality_constraint_hand_values():
    # e0=(0,0) id1, e1=(0.4,0.3) id1, e2=(0.4,0) id2, e3=(3,0) id3; rho2 = 0.5
    # different-id pairs: (0,2) D=0.4 -> 0.1; (1,2) D=0.3 -> 0.2; (0,3), (1,3), (2,3) far -> 0
    # the same-id pair (0,1) D=0.5 is excluded
    emb = t([[0, 0], [0.4, 0.3], [0.4, 0], [3, 0]])
    pid = torch.tensor([1, 1, 2, 3])
    assert intra_modality_constraint(emb, pid, 0.5, "sum").item() == pytest.approx(0.3)
    assert intra_modality_constraint(emb, pid, 0.5, "mean").item() == pytest.approx(0.3 / 5)


def test_intra_same_identity_only_is_zero():
    emb = t([[0, 0], [0, 0.1]])
    assert intra_modality_constraint(emb, torch.tensor([4, 4]), 1.0).item() == 0.0


def test_gradients_finite_for_coincident_points():
    ev = t([[0, 0], [0, 0]]).requires_grad_()
    et = t([[0, 0], [0, 0]]).requires_grad_()
    pid = torch.tensor([1, 2])
    loss = cross_modality_top_ranking(ev, pid, et, pid, 0.5) + intra_modality_constraint(ev, pid, 0.5)
    loss.backward()
    assert math.isfinite(loss.item())
    assert torch.isfinite(ev.grad).all() and torch.isfinite(et.grad).all()


def test_bad_input_raises():
    with pytest.raises(ValueError, match="reduction"):
        intra_modality_constraint(t([[0, 0], [1, 1]]), torch.tensor([1, 2]), 0.5, reduction="max")
    with pytest.raises(ValueError, match="embedding sizes differ"):
        cross_modality_top_ranking(t([[0, 0]]), torch.tensor([1]), t([[0, 0, 0]]), torch.tensor([1]), 0.5)
    with pytest.raises(ValueError, match="expected embeddings"):
        intra_modality_constraint(t([[0, 0]]), torch.tensor([1, 2]), 0.5)
