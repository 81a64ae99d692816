"""AGW's weighted regularised triplet and CAJ's variant against values worked out by hand."""

import math

import pytest
import torch

from rgbir_reid.losses.triplet import (
    adaptive_triplet,
    soft_mined_distances,
    triplet_loss,
    weighted_regularized_triplet,
)

# Four 1-D features, identities 0, 0, 1, 1: distances |x_i - x_j| (1e-6 to itself, sqrt of the clamp).
X = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
PID = torch.tensor([0, 0, 1, 1])
SELF = 1e-6


def _soft(values: list[float], sign: float) -> float:
    """Σ w d with w = exp(sign·d - shift) / (Σ exp(sign·d - shift) + 1e-6), the code's shift:
    the largest positive distance (sign +1), 0 for the negatives (sign -1)."""
    shift = max(values) if sign > 0 else 0.0
    e = [math.exp(sign * d - shift) for d in values]
    return sum(w * d for w, d in zip(e, values)) / (sum(e) + 1e-6)


# Anchor by anchor: (positive distances incl. itself, negative distances), read off X.
BY_HAND = [([SELF, 1.0], [3.0, 7.0]), ([1.0, SELF], [2.0, 6.0]), ([SELF, 4.0], [3.0, 2.0]), ([4.0, SELF], [7.0, 6.0])]
D_P = [_soft(p, +1) for p, _ in BY_HAND]
D_N = [_soft(n, -1) for _, n in BY_HAND]


def test_soft_mined_distances_by_hand():
    d_p, d_n = soft_mined_distances(X, PID)
    assert d_p.tolist() == pytest.approx(D_P, abs=1e-6)
    assert d_n.tolist() == pytest.approx(D_N, abs=1e-6)
    # Anchor 0 written out: positives 1e-6 and 1 weighted e^-1 : 1; negatives 3 and 7 weighted e^-3 : e^-7.
    assert d_p[0].item() == pytest.approx((SELF * math.exp(-1) + 1.0) / (math.exp(-1) + 1 + 1e-6), abs=1e-6)
    assert d_n[0].item() == pytest.approx(3.0719, abs=1e-4)  # (3e^-3 + 7e^-7) / (e^-3 + e^-7 + 1e-6)


def test_wrt_is_soft_margin_of_the_weighted_gap():
    expected = sum(math.log1p(math.exp(-(n - p))) for p, n in zip(D_P, D_N)) / 4
    assert weighted_regularized_triplet(X, PID).item() == pytest.approx(expected, abs=1e-6)
    assert triplet_loss("wrt", X, PID).item() == pytest.approx(expected, abs=1e-6)


def test_far_negatives_lose_weight_as_in_the_code():
    """The code's shift of 0 for negatives and its +1e-6: negatives 20 and 30 away get weights
    e^-20 / (e^-20 + e^-30 + 1e-6), about 0.002 in all, so d_n is near 0, not near 20."""
    x = torch.tensor([[0.0], [0.5], [20.0], [30.0]])
    _, d_n = soft_mined_distances(x, torch.tensor([0, 0, 1, 2]))
    w20, w30 = math.exp(-20), math.exp(-30)
    assert d_n[0].item() == pytest.approx((20 * w20 + 30 * w30) / (w20 + w30 + 1e-6), rel=1e-4)
    assert d_n[0].item() < 0.05


def test_adp_squared_gap_with_its_sign():
    """CAJ square=1: s = (d_p - d_n)², target -1 where d_p > d_n (anchor 2 here), +1 elsewhere."""
    violated = [p > n for p, n in zip(D_P, D_N)]
    assert violated == [False, False, True, False]
    expected = sum(math.log1p(math.exp((1 if v else -1) * (p - n) ** 2)) for p, n, v in zip(D_P, D_N, violated)) / 4
    assert adaptive_triplet(X, PID).item() == pytest.approx(expected, abs=1e-6)
    assert triplet_loss("adp", X, PID).item() == pytest.approx(expected, abs=1e-6)
    unsquared = sum(math.log1p(math.exp(-(n - p))) for p, n in zip(D_P, D_N)) / 4
    assert adaptive_triplet(X, PID, square=False).item() == pytest.approx(unsquared, abs=1e-6)


def test_adp_clamp_at_88_stops_the_gradient():
    """Every anchor violated by about 19: (d_p - d_n)² ≈ 361 is clamped to 88, the loss is
    log(1 + e^88) ≈ 88 and no gradient flows (the "stuck at 88.0" of CAJ issue #27)."""
    x = torch.tensor([[0.0], [20.0], [1.0], [21.0]], requires_grad=True)
    loss = adaptive_triplet(x, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == pytest.approx(88.0, abs=1e-4)
    loss.backward()
    assert torch.count_nonzero(x.grad) == 0
    assert weighted_regularized_triplet(x, torch.tensor([0, 0, 1, 1])).item() == pytest.approx(19.0, abs=0.01)


def test_bad_input_named():
    with pytest.raises(ValueError, match="features"):
        weighted_regularized_triplet(X[0], PID)
    with pytest.raises(ValueError, match="unknown triplet loss 'hard'"):
        triplet_loss("hard", X, PID)
