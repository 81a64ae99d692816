"""A re-ID training process killed (SIGKILL) part-way resumes from its last epoch checkpoint,
and on CPU ends with exactly the weights and metrics of an uninterrupted run."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rgbir_reid.data.cache import write_cache
from rgbir_reid.data.records import ImageRecord
from rgbir_reid.evaluation import rank_metrics
from rgbir_reid.features import extract_features
from rgbir_reid.training.reid import train_reid
from rgbir_reid.training.reid_settings import ReidSettings

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sysu_mm01_sample"

SETTINGS = ReidSettings(
    architecture="two_stream_resnet18", pretrained="none", embedding_dim=16, image_size=(32, 16),
    crop_size=(32, 16), num_identities=2, num_instances=2, batches_per_epoch=3, epochs=8,
    lr_milestones=(), num_workers=0,
)

CHILD = """
import json, sys, torch
from rgbir_reid.training.reid import train_reid
from rgbir_reid.training.reid_settings import ReidSettings
torch.set_num_threads(1)
cache, out, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
train_reid(cache, out, ReidSettings.from_dict(settings), device="cpu", seed=5)
"""


def records():
    return [
        ImageRecord(str(p), int(p.parent.name), int(p.parent.parent.name[3:]),
                    "thermal" if p.parent.parent.name in ("cam3", "cam6") else "visible", "train")
        for p in sorted(SAMPLE.glob("cam*/*/*.jpg"))
    ]


def metrics_of(model, tmp_path, name):
    feats = extract_features(model, records(), tmp_path / f"{name}.h5", device="cpu")
    import h5py

    with h5py.File(feats) as f:
        x, pid, cam, mod = f["features"][()], f["pid"][()], f["camera"][()], f["modality"][()]
    q, g = mod == 1, mod == 0
    dist = ((x[q][:, None] - x[g][None]) ** 2).sum(-1)
    return x, rank_metrics(dist, pid[q], pid[g], cam[q], cam[g], protocol="sysu_mm01")


def test_killed_training_resumes_and_matches_uninterrupted_run(tmp_path, caplog):
    cache = write_cache(tmp_path / "cache.h5", records(), (32, 16))
    reference = train_reid(cache, tmp_path / "reference", SETTINGS, device="cpu", seed=5)

    out = tmp_path / "killed"
    settings_json = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(SETTINGS).items()})
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(cache), str(out), settings_json],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    losses = out / "losses.csv"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if losses.exists() and len(pd.read_csv(losses)) >= 2:
            break
        time.sleep(0.05)
    assert child.poll() is None, "training ended before it could be killed: " + child.stderr.read().decode()[-2000:]
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"]
    assert 2 <= done < SETTINGS.epochs and not (out / "model.pt").exists()

    logger = logging.getLogger("test_reid_kill")
    with caplog.at_level(logging.INFO, logger="test_reid_kill"):
        resumed = train_reid(cache, out, SETTINGS, device="cpu", seed=5, logger=logger)
    assert f"resuming from epoch {done + 1}" in caplog.text

    ref_w = torch.load(reference, weights_only=True)["state_dict"]
    res_w = torch.load(resumed, weights_only=True)["state_dict"]
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)
    fa, ma = metrics_of(reference, tmp_path, "a")
    fb, mb = metrics_of(resumed, tmp_path, "b")
    assert np.array_equal(fa, fb)
    assert np.array_equal(ma.cmc, mb.cmc) and ma.mAP == mb.mAP and ma.mINP == mb.mINP
