"""BatchAugmentation: each step does what the per-image torchvision pipeline would do, on a whole batch."""

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from rgbir_reid.data.transforms import BatchAugmentation

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def pixels(out):
    """Normalised float [N, 3, h, w] back to [0, 255] units."""
    return out * torch.tensor(STD).view(1, 3, 1, 1) * 255 + torch.tensor(MEAN).view(1, 3, 1, 1) * 255


def batch(n=64, h=16, w=8, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, h, w), dtype=np.uint8))


def test_flip_is_per_image_and_about_half():
    x = batch(200)
    out = pixels(BatchAugmentation((16, 8), (16, 8), mean=MEAN, std=STD)(x, torch.Generator().manual_seed(0)))
    same = (out - x.float()).abs().amax(dim=(1, 2, 3)) < 1e-3
    mirrored = (out - x.flip(3).float()).abs().amax(dim=(1, 2, 3)) < 1e-3
    assert bool((same ^ mirrored).all())  # each image is itself or its mirror, never a mix
    assert 60 < int(mirrored.sum()) < 140


def test_crop_is_a_window_of_the_zero_padded_image():
    x = batch(32, 12, 6)
    aug = BatchAugmentation((12, 6), (12, 6), crop_padding=2, mean=MEAN, std=STD)
    out = pixels(aug(x, torch.Generator().manual_seed(1)))
    padded = torch.nn.functional.pad(x.float(), (2, 2, 2, 2))
    offsets = set()
    for i in range(len(x)):
        hits = [(t, l, f) for t in range(5) for l in range(5) for f in (False, True)
                if torch.allclose((lambda p: p.flip(2) if f else p)(padded[i, :, t:t + 12, l:l + 6]), out[i], atol=1e-3)]
        assert hits, f"image {i} is no window of its padded source"
        offsets.add(hits[0][:2])
    assert len(offsets) > 5  # offsets are drawn per image, not once per batch


def test_resize_matches_torchvision_within_one_grey_level():
    x = batch(4, 40, 20)
    aug = BatchAugmentation((16, 8), (16, 8), mean=MEAN, std=STD)
    out = pixels(aug(x, torch.Generator().manual_seed(0)))
    ref = v2.Resize([16, 8], antialias=True)(x).float()
    err = torch.minimum((out - ref).abs().amax(dim=(1, 2, 3)), (out - ref.flip(3)).abs().amax(dim=(1, 2, 3)))
    assert float(err.max()) <= 1.0 + 1e-3


def test_grayscale_gives_luma_and_keeps_infrared():
    colour = batch(8)
    grey_src = batch(8, seed=1)[:, :1].expand(-1, 3, -1, -1).contiguous()  # infrared: R = G = B
    aug = BatchAugmentation((16, 8), (16, 8), random_grayscale=1.0, mean=MEAN, std=STD)
    out = pixels(aug(colour, torch.Generator().manual_seed(0)))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-3) and torch.allclose(out[:, 1], out[:, 2], atol=1e-3)
    luma = (colour.float() * torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    err = torch.minimum((out[:, 0] - luma).abs().amax(dim=(1, 2)), (out[:, 0] - luma.flip(2)).abs().amax(dim=(1, 2)))
    assert float(err.max()) < 1e-3
    out_ir = pixels(aug(grey_src, torch.Generator().manual_seed(0)))
    ref = grey_src[:, 0].float()
    err = torch.minimum((out_ir[:, 0] - ref).abs().amax(dim=(1, 2)), (out_ir[:, 0] - ref.flip(2)).abs().amax(dim=(1, 2)))
    assert float(err.max()) <= 1.0  # luma weights sum to 1: a grey pixel keeps its level
    off = pixels(BatchAugmentation((16, 8), (16, 8), mean=MEAN, std=STD)(colour, torch.Generator().manual_seed(0)))
    assert not torch.allclose(off[:, 0], off[:, 1])


def test_same_generator_state_same_batch_and_normalisation():
    x = batch(16)
    aug = BatchAugmentation((16, 8), (14, 6), crop_padding=1, random_grayscale=0.5, mean=MEAN, std=STD)
    a, b = aug(x, torch.Generator().manual_seed(5)), aug(x, torch.Generator().manual_seed(5))
    assert a.dtype == torch.float32 and a.shape == (16, 3, 14, 6)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(6)))
    # Normalisation: a constant mid-grey image maps to (128/255 - mean) / std in every channel.
    flat = torch.full((2, 3, 16, 8), 128, dtype=torch.uint8)
    out = BatchAugmentation((16, 8), (16, 8), mean=MEAN, std=STD)(flat)
    expected = (128 / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(out[0, :, 0, 0], expected)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="crop_size"):
        BatchAugmentation((16, 8), (20, 8), mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="random_grayscale"):
        BatchAugmentation((16, 8), (16, 8), random_grayscale=1.5, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="uint8"):
        BatchAugmentation((16, 8), (16, 8), mean=MEAN, std=STD)(torch.zeros(2, 3, 16, 8))
