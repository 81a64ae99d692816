"""Images per second of the hand-crafted descriptors (HOG, LOMO, MLBP) on this machine's CPU.

For each descriptor, in one process:

1. ``describe`` alone on ``--n`` images already decoded and resized to the descriptor's input
   size: the real SYSU-MM01 sample crops of ``../shared/data/sysu_mm01_sample`` (RGB and
   infrared, the latter replicated to three channels by the loader), repeated to ``--n``;
2. decoding the JPEG files and resizing them (``load_image``, bilinear) alone, on the same
   ``--n`` files, so the end-to-end rate of a feature-extraction run is
   ``1 / (1 / decode + 1 / describe)`` (printed too).

Single process. The one-off numba compile (or cache load) of LOMO's kernel is timed apart. Descriptor cost
does not depend on the image content, apart from LOMO's colour-balance quantiles; decoding
does, and the sample crops are small (about 41x107 px), so real SYSU-MM01 files decode more
slowly than here. Prints the threads each part may use and whether LOMO reaches the issue's
50 images/s.

    .venv/bin/python benchmarks/handcrafted_speed.py [--n 500]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numba
import numpy as np

from rgbir_reid.data.transforms import load_image
from rgbir_reid.descriptors import DESCRIPTORS, describe, input_size

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sysu_mm01_sample"
LOMO_TARGET = 50.0  # images/s, from the issue


def sample_files(n: int) -> list[Path]:
    files = sorted(SAMPLE.glob("cam*/*/*.jpg"))
    if not files:
        raise SystemExit(f"no images under {SAMPLE}")
    return [files[i % len(files)] for i in range(n)]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="images per descriptor")
    args = parser.parse_args()

    files = sample_files(args.n)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cpus usable: {cores}; load average (1, 5, 15 min): {os.getloadavg()}")
    print(f"images: {args.n} ({len(set(files))} distinct SYSU-MM01 sample crops, repeated)")
    blas_env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    print(
        "threads: HOG, MLBP (scikit-image) and LOMO's HSV and SILTP (numpy) run on 1; "
        f"LOMO's window histograms (numba prange) on up to {numba.get_num_threads()}; "
        f"LOMO's Gaussian surround (numpy matmul) on BLAS's default ({blas_env or 'no thread variables set'})"
    )

    t0 = time.perf_counter()
    describe("lomo", np.zeros((2, *input_size("lomo"), 3), dtype=np.uint8))
    print(f"LOMO first call (numba compile or cache load): {time.perf_counter() - t0:.2f} s; threading layer {numba.threading_layer()}")

    print(f"{'descriptor':<10} {'size':>7} {'D':>6} {'describe/s':>11} {'decode/s':>9} {'both/s':>7}")
    rates = {}
    for name in sorted(DESCRIPTORS):
        size = input_size(name)
        t0 = time.perf_counter()
        images = np.stack([load_image(p, size) for p in files])
        decode = rate(args.n, time.perf_counter() - t0)
        t0 = time.perf_counter()
        feats = describe(name, images)
        rates[name] = rate(args.n, time.perf_counter() - t0)
        both = 1.0 / (1.0 / decode + 1.0 / rates[name])
        print(f"{name:<10} {size[0]:>3}x{size[1]:<3} {feats.shape[1]:>6} {rates[name]:>11.1f} {decode:>9.1f} {both:>7.1f}")

    verdict = "meets" if rates["lomo"] >= LOMO_TARGET else "does NOT meet"
    print(f"LOMO: {rates['lomo']:.1f} images/s (describe alone) {verdict} the target of {LOMO_TARGET:.0f} images/s")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
