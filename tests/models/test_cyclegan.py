"""CycleGAN networks: shapes, the paper's block rule, PatchGAN receptive field, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rgbir_reid.models.cyclegan import (
    PatchDiscriminator,
    ResnetGenerator,
    build_cyclegan,
    default_n_blocks,
    receptive_field,
    translate,
)



@pytest.mark.parametrize("size", [(256, 128), (32, 16), (30, 18), (288, 144)])
def test_generator_keeps_input_size(size):
    g = ResnetGenerator(ngf=4, n_blocks=1)
    x = torch.rand(2, 3, *size) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, *size)
    assert y.abs().max() <= 1.0  # tanh output


def test_generator_layers_follow_paper():
    g = ResnetGenerator(ngf=64, n_blocks=9)
    convs = [m for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    # c7s1-64, d128, d256, 9 x (2 convs of 256), u128, u64, c7s1-3
    widths = [m.out_channels for m in convs]
    assert widths == [64, 128, 256] + [256] * 18 + [128, 64, 3]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in g.modules()) == 2 + 1 + 18 + 2
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in g.modules()) == 2 + 18


def test_block_rule():
    assert default_n_blocks(256) == 9
    assert default_n_blocks(288) == 9
    assert default_n_blocks(255) == 6
    assert default_n_blocks(128) == 6


@pytest.mark.parametrize("size,out", [((256, 128), (30, 14)), ((256, 256), (30, 30)), ((70, 70), (6, 6))])
def test_discriminator_output_shape(size, out):
    d = PatchDiscriminator(ndf=4)
    assert d(torch.zeros(1, 3, *size)).shape == (1, 1, *out)


def test_patchgan_receptive_field_is_70():
    # r = 1 + 3 * (1 + 2 + 4 + 8 + 8) for 4x4 kernels with strides 2, 2, 2, 1, 1.
    assert receptive_field(PatchDiscriminator(ndf=64, n_layers=3)) == 70
    assert receptive_field(PatchDiscriminator(ndf=8, n_layers=1)) == 1 + 3 * (1 + 2 + 2)


def test_patchgan_output_sees_exactly_its_window():
    # Without instance norm (whose statistics are global) output (0, 0) depends on input rows
    # and columns -23 .. 46: start -(1 + 2 + 4 + 8 + 8) from the padding of 1 per layer, 70 wide.
    d = build_cyclegan(ngf=4, ndf=4, n_blocks=1, seed=0)["D_ir"]
    for i, m in enumerate(d.model):
        if isinstance(m, torch.nn.InstanceNorm2d):
            d.model[i] = torch.nn.Identity()
    x = torch.rand(1, 3, 96, 96)
    outside, inside = x.clone(), x.clone()
    outside[..., 47:, :] = 0.0
    outside[..., :, 47:] = 0.0
    inside[..., 46, 46] = 5.0
    with torch.no_grad():
        base = d(x)[0, 0, 0, 0]
        assert torch.equal(d(outside)[0, 0, 0, 0], base)
        assert not torch.equal(d(inside)[0, 0, 0, 0], base)


def test_discriminator_pads_tiny_inputs():
    d = PatchDiscriminator(ndf=4, n_layers=3)
    assert d.min_side == 24  # 24 -> 12 -> 6 -> 3 -> 2 -> 1
    assert d(torch.zeros(2, 3, 32, 16)).shape == (2, 1, 2, 1)  # width padded 16 -> 24


def test_every_parameter_gets_a_gradient_and_outputs_are_finite():
    nets = build_cyclegan(ngf=4, ndf=4, n_blocks=2, seed=0)
    x = torch.rand(1, 3, 32, 16) * 2 - 1
    loss = nets["D_ir"](nets["G_rgb2ir"](x)).mean() + nets["D_rgb"](nets["G_ir2rgb"](x)).mean()
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in nets.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_build_is_seeded():
    a = build_cyclegan(ngf=4, ndf=4, n_blocks=1, seed=3).state_dict()
    b = build_cyclegan(ngf=4, ndf=4, n_blocks=1, seed=3).state_dict()
    c = build_cyclegan(ngf=4, ndf=4, n_blocks=1, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_translate_uint8_batches_equal_single():
    g = build_cyclegan(ngf=4, ndf=4, n_blocks=1, seed=0)["G_rgb2ir"]
    imgs = np.random.default_rng(0).integers(0, 256, (5, 30, 18, 3), dtype=np.uint8)
    batched = translate(g, imgs, batch_size=4)
    single = np.concatenate([translate(g, imgs[i : i + 1], batch_size=1) for i in range(5)])
    assert batched.dtype == np.uint8 and batched.shape == imgs.shape
    # Instance norm makes every image independent of its batch-mates; float summation order may differ.
    assert np.abs(batched.astype(int) - single.astype(int)).max() <= 1
