"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), vectorised in NumPy / SciPy sparse.

Opt-in (``evaluation.rerank``); re-ranked results are always labelled ``+rerank`` in the report.

All queries and gallery images form one set of ``N = Q + G`` points, with the pairwise distance
``d``. The steps, with the paper's equations:

1. ``N(p, k)``: the ``k + 1`` nearest points of ``p`` in ``d``, ``p`` itself first (also where
   duplicate features put another point at distance 0; the official code's plain argsort may
   then leave ``p`` out of its own set); ``k + 1`` so that ``k`` neighbours other than ``p`` remain.
2. k-reciprocal neighbours (eq. 4): ``R(p, k) = {g in N(p, k) : p in N(g, k)}``.
3. Expansion (eq. 6): ``R*(p, k1) = R(p, k1) ∪ R(q, k1/2)`` for each ``q in R(p, k1)`` whose
   ``R(q, k1/2)`` shares more than 2/3 of its points with ``R(p, k1)``
   (``|R(p, k1) ∩ R(q, k1/2)| > 2/3 |R(q, k1/2)|``; strict, as in the official code; ``k1/2``
   rounded half to even as NumPy's ``around``, so 20 -> 10).
4. Weights (eq. 7): ``V[p, g] = exp(-d(p, g))`` for ``g in R*(p, k1)``, else 0; each row then
   divided by its sum (official code), so ``sum_g V[p, g] = 1``.
5. Local query expansion (eq. 11): ``V[p] <- mean of V[g] over g in N(p, k2 - 1)``, i.e. the
   ``k2`` nearest points of ``p`` counting ``p`` itself (``k2 = 1``: no expansion).
6. Jaccard distance (eq. 10): ``d_J(p, g) = 1 - sum_j min(V[p,j], V[g,j]) / sum_j max(V[p,j], V[g,j])``.
7. Final distance (eq. 12): ``d* = (1 - λ) d_J + λ d``.

The distance ``d`` is the one the official code uses: the squared Euclidean distance, each row
divided by its largest entry (a positive scale per row, so each query's ranking by ``d`` is its
ranking by Euclidean distance; λ = 1 returns that ranking). Defaults ``k1 = 20``, ``k2 = 6``,
``λ = 0.3`` (the paper's, for Market-1501).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

DEFAULT_K1 = 20
DEFAULT_K2 = 6
DEFAULT_LAMBDA = 0.3


@dataclass(frozen=True)
class RerankSettings:
    """k-reciprocal re-ranking parameters (config keys ``evaluation.rerank_k1``, ``rerank_k2``,
    ``rerank_lambda``).

    Attributes:
        k1: neighbourhood of the k-reciprocal sets, >= 1 (paper: 20).
        k2: points averaged in the local query expansion, >= 1 (paper: 6; 1 = none).
        lam: weight λ in [0, 1] of the original distance in the final one (paper: 0.3).
    """

    k1: int = DEFAULT_K1
    k2: int = DEFAULT_K2
    lam: float = DEFAULT_LAMBDA

    def __post_init__(self) -> None:
        if int(self.k1) != self.k1 or self.k1 < 1:
            raise ValueError(f"evaluation.rerank_k1 must be an integer >= 1, got {self.k1!r}")
        if int(self.k2) != self.k2 or self.k2 < 1:
            raise ValueError(f"evaluation.rerank_k2 must be an integer >= 1, got {self.k2!r}")
        if not 0.0 <= float(self.lam) <= 1.0:
            raise ValueError(f"evaluation.rerank_lambda must be in [0, 1], got {self.lam!r}")


def _check_square(dist: np.ndarray, name: str = "dist") -> np.ndarray:
    dist = np.asarray(dist, dtype=np.float64)
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"{name} must be a square [N, N] distance matrix, got shape {dist.shape}")
    if not np.isfinite(dist).all():
        raise ValueError(f"{name} holds NaN or infinite distances; re-ranking needs finite ones")
    return dist


def nearest(dist: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``min(k + 1, N)`` nearest points of each row, nearest first: int64 ``[N, k+1]``.

    Each point comes first in its own list, even where another point is at distance 0 from it
    (duplicate features). The ``k + 1`` are found by partition (linear time, not a full sort of
    the row) and then sorted by distance, ties by column; where several points tie at the
    ``(k+1)``-th distance, which of them make the cut is up to the partition (deterministic).
    """
    dist = _check_square(dist).copy()
    np.fill_diagonal(dist, -np.inf)
    n = dist.shape[0]
    m = min(k + 1, n)
    part = np.argpartition(dist, m - 1, axis=1)[:, :m] if m < n else np.tile(np.arange(n), (n, 1))
    order = np.lexsort((part, np.take_along_axis(dist, part, axis=1)), axis=-1)  # by distance, then column
    return np.take_along_axis(part, order, axis=1)


def _near(dist: np.ndarray, k: int, near: np.ndarray | None) -> np.ndarray:
    """:func:`nearest` ``(dist, k)``, or its first ``k + 1`` columns when a longer list is given."""
    if near is None:
        return nearest(dist, k)
    if near.shape[1] < min(k + 1, near.shape[0]):
        raise ValueError(f"near lists {near.shape[1]} points per row; {k + 1} are needed")
    return near[:, : k + 1]


def k_reciprocal_neighbours(dist: np.ndarray, k: int, near: np.ndarray | None = None) -> np.ndarray:
    """``R(p, k)`` of every point (eq. 4) as a boolean matrix ``[N, N]``: ``R[p, g]`` is True when
    ``g`` is among the ``k + 1`` nearest points of ``p`` and ``p`` among those of ``g``.

    Args:
        dist: ``[N, N]`` pairwise distances (zero diagonal), finite.
        k: neighbourhood size, >= 0.
        near: :func:`nearest` of ``dist`` for some k' >= k, to skip recomputing it.

    Raises:
        ValueError: a matrix that is not square or holds NaN / inf.
    """
    near = _near(dist, k, near)
    n = near.shape[0]
    member = np.zeros((n, n), dtype=bool)
    member[np.arange(n)[:, None], near] = True
    return member & member.T


def expanded_neighbours(dist: np.ndarray, k1: int, near: np.ndarray | None = None) -> np.ndarray:
    """``R*(p, k1)`` of every point (eq. 6) as a boolean matrix ``[N, N]``.

    ``R(p, k1)`` with, for each ``q in R(p, k1)``, all of ``R(q, round(k1 / 2))`` when that set
    shares strictly more than 2/3 of its points with ``R(p, k1)``. ``near``: as in
    :func:`k_reciprocal_neighbours`.

    Raises:
        ValueError: as :func:`k_reciprocal_neighbours`.
    """
    near = _near(dist, k1, near)
    recip = k_reciprocal_neighbours(dist, k1, near)
    half = k_reciprocal_neighbours(dist, int(np.around(k1 / 2.0)), near)
    n = recip.shape[0]
    half_size = half.sum(1)
    # |R(p, k1) ∩ R(q, k1/2)| for every pair, computed only where q in R(p, k1): the sets are
    # small (at most k1 + 1 points), so the sparse product costs O(N k1^2).
    recip_sp = sp.csr_matrix(recip, dtype=np.int32)
    overlap = (recip_sp @ sp.csr_matrix(half, dtype=np.int32).T).multiply(recip_sp).tocoo()
    take = overlap.data > (2.0 / 3.0) * half_size[overlap.col]
    chooser = sp.csr_matrix((np.ones(int(take.sum()), dtype=np.int32), (overlap.row[take], overlap.col[take])), shape=(n, n))
    added = (chooser @ sp.csr_matrix(half, dtype=np.int32)).toarray() > 0
    return recip | added


def reciprocal_weights(dist: np.ndarray, k1: int, near: np.ndarray | None = None) -> np.ndarray:
    """``V`` of eq. 7: ``exp(-dist[p, g])`` on ``R*(p, k1)``, 0 elsewhere, each row summing to 1.
    float64 ``[N, N]``. ``near``: as in :func:`k_reciprocal_neighbours`.

    Raises:
        ValueError: as :func:`k_reciprocal_neighbours`.
    """
    dist = _check_square(dist)
    weights = np.where(expanded_neighbours(dist, k1, near), np.exp(-dist), 0.0)
    return weights / weights.sum(1, keepdims=True)  # p is in R*(p, k1): every row has a weight


def query_expansion(weights: np.ndarray, dist: np.ndarray, k2: int, near: np.ndarray | None = None) -> np.ndarray:
    """Local query expansion (eq. 11): row ``p`` of ``weights`` becomes the mean of the rows of
    its ``k2`` nearest points in ``dist`` (``p`` itself included). float64 ``[N, N]``; ``k2 = 1``
    returns ``weights`` unchanged. ``near``: as in :func:`k_reciprocal_neighbours`."""
    if k2 <= 1:
        return np.asarray(weights, dtype=np.float64)
    near = _near(dist, k2 - 1, near)
    n, m = near.shape
    mean_of = sp.csr_matrix((np.full(n * m, 1.0 / m), (np.repeat(np.arange(n), m), near.ravel())), shape=(n, n))
    return np.asarray(mean_of @ weights)


def jaccard_distance(weights_a: np.ndarray, weights_b: np.ndarray, block: int = 256) -> np.ndarray:
    """Jaccard distance of eq. 10 between the rows of ``weights_a [A, N]`` and ``weights_b [B, N]``
    (non-negative): ``1 - sum_j min(a_j, b_j) / sum_j max(a_j, b_j)``. float64 ``[A, B]``.

    The weight rows are sparse (a few times ``k1 k2`` entries each), so the sum of minima is
    accumulated only over the columns both rows use, ``block`` rows of ``weights_a`` at a time.
    Two all-zero rows are at distance 0.

    Raises:
        ValueError: rows of different lengths, or negative weights.
    """
    a = np.asarray(weights_a, dtype=np.float64)
    b = np.asarray(weights_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"weights must be [A, N] and [B, N] with the same N, got {a.shape} and {b.shape}")
    if (a < 0).any() or (b < 0).any():
        raise ValueError("Jaccard distance needs non-negative weights")
    b_cols = sp.csc_matrix(b)  # column j: the rows of b that use j, and their weights
    shared = np.zeros((a.shape[0], b.shape[0]))
    for start in range(0, a.shape[0], block):
        a_blk = sp.coo_matrix(a[start:start + block])
        # Every (a row, b row) pair with a common column j, with min(a[., j], b[., j]).
        counts = np.diff(b_cols.indptr)[a_blk.col]
        a_row = np.repeat(a_blk.row, counts)
        a_val = np.repeat(a_blk.data, counts)
        firsts = np.repeat(b_cols.indptr[a_blk.col], counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        b_row = b_cols.indices[firsts + offsets]
        b_val = b_cols.data[firsts + offsets]
        rows = min(block, a.shape[0] - start)
        flat = np.bincount(a_row * b.shape[0] + b_row, weights=np.minimum(a_val, b_val), minlength=rows * b.shape[0])
        shared[start:start + rows] = flat.reshape(rows, b.shape[0])
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - shared  # sum max = sum a + sum b - sum min
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, 1.0 - shared / np.where(union > 0, union, 1.0), 0.0)


def original_distance(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray) -> np.ndarray:
    """The ``[Q+G, Q+G]`` distance ``d`` the re-ranking works on, from Euclidean blocks: queries
    first, squared, each row divided by its largest entry (the official code's normalisation).

    Raises:
        ValueError: blocks whose shapes do not fit ``[Q, G]``, ``[Q, Q]``, ``[G, G]``.
    """
    q_g, q_q, g_g = (np.asarray(x, dtype=np.float64) for x in (q_g, q_q, g_g))
    if q_g.ndim != 2 or q_q.shape != (q_g.shape[0],) * 2 or g_g.shape != (q_g.shape[1],) * 2:
        raise ValueError(f"expected q_g [Q, G], q_q [Q, Q], g_g [G, G]; got {q_g.shape}, {q_q.shape}, {g_g.shape}")
    full = np.block([[q_q, q_g], [q_g.T, g_g]]) ** 2
    top = full.max(1, keepdims=True)
    return full / np.where(top > 0, top, 1.0)


def rerank_distances(
    q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, settings: RerankSettings = RerankSettings()
) -> np.ndarray:
    """k-reciprocal re-ranked query-gallery distances ``d*`` (eq. 12): float32 ``[Q, G]``.

    Args:
        q_g: Euclidean distances query x gallery ``[Q, G]``.
        q_q: query x query ``[Q, Q]``; g_g: gallery x gallery ``[G, G]`` (zero diagonals).
        settings: k1, k2, λ.

    Returns:
        ``(1 - λ) d_J + λ d`` on the query rows and gallery columns, with ``d`` from
        :func:`original_distance` and ``d_J`` the Jaccard distance of the expanded weights.
        Memory: a few dense ``[Q+G, Q+G]`` float64 matrices.

    Raises:
        ValueError: shapes that do not fit, NaN / infinite distances, bad settings.
    """
    dist = _check_square(original_distance(q_g, q_q, g_g), "re-ranking distances")
    n_query = q_g.shape[0]
    near = nearest(dist, max(settings.k1, settings.k2 - 1))  # one neighbour search for every step
    weights = query_expansion(reciprocal_weights(dist, settings.k1, near), dist, settings.k2, near)
    jaccard = jaccard_distance(weights[:n_query], weights[n_query:])
    return ((1.0 - settings.lam) * jaccard + settings.lam * dist[:n_query, n_query:]).astype(np.float32)
