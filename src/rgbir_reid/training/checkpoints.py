"""What every resumable training loop of the library shares: RNG states, the version of the
code a checkpoint was trained with, and telling a user in words why a checkpoint is not resumed.

Checkpoints themselves are read with :func:`rgbir_reid.io.load_checkpoint` (``torch.load(weights_only=True)``,
a :class:`~rgbir_reid.io.CheckpointError` naming the file for a truncated, foreign or non-torch one)
and written with :func:`rgbir_reid.io.save_torch`.
"""

from __future__ import annotations

import contextlib
import logging
import random
from typing import Iterator

import numpy as np
import torch

# The training-code hash lives in a module without torch (the evaluate stage reads it too); re-exported.
from rgbir_reid.code_hash import TRAINING_CODE, sources_hash, training_code_hash  # noqa: F401
from rgbir_reid.io import config_hash


def rng_state() -> dict:
    """The global torch (CPU and CUDA), numpy and Python RNG states, as tensors and plain values
    that ``torch.load(weights_only=True)`` reads back."""
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


def set_rng_state(state: dict) -> None:
    """Restore the global RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    random.setstate((3, tuple(state["python"]), None))


@contextlib.contextmanager
def caller_rng_kept() -> Iterator[None]:
    """Run the block with the global RNGs and give the caller its own states back afterwards
    (training seeds and advances them)."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def code_change(ckpt: dict) -> list[str]:
    """``["the training code changed (<old> -> <new>)"]`` when ``ckpt`` was written by other
    training code than :func:`training_code_hash` (or before checkpoints recorded it), else ``[]``."""
    old = ckpt.get("code", "<not recorded>")
    return [] if old == training_code_hash() else [f"the library's training code changed ({old} -> {training_code_hash()})"]


def provenance(learnt: dict, runtime: dict, seed: int, cache: dict) -> dict:
    """What a re-ID or AlignGAN checkpoint records about how it was made, to splat into it.

    ``{"fingerprint", "learnt_settings", "runtime_settings", "seed", "cache", "code"}``: the
    fingerprint hashes the learnt settings, seed, cache identity and :func:`training_code_hash`
    (a checkpoint is resumed only when it equals the current run's); the other items are what
    it hashes, so that :func:`checkpoint_mismatch` can say in words what differs.
    """
    code = training_code_hash()
    return {
        "fingerprint": config_hash({"settings": learnt, "seed": seed, "cache": cache, "code": code}),
        "learnt_settings": learnt,
        "runtime_settings": runtime,
        "seed": seed,
        "cache": cache,
        "code": code,
    }


def setting_changes(old: dict, new: dict) -> list[str]:
    """``"key old -> new"`` for each key whose value differs between two settings mappings
    (in the order of ``new``, then keys only ``old`` has; an absent key shows as ``<absent>``)."""
    changes = []
    for key in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if config_hash(a) != config_hash(b):  # by value: tuples and lists of the same items are equal
            changes.append(f"{key} {a} -> {b}")
    return changes


def checkpoint_mismatch(ckpt: dict, learnt: dict, seed: int, cache: dict) -> str:
    """Why a checkpoint whose fingerprint differs is not resumed, e.g. ``"lr 0.01 -> 0.05, seed 3 -> 4"``.

    ``cache`` is the ``{"rows", "attrs"}`` of this run's training rows; a checkpoint written
    before the settings were stored in it only gets a generic reason.
    """
    if "learnt_settings" not in ckpt:
        return "it was made with other settings, seed or cache (or by an older version)"
    reasons = code_change(ckpt) + setting_changes(ckpt["learnt_settings"], learnt)
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


def load_scaler_state(scaler: torch.amp.GradScaler, state: dict, log: logging.Logger) -> None:
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
