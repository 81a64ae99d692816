"""CycleGAN losses on hand-computed inputs; the seeded history buffer."""

from __future__ import annotations

import pytest
import torch

from rgbir_reid.losses.gan import (
    ImageHistoryBuffer,
    cycle_consistency_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)


def test_lsgan_discriminator_loss_hand_computed():
    real = torch.tensor([1.0, 0.0, 0.5, 2.0])  # (x-1)^2: 0, 1, 0.25, 1 -> mean 0.5625
    fake = torch.tensor([0.0, 1.0, -0.5, 0.5])  # x^2: 0, 1, 0.25, 0.25 -> mean 0.375
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.5625 + 0.375))


def test_lsgan_generator_loss_hand_computed():
    fake = torch.tensor([[1.0, 0.0], [3.0, 0.5]])  # (x-1)^2: 0, 1, 4, 0.25 -> mean 1.3125
    assert lsgan_generator_loss(fake).item() == pytest.approx(1.3125)
    assert lsgan_generator_loss(torch.ones(2, 1, 3, 3)).item() == 0.0


def test_perfect_discriminator_and_generator_give_zero():
    assert lsgan_discriminator_loss(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == 0.0


def test_cycle_and_identity_losses_hand_computed():
    real = torch.zeros(1, 3, 2, 2)
    rec = torch.zeros(1, 3, 2, 2)
    rec[0, 0, 0, 0] = 1.2  # |1.2| + |-0.6| over 12 elements = 0.15
    rec[0, 2, 1, 1] = -0.6
    assert cycle_consistency_loss(real, rec).item() == pytest.approx(0.15)
    assert identity_loss(real, rec).item() == pytest.approx(0.15)
    assert cycle_consistency_loss(rec, rec).item() == 0.0


def test_losses_have_gradients():
    fake = torch.zeros(2, 1, 3, 3, requires_grad=True)
    lsgan_generator_loss(fake).backward()
    # d/dx mean((x-1)^2) = 2 (x - 1) / n = -2 / 18
    assert torch.allclose(fake.grad, torch.full_like(fake, -2.0 / 18))


def _images(start: int, n: int) -> torch.Tensor:
    # Image k is filled with the value k, so returned images can be identified.
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 2, 2).clone()


def _ids(batch: torch.Tensor) -> list[int]:
    return [int(v) for v in batch[:, 0, 0, 0]]


def test_history_buffer_fills_then_mixes():
    buf = ImageHistoryBuffer(3, torch.Generator().manual_seed(0))
    # While filling, the new images come back unchanged and are stored.
    assert _ids(buf.query(_images(0, 2))) == [0, 1]
    assert _ids(buf.query(_images(2, 1))) == [2]
    assert len(buf) == 3
    seen = []
    for k in range(3, 203):
        seen += _ids(buf.query(_images(k, 1)))
    assert len(buf) == 3
    old = sum(1 for k, v in zip(range(3, 203), seen) if v != k)
    # Each query returns an older image with probability 1/2: 200 draws -> 100 +- ~21 (3 sd).
    assert 70 <= old <= 130
    assert all(v < k for k, v in zip(range(3, 203), seen) if v != k)
    # The buffer holds 3 distinct images, all ever generated.
    stored = _ids(torch.cat(buf.images))
    assert len(set(stored)) == 3 and all(0 <= v < 203 for v in stored)


def test_history_buffer_is_seeded_and_resumable():
    def run(buf, start, stop):
        return [_ids(buf.query(_images(k, 2))) for k in range(start, stop, 2)]

    a = ImageHistoryBuffer(4, torch.Generator().manual_seed(7))
    b = ImageHistoryBuffer(4, torch.Generator().manual_seed(7))
    c = ImageHistoryBuffer(4, torch.Generator().manual_seed(8))
    out_a, out_b, out_c = run(a, 0, 60), run(b, 0, 60), run(c, 0, 60)
    assert out_a == out_b
    assert out_a != out_c
    # Save half-way, restore into a fresh buffer with another seed: the rest is identical.
    d = ImageHistoryBuffer(4, torch.Generator().manual_seed(7))
    run(d, 0, 30)
    e = ImageHistoryBuffer(4, torch.Generator().manual_seed(123))
    e.load_state_dict(d.state_dict())
    assert run(e, 30, 60) == out_a[15:]


def test_history_buffer_does_not_touch_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    buf = ImageHistoryBuffer(1, torch.Generator().manual_seed(0))
    for k in range(20):
        buf.query(_images(k, 1))
    assert torch.equal(torch.rand(1), expected)


def test_history_buffer_size_zero_passes_through_detached():
    x = torch.ones(2, 3, 2, 2, requires_grad=True)
    out = ImageHistoryBuffer(0, torch.Generator()).query(x)
    assert torch.equal(out, x) and not out.requires_grad
