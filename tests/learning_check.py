"""The learning check shared by ``tests/training/test_learning.py`` and ``benchmarks/learning_breakages.py``.

:func:`train_and_evaluate` goes through the library the way the workflow does — generate a
small demo, index it, split the trial, cache the training images, ``train_reid``,
``extract_features``, ``evaluate_features`` — and returns the all-search single-shot rows of
the held-out identities. ``breakage`` names one of :data:`BREAKAGES`, each a deliberate bug
that a learning test must catch: the benchmark script runs every one and prints its rank-1
against the test's bar.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np
import pandas as pd
import torch

from rgbir_reid.data.cache import write_cache
from rgbir_reid.data.demo import generate_demo
from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE
from rgbir_reid.data.samplers import CrossModalityIdentitySampler
from rgbir_reid.data.splits import index_dataset, make_trial_split
from rgbir_reid.evaluation.protocols import EvaluationSettings, evaluate_features
from rgbir_reid.features import extract_features
from rgbir_reid.models.reid import ReidNet
from rgbir_reid.training import reid_loss
from rgbir_reid.training.reid import train_reid
from rgbir_reid.training.reid_settings import ReidSettings

# Identities: many for training (what lets features generalise), as many for the test
# gallery as the default demo has.
N_TRAIN_IDS, N_TEST_IDS = 512, 32
# The demo config's network and baseline (config.yaml), for fewer steps and with the ranking
# loss at weight 0.5 (the demo config: 0.1) so that a wrong sign of it cannot go unnoticed.
SETTINGS = ReidSettings(
    architecture="two_stream_shufflenet_v2_x0_5",
    pretrained="none",
    embedding_dim=128,
    image_size=(64, 32),
    crop_size=(64, 32),
    crop_padding=0,
    random_grayscale=0.5,
    train_sets=("real_visible", "real_thermal"),
    lsr_sets=(),
    num_identities=64,
    num_instances=1,
    batches_per_epoch=60,
    epochs=6,
    weight_cross=0.5,
    weight_intra=0.0,
    optimizer="sgd",
    lr=0.1,
    warmup_epochs=1,
    lr_milestones=(5,),
    num_workers=0,
)
# The test's bar: rank-1 at least this many times the chance level of the gallery (issue 10
# asks for five). Six sits between the breakage that comes closest, a sampler that never pairs
# the modalities of an identity (4.2 x: the shared identity classifier still aligns the
# modalities a little across batches), and a healthy run (9.0 x), about as far from each;
# benchmarks/learning_breakages.py prints both.
TIMES_CHANCE = 6.0


@contextlib.contextmanager
def _shuffled_labels(cache: Path) -> Iterator[None]:
    # Identities permuted against the images in the cache: every label is some other image's.
    with h5py.File(cache, "r+") as f:
        pid = f["pid"][()]
        f["pid"][...] = np.random.default_rng(0).permutation(pid)
    yield


@contextlib.contextmanager
def _patched(obj: object, name: str, make: Callable) -> Iterator[None]:
    original = getattr(obj, name)
    setattr(obj, name, make(original))
    try:
        yield
    finally:
        setattr(obj, name, original)


def _thermal_through_visible_stream(cache: Path):
    # In training (not at test time) every image goes through the visible stream.
    def make(original):
        def shallow(self, x, modality):
            if self.training:
                modality = torch.full_like(modality, MODALITY_CODE[VISIBLE])
            return original(self, x, modality)
        return shallow
    return _patched(ReidNet, "_shallow", make)


def _ranking_sign_flipped(cache: Path):
    # Where the training loss looks the function up (tests/training/test_learning_breakages.py
    # checks that every breakage still reaches the training it is meant to break).
    return _patched(reid_loss, "cross_modality_top_ranking", lambda original: lambda *a, **k: -original(*a, **k))


def _unpaired_sampler(cache: Path):
    # Each batch holds P identities, all of one modality (alternating from batch to batch), with
    # as many images each as a healthy batch: no identity ever has both modalities in a batch.
    def make(original):
        def iterate(self):
            rng = np.random.default_rng([self.seed, self.epoch])
            per_id = sum(count for _, _, count in self._draws)
            for b in range(self.batches_per_epoch):
                modality = (VISIBLE, THERMAL)[b % 2]
                batch = []
                for pid in rng.choice(self.identities, self.num_identities, replace=False):
                    batch.extend(self._draw(rng, self.pools[int(pid)][modality, False], per_id).tolist())
                yield batch
        return iterate
    return _patched(CrossModalityIdentitySampler, "__iter__", make)


BREAKAGES: dict[str, Callable[[Path], contextlib.AbstractContextManager]] = {
    "labels shuffled against images": _shuffled_labels,
    "thermal images through the visible stream in training": _thermal_through_visible_stream,
    "ranking loss sign flipped": _ranking_sign_flipped,
    "sampler never pairs the modalities of an identity": _unpaired_sampler,
}


def train_and_evaluate(tmp: Path, breakage: str | None = None, settings: ReidSettings = SETTINGS) -> dict:
    """Train on a generated demo and evaluate on its held-out identities.

    Returns ``{"rows": metrics rows (all-search single-shot, 10 gallery trials), "losses":
    losses.csv as a frame, "train_ids", "test_ids"}``.
    """
    root = tmp / "demo"
    if not root.exists():
        generate_demo(root, seed=1, n_train_ids=N_TRAIN_IDS, n_test_ids=N_TEST_IDS, height=64, width=32)
    split = make_trial_split("demo", root, index_dataset("demo", root, verify_images=False), 1)
    train = [r for r in split if r.subset == "train"]
    test = [r for r in split if r.subset == "test"]
    tag = (breakage or "healthy").replace(" ", "_")
    cache = write_cache(tmp / f"cache_{tag}.h5", train, settings.image_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # conftest pins one thread for the tiny unit tests
    try:
        with BREAKAGES[breakage](cache) if breakage else contextlib.nullcontext():
            model = train_reid(cache, tmp / f"run_{tag}", settings, device="cpu", seed=0,
                               logger=logging.getLogger("learning"))
        extract_features(model, test, tmp / f"features_{tag}.h5", batch_size=256, device="cpu", flip=True)
    finally:
        torch.set_num_threads(threads)
    with h5py.File(tmp / f"features_{tag}.h5", "r") as f:
        data = {k: f[k][()] for k in ("features", "pid", "camera", "modality")}
        paths = f["path"].asstr()[()]
    rows = evaluate_features(
        data["features"], data["pid"], data["camera"], data["modality"], paths, dataset_format="sysu_mm01",
        settings=EvaluationSettings(sysu_modes=("all-search/single-shot",), sysu_sampler="seeded", sysu_n_trials=10),
    )
    return {
        "rows": rows,
        "losses": pd.read_csv(tmp / f"run_{tag}" / "losses.csv"),
        "train_ids": {r.pid for r in train},
        "test_ids": {r.pid for r in test},
    }


def summary(rows: list[dict]) -> tuple[float, float, float]:
    """(mean rank-1, mean mAP, mean chance rank-1) over the gallery trials, fractions."""
    return (float(np.mean([r["rank1"] for r in rows])), float(np.mean([r["mAP"] for r in rows])),
            float(np.mean([r["chance_rank1"] for r in rows])))
