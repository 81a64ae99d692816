"""Training learns: on a small generated demo, rank-1 on held-out identities is far above chance.

The one test of the suite that trains long enough to learn (about a minute on 2 CPU cores). It
goes through the library the way the workflow does — generate the demo, index it, split the
trial, cache the training images, ``train_reid``, ``extract_features``, ``evaluate_features`` —
and asserts all-search single-shot rank-1 of at least six times the chance level of that
gallery on identities never seen in training (measured: about 7.5x). Breaking training brings
rank-1 down: images shuffled against labels, thermal images sent through the visible stream or
the ranking loss's sign flipped to about chance, a sampler that never pairs the two
modalities of an identity to about 5x chance (the identity loss alone still aligns some of
the modalities) — hence six, not five, times chance. README, "Does the demo learn?", lists
what was tried.
"""

import logging

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from rgbir_reid.data.cache import write_cache
from rgbir_reid.data.demo import generate_demo
from rgbir_reid.data.splits import index_dataset, make_trial_split
from rgbir_reid.evaluation.protocols import EvaluationSettings, evaluate_features
from rgbir_reid.features import extract_features
from rgbir_reid.training.reid import ReidSettings, train_reid

# Identities: many for training (what lets features generalise), as many for the test
# gallery as the default demo has.
N_TRAIN_IDS, N_TEST_IDS = 512, 32
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
    num_identities=32,
    num_instances=1,
    batches_per_epoch=60,
    epochs=8,
    weight_cross=0.5,
    weight_intra=0.0,
    optimizer="sgd",
    lr=0.05,
    warmup_epochs=1,
    lr_milestones=(7,),
    num_workers=0,
)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learning")
    root = tmp / "demo"
    generate_demo(root, seed=1, n_train_ids=N_TRAIN_IDS, n_test_ids=N_TEST_IDS, height=64, width=32)
    split = make_trial_split("demo", root, index_dataset("demo", root, verify_images=False), 1)
    train = [r for r in split if r.subset == "train"]
    test = [r for r in split if r.subset == "test"]
    cache = write_cache(tmp / "cache.h5", train, SETTINGS.image_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # conftest pins one thread for the tiny unit tests
    try:
        model = train_reid(cache, tmp / "run", SETTINGS, device="cpu", seed=0, logger=logging.getLogger("learning"))
        extract_features(model, test, tmp / "features.h5", batch_size=256, device="cpu")
    finally:
        torch.set_num_threads(threads)
    with h5py.File(tmp / "features.h5", "r") as f:
        data = {k: f[k][()] for k in ("features", "pid", "camera", "modality")}
        paths = f["path"].asstr()[()]
    rows = evaluate_features(
        data["features"], data["pid"], data["camera"], data["modality"], paths, dataset_format="sysu_mm01",
        settings=EvaluationSettings(sysu_modes=("all-search/single-shot",), sysu_sampler="seeded", sysu_n_trials=10),
    )
    return {
        "rows": rows,
        "losses": pd.read_csv(tmp / "run" / "losses.csv"),
        "train_ids": {r.pid for r in train},
        "test_ids": {r.pid for r in test},
    }


def test_test_identities_are_never_trained_on(learned):
    assert learned["test_ids"] and not learned["train_ids"] & learned["test_ids"]
    assert len(learned["test_ids"]) == N_TEST_IDS


def test_rank1_on_held_out_identities_is_six_times_chance(learned):
    rank1 = np.mean([r["rank1"] for r in learned["rows"]])
    chance = np.mean([r["chance_rank1"] for r in learned["rows"]])
    assert 0.02 < chance < 0.05  # 32 gallery identities, about one in 32 by luck
    print(f"held-out rank-1 {rank1:.3f}, chance {chance:.3f}, mAP {np.mean([r['mAP'] for r in learned['rows']]):.3f}")
    assert rank1 >= 6 * chance, f"rank-1 {rank1:.3f} is below six times chance ({chance:.3f})"


def test_training_losses_fall(learned):
    losses = learned["losses"]
    first, last = losses.iloc[0], losses.iloc[-1]
    # Identity loss well below its start near ln(C), accuracy far above 1/C.
    assert last["loss_id"] < first["loss_id"] - 1.0
    assert last["accuracy"] > 10 / N_TRAIN_IDS
    # The cross-modality ranking loss is active (an epoch mean of exactly zero means no batch
    # held both modalities of an identity) and falls below its start. This alone does not catch
    # a sampler that pairs modalities only rarely: the rank-1 bar does (see the module docstring).
    assert 0 < last["loss_cross"] < first["loss_cross"]
