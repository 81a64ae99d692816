"""Rank metrics of a query/gallery distance matrix: CMC, mAP and mINP.

One public function, :func:`rank_metrics`, vectorised over queries and chunked so that its
working memory stays bounded (about ``chunk_elements`` distances at a time), whatever the
gallery size.

How the ranks are found without a per-query argsort: the rank of a true match at distance
``s`` in a query's ranked list is one plus the number of kept gallery entries placed before it,
i.e. entries with a smaller distance, or an equal distance and a smaller gallery index (a stable
sort keeps gallery order among ties). So each query's row is sorted by *value only* (SIMD sort,
several times faster than an argsort) and its true-match distances are located in it by binary
search; the rare exact ties with a true match are then counted exactly. CMC uses the smallest
distance per gallery identity (an element-wise minimum over identity-grouped columns), which is
the first occurrence of that identity in the ranked list.

Sources: CMC with the "first occurrence of each gallery identity" rule and the camera-3 /
camera-2 rule as in the official SYSU-MM01 evaluation code (Wu et al., "RGB-Infrared
Cross-Modality Person Re-Identification", ICCV 2017; ``get_cmc_multi_cam.m``,
``get_map_multi_cam.m``); mINP as defined by Ye et al., "Deep Learning for Person
Re-identification: A Survey and Outlook", TPAMI 2021, eq. 7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

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

    # Identity groups of the gallery; within a group, columns keep gallery order (stable sort), so
    # a stable sort of true matches by distance orders them as a stable sort of the row would.
    g_order = np.argsort(g_pids, kind="stable")
    gp = g_pids[g_order]
    starts = np.flatnonzero(np.r_[True, gp[1:] != gp[:-1]])
    sizes = np.diff(np.r_[starts, n_g])
    uniq = gp[starts]
    m_max = int(sizes.max())
    # member[i] = gallery columns of identity group i, padded with the group's first column (a
    # repeated column leaves the per-identity minimum unchanged).
    slot = np.arange(n_g) - np.repeat(starts, sizes)
    member = np.repeat(g_order[starts][:, None], m_max, axis=1)
    member[np.repeat(np.arange(len(uniq)), sizes), slot] = g_order
    is_member = np.zeros(member.shape, dtype=bool)
    is_member[np.repeat(np.arange(len(uniq)), sizes), slot] = True
    # Galleries built identity by identity with equal group sizes need no gather for the minimum.
    reshape_ok = bool(np.all(sizes == m_max)) and bool(np.all(g_order == np.arange(n_g)))
    rm_mask = g_cams == SYSU_SAME_ROOM_GALLERY_CAMERA
    rm_cols = np.flatnonzero(rm_mask)

    # Query identity -> identity group, or -1 when the gallery lacks it.
    pos = np.searchsorted(uniq, q_pids)
    pos_c = np.minimum(pos, len(uniq) - 1)
    q_group = np.where(uniq[pos_c] == q_pids, pos_c, -1)

    rows_per_chunk = max(1, int(chunk_elements) // n_g)
    hist = np.zeros(max_rank + 1, dtype=np.int64)  # last bin: first match beyond max_rank
    ap_sum = 0.0
    inp_sum = 0.0
    n_valid = 0
    g_index = np.arange(n_g)
    for lo in range(0, n_q, rows_per_chunk):
        hi = min(lo + rows_per_chunk, n_q)
        d = distmat[lo:hi]
        # float64 row sums are non-finite exactly when a row holds NaN or +-inf (one cheap pass).
        if not np.all(np.isfinite(d.sum(axis=1, dtype=np.float64))):
            raise ValueError(f"distmat rows {lo}..{hi - 1} hold NaN or infinite distances")
        q_rm = np.flatnonzero(q_cams[lo:hi] == SYSU_SAME_ROOM_QUERY_CAMERA) if protocol == SYSU_MM01 else []
        if len(q_rm) and len(rm_cols):
            # Removed entries become +inf (a new array; the caller's matrix is never modified):
            # they sort last and never precede a true match.
            q_mask = np.zeros(hi - lo, dtype=bool)
            q_mask[q_rm] = True
            d = np.where(q_mask[:, None] & rm_mask[None, :], d.dtype.type(np.inf), d)
        c = hi - lo
        grp = q_group[lo:hi]
        has_grp = grp >= 0
        cols = member[np.maximum(grp, 0)]  # [c, m_max]
        s = np.take_along_axis(d, cols, axis=1)
        # Padding, identities absent from the gallery and removed true matches all become inf.
        s[~(is_member[np.maximum(grp, 0)] & has_grp[:, None])] = np.inf
        is_match = np.isfinite(s)
        n_match = is_match.sum(axis=1)
        ok = n_match > 0
        if not ok.any():
            continue
        morder = np.argsort(s, axis=1, kind="stable")
        s = np.take_along_axis(s, morder, axis=1)
        mcol = np.take_along_axis(cols, morder, axis=1)
        is_match = np.take_along_axis(is_match, morder, axis=1)

        # ---- mAP / mINP: rank of each true match among kept entries.
        sorted_d = np.ascontiguousarray(np.sort(d, axis=1))
        s_fin = np.ascontiguousarray(np.where(is_match, s, 0).astype(d.dtype))
        below = torch.searchsorted(torch.from_numpy(sorted_d), torch.from_numpy(s_fin)).numpy().astype(np.int64)
        # The true match itself sits at position `below`; another entry at the same distance
        # sits right after it.
        nxt = np.take_along_axis(sorted_d, np.minimum(below + 1, n_g - 1), axis=1)
        tied = is_match & (below + 1 < n_g) & (nxt == s_fin)
        before = below
        if tied.any():
            before = before + _tie_count(d, s, mcol, tied, g_index, chunk_elements)
        ranks = before + 1  # [c, m_max], meaningful where is_match
        k1 = np.arange(1, m_max + 1)[None, :]
        prec = np.where(is_match, k1 / np.maximum(ranks, 1), 0.0)
        ap = prec.sum(axis=1)[ok] / n_match[ok]
        last_rank = np.take_along_axis(ranks, np.maximum(n_match - 1, 0)[:, None], axis=1)[:, 0]
        inp = n_match[ok] / last_rank[ok]
        ap_sum += float(ap.sum())
        inp_sum += float(inp.sum())
        n_valid += int(ok.sum())

        # ---- CMC: identities whose first occurrence precedes the first true match.
        if protocol == SYSU_MM01:
            s0 = s[:, 0]
            d3 = d.reshape(c, len(uniq), m_max) if reshape_ok else d[:, member.ravel()].reshape(c, len(uniq), m_max)
            id_min = np.minimum(d3[:, :, 0], d3[:, :, 1]) if m_max > 1 else d3[:, :, 0].copy()
            for j in range(2, m_max):  # a loop over group slots, not queries
                np.minimum(id_min, d3[:, :, j], out=id_min)
            id_rank = (id_min < s0[:, None]).sum(axis=1)
            tie_id = (id_min == s0[:, None]) & ok[:, None]
            tie_id[np.flatnonzero(has_grp), grp[has_grp]] = False
            if tie_id.any():
                id_rank = id_rank + _tie_identities(d, s0, mcol[:, 0], tie_id, member, chunk_elements)
        else:
            # Plain CMC: the position of the first true match in the list of images.
            id_rank = ranks[:, 0] - 1
        id_rank = np.minimum(id_rank[ok], max_rank)
        hist += np.bincount(id_rank, minlength=max_rank + 1)

    if n_valid == 0:
        raise ValueError(
            f"no query has a true match in the gallery (protocol {protocol!r}, {n_q} queries, "
            f"{n_g} gallery entries); check that query and gallery identities overlap"
        )
    cmc = np.cumsum(hist[:max_rank]) / n_valid
    return RankMetrics(cmc=cmc, mAP=ap_sum / n_valid, mINP=inp_sum / n_valid, n_query=n_q, n_valid_query=n_valid)


def _tie_count(
    d: np.ndarray, s: np.ndarray, mcol: np.ndarray, tied: np.ndarray, g_index: np.ndarray, chunk_elements: int
) -> np.ndarray:
    """For true matches whose distance other entries share exactly: how many of those come first.

    An entry at the same distance precedes a true match when its gallery index is smaller (stable
    sort). ``d`` holds +inf for removed entries, so they never tie. Only tied matches are looked at.
    """
    extra = np.zeros(s.shape, dtype=np.int64)
    r_idx, k_idx = np.nonzero(tied)
    step = max(1, chunk_elements // d.shape[1])
    for a in range(0, len(r_idx), step):
        r, k = r_idx[a : a + step], k_idx[a : a + step]
        same = d[r] == s[r, k][:, None]
        earlier = g_index[None, :] < mcol[r, k][:, None]
        extra[r, k] = (same & earlier).sum(axis=1)
    return extra


def _tie_identities(
    d: np.ndarray, s0: np.ndarray, first_col: np.ndarray, tie_id: np.ndarray, member: np.ndarray, chunk_elements: int
) -> np.ndarray:
    """Identities whose smallest distance equals the first true match's: count those placed first.

    Such an identity precedes when one of its entries at that distance has a smaller gallery
    index than the first true match. Only rows with such a tie are looked at.
    """
    extra = np.zeros(d.shape[0], dtype=np.int64)
    rows = np.flatnonzero(tie_id.any(axis=1))
    step = max(1, chunk_elements // d.shape[1])
    g_index = np.arange(d.shape[1])
    for a in range(0, len(rows), step):
        r = rows[a : a + step]
        hit = (d[r] == s0[r][:, None]) & (g_index[None, :] < first_col[r][:, None])
        per_id = hit[:, member].any(axis=2)  # padding repeats a member, harmless for "any"
        extra[r] = (per_id & tie_id[r]).sum(axis=1)
    return extra
