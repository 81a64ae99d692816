"""Speed of rank_metrics against a plain one-query-at-a-time loop, on dataset-sized inputs.

Sizes: SYSU-MM01 (3803 infrared queries; 301 single-shot and 3010 multi-shot all-search
gallery images, 10 gallery trials) and RegDB (2060 x 2060, 10 trials). Features are random but
identity-clustered (identity centre + noise, L2-normalised) with the real pid / camera layout,
so the ranked lists look like those of a weak model (rank-1 ~25-50 %, mINP ~2-10 %: the true
matches spread far down the list, the hard case for rank_metrics). Queries and gallery come in
the order the workflow passes them (queries by camera, then identity; gallery by identity, then
camera); --shuffle-queries interleaves the camera-3 and camera-6 queries instead. Prints, per
setting, the time of both implementations, their ratio and the largest metric difference. The
one-off compile (or cache load) of rank_metrics' numba kernels is timed and printed apart.

Run: .venv/bin/python benchmarks/eval_speed.py [--trials 10]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from rgbir_reid.evaluation import metrics, rank_metrics
from rgbir_reid.evaluation.protocols import euclidean_distances


def reference_loop(distmat, q_pids, g_pids, q_cams, g_cams, protocol, max_rank=20):
    """The definitions, one query at a time (stable argsort, camera rule, de-duplication)."""
    hits = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        ranked = g_pids[order]
        if protocol == "sysu_mm01":
            ranked = ranked[~((q_cams[i] == 3) & (g_cams[order] == 2))]
        match = ranked == q_pids[i]
        if not match.any():
            continue
        pos = np.flatnonzero(match) + 1
        aps.append(np.mean(np.arange(1, len(pos) + 1) / pos))
        inps.append(len(pos) / pos[-1])
        if protocol == "sysu_mm01":
            _, first_idx = np.unique(ranked, return_index=True)
            dedup = ranked[np.sort(first_idx)]
            first = int(np.flatnonzero(dedup == q_pids[i])[0])
        else:
            first = pos[0] - 1
        if first < max_rank:
            hits[first:] += 1
    return hits / len(aps), float(np.mean(aps)), float(np.mean(inps))


def _features(pids, centres, rng, noise):
    f = centres[pids] + noise * rng.normal(size=(len(pids), centres.shape[1]))
    return (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)


def _sysu_inputs(rng, n_shot, dim=256, noise=3.0, shuffle_queries=False):
    n_ids = 96
    centres = rng.normal(size=(n_ids, dim))
    # 3803 queries over cameras 3 and 6; gallery: ids x RGB cameras x n_shot (301 id-camera pairs).
    q_pids = rng.integers(0, n_ids, 3803)
    q_cams = rng.choice([3, 6], 3803)
    if not shuffle_queries:  # the workflow's order: camera, then identity
        order = np.lexsort((q_pids, q_cams))
        q_pids, q_cams = q_pids[order], q_cams[order]
    pairs = [(p, c) for p in range(n_ids) for c in (1, 2, 4, 5)]  # gallery order: identity, camera
    pairs = [pairs[i] for i in np.sort(rng.choice(len(pairs), 301, replace=False))]
    g_pids = np.repeat([p for p, _ in pairs], n_shot)
    g_cams = np.repeat([c for _, c in pairs], n_shot)
    return _features(q_pids, centres, rng, noise), q_pids, q_cams, _features(g_pids, centres, rng, noise), g_pids, g_cams


def _regdb_inputs(rng, dim=256, noise=3.0):
    centres = rng.normal(size=(206, dim))
    pids = np.repeat(np.arange(206), 10)
    return _features(pids, centres, rng, noise), pids, np.ones(2060, int), _features(pids, centres, rng, noise), pids, np.full(2060, 2)


def parallel_speedup(n_threads, repeats=3):
    """How much faster ``n_threads`` threads sort 12 blocks of rows than one thread does.

    The ratio below assumes the cores rank_metrics uses are free; on an idle machine this is
    close to the thread count, and well below it when other work shares the cores.
    """
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(1)
    blocks = [rng.random((340, 3010), dtype=np.float32) for _ in range(12)]

    def sort_all(n):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(lambda b: np.sort(b, axis=1), blocks))
            best = min(best, time.perf_counter() - t0)
        return best

    return sort_all(1) / sort_all(n_threads)


def bench(name, make, protocol, trials, rng, blas_first=False):
    t_vec = t_ref = 0.0
    worst = 0.0
    summary = None
    for _ in range(trials):
        qf, qp, qc, gf, gp, gc = make(rng)
        d = euclidean_distances(qf, gf)
        # The loop runs first: right after the distance matrix product, the BLAS threads still
        # busy-wait for a while and would slow whichever implementation ran next on the shared
        # cores (rank_metrics works on several threads; see --blas-first to time it there).
        if blas_first:
            t0 = time.perf_counter()
            res = rank_metrics(d, qp, gp, qc, gc, protocol=protocol, max_rank=20)
            t_vec += time.perf_counter() - t0
        t1 = time.perf_counter()
        cmc, m_ap, m_inp = reference_loop(d, qp, gp, qc, gc, protocol, 20)
        t_ref += time.perf_counter() - t1
        if not blas_first:
            t0 = time.perf_counter()
            res = rank_metrics(d, qp, gp, qc, gc, protocol=protocol, max_rank=20)
            t_vec += time.perf_counter() - t0
        worst = max(worst, float(np.abs(cmc - res.cmc).max()), abs(m_ap - res.mAP), abs(m_inp - res.mINP))
        summary = res
    print(
        f"{name:<34} {d.shape[0]:>5} x {d.shape[1]:<5} trials={trials:<3} rank_metrics {t_vec:7.3f} s   "
        f"loop {t_ref:7.3f} s   ratio {t_ref / t_vec:6.1f}x   max |diff| {worst:.2e}   "
        f"(last trial: r1 {summary.cmc[0]:.3f} mAP {summary.mAP:.3f} mINP {summary.mINP:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shuffle-queries", action="store_true", help="interleave camera-3 and camera-6 queries")
    parser.add_argument(
        "--blas-first", action="store_true", help="time rank_metrics right after the distance product, before the loop"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    # Both implementations share the machine; a loaded machine slows both, but not equally.
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, cpus: {os.cpu_count()}")
    # rank_metrics spreads blocks of queries over threads; the reference loop runs on one.
    n_threads = min(metrics._MAX_THREADS, metrics._available_cpus())
    print(f"rank_metrics threads: up to {n_threads}; reference loop: 1")
    if n_threads > 1:
        print(f"parallel check: {n_threads} threads sort {parallel_speedup(n_threads):.2f}x as fast as one (near {n_threads} when the cores are free)")
    bf = args.blas_first
    # The first call compiles rank_metrics' numba kernels, or loads them from their cache: once
    # per process and dtype, not part of the per-trial figures.
    t0 = time.perf_counter()
    for dtype in (np.float32, np.float64):
        rank_metrics(np.eye(3, dtype=dtype), [0, 1, 2], [0, 1, 2], [3, 6, 6], [1, 2, 4], protocol="sysu_mm01")
    print(f"first calls (numba compile or cache load, float32 + float64): {time.perf_counter() - t0:.2f} s")
    sq = args.shuffle_queries
    bench("SYSU-MM01 all-search single-shot", lambda r: _sysu_inputs(r, 1, shuffle_queries=sq), "sysu_mm01", args.trials, rng, bf)
    bench("SYSU-MM01 all-search multi-shot", lambda r: _sysu_inputs(r, 10, shuffle_queries=sq), "sysu_mm01", args.trials, rng, bf)
    bench("RegDB visible->thermal", _regdb_inputs, "regdb", args.trials, rng, bf)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
