"""``benchmarks/gpu_check.py`` on a CPU: forced to tiny sizes, it still runs every training stage of
the SYSU-MM01 paper config through the library's training functions and prints finite figures.

The figures themselves (GPU speed and memory) need a GPU; this only keeps the script working.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest
import yaml

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.py"
CONFIG = REPO / "workflow" / "configs" / "sysu_mm01.yaml"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gpu_check", None)


def test_cpu_run_is_tiny_and_gives_every_stage_finite_figures(gpu_check, tmp_path, capsys):
    out = tmp_path / "figures.json"
    # No --tiny: on a CPU the script must choose the tiny sizes itself.
    assert gpu_check.main(["--device", "cpu", "--json", str(out), "--workdir", str(tmp_path / "work")]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    assert figures["tiny"] is True and figures["device"] == "cpu"
    assert figures["failed"] == [] and figures["skipped"] == []

    config = yaml.safe_load(CONFIG.read_text())
    families = {m: e["family"] for m, e in config["methods"].items()}
    expected = ["train_cyclegan"]
    expected += [f"train_aligngan {m} / {s}" for m, f in families.items() if f == "aligngan"
                 for s in ("feature_warmup", "pixel_warmup", "joint")]
    expected += [f"train_reid {m}" for m, f in families.items() if f == "reid"]
    rows = {r["stage"]: r for r in figures["rows"]}
    assert list(rows) == expected
    for stage, r in rows.items():
        for key in ("seconds_per_iteration", "images_per_second", "estimated_seconds"):
            assert math.isfinite(r[key]) and r[key] > 0, (stage, key, r[key])
        assert r["images_per_second"] == pytest.approx(r["images_per_iteration"] / r["seconds_per_iteration"])
        assert r["peak_memory_mib"] is None  # no GPU memory to report on a CPU
        assert f"| {stage} |" in printed, stage

    # Full-run lengths, by hand from the config and SYSU-MM01's 22,258 visible + 11,909 thermal
    # training images: CE²L's batch is 64 ids x (1 real + 1 converted) x 2 modalities = 256
    # images over 2 x 34,167 rows -> 267 steps; BDTR 128 over 34,167 -> 267; the ResNet-50
    # baselines 8 x 4 x 2 = 64 over 34,167 -> 534.
    assert rows["train_cyclegan"]["paper_iterations"] == 200_000
    assert rows["train_reid ce2l"]["paper_iterations"] == 60 * 267
    assert rows["train_reid bdtr"]["paper_iterations"] == 60 * 267
    assert rows["train_reid one_stream"]["paper_iterations"] == 60 * 534
    for stage, n in (("feature_warmup", 5000), ("pixel_warmup", 10000), ("joint", 10100)):
        assert rows[f"train_aligngan aligngan / {stage}"]["paper_iterations"] == n
    assert "aligngan total" in printed


def test_stages_past_the_time_limit_are_skipped_and_listed(gpu_check, tmp_path, capsys, monkeypatch):
    # As on a GPU machine whose Python lacks Snakemake: the schema's defaults, and a note saying so.
    monkeypatch.setitem(sys.modules, "snakemake.utils", None)
    out = tmp_path / "figures.json"
    assert gpu_check.main(["--device", "cpu", "--only", "cyclegan", "ce2l", "--max-minutes", "0",
                           "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["skipped"] == ["cyclegan", "ce2l"] and figures["rows"] == []
    printed = capsys.readouterr().out
    assert "skipped (past --max-minutes 0.0): cyclegan, ce2l" in printed
    assert "Snakemake is not installed here" in printed


def test_unknown_stage_is_an_error_naming_it(gpu_check):
    with pytest.raises(SystemExit, match="--only nosuch"):
        gpu_check.main(["--device", "cpu", "--only", "nosuch"])


def test_defaults_without_snakemake_are_the_validated_ones(gpu_check):
    """A GPU machine without Snakemake fills the schema's defaults itself: what the training reads matches."""
    raw = yaml.safe_load(CONFIG.read_text())
    filled = gpu_check.schema_defaults_filled(raw)
    validated = gpu_check.load_config(CONFIG)
    for section in ("methods", "cyclegan", "cache", "reid", "aligngan"):
        assert filled[section] == validated[section], section
    assert "lambda_cycle" not in raw["cyclegan"] and filled["cyclegan"]["lambda_cycle"] == 10.0  # a schema default
