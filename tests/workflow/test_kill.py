"""Kill at any point, rerun, same result: one demo workdir is SIGKILLed part way through every
stage in turn (the whole snakemake process group, as a lost node or an OOM kill would), unlocked
and started again; once it finishes, its results equal those of an uninterrupted run with the
same seed (:func:`demo_runs.differences`) and no temporary file is left behind.

The same comparison is the "same seed, same bytes" check: the two runs share only the seed and
the config, and give identical splits, cache, generator, model, features, metrics and report
(bytes where the format allows, values for HDF5 and torch files; the model and generator files
byte for byte). One run serves both so that ``make test`` pays for two tiny runs, not three.

A stage is killed when something shows its job has begun its work: a temporary output (make_demo,
build_cache), the first checkpoint (train_cyclegan, train_reid: resumed, not started over, on
the rerun), the job's log, which the script opens before it reads its inputs (index_dataset,
make_splits, extract, evaluate) or, for the report, its first finished output: the tables are
there, the figures not yet, so Snakemake holds finished-looking outputs of an unfinished job.

Every run here is a plain ``snakemake --cores 2`` as a reader types it: the default workflow
profile (``profiles/default``, found beside the Snakefile) is what lets the restarts go on
(``rerun-incomplete``); without it the restart after the report's kill stops
(``test_restart_without_the_default_profile_stops_at_the_incomplete_report``).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from conftest import REPO, RUN, SNAKEMAKE, run_snakemake
from demo_runs import differences, finished_run, start_run, temporary_leftovers, write_demo_config

pytestmark = pytest.mark.workflow

TRIAL = "results/demo/trial1"
METHOD = f"{TRIAL}/ce2l/seed0"  # the tiny config has no seeds: its one seed, 0
# A glob every 10 ms costs next to nothing and catches the short jobs (make_splits writes its
# split a few tenths of a second after opening its log).
POLL_S = 0.01
# Tries per stage to catch its job under way (a short job can outrun the poll; see killed_run).
KILL_TRIES = 3


class Stage(NamedTuple):
    rule: str
    trigger: str  # glob under the workdir: once it matches, the job is under way
    outputs: tuple[str, ...]  # the job's declared outputs: not all there after the kill = killed part way


# In the order the demo run reaches them (a chain: one dataset, one trial, one method).
STAGES = [
    Stage("make_demo", "results/demo/.demo_data.tmp-*", ("results/demo/demo_data",)),
    Stage("index_dataset", "results/logs/demo/index_dataset.log",
          ("results/demo/manifest.csv", "results/demo/index_warnings.txt")),
    Stage("make_splits", "results/logs/demo/trial1/make_splits.log", ("results/demo/splits/trial1.csv",)),
    Stage("train_cyclegan", f"{TRIAL}/cyclegan/checkpoints/last.pt",
          tuple(f"{TRIAL}/cyclegan/{f}" for f in ("generator.pt", "samples.png", "losses.csv"))),
    Stage("build_cache", f"{TRIAL}/cache.tmp-*.h5", (f"{TRIAL}/cache.h5",)),
    Stage("train_reid", f"{METHOD}/checkpoints/last.pt",
          tuple(f"{METHOD}/{f}" for f in ("model.pt", "losses.csv", "losses.png", "losses.pdf"))),
    Stage("extract", "results/logs/demo/trial1/ce2l/seed0/extract.log", (f"{METHOD}/features.h5",)),
    Stage("evaluate", "results/logs/demo/trial1/ce2l/seed0/evaluate.log", (f"{METHOD}/metrics.json",)),
    Stage("report", "results/report/table.csv",
          tuple(f"results/report/{f}" for f in ("table.md", "table.csv", "table.tex", "cmc.png", "cmc.pdf"))),
]
# Training jobs that must pick up their checkpoint after the kill, and the line that says so.
RESUMED = {
    "train_cyclegan": ("results/logs/demo/trial1/train_cyclegan.log", "resuming from iteration"),
    "train_reid": ("results/logs/demo/trial1/ce2l/seed0/train_reid.log", "resuming from epoch"),
}
# The killed runs are plain (conftest.RUN, the reference run's options): no --workflow-profile
# and no --rerun-incomplete, which the default profile gives.


def _matches(workdir: Path, pattern: str) -> bool:
    return bool(glob.glob(str(workdir / pattern)))


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the job processes too: none may still write
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(POLL_S)


def _plain(workdir: Path, *args: str) -> list[str]:
    """A plain snakemake command line (the default workflow profile applies)."""
    return [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]


def _run_until(workdir: Path, config: Path, stage: Stage, log: Path) -> bool:
    """Start the workflow and SIGKILL it once ``stage`` is under way; True if it was killed
    before the job finished (False: the run ended, or the job outran the poll)."""
    cmd = _plain(workdir, *RUN, "--configfile", str(config))
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 900
        while not _matches(workdir, stage.trigger):
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
        _kill_group(proc)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    return not all((workdir / p).exists() for p in stage.outputs)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """The reference run, and a run of the same config killed part way through every stage; the
    dry run without the default profile and the plain restart after the last kill."""
    start_run(tmp_path_factory, "reference")  # under way since the session started, as a rule
    workdir = tmp_path_factory.mktemp("demo_killed")
    config = write_demo_config(workdir)
    killed, left = [], {}  # rules killed part way; what each kill left named as a temporary
    for stage in STAGES:
        # A short job (make_splits, the report) can finish between two polls on a fast machine:
        # then its outputs and trigger are removed, so that the next try runs it again, up to 3 tries.
        for attempt in range(KILL_TRIES):
            was_killed = _run_until(workdir, config, stage, workdir / f"snakemake_{stage.rule}_{attempt}.out")
            if was_killed:
                killed.append(stage.rule)
                left[stage.rule] = temporary_leftovers(workdir)
            run_snakemake(workdir, "--unlock")
            if was_killed:
                break
            for path in [*stage.outputs, *glob.glob(str(workdir / stage.trigger))]:
                target = workdir / path
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
    # The report was killed last, after its tables: a run without the profile must refuse to go on.
    without_profile = run_snakemake(workdir, "-n", *RUN, "--configfile", str(config), check=False)
    restart = subprocess.run(_plain(workdir, *RUN, "--configfile", str(config)), capture_output=True, text=True,
                             timeout=900, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert restart.returncode == 0, restart.stdout + restart.stderr
    reference = finished_run(tmp_path_factory, "reference")
    return reference, workdir, killed, left, without_profile, restart


def test_every_stage_was_killed_part_way(killed_run):
    _, _, killed, left, *_ = killed_run
    assert killed == [s.rule for s in STAGES]
    # Killed while writing: the half-written demo folder and cache stay until the rerun, so the
    # clean-up that test_no_temporary_leftovers sees is the rerun's, not an untouched run's.
    assert left["make_demo"] and left["build_cache"], left


def test_restart_without_the_default_profile_stops_at_the_incomplete_report(killed_run):
    *_, without_profile, _ = killed_run
    out = without_profile.stdout + without_profile.stderr
    assert without_profile.returncode != 0 and "IncompleteFilesException" in out, out
    assert "results/report/table.csv" in out and "--rerun-incomplete" in out


def test_plain_restart_applies_the_default_profile_and_reruns_the_report(killed_run):
    *_, restart = killed_run
    out = restart.stdout + restart.stderr
    assert "Using workflow specific profile" in out and "profiles/default" in out
    # Snakemake 9 reruns incomplete outputs as forced jobs: the report, and nothing before it.
    assert re.search(r"^report\s+1$", out, flags=re.M) and not re.search(r"^train_reid\s+\d", out, flags=re.M), out


def test_killed_training_resumes_from_its_checkpoint(killed_run):
    _, workdir, *_ = killed_run
    for rule, (log, line) in RESUMED.items():
        assert line in (workdir / log).read_text(), rule


def test_rerun_after_kills_gives_the_uninterrupted_result(killed_run):
    reference, workdir, *_ = killed_run
    diffs = differences(reference, workdir)  # features.h5's model_sha256 too: model.pt is the same bytes
    assert not diffs, diffs
    assert (workdir / METHOD / "metrics.json").is_file() and (workdir / "results/report/table.csv").is_file()


def test_no_temporary_leftovers(killed_run):
    _, workdir, *_ = killed_run
    assert temporary_leftovers(workdir) == []


@pytest.mark.parametrize("rel", ["demo/trial1/cyclegan/generator.pt", "demo/trial1/ce2l/seed0/model.pt"])
def test_same_seed_gives_byte_identical_model_files(killed_run, rel):
    # cache.h5 and features.h5 hold each run's absolute image paths: compared by value above
    reference, workdir, *_ = killed_run
    assert (reference / "results" / rel).read_bytes() == (workdir / "results" / rel).read_bytes(), rel


def test_same_seed_runs_compared_every_stage_output(killed_run):
    reference, workdir, *_ = killed_run
    for rel in ["demo/splits/trial1.csv", "demo/trial1/cache.h5", "demo/trial1/ce2l/seed0/features.h5",
                "demo/trial1/ce2l/seed0/metrics.json", "report/table.csv"]:
        assert (reference / "results" / rel).is_file() and (workdir / "results" / rel).is_file(), rel
