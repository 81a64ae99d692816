"""The learning test against deliberate bugs: rank-1 of a healthy run and of each breakage.

Runs ``tests/learning_check.train_and_evaluate`` (the check ``tests/training/
test_learning.py`` asserts) healthy and under every entry of ``learning_check.BREAKAGES``,
and prints held-out all-search single-shot rank-1, mAP, the chance level, the multiple of
chance and whether the test's bar (``TIMES_CHANCE`` x chance) would pass. A learning test
that passes under a breakage would not notice that bug. About 1-1.5 minutes per run on 2 cores.

Run: ``.venv/bin/python benchmarks/learning_breakages.py [--only healthy|<breakage>...]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from learning_check import BREAKAGES, TIMES_CHANCE, summary, train_and_evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these (healthy or breakage names)")
    args = parser.parse_args()
    runs = [None, *BREAKAGES]
    if args.only:
        runs = [r for r in runs if (r or "healthy") in args.only]
    print(f"bar: rank-1 >= {TIMES_CHANCE:g} x chance")
    print(f"{'run':<56} {'rank-1':>7} {'mAP':>6} {'chance':>7} {'x chance':>8} {'test':>5} {'s':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            t0 = time.perf_counter()
            rank1, mAP, chance = summary(train_and_evaluate(Path(tmp), run)["rows"])
            verdict = "pass" if rank1 >= TIMES_CHANCE * chance else "FAIL"
            print(f"{run or 'healthy':<56} {100 * rank1:>7.1f} {100 * mAP:>6.1f} {100 * chance:>7.1f} "
                  f"{rank1 / chance:>8.1f} {verdict:>5} {time.perf_counter() - t0:>5.0f}", flush=True)


if __name__ == "__main__":
    main()
