"""Time and memory of k-reciprocal re-ranking (rgbir_reid.evaluation.rerank) on dataset-sized inputs.

Sizes of one gallery trial: SYSU-MM01 all-search (3803 infrared queries; 301 single-shot and
3010 multi-shot gallery images) and RegDB (2060 queries x 2060 gallery). Features are random,
identity-clustered (identity centre + noise, L2-normalised), 2048-d as ResNet-50's. Prints, per
size, the seconds of one re-ranking (paper settings k1 20, k2 6, lambda 0.3) and the peak
resident memory of the process so far. evaluate does this once per protocol mode and gallery
trial when evaluation.rerank is on (40 times for SYSU-MM01's 4 modes x 10 trials).

Run: .venv/bin/python benchmarks/rerank_speed.py [--sizes sysu_single regdb sysu_multi]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from rgbir_reid.evaluation.protocols import euclidean_distances
from rgbir_reid.evaluation.rerank import RerankSettings, rerank_distances

SIZES = {"sysu_single": (3803, 301, 96), "sysu_multi": (3803, 3010, 96), "regdb": (2060, 2060, 206)}


def features(n: int, n_ids: int, rng: np.random.Generator, dim: int = 2048) -> np.ndarray:
    centres = rng.normal(size=(n_ids, dim))
    f = centres[rng.integers(0, n_ids, n)] + 1.5 * rng.normal(size=(n, dim))
    return (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name in args.sizes:
        n_query, n_gallery, n_ids = SIZES[name]
        q, g = features(n_query, n_ids, rng), features(n_gallery, n_ids, rng)
        blocks = euclidean_distances(q, g), euclidean_distances(q, q), euclidean_distances(g, g)
        start = time.perf_counter()
        rerank_distances(*blocks, RerankSettings())
        seconds = time.perf_counter() - start
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{name}: {n_query} x {n_gallery}: {seconds:.2f} s per re-ranking, peak RSS so far {peak_gib:.2f} GiB")


if __name__ == "__main__":
    main()
