"""The Slurm profile: what the executor plugin submits, run against stub Slurm programs.

``slurm_stubs/slurm_stub.py`` stands in for ``sbatch``, ``srun``, ``sacct``, ``squeue``,
``sacctmgr``, ``scontrol`` and ``sinfo``; each call is logged, and ``sbatch`` runs the
submitted job (the plugin's ``--wrap`` command: a nested Snakemake with the slurm-jobstep
executor, which calls ``srun``) before printing the job id, so outputs appear and the
workflow's later rules are submitted in turn.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, planned_jobs, run_snakemake, write_config

pytestmark = pytest.mark.workflow

PROFILE = REPO / "profiles" / "slurm"
STUB = Path(__file__).resolve().parent / "slurm_stubs" / "slurm_stub.py"
SLURM_PROGRAMS = ["sbatch", "srun", "sacct", "squeue", "sacctmgr", "scontrol", "sinfo"]

GPU_RULES = {"train_cyclegan", "build_cache", "train_cyclegan_pairs", "conversion_fidelity", "train_reid",
             "train_aligngan", "extract"}


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def rules_declaring_a_gpu() -> set[str]:
    """Rules of workflow/rules/*.smk whose ``resources:`` name a gpu."""
    from rgbir_reid.methods import FAMILIES, get_family

    text = "\n".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    blocks = re.split(r"^\s*rule ?(\w*):", text, flags=re.M)[1:]
    rules = set()
    for name, body in zip(blocks[::2], blocks[1::2]):
        if not re.search(r"^\s+gpu=", body, flags=re.M):
            continue
        if name:
            rules.add(name)
        elif 'f"train_{_family}"' in body:  # reid.smk's train rule, one per family that trains
            rules |= {f"train_{f}" for f in FAMILIES if get_family(f).trains}
        else:
            raise AssertionError(f"an unnamed rule declares a gpu: {body[:200]}")
    return rules


def rule_of(sbatch_argv: list[str]) -> str:
    """Rule name from the plugin's ``--comment rule_<rule>[_wildcards_<values>]``."""
    comment = sbatch_argv[sbatch_argv.index("--comment") + 1]
    assert comment.startswith("rule_"), comment
    return comment[len("rule_"):].split("_wildcards_")[0]


def flag(argv: list[str], name: str) -> str | None:
    """Value of ``name=value`` or ``name value`` in ``argv``; None when absent."""
    for i, arg in enumerate(argv):
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
        if arg == name:
            return argv[i + 1]
    return None


@pytest.fixture
def slurm_stubs(tmp_path, monkeypatch):
    """Stub Slurm programs first on PATH; returns a reader of their call log."""
    bin_dir = tmp_path / "slurm_bin"
    bin_dir.mkdir()
    for prog in SLURM_PROGRAMS:
        wrapper = bin_dir / prog
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STUB}" {prog} "$@"\n')
        wrapper.chmod(0o755)
    state = tmp_path / "slurm_state"
    defaults, overrides = profile()["default-resources"], profile()["set-resources"]
    partitions = {defaults["slurm_partition"]} | {r["slurm_partition"] for r in overrides.values() if "slurm_partition" in r}
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(state))
    monkeypatch.setenv("FAKE_SLURM_ACCOUNTS", str(defaults["slurm_account"]))
    monkeypatch.setenv("FAKE_SLURM_PARTITIONS", ",".join(sorted(partitions)))
    # Snakemake run from inside a Slurm job would clean these; a developer's shell may hold them.
    for var in [v for v in os.environ if v.startswith(("SLURM_JOB", "SBATCH_", "SRUN_"))]:
        monkeypatch.delenv(var)

    def calls(prog: str) -> list[list[str]]:
        log = state / "calls.jsonl"
        lines = log.read_text().splitlines() if log.exists() else []
        return [entry["argv"] for entry in map(json.loads, lines) if entry["prog"] == prog]

    return calls


def cpu_request(argv: list[str]) -> dict[str, str]:
    return {name: value for name in ("--cpus-per-task", "--cpus-per-gpu") if (value := flag(argv, name)) is not None}


def expected_cpu_request(resources: dict) -> dict[str, str]:
    """The CPU flag a profile section (default-resources or one rule's set-resources) asks for."""
    if "cpus_per_task" in resources:
        return {"--cpus-per-task": str(resources["cpus_per_task"])}
    return {"--cpus-per-gpu": str(resources["cpus_per_gpu"])}


def slurm_run(workdir: Path, config: Path, *args: str):
    return run_snakemake(
        workdir, "--workflow-profile", str(PROFILE), "--configfile", str(config),
        # the plugin waits 40 s before its first status query by default
        "--slurm-init-seconds-before-status-checks", "1",
        # the stub runs each job here, not on a node with its cpus_per_task: one thread (the
        # CycleGAN job's 8 threads on 2 cores took 10.7 s of CPU time instead of 5.4 s)
        "--max-threads", "1", *args,
        timeout=300,
    )


def sample_config(workdir: Path, shared_data: Path) -> Path:
    """Tiny settings on the SYSU-MM01 sample; a shorter CycleGAN, as only the submissions are checked."""
    cyclegan = {**TINY["cyclegan"], "iterations": 2, "log_every": 1, "checkpoint_every": 2}
    datasets = {"sysu": {"format": "sysu_mm01", "root": str(shared_data / "sysu_mm01_sample")}}
    return write_config(workdir, datasets, cyclegan=cyclegan)


def test_profile_dry_run_plans_every_stage(tmp_path, shared_data):
    config = sample_config(tmp_path, shared_data)
    # As the README gives it: the Slurm profile in place of the default workflow profile.
    proc = run_snakemake(tmp_path, "-n", "--workflow-profile", str(PROFILE), "--configfile", str(config))
    out = proc.stdout + proc.stderr
    assert f"workflow specific profile {PROFILE}" in out
    jobs = planned_jobs(proc)  # the Job stats table (rules with a message: print it instead of "rule x:")
    for rule in ["index_dataset", "make_splits", "train_cyclegan", "build_cache", "train_reid", "extract",
                 "evaluate", "report"]:
        assert jobs.get(rule, 0) >= 1, (rule, jobs)


def test_profile_gives_every_gpu_rule_a_gpu_and_cpus_that_reach_sbatch():
    defaults, overrides = profile()["default-resources"], profile()["set-resources"]
    # Keys are rule names: a typo would silently drop that rule's GPU request.
    assert set(overrides) == rules_declaring_a_gpu() == GPU_RULES
    for rule, resources in overrides.items():
        assert resources["gpu"] == 1, rule
        assert resources["slurm_partition"] != defaults["slurm_partition"], rule
        # The plugin (2.x) lets any cpus_per_task, the default's included, win over cpus_per_gpu.
        assert not ("cpus_per_gpu" in resources and "cpus_per_task" in defaults and "cpus_per_task" not in resources), rule


def test_sbatch_asks_gpus_for_training_and_conversion_rules_only(tmp_path, shared_data, slurm_stubs):
    config = sample_config(tmp_path, shared_data)
    # Up to the CycleGAN: two CPU rules, then a GPU rule that needs their outputs.
    target = "results/sysu/trial1/cyclegan/generator.pt"
    proc = slurm_run(tmp_path, config, target)

    submitted = {}
    for argv in slurm_stubs("sbatch"):
        submitted.setdefault(rule_of(argv), []).append(argv)
    assert set(submitted) == {"index_dataset", "make_splits", "train_cyclegan"}, proc.stderr
    assert all(len(calls) == 1 for calls in submitted.values()), submitted
    assert (tmp_path / target).stat().st_size > 0
    assert (tmp_path / "results" / "sysu" / "splits" / "trial1.csv").stat().st_size > 0

    defaults, gpu_settings = profile()["default-resources"], profile()["set-resources"]["train_cyclegan"]
    (gpu_job,) = submitted["train_cyclegan"]
    assert flag(gpu_job, "--gpus") == "1"
    assert flag(gpu_job, "--gres") is None
    assert flag(gpu_job, "-p") == gpu_settings["slurm_partition"]
    assert flag(gpu_job, "--mem") == str(gpu_settings["mem_mb"])
    assert flag(gpu_job, "-t") == str(gpu_settings["runtime"])
    assert cpu_request(gpu_job) == expected_cpu_request(gpu_settings)
    assert flag(gpu_job, "-A") == defaults["slurm_account"]

    for rule in ["index_dataset", "make_splits"]:
        (cpu_job,) = submitted[rule]
        options = [arg.split("=")[0] for arg in cpu_job if arg.startswith("-") and not arg.startswith("--wrap=")]
        assert not [o for o in options if "gpu" in o or o in ("--gres", "-G")], (rule, options)
        assert flag(cpu_job, "-p") == defaults["slurm_partition"]
        assert flag(cpu_job, "--mem") == str(defaults["mem_mb"])
        assert cpu_request(cpu_job) == expected_cpu_request(defaults)
        assert flag(cpu_job, "--ntasks") == "1"

    # Inside the jobs, the job step runs the rule with srun; only the GPU job's step asks for the GPU.
    steps = slurm_stubs("srun")
    assert len(steps) == 3
    gpu_steps = [argv for argv in steps if flag(argv, "--gpus") == "1"]
    assert len(gpu_steps) == 1 and "train_cyclegan" in " ".join(gpu_steps[0])
    # Status came from sacct, filtered by the run's job name.
    status_queries = slurm_stubs("sacct")
    run_name = flag(gpu_job, "--job-name")
    named = [q for q in status_queries if "--name" in q]
    assert named, status_queries  # else the check below would pass on no query at all
    assert all(flag(q, "--name") == run_name for q in named)
