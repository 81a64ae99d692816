"""AlignGAN training: the three-stage loop with checkpoint/resume (the steps it runs:
:mod:`~rgbir_reid.training.aligngan_steps`; settings, sampler, model file and loss history:
``aligngan_settings``, ``aligngan_data``, ``aligngan_model``, ``aligngan_history``).

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
   each D: ``½[(D(real) - 1)² + D(fake)²]``. Each pixel step is one iteration of the library's
   CycleGAN, :func:`rgbir_reid.training.cyclegan.cyclegan_iteration` (``train_cyclegan`` runs the
   same), with AlignGAN's discriminators, no image history buffer and the task terms. With
   ``pixel_init: cyclegan`` (ours) both generators start from the trial's trained CycleGAN
   instead of random weights (``init_generators``).
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

Batches (official ``UniformSampler``): identity-aligned visible and infrared batches of P
identities x K images, GAN and IDE batches in separate streams
(:class:`~rgbir_reid.training.aligngan_data.IdentityAlignedSampler`, whose module says how).

Pixels: the cache's uint8 images are resized to ``image_size`` (official 128x128, bicubic;
here bilinear with antialiasing, :class:`~rgbir_reid.data.transforms.BatchAugmentation`),
flipped at random (p = 0.5) and scaled to [-1, 1] (``(x / 255 - 0.5) / 0.5``, official
``Normalize(0.5, 0.5)``); the encoder sees them resized to ``reid_size`` (official 384x192),
ImageNet-normalised (:func:`rgbir_reid.models.aligngan.to_reid_input`).

Test feature (official ``core/test.py``): visible images through ``G_rgb2ir``, infrared ones
straight in, the encoder's map average-pooled, flip TTA, L2-normalised; the generators'
instance norms use the running (official) or per-image statistics (``norm_statistics``).
See :func:`~rgbir_reid.training.aligngan_model.aligngan_features`.

Our assumptions (not fixed by the official code):

- Training rows are the cache's real rows; identities lacking one real modality are left out
  (the official SYSU-MM01 training identities all have both). Labels are the identities'
  ranks among them (official: per-modality re-indexing by sorted pid, the same when both
  modalities hold the same identities).
- Batches and their flips are a pure function of ``(seed, stream, batch number)``, so a
  resumed run draws exactly what an uninterrupted one draws (official: global RNGs).
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
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rgbir_reid.data.cache import KIND_REAL, CacheBatchDataset, read_cache_attrs
from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE
from rgbir_reid.data.transforms import BatchAugmentation
from rgbir_reid.conversion import load_generators
from rgbir_reid.device import resolve_device
from rgbir_reid.io import load_checkpoint, save_torch, sha256_file
from rgbir_reid.training.aligngan_data import GAN_MEAN, GAN_STD, IdentityAlignedSampler
from rgbir_reid.training.aligngan_history import (
    FEATURE_TERMS,
    HISTORY_COLUMNS,
    LOSS_TERMS,
    PIXEL_TERMS,
    STAGE_TERMS,
    write_loss_curves,
    write_loss_table,
)
from rgbir_reid.training.aligngan_model import (
    MODEL_FORMAT,
    aligngan_features,
    build_model_from_settings,
    load_aligngan_model,
    save_aligngan_model,
    use_norm_statistics,
)
from rgbir_reid.training.aligngan_settings import AMP_MODES, NORM_STATISTICS, RUNTIME_FIELDS, STAGES, AlignGANSettings
from rgbir_reid.training.aligngan_steps import AlignGANSteps, build_optimizers
from rgbir_reid.training.checkpoints import (
    caller_rng_kept,
    checkpoint_mismatch,
    provenance,
    rng_state,
    set_rng_state,
    setting_changes,
)

# The public names of the AlignGAN training code, from the modules it is split into.
__all__ = [
    "AMP_MODES", "CHECKPOINT_FORMAT", "FEATURE_TERMS", "GAN_MEAN", "GAN_STD", "HISTORY_COLUMNS", "LOSS_TERMS",
    "MODEL_FORMAT", "NORM_STATISTICS", "PIXEL_TERMS", "STAGES", "STAGE_TERMS", "AlignGANSettings",
    "IdentityAlignedSampler", "aligngan_features", "build_model_from_settings", "load_aligngan_model",
    "save_aligngan_model", "train_aligngan", "use_norm_statistics", "write_loss_curves", "write_loss_table",
]

CHECKPOINT_FORMAT = "rgbir_reid.aligngan_checkpoint/1"
# Stream numbers of the two batch kinds (seed derivation).
_IDE_STREAM, _GAN_STREAM = 0, 1


def _cyclegan_generators(path: str | Path | None, s: AlignGANSettings) -> dict[str, torch.nn.Module]:
    """The CycleGAN generators of ``path`` for ``pixel_init: cyclegan``, checked against the settings."""
    if path is None:
        raise ValueError("AlignGAN setting pixel_init='cyclegan' needs the trial's CycleGAN generator file (init_generators)")
    generators = load_generators(path)
    g = generators["G_rgb2ir"]
    if (g.ngf, g.n_blocks) != (s.ngf, s.n_blocks):
        raise ValueError(f"{path}: CycleGAN generators of ngf {g.ngf}, {g.n_blocks} residual blocks; the AlignGAN "
                         f"settings ngf={s.ngf}, n_blocks={s.n_blocks} must match them for pixel_init='cyclegan'")
    return generators


def train_aligngan(
    cache_path: str | Path,
    out_dir: str | Path,
    settings: AlignGANSettings,
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
    logger: logging.Logger | None = None,
    on_iteration_end: Callable[[int, dict], None] | None = None,
    init_generators: str | Path | None = None,
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
        init_generators: with ``pixel_init: cyclegan``, the trial's CycleGAN ``generator.pt``
            (:func:`rgbir_reid.training.cyclegan.train_cyclegan`): both pixel generators start
            from its weights; its sha256 is part of what a checkpoint must match. Not read otherwise.

    Raises:
        ValueError: the cache holds fewer identities with both real modalities than a batch needs (names the cache);
            ``pixel_init: cyclegan`` without ``init_generators``, or a generator file whose ``ngf`` /
            ``n_blocks`` differ from the settings' (names the file and both values).
        CheckpointError: (a ``ValueError``) ``init_generators`` is not a generator file (names it).
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

    learnt = {k: v for k, v in s.to_dict().items() if k not in RUNTIME_FIELDS}
    runtime = {k: getattr(s, k) for k in RUNTIME_FIELDS}
    cache_id = {"rows": int(real.sum()), "attrs": read_cache_attrs(cache_path)}
    start_generators = None
    if s.pixel_init == "cyclegan":
        start_generators = _cyclegan_generators(init_generators, s)
        cache_id["pixel_init"] = sha256_file(init_generators)
    made = provenance(learnt, runtime, seed, cache_id)
    cuda = device.type == "cuda"
    use_amp = cuda and s.amp != "none"
    amp_dtype = torch.bfloat16 if s.amp == "bf16" else torch.float16

    with caller_rng_kept():
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        model, discs = build_model_from_settings(s, len(pids), seed=seed)
        if start_generators is not None:
            for name, g in start_generators.items():
                getattr(model, name).load_state_dict(g.state_dict())
            log.info("pixel generators start from the CycleGAN %s", init_generators)
        model.to(device)
        discs.to(device)
        optimizers = build_optimizers(model, discs, s)
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

        steps = AlignGANSteps(model, discs, optimizers, scaler, s, load, device, amp_dtype if use_amp else None)

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
                terms = steps.feature_warmup()
            elif stage == "pixel_warmup":
                terms = steps.pixel(joint=False)
            else:
                terms = {**steps.feature_joint(), **steps.pixel(joint=True)}
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
