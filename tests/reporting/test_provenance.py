"""Provenance columns: from features.h5 attributes and method settings to table.csv and the HTML table."""

from __future__ import annotations

import pandas as pd

from rgbir_reid.methods import method_settings
from rgbir_reid.reporting.provenance import (
    PROVENANCE_COLUMNS,
    method_config_hash,
    provenance_html,
    row_provenance,
    summarise_provenance,
)
from rgbir_reid.reporting.tables import provenance_records, write_tables

ATTRS = {
    "ce2l": {"family": "reid", "model_sha256": "a" * 64, "flip": False},
    "bdtr": {"family": "reid", "model_sha256": "b" * 64, "flip": True, "test_feature": "pooled"},
    "lomo": {"family": "handcrafted", "descriptor": "lomo"},
}


def config(**ce2l_overrides):
    return {
        "reid": {"lr": 0.1, "epochs": 2, "train_sets": ["real_visible", "real_thermal", "converted_visible"]},
        "handcrafted": {"descriptor": "hog"},
        "methods": {
            "ce2l": {"family": "reid", **ce2l_overrides},
            "bdtr": {"family": "reid", "train_sets": ["real_visible", "real_thermal"]},
            "lomo": {"family": "handcrafted", "descriptor": "lomo"},
        },
    }


def metrics_rows(cfg):
    """Rows as the evaluate stage writes them: one per method and protocol, with its provenance."""
    rows = []
    for method, entry in cfg["methods"].items():
        prov = row_provenance(ATTRS[method], family=entry["family"], settings=method_settings(entry, cfg),
                              version="0.1.0", code_hash="c0de")
        for protocol, r1 in (("regdb visible->thermal", 0.5), ("sysu_mm01 all-search single-shot seeded", 0.3)):
            rows.append({"dataset": protocol.split()[0], "method": method, "trial": 1, "protocol": protocol,
                         "dataset_format": protocol.split()[0], "mode": protocol.split(" ", 1)[1], "gallery_trial": 0,
                         "rank1": r1, "rank10": r1, "rank20": r1, "mAP": r1, "mINP": r1, "rerank": False, **prov})
    return rows


def run_hashes(tmp_path, cfg):
    frame = pd.read_csv(write_tables(metrics_rows(cfg), tmp_path)["csv"], keep_default_na=False)
    run = frame[frame.section == "this run"]
    return dict(zip(run.method, run.config_hash))


def test_changing_one_methods_setting_changes_only_its_config_hash(tmp_path):
    before = run_hashes(tmp_path / "a", config())
    after = run_hashes(tmp_path / "b", config(lr=0.05))
    assert set(before) == {"ce2l", "bdtr", "lomo"}
    assert len(set(before.values())) == 3 and all(len(h) == 12 for h in before.values())
    assert after["ce2l"] != before["ce2l"]
    assert after["bdtr"] == before["bdtr"] and after["lomo"] == before["lomo"]
    # The resolved settings decide, not how they are written: the default spelled out is no change.
    assert run_hashes(tmp_path / "c", config(lr=0.1)) == before


def test_config_hash_ignores_key_order_and_sees_the_family():
    assert method_config_hash("reid", {"lr": 0.1, "epochs": 2}) == method_config_hash("reid", {"epochs": 2, "lr": 0.1})
    assert method_config_hash("reid", {"lr": 0.1}) != method_config_hash("aligngan", {"lr": 0.1})


def test_csv_carries_every_provenance_column(tmp_path):
    frame = pd.read_csv(write_tables(metrics_rows(config()), tmp_path)["csv"], keep_default_na=False)
    assert list(frame.columns[-len(PROVENANCE_COLUMNS):]) == list(PROVENANCE_COLUMNS)
    run = frame[frame.section == "this run"].set_index("method")
    assert run.loc["ce2l", "model_sha256"] == "a" * 64 and run.loc["lomo", "model_sha256"] == ""
    # ce2l's file predates the test_feature attribute: its family's feature, the BN embedding.
    assert [run.loc[m, "test_feature"] for m in ("ce2l", "bdtr", "lomo")] == ["bnneck", "pooled", "lomo"]
    assert (run.loc["ce2l", "flip"], run.loc["bdtr", "flip"], run.loc["lomo", "flip"]) == ("off", "on", "off")
    assert set(run.version) == {"0.1.0"} and set(run.code_hash) == {"c0de"} and set(run.rerank) == {"off"}
    assert (frame[frame.section != "this run"][list(PROVENANCE_COLUMNS)] == "").all().all()


def test_several_trials_list_each_model_once_in_order():
    rows = [{"model_sha256": s, "config_hash": "h", "rerank": False} for s in ("m1", "m2", "m1")]
    cells = summarise_provenance(rows)
    assert cells["model_sha256"] == "m1 m2" and cells["config_hash"] == "h" and cells["version"] == ""
    assert summarise_provenance([{"rerank": True}])["rerank"] == "on"


def test_html_table_lists_each_method_and_rerank(tmp_path):
    rows = metrics_rows(config())
    rows.append({**rows[0], "rerank": True})
    records = provenance_records(rows)
    assert [(r["dataset"], r["method"], r["rerank"]) for r in records] == [
        ("regdb", "ce2l", "off"), ("sysu_mm01", "ce2l", "off"), ("regdb", "bdtr", "off"),
        ("sysu_mm01", "bdtr", "off"), ("regdb", "lomo", "off"), ("sysu_mm01", "lomo", "off"), ("regdb", "ce2l +rerank", "on")]
    page = provenance_html(records)
    assert page.count("<tr>") == len(records) + 1 and "<th>config_hash</th>" in page and "a" * 64 in page
