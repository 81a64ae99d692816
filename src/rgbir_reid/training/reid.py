"""Re-ID network training (the ``reid`` family's loop): real and converted images, three losses, resume.

CE²L (Dai et al.) trains a two-stream network on real RGB and IR images plus their CycleGAN
conversions (RGB->IR and IR->RGB) with the loss of :mod:`rgbir_reid.training.reid_loss`; BDTR
(the paper's BaseLine) is the same network and top-ranking loss on real images only. Which
cache rows a run trains on is ``settings.train_sets`` (:data:`rgbir_reid.data.records.TRAIN_SETS`):

=====================  =====================================  =========  ========
set                    what it is                             kind       modality
=====================  =====================================  =========  ========
``real_visible``       real RGB images                        0 real     0
``real_thermal``       real IR images                         0 real     1
``converted_thermal``  RGB images converted RGB->IR           1          1
``converted_visible``  IR images converted IR->RGB           1          0
=====================  =====================================  =========  ========

The job is split by concern: settings (:mod:`~rgbir_reid.training.reid_settings`), the loss
glue (:mod:`~rgbir_reid.training.reid_loss`), the network and its file
(:mod:`~rgbir_reid.training.reid_model`), checkpoint reading and RNG states
(:mod:`~rgbir_reid.training.checkpoints`), and this loop.

Files written under ``out_dir``: ``checkpoints/last.pt`` and ``losses.csv`` (every epoch,
atomic), and at the end ``losses.png`` / ``losses.pdf`` and ``model.pt`` (atomic; see
:func:`~rgbir_reid.training.reid_model.save_reid_model`).
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from rgbir_reid.data.cache import KIND_CONVERTED, CacheBatchDataset, read_cache_attrs
from rgbir_reid.data.channel_augment import ChannelViews
from rgbir_reid.data.samplers import CrossModalityIdentitySampler
from rgbir_reid.data.transforms import BatchAugmentation
from rgbir_reid.device import resolve_device
from rgbir_reid.io import atomic_output, load_checkpoint, save_torch
from rgbir_reid.models.reid import IMAGENET_MEAN, IMAGENET_STD, ReidNet
from rgbir_reid.training.checkpoints import (
    caller_rng_kept,
    checkpoint_mismatch,
    load_scaler_state,
    rng_state,
    set_rng_state,
    provenance,
    setting_changes,
)
from rgbir_reid.training.reid_loss import reid_loss_terms, set_of_rows
from rgbir_reid.training.reid_model import model_from_settings, save_reid_model
from rgbir_reid.training.reid_settings import RUNTIME_FIELDS, ReidSettings, learnt_settings


def train_transform(settings: ReidSettings) -> BatchAugmentation:
    """The training augmentation of ``settings``: uint8 ``[N, 3, H, W]`` -> float ``[N, 3, h, w]``.

    Resize to ``image_size``, (pad by ``crop_padding``,) random crop to ``crop_size``, random
    flip, (random grayscale,) ImageNet normalisation (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`,
    the statistics test images get too), applied to a whole batch on its device.
    """
    return BatchAugmentation(
        settings.image_size,
        settings.crop_size,
        crop_padding=settings.crop_padding,
        random_grayscale=settings.random_grayscale,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def _lr_factor(settings: ReidSettings) -> Callable[[int], float]:
    def factor(epoch: int) -> float:
        warm = (epoch + 1) / (settings.warmup_epochs + 1) if epoch < settings.warmup_epochs else 1.0
        return warm * settings.lr_gamma ** sum(epoch >= m for m in settings.lr_milestones)

    return factor


def _make_optimizer(model: ReidNet, settings: ReidSettings) -> torch.optim.Optimizer:
    # Two groups: the backbone's layers at lr, the new ones at lr * new_layer_lr_factor (the
    # schedule's factor multiplies each group's own initial lr).
    new = {id(p) for p in model.new_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) not in new], "lr": settings.lr},
        {"params": [p for p in trainable if id(p) in new], "lr": settings.lr * settings.new_layer_lr_factor},
    ]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay,
                               nesterov=settings.nesterov)
    return torch.optim.Adam(groups, lr=settings.lr, weight_decay=settings.weight_decay)


# Per-epoch running sums of the training loop, in this order ("total" is the weighted loss).
SUMMED = ("total", "cross", "intra", "id", "triplet")
HISTORY_COLUMNS = ("epoch", "lr", "loss_total", "loss_cross", "loss_intra", "loss_id", "loss_triplet", "accuracy",
                   "images_per_s")


def write_loss_table(history: list[dict], out_dir: Path) -> pd.DataFrame:
    """Write ``out_dir/losses.csv`` atomically: one row per epoch, columns ``HISTORY_COLUMNS``."""
    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    with atomic_output(out_dir / "losses.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def write_loss_curves(history: list[dict], out_dir: Path) -> None:
    """Write the plot ``losses.png`` / ``losses.pdf`` (loss terms and accuracy per epoch) atomically.

    ``history`` rows have the keys ``HISTORY_COLUMNS``; the table itself is written by
    :func:`write_loss_table`.
    """
    # Figure + Agg canvas, not pyplot: no global backend state in a library.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for col in ("loss_total", "loss_cross", "loss_intra", "loss_id", "loss_triplet"):
        ax_loss.plot(frame["epoch"], frame[col], marker=".", label=col.removeprefix("loss_"))
    ax_loss.set(xlabel="epoch", ylabel="loss (unweighted terms, total weighted)", title="re-ID training losses")
    ax_loss.legend()
    ax_acc.plot(frame["epoch"], frame["accuracy"], marker=".")
    ax_acc.set(xlabel="epoch", ylabel="identity accuracy", ylim=(0, 1), title="training accuracy")
    fig.tight_layout()
    for fmt in ("png", "pdf"):
        with atomic_output(out_dir / f"losses.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=100)


def train_reid(
    cache_path: str | Path,
    out_dir: str | Path,
    settings: ReidSettings,
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
    logger: logging.Logger | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> Path:
    """Train a re-ID network on the cache's ``settings.train_sets`` rows; return ``out_dir/model.pt``.

    Resumes from ``out_dir/checkpoints/last.pt`` when it was written by a run with the same
    learnt settings (all but ``num_workers``, ``amp`` and ``channels_last``, which are logged
    when they differ), seed, cache and training code
    (:func:`~rgbir_reid.training.checkpoints.training_code_hash`; logs ``resuming from epoch
    N``); any other checkpoint is ignored with a warning naming what differs (``lr 0.01 ->
    0.05``, ``seed 3 -> 4``, ``the cache differs (...)``, ``the library's training code
    changed (...)``). A checkpoint written
    without fp16 AMP (e.g. on CPU) resumes under fp16 with a fresh GradScaler. On CPU with
    ``num_workers=0`` the run is exactly reproducible and a run resumed after any epoch ends
    with the same weights as an uninterrupted one (RNG states, optimiser, scheduler and
    sampler epoch are restored; the caller's global RNG states are left as they were). With
    ``num_workers > 0`` runs are reproducible but the augmentation stream after a resume differs.

    Args:
        cache_path: HDF5 cache written by ``rgbir_reid.data.cache.write_cache``.
        out_dir: output folder (created).
        settings: see :class:`ReidSettings` (use :func:`settings_for_method` for a method).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        seed: seeds model init, augmentation, dropout and the sampler.
        logger: where progress lines go (default this module's logger).
        on_epoch_end: called as ``on_epoch_end(epochs_done, history_row)`` after each epoch's
            checkpoint is written (progress reporting; tests use it to interrupt a run).

    Raises:
        ValueError: if the cache holds no rows of ``settings.train_sets`` or too few
            identities with both modalities for a batch (names the cache).
    """
    log = logger or logging.getLogger(__name__)
    device = resolve_device(device)
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoints" / "last.pt"
    cache_path = Path(cache_path)

    # One dataset over all rows (metadata read once); training sees the subset ``rows``, read a
    # batch at a time as uint8 and augmented on the device.
    cached = CacheBatchDataset(cache_path)
    augment = train_transform(settings)
    channel_views = ChannelViews(exchange=settings.channel_exchange, adaptive_grey=settings.channel_adaptive_grey,
                                 erasing=settings.channel_erasing)
    meta = cached.meta
    row_sets = set_of_rows(meta["kind"], meta["modality"])
    rows = np.flatnonzero(np.isin(row_sets, list(settings.train_sets)))
    if len(rows) == 0:
        raise ValueError(f"cache {cache_path} holds no rows of train_sets {list(settings.train_sets)}")
    pids = sorted(int(p) for p in np.unique(meta["pid"][rows]))
    labels = np.full(len(row_sets), -1, dtype=np.int64)
    labels[rows] = np.searchsorted(pids, meta["pid"][rows])
    # In range by construction (pids are the unique identities of ``rows``, the only rows
    # loaded); checked once here so the loss need not check, and sync, every step.
    assert 0 <= labels[rows].min() and labels[rows].max() < len(pids), "identity labels out of range"
    smooth_rows = np.isin(row_sets, list(settings.lsr_sets))

    dataset = Subset(cached, rows)
    try:
        sampler = CrossModalityIdentitySampler(
            meta["pid"][rows],
            meta["modality"][rows],
            num_identities=settings.num_identities,
            num_instances=settings.num_instances,
            seed=seed,
            batches_per_epoch=settings.batches_per_epoch,
            converted=meta["kind"][rows] == KIND_CONVERTED,
            num_converted_instances=(
                settings.num_instances if settings.num_converted_instances is None else settings.num_converted_instances
            ),
        )
    except ValueError as e:
        raise ValueError(f"cache {cache_path}, train_sets {list(settings.train_sets)}: {e}") from e
    if sampler.skipped_identities:
        log.warning("%d identities lack one modality and are never sampled: %s",
                    len(sampler.skipped_identities), sampler.skipped_identities[:20])

    cuda = device.type == "cuda"
    # The checkpoint must share what is learnt: settings but RUNTIME_FIELDS, seed, cache and
    # the training code itself.
    learnt = learnt_settings(settings)
    runtime = {k: getattr(settings, k) for k in RUNTIME_FIELDS}
    cache_id = {"rows": len(rows), "attrs": read_cache_attrs(cache_path)}
    made = provenance(learnt, runtime, seed, cache_id)
    with caller_rng_kept():
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        model = model_from_settings(settings, len(pids)).to(device)
        # channels_last on CPU too: oneDNN's NHWC kernels trained ShuffleNet V2 x0.5 at 64x32 28-59 %
        # faster on one thread (AlexNet +18-28 %, ResNet-18 -6 to +7 %; benchmarks/cpu_jobs.py --all).
        memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
        model = model.to(memory_format=memory_format)
        optimizer = _make_optimizer(model, settings)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(settings))
        use_amp = cuda and settings.amp != "none"
        amp_dtype = torch.bfloat16 if settings.amp == "bf16" else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and settings.amp == "fp16")

        start_epoch, history = 0, []
        if ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path, required=("fingerprint", "model", "optimizer", "epoch"))
            if ckpt.get("fingerprint") == made["fingerprint"]:
                model.load_state_dict(ckpt["model"])
                optimizer.load_state_dict(ckpt["optimizer"])
                scheduler.load_state_dict(ckpt["scheduler"])
                load_scaler_state(scaler, ckpt.get("scaler", {}), log)
                set_rng_state(ckpt["rng"])
                start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
                changed = setting_changes(ckpt.get("runtime_settings", runtime), runtime)
                if changed:
                    log.info("runtime settings differ from the checkpoint's (%s); they do not change what "
                             "is learnt, so training resumes anyway", ", ".join(changed))
                if start_epoch < settings.epochs:
                    log.info("resuming from epoch %d of %d (checkpoint %s)", start_epoch + 1, settings.epochs, ckpt_path)
                else:
                    log.info("all %d epochs already done (checkpoint %s)", settings.epochs, ckpt_path)
            else:
                log.warning("ignoring checkpoint %s: %s; starting over", ckpt_path,
                            checkpoint_mismatch(ckpt, learnt, seed, cache_id))

        loader = DataLoader(
            dataset,
            sampler=sampler,  # yields whole batches of positions, read at once by the dataset
            batch_size=None,
            num_workers=settings.num_workers,
            pin_memory=cuda,
            persistent_workers=settings.num_workers > 0,
            generator=torch.Generator().manual_seed(seed),
        )
        log.info(
            "training %s on %d images (%s), %d identities, %d batches of %d per epoch, device %s",
            settings.architecture, len(rows), ", ".join(settings.train_sets), len(pids),
            len(sampler), sampler.batch_size, device,
        )
        weights = {"cross": settings.weight_cross, "intra": settings.weight_intra, "id": settings.weight_id,
                   "triplet": settings.weight_triplet if settings.triplet_loss != "none" else 0.0}
        for epoch in range(start_epoch, settings.epochs):
            sampler.set_epoch(epoch)
            model.train()
            # Running sums stay on the device (float64, like the Python floats they replace) and
            # are read once per epoch: a .item() per step would stall the GPU every batch.
            sums = torch.zeros(len(SUMMED), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0
            t0 = time.perf_counter()
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{settings.epochs}", leave=False,
                       disable=not sys.stderr.isatty())
            for batch in bar:
                images = batch["image"].to(device, non_blocking=True)
                x = augment(images)
                index, pid, modality = batch["index"], batch["pid"], batch["modality"]
                if channel_views.active:  # CAJ: more views per batch; ``source`` is each view's row
                    x, source = channel_views(x, images, modality, augment)
                    index, pid, modality = index[source], pid[source], modality[source]
                x = x.contiguous(memory_format=memory_format)
                row = index.numpy()
                pid = pid.to(device)
                modality = modality.to(device)
                target = torch.from_numpy(labels[row]).to(device)
                smooth = torch.from_numpy(smooth_rows[row]).to(device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    emb, logits = model(x, modality)
                # Losses in float32: distances and log-softmax are precision-sensitive.
                terms = reid_loss_terms(
                    emb.float(), logits.float(), pid, modality, target, smooth, settings, check_labels=False
                )
                loss = sum(weights[k] * v for k, v in terms.items())
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                n = x.shape[0]
                seen += n
                with torch.no_grad():
                    correct += (logits.argmax(1) == target).sum()
                    sums += torch.stack([loss, *(terms[k] for k in SUMMED[1:])]).double() * n
                if not bar.disable:  # the postfix reads the loss back: only when a bar is shown
                    bar.set_postfix(loss=f"{loss.item():.3f}")
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            seconds = time.perf_counter() - t0
            row_log = {
                "epoch": epoch + 1,
                "lr": lr,
                **{f"loss_{k}": v / max(seen, 1) for k, v in zip(SUMMED, sums.tolist())},
                "accuracy": int(correct) / max(seen, 1),
                "images_per_s": seen / max(seconds, 1e-9),
            }
            history.append(row_log)
            eta = seconds * (settings.epochs - epoch - 1)
            log.info(
                "epoch %d/%d lr %.2e loss %.4f (cross %.4f intra %.4f id %.4f triplet %.4f) acc %.3f %.1f img/s ETA %s",
                epoch + 1, settings.epochs, lr, row_log["loss_total"], row_log["loss_cross"],
                row_log["loss_intra"], row_log["loss_id"], row_log["loss_triplet"], row_log["accuracy"],
                row_log["images_per_s"],
                time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 86400 else f"{eta / 3600:.0f} h",
            )
            checkpoint = {
                **made,
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "history": history,
            }
            save_torch(checkpoint, ckpt_path)
            write_loss_table(history, out_dir)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row_log)
    if start_epoch >= settings.epochs:
        # Nothing trained in this call, so the loop wrote no table: rewrite it from the
        # checkpoint in case an earlier run died between the checkpoint and losses.csv.
        write_loss_table(history, out_dir)
    write_loss_curves(history, out_dir)
    return save_reid_model(out_dir / "model.pt", model.to(memory_format=torch.contiguous_format), settings, pids)
