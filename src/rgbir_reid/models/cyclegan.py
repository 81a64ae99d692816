"""CycleGAN networks: ResNet generator and 70x70 PatchGAN discriminator.

Source: Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017 (the paper's Sec. 4 and Appendix 7.2, "Network architectures").

Names by modality, mapped once to the paper's symbols (X = visible/RGB, Y = thermal/IR):

============  ============  ==========================================================
this code     paper         role
============  ============  ==========================================================
G_rgb2ir      G: X -> Y     turns a visible image into a thermal one
G_ir2rgb      F: Y -> X     turns a thermal image into a visible one
D_ir          D_Y           tells real thermal images from ``G_rgb2ir`` outputs
D_rgb         D_X           tells real visible images from ``G_ir2rgb`` outputs
============  ============  ==========================================================

Images enter and leave the networks as float tensors ``[N, 3, H, W]`` in [-1, 1]
(see :func:`rgbir_reid.data.transforms.to_tensor`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rgbir_reid.data.transforms import to_tensor, to_uint8

# Paper, Appendix 7.2: "We use 6 residual blocks for 128x128 training images, and 9 residual
# blocks for 256x256 or higher-resolution training images."
BLOCKS_LARGE = 9
BLOCKS_SMALL = 6
LARGE_HEIGHT = 256

# Direction names used in checkpoints, converters and the HDF5 cache.
GENERATOR_NAMES = ("G_rgb2ir", "G_ir2rgb")
DISCRIMINATOR_NAMES = ("D_ir", "D_rgb")


def default_n_blocks(image_height: int) -> int:
    """Residual blocks of the paper's generator for images ``image_height`` pixels high.

    9 blocks at 256 px and above, 6 below (paper, Appendix 7.2). The rule is applied to the
    height because person crops are taller than wide (e.g. 288x144 -> 9, 128x64 -> 6).
    """
    return BLOCKS_LARGE if image_height >= LARGE_HEIGHT else BLOCKS_SMALL


class ResidualBlock(nn.Module):
    """``R256``: two 3x3 convolutions (reflection padding, instance norm) plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """The paper's generator: ``c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3``.

    ``c7s1-k`` is a 7x7 convolution (stride 1, reflection padding) + instance norm + ReLU;
    ``dk`` a 3x3 stride-2 convolution + instance norm + ReLU; ``uk`` a 3x3 stride-1/2
    (transposed) convolution + instance norm + ReLU; the last layer ends in ``tanh`` instead.
    ``ngf`` scales every width (paper: 64).

    Fully convolutional: any ``H, W`` works. Inputs whose sides are not multiples of 4 (the
    two stride-2 steps) are reflection-padded up to the next multiple and the output is cropped
    back, so the output always has the input's size.

    Shapes: ``[N, 3, H, W]`` in [-1, 1] -> ``[N, 3, H, W]`` in [-1, 1].
    """

    def __init__(self, ngf: int = 64, n_blocks: int = BLOCKS_LARGE, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        if ngf < 1 or n_blocks < 0:
            raise ValueError(f"ngf must be >= 1 and n_blocks >= 0, got ngf={ngf}, n_blocks={n_blocks}")
        self.ngf, self.n_blocks = ngf, n_blocks
        self.multiple = 4  # two stride-2 down-samplings
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(inplace=True),
        ]
        ch = ngf
        for _ in range(2):  # d128, d256
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ch * 2), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):  # u128, u64
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        if pad_h or pad_w:
            # Reflection needs pad < side; replicate covers the tiny images reflection cannot.
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return self.model(x)[..., :h, :w]


class PatchDiscriminator(nn.Module):
    """The paper's 70x70 PatchGAN: ``C64-C128-C256-C512`` then a 1-channel convolution.

    ``Ck`` is a 4x4 convolution (stride 2, except the last ``C`` which has stride 1) + instance
    norm + LeakyReLU(0.2); ``C64`` has no norm (paper, Appendix 7.2). With ``n_layers = 3``
    each output value sees a 70x70 input patch (see :func:`receptive_field`). ``ndf`` scales
    the widths (paper: 64); widths are capped at ``8 * ndf``.

    Shapes: ``[N, 3, H, W]`` -> ``[N, 1, H', W']`` raw scores (least-squares GAN: no sigmoid);
    for ``n_layers = 3``, ``H' = H / 8 - 2`` when ``H`` is a multiple of 8 (256 -> 30, 32 -> 2).
    Inputs with a side below :attr:`min_side` (24 for ``n_layers = 3``; only tiny test images
    such as 32x16) are reflection-padded up to it, so that at least one score comes out.
    """

    def __init__(self, ndf: int = 64, n_layers: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        if ndf < 1 or n_layers < 1:
            raise ValueError(f"ndf and n_layers must be >= 1, got ndf={ndf}, n_layers={n_layers}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        self.min_side = next(s for s in range(1, 4096) if _conv_stack_output(self.model, s) >= 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = max(self.min_side - h, 0), max(self.min_side - w, 0)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode=mode)
        return self.model(x)


def _conv_stack_output(module: nn.Module, side: int) -> int:
    """Output side of the ``Conv2d`` layers of ``module`` (in order) for an input ``side`` pixels wide."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            side = (side + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
            if side < 1:
                return 0
    return side


def receptive_field(module: nn.Module) -> int:
    """Side in pixels of the input patch one output value of a plain conv stack depends on.

    Walks the ``Conv2d`` layers in registration order (valid for sequential stacks such as
    :class:`PatchDiscriminator`): ``r = 1 + sum_l (k_l - 1) * prod_{m < l} s_m``.
    """
    r, jump = 1, 1
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            k, s = m.kernel_size[0], m.stride[0]
            r += (k - 1) * jump
            jump *= s
    return r


def init_weights(module: nn.Module, generator: torch.Generator, std: float = 0.02) -> None:
    """Initialise conv weights from N(0, std^2) and biases to 0, drawing from ``generator``.

    The paper's networks are initialised from a Gaussian with std 0.02 (as in pix2pix);
    ``generator`` makes it reproducible without touching the global RNG.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * std)
                if m.bias is not None:
                    m.bias.zero_()


def build_cyclegan(
    *,
    ngf: int = 64,
    ndf: int = 64,
    n_blocks: int = BLOCKS_LARGE,
    n_disc_layers: int = 3,
    seed: int = 0,
) -> nn.ModuleDict:
    """The four CycleGAN networks, seeded: ``G_rgb2ir``, ``G_ir2rgb``, ``D_ir``, ``D_rgb``.

    See the module docstring for how the names map to the paper's G, F, D_Y, D_X.
    """
    gen = torch.Generator().manual_seed(seed)
    nets = nn.ModuleDict(
        {
            "G_rgb2ir": ResnetGenerator(ngf, n_blocks),
            "G_ir2rgb": ResnetGenerator(ngf, n_blocks),
            "D_ir": PatchDiscriminator(ndf, n_disc_layers),
            "D_rgb": PatchDiscriminator(ndf, n_disc_layers),
        }
    )
    for name in (*GENERATOR_NAMES, *DISCRIMINATOR_NAMES):
        init_weights(nets[name], gen)
    return nets


def translate(
    generator: nn.Module,
    images: np.ndarray,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> np.ndarray:
    """Run a generator on uint8 images, ``batch_size`` at a time, in inference mode.

    Args:
        generator: a :class:`ResnetGenerator` (any ``H, W`` works, see its docstring).
        images: uint8 ``[B, H, W, 3]`` RGB-order images.
        device: where the generator runs (it must already be there).
        batch_size: images per forward pass.

    Returns:
        uint8 ``[B, H, W, 3]`` translated images (tanh output mapped back from [-1, 1]).
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"translate: expected uint8 [B, H, W, 3], got shape {images.shape}")
    if len(images) == 0:
        return images.copy()
    was_training = generator.training
    generator.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = to_tensor(images[start : start + batch_size]).to(device)
            out.append(to_uint8(generator(x)))
    generator.train(was_training)
    return np.concatenate(out, 0)
