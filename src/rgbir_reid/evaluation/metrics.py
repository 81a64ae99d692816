"""Rank metrics of a query/gallery distance matrix: CMC, mAP and mINP.

One public function, :func:`rank_metrics`, vectorised over queries and chunked so that its
working memory stays bounded (about ``chunk_elements`` distances at a time, and never more than a
cache-sized block), whatever the gallery size.

How the ranks are found without a per-query argsort: the rank of a true match at distance
``s`` in a query's ranked list is one plus the number of kept gallery entries placed before it,
i.e. entries with a smaller distance, or an equal distance and a smaller gallery index (a stable
sort keeps gallery order among ties). So each query's row is sorted by *value only* (SIMD sort,
several times faster than an argsort) and its true-match distances are located in it by binary
search; the rare exact ties with a true match are then counted exactly.

CMC needs the position of the first true match in the list reduced to the first occurrence of
each gallery identity, i.e. the number of other identities having an entry before the first true
match. Per block of queries that is one comparison pass (``distance < first-match distance``),
packed to bits (64 gallery columns per word, columns grouped by identity) and OR-ed per identity
group, so no per-identity minimum over all columns is computed.

Sources: CMC with the "first occurrence of each gallery identity" rule and the camera-3 /
camera-2 rule as in the official SYSU-MM01 evaluation code (Wu et al., "RGB-Infrared
Cross-Modality Person Re-Identification", ICCV 2017; ``get_cmc_multi_cam.m``,
``get_map_multi_cam.m``); mINP as defined by Ye et al., "Deep Learning for Person
Re-identification: A Survey and Outlook", TPAMI 2021, eq. 7.
"""

from __future__ import annotations

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

    Args:
        distmat: ``[Q, G]`` finite distances, smaller = more similar (any float dtype; it is not
            converted, so results are exact for the values given).
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
        ValueError: unknown protocol, shapes that disagree, non-finite distances, ``max_rank < 1``,
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
    # queries are split into those that see the whole gallery and those that see the sub-gallery.
    tasks = []  # (query rows or None for all, kept columns or None for all, layout)
    if q_removal.any():
        kept = np.flatnonzero(~removed)
        tasks.append((np.flatnonzero(~q_removal), None, _GalleryLayout.build(g_pids, dedup)))
        tasks.append((np.flatnonzero(q_removal), kept, _GalleryLayout.build(g_pids[kept], dedup) if len(kept) else None))
    else:
        tasks.append((None, None, _GalleryLayout.build(g_pids, dedup)))
    rm_cols = np.flatnonzero(removed)

    jobs = []
    for rows, cols, layout in tasks:
        n_rows = n_q if rows is None else len(rows)
        step = max(1, min(int(chunk_elements), _BLOCK_ELEMENTS) // n_g)
        q_group = layout.group_of(q_pids if rows is None else q_pids[rows]) if layout is not None else None
        for lo in range(0, n_rows, step):
            hi = min(lo + step, n_rows)
            jobs.append((rows[lo:hi] if rows is not None else slice(lo, hi), cols, layout, None if q_group is None else q_group[lo:hi]))
    parts = [_block_sums(distmat, rm_cols, max_rank, job) for job in jobs]

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


# Distances per block of queries: about 1 MB of float32, so a block and its sorted copy stay in cache.
_BLOCK_ELEMENTS = 1 << 18
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def _low_bits(n: np.ndarray) -> np.ndarray:
    """uint64 words with the ``n`` lowest bits set, ``n`` in [0, 64]."""
    n = n.astype(np.uint64)
    return np.where(n >= 64, _ALL_ONES, (np.uint64(1) << np.minimum(n, np.uint64(63))) - np.uint64(1))


@dataclass(frozen=True)
class _GalleryLayout:
    """Gallery columns grouped by identity, shared by all query blocks (read-only).

    ``member[i]`` holds the gallery columns of identity group ``i`` (ascending, padded with the
    group's first column; ``is_member`` marks the real ones). For CMC, columns are taken in
    identity order (``g_order``) and packed 64 per word: group ``i`` covers bits
    ``word_idx[i, k]`` under ``seg_mask[i, k]``.
    """

    uniq: np.ndarray
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
        return cls(
            uniq=gp[starts],
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


def _block_sums(
    distmat: np.ndarray,
    rm_cols: np.ndarray,
    max_rank: int,
    job: tuple[slice | np.ndarray, np.ndarray | None, _GalleryLayout | None, np.ndarray | None],
) -> tuple[np.ndarray, float, float, int]:
    """CMC histogram, AP sum, INP sum and valid-query count of one block of queries.

    ``job = (rows, cols, layout, q_group)``: the block's rows of ``distmat``, the gallery columns
    its queries keep (None: all; the others, ``rm_cols``, are only checked to be finite), the
    layout of those columns and the queries' identity groups in it.
    """
    rows, cols, lay, grp = job
    x = distmat[rows]
    hist = np.zeros(max_rank + 1, dtype=np.int64)
    if cols is not None:
        if not np.all(np.isfinite(np.take(x, rm_cols, axis=1))):
            raise _non_finite(distmat, rows)
        if lay is None:  # every gallery entry removed: no true match
            return (hist, *_NO_SUMS)
        x = np.take(x, cols, axis=1)
    c, n_g = x.shape
    srt = np.sort(x, axis=1)
    # NaN sorts after +inf, -inf first: the ends of each sorted row tell.
    if not (np.all(np.isfinite(srt[:, 0])) and np.all(np.isfinite(srt[:, -1]))):
        raise _non_finite(distmat, rows)

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


def _non_finite(distmat: np.ndarray, rows: slice | np.ndarray) -> ValueError:
    idx = np.arange(distmat.shape[0])[rows]
    bad = idx[~np.all(np.isfinite(distmat[idx]), axis=1)]
    return ValueError(f"distmat rows {bad[:5].tolist()} hold NaN or infinite distances")


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
