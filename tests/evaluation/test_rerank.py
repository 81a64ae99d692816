"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) against hand-computed values and the paper's
definition written out with Python sets."""

from __future__ import annotations

import numpy as np
import pytest

from rgbir_reid.evaluation.protocols import euclidean_distances
from rgbir_reid.evaluation.rerank import (
    RerankSettings,
    expanded_neighbours,
    jaccard_distance,
    k_reciprocal_neighbours,
    original_distance,
    query_expansion,
    reciprocal_weights,
    rerank_distances,
)

# Five points on a line: queries a = 0, d = 7; gallery b = 1, c = 3, e = 8. In the re-ranking's
# order (queries first): a, d, b, c, e.
X_QUERY = np.array([[0.0], [7.0]])
X_GALLERY = np.array([[1.0], [3.0], [8.0]])
A, D, B, C, E = range(5)


def blocks(query, gallery):
    return euclidean_distances(query, gallery), euclidean_distances(query, query), euclidean_distances(gallery, gallery)


@pytest.fixture(scope="module")
def line():
    return original_distance(*blocks(X_QUERY, X_GALLERY))


def test_original_distance_is_squared_and_row_normalised(line):
    # Row a: squared distances to a, d, b, c, e = 0, 49, 1, 9, 64, over their largest, 64.
    np.testing.assert_allclose(line[A], np.array([0, 49, 1, 9, 64]) / 64)
    # Row c (x = 3): to a 9, d 16, b 4, c 0, e 25; largest 25.
    np.testing.assert_allclose(line[C], np.array([9, 16, 4, 0, 25]) / 25)


def test_k_reciprocal_neighbours_by_hand(line):
    # k = 2: the 3 nearest of each point (itself first): a {a,b,c}, b {b,a,c}, c {c,b,a}, d {d,e,c},
    # e {e,d,c}. c is among d's and e's nearest but neither is among c's, so R(d) = {d, e}.
    recip = k_reciprocal_neighbours(line, 2)
    expected = {A: {A, B, C}, B: {A, B, C}, C: {A, B, C}, D: {D, E}, E: {D, E}}
    assert {p: set(np.flatnonzero(recip[p]).tolist()) for p in range(5)} == expected
    # k = 1: c's nearest is b, whose nearest is a: R(c, 1) = {c} alone.
    assert set(np.flatnonzero(k_reciprocal_neighbours(line, 1)[C]).tolist()) == {C}


def test_weights_by_hand(line):
    # R*(a, 2) = R(a, 2) = {a, b, c} (k1/2 = 1 adds nothing): exp(-d) over it, normalised.
    v = reciprocal_weights(line, 2)
    w_a = np.exp(-np.array([0.0, 1 / 64, 9 / 64]))
    np.testing.assert_allclose(v[A, [A, B, C]], w_a / w_a.sum())
    assert v[A, [D, E]].tolist() == [0.0, 0.0]
    w_d = np.exp(-np.array([0.0, 1 / 49]))  # row d: e at squared distance 1, largest 49 (to a)
    np.testing.assert_allclose(v[D, [D, E]], w_d / w_d.sum())
    np.testing.assert_allclose(v.sum(1), 1.0)


def test_query_expansion_by_hand(line):
    v = reciprocal_weights(line, 2)
    # k2 = 2: each row is the mean of its own and its nearest point's rows (a's nearest is b).
    qe = query_expansion(v, line, 2)
    np.testing.assert_allclose(qe[A], (v[A] + v[B]) / 2)
    np.testing.assert_allclose(qe[E], (v[E] + v[D]) / 2)
    np.testing.assert_array_equal(query_expansion(v, line, 1), v)


def test_jaccard_by_hand():
    a = np.array([[0.5, 0.5, 0.0, 0.0]])
    b = np.array([[0.25, 0.25, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.0, 0.0]])
    # a vs b0: min sums to 0.5, max to 1.5 -> 1 - 1/3; disjoint -> 1; equal -> 0.
    np.testing.assert_allclose(jaccard_distance(a, b), [[2 / 3, 1.0, 0.0]])
    # Row blocks smaller than the rows give the same values.
    np.testing.assert_allclose(jaccard_distance(b, b, block=1), jaccard_distance(b, b, block=256))


def hand_weights() -> dict[int, np.ndarray]:
    """V of eq. 7 for the five points with k1 = 2, from the squared distances by hand (order a, d, b, c, e)."""
    def row(entries, largest):
        w = np.zeros(5)
        for point, sq in entries.items():
            w[point] = np.exp(-sq / largest)
        return w / w.sum()

    return {
        A: row({A: 0, B: 1, C: 9}, 64),
        B: row({A: 1, B: 0, C: 4}, 49),
        C: row({A: 9, B: 4, C: 0}, 25),
        D: row({D: 0, E: 1}, 49),
        E: row({D: 1, E: 0}, 64),
    }


def test_final_distance_by_hand(line):
    lam = 0.3
    got = rerank_distances(*blocks(X_QUERY, X_GALLERY), RerankSettings(k1=2, k2=1, lam=lam))
    w = hand_weights()
    np.testing.assert_allclose(reciprocal_weights(line, 2), np.stack([w[p] for p in range(5)]), rtol=1e-12)

    def jac(p, g):  # rows sum to 1, so sum max = 2 - sum min
        shared = np.minimum(w[p], w[g]).sum()
        return 1 - shared / (2 - shared)

    # Query a shares {a, b, c} with b and c and nothing with e; query d shares {d, e} with e only.
    expected = np.array([
        [(1 - lam) * jac(A, B) + lam * 1 / 64, (1 - lam) * jac(A, C) + lam * 9 / 64, (1 - lam) * 1 + lam * 64 / 64],
        [(1 - lam) * 1 + lam * 36 / 49, (1 - lam) * 1 + lam * 16 / 49, (1 - lam) * jac(D, E) + lam * 1 / 49],
    ])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def by_definition(q_g, q_q, g_g, k1, k2, lam):
    """The paper's steps one point at a time with sets; returns (d* [Q, G], points the expansion added)."""
    d = original_distance(q_g, q_q, g_g)
    n, n_query = len(d), q_g.shape[0]
    order = np.argsort(d, axis=1, kind="stable")

    def recip(p, k):
        near = set(order[p, : k + 1].tolist())
        return {g for g in near if p in set(order[g, : k + 1].tolist())}

    half = int(np.around(k1 / 2))
    v = np.zeros((n, n))
    added = 0
    for p in range(n):
        r = recip(p, k1)
        star = set(r)
        for q in r:
            rq = recip(q, half)
            if len(r & rq) > 2 / 3 * len(rq):
                added += len(rq - star)
                star |= rq
        idx = sorted(star)
        v[p, idx] = np.exp(-d[p, idx]) / np.exp(-d[p, idx]).sum()
    if k2 > 1:
        v = np.stack([v[order[p, :k2]].mean(0) for p in range(n)])
    jac = np.array([[1 - np.minimum(v[i], v[j]).sum() / np.maximum(v[i], v[j]).sum() for j in range(n_query, n)]
                    for i in range(n_query)])
    return (1 - lam) * jac + lam * d[:n_query, n_query:], added


@pytest.mark.parametrize("k1, k2", [(20, 6), (6, 1), (10, 3)])
def test_matches_the_definition_on_random_features(k1, k2):
    rng = np.random.default_rng(k1)
    f = rng.normal(size=(50, 6))
    split = blocks(f[:15], f[15:])
    expected, added = by_definition(*split, k1, k2, 0.3)
    assert added > 0  # the expansion step is exercised
    np.testing.assert_allclose(rerank_distances(*split, RerankSettings(k1, k2, 0.3)), expected, atol=1e-6)


def test_expansion_adds_a_hard_positive():
    # k1 = 6 (k1/2 = 3): R*(p) gains q's reciprocal neighbours when 3 of their 4 are in R(p).
    rng = np.random.default_rng(1)
    f = rng.normal(size=(40, 4))
    d = original_distance(*blocks(f[:10], f[10:]))
    recip, star = k_reciprocal_neighbours(d, 6), expanded_neighbours(d, 6)
    assert (star >= recip).all() and (star & ~recip).any()


def test_lambda_one_keeps_the_euclidean_ranking():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(30, 5))
    split = blocks(f[:8], f[8:])
    got = rerank_distances(*split, RerankSettings(k1=5, k2=3, lam=1.0))
    np.testing.assert_array_equal(np.argsort(got, axis=1, kind="stable"), np.argsort(split[0], axis=1, kind="stable"))


def test_mirror_symmetric_problem_gives_mirrored_distances():
    # Points symmetric about 0 on a line: the query at -x sees the gallery as the one at +x sees
    # its mirror (gallery listed so that column j mirrors column G-1-j).
    query = np.array([[-2.0], [2.0]])
    gallery = np.array([[-5.0], [-2.5], [-0.7], [0.7], [2.5], [5.0]])
    got = rerank_distances(*blocks(query, gallery), RerankSettings(k1=3, k2=2, lam=0.3))
    np.testing.assert_allclose(got[0], got[1][::-1], rtol=1e-6)


def test_gallery_order_does_not_matter():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(30, 5))
    perm = rng.permutation(22)
    plain = rerank_distances(*blocks(f[:8], f[8:]), RerankSettings(k1=6, k2=3))
    permuted = rerank_distances(*blocks(f[:8], f[8:][perm]), RerankSettings(k1=6, k2=3))
    np.testing.assert_allclose(permuted, plain[:, perm], atol=1e-6)


@pytest.mark.parametrize("kwargs, key", [({"k1": 0}, "rerank_k1"), ({"k2": 1.5}, "rerank_k2"), ({"lam": 1.2}, "rerank_lambda")])
def test_bad_settings_name_the_config_key(kwargs, key):
    with pytest.raises(ValueError, match=f"evaluation.{key}"):
        RerankSettings(**kwargs)


def test_bad_shapes_and_values_are_refused():
    q_g, q_q, g_g = blocks(X_QUERY, X_GALLERY)
    with pytest.raises(ValueError, match="q_g \\[Q, G\\]"):
        rerank_distances(q_g, q_q, q_q)
    bad = q_g.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        rerank_distances(bad, q_q, g_g)


def test_duplicate_features_keep_each_point_in_its_own_set():
    # Three copies of one feature: every point must still be its own first neighbour, so every
    # weight row has mass and no distance is NaN.
    f = np.array([[0.0], [0.0], [0.0], [1.0], [1.0]])
    got = rerank_distances(*blocks(f[:2], f[2:]), RerankSettings(k1=1, k2=1))
    assert np.isfinite(got).all()
    d = original_distance(*blocks(f[:2], f[2:]))
    assert k_reciprocal_neighbours(d, 1).diagonal().all()
