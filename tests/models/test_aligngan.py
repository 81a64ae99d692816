"""AlignGAN networks: shapes at the official sizes, finite outputs, every parameter gets a gradient."""

import pytest
import torch

from rgbir_reid.models.aligngan import (
    BACKBONES,
    Embedder,
    FeatureGenerator,
    JointDiscriminator,
    PatchGANDiscriminator,
    PixelGenerator,
    build_aligngan,
    to_reid_input,
)
from rgbir_reid.models.reid import IMAGENET_MEAN, IMAGENET_STD


def assert_every_parameter_gets_a_gradient(module, output):
    outputs = output if isinstance(output, tuple) else (output,)
    torch.manual_seed(0)
    loss = sum((o * torch.randn_like(o)).sum() for o in outputs)
    loss.backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert not missing, f"no (finite, non-zero) gradient for {missing[:5]}"


def test_pixel_generator_official_size():
    g = PixelGenerator(64, 4)
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in g.modules()) == 8  # 4 blocks x 2
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, 128, 128) and torch.isfinite(y).all() and y.abs().max() <= 1
    assert all(m.bias is None for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    assert_every_parameter_gets_a_gradient(g, y)


def test_pixel_generator_rejects_sides_not_multiple_of_4():
    with pytest.raises(ValueError, match="multiples of 4"):
        PixelGenerator(4, 1)(torch.zeros(1, 3, 30, 16))


def test_patchgan_official_size():
    d = PatchGANDiscriminator(64, 4)
    s = d(torch.rand(2, 3, 128, 128) * 2 - 1)
    assert s.shape == (2, 1, 4, 4) and torch.isfinite(s).all()  # official ones/zeros targets [16, 1, 4, 4]
    assert_every_parameter_gets_a_gradient(d, s)


def test_joint_discriminator_official_size():
    d = JointDiscriminator(2048, 64)
    s = d(torch.rand(2, 3, 128, 128) * 2 - 1, torch.rand(2, 2048, 24, 12))
    assert s.shape == (2, 1, 4, 4) and torch.isfinite(s).all()
    assert d.joint_convs[0].in_channels == 256 + 64  # image branch 256 x 16 x 16 + feature branch 64
    assert_every_parameter_gets_a_gradient(d, s)


def test_joint_discriminator_depends_on_both_inputs():
    torch.manual_seed(1)
    d = JointDiscriminator(16, 8)
    x, f = torch.rand(2, 3, 64, 32), torch.rand(2, 16, 4, 2)
    base = d(x, f)
    assert not torch.allclose(base, d(x, f + 1.0)) and not torch.allclose(base, d(x.flip(2), f))


def test_feature_generator_official_size_last_stride_1():
    enc = FeatureGenerator("resnet50", "none", last_stride=1)
    assert enc.out_channels == 2048
    x = torch.randn(2, 3, 384, 192)
    f = enc(x)
    assert f.shape == (2, 2048, 24, 12) and torch.isfinite(f).all()
    assert_every_parameter_gets_a_gradient(enc, f)


@pytest.mark.parametrize("backbone, channels", [("resnet18", 512), ("shufflenet_v2_x0_5", 1024)])
def test_small_backbones(backbone, channels):
    enc = FeatureGenerator(backbone, "none")
    f = enc(torch.randn(2, 3, 64, 32))
    assert f.shape == (2, channels, 4, 2) and torch.isfinite(f).all()
    assert_every_parameter_gets_a_gradient(enc, f)


def test_unknown_backbone_lists_valid_ones():
    with pytest.raises(ValueError, match="resnet50") as e:
        FeatureGenerator("alexnet", "none")
    assert "alexnet" not in str(e.value).split("valid:")[1]
    assert "alexnet" not in BACKBONES


def test_embedder_official_size():
    emb = Embedder(2048, 395)
    pooled, logits, embedding = emb(torch.rand(2, 2048, 24, 12))
    assert pooled.shape == (2, 2048) and logits.shape == (2, 395) and embedding.shape == (2, 256)
    assert_every_parameter_gets_a_gradient(emb, (logits, embedding))


def test_embedder_batch_of_one_and_pooled_is_the_average():
    emb = Embedder(8, 3, bottleneck_dim=4, embedding_dim=5).eval()
    x = torch.rand(1, 8, 3, 2)
    pooled, logits, embedding = emb(x)  # official torch.squeeze would drop the batch axis here
    assert pooled.shape == (1, 8) and logits.shape == (1, 3) and embedding.shape == (1, 5)
    assert torch.allclose(pooled, x.mean(dim=(2, 3)))


def test_to_reid_input_values_and_size():
    x = torch.full((2, 3, 8, 8), -1.0)
    x[:, :, :, 4:] = 1.0
    y = to_reid_input(x, (16, 8))
    assert y.shape == (2, 3, 16, 8)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    assert torch.allclose(y[0, :, 0, 0], (0 - mean) / std) and torch.allclose(y[0, :, 0, -1], (1 - mean) / std)


def test_build_is_seeded_and_keeps_the_caller_rng():
    state = torch.get_rng_state()
    kwargs = dict(backbone="shufflenet_v2_x0_5", pretrained="none", ngf=4, ndf=4, reid_size=(32, 16))
    m1, d1 = build_aligngan(3, seed=7, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)
    m2, d2 = build_aligngan(3, seed=7, **kwargs)
    m3, _ = build_aligngan(3, seed=8, **kwargs)
    for a, b in ((m1, m2), (d1, d2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(m1.G_rgb2ir.model[0].weight, m3.G_rgb2ir.model[0].weight)
    # official weights_init_normal: conv weights N(0, 0.02)
    w = torch.cat([m.weight.detach().flatten() for m in m1.G_rgb2ir.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002
    assert set(d1) == {"D_rgb", "D_ir", "D_rgb_warmup", "D_ir_warmup"}
    assert d1["D_ir"].feature_convs[0].in_channels == m1.feature_dim == 1024
