"""CE²L re-ID training: real + modality-converted images, three losses, checkpoint/resume.

CE²L (Dai et al.) trains a two-stream network on real RGB and IR images plus their
CycleGAN conversions (RGB->IR and IR->RGB) with

    loss = weight_cross · l_cross (ρ1) + weight_intra · l_intra (ρ2) + weight_id · l_id,

where ``l_id`` is cross-entropy with label-smoothing regularisation (LSR) on the
converted images and hard labels on real ones. The ``baseline`` method is the same network
and top-ranking loss on real images only (no intra-modality constraint, no LSR).

Training sets (rows of the HDF5 cache, by ``kind`` and the ``modality`` the pixels show):

=====================  =====================================  =========  ========
set                    what it is                             kind       modality
=====================  =====================================  =========  ========
``real_visible``       real RGB images                        0 real     0
``real_thermal``       real IR images                         0 real     1
``converted_thermal``  RGB images converted RGB->IR           1          1
``converted_visible``  IR images converted IR->RGB           1          0
=====================  =====================================  =========  ========

Files written under ``out_dir``: ``checkpoints/last.pt`` and ``losses.csv`` (every epoch,
atomic), and at the end ``losses.png`` and ``model.pt`` (atomic; see
:func:`save_reid_model`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from rgbir_reid.data.cache import KIND_CONVERTED, KIND_REAL, CacheBatchDataset, read_cache_attrs
from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE
from rgbir_reid.data.samplers import CrossModalityIdentitySampler
from rgbir_reid.data.transforms import BatchAugmentation
from rgbir_reid.device import resolve_device
from rgbir_reid.io import atomic_output, config_hash
from rgbir_reid.losses.lsr import lsr_cross_entropy
from rgbir_reid.losses.ranking import REDUCTIONS, cross_modality_top_ranking, intra_modality_constraint
from rgbir_reid.models.reid import IMAGENET_MEAN, IMAGENET_STD, REID_MODELS, ReidNet, build_reid_model

# (kind, modality code) of each training set.
TRAIN_SETS: dict[str, tuple[int, int]] = {
    "real_visible": (KIND_REAL, MODALITY_CODE[VISIBLE]),
    "real_thermal": (KIND_REAL, MODALITY_CODE[THERMAL]),
    "converted_thermal": (KIND_CONVERTED, MODALITY_CODE[THERMAL]),
    "converted_visible": (KIND_CONVERTED, MODALITY_CODE[VISIBLE]),
}
REAL_SETS = ("real_visible", "real_thermal")
CONVERTED_SETS = ("converted_thermal", "converted_visible")
OPTIMIZERS = ("sgd", "adam")
AMP_MODES = ("none", "bf16", "fp16")
MODEL_FORMAT = "rgbir_reid.reid_model/1"
# Settings that do not change what is learnt (how batches are loaded, the CUDA arithmetic and
# memory layout; all ignored on CPU): left out of the checkpoint fingerprint, so a run restarted
# with other values resumes its checkpoint (as training/cyclegan.py does with its own).
_RUNTIME_FIELDS = ("num_workers", "amp", "channels_last")


@dataclass(frozen=True)
class ReidSettings:
    """Settings of one re-ID training run; defaults follow the CE²L paper where it gives them.

    Network:
        architecture: a key of ``REID_MODELS`` (``two_stream_alexnet`` is the paper's
            227x227 setting; ``two_stream_resnet50`` the common modern one).
        pretrained: ``"imagenet"``, ``"none"`` or a local torchvision state-dict file.
        specific_stages: leading backbone stages that are modality-specific (two-stream
            only); ``"all"`` = one whole trunk per modality, the BDTR layout (see
            :mod:`rgbir_reid.models.reid`).
        last_stride: 1 or 2 (ResNet only).
        embedding_dim: ``D``. dropout: before the identity classifier (paper 0.5).
    Input (pixels):
        image_size: ``[h, w]`` resize (paper 256x256). crop_size: ``[h, w]`` random crop
            (paper 227x227), also the test-time size. crop_padding: zero padding before the
            crop (0 = none). Random horizontal flip and ImageNet normalisation always apply.
        random_grayscale: probability that a training image is turned grey (luminance in
            all three channels) before normalisation; 0 = off (CE²L and BDTR use none). Infrared
            images are grey already (they move by at most one grey level), so in effect only visible
            (and IR->RGB converted) images change: the
            network cannot lean on colour, which infrared lacks (the random-grayscale
            augmentation of later visible-infrared work, e.g. Ye et al., ICCV 2021).
    Data:
        train_sets: cache sets trained on (see module docstring).
        lsr_sets: sets whose identity targets are label-smoothed (paper: the converted ones).
        num_identities ``P`` x num_instances ``K`` real images per modality, plus
            num_converted_instances ``K_c`` converted images per modality when ``train_sets``
            holds converted sets (``None``: ``K_c = K``); a batch holds ``2 P (K + K_c)``
            images, ``2 P K`` without converted sets. Real images are never crowded out by
            converted ones (see :class:`~rgbir_reid.data.samplers.CrossModalityIdentitySampler`).
        batches_per_epoch: ``None`` = about one pass over the training rows.
    Losses:
        weight_cross / weight_intra / weight_id: weights of ``l_cross``, ``l_intra``, ``l_id``.
        margin_cross: ``ρ1`` = 0.5; margin_intra: ``ρ2`` = 0.1 with weight_intra 0.1
            (Euclidean distance units, on L2-normalised embeddings). CE²L gives no values;
            these are BDTR's code's (its BaseLine), an assumption.
        lsr_epsilon: ``ε`` of LSR.
        normalize_embedding: L2-normalise embeddings before the ranking losses (so ``D`` ∈ [0, 2]).
        loss_reduction: ``"mean"`` or ``"sum"`` over the ranking-loss terms (see losses.ranking).
            The paper's plain Σ is ``"sum"`` over a batch's terms (the paper configs use it);
            the default ``"mean"`` keeps the loss scale independent of the batch size.
    Optimisation:
        epochs; optimizer ``"sgd"`` (momentum, nesterov off) or ``"adam"``; lr (paper 0.001);
        momentum; weight_decay; warmup_epochs (linear warm-up); lr_milestones (epochs at which
        lr is multiplied by lr_gamma); new_layer_lr_factor: the layers not in the backbone's
        weights (:meth:`~rgbir_reid.models.reid.ReidNet.new_parameters`) train at
        ``lr * new_layer_lr_factor`` (1 = one learning rate, as CE²L states; the PyTorch
        BDTR-style baseline and AGW code of Ye et al. use 10).
    Runtime (do not change what is learnt; a checkpoint made with other values resumes):
        amp: ``"bf16"``, ``"fp16"`` (with a GradScaler) or ``"none"``; channels_last (both
        CUDA only, ignored on CPU). num_workers: DataLoader worker processes (0 = load in
        the training process).
    """

    architecture: str = "two_stream_alexnet"
    pretrained: str = "imagenet"
    specific_stages: int | str = 1
    last_stride: int = 1
    embedding_dim: int = 512
    dropout: float = 0.5
    image_size: tuple[int, int] = (256, 256)
    crop_size: tuple[int, int] = (227, 227)
    crop_padding: int = 0
    random_grayscale: float = 0.0
    train_sets: tuple[str, ...] = ("real_visible", "real_thermal", "converted_thermal", "converted_visible")
    lsr_sets: tuple[str, ...] = CONVERTED_SETS
    num_identities: int = 8
    num_instances: int = 4
    num_converted_instances: int | None = None
    batches_per_epoch: int | None = None
    weight_cross: float = 1.0
    weight_intra: float = 0.1
    weight_id: float = 1.0
    margin_cross: float = 0.5
    margin_intra: float = 0.1
    lsr_epsilon: float = 0.1
    normalize_embedding: bool = True
    loss_reduction: str = "mean"
    epochs: int = 60
    optimizer: str = "sgd"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 0
    lr_milestones: tuple[int, ...] = (40,)
    lr_gamma: float = 0.1
    new_layer_lr_factor: float = 1.0
    amp: str = "bf16"
    channels_last: bool = True
    num_workers: int = 4

    def __post_init__(self) -> None:
        # Config files give lists; store tuples so the dataclass stays hashable and frozen.
        for name in ("image_size", "crop_size", "train_sets", "lsr_sets", "lr_milestones"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

        def bad(key: str, expected: str) -> ValueError:
            return ValueError(f"re-ID setting {key}={getattr(self, key)!r}: expected {expected}")

        if self.architecture not in REID_MODELS:
            raise bad("architecture", f"one of {sorted(REID_MODELS)}")
        for key in ("train_sets", "lsr_sets"):
            unknown = [s for s in getattr(self, key) if s not in TRAIN_SETS]
            if unknown:
                raise bad(key, f"names from {list(TRAIN_SETS)}")
        if not self.train_sets:
            raise bad("train_sets", "at least one set")
        for key in ("image_size", "crop_size"):
            size = getattr(self, key)
            if len(size) != 2 or min(size) < 1:
                raise bad(key, "[height, width] of positive pixels")
        if any(c > s + 2 * self.crop_padding for c, s in zip(self.crop_size, self.image_size)):
            raise bad("crop_size", f"at most image_size + 2 * crop_padding = {self.image_size} + 2*{self.crop_padding}")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {OPTIMIZERS}")
        if self.amp not in AMP_MODES:
            raise bad("amp", f"one of {AMP_MODES}")
        if self.loss_reduction not in REDUCTIONS:
            raise bad("loss_reduction", f"one of {REDUCTIONS}")
        for key in ("lsr_epsilon", "random_grayscale"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise bad(key, "a value in [0, 1]")
        for key in ("epochs", "num_identities", "num_instances", "embedding_dim"):
            if getattr(self, key) < 1:
                raise bad(key, "an integer >= 1")
        if self.num_converted_instances is not None and self.num_converted_instances < 0:
            raise bad("num_converted_instances", "null or an integer >= 0")
        if self.batches_per_epoch is not None and self.batches_per_epoch < 1:
            raise bad("batches_per_epoch", "null or an integer >= 1")
        if self.specific_stages != "all" and not (isinstance(self.specific_stages, int) and self.specific_stages >= 1):
            raise bad("specific_stages", "an integer >= 1 or 'all'")
        if self.new_layer_lr_factor <= 0:
            raise bad("new_layer_lr_factor", "a value > 0")
        for key in ("lr", "margin_cross", "margin_intra", "weight_cross", "weight_intra", "weight_id", "weight_decay"):
            if getattr(self, key) < 0:
                raise bad(key, "a value >= 0")

    @classmethod
    def from_dict(cls, values: dict) -> "ReidSettings":
        """Build from a config mapping; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown re-ID settings {unknown}; valid: {sorted(known)}")
        return cls(**values)


# Field overrides that turn the CE²L settings into each method's settings.
REID_METHODS: dict[str, dict] = {
    "ce2l": {},
    "baseline": {"train_sets": REAL_SETS, "lsr_sets": (), "weight_intra": 0.0},
}


def settings_for_method(method: str, settings: ReidSettings) -> ReidSettings:
    """``settings`` with the overrides of ``method`` (``"ce2l"`` none; ``"baseline"`` real images only,
    no intra-modality constraint, no LSR).

    Raises:
        ValueError: unknown method (lists valid ones).
    """
    if method not in REID_METHODS:
        raise ValueError(f"unknown re-ID method {method!r}; valid: {sorted(REID_METHODS)}")
    return replace(settings, **REID_METHODS[method])


def set_of_rows(kind: np.ndarray, modality: np.ndarray) -> np.ndarray:
    """Name of the training set of each cache row, ``[N]`` object array (see ``TRAIN_SETS``)."""
    names = np.empty(len(kind), dtype=object)
    for name, (k, m) in TRAIN_SETS.items():
        names[(kind == k) & (modality == m)] = name
    return names


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


def reid_loss_terms(
    emb: torch.Tensor,
    logits: torch.Tensor,
    pid: torch.Tensor,
    modality: torch.Tensor,
    target: torch.Tensor,
    smooth: torch.Tensor,
    settings: ReidSettings,
    *,
    check_labels: bool = True,
) -> dict[str, torch.Tensor]:
    """The three CE²L loss terms of one batch (unweighted).

    Args:
        emb: embeddings ``[N, D]``; logits: ``[N, C]``; pid: dataset identities ``[N]``;
        modality: pixel modality ``[N]`` (0 visible, 1 thermal); target: labels ``0..C-1``
        ``[N]``; smooth: bool ``[N]``, LSR for these samples.
        check_labels: passed to :func:`lsr_cross_entropy`; ``False`` only when ``target`` is
            known to lie in ``0..C-1``.

    Returns:
        ``{"cross": l_cross, "intra": l_intra, "id": l_id}``; a term whose weight is 0 is a
        constant zero (not computed).

    Raises:
        ValueError: from :func:`lsr_cross_entropy` (label outside ``0..C-1`` when checked).
    """
    zero = emb.new_zeros(())
    terms = {"cross": zero, "intra": zero, "id": zero}
    if settings.weight_cross or settings.weight_intra:
        f = F.normalize(emb, dim=1) if settings.normalize_embedding else emb
        vis = modality == MODALITY_CODE[VISIBLE]
        f_vis, pid_vis = f[vis], pid[vis]
        f_th, pid_th = f[~vis], pid[~vis]
        if settings.weight_cross:
            terms["cross"] = cross_modality_top_ranking(
                f_vis, pid_vis, f_th, pid_th, settings.margin_cross, settings.loss_reduction
            )
        if settings.weight_intra:
            terms["intra"] = intra_modality_constraint(
                f_vis, pid_vis, settings.margin_intra, settings.loss_reduction
            ) + intra_modality_constraint(f_th, pid_th, settings.margin_intra, settings.loss_reduction)
    if settings.weight_id:
        terms["id"] = lsr_cross_entropy(logits, target, settings.lsr_epsilon, smooth, check_labels=check_labels)
    return terms


def model_from_settings(settings: ReidSettings, num_classes: int, *, pretrained: str | None = None) -> ReidNet:
    """The re-ID network ``settings`` describe, with ``num_classes`` identity outputs.

    Args:
        pretrained: overrides ``settings.pretrained`` (``"none"`` when weights are loaded next).

    Raises:
        ValueError: from :func:`rgbir_reid.models.reid.build_reid_model` (unknown
            architecture, unreadable pretrained weights).
    """
    return build_reid_model(
        settings.architecture,
        num_classes,
        embedding_dim=settings.embedding_dim,
        dropout=settings.dropout,
        pretrained=settings.pretrained if pretrained is None else pretrained,
        last_stride=settings.last_stride,
        specific_stages=settings.specific_stages,
    )


def save_reid_model(path: str | Path, model: ReidNet, settings: ReidSettings, pids: list[int]) -> Path:
    """Write the final model atomically: ``{"format", "state_dict", "settings", "pids"}``.

    ``pids[label]`` is the dataset identity of classifier output ``label``; ``settings`` is
    ``asdict(ReidSettings)``, enough for :func:`load_reid_model` to rebuild the network.
    """
    state = {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "settings": asdict(settings),
        "pids": [int(p) for p in pids],
    }
    with atomic_output(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_reid_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ReidNet, ReidSettings, list[int]]:
    """Rebuild a model written by :func:`save_reid_model`, in eval mode on ``device``.

    Returns:
        ``(model, settings, pids)``.

    Raises:
        ValueError: if the file is not a re-ID model of this format (names the file).
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a re-ID model file (expected format {MODEL_FORMAT!r})")
    settings = ReidSettings.from_dict(state["settings"])
    pids = list(state["pids"])
    model = model_from_settings(settings, len(pids), pretrained="none")
    model.load_state_dict(state["state_dict"])
    return model.to(resolve_device(device)).eval(), settings, pids


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
        return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    return torch.optim.Adam(groups, lr=settings.lr, weight_decay=settings.weight_decay)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": list(random.getstate()[1]),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    random.setstate((3, tuple(state["python"]), None))


@contextlib.contextmanager
def _caller_rng_kept() -> Iterator[None]:
    # Training seeds and advances the global RNGs; the caller gets its own states back.
    state = _rng_state()
    try:
        yield
    finally:
        _set_rng_state(state)


def _learnt_settings(settings: ReidSettings) -> dict:
    """``asdict(settings)`` without the :data:`_RUNTIME_FIELDS`: the settings a checkpoint must share."""
    return {k: v for k, v in asdict(settings).items() if k not in _RUNTIME_FIELDS}


def _setting_changes(old: dict, new: dict) -> list[str]:
    """``"key old -> new"`` for each key whose value differs between two settings mappings
    (in the order of ``new``, then keys only ``old`` has; an absent key shows as ``<absent>``)."""
    changes = []
    for key in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if config_hash(a) != config_hash(b):  # by value: tuples and lists of the same items are equal
            changes.append(f"{key} {a} -> {b}")
    return changes


def _checkpoint_mismatch(ckpt: dict, learnt: dict, seed: int, cache: dict) -> str:
    """Why a checkpoint whose fingerprint differs is not resumed, e.g. ``"lr 0.01 -> 0.05, seed 3 -> 4"``.

    ``cache`` is the ``{"rows", "attrs"}`` of this run's training rows; a checkpoint written
    before the settings were stored in it only gets a generic reason.
    """
    if "learnt_settings" not in ckpt:
        return "it was made with other settings, seed or cache (or by an older version)"
    reasons = _setting_changes(ckpt["learnt_settings"], learnt)
    if ckpt.get("seed") != seed:
        reasons.append(f"seed {ckpt.get('seed')} -> {seed}")
    old_cache = ckpt.get("cache", {})
    if config_hash(old_cache) != config_hash(cache):
        old_attrs, attrs = old_cache.get("attrs", {}), cache["attrs"]
        # Attribute names only: their values are long hashes.
        what = [k for k in sorted({*old_attrs, *attrs})
                if config_hash(old_attrs.get(k)) != config_hash(attrs.get(k))]
        if old_cache.get("rows") != cache["rows"]:
            what.insert(0, f"training rows {old_cache.get('rows')} -> {cache['rows']}")
        reasons.append(f"the cache differs ({', '.join(what)})")
    return ", ".join(reasons) or "it was made with other settings, seed or cache"


def _load_scaler_state(scaler: torch.amp.GradScaler, state: dict, log: logging.Logger) -> None:
    """Restore ``scaler`` from a checkpoint's ``scaler.state_dict()`` when that state applies to it.

    A disabled GradScaler (CPU, or amp other than ``"fp16"``) saves ``{}``, and an enabled one
    raises ``RuntimeError`` on ``load_state_dict({})``. So the state is loaded only when it is
    non-empty and ``scaler`` is enabled; otherwise ``scaler`` stays fresh (an enabled one finds
    its loss scale again within a few steps), logged at info when a state or a scaler is unused.
    """
    if scaler.is_enabled() and state:
        scaler.load_state_dict(state)
    elif scaler.is_enabled():
        log.info("the checkpoint holds no GradScaler state (written without fp16 AMP): starting a fresh scaler")
    elif state:
        log.info("the checkpoint's GradScaler state is not used: fp16 AMP is off in this run")


# Per-epoch running sums of the training loop, in this order ("total" is the weighted loss).
SUMMED = ("total", "cross", "intra", "id")
HISTORY_COLUMNS = ("epoch", "lr", "loss_total", "loss_cross", "loss_intra", "loss_id", "accuracy", "images_per_s")


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
    for col in ("loss_total", "loss_cross", "loss_intra", "loss_id"):
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
    when they differ), seed and cache (logs ``resuming from epoch N``); a checkpoint from
    other learnt settings, seed or cache is ignored with a warning naming what differs
    (``lr 0.01 -> 0.05``, ``seed 3 -> 4``, ``the cache differs (...)``). A checkpoint written
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
    # The checkpoint must share what is learnt: settings but _RUNTIME_FIELDS, seed and cache.
    learnt = _learnt_settings(settings)
    runtime = {k: getattr(settings, k) for k in _RUNTIME_FIELDS}
    cache_id = {"rows": len(rows), "attrs": read_cache_attrs(cache_path)}
    fingerprint = config_hash({"settings": learnt, "seed": seed, "cache": cache_id})
    with _caller_rng_kept():
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        model = model_from_settings(settings, len(pids)).to(device)
        memory_format = torch.channels_last if cuda and settings.channels_last else torch.contiguous_format
        model = model.to(memory_format=memory_format)
        optimizer = _make_optimizer(model, settings)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(settings))
        use_amp = cuda and settings.amp != "none"
        amp_dtype = torch.bfloat16 if settings.amp == "bf16" else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and settings.amp == "fp16")

        start_epoch, history = 0, []
        if ckpt_path.exists():
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            if ckpt.get("fingerprint") == fingerprint:
                model.load_state_dict(ckpt["model"])
                optimizer.load_state_dict(ckpt["optimizer"])
                scheduler.load_state_dict(ckpt["scheduler"])
                _load_scaler_state(scaler, ckpt.get("scaler", {}), log)
                _set_rng_state(ckpt["rng"])
                start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
                changed = _setting_changes(ckpt.get("runtime_settings", runtime), runtime)
                if changed:
                    log.info("runtime settings differ from the checkpoint's (%s); they do not change what "
                             "is learnt, so training resumes anyway", ", ".join(changed))
                if start_epoch < settings.epochs:
                    log.info("resuming from epoch %d of %d (checkpoint %s)", start_epoch + 1, settings.epochs, ckpt_path)
                else:
                    log.info("all %d epochs already done (checkpoint %s)", settings.epochs, ckpt_path)
            else:
                log.warning("ignoring checkpoint %s: %s; starting over", ckpt_path,
                            _checkpoint_mismatch(ckpt, learnt, seed, cache_id))

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
        weights = {"cross": settings.weight_cross, "intra": settings.weight_intra, "id": settings.weight_id}
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
                x = augment(batch["image"].to(device, non_blocking=True)).contiguous(memory_format=memory_format)
                row = batch["index"].numpy()
                pid = batch["pid"].to(device)
                modality = batch["modality"].to(device)
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
                "epoch %d/%d lr %.2e loss %.4f (cross %.4f intra %.4f id %.4f) acc %.3f %.1f img/s ETA %s",
                epoch + 1, settings.epochs, lr, row_log["loss_total"], row_log["loss_cross"],
                row_log["loss_intra"], row_log["loss_id"], row_log["accuracy"], row_log["images_per_s"],
                time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 86400 else f"{eta / 3600:.0f} h",
            )
            checkpoint = {
                "fingerprint": fingerprint,
                # What the fingerprint hashes, so an ignored checkpoint can be told apart in words.
                "learnt_settings": learnt,
                "runtime_settings": runtime,
                "seed": seed,
                "cache": cache_id,
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(),
                "history": history,
            }
            with atomic_output(ckpt_path) as tmp:
                torch.save(checkpoint, tmp)
            write_loss_table(history, out_dir)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row_log)
    if start_epoch >= settings.epochs:
        # Nothing trained in this call, so the loop wrote no table: rewrite it from the
        # checkpoint in case an earlier run died between the checkpoint and losses.csv.
        write_loss_table(history, out_dir)
    write_loss_curves(history, out_dir)
    return save_reid_model(out_dir / "model.pt", model.to(memory_format=torch.contiguous_format), settings, pids)
