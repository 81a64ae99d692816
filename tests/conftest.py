"""Shared test fixtures: repository paths, the real data beside the project, snakemake runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# Snakemake 9 applies the workflow profile beside the Snakefile (profiles/default: rerun-incomplete,
# a gpu limit) to every run by itself; the tests' runs say what they want on their command line.
NO_PROFILE = ("--workflow-profile", "none")
# Options of the tests' runs that execute jobs: two jobs at once, one thread each (as `make run`
# on a CPU-only machine). With two threads per job on 2 cores, OpenMP threads spin against each
# other: the tiny CycleGAN job took 3-5x the CPU time (21.4 s against 6.4 s, benchmark files of
# the SYSU sample run). Results depend on the thread count: runs compared with each other use these.
RUN = ("--cores", "2", "--max-threads", "1")
# Workflow settings small enough for a 2-core CPU; the pipeline is the same as a full run.
TINY = yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text())


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The command line running the repository's workflow in ``workdir``, without the default
    workflow profile unless ``args`` name a ``--workflow-profile``."""
    profile = () if "--workflow-profile" in args else NO_PROFILE
    return [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *profile, *args]


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the repository's workflow with ``workdir`` as working directory; output captured
    (:func:`snakemake_command`)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(snakemake_command(workdir, *args), capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_config(workdir: Path, datasets: dict, **sections) -> Path:
    """``workdir/config.yaml``: :data:`TINY` with ``datasets``, and ``sections`` replacing whole sections."""
    config = {**TINY, "datasets": datasets, **sections}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table a dry run prints; empty when nothing is to be done."""
    text = proc.stdout + proc.stderr
    if "Job stats:" not in text:
        assert "Nothing to be done" in text, text  # neither a plan nor an empty one: not a dry run's output
        return {}
    stats = text[text.index("Job stats:"):]
    jobs = {}
    for line in stats.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if not m:
            if jobs:
                break
            continue
        jobs[m.group(1)] = int(m.group(2))
    jobs.pop("total", None)
    return jobs


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the real test data folder {SHARED_DATA} is missing (it sits beside the project)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Unit tests use tiny tensors: one torch thread is faster, and far faster when other
    processes share the cores (OpenMP threads spin against them)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# The fixtures that use each shared finished run of demo_runs.SHARED_RUNS (test_kill.py,
# test_report_outputs.py, test_workflow.py).
SHARED_RUN_USERS = {"reference": {"killed_run", "reranked_run"}, "sysu": {"sysu_run"}}


@pytest.fixture(autouse=True, scope="session")
def shared_runs_in_background(request, tmp_path_factory):
    """Start the finished runs the selected tests share (demo_runs.SHARED_RUNS) in the background
    when the session starts: the unit tests run in this one process on one thread, so the second
    core would otherwise idle until the workflow tests build the runs one after the other. The
    tests that use a run wait for it (demo_runs.finished_run); it is the same run either way."""
    import demo_runs

    needed = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    for name, users in SHARED_RUN_USERS.items():
        if needed & users and SHARED_DATA.is_dir():
            demo_runs.start_run(tmp_path_factory, name)
    yield
    demo_runs.stop_runs()
