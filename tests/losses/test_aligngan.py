"""AlignGAN losses: hand-computed values of the cosine batch-hard triplet and the joint discriminator's loss."""

import math

import pytest
import torch

from rgbir_reid.losses.aligngan import cosine_batch_hard_triplet, joint_discriminator_loss, roll_identities


def test_triplet_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pool = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    pa, pp = torch.tensor([0, 1]), torch.tensor([0, 0, 1])
    # anchor 0: hardest positive cos([1,0],[1,1]) = 1/sqrt2, hardest negative cos([1,0],[0,1]) = 0
    #   -> max(0, 0 - 0.7071 + 1) = 0.2929
    # anchor 1: hardest positive 1, hardest negative 1/sqrt2 -> 0.7071 - 1 + 1 = 0.7071
    loss = cosine_batch_hard_triplet(a, pool, pool, pa, pp, pp, margin=1.0)
    expected = ((1 - 1 / math.sqrt(2)) + 1 / math.sqrt(2)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # cosine: the lengths of the vectors do not matter
    scaled = cosine_batch_hard_triplet(3 * a, 0.5 * pool, 2 * pool, pa, pp, pp, margin=1.0)
    assert scaled.item() == pytest.approx(expected, abs=1e-6)
    # margin 0.2: anchor 0 max(0, -0.7071 + 0.2) = 0, anchor 1 max(0, -0.2929 + 0.2) = 0
    assert cosine_batch_hard_triplet(a, pool, pool, pa, pp, pp, margin=0.2).item() == 0.0


def test_triplet_positives_and_negatives_come_from_their_own_sets():
    a = torch.tensor([[1.0, 0.0]])
    positives = torch.tensor([[0.0, 1.0]])  # same identity, orthogonal: s_p = 0
    negatives = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # identities 0 (same: ignored) and 1: s_n = 0
    loss = cosine_batch_hard_triplet(a, positives, negatives, torch.tensor([0]), torch.tensor([0]), torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(1.0)


def test_triplet_anchor_without_positive_or_negative_counts_zero():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    pool = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    loss = cosine_batch_hard_triplet(a, pool, pool, torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1]))
    assert loss.item() == pytest.approx(1.0 / 3, abs=1e-6)  # (0.2929 + 0.7071 + 0) / 3
    loss.backward()
    assert torch.isfinite(a.grad).all() and a.grad[2].abs().sum() == 0


def test_triplet_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(k, 5, generator=g) for k in (6, 7, 8))
    la, lp, ln = (torch.randint(0, 3, (k,), generator=g) for k in (6, 7, 8))
    terms = []
    for i in range(6):
        cp = [torch.cosine_similarity(a[i], p[j], 0) for j in range(7) if lp[j] == la[i]]
        cn = [torch.cosine_similarity(a[i], n[k], 0) for k in range(8) if ln[k] != la[i]]
        terms.append(max(0.0, float(max(cn)) - float(min(cp)) + 1.0) if cp and cn else 0.0)
    assert cosine_batch_hard_triplet(a, p, n, la, lp, ln).item() == pytest.approx(sum(terms) / 6, abs=1e-5)


def test_roll_identities_gives_another_identity():
    pids = torch.tensor([3, 3, 5, 5, 9, 9])
    rolled = roll_identities(pids, 2)
    assert rolled.tolist() == [5, 5, 9, 9, 3, 3]
    assert (rolled != pids).all()
    with pytest.raises(ValueError):
        roll_identities(torch.tensor([1, 1]), 2)  # one identity: no wrong pair possible
    with pytest.raises(ValueError):
        roll_identities(pids, 4)


def _mean_discriminator(images, features):
    return images.mean(dim=(1, 2, 3)) + features.mean(dim=(1, 2, 3))


def test_joint_discriminator_loss_hand_computed():
    # Two identities x 2 images. D(x, f) = mean(x) + mean(f).
    x = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(4, 1, 1, 1).expand(4, 3, 4, 4)
    f = torch.zeros(4, 2, 2, 2)
    x_fake = torch.full((4, 3, 4, 4), 0.5)
    f_fake = torch.full((4, 2, 2, 2), 0.25)
    # real:  D = [1, 1, 0, 0]             -> mean (D - 1)^2 = 0.5
    # wrong: D = [0, 0, 1, 1]             -> mean D^2 = 0.5
    # x, f~: D = [1.25, 1.25, 0.25, 0.25] -> 0.8125
    # x~, f: D = 0.5                      -> 0.25
    # x~, f~: D = 0.75                    -> 0.5625
    expected = 0.5 * (0.5 + (0.5 + 0.8125 + 0.25 + 0.5625) / 4)
    loss = joint_discriminator_loss(_mean_discriminator, x, f, x_fake, f_fake, instances=2)
    assert loss.item() == pytest.approx(expected)
    assert expected == pytest.approx(0.515625)


def test_joint_discriminator_pairs_and_detach():
    # Each image carries its identity as its value; the first fake pair must pair every real
    # feature with an image of another identity, and no input may receive a gradient.
    pid = torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0, 2.0])
    x = pid.view(6, 1, 1, 1).expand(6, 3, 4, 4).clone().requires_grad_(True)
    f = pid.view(6, 1, 1, 1).expand(6, 2, 2, 2).clone().requires_grad_(True)
    x_fake = (x + 10).detach().requires_grad_(True)
    f_fake = (f + 10).detach().requires_grad_(True)
    weight = torch.nn.Parameter(torch.ones(()))
    calls = []

    def d(images, features):
        calls.append((images[:, 0, 0, 0].tolist(), features[:, 0, 0, 0].tolist()))
        return weight * (images.mean(dim=(1, 2, 3)) - features.mean(dim=(1, 2, 3)))

    joint_discriminator_loss(d, x, f, x_fake, f_fake, instances=2).backward()
    real, wrong, real_fakefeat, fakeimg_real, fake_fake = calls
    assert real == (pid.tolist(), pid.tolist())
    assert wrong[1] == pid.tolist() and all(wi != fi for wi, fi in zip(*wrong))
    assert sorted(wrong[0]) == sorted(pid.tolist())  # real images, only shifted
    assert real_fakefeat == (pid.tolist(), (pid + 10).tolist())
    assert fakeimg_real == ((pid + 10).tolist(), pid.tolist())
    assert fake_fake == ((pid + 10).tolist(), (pid + 10).tolist())
    assert all(t.grad is None for t in (x, f, x_fake, f_fake)) and weight.grad is not None
