"""Compiled per-row steps of :func:`rgbir_reid.evaluation.metrics.rank_metrics` (numba).

Two kernels bracket one NumPy (SIMD) sort of each block of rows:

1. :func:`prepare_keys` turns each row of distances into unsigned integer keys ordered as the
   distances, collects the row's true matches sorted by (distance, gallery index), and clamps
   every key past the last true match to one value just above it: those entries change no
   metric, so the sort has only the head of the list to order. A row of distances >= 0 (+inf
   included) uses the bit patterns themselves; a row with a negative distance or -0.0 uses keys
   that order both signs (``_ordered_key``, -0.0 = +0.0).
2. :func:`rank_rows` walks each sorted row against its sorted true matches: the position of a
   match's key is its rank, except where other entries share the exact distance, which are then
   put in gallery order by a look at the row. It returns AP, INP and the CMC position of each
   row (for SYSU-MM01, the number of other identities seen before the first true match).

Both release the GIL, so blocks run on several threads. Rows are processed one at a time in
compiled code: there is no Python loop over queries.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, inline="always")
def _ordered_key(u, sign, ones):
    """Unsigned key of a float's bit pattern ``u`` ordered as the floats, any sign (not NaN)."""
    if u == sign:  # -0.0 is the distance 0.0
        u = u ^ sign
    if u & sign:
        return u ^ ones  # negative: larger magnitude -> smaller key
    return u | sign


@njit(nogil=True, cache=True, inline="always")
def _row_key(u, ordered, sign, ones):
    return _ordered_key(u, sign, ones) if ordered else u


@njit(nogil=True, cache=True)
def prepare_keys(bits, rows, cols, grp, g_order, group_start, group_size, one, sign, ones, abs_mask, inf_bits, keys, t_key, t_col, n_match, ordered, nan_row):
    """Keys of a block of rows, clamped past each row's last true match.

    Args:
        bits: ``[Q, G]`` unsigned view of the distance matrix.
        rows: ``[c]`` rows of ``bits`` in this block.
        cols: ``[n]`` gallery columns the block's queries keep, or ``[0]`` for all ``G``.
        grp: ``[c]`` identity group of each row's query in the (sub-)gallery, -1 for none.
        g_order, group_start, group_size: columns (0..n-1) of each identity group.
        one, sign, ones, abs_mask, inf_bits: constants of the key type (1, the sign bit, all
            ones, all but the sign bit, the bit pattern of +inf).
        keys: ``[c, n]`` output, the clamped keys.
        t_key, t_col: ``[c, m_max]`` output, each row's true matches sorted by (key, column).
        n_match: ``[c]`` output, true matches per row.
        ordered: ``[c]`` output, True where the row's keys are ``_ordered_key`` (a distance
            below zero or -0.0), False where they are the bit patterns.
        nan_row: ``[c]`` output, True where a kept distance is NaN.
    """
    n = keys.shape[1]
    gathered = cols.shape[0] > 0
    for r in range(rows.shape[0]):
        src = bits[rows[r]]
        out = keys[r]
        nan_row[r] = False
        for pass_ordered in (False, True):
            m = 0
            g = grp[r]
            if g >= 0:
                s = group_start[g]
                for j in range(group_size[g]):
                    c = g_order[s + j]
                    k = _row_key(src[cols[c]] if gathered else src[c], pass_ordered, sign, ones)
                    b = m  # insertion by key; columns arrive ascending, so equal keys keep gallery order
                    while b > 0 and t_key[r, b - 1] > k:
                        t_key[r, b] = t_key[r, b - 1]
                        t_col[r, b] = t_col[r, b - 1]
                        b -= 1
                    t_key[r, b] = k
                    t_col[r, b] = c
                    m += 1
            n_match[r] = m
            ordered[r] = pass_ordered
            # One above the last match's key; no overflow, as NaN is refused and +inf's key is
            # not the largest. A row without a match keeps nothing (all keys 0).
            cap = t_key[r, m - 1] + one if m > 0 else one ^ one
            if not pass_ordered:
                # Bit patterns order the distances >= 0 (+inf included): anything above +inf's
                # pattern is negative (sign bit), -0.0 or NaN, and sends the row to the second pass.
                odd = False
                if gathered:
                    for i in range(n):
                        u = src[cols[i]]
                        odd |= u > inf_bits
                        out[i] = u if u < cap else cap
                else:
                    for i in range(n):
                        u = src[i]
                        odd |= u > inf_bits
                        out[i] = u if u < cap else cap
                if not odd:
                    break
            else:
                nan = False
                for i in range(n):
                    u = src[cols[i]] if gathered else src[i]
                    nan |= (u & abs_mask) > inf_bits
                    k = _ordered_key(u, sign, ones)
                    out[i] = k if k < cap else cap
                nan_row[r] = nan


@njit(nogil=True, cache=True)
def _count_tied_before(src, cols, gathered, o, sign, ones, key, col):
    """Entries of the row before gallery index ``col`` whose key is ``key``."""
    before = 0
    for i in range(col):
        u = src[cols[i]] if gathered else src[i]
        before += _row_key(u, o, sign, ones) == key
    return before


@njit(nogil=True, cache=True, inline="always")
def _mark(i, col_group, seen, marked, n_id):
    g = col_group[i]
    if not seen[g]:
        seen[g] = True
        marked[n_id] = g
        n_id += 1
    return n_id


@njit(nogil=True, cache=True)
def _identities_before(src, cols, gathered, o, sign, ones, key0, col0, col_group, seen, marked):
    """Distinct identities with an entry before (key0, col0) in (key, gallery index) order."""
    n_id = 0
    n = cols.shape[0] if gathered else src.shape[0]
    # One loop per case, so that the common one (bit patterns, every column) is a plain scan
    # with a rarely taken, well predicted branch.
    if gathered and o:
        for i in range(n):
            u = _ordered_key(src[cols[i]], sign, ones)
            if u <= key0 and (u < key0 or i < col0):
                n_id = _mark(i, col_group, seen, marked, n_id)
    elif gathered:
        for i in range(n):
            u = src[cols[i]]
            if u <= key0 and (u < key0 or i < col0):
                n_id = _mark(i, col_group, seen, marked, n_id)
    elif o:
        for i in range(n):
            u = _ordered_key(src[i], sign, ones)
            if u <= key0 and (u < key0 or i < col0):
                n_id = _mark(i, col_group, seen, marked, n_id)
    else:
        for i in range(n):
            u = src[i]
            if u <= key0 and (u < key0 or i < col0):
                n_id = _mark(i, col_group, seen, marked, n_id)
    for j in range(n_id):
        seen[marked[j]] = False
    return n_id


@njit(nogil=True, cache=True)
def rank_rows(srt, bits, rows, cols, t_key, t_col, n_match, ordered, col_group, n_groups, dedup, sign, ones, ap, inp, first):
    """AP, INP and CMC position of each row of a sorted block.

    Args:
        srt: ``[c, n]`` keys from :func:`prepare_keys`, each row sorted.
        bits, rows, cols: as for :func:`prepare_keys` (to look at a row in gallery order).
        t_key, t_col, n_match, ordered: from :func:`prepare_keys`.
        col_group: ``[n]`` identity group of each kept column.
        n_groups: number of identity groups.
        dedup: CMC on the list reduced to the first occurrence of each identity (SYSU-MM01).
        sign, ones: constants of the key type.
        ap, inp: ``[c]`` outputs (rows without a true match are left as they are).
        first: ``[c]`` output: the 0-based CMC position of the first true match, -1 if none.
    """
    n = srt.shape[1]
    gathered = cols.shape[0] > 0
    seen = np.zeros(n_groups, dtype=np.bool_)
    marked = np.empty(n_groups, dtype=np.int64)
    for r in range(srt.shape[0]):
        m = n_match[r]
        if m == 0:
            first[r] = -1
            continue
        row = srt[r]
        src = bits[rows[r]]
        o = ordered[r]
        pos = 0
        k = 0
        s_ap = 0.0
        p_first = 0
        p_last = 0
        while k < m:
            key = t_key[r, k]
            # Entries below this key: skip 64, then 8 at a time while a block's last entry is
            # below (the row is sorted), then one by one; the match itself is in the row, so
            # this stops.
            while pos + 64 <= n and row[pos + 63] < key:
                pos += 64
            while pos + 8 <= n and row[pos + 7] < key:
                pos += 8
            while row[pos] < key:
                pos += 1
            run = 1  # entries sharing this exact distance, the match itself included
            while pos + run < n and row[pos + run] == key:
                run += 1
            m_eq = 1  # true matches sharing it
            while k + m_eq < m and t_key[r, k + m_eq] == key:
                m_eq += 1
            for j in range(m_eq):
                if run == m_eq:
                    before = pos + j  # only matches tie: they keep gallery order
                else:  # a non-match ties with it: gallery order decides
                    before = pos + _count_tied_before(src, cols, gathered, o, sign, ones, key, t_col[r, k + j])
                s_ap += (k + j + 1) / (before + 1)
                if k + j == 0:
                    p_first = before
                p_last = before
            pos += run
            k += m_eq
        ap[r] = s_ap / m
        inp[r] = m / (p_last + 1)
        if not dedup or p_first < 2:  # 0 or 1 entries before the first match: that many identities
            first[r] = p_first
        else:
            first[r] = _identities_before(src, cols, gathered, o, sign, ones, t_key[r, 0], t_col[r, 0], col_group, seen, marked)
