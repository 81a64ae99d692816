"""The finished runs that workflow tests share, made once per session, and a comparison of two
runs' results that says which files differ and how.

* ``reference``: a tiny demo run (one method). The demo is generated (make_demo), so the run
  covers every stage: make_demo, index_dataset, make_splits, train_cyclegan, build_cache,
  train_reid, extract, evaluate, report. Used by the kill and reproducibility tests and the
  report tests.
* ``sysu``: the SYSU-MM01 sample (``../shared/data``) with two methods and the conversion
  fidelity on the registered pairs. Used by ``tests/workflow/test_workflow.py``.

``conftest.shared_runs_in_background`` starts the ones the selected tests need when the session
starts (:func:`start_run`); :func:`finished_run` waits for a run, or makes it if none was started.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml

from conftest import RUN, SHARED_DATA, TINY, snakemake_command

DEMO = {"demo": {"format": "demo", "demo": {"n_train_ids": 8, "n_test_ids": 4, "images_per_camera": 2, "height": 32, "width": 16}}}
# One method: every stage runs once, and the run stays at about a minute on 2 cores.
CONFIG = {**TINY, "datasets": DEMO, "methods": {"ce2l": {"family": "reid"}}}
# Bookkeeping of a run, not its results: timings and wall-clock lines differ between runs.
NOT_RESULTS = ("logs", "benchmarks")
# Resume state, not a result: it holds the absolute image paths of its run and the process's
# unseeded global torch RNG state (training draws from seeded generators only).
CHECKPOINTS = "checkpoints"
# Columns of a losses table that measure speed, not what was learnt.
TIMING_COLUMNS = ("images_per_s",)
# Formats that hold the time they were written: compared without it.
PDF_DATES = (b"/CreationDate", b"/ModDate")


def write_demo_config(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return path


def write_sysu_config(workdir: Path) -> Path:
    """:data:`conftest.TINY` on the SYSU-MM01 sample, with the conversion fidelity on the LLVIP pairs."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {**TINY, "datasets": {"sysu": {"format": "sysu_mm01", "root": str(SHARED_DATA / "sysu_mm01_sample")}},
              "conversion_fidelity": {"root": str(SHARED_DATA / "llvip_pairs")}}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# name -> (folder under the session's base temp, config writer)
SHARED_RUNS = {"reference": ("demo_reference", write_demo_config), "sysu": ("sysu_run", write_sysu_config)}
_IN_FLIGHT: dict[str, subprocess.Popen] = {}


def _workdir(tmp_path_factory, name: str) -> Path:
    return tmp_path_factory.getbasetemp() / SHARED_RUNS[name][0]


def start_run(tmp_path_factory, name: str) -> None:
    """Start shared run ``name`` in the background (niced), unless it is finished or under way."""
    workdir = _workdir(tmp_path_factory, name)
    if name in _IN_FLIGHT or (workdir / "finished").exists():
        return
    config = SHARED_RUNS[name][1](workdir)
    with open(workdir / "snakemake.out", "w") as out:
        _IN_FLIGHT[name] = subprocess.Popen(
            snakemake_command(workdir, *RUN, "--configfile", str(config)), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=lambda: os.nice(5))


def finished_run(tmp_path_factory, name: str = "reference") -> Path:
    """The workdir of shared run ``name`` (:data:`SHARED_RUNS`), finished: made once per test
    session (or waited for, when it was started in the background) and then shared."""
    workdir = _workdir(tmp_path_factory, name)
    done = workdir / "finished"
    if not done.exists():
        start_run(tmp_path_factory, name)
        proc = _IN_FLIGHT.pop(name)
        returncode = proc.wait(timeout=1200)
        if returncode != 0:
            log = (workdir / "snakemake.out").read_text(errors="replace")
            raise AssertionError(f"the shared {name} run failed ({returncode}):\n{log[-6000:]}")
        done.touch()
    return workdir


def stop_runs() -> None:
    """Kill the shared runs still under way (a session that ended early), their jobs too."""
    for proc in _IN_FLIGHT.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _IN_FLIGHT.clear()


def result_files(workdir: Path) -> list[Path]:
    """Every file under results/ but logs and benchmarks, relative to results/."""
    results = workdir / "results"
    return sorted(p.relative_to(results) for p in results.rglob("*")
                  if p.is_file() and p.relative_to(results).parts[0] not in NOT_RESULTS
                  and CHECKPOINTS not in p.relative_to(results).parts)


def _same_value(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _h5_differences(a: Path, b: Path, root_a: str, root_b: str, ignore_attrs: tuple[str, ...]) -> list[str]:
    out = []
    with h5py.File(a) as fa, h5py.File(b) as fb:
        if set(fa.keys()) != set(fb.keys()):
            return [f"datasets {sorted(fa.keys())} vs {sorted(fb.keys())}"]
        for key in fa:
            x, y = fa[key][()], fb[key][()]
            if x.dtype.kind == "O":  # paths: the same images under each run's own folder
                x = np.array([v.decode().replace(root_a, "<root>") for v in x], dtype=object)
                y = np.array([v.decode().replace(root_b, "<root>") for v in y], dtype=object)
            if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                out.append(f"dataset {key} differs")
        attrs_a = {k: v for k, v in fa.attrs.items() if k not in ignore_attrs}
        attrs_b = {k: v for k, v in fb.attrs.items() if k not in ignore_attrs}
        if attrs_a.keys() != attrs_b.keys() or any(not np.array_equal(attrs_a[k], attrs_b[k]) for k in attrs_a):
            out.append(f"attributes {attrs_a} vs {attrs_b}")
    return out


def differences(ref: Path, other: Path, *, ignore_attrs: tuple[str, ...] = ()) -> dict[str, str]:
    """``{file: what differs}`` between the results of two workdirs (empty when they agree).

    Checkpoints are left out, and the speed column of ``losses.csv``. Byte for byte where the format allows (CSV, JSON, Markdown, LaTeX, JPEG, PNG, PDF without its
    dates), after replacing each run's own folder in text (the manifest holds absolute paths);
    value for value for torch files (every tensor equal, every other entry equal) and HDF5 files
    (every dataset and attribute but ``ignore_attrs``).
    """
    root_a, root_b = str(ref.resolve()), str(other.resolve())
    files_a, files_b = result_files(ref), result_files(other)
    diffs = {str(p): "missing" for p in files_a if p not in files_b}
    diffs.update({str(p): "not in the reference run" for p in files_b if p not in files_a})
    for rel in (p for p in files_a if p in files_b):
        a, b = ref / "results" / rel, other / "results" / rel
        if rel.suffix == ".pt":
            sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
            if not _same_value(sa, sb):
                diffs[str(rel)] = "values differ"
        elif rel.suffix == ".h5":
            problems = _h5_differences(a, b, root_a, root_b, ignore_attrs)
            if problems:
                diffs[str(rel)] = "; ".join(problems)
        else:
            ba, bb = a.read_bytes(), b.read_bytes()
            if rel.suffix == ".pdf":
                ba, bb = (b"\n".join(line for line in x.split(b"\n") if not line.lstrip().startswith(PDF_DATES))
                          for x in (ba, bb))
            elif rel.suffix in (".csv", ".txt", ".json", ".md", ".tex"):
                ba, bb = ba.replace(root_a.encode(), b"<root>"), bb.replace(root_b.encode(), b"<root>")
                if rel.name == "losses.csv":
                    ba, bb = (_without_timing(x) for x in (ba, bb))
            if ba != bb:
                diffs[str(rel)] = "bytes differ"
    return diffs


def _without_timing(csv: bytes) -> bytes:
    lines = csv.decode().splitlines()
    header = lines[0].split(",") if lines else []
    keep = [i for i, name in enumerate(header) if name not in TIMING_COLUMNS]
    return "\n".join(",".join(line.split(",")[i] for i in keep) for line in lines).encode()


def temporary_leftovers(workdir: Path) -> list[str]:
    """Files or folders named like an unfinished write (``*.tmp-<pid>*``) anywhere under results/."""
    return sorted(str(p.relative_to(workdir)) for p in (workdir / "results").rglob("*.tmp-*"))
