"""Training loop of the RGB<->IR CycleGAN, with checkpoint/resume, and its converters.

Source: Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017 (Sec. 3 objective, Sec. 4 training details, Appendix 7). Network names
and their paper symbols are mapped in :mod:`rgbir_reid.models.cyclegan`.

Files written under ``out_dir``:

- ``generator.pt`` — both generators' state dicts and what is needed to rebuild them
  (:func:`save_generators`); what the conversion stage (:mod:`rgbir_reid.conversion`:
  converters, the cache build) loads with :func:`load_generators`.
- ``checkpoints/last.pt`` — full training state every ``checkpoint_every`` iterations;
  rerunning :func:`train_cyclegan` with the same inputs resumes from it.

Both are read with ``torch.load(weights_only=True)`` through
:func:`rgbir_reid.training.checkpoints.load_checkpoint`: a truncated, foreign or non-torch file
raises :class:`~rgbir_reid.training.checkpoints.CheckpointError` naming it.
- ``losses.csv`` — one row per ``log_every`` iterations: mean of each loss term.
- ``samples.png`` — ``real RGB | fake IR | real IR | fake RGB`` rows (see
  :func:`rgbir_reid.reporting.samples.save_sample_grid`).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from rgbir_reid.data.transforms import load_image, to_tensor
from rgbir_reid.io import atomic_output, config_hash, save_torch
from rgbir_reid.losses.gan import (
    ImageHistoryBuffer,
    cycle_consistency_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from rgbir_reid.models.cyclegan import (
    DISCRIMINATOR_NAMES,
    GENERATOR_NAMES,
    build_cyclegan,
    default_n_blocks,
    translate,
)
from rgbir_reid.reporting.samples import save_sample_grid
from rgbir_reid.conversion import save_generators
from rgbir_reid.io import load_checkpoint
from rgbir_reid.training.checkpoints import code_change, setting_changes, training_code_hash

CHECKPOINT_FORMAT = 1
# What a resume reads from checkpoints/last.pt; a file without them is not a CycleGAN checkpoint.
_CHECKPOINT_KEYS = ("format", "iteration", "models", "optimizers", "schedulers", "buffers", "rng", "history")
LOSS_TERMS = ("G_gan_ir", "G_gan_rgb", "cycle_rgb", "cycle_ir", "idt_rgb", "idt_ir", "G_total", "D_ir", "D_rgb")
# Settings that do not change what is learnt: a checkpoint made with other values still resumes.
_RUNTIME_FIELDS = ("log_every", "checkpoint_every", "num_workers", "sample_count")


@dataclass(frozen=True)
class CycleGANSettings:
    """Settings of one CycleGAN training run; defaults are the paper's (Sec. 4, Appendix 7).

    Attributes:
        image_size: ``[height, width]`` in pixels of the training crops (paper: 256x256;
            person crops, e.g. 288x144 or 256x128, work as well).
        load_scale: images are resized to ``load_scale * image_size`` then randomly cropped to
            ``image_size`` (paper's code: 286 -> 256, i.e. 286/256); 1.0 disables cropping.
        flip: random horizontal flips.
        ngf: generator width, channels of the first layer (paper: 64).
        ndf: discriminator width, channels of the first layer (paper: 64).
        n_blocks: residual blocks of the generator; ``None`` picks 9 at heights >= 256, else 6.
        n_disc_layers: stride-2/-1 ``Ck`` layers after ``C64`` of the PatchGAN (3 gives 70x70).
        lambda_cycle: weight of the cycle-consistency loss (paper: 10).
        lambda_identity: weight of the identity loss *relative to* ``lambda_cycle`` (paper: 0.5,
            i.e. an absolute weight of 5); 0 disables it.
        pool_size: generated images kept in each discriminator's history buffer (paper: 50).
        lr: Adam learning rate (paper: 0.0002).
        beta1, beta2: Adam betas (paper: 0.5; beta2 the Adam default 0.999).
        batch_size: images of each modality per iteration (paper: 1).
        iterations: optimiser steps in total. The paper trains 200 epochs (100 at a constant
            rate, 100 decaying); at batch 1 that is ``200 * n_images`` iterations.
        decay_fraction: share of the iterations over which lr decays linearly to 0 (paper: 0.5).
        log_every: iterations between log lines / ``losses.csv`` rows.
        checkpoint_every: iterations between writes of ``checkpoints/last.pt``.
        num_workers: DataLoader worker processes decoding images.
        sample_count: rows of the ``samples.png`` grid.
    """

    image_size: tuple[int, int] = (256, 256)
    load_scale: float = 286 / 256
    flip: bool = True
    ngf: int = 64
    ndf: int = 64
    n_blocks: int | None = None
    n_disc_layers: int = 3
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 1
    iterations: int = 200_000
    decay_fraction: float = 0.5
    log_every: int = 100
    checkpoint_every: int = 1000
    num_workers: int = 0
    sample_count: int = 4

    def __post_init__(self) -> None:
        # YAML/JSON give lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        problems = []
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            problems.append(f"image_size must be [height, width] > 0, got {list(self.image_size)}")
        if self.load_scale < 1.0:
            problems.append(f"load_scale must be >= 1, got {self.load_scale}")
        if self.n_blocks is not None and self.n_blocks < 0:
            problems.append(f"n_blocks must be >= 0 or null, got {self.n_blocks}")
        for name in ("ngf", "ndf", "n_disc_layers", "batch_size", "iterations", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.decay_fraction <= 1.0:
            problems.append(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")
        for name in ("lambda_cycle", "lambda_identity", "pool_size", "num_workers", "sample_count"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if problems:
            raise ValueError("CycleGANSettings: " + "; ".join(problems))

    @property
    def resolved_n_blocks(self) -> int:
        """``n_blocks``, or the paper's rule applied to the image height when it is ``None``."""
        return self.n_blocks if self.n_blocks is not None else default_n_blocks(self.image_size[0])

    @property
    def decay_iterations(self) -> int:
        """Iterations at the end of training over which lr falls linearly to 0."""
        return int(round(self.decay_fraction * self.iterations))

    def to_dict(self) -> dict:
        """JSON/YAML-friendly dict (``image_size`` as a list)."""
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size)
        return d


def _resume_mismatch(ckpt: dict, learnt: dict, seed: int, fingerprint: str) -> str:
    """Why a CycleGAN checkpoint is not resumed, in words (``"lr 0.0002 -> 0.0001, seed 0 -> 1"``)."""
    reasons = []
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        reasons.append(f"checkpoint format {ckpt.get('format')!r} -> {CHECKPOINT_FORMAT!r}")
    reasons += code_change(ckpt)
    reasons += setting_changes(ckpt.get("learnt_settings", {}), learnt)
    if ckpt.get("seed") != seed:
        reasons.append(f"seed {ckpt.get('seed')} -> {seed}")
    if ckpt.get("data") != fingerprint:
        reasons.append("the training images differ")
    return ", ".join(reasons)


ScoreFn = Callable[[torch.Tensor], torch.Tensor]
ImageFn = Callable[[torch.Tensor], torch.Tensor]


def cycle_generator_terms(
    g_rgb2ir: ImageFn,
    g_ir2rgb: ImageFn,
    score_ir: ScoreFn,
    score_rgb: ScoreFn,
    real_rgb: torch.Tensor,
    real_ir: torch.Tensor,
    *,
    identity: bool = True,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The unweighted generator terms of one CycleGAN step, both directions (paper Eq. 1-3, Sec. 5.2).

    The one implementation of the CycleGAN generator objective in the library, called by
    :func:`cyclegan_iteration` (which both :func:`train_cyclegan` and AlignGAN's pixel steps run).

    Terms (each a scalar): ``G_gan_ir = mean((score_ir(G_rgb2ir(rgb)) - 1)^2)``, ``G_gan_rgb``
    likewise through ``score_rgb(G_ir2rgb(ir))`` (least-squares GAN); ``cycle_rgb = |G_ir2rgb(
    G_rgb2ir(rgb)) - rgb|_1`` and ``cycle_ir`` (means); ``idt_rgb = |G_ir2rgb(rgb) - rgb|_1`` and
    ``idt_ir = |G_rgb2ir(ir) - ir|_1`` (zero tensors when ``identity`` is false: the identity
    images are then not computed). Weighting: :func:`cycle_generator_loss`.

    Args:
        g_rgb2ir, g_ir2rgb: image ``[N, 3, H, W]`` in [-1, 1] -> image of the same shape.
        score_ir, score_rgb: fake infrared / visible image -> discriminator scores (any shape);
            the caller freezes the discriminators' parameters if they must get no gradient.
        real_rgb, real_ir: ``[N, 3, H, W]`` in [-1, 1] (the two ``N`` may differ).
        identity: compute the identity terms.

    Returns:
        ``(terms, fake_rgb, fake_ir)`` with ``fake_rgb = G_ir2rgb(real_ir)``, ``fake_ir = G_rgb2ir(real_rgb)``
        (not detached).
    """
    fake_ir, fake_rgb = g_rgb2ir(real_rgb), g_ir2rgb(real_ir)
    terms = {
        "G_gan_ir": lsgan_generator_loss(score_ir(fake_ir)),
        "G_gan_rgb": lsgan_generator_loss(score_rgb(fake_rgb)),
        "cycle_rgb": cycle_consistency_loss(real_rgb, g_ir2rgb(fake_ir)),
        "cycle_ir": cycle_consistency_loss(real_ir, g_rgb2ir(fake_rgb)),
    }
    if identity:
        terms["idt_rgb"] = identity_loss(real_rgb, g_ir2rgb(real_rgb))
        terms["idt_ir"] = identity_loss(real_ir, g_rgb2ir(real_ir))
    else:
        terms["idt_rgb"] = terms["idt_ir"] = real_rgb.new_zeros(())
    return terms, fake_rgb, fake_ir


def cycle_generator_loss(terms: dict[str, torch.Tensor], lambda_cycle: float, lambda_identity: float) -> torch.Tensor:
    """``G_gan_ir + G_gan_rgb + lambda_cycle (cycle_rgb + cycle_ir) + lambda_identity (idt_rgb + idt_ir)``.

    ``lambda_identity`` is the *absolute* weight (CycleGAN's settings give it relative to
    ``lambda_cycle``: 0.5 x 10 = 5). ``terms``: from :func:`cycle_generator_terms`.
    """
    return (
        terms["G_gan_ir"] + terms["G_gan_rgb"]
        + lambda_cycle * (terms["cycle_rgb"] + terms["cycle_ir"])
        + lambda_identity * (terms["idt_rgb"] + terms["idt_ir"])
    )  # fmt: skip


def cyclegan_iteration(
    g_rgb2ir: ImageFn,
    g_ir2rgb: ImageFn,
    score_ir: ScoreFn,
    score_rgb: ScoreFn,
    real_rgb: torch.Tensor,
    real_ir: torch.Tensor,
    *,
    lambda_cycle: float,
    lambda_identity: float,
    discriminators: Sequence[torch.nn.Module],
    discriminator_terms: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
    step_generators: Callable[[torch.Tensor], None],
    step_discriminators: Callable[[torch.Tensor], None],
    generator_scale: float = 1.0,
    task_terms: Callable[[torch.Tensor, torch.Tensor], tuple[dict[str, torch.Tensor], list[torch.Tensor]]] | None = None,
) -> dict[str, torch.Tensor]:
    """One CycleGAN iteration: a generator step, then a discriminator step (paper Sec. 3-4).

    The one CycleGAN iteration of the library. :func:`train_cyclegan` runs it with the
    CycleGAN's networks and history buffers; AlignGAN's pixel module
    (:mod:`rgbir_reid.training.aligngan`, whose official pixel warm-up is a CycleGAN training
    with two task terms through the encoder) runs it in its pixel warm-up and joint stages with
    its own discriminators (the joint ``D_ir`` scores (image, feature) pairs) and task terms.

    Generator step: ``discriminators`` frozen (no gradient from the generators' loss), the terms
    of :func:`cycle_generator_terms`, ``L_G = generator_scale * cycle_generator_loss(terms) +
    sum(task addends)``, ``step_generators(L_G)`` (zero the generators' gradients, backward,
    step). Discriminator step: ``discriminators`` trainable again, ``discriminator_terms(
    fake_rgb, fake_ir)`` on the detached fakes made before the generator update, and
    ``step_discriminators`` on the sum of those terms.

    Args:
        g_rgb2ir, g_ir2rgb, score_ir, score_rgb, real_rgb, real_ir: as :func:`cycle_generator_terms`
            (images ``[N, 3, H, W]`` in [-1, 1]).
        lambda_cycle, lambda_identity: absolute weights of :func:`cycle_generator_loss` (the
            identity images are not computed when ``lambda_identity`` is 0).
        discriminators: the modules frozen during the generator step.
        discriminator_terms: ``(fake_rgb, fake_ir) -> {name: scalar loss}`` (the fakes detached).
        step_generators, step_discriminators: ``loss -> None``: zero grads, backward, step.
        generator_scale: factor of the CycleGAN part of ``L_G`` (AlignGAN: 1/2, the mean of both directions).
        task_terms: ``(fake_rgb, fake_ir) -> (terms, addends)``: more logged terms and the
            scalars added to ``L_G``, in order (not detached: they train the generators).

    Returns:
        Every term as a scalar tensor: those of :func:`cycle_generator_terms`, the task terms,
        ``G_total`` (``L_G``) and those of ``discriminator_terms``.
    """
    for d in discriminators:
        d.requires_grad_(False)
    terms, fake_rgb, fake_ir = cycle_generator_terms(g_rgb2ir, g_ir2rgb, score_ir, score_rgb, real_rgb, real_ir,
                                                     identity=lambda_identity > 0)
    loss_g = cycle_generator_loss(terms, lambda_cycle, lambda_identity) * generator_scale
    if task_terms is not None:
        extra, addends = task_terms(fake_rgb, fake_ir)
        terms.update(extra)
        for addend in addends:
            loss_g = loss_g + addend
    terms["G_total"] = loss_g
    step_generators(loss_g)
    for d in discriminators:
        d.requires_grad_(True)
    d_terms = discriminator_terms(fake_rgb.detach(), fake_ir.detach())
    terms.update(d_terms)
    step_discriminators(sum(d_terms.values()))
    return terms


def lr_factor(iteration: int, iterations: int, decay_iterations: int) -> float:
    """Multiplier of the base lr at ``iteration`` (0-based): 1, then linear decay towards 0.

    Paper, Sec. 4: "keep the same learning rate for the first 100 epochs and linearly decay
    the rate to zero over the next 100 epochs". The last step uses ``1 / decay_iterations``.
    """
    if decay_iterations <= 0:
        return 1.0
    return min(1.0, (iterations - iteration) / decay_iterations)


class UnpairedImages(Dataset):
    """Item ``k`` is one (visible, thermal) training sample drawn independently, seeded by ``(seed, k)``.

    Deterministic per item, so the sample seen at iteration ``i`` does not depend on worker
    count or on whether the run was resumed. Images are drawn uniformly with replacement.

    Items: ``(visible, thermal)`` float tensors ``[3, H, W]`` in [-1, 1].
    """

    def __init__(
        self,
        visible_paths: Sequence[str],
        thermal_paths: Sequence[str],
        image_size: tuple[int, int],
        load_scale: float,
        flip: bool,
        seed: int,
        length: int,
    ) -> None:
        self.visible, self.thermal = list(visible_paths), list(thermal_paths)
        self.size = (int(image_size[0]), int(image_size[1]))
        self.load_size = tuple(int(round(s * load_scale)) for s in self.size)
        self.flip, self.seed, self.length = flip, seed, length

    def __len__(self) -> int:
        return self.length

    def _augment(self, path: str, rng: np.random.Generator) -> torch.Tensor:
        img = load_image(path, self.load_size)
        (h, w), (lh, lw) = self.size, self.load_size
        y, x = int(rng.integers(lh - h + 1)), int(rng.integers(lw - w + 1))
        img = img[y : y + h, x : x + w]
        if self.flip and rng.random() < 0.5:
            img = img[:, ::-1]
        return to_tensor(img)[0]

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, k])
        v = self.visible[int(rng.integers(len(self.visible)))]
        t = self.thermal[int(rng.integers(len(self.thermal)))]
        return self._augment(v, rng), self._augment(t, rng)


def _data_fingerprint(visible_paths: Sequence[str], thermal_paths: Sequence[str]) -> str:
    return config_hash({"visible": list(visible_paths), "thermal": list(thermal_paths)})


def _evenly_spaced(paths: Sequence[str], k: int) -> list[str]:
    idx = np.linspace(0, len(paths) - 1, num=min(k, len(paths))).round().astype(int)
    return [paths[i] for i in idx]


def train_cyclegan(
    visible_paths: Sequence[str | Path],
    thermal_paths: Sequence[str | Path],
    out_dir: str | Path,
    settings: CycleGANSettings,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    logger: logging.Logger | None = None,
) -> Path:
    """Train the RGB<->IR CycleGAN on unpaired images; returns ``out_dir/generator.pt``.

    Objective (paper, Eq. 3 with least-squares adversarial terms and the identity term):
    ``L = L_gan(G_rgb2ir, D_ir) + L_gan(G_ir2rgb, D_rgb) + lambda_cycle * (L_cyc_rgb + L_cyc_ir)
    + lambda_cycle * lambda_identity * (L_idt_rgb + L_idt_ir)``; the discriminators see fakes
    through 50-image history buffers; Adam, constant lr then linear decay to 0.

    Each iteration draws ``batch_size`` visible and ``batch_size`` thermal images independently
    (unpaired), seeded by ``seed`` and the sample number; the whole run is reproducible for a
    given seed and device. A run killed part-way resumes from ``out_dir/checkpoints/last.pt``
    when called again with the same images, settings and seed (the log says "resuming from
    iteration N"); a checkpoint made from other inputs is ignored (and overwritten), with a
    warning naming what differs (``"ignoring ...: lr 0.0002 -> 0.0001; starting over"``).
    Settings that do not change what is learnt (``log_every``, ``checkpoint_every``,
    ``num_workers``, ``sample_count``) do not stop a resume.

    Every ``log_every`` iterations one log line gives the mean of each loss term over the
    interval (names in ``LOSS_TERMS``), the lr, the rate in real images (visible + thermal)
    per second, and the ETA; a tqdm bar is shown when stderr is a terminal.

    Args:
        visible_paths: RGB training images (the trial's training identities only).
        thermal_paths: infrared training images (the trial's training identities only).
        out_dir: output folder (layout in the module docstring).
        settings: the run's :class:`CycleGANSettings`.
        device: where to train.
        seed: seeds initialisation, sampling, augmentation and the history buffers.
        logger: receives the progress lines; default ``logging.getLogger(__name__)``.

    Raises:
        ValueError: if either image list is empty.
        DatasetFormatError: if an image cannot be decoded (names the file).
        CheckpointError: (a ``ValueError``) ``checkpoints/last.pt`` is truncated, not a torch
            file or not a CycleGAN checkpoint (names it; delete it to start over).
    """
    log = logger or logging.getLogger(__name__)
    device = torch.device(device)
    visible = [str(p) for p in visible_paths]
    thermal = [str(p) for p in thermal_paths]
    if not visible or not thermal:
        raise ValueError(f"train_cyclegan: need visible and thermal images, got {len(visible)} and {len(thermal)}")
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoints" / "last.pt"
    s = settings
    n_blocks = s.resolved_n_blocks

    nets = build_cyclegan(ngf=s.ngf, ndf=s.ndf, n_blocks=n_blocks, n_disc_layers=s.n_disc_layers, seed=seed).to(device)
    gens = [nets[n] for n in GENERATOR_NAMES]
    discs = [nets[n] for n in DISCRIMINATOR_NAMES]
    opt_g = torch.optim.Adam([p for g in gens for p in g.parameters()], lr=s.lr, betas=(s.beta1, s.beta2))
    opt_d = torch.optim.Adam([p for d in discs for p in d.parameters()], lr=s.lr, betas=(s.beta1, s.beta2))
    n_decay = s.decay_iterations
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(it, s.iterations, n_decay)) for opt in (opt_g, opt_d)
    ]
    buffer_ir = ImageHistoryBuffer(s.pool_size, torch.Generator().manual_seed(seed + 1))
    buffer_rgb = ImageHistoryBuffer(s.pool_size, torch.Generator().manual_seed(seed + 2))
    learnt = {k: v for k, v in s.to_dict().items() if k not in _RUNTIME_FIELDS}
    fingerprint = _data_fingerprint(visible, thermal)
    start, history = 0, []

    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, required=_CHECKPOINT_KEYS)
        mismatch = _resume_mismatch(ckpt, learnt, seed, fingerprint)
        if not mismatch:
            nets.load_state_dict(ckpt["models"])
            opt_g.load_state_dict(ckpt["optimizers"]["G"])
            opt_d.load_state_dict(ckpt["optimizers"]["D"])
            for sch, st in zip(schedulers, ckpt["schedulers"]):
                sch.load_state_dict(st)
            buffer_ir.load_state_dict(ckpt["buffers"]["ir"], device)
            buffer_rgb.load_state_dict(ckpt["buffers"]["rgb"], device)
            torch.set_rng_state(ckpt["rng"]["torch"])
            start, history = int(ckpt["iteration"]), list(ckpt["history"])
            log.info("resuming from iteration %d of %d (%s)", start, s.iterations, ckpt_path)
        else:
            log.warning("ignoring %s: %s; starting over", ckpt_path, mismatch)

    def save_checkpoint(iteration: int) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "iteration": iteration,
            "learnt_settings": learnt,
            "seed": seed,
            "data": fingerprint,
            "code": training_code_hash(),
            "models": {k: v.detach().cpu() for k, v in nets.state_dict().items()},
            "optimizers": {"G": opt_g.state_dict(), "D": opt_d.state_dict()},
            "schedulers": [sch.state_dict() for sch in schedulers],
            "buffers": {"ir": buffer_ir.state_dict(), "rgb": buffer_rgb.state_dict()},
            "rng": {"torch": torch.get_rng_state()},
            "history": history,
        }
        save_torch(state, ckpt_path)

    bs = s.batch_size
    data = UnpairedImages(visible, thermal, s.image_size, s.load_scale, s.flip, seed, s.iterations * bs)
    loader = DataLoader(
        Subset(data, range(start * bs, s.iterations * bs)),
        batch_size=bs,
        shuffle=False,
        num_workers=s.num_workers,
        pin_memory=device.type == "cuda",
    )
    lam_c, lam_i = s.lambda_cycle, s.lambda_cycle * s.lambda_identity
    if start < s.iterations:
        log.info(
            "training CycleGAN: %d visible, %d thermal images, %s px, ngf %d, ndf %d, %d residual blocks, "
            "%d iterations (%d decaying), batch %d, device %s",
            len(visible), len(thermal), "x".join(map(str, s.image_size)), s.ngf, s.ndf, n_blocks,
            s.iterations, n_decay, bs, device,
        )  # fmt: skip
    # Sums of the LOSS_TERMS since the last log row, kept on the device in float64 (as exact as
    # the Python floats they replace) and read back only when a row is logged: a float() per
    # term per iteration would stall the GPU every step.
    sums = torch.zeros(len(LOSS_TERMS), dtype=torch.float64, device=device)
    n_sum, t0, t_log = 0, time.perf_counter(), time.perf_counter()
    bar = tqdm(total=s.iterations, initial=start, disable=not sys.stderr.isatty(), file=sys.stderr, desc="CycleGAN")
    nets.train()
    g_rgb2ir, g_ir2rgb = nets["G_rgb2ir"], nets["G_ir2rgb"]
    d_ir, d_rgb = nets["D_ir"], nets["D_rgb"]
    for it, (real_rgb, real_ir) in enumerate(loader, start=start):
        real_rgb = real_rgb.to(device, non_blocking=True)
        real_ir = real_ir.to(device, non_blocking=True)

        def step_g(loss: torch.Tensor) -> None:
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()

        def step_d(loss: torch.Tensor) -> None:
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()

        def d_terms(fake_rgb: torch.Tensor, fake_ir: torch.Tensor) -> dict[str, torch.Tensor]:
            # On real images and on fakes drawn through the history buffers.
            return {"D_ir": lsgan_discriminator_loss(d_ir(real_ir), d_ir(buffer_ir.query(fake_ir))),
                    "D_rgb": lsgan_discriminator_loss(d_rgb(real_rgb), d_rgb(buffer_rgb.query(fake_rgb)))}

        terms = cyclegan_iteration(g_rgb2ir, g_ir2rgb, d_ir, d_rgb, real_rgb, real_ir, lambda_cycle=lam_c,
                                   lambda_identity=lam_i, discriminators=discs, discriminator_terms=d_terms,
                                   step_generators=step_g, step_discriminators=step_d)
        lr_used = opt_g.param_groups[0]["lr"]
        for sch in schedulers:
            sch.step()

        with torch.no_grad():
            sums += torch.stack([terms[k] for k in LOSS_TERMS]).double()
        n_sum += 1
        done = it + 1
        bar.update(1)
        if done % s.log_every == 0 or done == s.iterations:
            now = time.perf_counter()
            rate = 2 * bs * n_sum / max(now - t_log, 1e-9)  # real images (visible + thermal) per second
            eta = (s.iterations - done) * (now - t0) / max(done - start, 1)
            row = {"iteration": done, "lr": lr_used, **dict(zip(LOSS_TERMS, (sums / n_sum).tolist()))}
            history.append(row)
            log.info(
                "iter %d/%d %s lr %.3g | %.1f images/s | ETA %s",
                done, s.iterations, " ".join(f"{k} {row[k]:.4f}" for k in LOSS_TERMS), row["lr"], rate,
                datetime.timedelta(seconds=round(eta)),
            )  # fmt: skip
            sums.zero_()
            n_sum, t_log = 0, now
        if done % s.checkpoint_every == 0 or done == s.iterations:
            save_checkpoint(done)
    bar.close()

    with atomic_output(out_dir / "losses.csv") as tmp:
        pd.DataFrame(history, columns=["iteration", "lr", *LOSS_TERMS]).to_csv(tmp, index=False)
    generators = {n: nets[n] for n in GENERATOR_NAMES}
    k = s.sample_count
    if k > 0:
        vis = np.stack([load_image(p, s.image_size) for p in _evenly_spaced(visible, k)])
        th = np.stack([load_image(p, s.image_size) for p in _evenly_spaced(thermal, k)])
        n = min(len(vis), len(th))
        fake_ir = translate(generators["G_rgb2ir"], vis[:n], device)
        fake_rgb = translate(generators["G_ir2rgb"], th[:n], device)
        save_sample_grid(vis[:n], fake_ir, th[:n], fake_rgb, out_dir / "samples.png")
    gen_path = save_generators(
        out_dir / "generator.pt",
        generators,
        extra={"settings": s.to_dict(), "seed": seed, "iterations": s.iterations, "image_size": list(s.image_size)},
    )
    log.info("wrote %s", gen_path)
    return gen_path
