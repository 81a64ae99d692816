"""Result tables laid out like the CE²L paper's comparison table.

One row per method; per dataset the columns r=1, r=10, r=20, mAP in percent, each cell
"mean ± std", and a column "± over" saying which spread the ± is (:func:`spread_label`):

- a method trained with several seeds (rows with distinct ``seed`` values, config key ``seeds``):
  the mean and std of its per-seed means, each per-seed mean over that seed's trials and gallery
  trials (e.g. "3 seeds (each: mean of 10 gallery trials)"). The std is that of the per-seed
  means, not of the pooled seed × gallery-trial values: it measures how far retraining moves the
  result, which the gallery trials, evaluated on one model, cannot show;
- otherwise (one model, or a method that does not train): over the rows themselves, i.e.
  SYSU-MM01's gallery trials and/or RegDB's training trials (e.g. "10 gallery trials",
  "10 RegDB trials"); "one value" where there is a single row and no ±.

The first table pairs the paper's settings: RegDB visible->thermal and
SYSU-MM01 all-search single-shot; every other protocol gets a table of its own. Under a table, a
section "Reported in the papers" lists the published numbers of its protocols with their sources
(:mod:`rgbir_reid.reporting.published`): a published row belongs to a table whose protocol is the
row's protocol, possibly followed by more words (the sampler, "indoor-ids").

Each table ends with a row per dataset, "chance (random ranking)": the r=1 and mAP a uniformly
random ranking is expected to reach on the same galleries (the rows' ``chance_rank1`` /
``chance_mAP``, see :func:`rgbir_reid.evaluation.metrics.chance_metrics`), mean over the trials
and gallery trials evaluated (each counted once, whatever the number of methods). Rows without
those keys (older metrics files) leave the cells "–"; r=10 and r=20 have no chance cell.

Std is the sample standard deviation (ddof=1); a cell from a single value shows the mean only.

Re-ranked rows (``rerank: True``, from ``evaluation.rerank``) are their own table rows, labelled
``<method> +rerank`` (:data:`RERANK_SUFFIX`) in every table and figure, never averaged with the
plain ones. ``table.csv`` carries each row's provenance columns
(:data:`rgbir_reid.reporting.provenance.PROVENANCE_COLUMNS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from rgbir_reid.io import atomic_output
from rgbir_reid.reporting.provenance import PROVENANCE_COLUMNS, summarise_provenance
from rgbir_reid.reporting.published import PAPER_PROTOCOLS, PUBLISHED_RESULTS, SOURCES, PublishedResult

METRICS = ("rank1", "rank10", "rank20", "mAP", "mINP")
TABLE_METRICS = (("rank1", "r=1"), ("rank10", "r=10"), ("rank20", "r=20"), ("mAP", "mAP"))
DATASET_LABELS = {"regdb": "RegDB", "sysu_mm01": "SYSU-MM01"}
MISSING = "–"
REQUIRED_KEYS = ("dataset_format", "protocol", *METRICS[:4])
CHANCE_KEYS = {"rank1": "chance_rank1", "mAP": "chance_mAP"}  # table metric -> key of its chance level
CHANCE_LABEL = "chance (random ranking)"
SPREAD_COLUMN = "± over"  # the column naming each row's spread, in table.md, table.csv and table.tex
RERANK_SUFFIX = " +rerank"  # label suffix of every re-ranked row


def row_dataset(row: dict) -> str:
    """Dataset name of a metrics row (the workflow's `dataset`, else its format)."""
    return str(row.get("dataset") or row["dataset_format"])


def row_method(row: dict) -> str:
    """Table-row label of a metrics row: the method, tagged with the dataset when it is not the
    format, and with ``+rerank`` when the row is re-ranked (e.g. ``ce2l [demo] +rerank``)."""
    method = str(row.get("method") or "unnamed")
    dataset = row.get("dataset")
    # Two datasets of one format (e.g. a demo and the real SYSU-MM01) must not share a table row.
    if dataset and dataset != row["dataset_format"]:
        method = f"{method} [{dataset}]"
    return method + (RERANK_SUFFIX if row.get("rerank") else "")


def _check_rows(rows: Sequence[dict]) -> None:
    for i, row in enumerate(rows):
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise ValueError(f"metrics row {i} lacks keys {missing}; expected at least {REQUIRED_KEYS}")


@dataclass(frozen=True)
class _Summary:
    """Mean and std of one (dataset, format, method, protocol) over its trials and gallery trials."""

    dataset: str
    dataset_format: str
    method: str
    protocol: str
    mode: str  # of the first row (the protocol fixes it)
    n: int  # metric rows
    stats: dict[str, tuple[float | None, float | None]]  # metric -> (mean, sample std); None = no value / one value
    rerank: bool = False
    provenance: dict[str, str] | None = None  # column -> text (summarise_provenance)
    spread: str = ""  # what the std is over (spread_label)
    n_seeds: int = 0  # distinct training seeds (0: the method does not train, or rows without seeds)

    @property
    def label(self) -> str:
        return row_method({"dataset": self.dataset, "dataset_format": self.dataset_format, "method": self.method, "rerank": self.rerank})


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def _seeds(rows: Sequence[dict]) -> list[int]:
    """The distinct training seeds of ``rows`` (their ``seed`` values but None), in order of first appearance."""
    return list(dict.fromkeys(row["seed"] for row in rows if row.get("seed") is not None))


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _within_model_spread(rows: Sequence[dict]) -> str:
    """What a std over ``rows`` (one model per training trial) is over: their trials and gallery trials."""
    n_trials = len({row.get("trial") for row in rows})
    n_gallery = len({(row.get("trial"), row.get("gallery_trial")) for row in rows}) // max(n_trials, 1)
    trial_word = "RegDB trial" if rows and rows[0]["dataset_format"] == "regdb" else "training trial"
    if n_trials > 1 and n_gallery > 1:
        return f"{_count(n_trials, trial_word)} × {_count(n_gallery, 'gallery trial')}"
    if n_trials > 1:
        return _count(n_trials, trial_word)
    if n_gallery > 1:
        return _count(n_gallery, "gallery trial")
    return "one value"


def spread_label(rows: Sequence[dict]) -> str:
    """What the ± of a table cell made from ``rows`` (one method and protocol) is over.

    Args:
        rows: metric rows with ``trial``, ``gallery_trial`` and, for trained methods, ``seed``.

    Returns:
        ``"<S> seeds (each: mean of <inner>)"`` when the rows hold S > 1 distinct training seeds
        (the std is that of the S per-seed means); else the within-model spread: ``"10 gallery
        trials"``, ``"10 RegDB trials"``, ``"<T> training trials × <G> gallery trials"``, or
        ``"one value"`` (no ±). ``<inner>`` is the within-model spread of the first seed's rows.
    """
    seeds = _seeds(rows)
    if len(seeds) > 1:
        first = [row for row in rows if row.get("seed") == seeds[0]]
        inner = _within_model_spread(first)
        return f"{len(seeds)} seeds" + ("" if inner == "one value" else f" (each: mean of {inner})")
    return _within_model_spread(rows)


def _group_stats(group: Sequence[dict], scale: float) -> dict[str, tuple[float | None, float | None]]:
    """Per metric, (mean, sample std) of ``scale * value``: over the per-seed means when the group
    holds several training seeds (each seed's mean over its rows), else over the rows."""
    seeds = _seeds(group)
    if len(seeds) <= 1:
        return {m: _mean_std([scale * float(r[m]) for r in group if r.get(m) is not None]) for m in METRICS}
    stats = {}
    for m in METRICS:
        per_seed = [[scale * float(r[m]) for r in group if r.get("seed") == seed and r.get(m) is not None] for seed in seeds]
        stats[m] = _mean_std([float(np.mean(values)) for values in per_seed if values])
    return stats


def _summaries(rows: Sequence[dict], scale: float = 1.0) -> list[_Summary]:
    """Group ``rows`` (checked for :data:`REQUIRED_KEYS`) in order of first appearance; each
    metric's statistics are over ``scale * value`` of the rows where it is not None, or over the
    per-seed means of those when a group holds several training seeds (:func:`_group_stats`)."""
    _check_rows(rows)
    groups: dict[tuple[str, str, str, str, bool], list[dict]] = {}
    for row in rows:
        key = (row_dataset(row), row["dataset_format"], str(row.get("method") or "unnamed"), row["protocol"], bool(row.get("rerank")))
        groups.setdefault(key, []).append(row)
    return [
        _Summary(
            *key[:4],
            mode=group[0].get("mode", ""),
            n=len(group),
            # Scaled before averaging (not after): the written tables keep their exact digits.
            stats=_group_stats(group, scale),
            rerank=key[4],
            provenance=summarise_provenance(group),
            spread=spread_label(group),
            n_seeds=len(_seeds(group)),
        )
        for key, group in groups.items()
    ]


def summarise(rows: Sequence[dict]) -> pd.DataFrame:
    """Mean and std per dataset, method and protocol: over trials and gallery trials, or over the
    per-seed means when a method was trained with several seeds (module docstring).

    Args:
        rows: metric rows (see ``rgbir_reid.evaluation.protocols.metrics_row``), optionally with
            ``dataset``, ``method``, ``trial`` and ``seed`` (training seed) keys added by the workflow.

    Returns:
        One row per (dataset, method, protocol, re-ranking) with columns ``dataset, dataset_format,
        method, protocol, mode, n, rerank, n_seeds, spread`` (n: metric rows; n_seeds: distinct
        training seeds; spread: :func:`spread_label`) and ``<metric>_mean``, ``<metric>_std`` for
        rank1, rank10, rank20, mAP, mINP (fractions in [0, 1]; std NaN when there is one value or
        the metric is missing).

    Raises:
        ValueError: a row lacks a required key.
    """
    head = ["dataset", "dataset_format", "method", "protocol", "mode", "n", "rerank", "n_seeds", "spread"]
    columns = head + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    records = []
    for summary in _summaries(rows):
        rec = {c: getattr(summary, c) for c in head}
        for m, (mean, std) in summary.stats.items():
            rec[f"{m}_mean"] = np.nan if mean is None else mean
            rec[f"{m}_std"] = np.nan if std is None else std
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=columns)


def _chance_levels(rows: Sequence[dict], scale: float = 1.0) -> dict[tuple[str, str, str], dict[str, float | None]]:
    """``{(dataset, format, protocol): {table metric: mean chance level or None}}`` for the
    metrics of :data:`CHANCE_KEYS`, in order of first appearance. A (trial, gallery trial) counts
    once: every method of a dataset is evaluated on the same galleries."""
    seen: dict[tuple[str, str, str], dict[str, dict[tuple, float]]] = {}
    for row in rows:
        per_metric = seen.setdefault((row_dataset(row), row["dataset_format"], row["protocol"]), {m: {} for m in CHANCE_KEYS})
        for metric, key in CHANCE_KEYS.items():
            if row.get(key) is not None:
                per_metric[metric].setdefault((row.get("trial"), row.get("gallery_trial")), scale * float(row[key]))
    return {
        key: {m: (float(np.mean(list(v.values()))) if v else None) for m, v in per_metric.items()} for key, per_metric in seen.items()
    }


@dataclass(frozen=True)
class _Group:
    label: str  # column-group title, e.g. "RegDB"
    protocol: str  # protocol string matched against rows


@dataclass(frozen=True)
class _Table:
    title: str
    groups: tuple[_Group, ...]


def _plan_tables(rows: Sequence[dict]) -> list[_Table]:
    protocols: dict[str, str] = {}
    for row in rows:
        protocols.setdefault(row["protocol"], row["dataset_format"])
    # The paper's pairing: RegDB visible->thermal and SYSU-MM01 all-search single-shot (the
    # official sampler first when both samplers were run).
    paper: dict[str, str] = {}
    for fmt, prefix in PAPER_PROTOCOLS.items():
        cands = [p for p, f in protocols.items() if f == fmt and p.startswith(prefix)]
        cands.sort(key=lambda p: (p != f"{prefix} official" and p != prefix, p))
        paper[fmt] = cands[0] if cands else prefix
    first = _Table(
        title=f"{DATASET_LABELS['regdb']} {paper['regdb'].removeprefix('regdb ')} | "
        f"{DATASET_LABELS['sysu_mm01']} {paper['sysu_mm01'].removeprefix('sysu_mm01 ')}",
        groups=(_Group(DATASET_LABELS["regdb"], paper["regdb"]), _Group(DATASET_LABELS["sysu_mm01"], paper["sysu_mm01"])),
    )
    tables = [first]
    for protocol, fmt in protocols.items():
        if protocol in paper.values():
            continue
        label = DATASET_LABELS.get(fmt, fmt)
        tables.append(_Table(title=f"{label} {protocol.split(' ', 1)[-1]}", groups=(_Group(label, protocol),)))
    return tables


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None or not np.isfinite(mean):
        return MISSING
    if std is None or not np.isfinite(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


_Body = list[tuple[str, list[tuple[float | None, float | None]], dict[str, str], str]]  # (label, cells, provenance, spread)
_ChanceBody = list[tuple[str, list[float | None]]]
_PublishedBody = list[tuple[str, str, list[float | None]]]


def _table_body(table: _Table, summaries: Sequence[_Summary]) -> _Body:
    """[(label, [(mean %, std %) per group x metric], provenance, spread)] for ``table``, from
    percent summaries; the provenance cells of a row over several protocols join each column's
    values; spread says what its ± is over (:func:`_row_spread`)."""
    wanted = {g.protocol for g in table.groups}
    by_method: dict[str, dict[str, _Summary]] = {}
    for summary in summaries:
        if summary.protocol in wanted:
            by_method.setdefault(summary.label, {})[summary.protocol] = summary
    body = []
    for method, per_protocol in by_method.items():
        cells = []
        for group in table.groups:
            summary = per_protocol.get(group.protocol)
            cells += [(None, None) if summary is None else summary.stats[key] for key, _ in TABLE_METRICS]
        provenance = {
            c: " ".join(dict.fromkeys(v for s in per_protocol.values() for v in (s.provenance or {}).get(c, "").split()))
            for c in PROVENANCE_COLUMNS
        }
        body.append((method, cells, provenance, _row_spread(table, per_protocol)))
    return body


def _row_spread(table: _Table, per_protocol: dict[str, _Summary]) -> str:
    """The "± over" cell of a table row: the one spread of its column groups, or each group's
    (``"RegDB: 10 RegDB trials; SYSU-MM01: 10 gallery trials"``) where they differ."""
    spreads = [(g.label, per_protocol[g.protocol].spread) for g in table.groups if g.protocol in per_protocol]
    if len({spread for _, spread in spreads}) == 1:
        return spreads[0][1]
    return "; ".join(f"{label}: {spread}" for label, spread in spreads)


def _chance_body(table: _Table, chance: dict[tuple[str, str, str], dict[str, float | None]]) -> _ChanceBody:
    """[(chance-row label, [chance % or None per group x metric])], one row per dataset of ``table``."""
    wanted = {g.protocol for g in table.groups}
    by_label: dict[str, dict[str, dict[str, float | None]]] = {}
    for (dataset, fmt, protocol), levels in chance.items():
        if protocol in wanted:
            label = row_method({"dataset": dataset, "dataset_format": fmt, "method": CHANCE_LABEL})
            by_label.setdefault(label, {})[protocol] = levels
    body = []
    for label, per_protocol in by_label.items():
        values: list[float | None] = []
        for group in table.groups:
            levels = per_protocol.get(group.protocol, {})
            values += [levels.get(key) for key, _ in TABLE_METRICS]
        body.append((label, values))
    return body


def _chance_cells(values: Sequence[float | None]) -> list[str]:
    """Cell texts of a chance row: empty where the metric has no chance level, – where it is unknown."""
    cells = []
    for i, value in enumerate(values):
        key = TABLE_METRICS[i % len(TABLE_METRICS)][0]
        cells.append("" if key not in CHANCE_KEYS else MISSING if value is None else f"{value:.2f}")
    return cells


def _published_in(res: PublishedResult, protocol: str) -> bool:
    """Whether published row ``res`` belongs to the table column group of ``protocol``: the same
    protocol, or one that adds words to it (e.g. "sysu_mm01 all-search multi-shot official")."""
    return protocol == res.protocol or protocol.startswith(res.protocol + " ")


def _published_body(table: _Table, published: Sequence[PublishedResult]) -> _PublishedBody:
    """[(method, source keys, [value % per group x metric])] in the order of ``published``, for the
    methods with a row in one of ``table``'s protocols (the first such row per protocol)."""
    methods: dict[str, dict[str, PublishedResult]] = {}
    for res in published:
        for group in table.groups:
            if _published_in(res, group.protocol):
                methods.setdefault(res.method, {}).setdefault(group.protocol, res)
    body = []
    for method, per_protocol in methods.items():
        values: list[float | None] = []
        sources: list[str] = []
        for group in table.groups:
            res = per_protocol.get(group.protocol)
            label = None if res is None else res.source + ("*" if res.checked == "recalled" else "")
            if label is not None and label not in sources:
                sources.append(label)
            for key, _ in TABLE_METRICS:
                values.append(None if res is None else getattr(res, key))
        body.append((method, ", ".join(sources), values))
    return body


def _headers(table: _Table) -> list[str]:
    return [f"{g.label} {name}" for g in table.groups for _, name in TABLE_METRICS]


def markdown_table(header: Sequence[str], body: Iterable[Sequence[str]], align: str | None = None) -> list[str]:
    """Lines of a Markdown pipe table.

    Args:
        header: column titles.
        body: rows of cell texts, one per column.
        align: one letter per column, ``l`` (left) or ``r`` (right); default all left.
    """
    align = align or "l" * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return lines


# A planned table with its bodies, computed once for the three output formats.
_Filled = list[tuple[_Table, _Body, _ChanceBody, _PublishedBody]]

CHANCE_NOTE = (
    f"Row \"{CHANCE_LABEL}\": the r=1 and mAP expected from ranking each query's gallery at random, "
    "from its composition (m true matches among n images: r=1 = m/n, "
    "AP = (H_n + (m-1)/(n-1) (n - H_n))/n, H_n the n-th harmonic number), mean over queries and trials."
)


SPREAD_NOTE = (
    f"Column \"{SPREAD_COLUMN}\": what each row's ± (sample std) is over. \"<S> seeds\": the method was trained "
    "once per training seed (config key seeds); the mean and std are those of its S per-seed means, each "
    "the mean over that seed's trials and gallery trials. Otherwise (one model per trial, or a method that "
    "does not train): the std over SYSU-MM01's gallery trials of one model, or over RegDB's trials, each its own model."
)


RERANK_NOTE = (
    f"Rows \"<method>{RERANK_SUFFIX}\": the same method's features ranked after k-reciprocal re-ranking "
    "(Zhong et al., CVPR 2017; evaluation.rerank_k1, rerank_k2, rerank_lambda); the other rows rank by Euclidean distance."
)


def _markdown(filled: _Filled) -> str:
    lines = ["# Results", "", "Rank-k (r=k) and mAP in %, mean ± std. Protocol named above each table.", "", SPREAD_NOTE, "", CHANCE_NOTE, ""]
    if any(label.endswith(RERANK_SUFFIX) for _, body, _, _ in filled for label, _, _, _ in body):
        lines += [RERANK_NOTE, ""]
    cited: list[str] = []
    for table, body, chance_body, published_body in filled:
        lines += [f"## {table.title}", ""]
        lines.append("Protocols: " + "; ".join(f"{g.label}: `{g.protocol}`" for g in table.groups))
        lines.append("")
        heads = _headers(table)
        cells = [[method, *(_cell(m, s) for m, s in stats), spread] for method, stats, _, spread in body]
        cells += [[label, *_chance_cells(values), ""] for label, values in chance_body]
        lines += markdown_table(["Method", *heads, SPREAD_COLUMN], cells or [["(no results)", *[MISSING] * len(heads), ""]],
                                "l" + "r" * len(heads) + "l")
        lines.append("")
        if published_body:
            lines += [
                "### Reported in the papers",
                "",
                "Numbers as published (no std); sources below. – = not filled in"
                + ("; * = recalled from the cited table, to be checked against the paper."
                   if any("*" in src for _, src, _ in published_body) else "."),
                "",
            ]
            published_cells = [[method, *(MISSING if v is None else f"{v:.2f}" for v in values), src] for method, src, values in published_body]
            lines += markdown_table(["Method", *heads, "Source"], published_cells, "l" + "r" * len(heads) + "l")
            for _, src, _ in published_body:
                for key in (s.strip().rstrip("*") for s in src.split(",")):
                    if key and key not in cited:
                        cited.append(key)
            lines.append("")
    if cited:
        lines += ["## Sources", ""] + [f"- `{key}`: {SOURCES.get(key, key)}" for key in cited] + [""]
    return "\n".join(lines)


def _tex_escape(text: str) -> str:
    out = text.replace("\\", r"\textbackslash{}")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    return out.replace("²", r"\textsuperscript{2}").replace("–", "--").replace("->", r"$\rightarrow$").replace("±", r"$\pm$")


def _latex(filled: _Filled) -> str:
    out = ["% Generated by rgbir_reid.reporting.tables.write_tables; rank-k and mAP in %.", "% " + SPREAD_NOTE, "% " + CHANCE_NOTE]
    for table, body, chance_body, published_body in filled:
        n_cols = len(table.groups) * len(TABLE_METRICS)
        caption = table.title + ("; last rows: chance level (r=1 and mAP expected from a random ranking)" if chance_body else "")
        out += [r"\begin{table}[t]", r"\centering", f"\\caption{{{_tex_escape(caption)}}}", r"\begin{tabular}{l" + "r" * n_cols + "l}", r"\hline"]
        out.append("Method & " + " & ".join(f"\\multicolumn{{{len(TABLE_METRICS)}}}{{c}}{{{_tex_escape(g.label)}}}" for g in table.groups)
                   + f" & {_tex_escape(SPREAD_COLUMN)}" + r" \\")
        out.append(" & " + " & ".join(name for _ in table.groups for _, name in TABLE_METRICS) + r" &  \\")
        out.append(r"\hline")
        if not body:
            out.append("(no results) & " + " & ".join(["--"] * n_cols) + r" &  \\")
        for method, cells, _, spread in body:
            out.append(_tex_escape(method) + " & " + " & ".join(_tex_escape(_cell(m, s)) for m, s in cells) + f" & {_tex_escape(spread)}" + r" \\")
        if chance_body:
            out.append(r"\hline")
        for label, values in chance_body:
            out.append(_tex_escape(label) + " & " + " & ".join(_tex_escape(c) for c in _chance_cells(values)) + r" &  \\")
        if published_body:
            out += [r"\hline", f"\\multicolumn{{{n_cols + 2}}}{{l}}{{\\emph{{Reported in the papers}}}} \\\\", r"\hline"]
            for method, src, values in published_body:
                cells = ["--" if v is None else f"{v:.2f}" for v in values]
                out.append(f"{_tex_escape(method)} ({_tex_escape(src)}) & " + " & ".join(cells) + r" &  \\")
        out += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def _csv_frame(filled: _Filled) -> pd.DataFrame:
    records = []
    for table, body, chance_body, published_body in filled:
        heads = _headers(table)
        for method, cells, provenance, spread in body:
            rec = {"table": table.title, "section": "this run", "method": method, "source": ""}
            for head, (mean, std) in zip(heads, cells):
                rec[f"{head} mean"] = mean
                rec[f"{head} std"] = std
            records.append({**rec, SPREAD_COLUMN: spread, **provenance})
        for label, values in chance_body:
            rec = {"table": table.title, "section": "chance level", "method": label, "source": ""}
            for head, value in zip(heads, values):
                rec[f"{head} mean"] = value
                rec[f"{head} std"] = None
            records.append(rec)
        for method, src, values in published_body:
            rec = {"table": table.title, "section": "reported in the papers", "method": method, "source": src}
            for head, value in zip(heads, values):
                rec[f"{head} mean"] = value
                rec[f"{head} std"] = None
            records.append(rec)
    frame = pd.DataFrame.from_records(records)
    # The spread, then provenance, last, and present (empty) even where no row has any.
    metric_columns = [c for c in frame.columns if c not in PROVENANCE_COLUMNS and c != SPREAD_COLUMN]
    return frame.reindex(columns=metric_columns + [SPREAD_COLUMN, *PROVENANCE_COLUMNS])


def provenance_records(rows: Sequence[dict]) -> list[dict[str, str]]:
    """One provenance record per (dataset, method, re-ranking) of ``rows``, in order of first
    appearance: ``{"dataset", "method"`` (the table label, e.g. ``ce2l [demo] +rerank``) and the
    :data:`~rgbir_reid.reporting.provenance.PROVENANCE_COLUMNS` ``}``, over all its protocols."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row_dataset(row), row_method(row)), []).append(row)
    return [{"dataset": dataset, "method": label, **summarise_provenance(group)} for (dataset, label), group in groups.items()]


def write_tables(
    rows: Sequence[dict],
    out_dir: str | Path,
    *,
    published: Sequence[PublishedResult] = PUBLISHED_RESULTS,
) -> dict[str, Path]:
    """Write ``table.md``, ``table.csv`` and ``table.tex`` into ``out_dir`` (atomically).

    Args:
        rows: metric rows (see :func:`summarise`); rows with a ``rank20`` of None show "–".
        out_dir: output folder (created).
        published: published numbers for the "Reported in the papers" section.

    Returns:
        ``{"md": path, "csv": path, "tex": path}``. CSV columns: ``table, section, method,
        source`` then ``"<Dataset> <metric> mean"`` / ``"... std"`` in percent (empty = missing),
        then ``"± over"`` (:data:`SPREAD_COLUMN`: what the std is over, "this run" rows), then the provenance columns (:data:`~rgbir_reid.reporting.provenance.PROVENANCE_COLUMNS`,
        filled on "this run" rows); ``section`` is "this run", "chance level" or "reported in the papers".

    Raises:
        ValueError: a row lacks a required key.
    """
    rows = list(rows)
    summaries = _summaries(rows, scale=100.0)  # percent
    chance = _chance_levels(rows, scale=100.0)
    filled = [(t, _table_body(t, summaries), _chance_body(t, chance), _published_body(t, published)) for t in _plan_tables(rows)]
    out_dir = Path(out_dir)
    paths = {"md": out_dir / "table.md", "csv": out_dir / "table.csv", "tex": out_dir / "table.tex"}
    with atomic_output(paths["md"]) as tmp:
        tmp.write_text(_markdown(filled), encoding="utf-8")
    with atomic_output(paths["tex"]) as tmp:
        tmp.write_text(_latex(filled), encoding="utf-8")
    with atomic_output(paths["csv"]) as tmp:
        _csv_frame(filled).to_csv(tmp, index=False)
    return paths


def dataset_warnings_markdown(warnings: dict[str, Sequence[str]]) -> str:
    """A Markdown section listing what indexing found incomplete, per dataset; ``""`` when nothing.

    Args:
        warnings: dataset name -> the lines of its ``index_warnings.txt`` (empty lines ignored).
    """
    found = {name: [line for line in lines if line.strip()] for name, lines in warnings.items()}
    found = {name: lines for name, lines in found.items() if lines}
    if not found:
        return ""
    text = "\n## Dataset warnings\n\nIndexing found these dataset copies incomplete; the runs above went on without what is named.\n\n"
    for name, lines in found.items():
        text += f"- `{name}`:\n" + "".join(f"  - {line}\n" for line in lines)
    return text
