"""AlignGAN networks: pixel generators, PatchGAN and joint discriminators, feature generator, embedder.

Source: Wang et al., "RGB-Infrared Cross-Modality Person Re-Identification via Joint Pixel and
Feature Alignment", ICCV 2019, and its official code (wangguanan/AlignGAN, ``core/model.py`` and
``core/base.py``), as described in this project's reference notes
(``aligngan-and-baselines.md`` §1.2). Our own code; the facts follow the official code.

Names follow the official code (by modality, as this library names things):

=================  =======================================================================
this code          role
=================  =======================================================================
``G_rgb2ir``       pixel generator: visible -> fake infrared (the paper's pixel alignment)
``G_ir2rgb``       the cycle's other generator: infrared -> fake visible
``D_rgb``          PatchGAN on visible images (fresh for the joint stage, see training)
``D_ir``           joint discriminator on (infrared image, feature map) pairs
``D_rgb_warmup``   PatchGAN on visible images, pixel warm-up only
``D_ir_warmup``    PatchGAN on infrared images, pixel warm-up only
``encoder``        feature generator: the backbone, shared by real and fake infrared
``embedder``       pooled feature -> identity logits and the triplet embedding
=================  =======================================================================

There is no visible stream: a visible image is always turned into a fake infrared image first.

Image conventions (official ``main.py`` / ``Base.process_images_4_encoder``): the pixel networks
take and give float ``[N, 3, H, W]`` in [-1, 1] at the GAN size (official 128x128); the encoder
takes those images bilinearly resized to the re-ID size (official 384x192), mapped to [0, 1] and
ImageNet-normalised (:func:`to_reid_input`).

Assumptions beyond the official code, each a setting:

- The backbone can be any ResNet / ShuffleNet V2 of :data:`rgbir_reid.models.reid.STAGE_SPLITTERS`
  (official: ResNet-50, ImageNet, last stride 1). Its output width replaces the official 2048 in
  the joint discriminator's feature branch and the embedder.
- Image sizes are configurable; the joint discriminator resizes the feature map to the size of
  its image branch's map (official: a fixed 16x16, which is that size for 128x128 images).
- The embedder flattens the pooled map instead of ``torch.squeeze`` (which drops the batch axis
  for a batch of one; reference §1.7).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rgbir_reid.models.cyclegan import ResnetGenerator, init_weights
from rgbir_reid.models.reid import IMAGENET_MEAN, IMAGENET_STD, STAGE_SPLITTERS, load_torchvision_backbone

# Official Generator(64, 4): 4 residual blocks (not CycleGAN's 6 or 9).
N_BLOCKS = 4
# Official Discriminator(128, 64, 4): 4 strided hidden layers after the input convolution.
N_DISC_LAYERS = 4
# Backbones whose stages end in a feature map (AlexNet ends in fc6, so it cannot feed D_ir).
BACKBONES = tuple(name for name in STAGE_SPLITTERS if name != "alexnet")
# Official ``Embeder``: bottleneck and triplet embedding of 256 dimensions, dropout 0.5.
BOTTLENECK_DIM = 256
EMBEDDING_DIM = 256
DROPOUT = 0.5
# Official ``weights_init_normal``: conv weights from N(0, 0.02^2).
INIT_STD = 0.02


def _norm(channels: int) -> nn.InstanceNorm2d:
    # Official generator norm: affine and with running statistics, so in eval mode (test time)
    # the generator normalises with the statistics gathered in training, not per image.
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=True)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions (zero padding, no bias) with instance norm, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            _norm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PixelGenerator(nn.Module):
    """The official ``Generator(ngf, n_blocks)`` (StarGAN-style), used for ``G_rgb2ir`` and ``G_ir2rgb``.

    conv7x7 (3 -> ngf) + IN + ReLU; two 4x4 stride-2 convolutions (ngf -> 2 ngf -> 4 ngf), each +
    IN + ReLU; ``n_blocks`` residual blocks; two 4x4 stride-2 transposed convolutions back to
    ngf; conv7x7 -> 3 channels; tanh. No convolution has a bias; every IN is affine with running
    statistics (reference §1.2). Infrared images stay 3-channel.

    Shapes: ``[N, 3, H, W]`` in [-1, 1] -> ``[N, 3, H, W]`` in [-1, 1]; ``H`` and ``W`` must be
    multiples of 4 (the two stride-2 steps).

    Raises:
        ValueError: ``ngf < 1`` or ``n_blocks < 0``; (in ``forward``) sides not multiples of 4.
    """

    def __init__(self, ngf: int = 64, n_blocks: int = N_BLOCKS) -> None:
        super().__init__()
        if ngf < 1 or n_blocks < 0:
            raise ValueError(f"PixelGenerator: need ngf >= 1 and n_blocks >= 0, got {ngf}, {n_blocks}")
        layers: list[nn.Module] = [nn.Conv2d(3, ngf, 7, padding=3, bias=False), _norm(ngf), nn.ReLU(inplace=True)]
        ch = ngf
        for _ in range(2):
            layers += [nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1, bias=False), _norm(2 * ch), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1, bias=False),
                _norm(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [nn.Conv2d(ch, 3, 7, padding=3, bias=False), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"PixelGenerator: image sides must be multiples of 4, got {tuple(x.shape[-2:])}")
        return self.model(x)


class PatchGANDiscriminator(nn.Module):
    """The official ``Discriminator(image_size, ndf, n_layers)``: ``D_rgb``, ``D_rgb_warmup``, ``D_ir_warmup``.

    4x4 stride-2 convolution (3 -> ndf) + LeakyReLU(0.2); ``n_layers`` x [4x4 stride-2
    convolution doubling the channels, IN (not affine), LeakyReLU(0.2)]; 3x3 convolution (no
    bias) -> 1 channel. Raw least-squares scores, no sigmoid.

    Shapes: ``[N, 3, H, W]`` -> ``[N, 1, H / 2^(n_layers+1), W / 2^(n_layers+1)]`` (official:
    128x128 -> 4x4); each side must be at least ``2^(n_layers+1)`` (32 for 4 layers).
    """

    def __init__(self, ndf: int = 64, n_layers: int = N_DISC_LAYERS) -> None:
        super().__init__()
        if ndf < 1 or n_layers < 1:
            raise ValueError(f"PatchGANDiscriminator: need ndf >= 1 and n_layers >= 1, got {ndf}, {n_layers}")
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for _ in range(n_layers):
            layers += [nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), nn.InstanceNorm2d(2 * ch), nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 3, padding=1, bias=False))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class JointDiscriminator(nn.Module):
    """The official ``ConditionalDiscriminator(ndf)``: ``D_ir``, scoring (infrared image, feature map) pairs.

    Image branch: 4x4 stride-2 convolution (3 -> ndf) + LeakyReLU(0.2), then 2 x [4x4 stride-2,
    doubling, IN, LeakyReLU] -> ``4 ndf`` channels at ``H/8 x W/8``. Feature branch: 1x1
    convolution (``feature_channels`` -> ndf) + LeakyReLU(0.2), bilinearly resized
    (``align_corners=False``) to the image branch's ``H/8 x W/8`` (official: a fixed 16x16, the
    size for 128x128 images). Concatenated (``5 ndf``), then 2 x [4x4 stride-2, doubling, IN,
    LeakyReLU] (-> ``8 ndf`` -> ``16 ndf``) and a 3x3 convolution (no bias) -> 1 channel.

    Shapes: images ``[N, 3, H, W]`` in [-1, 1] and features ``[N, C, h, w]`` (the encoder's map,
    any ``h, w``) -> scores ``[N, 1, H/32, W/32]`` (official: 1x4x4); sides of at least 32.
    """

    def __init__(self, feature_channels: int = 2048, ndf: int = 64) -> None:
        super().__init__()
        if ndf < 1 or feature_channels < 1:
            raise ValueError(f"JointDiscriminator: need ndf >= 1 and feature_channels >= 1, got {ndf}, {feature_channels}")
        image: list[nn.Module] = [nn.Conv2d(3, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for _ in range(2):
            image += [nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), nn.InstanceNorm2d(2 * ch), nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        self.image_convs = nn.Sequential(*image)
        self.feature_convs = nn.Sequential(nn.Conv2d(feature_channels, ndf, 1), nn.LeakyReLU(0.2, inplace=True))
        joint: list[nn.Module] = []
        ch_in = ch + ndf
        for _ in range(2):
            joint += [nn.Conv2d(ch_in, 2 * ch, 4, stride=2, padding=1), nn.InstanceNorm2d(2 * ch), nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
            ch_in = ch
        joint.append(nn.Conv2d(ch, 1, 3, padding=1, bias=False))
        self.joint_convs = nn.Sequential(*joint)

    def forward(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        x = self.image_convs(images)
        f = F.interpolate(self.feature_convs(features), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.joint_convs(torch.cat([x, f], 1))


class FeatureGenerator(nn.Module):
    """The official ``Encoder``: a torchvision backbone up to its last feature map, last stride 1.

    Official: ResNet-50 (ImageNet) conv1..layer4 with layer4's first block at stride 1 (its
    ``conv2`` and downsample), so 384x192 gives ``[2048, 24, 12]``. Smaller backbones
    (``resnet18``: 512 channels; ``shufflenet_v2_x0_5``: conv5's 1024) make CPU runs feasible;
    the stride rule per backbone is :data:`rgbir_reid.models.reid.STAGE_SPLITTERS`'.

    Args:
        backbone: one of :data:`BACKBONES`.
        pretrained: ``"imagenet"``, ``"none"`` or a torchvision state-dict file
            (:func:`rgbir_reid.models.reid.load_torchvision_backbone`).
        last_stride: 1 (official) or 2.

    Shapes: ImageNet-normalised ``[N, 3, H, W]`` -> ``[N, out_channels, H/16, W/16]`` at last
    stride 1 (``H/32`` at 2).

    Raises:
        ValueError: unknown backbone (lists valid ones) or last stride.
    """

    def __init__(self, backbone: str = "resnet50", pretrained: str = "imagenet", last_stride: int = 1) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"AlignGAN backbone {backbone!r} unknown; valid: {list(BACKBONES)}")
        stages, _pool, width = STAGE_SPLITTERS[backbone](load_torchvision_backbone(backbone, pretrained), last_stride)
        self.body = nn.Sequential(*stages)
        self.out_channels = int(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Embedder(nn.Module):
    """The official ``Embeder`` with one part: pooled feature -> identity logits and triplet embedding.

    ``pooled = GAP(map)`` ``[N, C]``; logits = ``BottleClassifier(Dropout(0.5)(pooled))`` with
    the bottleneck ``Linear(C, 256)`` + ``BatchNorm1d`` + ``LeakyReLU(0.1)`` and the classifier
    ``Linear(256, num_classes)``; ``embedding = Linear(C, 256)(pooled)`` (no dropout), the input
    of the triplet loss. Initialisation as official: bottleneck Linear Kaiming-normal (fan out),
    bias 0; its BN weight N(1, 0.02), bias 0; classifier N(0, 0.001), bias 0; the embedding
    Linear keeps PyTorch's default. In eval mode the dropout is off, and ``pooled`` is the
    test feature (official ``features_c``).

    Shapes: ``[N, C, h, w]`` -> ``(pooled [N, C], logits [N, num_classes], embedding [N, embedding_dim])``.
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        *,
        bottleneck_dim: int = BOTTLENECK_DIM,
        embedding_dim: int = EMBEDDING_DIM,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__()
        if min(in_dim, num_classes, bottleneck_dim, embedding_dim) < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"Embedder: sizes must be >= 1 and dropout in [0, 1), got in_dim {in_dim}, classes {num_classes}, "
                f"bottleneck {bottleneck_dim}, embedding {embedding_dim}, dropout {dropout}"
            )
        self.dropout = nn.Dropout(dropout)
        self.bottleneck = nn.Sequential(nn.Linear(in_dim, bottleneck_dim), nn.BatchNorm1d(bottleneck_dim), nn.LeakyReLU(0.1))
        self.classifier = nn.Linear(bottleneck_dim, num_classes)
        self.embedding = nn.Linear(in_dim, embedding_dim)
        nn.init.kaiming_normal_(self.bottleneck[0].weight, a=0, mode="fan_out")
        nn.init.zeros_(self.bottleneck[0].bias)
        nn.init.normal_(self.bottleneck[1].weight, 1.0, 0.02)
        nn.init.zeros_(self.bottleneck[1].bias)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pooled = features.mean(dim=(2, 3))
        logits = self.classifier(self.bottleneck(self.dropout(pooled)))
        return pooled, logits, self.embedding(pooled)


def to_reid_input(images: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """GAN-domain images -> encoder input (official ``Base.process_images_4_encoder``).

    ``[N, 3, H, W]`` in [-1, 1] -> bilinear resize to ``size`` = ``(h, w)`` (``align_corners=False``,
    skipped when already that size) -> ``(x + 1) / 2`` in [0, 1] -> ``(x - mean) / std`` with
    ImageNet statistics. Returns float ``[N, 3, h, w]``; differentiable (the pixel step's task
    losses reach the generator through it).
    """
    size = (int(size[0]), int(size[1]))
    if tuple(images.shape[-2:]) != size:
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((images + 1.0) / 2.0 - mean) / std


def init_normal_(module: nn.Module, std: float = INIT_STD) -> None:
    """Official ``weights_init_normal``: every (transposed) convolution weight from N(0, std^2).

    Biases and instance-norm parameters keep PyTorch's defaults, as in the official code. Draws
    from the global torch RNG (seed it, as :func:`build_aligngan` does).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)


class AlignGAN(nn.Module):
    """What AlignGAN keeps for test time: both pixel generators, the encoder and the embedder.

    The discriminators are training-only (:func:`build_discriminators`).

    Args:
        num_classes: training identities (classifier outputs; official 395).
        backbone, pretrained, last_stride: of the :class:`FeatureGenerator`.
        ngf, n_blocks: of both pixel generators (official 64, 4).
        generator: ``"aligngan"`` (official :class:`PixelGenerator`) or ``"cyclegan"`` (the
            library's :class:`~rgbir_reid.models.cyclegan.ResnetGenerator`, e.g. to load a
            trained CycleGAN).
        reid_size: ``(h, w)`` of the encoder input (official 384x192).
        bottleneck_dim, embedding_dim, dropout: of the :class:`Embedder` (official 256, 256, 0.5).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet50",
        pretrained: str = "imagenet",
        last_stride: int = 1,
        ngf: int = 64,
        n_blocks: int = N_BLOCKS,
        generator: str = "aligngan",
        reid_size: Sequence[int] = (384, 192),
        bottleneck_dim: int = BOTTLENECK_DIM,
        embedding_dim: int = EMBEDDING_DIM,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__()
        self.reid_size = (int(reid_size[0]), int(reid_size[1]))
        if generator not in ("aligngan", "cyclegan"):
            raise ValueError(f"AlignGAN: generator {generator!r}: expected 'aligngan' or 'cyclegan'")
        pixel = PixelGenerator if generator == "aligngan" else ResnetGenerator
        self.G_rgb2ir = pixel(ngf, n_blocks)
        self.G_ir2rgb = pixel(ngf, n_blocks)
        self.encoder = FeatureGenerator(backbone, pretrained, last_stride)
        self.embedder = Embedder(
            self.encoder.out_channels, num_classes,
            bottleneck_dim=bottleneck_dim, embedding_dim=embedding_dim, dropout=dropout,
        )  # fmt: skip

    @property
    def feature_dim(self) -> int:
        """Channels ``C`` of the encoder's map, the width of the test feature."""
        return self.encoder.out_channels

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Infrared-domain images ``[N, 3, H, W]`` in [-1, 1] -> encoder map ``[N, C, h', w']``
        (via :func:`to_reid_input` at :attr:`reid_size`)."""
        return self.encoder(to_reid_input(images, self.reid_size))


def build_discriminators(feature_channels: int, *, ndf: int = 64, n_layers: int = N_DISC_LAYERS) -> nn.ModuleDict:
    """The four training discriminators ``D_rgb``, ``D_ir`` (joint), ``D_rgb_warmup``, ``D_ir_warmup``.

    Args:
        feature_channels: the encoder's output channels (``AlignGAN.feature_dim``).
        ndf: first-layer width of every discriminator (official 64).
        n_layers: hidden strided layers of the PatchGANs (official 4).
    """
    return nn.ModuleDict(
        {
            "D_rgb": PatchGANDiscriminator(ndf, n_layers),
            "D_ir": JointDiscriminator(feature_channels, ndf),
            "D_rgb_warmup": PatchGANDiscriminator(ndf, n_layers),
            "D_ir_warmup": PatchGANDiscriminator(ndf, n_layers),
        }
    )


def build_aligngan(num_classes: int, *, seed: int = 0, ndf: int = 64, n_disc_layers: int = N_DISC_LAYERS, **kwargs) -> tuple[AlignGAN, nn.ModuleDict]:
    """The AlignGAN networks and discriminators, initialised from ``seed`` as the official code does.

    Generators and discriminators get :func:`init_normal_`; the backbone its ``pretrained``
    weights (or torchvision's random init), the embedder its own init. The caller's global
    torch RNG is left as it was.

    Args:
        num_classes: training identities.
        seed: seeds every random initial weight.
        ndf, n_disc_layers: of :func:`build_discriminators`.
        kwargs: the other arguments of :class:`AlignGAN`.

    Returns:
        ``(model, discriminators)``.

    Raises:
        ValueError: from the constructors (unknown backbone, sizes out of range).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AlignGAN(num_classes, **kwargs)
        discriminators = build_discriminators(model.feature_dim, ndf=ndf, n_layers=n_disc_layers)
        for k, g in enumerate((model.G_rgb2ir, model.G_ir2rgb)):
            if isinstance(g, ResnetGenerator):  # the CycleGAN's own init: N(0, 0.02) weights, zero biases
                init_weights(g, torch.Generator().manual_seed(seed + k))
            else:
                init_normal_(g)
        for d in discriminators.values():
            init_normal_(d)
    return model, discriminators
