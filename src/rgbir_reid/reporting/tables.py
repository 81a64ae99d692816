"""Result tables laid out like the CE²L paper's comparison table.

One row per method; per dataset the columns r=1, r=10, r=20, mAP in percent, each cell
"mean ± std" over trials (RegDB: training trials; SYSU-MM01: gallery trials, and training
trials if several). The first table pairs the paper's settings: RegDB visible->thermal and
SYSU-MM01 all-search single-shot; every other protocol gets a table of its own. Under the first
table, a section "Reported in the papers" lists published numbers with their sources
(:mod:`rgbir_reid.reporting.published`).

Std is the sample standard deviation (ddof=1); a cell from a single trial shows the mean only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from rgbir_reid.io import atomic_output
from rgbir_reid.reporting.published import PUBLISHED_RESULTS, SOURCES, PublishedResult

METRICS = ("rank1", "rank10", "rank20", "mAP", "mINP")
TABLE_METRICS = (("rank1", "r=1"), ("rank10", "r=10"), ("rank20", "r=20"), ("mAP", "mAP"))
DATASET_LABELS = {"regdb": "RegDB", "sysu_mm01": "SYSU-MM01"}
PAPER_PROTOCOLS = {"regdb": "regdb visible->thermal", "sysu_mm01": "sysu_mm01 all-search single-shot"}
MISSING = "–"
REQUIRED_KEYS = ("dataset_format", "protocol", *METRICS[:4])


def row_dataset(row: dict) -> str:
    """Dataset name of a metrics row (the workflow's `dataset`, else its format)."""
    return str(row.get("dataset") or row["dataset_format"])


def row_method(row: dict) -> str:
    """Table-row label of a metrics row: the method, tagged with the dataset when it is not the format."""
    method = str(row.get("method") or "unnamed")
    dataset = row.get("dataset")
    # Two datasets of one format (e.g. a demo and the real SYSU-MM01) must not share a table row.
    if dataset and dataset != row["dataset_format"]:
        return f"{method} [{dataset}]"
    return method


def summarise(rows: Sequence[dict]) -> pd.DataFrame:
    """Mean and std over trials and gallery trials, per dataset, method and protocol.

    Args:
        rows: metric rows (see ``rgbir_reid.evaluation.protocols.metrics_row``), optionally with
            ``dataset``, ``method`` and ``trial`` keys added by the workflow.

    Returns:
        One row per (dataset, method, protocol) with columns ``dataset, dataset_format, method,
        protocol, mode, n`` and ``<metric>_mean``, ``<metric>_std`` for rank1, rank10, rank20, mAP,
        mINP (fractions in [0, 1]; std NaN when n = 1 or the metric is missing).

    Raises:
        ValueError: a row lacks a required key.
    """
    records = []
    for i, row in enumerate(rows):
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise ValueError(f"metrics row {i} lacks keys {missing}; expected at least {REQUIRED_KEYS}")
        rec = {
            "dataset": row_dataset(row),
            "dataset_format": row["dataset_format"],
            "method": str(row.get("method") or "unnamed"),
            "protocol": row["protocol"],
            "mode": row.get("mode", ""),
        }
        rec.update({m: np.nan if row.get(m) is None else float(row[m]) for m in METRICS})
        records.append(rec)
    columns = ["dataset", "dataset_format", "method", "protocol", "mode", "n"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    if not records:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame.from_records(records)
    keys = ["dataset", "dataset_format", "method", "protocol", "mode"]
    grouped = frame.groupby(keys, sort=False, dropna=False)
    out = grouped.size().rename("n").reset_index()
    for m in METRICS:
        out[f"{m}_mean"] = grouped[m].mean().to_numpy()
        out[f"{m}_std"] = grouped[m].std(ddof=1).to_numpy()
    return out[columns]


@dataclass(frozen=True)
class _Group:
    label: str  # column-group title, e.g. "RegDB"
    protocol: str  # protocol string matched against rows


@dataclass(frozen=True)
class _Table:
    title: str
    groups: tuple[_Group, ...]
    with_published: bool


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
        with_published=True,
    )
    tables = [first]
    for protocol, fmt in protocols.items():
        if protocol in paper.values():
            continue
        label = DATASET_LABELS.get(fmt, fmt)
        tables.append(_Table(title=f"{label} {protocol.split(' ', 1)[-1]}", groups=(_Group(label, protocol),), with_published=False))
    return tables


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None or not np.isfinite(mean):
        return MISSING
    if std is None or not np.isfinite(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


def _table_body(table: _Table, rows: Sequence[dict]) -> list[tuple[str, list[tuple[float | None, float | None]]]]:
    """[(method, [(mean %, std %) per group x metric])] for the rows of this table."""
    by_method: dict[str, dict[str, list[dict]]] = {}
    wanted = {g.protocol for g in table.groups}
    for row in rows:
        if row["protocol"] in wanted:
            by_method.setdefault(row_method(row), {}).setdefault(row["protocol"], []).append(row)
    body = []
    for method, per_protocol in by_method.items():
        cells = []
        for group in table.groups:
            group_rows = per_protocol.get(group.protocol, [])
            for key, _ in TABLE_METRICS:
                vals = [100.0 * float(r[key]) for r in group_rows if r.get(key) is not None]
                if not vals:
                    cells.append((None, None))
                else:
                    cells.append((float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else None))
        body.append((method, cells))
    return body


def _published_body(table: _Table, published: Sequence[PublishedResult]) -> list[tuple[str, str, list[float | None]]]:
    """[(method, source keys, [value % per group x metric])] in the order of ``published``."""
    methods: dict[str, dict[str, PublishedResult]] = {}
    for res in published:
        methods.setdefault(res.method, {})[res.dataset_format] = res
    fmt_of = {v: k for k, v in DATASET_LABELS.items()}
    body = []
    for method, per_fmt in methods.items():
        values: list[float | None] = []
        sources: list[str] = []
        for group in table.groups:
            res = per_fmt.get(fmt_of.get(group.label, ""))
            label = None if res is None else res.source + ("*" if res.checked == "recalled" else "")
            if label is not None and label not in sources:
                sources.append(label)
            for key, _ in TABLE_METRICS:
                values.append(None if res is None else getattr(res, key))
        body.append((method, ", ".join(sources), values))
    return body


def _headers(table: _Table) -> list[str]:
    return [f"{g.label} {name}" for g in table.groups for _, name in TABLE_METRICS]


def _markdown(tables: list[_Table], rows: Sequence[dict], published: Sequence[PublishedResult]) -> str:
    lines = ["# Results", "", "Rank-k (r=k) and mAP in %, mean ± std over trials. Protocol named above each table.", ""]
    cited: list[str] = []
    for table in tables:
        lines += [f"## {table.title}", ""]
        lines.append("Protocols: " + "; ".join(f"{g.label}: `{g.protocol}`" for g in table.groups))
        lines.append("")
        header = ["Method", *_headers(table)]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        body = _table_body(table, rows)
        if not body:
            lines.append("| (no results) | " + " | ".join([MISSING] * (len(header) - 1)) + " |")
        for method, cells in body:
            lines.append("| " + " | ".join([method, *(_cell(m, s) for m, s in cells)]) + " |")
        lines.append("")
        if table.with_published and published:
            lines += [
                "### Reported in the papers",
                "",
                "Numbers as published (no std); sources below. – = not filled in; "
                "* = recalled from the cited table, to be checked against the paper.",
                "",
            ]
            lines.append("| " + " | ".join(["Method", *_headers(table), "Source"]) + " |")
            lines.append("|" + "|".join(["---"] + ["---:"] * len(_headers(table)) + ["---"]) + "|")
            for method, src, values in _published_body(table, published):
                cells = [MISSING if v is None else f"{v:.2f}" for v in values]
                lines.append("| " + " | ".join([method, *cells, src]) + " |")
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


def _latex(tables: list[_Table], rows: Sequence[dict], published: Sequence[PublishedResult]) -> str:
    out = ["% Generated by rgbir_reid.reporting.tables.write_tables; rank-k and mAP in %."]
    for table in tables:
        n_cols = len(table.groups) * len(TABLE_METRICS)
        out += [r"\begin{table}[t]", r"\centering", f"\\caption{{{_tex_escape(table.title)}}}", r"\begin{tabular}{l" + "r" * n_cols + "}", r"\hline"]
        out.append("Method & " + " & ".join(f"\\multicolumn{{{len(TABLE_METRICS)}}}{{c}}{{{_tex_escape(g.label)}}}" for g in table.groups) + r" \\")
        out.append(" & " + " & ".join(name for _ in table.groups for _, name in TABLE_METRICS) + r" \\")
        out.append(r"\hline")
        body = _table_body(table, rows)
        if not body:
            out.append("(no results) & " + " & ".join(["--"] * n_cols) + r" \\")
        for method, cells in body:
            out.append(_tex_escape(method) + " & " + " & ".join(_tex_escape(_cell(m, s)) for m, s in cells) + r" \\")
        if table.with_published and published:
            out += [r"\hline", f"\\multicolumn{{{n_cols + 1}}}{{l}}{{\\emph{{Reported in the papers}}}} \\\\", r"\hline"]
            for method, src, values in _published_body(table, published):
                cells = ["--" if v is None else f"{v:.2f}" for v in values]
                out.append(f"{_tex_escape(method)} ({_tex_escape(src)}) & " + " & ".join(cells) + r" \\")
        out += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def _csv_frame(tables: list[_Table], rows: Sequence[dict], published: Sequence[PublishedResult]) -> pd.DataFrame:
    records = []
    for table in tables:
        heads = _headers(table)
        for method, cells in _table_body(table, rows):
            rec = {"table": table.title, "section": "this run", "method": method, "source": ""}
            for head, (mean, std) in zip(heads, cells):
                rec[f"{head} mean"] = mean
                rec[f"{head} std"] = std
            records.append(rec)
        if table.with_published:
            for method, src, values in _published_body(table, published):
                rec = {"table": table.title, "section": "reported in the papers", "method": method, "source": src}
                for head, value in zip(heads, values):
                    rec[f"{head} mean"] = value
                    rec[f"{head} std"] = None
                records.append(rec)
    return pd.DataFrame.from_records(records)


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
        source`` then ``"<Dataset> <metric> mean"`` / ``"... std"`` in percent (empty = missing).

    Raises:
        ValueError: a row lacks a required key.
    """
    rows = list(rows)
    for i, row in enumerate(rows):
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise ValueError(f"metrics row {i} lacks keys {missing}; expected at least {REQUIRED_KEYS}")
    out_dir = Path(out_dir)
    tables = _plan_tables(rows)
    paths = {"md": out_dir / "table.md", "csv": out_dir / "table.csv", "tex": out_dir / "table.tex"}
    with atomic_output(paths["md"]) as tmp:
        tmp.write_text(_markdown(tables, rows, published), encoding="utf-8")
    with atomic_output(paths["tex"]) as tmp:
        tmp.write_text(_latex(tables, rows, published), encoding="utf-8")
    with atomic_output(paths["csv"]) as tmp:
        _csv_frame(tables, rows, published).to_csv(tmp, index=False)
    return paths
