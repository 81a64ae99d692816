"""Rank metrics of a query/gallery distance matrix: CMC, mAP and mINP.

Two public functions: :func:`rank_metrics`, and :func:`chance_metrics`, the expected value of
its rank-1, mAP and mINP under a uniformly random ranking (the chance level of a gallery).

:func:`rank_metrics` processes queries in blocks of rows (about ``chunk_elements`` distances
each, so the working memory stays bounded whatever the gallery size); blocks run on up to
``_MAX_THREADS`` threads (the CPUs this process may use) and are summed in block order, so the
result does not depend on the thread count.

How the ranks are found without an argsort: each distance becomes an unsigned integer key ordered
as the distances (its bit pattern, mapped so that negative distances order too). Entries past a
query's last true match change none of its metrics, so their keys are clamped to one value just
above that match, and one value-only SIMD sort (NumPy) orders each row of keys. A compiled pass
(numba, :mod:`._rank_kernels`) then walks each sorted row against the query's true matches, also
sorted: the position of a match's key is its rank. Ties keep gallery order, as a stable sort
would: where a non-match shares a true match's exact distance, the row is looked at in gallery
order. CMC on SYSU-MM01 needs the number of other identities with an entry before the first true
match: 0 or 1 entries before it give that many; otherwise the row is scanned once.

Sources: CMC with the "first occurrence of each gallery identity" rule and the camera-3 /
camera-2 rule as in the official SYSU-MM01 evaluation code (Wu et al., "RGB-Infrared
Cross-Modality Person Re-Identification", ICCV 2017; ``get_cmc_multi_cam.m``,
``get_map_multi_cam.m``); mINP as defined by Ye et al., "Deep Learning for Person
Re-identification: A Survey and Outlook", TPAMI 2021, eq. 7.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from rgbir_reid.evaluation import _rank_kernels

SYSU_MM01 = "sysu_mm01"
REGDB = "regdb"
PROTOCOLS = (SYSU_MM01, REGDB)

# SYSU-MM01: the infrared camera 3 and the RGB camera 2 film the same indoor room, so a query of
# camera 3 is not matched against gallery images of camera 2 (the official code relabels camera 3
# as 2 and removes same-camera gallery entries).
SYSU_SAME_ROOM_QUERY_CAMERA = 3
SYSU_SAME_ROOM_GALLERY_CAMERA = 2

DEFAULT_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class RankMetrics:
    """Result of :func:`rank_metrics`.

    Attributes:
        cmc: float64 ``[max_rank]``; ``cmc[k]`` is the fraction (in [0, 1]) of valid queries whose
            first true match is within the first ``k + 1`` identities of the ranked list.
        mAP: mean average precision over valid queries, in [0, 1].
        mINP: mean inverse negative penalty over valid queries, in [0, 1].
        n_query: number of queries given.
        n_valid_query: queries with at least one true match after the protocol's removals; only
            these count in the metrics.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    n_query: int
    n_valid_query: int


def _as_int_vector(x: np.ndarray, name: str, length: int | None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name} has {arr.shape[0]} entries, expected {length} (from distmat)")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _camera_rule(q_cams: np.ndarray, g_cams: np.ndarray, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """``(removed [G], q_removal [Q])``: gallery entries the SYSU-MM01 rule takes out of a
    camera-3 query's list, and the queries that lose them (all False for RegDB)."""
    sysu = protocol == SYSU_MM01
    removed = (g_cams == SYSU_SAME_ROOM_GALLERY_CAMERA) if sysu else np.zeros(len(g_cams), dtype=bool)
    q_removal = (q_cams == SYSU_SAME_ROOM_QUERY_CAMERA) & bool(removed.any())
    return removed, q_removal


def rank_metrics(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    *,
    protocol: str,
    max_rank: int = 20,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> RankMetrics:
    """CMC, mAP and mINP of a query-by-gallery distance matrix.

    Blocks of queries run on up to 4 threads (no more than the CPUs this process may use); the
    result is the same, to the bit, whatever the thread count.

    Args:
        distmat: ``[Q, G]`` distances, smaller = more similar: float16/32/64 (or a wider float
            whose values float64 holds exactly); results are exact for the values given. +inf
            and -inf are ordered like any other value (+inf: never similar, e.g. a masked pair);
            NaN is an error. Entries the camera rule removes are not read.
        q_pids, g_pids: integer identities ``[Q]`` / ``[G]``.
        q_cams, g_cams: integer cameras ``[Q]`` / ``[G]``.
        protocol: ``"sysu_mm01"``: gallery entries of camera 2 are removed from the list of a
            query of camera 3; CMC is taken on the list reduced to the first occurrence of each
            gallery identity (the dataset's "maximum similarity per person" rule, which matters in
            multi-shot); mAP and mINP on the full list after the camera rule. ``"regdb"``: no
            removal; plain CMC, i.e. the position of the first true match in the list of images.
        max_rank: length of the returned CMC.
        chunk_elements: about how many distances are processed at a time (memory bound).

    Returns:
        :class:`RankMetrics`. AP = mean of the precision at each true match; mINP = number of true
        matches / rank of the last one. Ties keep gallery order (as a stable sort would).

    Raises:
        ValueError: unknown protocol, shapes that disagree, NaN distances, an unsupported float
            type, ``max_rank < 1``, or no query with a true match in the gallery.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    distmat = np.asarray(distmat)
    if distmat.ndim != 2 or not np.issubdtype(distmat.dtype, np.floating):
        raise ValueError(f"distmat must be a 2-D float array [Q, G], got {distmat.dtype} {distmat.shape}")
    n_q, n_g = distmat.shape
    q_pids = _as_int_vector(q_pids, "q_pids", n_q)
    q_cams = _as_int_vector(q_cams, "q_cams", n_q)
    g_pids = _as_int_vector(g_pids, "g_pids", n_g)
    g_cams = _as_int_vector(g_cams, "g_cams", n_g)
    if n_q == 0 or n_g == 0:
        raise ValueError(f"empty query or gallery: distmat shape {distmat.shape}")

    distmat = _key_float(distmat)
    dedup = protocol == SYSU_MM01
    removed, q_removal = _camera_rule(q_cams, g_cams, protocol)
    # Removing gallery entries from a query's list is the same as ranking it against the
    # sub-gallery of kept columns (kept in gallery order, so ties still follow gallery order):
    # queries are split into those that see the whole gallery and those that see the
    # sub-gallery. The entries a query loses are not read at all.
    all_cols = np.zeros(0, dtype=np.int64)
    tasks = [(np.flatnonzero(~q_removal), all_cols, _GalleryLayout.build(g_pids))]
    if q_removal.any():
        kept = np.flatnonzero(~removed)
        if len(kept):  # else those queries have no list, hence no true match: they count nowhere
            tasks.append((np.flatnonzero(q_removal), kept, _GalleryLayout.build(g_pids[kept])))
    step = max(1, min(int(chunk_elements), _BLOCK_ELEMENTS) // n_g)
    jobs = []  # (rows, kept columns or [] for all, layout, identity groups of the rows)
    for rows, cols, layout in tasks:
        q_group = layout.group_of(q_pids[rows])
        for lo in range(0, len(rows), step):
            jobs.append((rows[lo : lo + step], cols, layout, q_group[lo : lo + step]))
    bits = distmat.view(_KEY_TYPES[distmat.dtype])
    consts = _key_constants(distmat.dtype)

    def run(job):
        with _borrow_scratch() as scratch:
            return _block_sums(bits, consts, dedup, max_rank, job, scratch)

    n_threads = min(_MAX_THREADS, _available_cpus(), len(jobs))
    if n_threads > 1:
        # The sort and both compiled kernels release the GIL. Parts are summed in block order
        # below, so the result does not depend on the threads.
        with ThreadPoolExecutor(n_threads) as pool:
            parts = list(pool.map(run, jobs))
    else:
        parts = [run(job) for job in jobs]

    hist = np.zeros(max_rank + 1, dtype=np.int64)
    ap_sum = inp_sum = 0.0
    n_valid = 0
    for part_hist, part_ap, part_inp, part_valid in parts:
        hist += part_hist
        ap_sum += part_ap
        inp_sum += part_inp
        n_valid += part_valid
    if n_valid == 0:
        raise ValueError(
            f"no query has a true match in the gallery (protocol {protocol!r}, {n_q} queries, "
            f"{n_g} gallery entries); check that query and gallery identities overlap"
        )
    cmc = np.cumsum(hist[:max_rank]) / n_valid
    return RankMetrics(cmc=cmc, mAP=ap_sum / n_valid, mINP=inp_sum / n_valid, n_query=n_q, n_valid_query=n_valid)



@dataclass(frozen=True)
class ChanceMetrics:
    """Result of :func:`chance_metrics`: expected metrics of a uniformly random ranking.

    Attributes:
        rank1: expected CMC at rank 1, mean over valid queries, in [0, 1].
        mAP: expected average precision, mean over valid queries, in [0, 1].
        mINP: expected inverse negative penalty, mean over valid queries, in [0, 1].
        n_query: number of queries given.
        n_valid_query: queries with at least one true match after the protocol's removals (the
            queries :func:`rank_metrics` counts).
    """

    rank1: float
    mAP: float
    mINP: float
    n_query: int
    n_valid_query: int


def chance_metrics(
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    *,
    protocol: str,
) -> ChanceMetrics:
    """Expected rank-1, mAP and mINP of a uniformly random ranking of each query's gallery.

    What :func:`rank_metrics` returns on average over random distances (every order of a
    query's list equally likely), computed exactly from the gallery composition: the chance
    level of a query/gallery split. Only the counts matter: a query with ``m`` true matches among
    the ``n`` entries of its list (after the SYSU-MM01 camera rule) has

    - rank-1 = ``m / n``. On SYSU-MM01 CMC counts each gallery identity once (its best-ranked
      entry), but the first identity of the reduced list is that of the first entry, so rank-1 is
      still the chance that the first entry is a true match;
    - AP = ``(H_n + (m - 1) / (n - 1) * (n - H_n)) / n`` (1 when ``n = 1``), ``H_n`` the n-th
      harmonic number. Derivation: AP = (1/m) sum_k rel_k (1/k) sum_{j<=k} rel_j, with
      E[rel_k] = m/n and E[rel_j rel_k] = m(m-1)/(n(n-1)) for j != k, gives
      (1/n) sum_k (1/k) (1 + (k-1)(m-1)/(n-1)); m = n gives 1, m = 1 gives H_n / n;
    - INP = ``E[m / L]`` with ``L`` the rank of the last true match,
      P(L = l) = C(l-1, m-1) / C(n, m) for l = m..n, summed term by term (P(L = n) = m/n,
      P(L = l-1) = P(L = l) (l-m) / (l-1)).

    Queries without a true match are skipped, as :func:`rank_metrics` skips them; the means are
    over the remaining queries.

    Args:
        q_pids, g_pids: integer identities ``[Q]`` / ``[G]``.
        q_cams, g_cams: integer cameras ``[Q]`` / ``[G]``.
        protocol: ``"sysu_mm01"`` (camera-2 entries leave the list of a camera-3 query) or
            ``"regdb"`` (no removal), as in :func:`rank_metrics`.

    Returns:
        :class:`ChanceMetrics` (fractions in [0, 1]).

    Raises:
        ValueError: unknown protocol, lengths that disagree, or no query with a true match.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    q_pids = _as_int_vector(q_pids, "q_pids", None)
    q_cams = _as_int_vector(q_cams, "q_cams", len(q_pids))
    g_pids = _as_int_vector(g_pids, "g_pids", None)
    g_cams = _as_int_vector(g_cams, "g_cams", len(g_pids))
    removed, q_removal = _camera_rule(q_cams, g_cams, protocol)
    m = np.zeros(len(q_pids), dtype=np.int64)
    n = np.zeros(len(q_pids), dtype=np.int64)
    for sees_removed, kept in ((False, np.ones(len(g_pids), dtype=bool)), (True, ~removed)):
        rows = q_removal if sees_removed else ~q_removal
        uniq, counts = np.unique(g_pids[kept], return_counts=True)
        pos = np.minimum(np.searchsorted(uniq, q_pids[rows]), max(len(uniq) - 1, 0))
        m[rows] = np.where(uniq[pos] == q_pids[rows], counts[pos], 0) if len(uniq) else 0
        n[rows] = int(kept.sum())
    valid = m > 0
    if not valid.any():
        raise ValueError(
            f"no query has a true match in the gallery (protocol {protocol!r}, {len(q_pids)} queries, "
            f"{len(g_pids)} gallery entries); check that query and gallery identities overlap"
        )
    m, n = m[valid], n[valid]
    harmonic = np.r_[0.0, np.cumsum(1.0 / np.arange(1, n.max() + 1))]  # harmonic[k] = H_k
    h_n = harmonic[n]
    # (m - 1) / (n - 1), taken as 0 when n = 1 (then m = 1 too).
    pair = np.divide(m - 1, n - 1, out=np.zeros(len(n)), where=n > 1)
    ap = (h_n + pair * (n - h_n)) / n
    inp = np.empty(len(n))
    for (mi, ni), idx in _group_rows(np.stack([m, n], axis=1)).items():
        inp[idx] = _expected_inp(mi, ni)
    return ChanceMetrics(
        rank1=float(np.mean(m / n)), mAP=float(np.mean(ap)), mINP=float(np.mean(inp)), n_query=len(q_pids), n_valid_query=int(valid.sum())
    )


def _group_rows(keys: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Row indices of each distinct row of ``keys`` ``[N, 2]``."""
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return {(int(a), int(b)): np.flatnonzero(inverse == i) for i, (a, b) in enumerate(uniq)}


def _expected_inp(m: int, n: int) -> float:
    """E[m / L] for the rank L of the last of m true matches placed at random among n entries."""
    last = np.arange(n, m - 1, -1, dtype=np.float64)  # l = n, n-1, ..., m
    # P(L = n) = m/n; P(L = l-1) = P(L = l) (l-m)/(l-1). Terms far below the largest underflow
    # to 0, which changes nothing at float64 precision.
    prob = (m / n) * np.cumprod(np.r_[1.0, (last[:-1] - m) / (last[:-1] - 1)])
    return float(np.sum(prob * m / last))


# Threads over blocks of queries, at most (and no more than the CPUs this process may use).
_MAX_THREADS = 4


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Distances per block of queries (about 4 MB of float32 keys).
_BLOCK_ELEMENTS = 1 << 20

# Unsigned key type of each float type the kernels take.
_KEY_TYPES = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _key_float(distmat: np.ndarray) -> np.ndarray:
    """``distmat`` as C-contiguous float32 or float64, converting only where that is exact.

    Raises:
        ValueError: a float type wider than float64 holding values float64 cannot represent.
    """
    if distmat.dtype == np.float16:
        distmat = distmat.astype(np.float32)  # exact and order-preserving
    elif distmat.dtype not in _KEY_TYPES:
        wide = distmat
        distmat = wide.astype(np.float64)
        if not np.array_equal(distmat.astype(wide.dtype), wide, equal_nan=True):
            raise ValueError(f"distmat of dtype {wide.dtype} holds values float64 cannot represent exactly; pass float64 or float32")
    return np.ascontiguousarray(distmat)


def _key_constants(dtype: np.dtype) -> tuple:
    """(1, sign bit, all ones, all but the sign bit, bits of +inf) in the key type of ``dtype``."""
    key_type = _KEY_TYPES[np.dtype(dtype)]
    width = 8 * np.dtype(key_type).itemsize
    sign = key_type(1) << key_type(width - 1)
    ones = ~key_type(0)
    return key_type(1), sign, ones, ones ^ sign, np.array(np.inf, dtype=dtype).view(key_type)


@dataclass(frozen=True)
class _GalleryLayout:
    """Gallery columns grouped by identity, shared by all query blocks (read-only).

    Group ``i`` (identity ``uniq[i]``) is ``g_order[group_start[i] : group_start[i] +
    group_size[i]]`` (gallery order within the group) and ``col_group`` maps a column to its group.
    """

    uniq: np.ndarray
    col_group: np.ndarray
    group_start: np.ndarray
    group_size: np.ndarray
    g_order: np.ndarray

    @classmethod
    def build(cls, g_pids: np.ndarray) -> _GalleryLayout:
        n_g = len(g_pids)
        g_order = np.argsort(g_pids, kind="stable")
        gp = g_pids[g_order]
        starts = np.flatnonzero(np.r_[True, gp[1:] != gp[:-1]])
        sizes = np.diff(np.r_[starts, n_g])
        col_group = np.empty(n_g, dtype=np.int64)
        col_group[g_order] = np.repeat(np.arange(len(starts)), sizes)
        return cls(uniq=gp[starts], col_group=col_group, group_start=starts.astype(np.int64), group_size=sizes.astype(np.int64), g_order=g_order.astype(np.int64))

    def group_of(self, q_pids: np.ndarray) -> np.ndarray:
        """Identity group of each query identity, or -1 when this gallery lacks it."""
        pos = np.minimum(np.searchsorted(self.uniq, q_pids), len(self.uniq) - 1)
        return np.where(self.uniq[pos] == q_pids, pos, -1).astype(np.int64)


def _block_sums(
    bits: np.ndarray,
    consts: tuple,
    dedup: bool,
    max_rank: int,
    job: tuple[np.ndarray, np.ndarray, _GalleryLayout, np.ndarray],
    scratch: _Scratch,
) -> tuple[np.ndarray, float, float, int]:
    """CMC histogram, AP sum, INP sum and valid-query count of one block of queries.

    ``bits``: the unsigned view of the distance matrix. ``job = (rows, cols, layout, q_group)``:
    the block's rows of ``bits``, the gallery columns its queries keep (empty: all), the layout
    of those columns and the queries' identity groups in it (-1: none).

    Raises:
        ValueError: NaN distances in the block's kept columns (names the rows).
    """
    rows, cols, lay, grp = job
    one, sign, ones, abs_mask, inf_bits = consts
    c = len(rows)
    n = len(cols) if len(cols) else bits.shape[1]
    m_max = max(1, int(lay.group_size.max()))
    key_type = bits.dtype
    keys = scratch.array("keys", (c, n), key_type)
    t_key = scratch.array("t_key", (c, m_max), key_type)
    t_col = scratch.array("t_col", (c, m_max), np.int64)
    n_match = np.empty(c, dtype=np.int64)
    ordered = np.empty(c, dtype=np.bool_)
    nan_row = np.empty(c, dtype=np.bool_)
    _rank_kernels.prepare_keys(
        bits, rows, cols, grp, lay.g_order, lay.group_start, lay.group_size, one, sign, ones, abs_mask, inf_bits, keys, t_key, t_col, n_match, ordered, nan_row
    )
    if nan_row.any():
        bad = rows[nan_row]
        raise ValueError(f"distmat rows {bad[:5].tolist()} hold NaN distances (a NaN has no rank)")
    keys.sort(axis=1)
    ap = np.zeros(c)
    inp = np.zeros(c)
    first = np.empty(c, dtype=np.int64)
    _rank_kernels.rank_rows(keys, bits, rows, cols, t_key, t_col, n_match, ordered, lay.col_group, len(lay.uniq), dedup, sign, ones, ap, inp, first)
    ok = first >= 0
    hist = np.bincount(np.minimum(first[ok], max_rank), minlength=max_rank + 1)
    return hist, float(ap[ok].sum()), float(inp[ok].sum()), int(ok.sum())


class _Scratch:
    """One thread's work arrays, reused from block to block and from call to call: a fresh
    array costs page faults on every use, which on large galleries cost more than the work done
    in it. Holds about 4 bytes per float32 distance of the largest block seen (a few MB)."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, int], dtype) -> np.ndarray:
        """A C-contiguous ``shape`` array of ``dtype`` (contents undefined)."""
        need = int(np.prod(shape)) * np.dtype(dtype).itemsize
        buf = self._buffers.get(name)
        if buf is None or buf.size < need:
            buf = np.empty(need, dtype=np.uint8)
            self._buffers[name] = buf
        return buf[:need].view(dtype).reshape(shape)


_SCRATCH_POOL: list[_Scratch] = []
_SCRATCH_LOCK = threading.Lock()


@contextmanager
def _borrow_scratch():
    """Work arrays for one block; at most ``_MAX_THREADS`` sets are kept between calls."""
    with _SCRATCH_LOCK:
        scratch = _SCRATCH_POOL.pop() if _SCRATCH_POOL else _Scratch()
    try:
        yield scratch
    finally:
        with _SCRATCH_LOCK:
            if len(_SCRATCH_POOL) < _MAX_THREADS:
                _SCRATCH_POOL.append(scratch)
