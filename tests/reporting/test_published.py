"""Published results: the CE²L comparison table cell for cell, AlignGAN's SYSU-MM01 modes, protocols."""

from __future__ import annotations

import csv
from pathlib import Path

from rgbir_reid.evaluation.protocols import REGDB_DIRECTIONS, SYSU_MODES
from rgbir_reid.reporting.published import CHECKED, PAPER_PROTOCOLS, PUBLISHED_RESULTS, SOURCES, PublishedResult

METRICS = ("r1", "r10", "r20", "mAP")  # column suffixes of the CSV, in PublishedResult's field order
FIELDS = {"r1": "rank1", "r10": "rank10", "r20": "rank20", "mAP": "mAP"}
DATASETS = {"regdb": "regdb", "sysu": "sysu_mm01"}  # CSV column prefix -> dataset format
# CSV method name -> our method name: typeset superscripts, and the BaseLine row named as BDTR.
CE2L_NAMES = {"D^2RL": "D²RL", "BaseLine": "BDTR (CE²L's BaseLine)", "CE^2L": "CE²L"}


def _ce2l_table(shared_data: Path) -> list[dict[str, str]]:
    path = shared_data / "published" / "ce2l_comparison_table.csv"
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _rows(method: str) -> list[PublishedResult]:
    return [r for r in PUBLISHED_RESULTS if r.method == method]


def test_ce2l_table_cell_for_cell(shared_data):
    """Every cell of the shared CSV is the value of the published row of its method, dataset and
    metric; those rows are exactly the CSV's, marked as taken from the CE²L table, in its order."""
    table = _ce2l_table(shared_data)
    assert len(table) == 12 and {"BaseLine", "CE^2L", "D^2RL", "HCML"} <= {row["method"] for row in table}
    expected = []
    for row in table:
        method = CE2L_NAMES.get(row["method"], row["method"])
        for prefix, fmt in DATASETS.items():
            values = tuple(float(row[f"{prefix}_{m}"]) for m in METRICS)
            expected.append((method, fmt, PAPER_PROTOCOLS[fmt], *values))
    methods = {e[0] for e in expected}
    ours = [
        (r.method, r.dataset_format, r.protocol, *(getattr(r, FIELDS[m]) for m in METRICS))
        for r in PUBLISHED_RESULTS
        if r.method in methods
    ]
    # Equal as written (no tolerance): the values are the CSV's digits. No other row of a CE²L-table
    # method (another protocol, a None cell) and none missing.
    assert ours == expected
    assert all(r.checked == "ce2l_table" for r in PUBLISHED_RESULTS if r.method in methods)
    assert all(r.method in methods for r in PUBLISHED_RESULTS if r.checked == "ce2l_table")


def test_ce2l_table_fixed_cells():
    """The cells that were wrong or empty before: HCML's RegDB mAP, CE²L's rank-10/20, the BaseLine row."""
    hcml = {r.dataset_format: r for r in _rows("HCML")}
    assert hcml["regdb"].mAP == 20.80
    ce2l = {r.dataset_format: r for r in _rows("CE²L")}
    assert (ce2l["regdb"].rank10, ce2l["regdb"].rank20, ce2l["sysu_mm01"].rank10, ce2l["sysu_mm01"].rank20) == (72.17, 79.87, 69.83, 82.49)
    assert not any("BaseLine" in r.method and "BDTR" not in r.method for r in PUBLISHED_RESULTS)
    assert {r.source for r in _rows("BDTR (CE²L's BaseLine)")} == {"ye2018bdtr"}
    assert not _rows("BDTR")  # one row per paper result: BDTR is there once, under its CE²L name


def test_aligngan_sysu_modes_only():
    """AlignGAN: its paper's four SYSU-MM01 modes, no RegDB row (its RegDB figures are unconfirmed)."""
    rows = _rows("AlignGAN")
    got = {r.protocol: (r.rank1, r.rank10, r.rank20, r.mAP) for r in rows}
    assert len(got) == len(rows) == 4
    assert got == {
        "sysu_mm01 all-search single-shot": (42.4, 85.0, 93.7, 40.7),
        "sysu_mm01 all-search multi-shot": (51.5, 89.4, 95.7, 33.9),
        "sysu_mm01 indoor-search single-shot": (45.9, 87.6, 94.4, 54.3),
        "sysu_mm01 indoor-search multi-shot": (57.1, 92.7, 97.4, 45.3),
    }
    assert all(r.dataset_format == "sysu_mm01" and r.source == "wang2019aligngan" and r.checked == "paper_table" for r in rows)


def test_published_rows_well_formed():
    """Protocols are those of our metric rows without sampler; keys exist; one row per (method, protocol)."""
    protocols = {f"regdb {d}" for d in REGDB_DIRECTIONS} | {f"sysu_mm01 {mode.replace('/', ' ')}" for mode in SYSU_MODES}
    assert set(PAPER_PROTOCOLS.values()) <= protocols
    for r in PUBLISHED_RESULTS:
        assert r.protocol in protocols and r.protocol.startswith(r.dataset_format + " "), r
        assert r.source in SOURCES and r.checked in CHECKED, r
        assert None not in (r.rank1, r.mAP), r  # every row has its rank-1 and mAP
        # rank-10/20 are left out only where the source gives none (the AGW/CAJ READMEs)
        assert None not in (r.rank10, r.rank20) or r.method in ("AGW", "CAJ"), r
    keys = [(r.method, r.protocol) for r in PUBLISHED_RESULTS]
    assert len(keys) == len(set(keys))


def test_typography_of_names():
    """Names as the CSV spells them, with the superscripts typeset (no "^2" left)."""
    assert _rows("D²RL") and _rows("CE²L")
    assert not any("^" in r.method for r in PUBLISHED_RESULTS)


def test_agw_caj_rows_as_issue_23_quotes_them():
    """AGW and CAJ: rank-1 / mAP / mINP of their code's READMEs (AGW's indoor row marked recalled)."""
    got = {(r.method, r.protocol): (r.rank1, r.mAP, r.mINP, r.source, r.checked) for r in PUBLISHED_RESULTS
           if r.method in ("AGW", "CAJ")}
    assert got == {
        ("AGW", "sysu_mm01 all-search single-shot"): (47.50, 47.65, 35.30, "ye2021agw", "code_readme"),
        ("AGW", "sysu_mm01 indoor-search single-shot"): (54.17, 62.97, 59.23, "ye2021agw", "recalled"),
        ("AGW", "regdb visible->thermal"): (70.05, 66.37, 50.19, "ye2021agw", "code_readme"),
        ("CAJ", "sysu_mm01 all-search single-shot"): (69.88, 66.89, 53.61, "ye2021caj", "code_readme"),
        ("CAJ", "regdb visible->thermal"): (85.03, 79.14, 65.33, "ye2021caj", "code_readme"),
    }
    assert all(r.mINP is None for r in PUBLISHED_RESULTS if r.method not in ("AGW", "CAJ"))
