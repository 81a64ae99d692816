"""AlignGAN training (three stages), checkpoint/resume, the model file and the test feature.

Source: Wang et al., "RGB-Infrared Cross-Modality Person Re-Identification via Joint Pixel and
Feature Alignment", ICCV 2019, and its official code (wangguanan/AlignGAN: ``main.py``,
``core/warmup.py``, ``core/train.py``, ``core/base.py``, ``core/test.py``,
``tools/data_loader/loader.py``), as this project's reference notes describe it
(``aligngan-and-baselines.md`` §1, §6, §7). Networks: :mod:`rgbir_reid.models.aligngan`;
losses: :mod:`rgbir_reid.losses.aligngan`.

Stages (official lengths: a "step" is 100 iterations; 50 + 100 + 101 steps):

1. ``feature_warmup`` (5,000 iterations): encoder + embedder on real infrared IDE batches only,
   ``L = CE + Tri(ir, ir, ir)`` (unweighted, as official), SGD.
2. ``pixel_warmup`` (10,000): the CycleGAN-like pixel module against the warm-up PatchGANs
   ``D_rgb_warmup`` / ``D_ir_warmup`` on GAN batches:
   ``L_G = ½(gan_rgb + gan_ir) + 10·½(cycle_rgb + cycle_ir) + 5·½(idt_rgb + idt_ir)
   + 0.1·(Tri(fake, real, real) + Tri(real, fake, fake)) + 0.1·CE(fake IR logits)``, the task
   terms through the encoder (which is not stepped, but whose BN statistics still update);
   each D: ``½[(D(real) - 1)² + D(fake)²]``.
3. ``joint`` (10,100): per iteration a feature step (IDE batches; fake IR from ``G_rgb2ir``
   without gradient; ``1·[CE(fake IR) + CE(real IR)] + 1·[Tri(fake, real, real) + Tri(real,
   fake, fake)] + 0.1·(D_ir(real IR image, fake-IR feature) - 1)²``), then a pixel step as in
   stage 2 but with ``D_rgb`` — a freshly initialised PatchGAN, never trained before (official
   issue #1: reusing the warmed one hurt) — and the joint ``D_ir`` on (image, feature) pairs:
   the generator's IR term is ``(D_ir(fake IR, real IR feature) - 1)²`` and ``D_ir`` learns the
   real pair against four fake ones (:func:`rgbir_reid.losses.aligngan.joint_discriminator_loss`).

Optimisers (official): Adam lr 2e-4, betas (0.5, 0.999) for both generators together, for
``D_rgb`` + ``D_rgb_warmup`` and for ``D_ir`` + ``D_ir_warmup``; SGD (momentum 0.9, Nesterov,
weight decay 5e-4) with lr 0.02 for the encoder and 0.2 for the embedder. Every lr is x0.1
from joint iteration 5,000 on (official milestone: global step 200); none decays in the warm-ups.
Ours, off by default (official: none): ``feature_lr_warmup_iterations`` ramps the feature
module's lrs linearly from the first iteration on (:meth:`AlignGANSettings.feature_lr_factor`).

Batches (official ``UniformSampler``): the identities with both real modalities are shuffled
once per pass; a GAN batch takes 4 identities x 4 images and an IDE batch 18 x 4, from each
modality; the visible and the infrared batch hold **the same identities in the same order**
(the official loaders share seeds), which the joint discriminator's wrong pairs and the
cross-modality triplets rely on. A pass ends when fewer than P identities remain
(``drop_last``). Images are drawn without replacement when an identity has at least K of
its modality, with replacement otherwise. The two batch kinds are separate streams.

Pixels: the cache's uint8 images are resized to ``image_size`` (official 128x128, bicubic;
here bilinear with antialiasing, :class:`~rgbir_reid.data.transforms.BatchAugmentation`),
flipped at random (p = 0.5) and scaled to [-1, 1] (``(x / 255 - 0.5) / 0.5``, official
``Normalize(0.5, 0.5)``); the encoder sees them resized to ``reid_size`` (official 384x192),
ImageNet-normalised (:func:`rgbir_reid.models.aligngan.to_reid_input`).

Test feature (official ``core/test.py``): visible images go through ``G_rgb2ir`` (eval mode:
its instance norms use their running statistics, as official), infrared ones straight in; the
encoder's map is average-pooled (the 2048-d ``features_c``, not the 256-d embedding); with
flip test-time augmentation (official) the pooled features of the image and of its mirror
are summed; then L2-normalised. See :func:`aligngan_features`.

Our assumptions (not fixed by the official code):

- Training rows are the cache's real rows; identities lacking one real modality are left out
  (the official SYSU-MM01 training identities all have both). Labels are the identities'
  ranks among them (official: per-modality re-indexing by sorted pid, the same when both
  modalities hold the same identities).
- Batches are a pure function of ``(seed, stream, batch number)`` (numpy ``default_rng``),
  and so are each batch's flips, so a resumed run draws exactly what an uninterrupted one
  draws. The official sampler uses Python's ``random`` and numpy's global RNG.
- The official code keeps no history buffer of generated images (the discriminators see
  the current fakes); neither does this one, so there is no image pool to checkpoint.
- Encoder and embedder parameters do not collect gradients in the pixel step (official: they
  do, and the next feature step's ``zero_grad`` discards them; the same update), and the
  discriminators none from the generators' losses (official: discarded by their
  ``zero_grad``).
- The decay milestones are counted in joint-stage iterations (``lr_decay_iterations``).
- AMP (``amp``: bf16 / fp16 with one GradScaler, updated once per iteration; CUDA only,
  ignored on CPU) is ours; the official code trains in float32 (the default here).

Files written under ``out_dir``: ``checkpoints/last.pt`` (every ``checkpoint_every``
iterations and at the end, atomic), ``losses.csv`` (with every checkpoint and at the end;
one row per ``log_every`` iterations and per stage end: ``iteration``, ``stage``, the lrs,
the mean of every loss term of :data:`LOSS_TERMS` that the stage has, ``NaN`` for the others,
and the training accuracies), ``losses.png`` / ``losses.pdf`` and ``model.pt`` (atomic; see
:func:`save_aligngan_model`).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from rgbir_reid.data.cache import KIND_REAL, CacheBatchDataset, read_cache_attrs
from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE
from rgbir_reid.data.transforms import BatchAugmentation
from rgbir_reid.device import resolve_device
from rgbir_reid.io import atomic_output, save_torch
from rgbir_reid.losses.aligngan import (
    cosine_batch_hard_triplet,
    joint_discriminator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from rgbir_reid.losses.gan import cycle_consistency_loss, identity_loss
from rgbir_reid.models.aligngan import BACKBONES, AlignGAN, build_aligngan
from rgbir_reid.io import load_checkpoint
from rgbir_reid.training.checkpoints import (
    caller_rng_kept,
    checkpoint_mismatch,
    provenance,
    rng_state,
    set_rng_state,
    setting_changes,
)

MODEL_FORMAT = "rgbir_reid.aligngan_model/1"
CHECKPOINT_FORMAT = "rgbir_reid.aligngan_checkpoint/1"
AMP_MODES = ("none", "bf16", "fp16")
STAGES = ("feature_warmup", "pixel_warmup", "joint")
# Official Normalize(mean=0.5, std=0.5): the pixel networks' [-1, 1].
GAN_MEAN = (0.5, 0.5, 0.5)
GAN_STD = (0.5, 0.5, 0.5)
# Settings that do not change what is learnt: a checkpoint made with other values resumes.
_RUNTIME_FIELDS = ("log_every", "checkpoint_every", "amp")

# Loss terms (unweighted, as the official code logs them) and the training accuracies.
FEATURE_TERMS = ("feat_total", "feat_cls_real_ir", "feat_cls_fake_ir", "feat_triplet", "feat_gan", "acc_real_ir", "acc_fake_ir")
PIXEL_TERMS = ("G_total", "G_gan", "G_cycle", "G_identity", "G_triplet", "G_cls", "D_rgb", "D_ir")
LOSS_TERMS = FEATURE_TERMS + PIXEL_TERMS
STAGE_TERMS = {
    "feature_warmup": ("feat_total", "feat_cls_real_ir", "feat_triplet", "acc_real_ir"),
    "pixel_warmup": PIXEL_TERMS,
    "joint": LOSS_TERMS,
}
HISTORY_COLUMNS = ("iteration", "stage", "lr_pixel", "lr_feature", *LOSS_TERMS)
# Stream numbers of the two batch kinds (seed derivation).
_IDE_STREAM, _GAN_STREAM = 0, 1


@dataclass(frozen=True)
class AlignGANSettings:
    """Settings of one AlignGAN run; every default is the official code's (reference §1).

    Network:
        backbone: the feature generator, one of :data:`rgbir_reid.models.aligngan.BACKBONES`
            (official ``"resnet50"``; ``"resnet18"`` / ``"shufflenet_v2_x0_5"`` for CPU runs).
        pretrained: ``"imagenet"`` (official), ``"none"`` or a torchvision state-dict file.
        last_stride: of the backbone's last stage (official 1).
        ngf, n_blocks: pixel generators' width and residual blocks (official 64, 4).
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
    """

    backbone: str = "resnet50"
    pretrained: str = "imagenet"
    last_stride: int = 1
    ngf: int = 64
    n_blocks: int = 4
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


class IdentityAlignedSampler:
    """Identity-aligned visible and infrared batches of ``P`` identities x ``K`` images (official ``UniformSampler``).

    Batch ``k`` of a stream is a pure function of ``(seed, stream, k)``: pass ``e = k // n``
    (``n`` = identities // P, the batches of one pass) shuffles the identities with
    ``default_rng([seed, stream, e])``; batch ``k`` takes identities ``P (k mod n)`` onwards of
    that order, and from each modality ``K`` of each identity's rows (without replacement when
    it has ``K`` or more, else with), drawn from ``default_rng([seed, stream, k, modality])``.
    So the number of batches drawn is the sampler's whole state.

    Args:
        visible_rows, infrared_rows: per identity (in label order), the cache rows of its real
            visible / infrared images (each non-empty).
        identities: ``P``; instances: ``K``; seed; stream: which batch kind (separate streams).

    Raises:
        ValueError: fewer identities than ``P``.
    """

    def __init__(
        self,
        visible_rows: Sequence[np.ndarray],
        infrared_rows: Sequence[np.ndarray],
        *,
        identities: int,
        instances: int,
        seed: int,
        stream: int,
    ) -> None:
        if len(visible_rows) != len(infrared_rows):
            raise ValueError("visible_rows and infrared_rows must list the same identities")
        if len(visible_rows) < identities:
            raise ValueError(f"need at least {identities} identities with both modalities per batch, have {len(visible_rows)}")
        self.pools = (list(visible_rows), list(infrared_rows))
        self.identities, self.instances = int(identities), int(instances)
        self.seed, self.stream = int(seed), int(stream)
        self.batches_per_pass = len(visible_rows) // self.identities

    def batch(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batch ``k``: ``(visible rows [P K], infrared rows [P K], labels [P K])``, identity by identity."""
        epoch, b = divmod(int(k), self.batches_per_pass)
        order = np.random.default_rng([self.seed, self.stream, epoch]).permutation(len(self.pools[0]))
        ids = order[b * self.identities : (b + 1) * self.identities]
        out = []
        for modality, pools in enumerate(self.pools):
            rng = np.random.default_rng([self.seed, self.stream, int(k), modality])
            rows = [rng.choice(pools[i], self.instances, replace=len(pools[i]) < self.instances) for i in ids]
            out.append(np.concatenate(rows).astype(np.int64))
        return out[0], out[1], np.repeat(ids, self.instances).astype(np.int64)

    def flip_seed(self, k: int, modality: int) -> int:
        """Seed of the augmentation draws of batch ``k``'s ``modality`` half."""
        return int(np.random.default_rng([self.seed, self.stream, int(k), modality, 1]).integers(2**62))


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == labels).float().mean()


def build_model_from_settings(settings: AlignGANSettings, num_classes: int, *, seed: int = 0,
                              pretrained: str | None = None) -> tuple[AlignGAN, nn.ModuleDict]:
    """``(model, discriminators)`` as ``settings`` describe them, initialised from ``seed``.

    ``pretrained`` overrides ``settings.pretrained`` (``"none"`` when weights are loaded next).
    """
    return build_aligngan(
        num_classes,
        seed=seed,
        ndf=settings.ndf,
        n_disc_layers=settings.n_disc_layers,
        backbone=settings.backbone,
        pretrained=settings.pretrained if pretrained is None else pretrained,
        last_stride=settings.last_stride,
        ngf=settings.ngf,
        n_blocks=settings.n_blocks,
        reid_size=settings.reid_size,
        bottleneck_dim=settings.bottleneck_dim,
        embedding_dim=settings.embedding_dim,
        dropout=settings.dropout,
    )


def save_aligngan_model(path: str | Path, model: AlignGAN, settings: AlignGANSettings, pids: Sequence[int]) -> Path:
    """Write the test-time model atomically: ``{"format", "state_dict", "settings", "pids"}``.

    ``state_dict`` is the :class:`~rgbir_reid.models.aligngan.AlignGAN`'s (both generators,
    encoder, embedder; no discriminator); ``pids[label]`` is the dataset identity of classifier
    output ``label``; ``settings`` is :meth:`AlignGANSettings.to_dict`.
    """
    state = {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "settings": settings.to_dict(),
        "pids": [int(p) for p in pids],
    }
    save_torch(state, path)
    return Path(path)


def load_aligngan_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[AlignGAN, AlignGANSettings]:
    """Rebuild the model written by :func:`save_aligngan_model`, in eval mode on ``device``.

    The classifier's identities are in the file's ``"pids"`` (not returned: test features do
    not use the classifier).

    Raises:
        ValueError: if ``path`` is not an AlignGAN model file of this format (names the file).
    """
    state = load_checkpoint(path, expected_format=MODEL_FORMAT, required=("state_dict", "settings", "pids"))
    settings = AlignGANSettings.from_dict(state["settings"])
    model, _ = build_model_from_settings(settings, len(state["pids"]), pretrained="none")
    model.load_state_dict(state["state_dict"])
    return model.to(resolve_device(device)).eval(), settings


@torch.no_grad()
def aligngan_features(
    model: AlignGAN,
    images: torch.Tensor,
    modality: int | torch.Tensor,
    *,
    flip: bool = True,
    batch_size: int = 64,
) -> torch.Tensor:
    """L2-normalised AlignGAN test features (official ``core/test.py``), float32 ``[N, C]`` on the CPU.

    Visible images (modality 0, the gallery) are turned into fake infrared by ``G_rgb2ir``,
    infrared ones (modality 1, the queries) go straight in; the encoder's map of each (at the
    model's ``reid_size``) is average-pooled to ``C`` values (the backbone width: 2048 for
    ResNet-50; the official ``features_c``, not the 256-d embedding). With ``flip`` (official)
    the pooled features of the (fake) infrared image and of its horizontal mirror are summed
    before normalising. The networks run in eval mode (the generator's instance norms with
    their running statistics, as official); the model's mode is restored afterwards.

    Args:
        model: a trained :class:`~rgbir_reid.models.aligngan.AlignGAN` (see :func:`load_aligngan_model`).
        images: float ``[N, 3, H, W]`` in [-1, 1] (``(x / 255 - 0.5) / 0.5``, as in training;
            :func:`rgbir_reid.data.transforms.to_tensor`) at the training ``image_size``
            (sides multiples of 4).
        modality: one code for all images or int ``[N]`` per image: 0 visible, 1 infrared.
        flip: flip test-time augmentation.
        batch_size: images per forward pass.

    Raises:
        ValueError: on a shape mismatch or a modality code other than 0 or 1.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"aligngan_features: expected images [N, 3, H, W], got {tuple(images.shape)}")
    n = images.shape[0]
    modality = torch.as_tensor(modality).long()
    modality = modality.expand(n) if modality.ndim == 0 else modality
    if modality.shape != (n,):
        raise ValueError(f"aligngan_features: modality must be a code or [{n}], got {tuple(modality.shape)}")
    visible, infrared = MODALITY_CODE[VISIBLE], MODALITY_CODE[THERMAL]
    if bool(((modality != visible) & (modality != infrared)).any()):
        raise ValueError("aligngan_features: modality codes must be 0 (visible) or 1 (infrared)")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, n, batch_size):
            x = images[start : start + batch_size].to(device).float()
            m = modality[start : start + batch_size].to(device)
            is_visible = (m == visible)[:, None, None, None]
            if bool(is_visible.any()):
                x = torch.where(is_visible, model.G_rgb2ir(x), x)
            pooled = model.encode(x).mean(dim=(2, 3))
            if flip:
                pooled = pooled + model.encode(x.flip(3)).mean(dim=(2, 3))
            out.append(F.normalize(pooled.float(), dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, model.feature_dim)


def write_loss_table(history: list[dict], out_dir: Path) -> pd.DataFrame:
    """Write ``out_dir/losses.csv`` atomically (columns :data:`HISTORY_COLUMNS`)."""
    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    with atomic_output(out_dir / "losses.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def write_loss_curves(history: list[dict], settings: AlignGANSettings, out_dir: Path) -> None:
    """Write ``losses.png`` / ``losses.pdf`` (feature losses, pixel losses, accuracies) atomically.

    Dashed lines mark the stage boundaries.
    """
    # Figure + Agg canvas, not pyplot: no global backend state in a library.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    fig = Figure(figsize=(13, 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    groups = (
        ("feature module (unweighted terms)", [t for t in FEATURE_TERMS if not t.startswith("acc")], "loss"),
        ("pixel module (unweighted terms)", list(PIXEL_TERMS), "loss"),
        ("training identity accuracy", ["acc_real_ir", "acc_fake_ir"], "accuracy"),
    )
    boundaries = np.cumsum([settings.feature_warmup_iterations, settings.pixel_warmup_iterations])
    for ax, (title, columns, ylabel) in zip(axes, groups):
        for col in columns:
            if frame[col].notna().any():
                ax.plot(frame["iteration"], frame[col], marker=".", markersize=3, label=col)
        for b in boundaries:
            if 0 < b < settings.total_iterations:
                ax.axvline(b, color="grey", linestyle="--", linewidth=0.8)
        ax.set(xlabel="iteration", ylabel=ylabel, title=title)
        if ax.lines[len(boundaries):] or any(frame[c].notna().any() for c in columns):
            ax.legend(fontsize=7)
    axes[2].set_ylim(0, 1)
    fig.tight_layout()
    for fmt in ("png", "pdf"):
        with atomic_output(out_dir / f"losses.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=100)


def train_aligngan(
    cache_path: str | Path,
    out_dir: str | Path,
    settings: AlignGANSettings,
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
    logger: logging.Logger | None = None,
    on_iteration_end: Callable[[int, dict], None] | None = None,
) -> Path:
    """Train AlignGAN's three stages on the cache's real rows; return ``out_dir/model.pt``.

    What each stage trains, with which losses, batches and optimisers: the module docstring.
    Resumes from ``out_dir/checkpoints/last.pt`` when it was written by a run with the same
    learnt settings (all but ``log_every``, ``checkpoint_every``, ``amp``), seed and cache
    (logs ``resuming from iteration N``), at any iteration and across stage boundaries; a
    checkpoint from other settings, seed or cache is ignored with a warning naming what
    differs (``pixel_lr 0.0002 -> 0.001``, ``seed 0 -> 1``, ``the cache differs``). On CPU a
    resumed run ends with exactly the weights and ``losses.csv`` of an uninterrupted one: the
    checkpoint holds all networks, the four optimisers (the lr schedule is a function of the iteration), the GradScaler,
    the torch / numpy / Python RNG states, the batches drawn from each sampler stream and the
    loss sums of the unfinished ``losses.csv`` row. The caller's global RNG states are left as
    they were.

    Args:
        cache_path: HDF5 cache written by :func:`rgbir_reid.data.cache.write_cache` (its real rows are used).
        out_dir: output folder (created; layout in the module docstring).
        settings: see :class:`AlignGANSettings`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        seed: seeds initialisation, batches, flips and dropout.
        logger: progress lines (default this module's logger).
        on_iteration_end: called as ``on_iteration_end(iterations_done, info)`` after each
            iteration, once its checkpoint (if one is due) is written; ``info`` holds
            ``"stage"`` and the iteration's loss terms as floats. Tests raise from it to
            interrupt a run.

    Raises:
        ValueError: the cache holds fewer identities with both real modalities than a batch needs (names the cache).
    """
    log = logger or logging.getLogger(__name__)
    device = resolve_device(device)
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoints" / "last.pt"
    cache_path = Path(cache_path)
    s = settings

    cached = CacheBatchDataset(cache_path)
    meta = cached.meta
    real = meta["kind"] == KIND_REAL
    vis_code, ir_code = MODALITY_CODE[VISIBLE], MODALITY_CODE[THERMAL]
    by_modality = {m: real & (meta["modality"] == m) for m in (vis_code, ir_code)}
    all_pids = np.unique(meta["pid"][real])
    pids = [int(p) for p in all_pids
            if by_modality[vis_code][meta["pid"] == p].any() and by_modality[ir_code][meta["pid"] == p].any()]
    skipped = sorted(set(int(p) for p in all_pids) - set(pids))
    if skipped:
        log.warning("%d identities lack one real modality and are not trained on: %s", len(skipped), skipped[:20])
    need = max(s.gan_identities, s.ide_identities)
    if len(pids) < need:
        raise ValueError(f"cache {cache_path}: {len(pids)} identities have both real modalities, a batch needs {need}")
    pools = {m: [np.flatnonzero(by_modality[m] & (meta["pid"] == p)) for p in pids] for m in (vis_code, ir_code)}
    samplers = {
        "ide": IdentityAlignedSampler(pools[vis_code], pools[ir_code], identities=s.ide_identities,
                                      instances=s.ide_instances, seed=seed, stream=_IDE_STREAM),
        "gan": IdentityAlignedSampler(pools[vis_code], pools[ir_code], identities=s.gan_identities,
                                      instances=s.gan_instances, seed=seed, stream=_GAN_STREAM),
    }
    augment = BatchAugmentation(s.image_size, s.image_size, mean=GAN_MEAN, std=GAN_STD)

    learnt = {k: v for k, v in s.to_dict().items() if k not in _RUNTIME_FIELDS}
    runtime = {k: getattr(s, k) for k in _RUNTIME_FIELDS}
    cache_id = {"rows": int(real.sum()), "attrs": read_cache_attrs(cache_path)}
    made = provenance(learnt, runtime, seed, cache_id)
    cuda = device.type == "cuda"
    use_amp = cuda and s.amp != "none"
    amp_dtype = torch.bfloat16 if s.amp == "bf16" else torch.float16

    with caller_rng_kept():
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        model, discs = build_model_from_settings(s, len(pids), seed=seed)
        model.to(device)
        discs.to(device)
        g_rgb2ir, g_ir2rgb, encoder, embedder = model.G_rgb2ir, model.G_ir2rgb, model.encoder, model.embedder
        betas = (s.pixel_beta1, s.pixel_beta2)
        optimizers = {
            "G": torch.optim.Adam([*g_rgb2ir.parameters(), *g_ir2rgb.parameters()], lr=s.pixel_lr, betas=betas),
            "D_rgb": torch.optim.Adam([*discs["D_rgb"].parameters(), *discs["D_rgb_warmup"].parameters()],
                                      lr=s.pixel_lr, betas=betas),
            "D_ir": torch.optim.Adam([*discs["D_ir"].parameters(), *discs["D_ir_warmup"].parameters()],
                                     lr=s.pixel_lr, betas=betas),
            "feature": torch.optim.SGD(
                [{"params": encoder.parameters(), "lr": s.feature_lr * s.encoder_lr_factor},
                 {"params": embedder.parameters(), "lr": s.feature_lr}],
                lr=s.feature_lr, momentum=s.feature_momentum, nesterov=True, weight_decay=s.feature_weight_decay,
            ),
        }
        # The schedule is a pure function of the iteration (AlignGANSettings.lr_factor), set
        # before every iteration, so the iteration count is all the scheduler state there is.
        # (A LambdaLR would warn about the optimisers a stage does not step.)
        for opt in optimizers.values():
            for group in opt.param_groups:
                group["initial_lr"] = group["lr"]
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and s.amp == "fp16")

        start, history = 0, []
        drawn = {"ide": 0, "gan": 0}
        sums = torch.zeros(len(LOSS_TERMS), dtype=torch.float64)
        n_sum = 0
        if ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path)
            if ckpt.get("format") == CHECKPOINT_FORMAT and ckpt.get("fingerprint") == made["fingerprint"]:
                model.load_state_dict(ckpt["model"])
                discs.load_state_dict(ckpt["discriminators"])
                for k in optimizers:
                    optimizers[k].load_state_dict(ckpt["optimizers"][k])
                if scaler.is_enabled() and ckpt["scaler"]:
                    scaler.load_state_dict(ckpt["scaler"])
                set_rng_state(ckpt["rng"])
                start, history = int(ckpt["iteration"]), list(ckpt["history"])
                drawn = {k: int(v) for k, v in ckpt["drawn"].items()}
                sums, n_sum = ckpt["sums"].clone(), int(ckpt["n_sum"])
                changed = setting_changes(ckpt.get("runtime_settings", runtime), runtime)
                if changed:
                    log.info("runtime settings differ from the checkpoint's (%s); training resumes anyway", ", ".join(changed))
                log.info("resuming from iteration %d of %d (%s stage; checkpoint %s)",
                         start, s.total_iterations, s.stage_of(min(start, s.total_iterations - 1)), ckpt_path)
            else:
                reason = (checkpoint_mismatch(ckpt, learnt, seed, cache_id) if ckpt.get("format") == CHECKPOINT_FORMAT
                          else f"checkpoint format {ckpt.get('format')!r} -> {CHECKPOINT_FORMAT!r}")
                log.warning("ignoring checkpoint %s: %s; starting over", ckpt_path, reason)

        def forward(fn: Callable, *args: torch.Tensor):
            # Networks under autocast (CUDA AMP only); every output back in float32, so the
            # losses (distances, log-softmax, squared errors) are computed in full precision.
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                out = fn(*args)
            return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

        def load(kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            k = drawn[kind]
            drawn[kind] += 1
            sampler = samplers[kind]
            rows_v, rows_i, labels = sampler.batch(k)
            images = []
            for modality, rows in ((vis_code, rows_v), (ir_code, rows_i)):
                pixels = cached[rows]["image"].to(device)
                images.append(augment(pixels, torch.Generator().manual_seed(sampler.flip_seed(k, modality))))
            return images[0], images[1], torch.from_numpy(labels).to(device)

        def backward_step(loss: torch.Tensor, *names: str) -> None:
            for name in names:
                optimizers[name].zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            for name in names:
                scaler.step(optimizers[name])

        def triplet_both_ways(fake_emb, real_emb, labels):
            m = s.triplet_margin
            return (cosine_batch_hard_triplet(fake_emb, real_emb, real_emb, labels, labels, labels, m)
                    + cosine_batch_hard_triplet(real_emb, fake_emb, fake_emb, labels, labels, labels, m))

        def feature_warmup_step() -> dict:
            _, ir, labels = load("ide")
            _, logits, emb = forward(embedder, forward(model.encode, ir))
            cls = F.cross_entropy(logits, labels)
            tri = cosine_batch_hard_triplet(emb, emb, emb, labels, labels, labels, s.triplet_margin)
            loss = cls + tri  # official warm-up: unweighted
            backward_step(loss, "feature")
            return {"feat_total": loss, "feat_cls_real_ir": cls, "feat_triplet": tri, "acc_real_ir": _accuracy(logits, labels)}

        def feature_joint_step() -> dict:
            rgb, ir, labels = load("ide")
            with torch.no_grad():
                fake_ir = forward(g_rgb2ir, rgb)
            fake_feat = forward(model.encode, fake_ir)
            real_feat = forward(model.encode, ir)
            _, fake_logits, fake_emb = forward(embedder, fake_feat)
            _, real_logits, real_emb = forward(embedder, real_feat)
            cls_fake, cls_real = F.cross_entropy(fake_logits, labels), F.cross_entropy(real_logits, labels)
            tri = triplet_both_ways(fake_emb, real_emb, labels)
            discs["D_ir"].requires_grad_(False)
            gan = lsgan_generator_loss(forward(discs["D_ir"], ir, fake_feat))
            discs["D_ir"].requires_grad_(True)
            loss = s.lambda_feature_cls * (cls_fake + cls_real) + s.lambda_feature_triplet * tri + s.lambda_feature_gan * gan
            backward_step(loss, "feature")
            return {"feat_total": loss, "feat_cls_real_ir": cls_real, "feat_cls_fake_ir": cls_fake, "feat_triplet": tri,
                    "feat_gan": gan, "acc_real_ir": _accuracy(real_logits, labels), "acc_fake_ir": _accuracy(fake_logits, labels)}

        def pixel_step(joint: bool) -> dict:
            rgb, ir, labels = load("gan")
            d_rgb = discs["D_rgb"] if joint else discs["D_rgb_warmup"]
            # Generator step: only the generators collect gradients (see the module docstring).
            discs.requires_grad_(False)
            encoder.requires_grad_(False)
            embedder.requires_grad_(False)
            fake_rgb, fake_ir = forward(g_ir2rgb, ir), forward(g_rgb2ir, rgb)
            real_feat, fake_feat = forward(model.encode, ir), forward(model.encode, fake_ir)
            gan_rgb = lsgan_generator_loss(forward(d_rgb, fake_rgb))
            if joint:
                gan_ir = lsgan_generator_loss(forward(discs["D_ir"], fake_ir, real_feat.detach()))
            else:
                gan_ir = lsgan_generator_loss(forward(discs["D_ir_warmup"], fake_ir))
            terms = {
                "G_gan": (gan_rgb + gan_ir) / 2,
                "G_cycle": (cycle_consistency_loss(rgb, forward(g_ir2rgb, fake_ir))
                            + cycle_consistency_loss(ir, forward(g_rgb2ir, fake_rgb))) / 2,
                "G_identity": (identity_loss(rgb, forward(g_ir2rgb, rgb)) + identity_loss(ir, forward(g_rgb2ir, ir))) / 2,
            }
            _, _, real_emb = forward(embedder, real_feat)
            _, fake_logits, fake_emb = forward(embedder, fake_feat)
            terms["G_triplet"] = triplet_both_ways(fake_emb, real_emb, labels)
            terms["G_cls"] = F.cross_entropy(fake_logits, labels)
            loss_g = (terms["G_gan"] + s.lambda_cycle * terms["G_cycle"] + s.lambda_identity * terms["G_identity"]
                      + s.lambda_pixel_triplet * terms["G_triplet"] + s.lambda_pixel_cls * terms["G_cls"])
            terms["G_total"] = loss_g
            backward_step(loss_g, "G")
            encoder.requires_grad_(True)
            embedder.requires_grad_(True)
            discs.requires_grad_(True)

            # Discriminator step, on the fakes made before the generator update (detached).
            terms["D_rgb"] = lsgan_discriminator_loss(forward(d_rgb, rgb), forward(d_rgb, fake_rgb.detach()))
            if joint:
                def d_ir(images, features):
                    return forward(discs["D_ir"], images, features)
                terms["D_ir"] = joint_discriminator_loss(d_ir, ir, real_feat, fake_ir, fake_feat, s.gan_instances)
            else:
                terms["D_ir"] = lsgan_discriminator_loss(forward(discs["D_ir_warmup"], ir),
                                                         forward(discs["D_ir_warmup"], fake_ir.detach()))
            # D_rgb(+warm-up) and D_ir(+warm-up) have disjoint parameters: one backward gives
            # each optimiser exactly the gradient of its own loss.
            backward_step(terms["D_rgb"] + terms["D_ir"], "D_rgb", "D_ir")
            return terms

        def save_checkpoint(done: int) -> None:
            state = {
                "format": CHECKPOINT_FORMAT,
                **made,
                "iteration": done,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "discriminators": {k: v.detach().cpu() for k, v in discs.state_dict().items()},
                "optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "drawn": dict(drawn),
                "sums": sums.clone(),
                "n_sum": n_sum,
                "history": history,
            }
            save_torch(state, ckpt_path)

        total = s.total_iterations
        boundaries = {s.feature_warmup_iterations, s.feature_warmup_iterations + s.pixel_warmup_iterations, total}
        if start < total:
            log.info(
                "training AlignGAN on %d identities (%d real rows), backbone %s, pixels %s, re-ID input %s, "
                "stages %d / %d / %d iterations, GAN batch %d x %d, IDE batch %d x %d per modality, device %s",
                len(pids), int(real.sum()), s.backbone, "x".join(map(str, s.image_size)), "x".join(map(str, s.reid_size)),
                s.feature_warmup_iterations, s.pixel_warmup_iterations, s.joint_iterations,
                s.gan_identities, s.gan_instances, s.ide_identities, s.ide_instances, device,
            )  # fmt: skip
        model.train()
        discs.train()
        t_log = time.perf_counter()
        for it in range(start, total):
            stage = s.stage_of(it)
            if it == start or s.stage_of(it - 1) != stage:
                log.info("stage %s from iteration %d", stage, it)
            factor = s.lr_factor(it)
            for name, opt in optimizers.items():
                f = s.feature_lr_factor(it) if name == "feature" else factor
                for group in opt.param_groups:
                    group["lr"] = group["initial_lr"] * f
            lrs = (optimizers["G"].param_groups[0]["lr"], optimizers["feature"].param_groups[1]["lr"])
            if stage == "feature_warmup":
                terms = feature_warmup_step()
            elif stage == "pixel_warmup":
                terms = pixel_step(joint=False)
            else:
                terms = {**feature_joint_step(), **pixel_step(joint=True)}
            scaler.update()
            done = it + 1
            with torch.no_grad():
                sums += torch.stack([terms[k].detach().double().cpu() if k in terms else torch.zeros((), dtype=torch.float64)
                                     for k in LOSS_TERMS])
            n_sum += 1
            if done % s.log_every == 0 or done in boundaries:
                means = (sums / n_sum).tolist()
                row = {"iteration": done, "stage": stage, "lr_pixel": lrs[0], "lr_feature": lrs[1],
                       **{k: (v if k in STAGE_TERMS[stage] else float("nan")) for k, v in zip(LOSS_TERMS, means)}}
                history.append(row)
                now = time.perf_counter()
                log.info("iter %d/%d %s %s | %.2f s/iter", done, total, stage,
                         " ".join(f"{k} {row[k]:.4f}" for k in STAGE_TERMS[stage]), (now - t_log) / n_sum)
                t_log = now
                sums.zero_()
                n_sum = 0
            if done % s.checkpoint_every == 0 or done == total:
                save_checkpoint(done)
                write_loss_table(history, out_dir)
            if on_iteration_end is not None:
                on_iteration_end(done, {"stage": stage, **{k: float(v.detach()) for k, v in terms.items()}})
    write_loss_table(history, out_dir)
    write_loss_curves(history, s, out_dir)
    return save_aligngan_model(out_dir / "model.pt", model, s, pids)
