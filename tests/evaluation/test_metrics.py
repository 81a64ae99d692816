"""rank_metrics: hand-computed CMC / AP / mINP, the SYSU-MM01 rules, ties, and a loop reference."""

from __future__ import annotations

import numpy as np
import pytest

from rgbir_reid.evaluation import chance_metrics, rank_metrics


def _one(d, g_pids, q_pid, g_cams=None, q_cam=6, protocol="regdb", max_rank=5):
    g_pids = np.asarray(g_pids)
    g_cams = np.ones(len(g_pids), dtype=int) if g_cams is None else np.asarray(g_cams)
    return rank_metrics(np.asarray([d], dtype=float), [q_pid], g_pids, [q_cam], g_cams, protocol=protocol, max_rank=max_rank)


def test_plain_ranking_hand_computed():
    # Ranked list: pid 2 (0.1), pid 3 (0.2), pid 1 (0.3), pid 1 (0.4): true matches at ranks 3 and 4.
    res = _one([0.3, 0.1, 0.4, 0.2], [1, 2, 1, 3], q_pid=1)
    assert res.mAP == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert res.mINP == pytest.approx(2 / 4)
    np.testing.assert_allclose(res.cmc, [0, 0, 1, 1, 1])
    assert res.n_query == res.n_valid_query == 1


def test_sysu_identity_deduplication_in_cmc_only():
    # Ranked list of pids 2, 2, 1, 3, 1. De-duplicated: 2, 1, 3 -> first match at rank 2 for SYSU-MM01;
    # plain CMC (RegDB) puts it at rank 3. AP and mINP use the full list in both.
    d, pids = [0.1, 0.2, 0.3, 0.4, 0.5], [2, 2, 1, 3, 1]
    sysu = _one(d, pids, q_pid=1, protocol="sysu_mm01")
    regdb = _one(d, pids, q_pid=1, protocol="regdb")
    np.testing.assert_allclose(sysu.cmc, [0, 1, 1, 1, 1])
    np.testing.assert_allclose(regdb.cmc, [0, 0, 1, 1, 1])
    for res in (sysu, regdb):
        assert res.mAP == pytest.approx((1 / 3 + 2 / 5) / 2)
        assert res.mINP == pytest.approx(2 / 5)


def test_sysu_camera3_query_never_sees_camera2_gallery():
    d, pids, cams = [0.1, 0.2, 0.3], [1, 2, 1], [2, 1, 1]
    # Camera 3: the camera-2 match is removed; list = pid 2, pid 1 -> rank 2.
    cam3 = _one(d, pids, q_pid=1, g_cams=cams, q_cam=3, protocol="sysu_mm01")
    assert cam3.mAP == pytest.approx(1 / 2)
    assert cam3.mINP == pytest.approx(1 / 2)
    np.testing.assert_allclose(cam3.cmc, [0, 1, 1, 1, 1])
    # Camera 6 keeps everything: matches at ranks 1 and 3.
    cam6 = _one(d, pids, q_pid=1, g_cams=cams, q_cam=6, protocol="sysu_mm01")
    assert cam6.mAP == pytest.approx((1 + 2 / 3) / 2)
    assert cam6.mINP == pytest.approx(2 / 3)
    np.testing.assert_allclose(cam6.cmc, [1, 1, 1, 1, 1])
    # RegDB has no camera rule, even for a camera numbered 3.
    regdb = _one(d, pids, q_pid=1, g_cams=cams, q_cam=3, protocol="regdb")
    assert regdb.mAP == pytest.approx((1 + 2 / 3) / 2)


def test_query_without_match_after_removal_counts_nowhere():
    d = np.array([[0.1, 0.2], [0.2, 0.1]])
    # Query 0 (camera 3, pid 1): its only match is in camera 2 -> no true match, skipped.
    # Query 1 (camera 6, pid 2): match at rank 2.
    res = rank_metrics(d, [1, 2], [1, 2], [3, 6], [2, 1], protocol="sysu_mm01", max_rank=2)
    assert res.n_query == 2 and res.n_valid_query == 1
    assert res.mAP == pytest.approx(1.0)  # query 1: pid 2 at distance 0.1 comes first
    np.testing.assert_allclose(res.cmc, [1, 1])
    with pytest.raises(ValueError, match="no query has a true match"):
        rank_metrics(d[:1], [1], [1, 2], [3], [2, 1], protocol="sysu_mm01")


def test_ties_keep_gallery_order():
    res = _one([0.5, 0.5, 0.5], [2, 1, 1], q_pid=1, protocol="sysu_mm01", max_rank=3)
    assert res.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert res.mINP == pytest.approx(2 / 3)
    np.testing.assert_allclose(res.cmc, [0, 1, 1])
    res = _one([0.5, 0.5, 0.5], [1, 2, 1], q_pid=1, protocol="sysu_mm01", max_rank=3)
    assert res.mAP == pytest.approx((1 + 2 / 3) / 2)
    np.testing.assert_allclose(res.cmc, [1, 1, 1])


def test_cmc_saturates_beyond_gallery_identities():
    res = _one([0.2, 0.1], [1, 2], q_pid=1, protocol="sysu_mm01", max_rank=20)
    assert res.cmc.shape == (20,)
    assert res.cmc[0] == 0 and np.all(res.cmc[1:] == 1)


def _reference(distmat, q_pids, g_pids, q_cams, g_cams, protocol, max_rank):
    """One query at a time, straight from the definitions."""
    hits, aps, inps = np.zeros(max_rank), [], []
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((q_cams[i] == 3) & (g_cams[order] == 2)) if protocol == "sysu_mm01" else np.ones(len(order), bool)
        ranked = g_pids[order][keep]
        match = ranked == q_pids[i]
        if not match.any():
            continue
        pos = np.flatnonzero(match) + 1
        aps.append(np.mean(np.arange(1, len(pos) + 1) / pos))
        inps.append(len(pos) / pos[-1])
        if protocol == "sysu_mm01":
            seen = list(dict.fromkeys(ranked.tolist()))
            first = seen.index(q_pids[i])
        else:
            first = pos[0] - 1
        hits[min(first, max_rank) :] += 1
    if not aps:
        return None
    return hits / len(aps), float(np.mean(aps)), float(np.mean(inps))


def _assert_same(res, expected):
    """``res`` (a RankMetrics) equals the loop reference's (cmc, mAP, mINP) to rounding."""
    np.testing.assert_allclose(res.cmc, expected[0], atol=1e-12)
    assert res.mAP == pytest.approx(expected[1], abs=1e-12)
    assert res.mINP == pytest.approx(expected[2], abs=1e-12)


@pytest.mark.parametrize("protocol", ["sysu_mm01", "regdb"])
def test_matches_loop_reference_with_chunks_ties_and_unsorted_gallery(protocol):
    rng = np.random.default_rng(7)
    for case in range(40):
        n_q, n_g = rng.integers(1, 25), rng.integers(2, 40)
        q_pids, g_pids = rng.integers(0, 6, n_q), rng.integers(0, 6, n_g)
        q_cams, g_cams = rng.choice([3, 6], n_q), rng.choice([1, 2, 4, 5], n_g)
        # Coarse integer distances make many exact ties; float32 checks a second dtype.
        d = rng.integers(0, 4, (n_q, n_g)).astype(float) if case % 2 else rng.random((n_q, n_g)).astype(np.float32)
        expected = _reference(d, q_pids, g_pids, q_cams, g_cams, protocol, 10)
        if expected is None:
            with pytest.raises(ValueError, match="no query has a true match"):
                rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol=protocol)
            continue
        res = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol=protocol, max_rank=10, chunk_elements=int(rng.integers(1, 120)))
        _assert_same(res, expected)


def test_bad_input_is_named():
    d = np.zeros((1, 2))
    with pytest.raises(ValueError, match="unknown protocol"):
        rank_metrics(d, [1], [1, 2], [1], [1, 1], protocol="market")
    with pytest.raises(ValueError, match="g_pids has 3 entries"):
        rank_metrics(d, [1], [1, 2, 3], [1], [1, 1], protocol="regdb")
    with pytest.raises(ValueError, match="NaN"):
        rank_metrics(np.array([[0.1, np.nan]]), [1], [1, 2], [1], [1, 1], protocol="regdb")
    d = np.array([[0.3, 0.1]])
    before = d.copy()
    rank_metrics(d, [1], [1, 1], [3], [2, 1], protocol="sysu_mm01")
    np.testing.assert_array_equal(d, before)  # the caller's matrix is not modified


def test_tie_between_non_match_and_match_follows_gallery_order():
    # Non-match (pid 2) and match (pid 1) share distance 0.2. Gallery order puts the match first in
    # the first case (rank 1), the non-match first in the second (rank 2).
    first = _one([0.2, 0.2, 0.9], [1, 2, 3], q_pid=1, protocol="sysu_mm01", max_rank=3)
    assert first.mAP == pytest.approx(1.0)
    np.testing.assert_allclose(first.cmc, [1, 1, 1])
    second = _one([0.2, 0.2, 0.9], [2, 1, 3], q_pid=1, protocol="sysu_mm01", max_rank=3)
    assert second.mAP == pytest.approx(1 / 2)
    assert second.mINP == pytest.approx(1 / 2)
    np.testing.assert_allclose(second.cmc, [0, 1, 1])


def test_dedup_with_many_images_per_identity_and_unsorted_gallery():
    # Ranked list (by distance): 3, 2, 3, 2, 3, 1, 2, 1 -> de-duplicated 3, 2, 1: first match at rank 3.
    # Gallery columns are deliberately not grouped by identity.
    d = [0.6, 0.1, 0.4, 0.8, 0.2, 0.3, 0.5, 0.7]
    pids = [1, 3, 2, 1, 2, 3, 3, 2]
    res = _one(d, pids, q_pid=1, protocol="sysu_mm01", max_rank=4)
    np.testing.assert_allclose(res.cmc, [0, 0, 1, 1])
    assert res.mAP == pytest.approx((1 / 6 + 2 / 8) / 2)
    assert res.mINP == pytest.approx(2 / 8)


def test_all_gallery_removed_for_camera3_query():
    # Every gallery image is from camera 2: the camera-3 query has no list at all; the camera-6 query counts.
    d = np.array([[0.1, 0.2], [0.2, 0.1]])
    res = rank_metrics(d, [1, 1], [1, 2], [3, 6], [2, 2], protocol="sysu_mm01", max_rank=2)
    assert res.n_valid_query == 1
    assert res.mAP == pytest.approx(1 / 2)
    np.testing.assert_allclose(res.cmc, [0, 1])
    # Entries the camera rule removes are not read: a NaN there changes nothing; one in a kept entry is refused.
    d = np.array([[0.1, 0.2, 0.3], [0.2, 0.1, 0.3]])
    g = dict(g_pids=[1, 2, 1], q_cams=[3, 6], g_cams=[2, 2, 1])
    clean = rank_metrics(d, [1, 1], protocol="sysu_mm01", **g)
    d[0, 0] = np.nan
    res = rank_metrics(d, [1, 1], protocol="sysu_mm01", **g)
    np.testing.assert_array_equal(res.cmc, clean.cmc)
    assert (res.mAP, res.mINP, res.n_valid_query) == (clean.mAP, clean.mINP, clean.n_valid_query)
    d[0, 2] = np.nan
    with pytest.raises(ValueError, match=r"rows \[0\] hold NaN"):
        rank_metrics(d, [1, 1], protocol="sysu_mm01", **g)


@pytest.mark.parametrize("protocol", ["sysu_mm01", "regdb"])
def test_matches_loop_reference_multi_shot_wide_gallery(protocol):
    # Wider than one 64-column word per identity group, groups straddling words, ties, negatives.
    rng = np.random.default_rng(3)
    for case in range(6):
        n_q, n_g = 30, int(rng.integers(100, 300))
        g_pids = rng.integers(0, 5, n_g)
        if case % 2:
            g_pids = np.sort(g_pids)
        q_pids = rng.integers(0, 6, n_q)
        q_cams, g_cams = rng.choice([3, 6], n_q), rng.choice([1, 2, 4, 5], n_g)
        d = rng.integers(-3, 6, (n_q, n_g)).astype(float) if case < 3 else rng.normal(size=(n_q, n_g)).astype(np.float32)
        expected = _reference(d, q_pids, g_pids, q_cams, g_cams, protocol, 8)
        res = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol=protocol, max_rank=8, chunk_elements=int(rng.integers(50, 2000)))
        _assert_same(res, expected)


def _ulp_up(v, dtype, n=1):
    v = dtype(v)
    for _ in range(n):
        v = np.nextafter(v, dtype(np.inf), dtype=dtype)
    return v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distances_one_ulp_apart_keep_their_order(dtype):
    # 1.0 and the next float share all bits but the lowest: the smaller one still comes first,
    # whichever of the two is the true match and whatever the gallery order.
    a, b = dtype(1.0), _ulp_up(1.0, dtype)
    match_smaller = rank_metrics(np.array([[b, a]], dtype=dtype), [1], [2, 1], [6], [1, 1], protocol="regdb", max_rank=2)
    assert match_smaller.mAP == pytest.approx(1.0)
    np.testing.assert_allclose(match_smaller.cmc, [1, 1])
    match_larger = rank_metrics(np.array([[a, b]], dtype=dtype), [1], [2, 1], [6], [1, 1], protocol="regdb", max_rank=2)
    assert match_larger.mAP == pytest.approx(1 / 2)
    assert match_larger.mINP == pytest.approx(1 / 2)
    np.testing.assert_allclose(match_larger.cmc, [0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_tie_in_first_match_group_counts_only_earlier_identities(dtype):
    # Exact order: pid 2 (0.5), then the tie at 1.0 in gallery order: pid 3, pid 1 (match), pid 4.
    # De-duplicated: 2, 3, 1 -> first match at identity rank 3; image rank 3 as well.
    d = np.array([[1.0, 1.0, 1.0, 0.5, 2.0]], dtype=dtype)
    res = rank_metrics(d, [1], [3, 1, 4, 2, 1], [6], [1] * 5, protocol="sysu_mm01", max_rank=4)
    np.testing.assert_allclose(res.cmc, [0, 0, 1, 1])
    assert res.mAP == pytest.approx((1 / 3 + 2 / 5) / 2)
    assert res.mINP == pytest.approx(2 / 5)


def test_negative_and_signed_zero_distances():
    # -0.0 and 0.0 are equal distances: gallery order decides.
    for dtype in (np.float32, np.float64):
        z = np.array([[-0.0, 0.0, 0.5]], dtype=dtype)
        nonmatch_first = rank_metrics(z, [1], [2, 1, 3], [6], [1, 1, 1], protocol="regdb", max_rank=3)
        assert nonmatch_first.mAP == pytest.approx(1 / 2)
        match_first = rank_metrics(z, [1], [1, 2, 3], [6], [1, 1, 1], protocol="regdb", max_rank=3)
        assert match_first.mAP == pytest.approx(1.0)
        # Negative distances (e.g. negated similarities) rank below positive ones, more negative first.
        neg = np.array([[-0.25, 0.3, -0.75, -0.5]], dtype=dtype)  # ranked: pid 3, 4, 1, 2
        res = rank_metrics(neg, [1], [1, 2, 3, 4], [6], [1] * 4, protocol="regdb", max_rank=4)
        np.testing.assert_allclose(res.cmc, [0, 0, 1, 1])
        assert res.mAP == pytest.approx(1 / 3)


def test_float16_distances_match_float64():
    rng = np.random.default_rng(5)
    d = rng.integers(0, 50, (12, 40)).astype(np.float16) / np.float16(8)
    q_pids, g_pids = rng.integers(0, 4, 12), rng.integers(0, 4, 40)
    q_cams, g_cams = rng.choice([3, 6], 12), rng.choice([1, 2, 4, 5], 40)
    half = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol="sysu_mm01", max_rank=5)
    full = rank_metrics(d.astype(np.float64), q_pids, g_pids, q_cams, g_cams, protocol="sysu_mm01", max_rank=5)
    np.testing.assert_array_equal(half.cmc, full.cmc)
    assert half.mAP == full.mAP and half.mINP == full.mINP


@pytest.mark.parametrize("protocol", ["sysu_mm01", "regdb"])
def test_matches_loop_reference_on_ulp_neighbours(protocol):
    # Distances a few units in the last place apart (both signs, signed zeros): many distances
    # share all bits but the lowest, and many are exactly equal.
    rng = np.random.default_rng(11)
    for case in range(24):
        dtype = (np.float32, np.float64)[case % 2]
        base = (0.0, 1.0, -0.75)[case % 3]
        values = np.array([_ulp_up(base, dtype, k) for k in range(6)] + [-_ulp_up(base, dtype, k) for k in range(3)], dtype=dtype)
        n_q, n_g = int(rng.integers(1, 20)), int(rng.integers(2, 90))
        d = values[rng.integers(0, len(values), (n_q, n_g))]
        q_pids, g_pids = rng.integers(0, 5, n_q), rng.integers(0, 5, n_g)
        q_cams, g_cams = rng.choice([3, 6], n_q), rng.choice([1, 2, 4, 5], n_g)
        expected = _reference(d, q_pids, g_pids, q_cams, g_cams, protocol, 6)
        if expected is None:
            continue
        res = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol=protocol, max_rank=6, chunk_elements=int(rng.integers(1, 500)))
        _assert_same(res, expected)


def test_long_double_distances_ranked_when_float64_holds_them():
    # Wider floats are ranked as float64 when that conversion is exact (ties included), and
    # refused, with the dtype named, when it is not.
    rng = np.random.default_rng(13)
    d = rng.integers(0, 5, (15, 60)).astype(np.longdouble) / 4
    q_pids, g_pids = rng.integers(0, 4, 15), rng.integers(0, 4, 60)
    q_cams, g_cams = rng.choice([3, 6], 15), rng.choice([1, 2, 4, 5], 60)
    for protocol in ("sysu_mm01", "regdb"):
        expected = _reference(d, q_pids, g_pids, q_cams, g_cams, protocol, 6)
        res = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol=protocol, max_rank=6, chunk_elements=100)
        _assert_same(res, expected)
    if np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant:  # a real extended type here
        d[0, 0] = np.longdouble(1) + np.finfo(np.longdouble).eps
        with pytest.raises(ValueError, match="float64 cannot represent exactly"):
            rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol="regdb")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_infinite_distances_are_ordered_like_the_loop_reference(dtype):
    # +inf (a masked pair) ranks last, -inf first, ties among them in gallery order; a true match
    # may itself sit at +-inf. Only NaN is refused.
    rng = np.random.default_rng(17)
    for case in range(30):
        n_q, n_g = int(rng.integers(1, 15)), int(rng.integers(2, 60))
        d = rng.integers(0, 4, (n_q, n_g)).astype(dtype) / 2
        d[rng.random((n_q, n_g)) < 0.2] = np.inf
        if case % 3 == 0:
            d[rng.random((n_q, n_g)) < 0.1] = -np.inf
        q_pids, g_pids = rng.integers(0, 4, n_q), rng.integers(0, 4, n_g)
        q_cams, g_cams = rng.choice([3, 6], n_q), rng.choice([1, 2, 4, 5], n_g)
        for protocol in ("sysu_mm01", "regdb"):
            expected = _reference(d, q_pids, g_pids, q_cams, g_cams, protocol, 5)
            if expected is None:
                continue
            res = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol=protocol, max_rank=5, chunk_elements=int(rng.integers(1, 300)))
            _assert_same(res, expected)
    d = np.array([[0.1, np.nan, np.inf]], dtype=dtype)
    with pytest.raises(ValueError, match=r"rows \[0\] hold NaN"):
        rank_metrics(d, [1], [1, 2, 3], [6], [1, 1, 1], protocol="regdb")


def test_query_order_does_not_change_the_metrics():
    # Camera-3 queries grouped (the official order: camera 3, then 6) are ranked in place;
    # interleaved with camera-6 queries they are gathered. Both must agree with the loop.
    rng = np.random.default_rng(19)
    n_q, n_g = 200, 150
    q_pids, g_pids = rng.integers(0, 12, n_q), rng.integers(0, 12, n_g)
    q_cams, g_cams = rng.choice([3, 6], n_q), rng.choice([1, 2, 4, 5], n_g)
    d = rng.random((n_q, n_g)).astype(np.float32)
    expected = _reference(d, q_pids, g_pids, q_cams, g_cams, "sysu_mm01", 10)
    grouped = np.argsort(q_cams, kind="stable")
    for order in (np.arange(n_q), grouped, grouped[::-1]):
        res = rank_metrics(d[order], q_pids[order], g_pids, q_cams[order], g_cams, protocol="sysu_mm01", max_rank=10, chunk_elements=1000)
        _assert_same(res, expected)


def test_result_does_not_depend_on_threads_or_blocks(monkeypatch):
    # Blocks of queries run on threads and are summed in block order: the same bits whatever
    # the thread count; other block sizes agree to rounding.
    import rgbir_reid.evaluation.metrics as metrics

    rng = np.random.default_rng(23)
    n_q, n_g = 300, 400
    q_pids, g_pids = rng.integers(0, 30, n_q), rng.integers(0, 30, n_g)
    q_cams, g_cams = np.sort(rng.choice([3, 6], n_q)), rng.choice([1, 2, 4, 5], n_g)
    d = rng.random((n_q, n_g)).astype(np.float32)
    results = []
    for threads in (1, 2, 4):
        monkeypatch.setattr(metrics, "_MAX_THREADS", threads)
        results.append(rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol="sysu_mm01", chunk_elements=4000))
    for res in results[1:]:
        np.testing.assert_array_equal(res.cmc, results[0].cmc)
        assert (res.mAP, res.mINP) == (results[0].mAP, results[0].mINP)
    whole = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol="sysu_mm01", chunk_elements=n_q * n_g)
    np.testing.assert_allclose(whole.cmc, results[0].cmc, atol=1e-12)
    assert whole.mAP == pytest.approx(results[0].mAP, abs=1e-12)


# --------------------------------------------------------------------------- chance level


def test_chance_hand_values():
    one = chance_metrics([1], [1], [6], [1], protocol="regdb")  # n = 1: the only entry is the match
    assert (one.rank1, one.mAP, one.mINP) == (1.0, 1.0, 1.0)
    every = chance_metrics([1], [1, 1, 1], [6], [1, 1, 1], protocol="regdb")  # m = n
    assert (every.rank1, every.mAP, every.mINP) == pytest.approx((1.0, 1.0, 1.0), abs=1e-15)
    half = chance_metrics([1], [1, 2], [6], [1, 1], protocol="regdb")  # m = 1, n = 2: AP 1 or 1/2
    assert (half.rank1, half.mAP, half.mINP) == pytest.approx((0.5, 0.75, 0.75), abs=1e-15)
    # m = 2, n = 3: matches at {1,2}, {1,3}, {2,3}: AP 1, 5/6, 7/12; INP 1, 2/3, 2/3.
    two = chance_metrics([1], [1, 2, 1], [6], [1, 1, 1], protocol="regdb")
    assert (two.rank1, two.mAP, two.mINP) == pytest.approx((2 / 3, 29 / 36, 7 / 9), abs=1e-15)


def test_chance_follows_the_camera_rule_and_skips_queries_without_match():
    g_pids, g_cams = [1, 1, 2, 3], [2, 1, 1, 4]
    # Camera-3 query of pid 1: the camera-2 entry leaves its list -> m = 1 of n = 3.
    # Query of pid 5: no match anywhere, skipped (counted in n_query only).
    res = chance_metrics([1, 5], g_pids, [3, 3], g_cams, protocol="sysu_mm01")
    assert (res.n_query, res.n_valid_query) == (2, 1)
    assert res.rank1 == pytest.approx(1 / 3)
    assert res.mAP == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    # Camera 6, or RegDB (no camera rule): m = 2 of n = 4.
    for q_cam, protocol in ((6, "sysu_mm01"), (3, "regdb")):
        assert chance_metrics([1], g_pids, [q_cam], g_cams, protocol=protocol).rank1 == pytest.approx(1 / 2)
    # A camera-3 query whose only match is in camera 2 has none: with no other query, an error as in rank_metrics.
    with pytest.raises(ValueError, match="no query has a true match"):
        chance_metrics([1], [1, 2], [3], [2, 1], protocol="sysu_mm01")
    with pytest.raises(ValueError, match="unknown protocol"):
        chance_metrics([1], [1], [3], [1], protocol="market")
    with pytest.raises(ValueError, match="g_cams has 1 entries"):
        chance_metrics([1], [1, 2], [3], [1], protocol="regdb")


# Galleries of various compositions: (q_pids, g_pids, q_cams, g_cams). Under SYSU-MM01 camera-3
# queries lose the camera-2 entries; pid 5's camera-3 query then has no match; pid 6 has none.
CHANCE_SPLITS = [
    ([1, 2, 3, 4, 5, 5, 6], [1, 1, 1, 2, 2, 3, 4, 4, 4, 4, 5], [3, 6, 3, 3, 3, 6, 6], [2, 1, 2, 1, 4, 5, 2, 1, 1, 1, 2]),
    ([1, 2], [1, 2, 2, 1, 2], [3, 6], [1, 2, 4, 5, 1]),
]


@pytest.mark.parametrize("protocol", ["sysu_mm01", "regdb"])
def test_chance_equals_the_mean_over_every_ranking(protocol):
    """Small galleries: rank_metrics averaged over all n! orders is the expectation itself."""
    from itertools import permutations

    q_pids, g_pids, q_cams, g_cams = ([1, 2, 3], [1, 2, 1, 3, 1, 2], [3, 6, 3], [2, 1, 1, 2, 4, 5])
    orders = np.array(list(permutations(range(len(g_pids)))), dtype=float)  # [720, 6] distances, no ties
    d = np.repeat(orders, len(q_pids), axis=0)
    reps = len(orders)
    res = rank_metrics(d, np.tile(q_pids, reps), g_pids, np.tile(q_cams, reps), g_cams, protocol=protocol, max_rank=1)
    chance = chance_metrics(q_pids, g_pids, q_cams, g_cams, protocol=protocol)
    assert chance.n_valid_query * reps == res.n_valid_query
    assert (chance.rank1, chance.mAP, chance.mINP) == pytest.approx((res.cmc[0], res.mAP, res.mINP), abs=1e-12)


@pytest.mark.parametrize("split", range(len(CHANCE_SPLITS)))
@pytest.mark.parametrize("protocol", ["sysu_mm01", "regdb"])
def test_chance_matches_monte_carlo_average_of_rank_metrics(protocol, split):
    """20k random distance matrices: their mean metrics agree with the formula to a few standard errors."""
    q_pids, g_pids, q_cams, g_cams = (np.asarray(x) for x in CHANCE_SPLITS[split])
    chance = chance_metrics(q_pids, g_pids, q_cams, g_cams, protocol=protocol)
    rng = np.random.default_rng(split)
    n_batches, per_batch = 40, 500
    batch_means = []
    for _ in range(n_batches):
        d = rng.random((per_batch * len(q_pids), len(g_pids)))
        res = rank_metrics(d, np.tile(q_pids, per_batch), g_pids, np.tile(q_cams, per_batch), g_cams, protocol=protocol, max_rank=1)
        assert res.n_valid_query == chance.n_valid_query * per_batch
        batch_means.append((res.cmc[0], res.mAP, res.mINP))
    batch_means = np.array(batch_means)
    mean = batch_means.mean(axis=0)
    stderr = batch_means.std(axis=0, ddof=1) / np.sqrt(n_batches)
    expected = np.array([chance.rank1, chance.mAP, chance.mINP])
    assert np.all(np.abs(mean - expected) <= 4 * stderr + 1e-12), (mean, expected, stderr)
