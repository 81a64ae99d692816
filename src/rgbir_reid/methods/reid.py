"""The ``reid`` family: one re-ID network trained on the trial's cache with identity and ranking losses.

CE²L (real + CycleGAN-converted images, top-ranking, intra-modality constraint, LSR), BDTR
(the CE²L paper's BaseLine: two-stream top-ranking on real images) and the deep baselines
of Wu et al. 2017 (one-stream, two-stream) are methods of this family: the ``reid:`` section
with each method's overrides (:class:`rgbir_reid.training.reid_settings.ReidSettings`).
Training: :func:`rgbir_reid.training.reid.train_reid`; test features: the eval-mode embedding
(:func:`rgbir_reid.features.reid_features`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from rgbir_reid.data.records import CONVERTED_SETS, ImageRecord
from rgbir_reid.methods import MethodFamily, Settings


def uses_conversion(settings: Settings) -> bool:
    """Whether the method trains on converted images (so the trial needs its CycleGAN)."""
    return bool(set(CONVERTED_SETS) & set(settings["train_sets"]))


def _batch_shape(settings: Settings) -> tuple[bool, int, int, int, int]:
    """``(converted, P, K, K_c, images per step)`` of a method's batches: P identities x (K real
    + K_c converted) images per modality; K_c defaults to K, and is 0 without converted sets.
    CAJ's ``channel_exchange`` adds a second view of each visible image (P K more per step)."""
    converted = uses_conversion(settings)
    k, p = settings["num_instances"], settings["num_identities"]
    k_c = settings.get("num_converted_instances")
    k_c = (k if k_c is None else k_c) if converted else 0
    views = p * k if settings.get("channel_exchange") else 0
    return converted, p, k, k_c, 2 * p * (k + k_c) + views


def training_budget(settings: Settings) -> str:
    """One line on a method's optimisation budget (shown by ``snakemake -n``, train_reid's message).

    Steps per epoch are ``batches_per_epoch``, or one pass over the method's training rows: with
    converted sets the rows and the batch both double (K_c = K), so methods run side by side
    take the same number of steps whenever their epochs, batches_per_epoch and schedule agree.
    """
    converted, p, k, k_c, batch = _batch_shape(settings)
    # Rows per real image: 2 with converted sets (each real image and its conversion).
    sampled = 2 * p * (k + k_c)  # what the sampler draws per step (CAJ's extra views are not drawn)
    per_epoch = settings["batches_per_epoch"] or f"ceil(real training images / {sampled / (2 if converted else 1):g})"
    return (
        f"{settings['epochs']} epochs of {per_epoch} steps, {batch} images per step "
        f"({p} identities x {k} real{f' + {k_c} converted' if converted else ''} per modality"
        f"{', each visible image twice' if batch > sampled else ''}); "
        f"lr {settings['lr']}, x{settings['lr_gamma']} at epochs {settings['lr_milestones']}, "
        f"warm-up {settings['warmup_epochs']} epochs"
    )


def training_work(settings: Settings) -> int:
    """Images through the network in training, ``epochs x steps x images per step``, for the
    workflow's job order. Where ``batches_per_epoch`` is null (one pass over the training rows,
    unknown until the cache exists) a pass counts as 10,000 rows per real set, doubled with
    converted sets, so only methods configured alike compare exactly.
    """
    converted, _, _, _, batch = _batch_shape(settings)
    per_epoch = settings["batches_per_epoch"] * batch if settings["batches_per_epoch"] else 10_000 * (2 if converted else 1)
    return int(settings["epochs"] * per_epoch)


def train(
    cache_path: str | Path,
    out_dir: str | Path,
    settings: Settings,
    *,
    device: str = "auto",
    seed: int = 0,
    logger: logging.Logger | None = None,
    section: str = "reid",
) -> Path:
    """Train the method's network on the cache (:func:`rgbir_reid.training.reid.train_reid`).

    Raises:
        ValueError: a setting unknown to :class:`ReidSettings` or out of range (names
            ``section.key``), or a cache that cannot feed a batch (names the cache).
    """
    from rgbir_reid.config import settings_from
    from rgbir_reid.training.reid import train_reid
    from rgbir_reid.training.reid_settings import ReidSettings

    return train_reid(cache_path, out_dir, settings_from(ReidSettings, settings, section),
                      device=device, seed=seed, logger=logger)


def extract(
    model_path: str | Path,
    records: Sequence[ImageRecord],
    settings: Settings,
    *,
    batch_size: int = 128,
    flip: bool = False,
    device: str = "auto",
    logger: logging.Logger | None = None,
) -> tuple[np.ndarray, dict]:
    """L2-normalised eval-mode embeddings ``[N, D]`` of ``records`` (:func:`rgbir_reid.features.reid_features`);
    the network's settings come from ``model_path`` itself, so ``settings`` is not read."""
    from rgbir_reid.features import reid_features

    return reid_features(model_path, records, batch_size=batch_size, device=device, flip=flip)


FAMILY = MethodFamily(
    name="reid",
    summary="a re-ID network trained on real (and converted) images with identity and ranking losses",
    defaults_section="reid",
    needs_cache=lambda settings: True,
    needs_conversion=uses_conversion,
    train=train,
    extract=extract,
    budget=training_budget,
    work=training_work,
)
