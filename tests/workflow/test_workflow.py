"""The workflow end to end on the real SYSU-MM01 sample images, and its partial reruns.

One tiny run on ``../shared/data/sysu_mm01_sample`` (``demo_runs.SHARED_RUNS["sysu"]``, made once
per session) is shared by the tests that inspect its results or dry-run reruns against it.
"""

from __future__ import annotations

import base64
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import RUN, planned_jobs, run_snakemake, write_config
from demo_runs import finished_run

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def sysu_run(tmp_path_factory, shared_data):
    """The shared SYSU-MM01 sample run (demo_runs.SHARED_RUNS, started when the session starts)."""
    workdir = finished_run(tmp_path_factory, "sysu")
    return workdir, workdir / "config.yaml"


def test_sample_run_reports_sysu_row_with_metrics_in_range(sysu_run):
    workdir, _ = sysu_run
    table = pd.read_csv(workdir / "results" / "report" / "table.csv")
    rows = table[(table["section"] == "this run") & table["table"].str.contains("all-search single-shot")]
    assert set(rows["method"]) == {"ce2l [sysu]", "baseline [sysu]"}
    for metric in ("r=1", "r=10", "r=20", "mAP"):
        values = rows[f"SYSU-MM01 {metric} mean"].astype(float)
        assert values.notna().all() and ((values >= 0) & (values <= 100)).all(), metric
    md = (workdir / "results" / "report" / "table.md").read_text()
    assert "SYSU-MM01" in md and "ce2l" in md


def test_conversion_fidelity_on_registered_pairs_is_in_the_report(sysu_run):
    workdir, _ = sysu_run
    fidelity = pd.read_csv(workdir / "results" / "fidelity" / "fidelity.csv")
    assert len(fidelity) == 2 and fidelity["n_pairs"].eq(12).all()
    assert fidelity[["l1", "psnr_db", "ssim"]].notna().all().all()
    md = (workdir / "results" / "report" / "table.md").read_text()
    assert "Conversion fidelity" in md and "G_rgb2ir" in md


def test_every_stage_left_its_artifacts(sysu_run):
    workdir, _ = sysu_run
    trial = workdir / "results" / "sysu" / "trial1"
    for rel in ["cyclegan/generator.pt", "cyclegan/samples.png", "cache.h5", "ce2l/seed0/model.pt",
                "ce2l/seed0/features.h5", "ce2l/seed0/metrics.json", "baseline/seed0/metrics.json",
                "ce2l/seed0/losses.pdf"]:
        assert (trial / rel).stat().st_size > 0, rel
    for rule in ["index_dataset", "make_splits", "train_cyclegan", "build_cache"]:
        assert list((workdir / "results" / "logs").rglob(f"{rule}.log")), rule
        assert list((workdir / "results" / "benchmarks").rglob(f"{rule}.tsv")), rule


# Each config section: a changed setting, the jobs it must rerun (with their counts for the
# two methods) and the ones it must leave alone.
SECTION_CHANGES = {
    "cyclegan": (("cyclegan", "lambda_cycle", 5.0),
                 {"train_cyclegan": 1, "build_cache": 1, "train_reid": 2, "train_cyclegan_pairs": 1},
                 {"index_dataset", "make_splits"}),
    "cache": (("cache", "batch_size", 8), {"build_cache": 1, "train_reid": 2, "extract": 2},
              {"train_cyclegan", "make_splits", "train_cyclegan_pairs"}),
    "extract": (("extract", "batch_size", 8), {"extract": 2, "evaluate": 2, "report": 1},
                {"train_reid", "build_cache", "train_cyclegan"}),
    "evaluation": (("evaluation", "n_gallery_trials", 2), {"evaluate": 2, "report": 1},
                   {"extract", "train_reid", "build_cache"}),
    "one method": (("methods", "baseline", {"family": "reid", "train_sets": ["real_visible", "real_thermal"],
                                            "lsr_sets": [], "weight_intra": 0.0, "lr": 0.0005}),
                   {"train_reid": 1, "extract": 1, "evaluate": 1, "report": 1},
                   {"build_cache", "train_cyclegan"}),
    "a section no method uses": (("aligngan", "joint_iterations", 7), {}, {"train_reid", "extract", "evaluate", "report"}),
    "datasets": (("datasets", "sysu", None), {"index_dataset": 1, "make_splits": 1}, set()),
    "seed": (("seed", None, 1), {"train_cyclegan": 1, "train_reid": 2}, {"index_dataset", "make_splits"}),
}


def _section_change(section):
    (key, sub, value), _, _ = SECTION_CHANGES[section]

    def edit(config, shared_data):
        if key == "datasets":
            config["datasets"]["sysu"]["verify_images"] = False  # read by index_dataset only
        elif sub is None:
            config[key] = value
        else:
            config.setdefault(key, {})[sub] = value
    return edit


def _set_reid_lr(config, shared_data):
    config["reid"]["lr"] = 0.0005  # tiny.yaml leaves lr at the paper value 0.001


def _write_trials(config, shared_data):
    config["datasets"]["sysu"]["trials"] = [1]  # the default, written out: evaluate does not read it


def _add_test_id_indoor(config, shared_data):
    _write_trials(config, shared_data)
    indoor = shared_data / "sysu_mm01_protocol" / "evaluation" / "test_id_indoor.mat"
    config["datasets"]["sysu"]["test_id_indoor"] = str(indoor)  # a new input file of evaluate


# Dry runs against the finished run: name -> (an edit of its config or None, extra arguments).
DRY_RUNS = {
    "forcerun train_reid": (None, ("--forcerun", "train_reid")),
    "forcerun evaluate": (None, ("--forcerun", "evaluate")),
    "until train_cyclegan": (None, ("--forcerun", "make_splits", "--until", "train_cyclegan")),
    "reid lr": (_set_reid_lr, ()),
    "trials written out": (_write_trials, ()),
    "test_id_indoor": (_add_test_id_indoor, ()),
    **{f"section {name}": (_section_change(name), ()) for name in SECTION_CHANGES},
}


@pytest.fixture(scope="module")
def plans(sysu_run, tmp_path_factory, shared_data):
    """The dry run of each of :data:`DRY_RUNS` against the finished run (:func:`_jobs` reads its plan). The dry runs only
    read the run, so they run two at a time (each Snakemake is one thread; 2 cores)."""
    workdir, config = sysu_run
    folder = tmp_path_factory.mktemp("changed_configs")
    argv = {}
    for i, (name, (edit, extra)) in enumerate(DRY_RUNS.items()):
        path = config
        if edit is not None:
            changed = yaml.safe_load(Path(config).read_text())
            edit(changed, shared_data)
            path = folder / f"changed{i}.yaml"
            path.write_text(yaml.safe_dump(changed))
        argv[name] = ("-n", "--configfile", str(path), *extra)
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = pool.map(lambda args: run_snakemake(workdir, *args, check=False), argv.values())
        return dict(zip(argv, procs))


def _jobs(plans, name: str) -> dict[str, int]:
    proc = plans[name]
    assert proc.returncode == 0, (name, proc.stdout + proc.stderr)
    return planned_jobs(proc)


def test_forcerun_train_reid_reruns_downstream_only(plans):
    jobs = _jobs(plans, "forcerun train_reid")
    assert jobs["train_reid"] == 2 and jobs["extract"] == 2 and jobs["evaluate"] == 2 and jobs["report"] == 1
    assert "train_cyclegan" not in jobs and "build_cache" not in jobs


def test_forcerun_evaluate_reruns_evaluation_and_report_only(plans):
    jobs = _jobs(plans, "forcerun evaluate")
    assert set(jobs) == {"evaluate", "report", "all"} or set(jobs) == {"evaluate", "report"}


def test_changed_reid_setting_reruns_training_not_conversion(plans):
    jobs = _jobs(plans, "reid lr")
    assert jobs.get("train_reid") == 2 and jobs.get("report") == 1
    assert "train_cyclegan" not in jobs and "build_cache" not in jobs


@pytest.mark.parametrize("section", list(SECTION_CHANGES))
def test_a_changed_setting_reruns_the_stages_that_read_it_and_no_others(plans, section):
    _, rerun, untouched = SECTION_CHANGES[section]
    jobs = _jobs(plans, f"section {section}")
    for rule, count in rerun.items():
        assert jobs.get(rule) == count, (section, rule, jobs)
    if not rerun:
        assert not jobs, (section, jobs)
    assert not untouched & set(jobs), (section, jobs)


def test_evaluate_reruns_for_its_protocol_files_not_other_dataset_keys(plans):
    jobs = _jobs(plans, "trials written out")
    assert "evaluate" not in jobs and "report" not in jobs, jobs
    jobs = _jobs(plans, "test_id_indoor")
    assert jobs.get("evaluate") == 2 and jobs.get("report") == 1
    assert "extract" not in jobs and "train_reid" not in jobs


def test_until_train_cyclegan_stops_there(plans):
    jobs = _jobs(plans, "until train_cyclegan")
    assert "train_cyclegan" in jobs
    assert not {"build_cache", "train_reid", "extract", "evaluate", "report"} & set(jobs)


def test_cache_names_its_generator_and_a_new_generator_rebuilds_it(sysu_run):
    import torch

    from rgbir_reid.data.cache import read_cache_attrs
    from rgbir_reid.io import sha256_file

    workdir, config = sysu_run
    trial = workdir / "results" / "sysu" / "trial1"
    generator = trial / "cyclegan" / "generator.pt"
    assert read_cache_attrs(trial / "cache.h5")["generator_sha256"] == sha256_file(generator)
    backup = generator.read_bytes()
    checkpoint = torch.load(generator, weights_only=True)
    first = next(iter(checkpoint["G_rgb2ir"]))
    checkpoint["G_rgb2ir"][first] = checkpoint["G_rgb2ir"][first] + 0.01  # "retrained" generator
    torch.save(checkpoint, generator)
    try:
        jobs = planned_jobs(run_snakemake(workdir, "-n", "--configfile", str(config)))
    finally:
        generator.write_bytes(backup)
    assert jobs.get("build_cache") == 1 and jobs.get("train_reid") == 2
    assert "train_cyclegan" not in jobs


DAMAGES = ["no_exp", "no_cameras", "corrupt_image"]


@pytest.fixture(scope="module")
def broken_roots(tmp_path_factory, shared_data):
    """One run over three damaged copies of the sample, one dataset each (--keep-going: every
    dataset's indexing fails on its own); damage -> (culprit path, word its error must name)."""
    base = tmp_path_factory.mktemp("broken_roots")
    datasets, culprits = {}, {}
    for damage in DAMAGES:
        root = base / damage / "SYSU-MM01"
        shutil.copytree(shared_data / "sysu_mm01_sample", root)
        for p in root.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        if damage == "no_exp":
            shutil.rmtree(root / "exp")
            culprits[damage] = (root, "exp")
        elif damage == "no_cameras":
            for cam in root.glob("cam*"):
                shutil.rmtree(cam)
            culprits[damage] = (root, "cam")
        else:
            culprit = root / "cam3" / "0004" / "0001.jpg"
            culprit.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
            culprits[damage] = (culprit, "0001.jpg")
        datasets[damage] = {"format": "sysu_mm01", "root": str(root)}
    workdir = base / "work"
    workdir.mkdir()
    config = write_config(workdir, datasets)
    proc = run_snakemake(workdir, *RUN, "--keep-going", "--configfile", str(config), check=False)
    return workdir, proc, culprits


@pytest.mark.parametrize("damage", DAMAGES)
def test_broken_dataset_root_stops_with_error_naming_path(damage, broken_roots):
    workdir, proc, culprits = broken_roots
    culprit, expected = culprits[damage]
    assert proc.returncode != 0
    log = (workdir / "results" / "logs" / damage / "index_dataset.log").read_text()
    assert str(culprit) in log and expected in log
    assert str(culprit) in proc.stderr + proc.stdout
    assert not (workdir / "results" / damage / "manifest.csv").exists()
    assert not list((workdir / "results").rglob("*.tmp-*"))
    # Nothing after indexing ran for any dataset: each stopped at its own root.
    assert not list((workdir / "results").glob("*/splits"))


def test_html_report_holds_tables_and_figures(sysu_run):
    workdir, config = sysu_run
    html = workdir / "results" / "report.html"
    run_snakemake(workdir, "--configfile", str(config), "--report", str(html))
    text = html.read_text(errors="replace")
    for name in ["table.md", "cmc.png", "samples.png", "losses.png"]:
        assert name in text, name
    # The captions name the table's sections too, so check the embedded file itself.
    m = re.search(r"filename=table\.md;base64,([A-Za-z0-9+/=\\]+)", text)
    assert m, "table.md is not embedded in the report"
    embedded = base64.b64decode(m.group(1).replace("\\", "")).decode("utf-8")
    assert embedded == (workdir / "results" / "report" / "table.md").read_text(encoding="utf-8")
    assert "| ce2l [sysu] |" in embedded and "Conversion fidelity" in embedded
