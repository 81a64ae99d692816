"""Hand-computed checks of cross-entropy with label-smoothing regularisation."""

import math

import pytest
import torch
import torch.nn.functional as F

from rgbir_reid.losses.lsr import lsr_cross_entropy

# softmax of these logits is exactly (0.5, 0.25, 0.25)
LOGITS = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]], dtype=torch.float64))
LN2 = math.log(2.0)


def test_lsr_only_for_marked_samples():
    # sample 0 smoothed, eps=0.3, C=3: q = (0.8, 0.1, 0.1) -> -(0.8 ln .5 + 0.2 ln .25) = 1.2 ln2
    # sample 1 hard, target 1: -ln .25 = 2 ln2; mean = 1.6 ln2
    loss = lsr_cross_entropy(LOGITS, torch.tensor([0, 1]), 0.3, torch.tensor([True, False]))
    assert loss.item() == pytest.approx(1.6 * LN2)


def test_lsr_all_smoothed_and_all_hard():
    target = torch.tensor([0, 0])
    both = lsr_cross_entropy(LOGITS, target, 0.3, torch.tensor([True, True]))
    assert both.item() == pytest.approx(1.2 * LN2)
    hard = lsr_cross_entropy(LOGITS, target, 0.3, torch.tensor([False, False]))
    assert hard.item() == pytest.approx(LN2)
    assert hard.item() == pytest.approx(F.cross_entropy(LOGITS, target).item())


def test_lsr_matches_torch_label_smoothing():
    # torch's label_smoothing uses the same q(c) = (1-eps)·onehot + eps/C
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 7, generator=g)
    target = torch.randint(0, 7, (5,), generator=g)
    ours = lsr_cross_entropy(logits, target, 0.1, torch.ones(5, dtype=torch.bool))
    ref = F.cross_entropy(logits, target, label_smoothing=0.1)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)


def test_lsr_bad_input():
    with pytest.raises(ValueError, match="epsilon"):
        lsr_cross_entropy(LOGITS, torch.tensor([0, 1]), 1.5, torch.tensor([True, False]))
    with pytest.raises(ValueError, match="target labels"):
        lsr_cross_entropy(LOGITS, torch.tensor([0, 3]), 0.1, torch.tensor([True, False]))
    # the check can be skipped (callers whose labels are in range by construction); the value is unchanged
    args = (LOGITS, torch.tensor([0, 1]), 0.3, torch.tensor([True, False]))
    assert lsr_cross_entropy(*args, check_labels=False).item() == lsr_cross_entropy(*args).item()
    with pytest.raises(ValueError, match="expected logits"):
        lsr_cross_entropy(LOGITS, torch.tensor([0]), 0.1, torch.tensor([True, False]))
