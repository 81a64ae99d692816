"""CAJ's channel augmentations against their definitions, with fixed generators."""

import pytest
import torch

from rgbir_reid.data.channel_augment import (
    CAJ_LUMA,
    ERASE_FILL,
    ChannelViews,
    channel_adaptive_grey,
    channel_random_erasing,
    random_channel_exchange,
)


def _images(n: int, h: int = 2, w: int = 1) -> torch.Tensor:
    """``n`` images whose three channels hold different constant values (R=1, G=2, B=4, scaled by image)."""
    scale = torch.arange(1, n + 1, dtype=torch.float32).view(n, 1, 1, 1)
    return (torch.tensor([1.0, 2.0, 4.0]).view(1, 3, 1, 1) * scale).expand(n, 3, h, w).contiguous()


def test_channel_exchange_copies_one_channel_uniformly():
    x = _images(3000)
    out = random_channel_exchange(x, torch.Generator().manual_seed(0))
    chosen = out[:, 0, 0, 0] / x[:, 0, 0, 0]  # 1, 2 or 4: which channel went everywhere
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert set(chosen.tolist()) == {1.0, 2.0, 4.0}
    for value in (1.0, 2.0, 4.0):  # 1/3 each (3000 draws: sd 0.009)
        assert (chosen == value).float().mean().item() == pytest.approx(1 / 3, abs=0.04)
    # The same generator seed gives the same batch; the input is left as it was.
    assert torch.equal(out, random_channel_exchange(x, torch.Generator().manual_seed(0)))
    assert torch.equal(x, _images(3000))


def test_channel_adaptive_grey_cases_and_frequencies():
    x = _images(4000)
    out = channel_adaptive_grey(x, torch.Generator().manual_seed(1))
    luma = sum(w * v for w, v in zip(CAJ_LUMA, (1.0, 2.0, 4.0)))  # of the unscaled image
    r, g, b = (out[:, c, 0, 0] / x[:, 0, 0, 0] for c in range(3))
    one_channel = {v: (r == v) & (g == v) & (b == v) for v in (1.0, 2.0, 4.0)}
    grey = torch.isclose(r, torch.tensor(luma)) & torch.isclose(g, torch.tensor(luma)) & torch.isclose(b, torch.tensor(luma))
    unchanged = (out == x).flatten(1).all(1)
    cases = torch.stack([*one_channel.values(), grey, unchanged]).float()
    assert torch.equal(cases.sum(0), torch.ones(4000))  # every image is exactly one of the five cases
    # 1/4 for each channel copy; the fourth case split half grey, half unchanged (p = 0.5).
    assert cases.mean(1).tolist() == pytest.approx([0.25, 0.25, 0.25, 0.125, 0.125], abs=0.03)
    never_grey = channel_adaptive_grey(x, torch.Generator().manual_seed(1), grey_probability=0.0)
    assert not torch.isclose(never_grey[:, 0, 0, 0] / x[:, 0, 0, 0], torch.tensor(luma)).any()


def test_channel_random_erasing_one_rectangle_within_bounds():
    torch.manual_seed(0)
    x = torch.randn(200, 3, 32, 16)
    out = channel_random_erasing(x, torch.Generator().manual_seed(2), probability=1.0)
    fill = torch.tensor(ERASE_FILL).view(3, 1, 1)
    areas, tops = [], set()
    for before, after in zip(x, out):
        erased = (after != before).any(0)
        assert erased.any()  # p = 1 and a 32x16 image always has a rectangle that fits within 100 tries
        rows, cols = erased.any(1).nonzero().squeeze(1), erased.any(0).nonzero().squeeze(1)
        h, w = len(rows), len(cols)
        assert rows.max() - rows.min() + 1 == h and cols.max() - cols.min() + 1 == w  # one block
        assert h < 32 and w < 16
        block = after[:, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert torch.equal(block, fill.expand_as(block))  # filled with the code's constants, per channel
        assert erased.sum() == h * w
        areas.append(h * w / (32 * 16))
        tops.add(int(rows.min()))
    # area U(0.02, 0.4) of the image, rounded sides: none far outside; corners vary.
    assert 0.01 <= min(areas) and max(areas) <= 0.45 and len(tops) > 10
    assert torch.equal(channel_random_erasing(x, torch.Generator().manual_seed(2), probability=0.0), x)
    tiny = torch.randn(4, 3, 1, 1)  # no rectangle with h < 1 exists: left as it is
    assert torch.equal(channel_random_erasing(tiny, torch.Generator().manual_seed(2), probability=1.0), tiny)


def test_channel_views_batch_of_caj():
    """P x (K visible + K thermal) in, 3 P K views out: each visible image twice (the second
    channel-exchanged), infrared images channel-adaptive grey, first visible views untouched."""
    images = torch.randint(0, 256, (8, 3, 8, 4), dtype=torch.uint8)
    modality = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    augment = lambda u: u.float() / 255.0  # noqa: E731 - stands in for the pad/crop/flip/normalise step
    views = ChannelViews(exchange=True, adaptive_grey=True)
    x, source = views(augment(images), images, modality, augment, torch.Generator().manual_seed(3))
    assert views.active and x.shape == (12, 3, 8, 4)
    assert source.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 4, 5]
    visible = modality == 0
    assert torch.equal(x[:8][visible], augment(images)[visible])
    second = x[8:]
    assert torch.equal(second[:, 0], second[:, 1]) and torch.equal(second[:, 1], second[:, 2])
    assert ((second[:, :1] == augment(images)[source[8:]]).flatten(2).all(2)).any(1).all()  # one of its channels
    assert not ChannelViews().active
    with pytest.raises(ValueError, match="channel_erasing"):
        ChannelViews(erasing=2.0)
    with pytest.raises(ValueError, match="float images"):
        random_channel_exchange(images)
