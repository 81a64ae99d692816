"""Training learns: on a small generated demo, rank-1 on held-out identities is far above chance.

The one test of the suite that trains long enough to learn (about a minute on 2 CPU cores),
through the library the way the workflow does (``learning_check.train_and_evaluate``). It
asserts all-search single-shot rank-1 of at least six times the chance level of that gallery
on identities never seen in training (``TIMES_CHANCE``; why six is said there).
``benchmarks/learning_breakages.py`` runs the same check under each deliberate bug of ``learning_check.BREAKAGES`` (labels shuffled, thermal images
through the visible stream, the ranking loss's sign flipped, a sampler that never pairs the
modalities) and prints how far each falls below the bar; docs/demo.md, "The learning check",
lists the figures.
"""

import numpy as np
import pytest

from learning_check import N_TEST_IDS, N_TRAIN_IDS, TIMES_CHANCE, summary, train_and_evaluate


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    return train_and_evaluate(tmp_path_factory.mktemp("learning"))


def test_test_identities_are_never_trained_on(learned):
    assert learned["test_ids"] and not learned["train_ids"] & learned["test_ids"]
    assert len(learned["test_ids"]) == N_TEST_IDS


def test_rank1_on_held_out_identities_is_far_above_chance(learned):
    rank1, mAP, chance = summary(learned["rows"])
    assert 0.02 < chance < 0.05  # 32 gallery identities, about one in 32 by luck
    print(f"held-out rank-1 {rank1:.3f}, chance {chance:.3f}, mAP {mAP:.3f}")
    assert rank1 >= TIMES_CHANCE * chance, f"rank-1 {rank1:.3f} is below {TIMES_CHANCE} times chance ({chance:.3f})"


def test_training_losses_fall(learned):
    losses = learned["losses"]
    first, last = losses.iloc[0], losses.iloc[-1]
    # Identity loss well below its start near ln(C), accuracy far above 1/C.
    assert last["loss_id"] < first["loss_id"] - 1.0
    assert last["accuracy"] > 10 / N_TRAIN_IDS
    # The cross-modality ranking loss is active (an epoch mean of exactly zero means no batch
    # held both modalities of an identity) and below its start.
    assert 0 < last["loss_cross"] < first["loss_cross"]
    assert np.isfinite(losses["loss_total"]).all()
