"""Result tables: hand-made rows -> expected formatted cells, published section, missing cells."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rgbir_reid.reporting.published import PUBLISHED_RESULTS, SOURCES
from rgbir_reid.reporting.tables import markdown_table, summarise, write_tables


def _row(dataset, method, protocol, trial, r1, r10, r20, m_ap, minp=0.1, gallery_trial=0, chance=None):
    """A metrics row; ``chance`` = (chance_rank1, chance_mAP), left out (an older metrics file) when None."""
    fmt = "regdb" if protocol.startswith("regdb") else "sysu_mm01"
    row = {
        "dataset": dataset, "method": method, "trial": trial, "dataset_format": fmt, "protocol": protocol,
        "mode": protocol.split(" ", 1)[1], "gallery_trial": gallery_trial, "rank1": r1, "rank10": r10,
        "rank20": r20, "mAP": m_ap, "mINP": minp, "cmc": [r1] * 9 + [r10] * 10 + [r20], "n_query": 10, "n_gallery": 10,
    }
    if chance is not None:
        row.update(chance_rank1=chance[0], chance_mAP=chance[1], chance_mINP=chance[1] / 2)
    return row


ROWS = [
    _row("regdb", "CE2L", "regdb visible->thermal", 0, 0.40, 0.70, 0.80, 0.30, chance=(0.005, 0.02)),
    _row("regdb", "CE2L", "regdb visible->thermal", 1, 0.50, 0.80, 0.90, 0.40, chance=(0.005, 0.03)),
    _row("sysu_mm01", "CE2L", "sysu_mm01 all-search single-shot official", 0, 0.2952, 0.6, 0.7, 0.2843, chance=(0.0104, 0.0321)),
    # Same galleries as the CE2L row above (trial 0, gallery trial 0): the same chance level.
    _row("sysu_mm01", "Baseline", "sysu_mm01 all-search single-shot official", 0, 0.10, 0.2, 0.3, 0.05, gallery_trial=0, chance=(0.0104, 0.0321)),
    _row("sysu_mm01", "Baseline", "sysu_mm01 all-search single-shot official", 0, 0.20, 0.4, 0.5, 0.15, gallery_trial=1, chance=(0.0204, 0.0421)),
    _row("sysu_mm01", "CE2L", "sysu_mm01 indoor-search multi-shot official", 0, 0.5, 0.6, 0.7, 0.4, chance=(0.03, 0.06)),
]


def test_summarise_mean_and_sample_std():
    frame = summarise(ROWS)
    ce2l = frame[(frame.method == "CE2L") & (frame.protocol == "regdb visible->thermal")].iloc[0]
    assert ce2l.n == 2
    assert ce2l.rank1_mean == pytest.approx(0.45)
    assert ce2l.rank1_std == pytest.approx(math.sqrt(0.005))  # sample std of 0.40, 0.50
    single = frame[(frame.method == "CE2L") & (frame.protocol.str.startswith("sysu_mm01 all"))].iloc[0]
    assert single.n == 1 and math.isnan(single.mAP_std)
    assert len(frame) == 4


def test_write_tables_layout(tmp_path):
    paths = write_tables(ROWS, tmp_path)
    md = paths["md"].read_text(encoding="utf-8")
    # Paper table: RegDB v->t beside SYSU-MM01 all-search single-shot, one row per method.
    assert "RegDB r=1 | RegDB r=10 | RegDB r=20 | RegDB mAP | SYSU-MM01 r=1" in md
    ce2l_line = next(line for line in md.splitlines() if line.startswith("| CE2L | 45.00"))
    assert "45.00 ± 7.07" in ce2l_line and "35.00 ± 7.07" in ce2l_line  # RegDB r=1 and mAP
    assert "| 29.52 |" in ce2l_line and "28.43" in ce2l_line  # SYSU single trial: mean only
    base_line = next(line for line in md.splitlines() if line.startswith("| Baseline |"))
    assert base_line.count("–") == 4  # no RegDB results for this method
    assert "15.00 ± 7.07" in base_line  # SYSU r=1 over two gallery trials
    # Other protocols get their own table, with the protocol named.
    assert "## SYSU-MM01 indoor-search multi-shot official" in md
    assert "`sysu_mm01 indoor-search multi-shot official`" in md
    # Published numbers in their own, labelled section with sources.
    assert "### Reported in the papers" in md
    paper_md, indoor_md = md.split("## SYSU-MM01 indoor-search multi-shot official")
    assert "| CE²L | 47.50 | 72.17 | 79.87 | 44.21 | 29.52 | 69.83 | 82.49 | 28.43 | dai_ce2l |" in paper_md
    assert "| BDTR (CE²L's BaseLine) | 33.47 | 58.42 | 67.52 | 31.83 | 17.01 | 55.43 | 71.96 | 19.66 | ye2018bdtr |" in paper_md
    assert "BaseLine (CE²L paper)" not in md
    # AlignGAN: SYSU-MM01 only, each mode's row under the table of that mode and nowhere else.
    aligngan = [line for line in md.splitlines() if line.startswith("| AlignGAN |")]
    assert aligngan == [
        "| AlignGAN | – | – | – | – | 42.40 | 85.00 | 93.70 | 40.70 | wang2019aligngan |",
        "| AlignGAN | 57.10 | 92.70 | 97.40 | 45.30 | wang2019aligngan |",
    ]
    assert aligngan[1] in indoor_md and "### Reported in the papers" in indoor_md
    assert "| CE²L |" not in indoor_md  # the CE²L table has no indoor-search multi-shot column
    assert SOURCES["wang2019aligngan"] in md
    # Chance row: per dataset, each (trial, gallery trial) once, however many methods share it.
    chance_lines = [line for line in md.splitlines() if line.startswith("| chance (random ranking) |")]
    assert chance_lines[0] == "| chance (random ranking) | 0.50 |  |  | 2.50 | 1.54 |  |  | 3.71 |  |"  # SYSU: (1.04 + 2.04) / 2
    assert chance_lines[1] == "| chance (random ranking) | 3.00 |  |  | 6.00 |  |"  # indoor-search multi-shot table
    # The "± over" column: RegDB's std is over its two trials, SYSU-MM01's over Baseline's two gallery trials.
    assert ce2l_line.endswith("| RegDB: 2 RegDB trials; SYSU-MM01: one value |")
    assert base_line.endswith("| 2 gallery trials |")

    csv = pd.read_csv(paths["csv"])
    run = csv[(csv.section == "this run") & (csv.method == "CE2L") & csv.table.str.startswith("RegDB")].iloc[0]
    assert run["RegDB r=1 mean"] == pytest.approx(45.0)
    assert run["RegDB r=1 std"] == pytest.approx(7.0710678, rel=1e-6)
    chance = csv[(csv.section == "chance level") & csv.table.str.startswith("RegDB")].iloc[0]
    assert chance.method == "chance (random ranking)"
    assert chance["SYSU-MM01 r=1 mean"] == pytest.approx(1.54) and math.isnan(chance["SYSU-MM01 r=10 mean"])
    pub = csv[(csv.section == "reported in the papers") & (csv.method == "D²RL")].iloc[0]
    assert pub["SYSU-MM01 r=1 mean"] == pytest.approx(28.9)
    pub = csv[(csv.section == "reported in the papers") & (csv.method == "AlignGAN")]
    assert list(pub.table) == ["RegDB visible->thermal | SYSU-MM01 all-search single-shot official", "SYSU-MM01 indoor-search multi-shot official"]
    assert list(pub["SYSU-MM01 mAP mean"]) == pytest.approx([40.7, 45.3])

    tex = paths["tex"].read_text(encoding="utf-8")
    assert r"45.00 $\pm$ 7.07" in tex and r"\emph{Reported in the papers}" in tex
    assert r"\begin{tabular}" in tex and tex.count(r"\begin{table}") == 2


def test_write_tables_files_exactly(tmp_path):
    """The three files byte for byte: a format change must be deliberate (and change this test).

    The demo row has no chance keys (a metrics file from before they existed): its chance cells are "–"."""
    rows = ROWS[:4] + [_row("demo", "CE2L", "sysu_mm01 all-search single-shot official", 0, 0.3, 0.5, None, 0.2)]
    note = (
        'Row "chance (random ranking)": the r=1 and mAP expected from ranking each query\'s gallery at random, '
        "from its composition (m true matches among n images: r=1 = m/n, AP = (H_n + (m-1)/(n-1) (n - H_n))/n, "
        "H_n the n-th harmonic number), mean over queries and trials."
    )
    paths = write_tables(rows, tmp_path, published=[r for r in PUBLISHED_RESULTS if r.method == "CE²L"])
    heads = " | ".join(f"{d} {m}" for d in ("RegDB", "SYSU-MM01") for m in ("r=1", "r=10", "r=20", "mAP"))
    spread_note = (
        'Column "± over": what each row\'s ± (sample std) is over. "<S> seeds": the method was trained once per '
        "training seed (config key seeds); the mean and std are those of its S per-seed means, each the mean over "
        "that seed's trials and gallery trials. Otherwise (one model per trial, or a method that does not train): "
        "the std over SYSU-MM01's gallery trials of one model, or over RegDB's trials, each its own model."
    )
    md = [
        "# Results",
        "",
        "Rank-k (r=k) and mAP in %, mean ± std. Protocol named above each table.",
        "",
        spread_note,
        "",
        note,
        "",
        "## RegDB visible->thermal | SYSU-MM01 all-search single-shot official",
        "",
        "Protocols: RegDB: `regdb visible->thermal`; SYSU-MM01: `sysu_mm01 all-search single-shot official`",
        "",
        f"| Method | {heads} | ± over |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        "| CE2L | 45.00 ± 7.07 | 75.00 ± 7.07 | 85.00 ± 7.07 | 35.00 ± 7.07 | 29.52 | 60.00 | 70.00 | 28.43 "
        "| RegDB: 2 RegDB trials; SYSU-MM01: one value |",
        "| Baseline | – | – | – | – | 10.00 | 20.00 | 30.00 | 5.00 | one value |",
        "| CE2L [demo] | – | – | – | – | 30.00 | 50.00 | – | 20.00 | one value |",
        "| chance (random ranking) | 0.50 |  |  | 2.50 | 1.04 |  |  | 3.21 |  |",
        "| chance (random ranking) [demo] | – |  |  | – | – |  |  | – |  |",
        "",
        "### Reported in the papers",
        "",
        "Numbers as published (no std); sources below. – = not filled in.",
        "",
        f"| Method | {heads} | Source |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        "| CE²L | 47.50 | 72.17 | 79.87 | 44.21 | 29.52 | 69.83 | 82.49 | 28.43 | dai_ce2l |",
        "",
        "## Sources",
        "",
        f"- `dai_ce2l`: {SOURCES['dai_ce2l']}",
        "",
    ]
    assert paths["md"].read_text(encoding="utf-8") == "\n".join(md)
    table = "RegDB visible->thermal | SYSU-MM01 all-search single-shot official"
    csv = [
        "table,section,method,source," + ",".join(f"{h} {s}" for h in heads.split(" | ") for s in ("mean", "std"))
        + ",± over,config_hash,seeds,model_sha256,version,code_hash,test_feature,flip,rerank",
        # The spread, then provenance, last: these rows carry no provenance but their re-ranking flag (off).
        f"{table},this run,CE2L,,45.0,7.0710678118654755,75.0,7.0710678118654755,85.0,7.0710678118654755,"
        "35.0,7.0710678118654755,29.520000000000003,,60.0,,70.0,,28.43,,RegDB: 2 RegDB trials; SYSU-MM01: one value,,,,,,,,off",
        f"{table},this run,Baseline,,,,,,,,,,10.0,,20.0,,30.0,,5.0,,one value,,,,,,,,off",
        f"{table},this run,CE2L [demo],,,,,,,,,,30.0,,50.0,,,,20.0,,one value,,,,,,,,off",
        f"{table},chance level,chance (random ranking),,0.5,,,,,,2.5,,1.04,,,,,,3.2099999999999995,,,,,,,,,,",
        f"{table},chance level,chance (random ranking) [demo],,,,,,,,,,,,,,,,,,,,,,,,,,",
        f"{table},reported in the papers,CE²L,dai_ce2l,47.5,,72.17,,79.87,,44.21,,29.52,,69.83,,82.49,,28.43,,,,,,,,,,",
        "",
    ]
    assert paths["csv"].read_text(encoding="utf-8") == "\n".join(csv)
    tex = [
        "% Generated by rgbir_reid.reporting.tables.write_tables; rank-k and mAP in %.",
        "% " + spread_note,
        "% " + note,
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{RegDB visible$\rightarrow$thermal | SYSU-MM01 all-search single-shot official; "
        r"last rows: chance level (r=1 and mAP expected from a random ranking)}",
        r"\begin{tabular}{lrrrrrrrrl}",
        r"\hline",
        r"Method & \multicolumn{4}{c}{RegDB} & \multicolumn{4}{c}{SYSU-MM01} & $\pm$ over \\",
        r" & r=1 & r=10 & r=20 & mAP & r=1 & r=10 & r=20 & mAP &  \\",
        r"\hline",
        r"CE2L & 45.00 $\pm$ 7.07 & 75.00 $\pm$ 7.07 & 85.00 $\pm$ 7.07 & 35.00 $\pm$ 7.07 & 29.52 & 60.00 & 70.00 & 28.43 "
        r"& RegDB: 2 RegDB trials; SYSU-MM01: one value \\",
        r"Baseline & -- & -- & -- & -- & 10.00 & 20.00 & 30.00 & 5.00 & one value \\",
        r"CE2L [demo] & -- & -- & -- & -- & 30.00 & 50.00 & -- & 20.00 & one value \\",
        r"\hline",
        r"chance (random ranking) & 0.50 &  &  & 2.50 & 1.04 &  &  & 3.21 &  \\",
        r"chance (random ranking) [demo] & -- &  &  & -- & -- &  &  & -- &  \\",
        r"\hline",
        r"\multicolumn{10}{l}{\emph{Reported in the papers}} \\",
        r"\hline",
        r"CE\textsuperscript{2}L (dai\_ce2l) & 47.50 & 72.17 & 79.87 & 44.21 & 29.52 & 69.83 & 82.49 & 28.43 &  \\",
        r"\hline",
        r"\end{tabular}",
        r"\end{table}",
        "",
    ]
    assert paths["tex"].read_text(encoding="utf-8") == "\n".join(tex)


def test_markdown_table_lines():
    assert markdown_table(["a", "b"], [["1", "x"], ["2", "y"]]) == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]
    assert markdown_table(["a", "b"], [], "lr") == ["| a | b |", "|---|---:|"]


def test_tables_without_any_results(tmp_path):
    md = write_tables([], tmp_path)["md"].read_text(encoding="utf-8")
    assert "(no results)" in md and "### Reported in the papers" in md


def test_missing_key_is_reported():
    with pytest.raises(ValueError, match="lacks keys"):
        summarise([{"protocol": "regdb visible->thermal"}])


def test_published_data_is_consistent():
    for res in PUBLISHED_RESULTS:
        assert res.source in SOURCES
        assert res.dataset_format in ("regdb", "sysu_mm01")
        for v in (res.rank1, res.rank10, res.rank20, res.mAP):
            assert v is None or 0 <= v <= 100
        if None not in (res.rank1, res.rank10, res.rank20):
            assert res.rank1 <= res.rank10 <= res.rank20


def test_metrics_without_chance_keys_still_report(tmp_path):
    old = [{k: v for k, v in row.items() if not k.startswith("chance_")} for row in ROWS]
    paths = write_tables(old, tmp_path)
    md = paths["md"].read_text(encoding="utf-8")
    assert "| chance (random ranking) | – |  |  | – | – |  |  | – |" in md
    assert "| chance (random ranking) | – |  |  | – |" in md.split("## SYSU-MM01 indoor-search multi-shot official")[1]
    chance = pd.read_csv(paths["csv"]).query("section == 'chance level'")
    assert len(chance) == 2 and chance.filter(like=" mean").isna().all().all()


def test_recalled_rows_are_starred_and_explained(tmp_path):
    from dataclasses import replace

    ce2l = [r for r in PUBLISHED_RESULTS if r.method == "CE²L"]
    recalled = [replace(ce2l[0], checked="recalled"), *ce2l[1:]]  # its RegDB row
    text = write_tables(ROWS[:4], tmp_path / "recalled", published=recalled)["md"].read_text()
    assert "* = recalled from the cited table" in text and "| dai_ce2l*, dai_ce2l |" in text
    text = write_tables(ROWS[:4], tmp_path / "plain", published=ce2l)["md"].read_text()
    assert "recalled" not in text and "dai_ce2l*" not in text


def test_dataset_warnings_section_names_each_incomplete_copy():
    from rgbir_reid.reporting.tables import dataset_warnings_markdown

    assert dataset_warnings_markdown({"sysu": [], "regdb": [""]}) == ""
    text = dataset_warnings_markdown({"sysu": ["cam3/0007 is empty"], "regdb": []})
    assert "## Dataset warnings" in text and "- `sysu`:\n  - cam3/0007 is empty\n" in text and "regdb" not in text


def test_rerank_rows_are_labelled_and_never_averaged_with_plain_ones(tmp_path):
    from rgbir_reid.reporting.figures import mean_cmc

    plain = _row("demo", "ce2l", "sysu_mm01 all-search single-shot seeded", 0, 0.40, 0.7, 0.8, 0.30, chance=(0.1, 0.2))
    reranked = {**_row("demo", "ce2l", "sysu_mm01 all-search single-shot seeded", 0, 0.60, 0.9, 1.0, 0.50, chance=(0.1, 0.2)),
                "rerank": True}
    paths = write_tables([plain, reranked], tmp_path)
    md, tex = paths["md"].read_text(encoding="utf-8"), paths["tex"].read_text(encoding="utf-8")
    assert "| ce2l [demo] | – | – | – | – | 40.00 | 70.00 | 80.00 | 30.00 |" in md
    assert "| ce2l [demo] +rerank | – | – | – | – | 60.00 | 90.00 | 100.00 | 50.00 |" in md
    assert 'Rows "<method> +rerank": the same method' in md
    assert "+rerank" not in write_tables([plain], tmp_path / "plain")["md"].read_text(encoding="utf-8")
    assert r"ce2l [demo] +rerank & -- & -- & -- & -- & 60.00 & 90.00 & 100.00 & 50.00 & one value \\" in tex
    run = pd.read_csv(paths["csv"], keep_default_na=False).query("section == 'this run'")
    assert run[["method", "rerank"]].values.tolist() == [["ce2l [demo]", "off"], ["ce2l [demo] +rerank", "on"]]
    assert run["SYSU-MM01 r=1 mean"].astype(float).tolist() == [40.0, 60.0]
    # One chance row: re-ranking changes the order, not the gallery.
    assert md.count("| chance (random ranking) [demo] |") == 1
    curves = mean_cmc([plain, reranked])[("demo", "sysu_mm01 all-search single-shot seeded")]
    assert set(curves) == {"ce2l [demo]", "ce2l [demo] +rerank"} and curves["ce2l [demo] +rerank"][0] == 0.6
    frame = summarise([plain, reranked])
    assert frame["rerank"].tolist() == [False, True]


def _seed_rows(method, per_seed, protocol="sysu_mm01 all-search single-shot seeded"):
    """Rows of one method: ``per_seed`` = {seed: [rank-1 of gallery trial 0, 1, ...]} (mAP = rank-1 / 2)."""
    return [
        {**_row("demo", method, protocol, 1, r1, 0.9, 1.0, r1 / 2, gallery_trial=g, chance=(0.03, 0.08)), "seed": seed}
        for seed, values in per_seed.items()
        for g, r1 in enumerate(values)
    ]


# Three seeds of three gallery trials each; per-seed rank-1 means 0.30, 0.40, 0.65.
SEEDED = {0: [0.20, 0.30, 0.40], 1: [0.40, 0.40, 0.40], 2: [0.60, 0.65, 0.70]}


def test_several_seeds_give_mean_and_std_of_the_per_seed_means(tmp_path):
    frame = summarise(_seed_rows("ce2l", SEEDED))
    row = frame.iloc[0]
    # By hand: per-seed means 0.30, 0.40, 0.65; their mean 0.45; deviations -0.15, -0.05, 0.20,
    # squares 0.0225 + 0.0025 + 0.04 = 0.065, / (3 - 1) = 0.0325.
    assert row.n == 9 and row.n_seeds == 3
    assert row.rank1_mean == pytest.approx(0.45)
    assert row.rank1_std == pytest.approx(math.sqrt(0.0325))
    assert row.mAP_std == pytest.approx(math.sqrt(0.0325) / 2)
    # Not the std of the nine pooled values (which mixes in the gallery trials' spread).
    pooled = pd.Series([v for values in SEEDED.values() for v in values]).std()
    assert abs(row.rank1_std - pooled) > 0.01
    assert row.spread == "3 seeds (each: mean of 3 gallery trials)"
    paths = write_tables(_seed_rows("ce2l", SEEDED), tmp_path)
    md = paths["md"].read_text(encoding="utf-8")
    line = next(line for line in md.splitlines() if line.startswith("| ce2l [demo] |"))
    assert "| 45.00 ± 18.03 |" in line and line.endswith("| 3 seeds (each: mean of 3 gallery trials) |")
    assert '"<S> seeds": the method was trained once per training seed' in md
    csv = pd.read_csv(paths["csv"], keep_default_na=False).query("section == 'this run'").iloc[0]
    assert float(csv["SYSU-MM01 r=1 std"]) == pytest.approx(100 * math.sqrt(0.0325))
    assert csv["± over"] == "3 seeds (each: mean of 3 gallery trials)"
    assert csv["seeds"] == "0 1 2"
    assert r"& 3 seeds (each: mean of 3 gallery trials) \\" in paths["tex"].read_text(encoding="utf-8")


def test_one_seed_or_no_seed_keeps_the_spread_over_gallery_trials(tmp_path):
    one_seed = summarise(_seed_rows("ce2l", {0: SEEDED[0]})).iloc[0]
    assert one_seed.rank1_std == pytest.approx(0.1) and one_seed.spread == "3 gallery trials" and one_seed.n_seeds == 1
    hog = [{k: v for k, v in row.items() if k != "seed"} for row in _seed_rows("hog", {None: SEEDED[2]})]
    assert summarise(hog).iloc[0].spread == "3 gallery trials"
    # A table with seeded and hand-crafted rows names each row's spread.
    md = write_tables(_seed_rows("ce2l", SEEDED) + hog, tmp_path)["md"].read_text(encoding="utf-8")
    assert "| hog [demo] | – | – | – | – | 65.00 ± 5.00 |" in md
    assert next(line for line in md.splitlines() if line.startswith("| hog [demo] |")).endswith("| 3 gallery trials |")


def test_spread_label_names_regdb_trials_and_seeds_over_them():
    from rgbir_reid.reporting.tables import spread_label

    regdb = [_row("regdb", "ce2l", "regdb visible->thermal", t, 0.5, 0.7, 0.8, 0.4) for t in (1, 2, 3)]
    assert spread_label(regdb) == "3 RegDB trials"
    assert spread_label([{**r, "seed": s} for s in (0, 1) for r in regdb]) == "2 seeds (each: mean of 3 RegDB trials)"
    assert spread_label(regdb[:1]) == "one value"
    assert spread_label([{**regdb[0], "seed": s} for s in (4, 5)]) == "2 seeds"
