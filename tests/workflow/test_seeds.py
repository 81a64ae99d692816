"""The `seeds:` setting: validated by the schema, one model per training seed in the plan, hand-crafted
methods once, and the one `seed:` as the fallback (dry runs only)."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO, planned_jobs, run_snakemake


def _demo_config(tmp_path, **top):
    """config.yaml with ce2l and hog only, and the top-level keys ``top`` (None: the key removed)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["methods"] = {m: config["methods"][m] for m in ("ce2l", "hog")}
    for key, value in top.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _planned_files(proc):
    """The input and output paths a dry run prints (a training job prints its message instead,
    so its model is seen as an input of `extract`)."""
    found = re.findall(r"(?:input|output): ([^\n]+)", proc.stdout + proc.stderr)
    return set(" ".join(found).replace(",", " ").split())


@pytest.mark.parametrize("seeds", [[], [-1], [0, 0], "0", [0.5]])
def test_bad_seeds_are_an_error_naming_the_key(tmp_path, seeds):
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(_demo_config(tmp_path, seeds=seeds)), check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "seeds" in text and "ValidationError" in text, text[-2000:]


def test_one_model_per_seed_is_planned_and_handcrafted_methods_run_once(tmp_path):
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(_demo_config(tmp_path, seeds=[3, 5])))
    jobs = planned_jobs(proc)
    assert jobs["train_reid"] == 2 and jobs["extract"] == 3 and jobs["evaluate"] == 3, jobs
    outputs = _planned_files(proc)
    run = "results/demo/trial1"
    for seed in (3, 5):
        for name in ("model.pt", "features.h5", "metrics.json"):
            assert f"{run}/ce2l/seed{seed}/{name}" in outputs, (seed, name)
    assert f"{run}/hog/features.h5" in outputs and f"{run}/hog/metrics.json" in outputs
    assert not [o for o in outputs if "/hog/seed" in o or o in (f"{run}/ce2l/model.pt", f"{run}/ce2l/features.h5")]
    # Each training job gets its own seed, and says so in the plan.
    text = proc.stdout + proc.stderr
    assert "train_reid demo trial 1 ce2l seed 3:" in text and "train_reid demo trial 1 ce2l seed 5:" in text
    # Ranked lists: the first seed's model only.
    ranked = re.search(r"rule ranked_lists:\n\s+input: ([^\n]+)", text).group(1).split(", ")
    assert f"{run}/ce2l/seed3/features.h5" in ranked and f"{run}/ce2l/seed5/features.h5" not in ranked


def test_without_seeds_the_one_seed_trains_one_model(tmp_path):
    proc = run_snakemake(tmp_path, "-n", "--configfile", str(_demo_config(tmp_path, seeds=None, seed=7)))
    jobs = planned_jobs(proc)
    assert jobs["train_reid"] == 1 and jobs["extract"] == 2, jobs
    assert "results/demo/trial1/ce2l/seed7/model.pt" in _planned_files(proc)
    assert "train_reid demo trial 1 ce2l seed 7:" in proc.stdout + proc.stderr
