"""The report with re-ranking switched on, its provenance columns and its ranked lists, on a copy of
the shared finished demo run (tests/demo_runs.py): only evaluate and report run again."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from conftest import RUN, planned_jobs, run_snakemake
from demo_runs import finished_run

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def reranked_run(tmp_path_factory):
    reference = finished_run(tmp_path_factory, "reference")
    workdir = tmp_path_factory.getbasetemp() / "demo_reranked"
    shutil.copytree(reference, workdir, symlinks=True)
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["evaluation"] = {**config.get("evaluation", {}), "rerank": True}
    path = workdir / "rerank.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = run_snakemake(workdir, *RUN, "--configfile", str(path))
    return workdir, path, planned_jobs(proc)


def test_rerank_reruns_evaluation_and_report_only(reranked_run):
    _, _, jobs = reranked_run
    assert {k: v for k, v in jobs.items() if k != "all"} == {"evaluate": 1, "report": 1}


def test_rerank_rows_beside_plain_ones_with_provenance(reranked_run):
    from rgbir_reid import __version__
    from rgbir_reid.io import sha256_file
    from rgbir_reid.code_hash import training_code_hash

    workdir, _, _ = reranked_run
    table = pd.read_csv(workdir / "results/report/table.csv", keep_default_na=False)
    run = table[(table.section == "this run") & table.table.str.contains("all-search single-shot")]
    assert run.method.tolist() == ["ce2l [demo]", "ce2l [demo] +rerank"]
    assert run.rerank.tolist() == ["off", "on"]
    model = sha256_file(workdir / "results/demo/trial1/ce2l/seed0/model.pt")
    for _, row in run.iterrows():
        assert (row.model_sha256, row.version, row.code_hash, row.test_feature, row.flip) == (
            model, __version__, training_code_hash(), "bnneck", "off")
    assert run.config_hash.nunique() == 1 and len(run.config_hash.iloc[0]) == 12
    md = (workdir / "results/report/table.md").read_text(encoding="utf-8")
    assert "| ce2l [demo] +rerank |" in md and "| ce2l [demo] |" in md


def test_ranked_lists_and_provenance_in_the_html_report(reranked_run):
    workdir, config, _ = reranked_run
    figures = sorted(p.name for p in (workdir / "results/report/ranked").glob("*.png"))
    assert figures == [f"demo_ce2l_{m}.png" for m in ("all-search_multi-shot", "all-search_single-shot",
                                                       "indoor-search_multi-shot", "indoor-search_single-shot")]
    html = workdir / "results" / "report.html"
    run_snakemake(workdir, "--configfile", str(config), "--report", str(html))
    text = html.read_text(errors="replace")
    for name in ["provenance.html", *figures, "Ranked lists"]:
        assert name in text, name
