"""Rank metrics of a query/gallery distance matrix: CMC, mAP and mINP.

One public function, :func:`rank_metrics`, vectorised over queries and chunked so that its
working memory stays bounded (about ``chunk_elements`` distances at a time, and never more than a
cache-sized block), whatever the gallery size. Blocks of queries run on up to ``_MAX_THREADS``
threads (the CPUs this process may use); they are summed in block order, so the result does not
depend on the thread count.

How the ranks are found without a per-query argsort: each distance becomes an unsigned integer
key ordered as the distances (a non-negative float's bit pattern; negative floats are mapped
too), whose lowest bit is replaced by a true-match flag. One value-only (SIMD) sort of each row of
keys then puts the flags at the positions of the true matches in the ranked list: their ranks
are read off with one scan, no binary search. Dropping the lowest bit merges two distances one
unit in the last place apart, and an exact tie sorts the non-match first whatever the gallery
order; both only matter when a non-match and a true match share a key, which the sorted row shows
(a flagged key right after the same key unflagged). Those few groups are put in the exact order
(distance, then gallery index, as a stable sort would) separately, so results are exact.

CMC needs the position of the first true match in the list reduced to the first occurrence of
each gallery identity, i.e. the number of other identities having an entry before the first true
match. Queries with 0 or 1 entries before it have that many; for the others the entries below the
first match's distance are found by one comparison and their identities counted.

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
        distmat: ``[Q, G]`` distances, smaller = more similar (any float dtype; it is not
            converted, so results are exact for the values given). +inf and -inf are ordered
            like any other value (+inf: never similar, e.g. a masked pair); NaN is an error.
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
        ValueError: unknown protocol, shapes that disagree, NaN distances, ``max_rank < 1``,
            or no query with a true match in the gallery.
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

    dedup = protocol == SYSU_MM01
    removed = (g_cams == SYSU_SAME_ROOM_GALLERY_CAMERA) if dedup else np.zeros(n_g, dtype=bool)
    q_removal = (q_cams == SYSU_SAME_ROOM_QUERY_CAMERA) & bool(removed.any()) & dedup
    # Removing gallery entries from a query's list is the same as ranking it against the
    # sub-gallery of kept columns (kept in gallery order, so ties still follow gallery order):
    # queries are split into those that see the whole gallery and those that see the
    # sub-gallery. The entries a query loses are not read at all.
    tasks = [(np.flatnonzero(~q_removal), None, _GalleryLayout.build(g_pids, dedup))]
    if q_removal.any():
        kept = np.flatnonzero(~removed)
        if len(kept):  # else those queries have no list, hence no true match: they count nowhere
            tasks.append((np.flatnonzero(q_removal), kept, _GalleryLayout.build(g_pids[kept], dedup)))
    step = max(1, min(int(chunk_elements), _BLOCK_ELEMENTS) // n_g)
    jobs = []  # (rows: a slice when contiguous, as in the official order (camera 3, then 6); cols; layout; groups)
    for rows, cols, layout in tasks:
        q_group = layout.group_of(q_pids[rows])
        for lo in range(0, len(rows), step):
            idx = rows[lo : lo + step]
            block = slice(idx[0], idx[-1] + 1) if idx[-1] - idx[0] == len(idx) - 1 else idx
            jobs.append((block, cols, layout, q_group[lo : lo + step]))
    keyed = distmat.dtype == np.float16 or distmat.dtype in _KEY_TYPES
    block_sums = _block_sums_keyed if keyed else _block_sums_exact

    n_threads = min(_MAX_THREADS, _available_cpus(), len(jobs))

    def run_borrowing(job):
        with _borrow_scratch() as scratch:
            return block_sums(distmat, max_rank, job, scratch)

    if n_threads > 1:
        # Blocks are independent and their big NumPy steps (the sort above all) release the GIL.
        # Parts are summed in block order below, so the result does not depend on the threads.
        with ThreadPoolExecutor(n_threads) as pool:
            parts = list(pool.map(run_borrowing, jobs))
    else:
        parts = [run_borrowing(job) for job in jobs]

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


# Threads over blocks of queries, at most (and no more than the CPUs this process may use).
_MAX_THREADS = 4


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Distances per block of queries: about 1 MB of float32, so a block and its sorted copy stay in cache.
_BLOCK_ELEMENTS = 1 << 20
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def _low_bits(n: np.ndarray) -> np.ndarray:
    """uint64 words with the ``n`` lowest bits set, ``n`` in [0, 64]."""
    n = n.astype(np.uint64)
    return np.where(n >= 64, _ALL_ONES, (np.uint64(1) << np.minimum(n, np.uint64(63))) - np.uint64(1))


@dataclass(frozen=True)
class _GalleryLayout:
    """Gallery columns grouped by identity, shared by all query blocks (read-only).

    ``g_order`` lists the gallery columns by identity group (gallery order within a group); group
    ``i`` (identity ``uniq[i]``) is ``g_order[group_start[i] : group_start[i] + group_size[i]]``
    and ``col_group`` maps a column to its group. The rest serves the exact path
    (:func:`_block_sums_exact`, for float types without an integer key): ``member[i]`` holds the
    columns of group ``i`` (ascending, padded with the group's first column; ``is_member`` marks
    the real ones); for CMC, columns are taken in identity order and packed 64 per word: group
    ``i`` covers bits ``word_idx[i, k]`` under ``seg_mask[i, k]``.
    """

    uniq: np.ndarray
    col_group: np.ndarray
    group_start: np.ndarray
    group_size: np.ndarray
    member: np.ndarray
    is_member: np.ndarray
    g_order: np.ndarray
    permuted: bool
    dedup: bool
    word_idx: np.ndarray
    seg_mask: np.ndarray

    @classmethod
    def build(cls, g_pids: np.ndarray, dedup: bool) -> _GalleryLayout:
        n_g = len(g_pids)
        # Stable: within a group, columns keep gallery order, so a stable sort of true matches by
        # distance orders them as a stable sort of the whole row would.
        g_order = np.argsort(g_pids, kind="stable")
        gp = g_pids[g_order]
        starts = np.flatnonzero(np.r_[True, gp[1:] != gp[:-1]])
        sizes = np.diff(np.r_[starts, n_g])
        group_of_col = np.repeat(np.arange(len(starts)), sizes)
        slot = np.arange(n_g) - np.repeat(starts, sizes)
        member = np.repeat(g_order[starts][:, None], int(sizes.max()), axis=1)
        member[group_of_col, slot] = g_order
        is_member = np.zeros(member.shape, dtype=bool)
        is_member[group_of_col, slot] = True

        n_words = -(-n_g // 64)
        ends = starts + sizes
        first_word = starts // 64
        k_max = int(((ends - 1) // 64 - first_word).max()) + 1
        word_pos = first_word[:, None] + np.arange(k_max)
        lo_bit = np.clip(starts[:, None] - 64 * word_pos, 0, 64)
        hi_bit = np.clip(ends[:, None] - 64 * word_pos, 0, 64)
        col_group = np.empty(n_g, dtype=np.intp)
        col_group[g_order] = group_of_col
        return cls(
            uniq=gp[starts],
            col_group=col_group,
            group_start=starts,
            group_size=sizes,
            member=member,
            is_member=is_member,
            g_order=g_order,
            permuted=not np.array_equal(g_order, np.arange(n_g)),
            dedup=dedup,
            word_idx=np.minimum(word_pos, n_words - 1),
            seg_mask=_low_bits(hi_bit) & ~_low_bits(lo_bit),  # zero for padding words past a group
        )

    def group_of(self, q_pids: np.ndarray) -> np.ndarray:
        """Identity group of each query identity, or -1 when this gallery lacks it."""
        pos = np.minimum(np.searchsorted(self.uniq, q_pids), len(self.uniq) - 1)
        return np.where(self.uniq[pos] == q_pids, pos, -1)


def _pack_words(bits: np.ndarray) -> np.ndarray:
    """Bool ``[c, 64 * W]`` -> uint64 ``[c, W]``; bit ``j`` of a row is bit ``j % 64`` of word ``j // 64``."""
    return np.packbits(bits, axis=1, bitorder="little").view("<u8")


_NO_SUMS = 0.0, 0.0, 0


def _block_sums_exact(
    distmat: np.ndarray,
    max_rank: int,
    job: tuple[slice | np.ndarray, np.ndarray | None, _GalleryLayout, np.ndarray],
    scratch: _Scratch,
) -> tuple[np.ndarray, float, float, int]:
    """CMC histogram, AP sum, INP sum and valid-query count of one block of queries.

    ``job = (rows, cols, layout, q_group)``: the block's rows of ``distmat`` (a slice, or row
    indices), the gallery columns its queries keep (None: all), the layout of those columns and
    the queries' identity groups in it (-1: none). ``scratch``: the calling thread's work arrays.
    This path serves float types without an integer key (long double).

    Raises:
        ValueError: NaN distances in the block's kept columns.
    """
    rows, cols, lay, grp = job
    x = _gather_block(distmat, rows, cols, scratch)
    hist = np.zeros(max_rank + 1, dtype=np.int64)
    c, n_g = x.shape
    srt = np.sort(x, axis=1)
    if np.isnan(srt[:, -1]).any():  # NaN sorts last
        raise _nan_rows(distmat, rows)

    has_grp = grp >= 0
    mcol = lay.member[np.maximum(grp, 0)]  # [c, m_max] true-match columns
    is_match = lay.is_member[np.maximum(grp, 0)] & has_grp[:, None]
    s = np.take_along_axis(x, mcol, axis=1)
    s[~is_match] = np.inf
    n_match = is_match.sum(axis=1)
    ok = n_match > 0
    if not ok.any():
        return (hist, *_NO_SUMS)
    morder = np.argsort(s, axis=1, kind="stable")
    s = np.take_along_axis(s, morder, axis=1)
    mcol = np.take_along_axis(mcol, morder, axis=1)
    is_match = np.take_along_axis(is_match, morder, axis=1)

    # ---- mAP / mINP: rank of each true match = 1 + entries before it.
    below = np.empty(s.shape, dtype=np.int64)
    for i, (row, values) in enumerate(zip(srt, s)):  # C binary searches; NumPy has no batched one
        below[i] = row.searchsorted(values)
    # The true match itself sits at position `below`; another entry at the same distance sits
    # right after it.
    nxt = np.take_along_axis(srt, np.minimum(below + 1, n_g - 1), axis=1)
    tied = is_match & (below + 1 < n_g) & (nxt == s)
    if tied.any():
        below = below + _tie_count(x, s, mcol, tied)
    ranks = below + 1  # [c, m_max], meaningful where is_match
    prec = np.where(is_match, np.arange(1, s.shape[1] + 1)[None, :] / ranks, 0.0)
    ap = prec.sum(axis=1)[ok] / n_match[ok]
    last_rank = np.take_along_axis(ranks, np.maximum(n_match - 1, 0)[:, None], axis=1)[:, 0]
    inp = n_match[ok] / last_rank[ok]

    # ---- CMC: identities whose first occurrence precedes the first true match.
    if lay.dedup:
        s0 = s[:, 0]
        bits = np.zeros((c, 64 * (-(-n_g // 64))), dtype=bool)
        if lay.permuted:
            bits[:, :n_g] = (x < s0[:, None])[:, lay.g_order]
        else:
            np.less(x, s0[:, None], out=bits[:, :n_g])
        g_index = np.arange(n_g)
        for r in np.flatnonzero(tied[:, 0] & ok):
            # An entry at the first match's distance precedes it when its index is smaller.
            before = (x[r] < s0[r]) | ((x[r] == s0[r]) & (g_index < mcol[r, 0]))
            bits[r, :n_g] = before[lay.g_order]
        words = _pack_words(bits)
        # The query's own identity has no entry before its first match, so every group with a
        # set bit is another identity.
        acc = words[:, lay.word_idx[:, 0]] & lay.seg_mask[:, 0]
        for k in range(1, lay.word_idx.shape[1]):  # a loop over words per group, not queries
            acc |= words[:, lay.word_idx[:, k]] & lay.seg_mask[:, k]
        id_rank = np.count_nonzero(acc, axis=1)
    else:
        # Plain CMC: the position of the first true match in the list of images.
        id_rank = ranks[:, 0] - 1
    hist += np.bincount(np.minimum(id_rank[ok], max_rank), minlength=max_rank + 1)
    return hist, float(ap.sum()), float(inp.sum()), int(ok.sum())


def _gather_block(distmat: np.ndarray, rows: slice | np.ndarray, cols: np.ndarray | None, scratch: _Scratch) -> np.ndarray:
    """The block's distances to the gallery columns its queries keep: ``[len(rows), len(cols)]``.

    A view when ``rows`` is a slice and every column is kept, else a copy in scratch memory.
    """
    if isinstance(rows, slice):
        x = distmat[rows]
    else:  # mode="clip": with the default, take would copy through a temporary
        x = np.take(distmat, rows, axis=0, out=scratch.array("rows", (len(rows), distmat.shape[1]), distmat.dtype), mode="clip")
    if cols is None:
        return x
    return np.take(x, cols, axis=1, out=scratch.array("cols", (x.shape[0], len(cols)), x.dtype), mode="clip")


def _nan_rows(distmat: np.ndarray, rows: slice | np.ndarray) -> ValueError:
    idx = np.arange(distmat.shape[0])[rows]
    bad = idx[np.isnan(distmat[idx]).any(axis=1)]
    return ValueError(f"distmat rows {bad[:5].tolist()} hold NaN distances (a NaN has no rank)")


def _tie_count(x: np.ndarray, s: np.ndarray, mcol: np.ndarray, tied: np.ndarray) -> np.ndarray:
    """For true matches whose distance other entries share exactly: how many of those come first.

    An entry at the same distance precedes a true match when its gallery index is smaller (stable
    sort). Only tied matches are looked at.
    """
    extra = np.zeros(s.shape, dtype=np.int64)
    g_index = np.arange(x.shape[1])
    for r, k in zip(*np.nonzero(tied)):
        extra[r, k] = np.count_nonzero((x[r] == s[r, k]) & (g_index < mcol[r, k]))
    return extra


# Unsigned key type of each float type: a non-negative float (+inf included) orders as its bit pattern.
_KEY_TYPES = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _orderable_keys(x: np.ndarray, key_type: type) -> np.ndarray:
    """Bit patterns of non-NaN ``x`` as unsigned keys ordered as the values (negatives and infinities included)."""
    x = x + x.dtype.type(0)  # -0.0 -> +0.0: equal values must get equal keys
    u = x.view(key_type)
    sign = key_type(1) << key_type(8 * u.itemsize - 1)
    # Negative: invert all bits (larger magnitude -> smaller key); non-negative: set the sign bit.
    return np.where(u & sign, ~u, u | sign)


def _block_sums_keyed(
    distmat: np.ndarray,
    max_rank: int,
    job: tuple[slice | np.ndarray, np.ndarray | None, _GalleryLayout, np.ndarray],
    scratch: _Scratch,
) -> tuple[np.ndarray, float, float, int]:
    """As :func:`_block_sums_exact`, by one sort of match-flagged keys per row.

    Each distance becomes an unsigned key ordered as the distances (a non-negative float's bit
    pattern), whose lowest bit is replaced by a true-match flag. Entries after a row's last true
    match change none of its metrics, so they all take one key just above that match (the
    clamp): the sort has only the head of each list to order. After a (SIMD, value-only) sort of
    the keys, the ranks of the true matches are the positions of the set flags. Clearing the
    lowest bit merges distances one unit in the last place apart, and an exact tie puts the
    non-match first whatever the gallery order; both only matter where a non-match and a true
    match share a key ("clash"), which the sorted row shows (a flagged key right after the same
    key unflagged). Those few groups of equal keys are put in exact order (distance, then
    gallery index) separately. Negative distances, -0.0 included, take keys that order both
    signs (a slower path); a NaN is an error.
    """
    rows, cols, lay, grp = job
    x = _gather_block(distmat, rows, cols, scratch)
    if x.dtype == np.float16:
        x = x.astype(np.float32)  # exact and order-preserving
    key_type = _KEY_TYPES[x.dtype]
    hist = np.zeros(max_rank + 1, dtype=np.int64)
    c, n_g = x.shape

    # True-match cells: the columns of the query's identity group (g_order lists them by group).
    g_safe = np.maximum(grp, 0)
    m_size = np.where(grp >= 0, lay.group_size[g_safe], 0)
    m_row = np.repeat(np.arange(c), m_size)
    m_first = np.cumsum(m_size) - m_size
    m_col = lay.g_order[np.repeat(lay.group_start[g_safe] - m_first, m_size) + np.arange(len(m_row))]
    has_match = m_size > 0
    if not has_match.any():
        if np.isnan(x).any():
            raise _nan_rows(distmat, rows)
        return (hist, *_NO_SUMS)

    one = key_type(1)
    flag_off = ~one
    inf_key = np.array(np.inf, dtype=x.dtype).view(key_type)
    keys = scratch.array("keys", (c, n_g), key_type)

    def row_keys(v: np.ndarray) -> np.ndarray:  # fast path: a non-negative float is its own key
        return np.bitwise_and(v.view(key_type), flag_off)

    # Flagged keys of the true matches; each row's clamp key, one above its last match (a row
    # without one keeps nothing: 0). Keys of non-NaN floats stay below the largest key, so the
    # clamp key cannot overflow.
    m_val = x[m_row, m_col]
    m_key = row_keys(m_val) | one
    cap = np.zeros(c, dtype=key_type)
    cap[has_match] = np.maximum.reduceat(m_key, m_first[has_match]) + one
    fast = bool(np.all(cap <= inf_key))  # else a last match below zero or at -0.0
    if fast:
        # Clamped in the float domain, which is the key order of the non-negative floats. A NaN
        # stays NaN and a negative distance stays negative: both sort past +inf, so the last
        # column tells. (+inf entries past the last match are clamped like the others.)
        kf = keys.view(x.dtype)
        np.minimum(x, cap.view(x.dtype)[:, None], out=kf)
        np.bitwise_and(keys, flag_off, out=keys)
        keys[m_row, m_col] = m_key
        keys.sort(axis=1)
        fast = bool(np.all(keys[:, -1] <= inf_key))
    if not fast:  # a negative or NaN distance somewhere: keys that order every float
        if np.isnan(x).any():
            raise _nan_rows(distmat, rows)

        def row_keys(v: np.ndarray) -> np.ndarray:
            return _orderable_keys(v, key_type) & flag_off

        keys[...] = row_keys(x)
        m_key = keys[m_row, m_col] | one
        cap[has_match] = np.maximum.reduceat(m_key, m_first[has_match]) + one
        keys[m_row, m_col] = m_key
        np.minimum(keys, cap[:, None], out=keys)
        keys.sort(axis=1)
    srt = keys

    # Positions of the flags, row-major: each row's true matches in ranked order.
    flags = scratch.array("flags", (c, n_g), np.uint8)
    np.copyto(flags, srt, casting="unsafe")  # the lowest byte
    np.bitwise_and(flags, 1, out=flags)
    flat = np.flatnonzero(flags.view(bool))
    first = np.searchsorted(flat, np.arange(c + 1) * n_g)  # index in `flat` of each row's first match
    n_match = np.diff(first)
    first = first[:-1]
    f_row = np.repeat(np.arange(c), n_match)
    f_pos = flat - f_row * n_g
    srt_flat = srt.reshape(-1)
    # A flagged key right after the same key unflagged: a non-match shares a true match's key.
    clash = np.flatnonzero((srt_flat[np.maximum(flat - 1, 0)] == srt_flat[flat] - one) & (f_pos > 0))
    extra_before = None
    if len(clash):
        g_key = srt_flat[flat[clash]] & flag_off
        extra_before = _resolve_clashes(x, row_keys, lay.col_group, grp, g_key, f_row, f_pos, first, clash)

    ok = n_match > 0
    ranks = f_pos + 1
    nth = np.arange(1, len(flat) + 1) - np.repeat(first, n_match)  # 1-based index among the row's matches
    ap = np.bincount(f_row, weights=nth / ranks, minlength=c)[ok] / n_match[ok]
    last_rank = ranks[first[ok] + n_match[ok] - 1]
    inp = n_match[ok] / last_rank

    # CMC. `p0` entries come before the first match: the non-matches with a key below its key,
    # plus, after a clash in its group, the group's non-matches put before it.
    p0 = np.zeros(c, dtype=np.int64)
    p0[ok] = f_pos[first[ok]]
    id_rank = p0
    if lay.dedup:
        deep = np.flatnonzero(ok & (p0 >= 2))  # 0 or 1 entries before: that many identities
        if len(deep):
            # Smallest true-match distance of each deep row (its first match, in exact order).
            s0 = np.empty(c, dtype=x.dtype)
            s0[has_match] = np.minimum.reduceat(m_val, m_first[has_match])
            x_deep = np.take(x, deep, axis=0, out=scratch.array("deep", (len(deep), n_g), x.dtype), mode="clip")
            before = np.less(x_deep, s0[deep, None], out=scratch.array("before", (len(deep), n_g), np.bool_))
            d_row, d_col = np.divmod(np.flatnonzero(before), n_g)
            if extra_before is not None:
                slot = np.full(c, -1)
                slot[deep] = np.arange(len(deep))
                e_row, e_col = extra_before
                keep = slot[e_row] >= 0
                d_row = np.r_[d_row, slot[e_row[keep]]]
                d_col = np.r_[d_col, e_col[keep]]
            seen = np.zeros((len(deep), len(lay.uniq)), dtype=bool)
            seen[d_row, lay.col_group[d_col]] = True
            id_rank = p0.copy()
            id_rank[deep] = np.count_nonzero(seen, axis=1)
    hist += np.bincount(np.minimum(id_rank[ok], max_rank), minlength=max_rank + 1)
    return hist, float(ap.sum()), float(inp.sum()), int(ok.sum())


def _resolve_clashes(
    x: np.ndarray,
    row_keys,
    col_group: np.ndarray,
    grp: np.ndarray,
    g_key: np.ndarray,
    f_row: np.ndarray,
    f_pos: np.ndarray,
    first: np.ndarray,
    clash: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Put the groups of equal keys holding both kinds of entry in exact order.

    ``clash`` indexes (in ``f_row`` / ``f_pos``) the first flagged entry of each such group and
    ``g_key`` is the group's key (flag cleared); ``row_keys(v)`` gives the flag-cleared keys of
    distances ``v``. A group's entries fill
    consecutive positions of the sorted row, non-matches first; in the exact order (distance,
    then gallery index) its matches take other positions among the same ones, which overwrite
    ``f_pos`` in place (still ascending per row). Returns ``(row, col)`` of the non-matches that
    the exact order puts before their row's first match although their key equals the first
    match's key.
    """
    n_grp = len(clash)
    g_r = f_row[clash]
    gi, col = np.divmod(np.flatnonzero(row_keys(x[g_r]) == g_key[:, None]), x.shape[1])  # by group
    row = g_r[gi]
    order = np.lexsort((col, x[row, col], gi))  # by group, distance, gallery index
    gi, col, row = gi[order], col[order], row[order]
    is_m = col_group[col] == grp[row]
    size = np.bincount(gi, minlength=n_grp)
    n_m = np.bincount(gi[is_m], minlength=n_grp)
    w = np.arange(len(gi)) - np.repeat(np.cumsum(size) - size, size)  # exact place in the group
    g0 = f_pos[clash] - (size - n_m)  # sorted position of the group's first entry
    m_first = np.cumsum(n_m) - n_m
    f_pos[np.repeat(clash, n_m) + np.arange(int(n_m.sum())) - np.repeat(m_first, n_m)] = g0[gi[is_m]] + w[is_m]
    # Non-matches placed before the first match of a group that holds the row's first match.
    w_first_m = w[is_m][m_first]
    sel = ~is_m & (clash == first[g_r])[gi] & (w < w_first_m[gi])
    return row[sel], col[sel]


class _Scratch:
    """One thread's work arrays, reused from block to block and from call to call: a fresh
    array costs page faults on every use, which on large galleries cost more than the work done
    in it. Holds about 10 bytes per distance of the largest block seen (a few MB)."""

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
