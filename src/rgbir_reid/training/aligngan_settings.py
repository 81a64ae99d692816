"""AlignGAN's settings: :class:`AlignGANSettings`, every default the official code's.

Source: Wang et al., ICCV 2019, and its official code (wangguanan/AlignGAN ``main.py``), as
this project's reference notes describe it (``aligngan-and-baselines.md`` §1). What each setting
does in training: :mod:`rgbir_reid.training.aligngan`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Sequence

import numpy as np

from rgbir_reid.models.aligngan import BACKBONES

AMP_MODES = ("none", "bf16", "fp16")
STAGES = ("feature_warmup", "pixel_warmup", "joint")
# Instance-norm statistics of the pixel generators at test time (see AlignGANSettings).
NORM_STATISTICS = ("running", "per_image")
# Architectures of the pixel generators, and where they start (see AlignGANSettings).
GENERATORS = ("aligngan", "cyclegan")
PIXEL_INITS = ("none", "cyclegan")
# Settings that do not change what is learnt: a checkpoint made with other values resumes.
# norm_statistics only changes the test feature, not training.
RUNTIME_FIELDS = ("log_every", "checkpoint_every", "amp", "norm_statistics")


@dataclass(frozen=True)
class AlignGANSettings:
    """Settings of one AlignGAN run; every default is the official code's (reference §1).

    Network:
        backbone: the feature generator, one of :data:`rgbir_reid.models.aligngan.BACKBONES`
            (official ``"resnet50"``; ``"resnet18"`` / ``"shufflenet_v2_x0_5"`` for CPU runs).
        pretrained: ``"imagenet"`` (official), ``"none"`` or a torchvision state-dict file.
        last_stride: of the backbone's last stage (official 1).
        ngf, n_blocks: pixel generators' width and residual blocks (official 64, 4).
        generator: the pixel generators' architecture: ``"aligngan"`` (official: 4x4 strided
            convolutions, no biases, affine instance norms with running statistics;
            :class:`~rgbir_reid.models.aligngan.PixelGenerator`) or ``"cyclegan"`` (the
            library's CycleGAN generator, :class:`~rgbir_reid.models.cyclegan.ResnetGenerator`:
            3x3 convolutions, reflection padding, biases, instance norms without running
            statistics, so ``norm_statistics`` must be ``"per_image"``).
        pixel_init: where the pixel generators start: ``"none"`` (official: N(0, 0.02) weights,
            then the pixel warm-up) or ``"cyclegan"`` (both generators load the trial's
            CycleGAN, whose training is the official pixel warm-up's CycleGAN part; needs
            ``generator: cyclegan`` with the CycleGAN's ``ngf`` and ``n_blocks``; the pixel
            warm-up, if any, then goes on from there with the task terms). Ours.
        ndf, n_disc_layers: discriminators' width (official 64) and the PatchGANs' strided
            hidden layers (official 4).
        bottleneck_dim, embedding_dim, dropout: the embedder (official 256, 256, 0.5).
    Pixels:
        image_size: ``[h, w]`` of the pixel module (official 128x128; sides multiples of 4,
            at least ``m = max(32, 2^(n_disc_layers + 1))``, and ``h w >= 2 m^2``, so that
            every discriminator's last instance norm sees more than one element: 64x32 is
            the smallest for the official 4 layers). reid_size: ``[h, w]`` the encoder sees
            (official 384x192). Training images are always flipped at random (p = 0.5, official).
    Batches (images per modality = identities x instances):
        gan_identities x gan_instances (official 4 x 4 = 16; at least 2 identities, for the
        wrong-identity pairs); ide_identities x ide_instances (official 18 x 4 = 72).
    Lengths, in iterations: feature_warmup_iterations 5000, pixel_warmup_iterations 10000,
        joint_iterations 10100 (official 50, 100 and 101 steps of 100).
    Optimisation:
        pixel_lr 2e-4, pixel_beta1 0.5, pixel_beta2 0.999 (Adam, generators and discriminators);
        feature_lr 0.2 (the embedder) and encoder_lr_factor 0.1 (encoder at 0.02),
        feature_momentum 0.9 (Nesterov), feature_weight_decay 5e-4 (SGD);
        lr_decay_iterations: joint-stage iterations from which every lr is multiplied by
        lr_decay_gamma once more (official (5000,) and 0.1);
        feature_lr_warmup_iterations: linear warm-up of the feature module's lrs (encoder and
        embedder) over the first iterations of training: factor ``(i + 1) / n`` at 0-based
        iteration ``i < n`` (official 0: none; ours, for from-scratch encoders).
    Loss weights (official): lambda_cycle 10, lambda_identity 5 (each on the mean of both
        directions), lambda_pixel_triplet 0.1, lambda_pixel_cls 0.1 (the pixel step's task
        terms), lambda_feature_cls 1, lambda_feature_triplet 1, lambda_feature_gan 0.1 (the
        joint feature step); triplet_margin 1.0 (cosine similarity units).
    Runtime (a checkpoint made with other values still resumes):
        log_every: iterations per ``losses.csv`` row (official: 100, one step);
        checkpoint_every: iterations between checkpoints (official: every step, 100);
        amp: ``"none"`` (official float32), ``"bf16"`` or ``"fp16"``; CUDA only.
    Test time (does not change training; a checkpoint made with another value still resumes):
        norm_statistics: the statistics the pixel generators' instance norms use when the model
            is loaded for test features (:func:`rgbir_reid.training.aligngan_model.load_aligngan_model`):
            ``"running"`` (official: eval mode with the running means and variances gathered in
            training, from visible *and* infrared inputs, since the identity loss feeds
            ``G_rgb2ir`` infrared images) or ``"per_image"`` (each image's own statistics, as in
            training and as the CycleGAN's non-tracking instance norms).
    """

    backbone: str = "resnet50"
    pretrained: str = "imagenet"
    last_stride: int = 1
    ngf: int = 64
    n_blocks: int = 4
    generator: str = "aligngan"
    pixel_init: str = "none"
    ndf: int = 64
    n_disc_layers: int = 4
    bottleneck_dim: int = 256
    embedding_dim: int = 256
    dropout: float = 0.5
    image_size: tuple[int, int] = (128, 128)
    reid_size: tuple[int, int] = (384, 192)
    gan_identities: int = 4
    gan_instances: int = 4
    ide_identities: int = 18
    ide_instances: int = 4
    feature_warmup_iterations: int = 5000
    pixel_warmup_iterations: int = 10000
    joint_iterations: int = 10100
    pixel_lr: float = 2e-4
    pixel_beta1: float = 0.5
    pixel_beta2: float = 0.999
    feature_lr: float = 0.2
    encoder_lr_factor: float = 0.1
    feature_momentum: float = 0.9
    feature_weight_decay: float = 5e-4
    lr_decay_iterations: tuple[int, ...] = (5000,)
    lr_decay_gamma: float = 0.1
    feature_lr_warmup_iterations: int = 0
    lambda_cycle: float = 10.0
    lambda_identity: float = 5.0
    lambda_pixel_triplet: float = 0.1
    lambda_pixel_cls: float = 0.1
    lambda_feature_cls: float = 1.0
    lambda_feature_triplet: float = 1.0
    lambda_feature_gan: float = 0.1
    triplet_margin: float = 1.0
    log_every: int = 100
    checkpoint_every: int = 100
    amp: str = "none"
    norm_statistics: str = "running"

    def __post_init__(self) -> None:
        # Config files give lists; keep tuples so the dataclass stays hashable and frozen.
        for key in ("image_size", "reid_size", "lr_decay_iterations"):
            value = getattr(self, key)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise self._bad(key, "a list")
            object.__setattr__(self, key, tuple(value))

        if self.backbone not in BACKBONES:
            raise self._bad("backbone", f"one of {list(BACKBONES)}")
        if not isinstance(self.pretrained, str) or not self.pretrained:
            raise self._bad("pretrained", "'imagenet', 'none' or the path of a state-dict file")
        if self.last_stride not in (1, 2):
            raise self._bad("last_stride", "1 or 2")
        if self.amp not in AMP_MODES:
            raise self._bad("amp", f"one of {list(AMP_MODES)}")
        if self.norm_statistics not in NORM_STATISTICS:
            raise self._bad("norm_statistics", f"one of {list(NORM_STATISTICS)}")
        if self.generator not in GENERATORS:
            raise self._bad("generator", f"one of {list(GENERATORS)}")
        if self.pixel_init not in PIXEL_INITS:
            raise self._bad("pixel_init", f"one of {list(PIXEL_INITS)}")
        if self.pixel_init == "cyclegan" and self.generator != "cyclegan":
            raise self._bad("pixel_init", "'none' with generator 'aligngan' (the trial's CycleGAN has the "
                                          "CycleGAN generator: set generator: cyclegan)")
        if self.generator == "cyclegan" and self.norm_statistics != "per_image":
            raise self._bad("norm_statistics", "'per_image' with generator 'cyclegan' (its instance norms keep no "
                                               "running statistics)")
        for key in ("ngf", "ndf", "n_disc_layers", "bottleneck_dim", "embedding_dim", "gan_instances",
                    "ide_identities", "ide_instances", "log_every", "checkpoint_every"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 1:
                raise self._bad(key, "an integer >= 1")
        if not _is_int(self.gan_identities) or self.gan_identities < 2:
            raise self._bad("gan_identities", "an integer >= 2 (the joint discriminator's wrong pairs need another identity)")
        for key in ("n_blocks", "feature_warmup_iterations", "pixel_warmup_iterations", "joint_iterations",
                    "feature_lr_warmup_iterations"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 0:
                raise self._bad(key, "an integer >= 0")
        if self.total_iterations < 1:
            raise self._bad("joint_iterations", "stage lengths adding up to at least one iteration")
        # Each discriminator halves the image 5 times (D_ir) or n_disc_layers + 1 times (the
        # PatchGANs); its last instance norm needs a map of more than one element.
        min_side = max(32, 2 ** (self.n_disc_layers + 1))
        if (len(self.image_size) != 2
                or not all(_is_int(s) and s >= min_side and s % 4 == 0 for s in self.image_size)
                or self.image_size[0] * self.image_size[1] < 2 * min_side**2):
            raise self._bad("image_size", f"[height, width], each a multiple of 4 and >= {min_side}, "
                                          f"one of them >= {2 * min_side} (e.g. 128x128, 64x32)")
        if len(self.reid_size) != 2 or not all(_is_int(s) and s >= 16 for s in self.reid_size):
            raise self._bad("reid_size", "[height, width], each an integer >= 16")
        if not all(_is_int(m) and m >= 0 for m in self.lr_decay_iterations):
            raise self._bad("lr_decay_iterations", "a list of joint-stage iterations >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise self._bad("dropout", "a value in [0, 1)")
        for key in ("pixel_beta1", "pixel_beta2", "feature_momentum"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise self._bad(key, "a value in [0, 1)")
        if not 0.0 < self.lr_decay_gamma <= 1.0:
            raise self._bad("lr_decay_gamma", "a value in (0, 1]")
        for key in ("pixel_lr", "feature_lr", "encoder_lr_factor"):
            if not getattr(self, key) > 0:
                raise self._bad(key, "a value > 0")
        for key in ("feature_weight_decay", "lambda_cycle", "lambda_identity", "lambda_pixel_triplet",
                    "lambda_pixel_cls", "lambda_feature_cls", "lambda_feature_triplet", "lambda_feature_gan",
                    "triplet_margin"):
            if not getattr(self, key) >= 0:
                raise self._bad(key, "a value >= 0")

    def _bad(self, key: str, expected: str) -> ValueError:
        return ValueError(f"AlignGAN setting {key}={getattr(self, key)!r}: expected {expected}")

    @property
    def total_iterations(self) -> int:
        """Iterations of all three stages."""
        return self.feature_warmup_iterations + self.pixel_warmup_iterations + self.joint_iterations

    def stage_of(self, iteration: int) -> str:
        """Stage (a name of :data:`STAGES`) of the 0-based global ``iteration``."""
        if iteration < self.feature_warmup_iterations:
            return STAGES[0]
        if iteration < self.feature_warmup_iterations + self.pixel_warmup_iterations:
            return STAGES[1]
        return STAGES[2]

    def lr_factor(self, iteration: int) -> float:
        """Multiplier of every initial lr at the 0-based global ``iteration``: 1 in the warm-ups,
        then ``lr_decay_gamma`` per passed milestone of ``lr_decay_iterations`` (joint-stage iterations)."""
        joint = iteration - self.feature_warmup_iterations - self.pixel_warmup_iterations
        return self.lr_decay_gamma ** sum(joint >= m for m in self.lr_decay_iterations)

    def feature_lr_factor(self, iteration: int) -> float:
        """Multiplier of the feature module's initial lrs: :meth:`lr_factor` times the linear
        warm-up ``min(1, (iteration + 1) / feature_lr_warmup_iterations)`` (1 without warm-up)."""
        n = self.feature_lr_warmup_iterations
        return self.lr_factor(iteration) * (min(1.0, (iteration + 1) / n) if n else 1.0)

    def to_dict(self) -> dict:
        """JSON/YAML-friendly dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "AlignGANSettings":
        """Build from a config mapping; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown AlignGAN settings {unknown}; valid: {sorted(known)}")
        return cls(**values)


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
