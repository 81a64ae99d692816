"""The identity-balanced cross-modality sampler."""

import numpy as np
import pytest

from rgbir_reid.data.samplers import CrossModalityIdentitySampler

# 4 identities with both modalities (id 3 has a single thermal image), id 9 is visible only
PIDS = np.array([1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 9, 9])
MODS = np.array([0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0])


def make(seed=0, **kw):
    kw.setdefault("batches_per_epoch", 6)
    return CrossModalityIdentitySampler(PIDS, MODS, num_identities=2, num_instances=3, seed=seed, **kw)


def test_every_identity_has_k_of_both_modalities():
    s = make()
    assert s.skipped_identities == [9]
    batches = list(s)
    assert len(batches) == len(s) == 6
    for batch in batches:
        assert len(batch) == 2 * 2 * 3
        ids = set(PIDS[batch].tolist())
        assert len(ids) == 2 and 9 not in ids
        for pid in ids:
            rows = [r for r in batch if PIDS[r] == pid]
            assert (MODS[rows] == 0).sum() == 3 and (MODS[rows] == 1).sum() == 3


def test_replacement_only_when_needed():
    # id 1 has 3 visible rows -> drawn without replacement: all three distinct
    for batch in make():
        vis_1 = [r for r in batch if PIDS[r] == 1 and MODS[r] == 0]
        if vis_1:
            assert sorted(vis_1) == [0, 1, 2]


def test_identities_balanced_over_epoch():
    # 6 batches x 2 ids = 12 slots over 4 identities, visited in permutations: each 3 times
    counts = {}
    for batch in make():
        for pid in set(PIDS[batch].tolist()):
            counts[pid] = counts.get(pid, 0) + 1
    assert sorted(counts) == [1, 2, 3, 4]
    assert max(counts.values()) - min(counts.values()) <= 1


def test_same_seed_same_batches_other_epoch_other_batches():
    a, b = make(seed=5), make(seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(make(seed=6)) != first


def test_default_epoch_length_and_errors():
    s = CrossModalityIdentitySampler(PIDS, MODS, num_identities=2, num_instances=2, seed=0)
    assert len(s) == int(np.ceil(len(PIDS) / 8))
    with pytest.raises(ValueError, match="only 4 identities"):
        CrossModalityIdentitySampler(PIDS, MODS, num_identities=5, num_instances=2, seed=0)
    with pytest.raises(ValueError, match="equal length"):
        CrossModalityIdentitySampler(PIDS[:-1], MODS, num_identities=2, num_instances=2, seed=0)


# Rows 0-11: id 1 and id 2, real and converted of each modality; id 3 has no real thermal row.
C_PIDS = np.array([1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3])
C_MODS = np.array([0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1])
C_CONV = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1], dtype=bool)


def test_real_images_drawn_first_and_converted_ones_on_top():
    s = CrossModalityIdentitySampler(
        C_PIDS, C_MODS, num_identities=3, num_instances=2, seed=0, batches_per_epoch=4,
        converted=C_CONV, num_converted_instances=1,
    )
    assert s.batch_size == 2 * 3 * (2 + 1)
    for batch in s:
        assert len(batch) == s.batch_size
        for j, pid in enumerate(dict.fromkeys(C_PIDS[batch].tolist())):
            block = batch[j * 6:(j + 1) * 6]  # real visible x2, real thermal x2, converted visible, converted thermal
            assert set(C_PIDS[block]) == {pid}
            assert C_MODS[block].tolist() == [0, 0, 1, 1, 0, 1]
            if pid != 3:
                assert C_CONV[block].tolist() == [False, False, False, False, True, True]
            else:
                # no real thermal row: the converted one (row 14) stands in for both real
                # thermal slots
                assert C_CONV[block].tolist() == [False, False, True, True, True, True]


def test_without_converted_rows_the_batches_are_unchanged():
    plain = list(make())
    marked = list(make(converted=np.zeros(len(PIDS), dtype=bool), num_converted_instances=3))
    assert plain == marked
    with pytest.raises(ValueError, match="num_converted_instances >= 0"):
        make(num_converted_instances=-1)


def test_real_plus_converted_epoch_has_as_many_batches_as_real_only():
    # Equal budgets: with K_c = K (the default) a ce2l epoch over real + converted rows (each
    # real image and its conversion) is as many steps as a baseline epoch over the real rows.
    n = len(PIDS)
    pids, mods = np.concatenate([PIDS, PIDS]), np.concatenate([MODS, 1 - MODS])
    conv = np.arange(2 * n) >= n
    for k in (1, 2, 3):
        real = CrossModalityIdentitySampler(PIDS, MODS, num_identities=2, num_instances=k, seed=0)
        both = CrossModalityIdentitySampler(pids, mods, num_identities=2, num_instances=k, seed=0,
                                            converted=conv, num_converted_instances=k)
        assert len(both) == len(real) and both.batch_size == 2 * real.batch_size
