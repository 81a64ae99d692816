"""One re-ID method of the demo config, retrained with changed settings, evaluated as the workflow does.

The harness behind the tuning table of docs/demo.md ("How the settings were tuned"). It takes the demo dataset and
cache that ``make run`` left under ``results/`` (so the conversion and the images are the
workflow's own), builds the method's settings exactly as the workflow does (``reid:`` of the
config, then the method's entry, then each ``--set``), trains with ``train_reid`` on one thread
(what ``make run`` gives each training on a CPU-only machine), extracts flip-averaged test
features and prints:

* all-search single-shot rank-1 and mAP over 10 seeded gallery trials, and the chance level;
* nearest-neighbour rank-1 over all test images of other cameras: infrared->visible,
  visible->visible and infrared->infrared (how much each modality's features tell identities
  apart on their own);
* the last epoch's training accuracy and the training time.

With the config unchanged it reproduces the method's row of ``results/report/table.md`` to the
digit (same seed, same thread count). A run takes about as long as the method's ``train_reid``
job: ~4 minutes for ``ce2l``, ~2 for ``bdtr``, ~1 for Wu et al.'s baselines on this 2-core CPU.

Run (after ``make run``)::

    .venv/bin/python benchmarks/demo_tuning.py --method ce2l --set lr=0.2 --set dropout=0
    .venv/bin/python benchmarks/demo_tuning.py --method bdtr --seed 1
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import yaml

from rgbir_reid.data.splits import index_dataset, make_trial_split
from rgbir_reid.evaluation.protocols import EvaluationSettings, evaluate_features, nearest_neighbour_rank1
from rgbir_reid.features import extract_features
from rgbir_reid.training.reid import ReidSettings, train_reid

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="ce2l", help="a reid-family method of the config (default ce2l)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override one re-ID setting, e.g. lr=0.2 or lr_milestones=[14] (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--results", type=Path, default=REPO / "results", help="the results/ of a finished make run")
    args = parser.parse_args()

    config = yaml.safe_load(args.config.read_text())
    method = dict(config["methods"].get(args.method) or {})
    if method.pop("family", None) != "reid":
        sys.exit(f"{args.config}: methods.{args.method} is not a method of the reid family")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--set {item!r}: expected KEY=VALUE")
        try:
            overrides[key] = json.loads(value)  # numbers, lists, true/false/null
        except json.JSONDecodeError:
            overrides[key] = value  # a plain string, e.g. optimizer=adam
    settings = ReidSettings.from_dict({**config["reid"], **method, **overrides, "num_workers": 0})

    root = args.results / "demo" / "demo_data"
    cache = args.results / "demo" / "trial1" / "cache.h5"
    for path in (root, cache):
        if not path.exists():
            sys.exit(f"{path} is missing: run `make run` first (this harness reuses its demo data and cache)")
    split = make_trial_split("demo", root, index_dataset("demo", root, verify_images=False), 1)
    test = [r for r in split if r.subset == "test"]

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        model = train_reid(cache, out / "run", settings, device="cpu", seed=args.seed)
        seconds = time.perf_counter() - t0
        extract_features(model, test, out / "features.h5", batch_size=config["extract"]["batch_size"], device="cpu",
                         flip=config["extract"]["flip"])
        with h5py.File(out / "features.h5", "r") as f:
            data = {k: f[k][()] for k in ("features", "pid", "camera", "modality")}
            paths = f["path"].asstr()[()]
        accuracy = float(pd.read_csv(out / "run" / "losses.csv").iloc[-1]["accuracy"])
    rows = evaluate_features(
        data["features"], data["pid"], data["camera"], data["modality"], paths, dataset_format="sysu_mm01",
        settings=EvaluationSettings(sysu_modes=("all-search/single-shot",), sysu_sampler="seeded", sysu_n_trials=10),
    )
    visible, thermal = np.flatnonzero(data["modality"] == 0), np.flatnonzero(data["modality"] == 1)
    nn = {name: nearest_neighbour_rank1(data["features"], data["pid"], data["camera"], q, g)
          for name, q, g in (("IR->V", thermal, visible), ("V->V", visible, visible), ("IR->IR", thermal, thermal))}
    print(f"method {args.method}, seed {args.seed}, {args.threads} thread(s), overrides {overrides or 'none'}")
    print(f"all-search single-shot: rank-1 {100 * np.mean([r['rank1'] for r in rows]):.2f} "
          f"mAP {100 * np.mean([r['mAP'] for r in rows]):.2f} "
          f"(chance {100 * np.mean([r['chance_rank1'] for r in rows]):.2f} / {100 * np.mean([r['chance_mAP'] for r in rows]):.2f})")
    print("nearest-neighbour rank-1, other cameras: " + "  ".join(f"{k} {100 * v:.1f}" for k, v in nn.items()))
    print(f"training: last-epoch accuracy {100 * accuracy:.1f} %, {seconds:.0f} s")


if __name__ == "__main__":
    main()
