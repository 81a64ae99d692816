"""Every deliberate bug of ``learning_check.BREAKAGES`` still reaches the training it breaks.

The learning test (``test_learning.py``) is only as good as the breakages it was shown to
catch (``benchmarks/learning_breakages.py``). A breakage that patches a name the library no
longer uses would silently train healthy; one that raises would stop the benchmark. Each is
applied here to a few tiny training steps on the real SYSU-MM01 sample images, and what it
must change is asserted against a healthy run of the same seed: seconds, not the minute the
learning check takes.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import replace

import h5py
import numpy as np
import pandas as pd
import pytest

from learning_check import BREAKAGES
from reid_tiny import TINY, sample_records
from rgbir_reid.data.cache import write_cache
from rgbir_reid.training.reid import train_reid

# Real images only (what the learning check trains on), one epoch, ranking loss on.
SETTINGS = replace(TINY, train_sets=("real_visible", "real_thermal"), lsr_sets=(), epochs=1,
                   warmup_epochs=0, lr_milestones=(), weight_cross=1.0, weight_intra=0.0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("breakages") / "cache.h5", sample_records(), (32, 16))


def _train(cache, tmp_path, breakage: str | None) -> pd.Series:
    own = tmp_path / f"cache_{breakage or 'healthy'}.h5".replace(" ", "_")
    shutil.copy(cache, own)  # the label breakage rewrites its cache
    out = tmp_path / "run"
    shutil.rmtree(out, ignore_errors=True)
    context = BREAKAGES[breakage](own) if breakage else contextlib.nullcontext()
    with context:
        train_reid(own, out, SETTINGS, device="cpu", seed=0, logger=logging.getLogger("breakages"))
    return pd.read_csv(out / "losses.csv").drop(columns="images_per_s").iloc[0]


@pytest.fixture(scope="module")
def healthy(cache, tmp_path_factory):
    return _train(cache, tmp_path_factory.mktemp("healthy"), None)


def test_the_healthy_tiny_run_has_a_ranking_loss(healthy):
    assert healthy["loss_cross"] > 0  # else the sign and sampler breakages could not show


def test_shuffled_labels_permute_the_cache_and_change_training(cache, healthy, tmp_path):
    broken = _train(cache, tmp_path, "labels shuffled against images")
    with h5py.File(cache) as f, h5py.File(tmp_path / "cache_labels_shuffled_against_images.h5") as g:
        a, b = f["pid"][()], g["pid"][()]
    assert sorted(a) == sorted(b) and (a != b).any()
    assert not broken.equals(healthy)


def test_thermal_through_the_visible_stream_changes_training(cache, healthy, tmp_path):
    broken = _train(cache, tmp_path, "thermal images through the visible stream in training")
    assert not np.allclose(broken[["loss_total", "loss_id"]].to_numpy(float), healthy[["loss_total", "loss_id"]].to_numpy(float))


def test_flipped_ranking_sign_reaches_the_training_loss(cache, healthy, tmp_path):
    broken = _train(cache, tmp_path, "ranking loss sign flipped")
    assert broken["loss_cross"] < 0 < healthy["loss_cross"]


def test_unpaired_sampler_leaves_no_cross_modality_pair(cache, healthy, tmp_path):
    broken = _train(cache, tmp_path, "sampler never pairs the modalities of an identity")
    assert broken["loss_cross"] == 0  # no batch holds both modalities of any identity


def test_every_breakage_is_tested():
    tested = {"labels shuffled against images", "thermal images through the visible stream in training",
              "ranking loss sign flipped", "sampler never pairs the modalities of an identity"}
    assert set(BREAKAGES) == tested
