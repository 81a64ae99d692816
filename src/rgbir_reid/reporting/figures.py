"""CMC curves (matplotlib, Agg backend): one panel per (dataset, protocol), one curve per method."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: no display on cluster nodes or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rgbir_reid.io import atomic_output  # noqa: E402
from rgbir_reid.reporting.tables import DATASET_LABELS, row_dataset, row_method  # noqa: E402


def mean_cmc(rows: Sequence[dict]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Mean CMC over trials: ``{(dataset, protocol): {method: float [max_rank] in [0, 1]}}``.

    Raises:
        ValueError: a row lacks ``cmc``, or rows of one curve have CMCs of different lengths.
    """
    curves: dict[tuple[str, str], dict[str, list[np.ndarray]]] = {}
    for i, row in enumerate(rows):
        if not row.get("cmc"):
            raise ValueError(f"metrics row {i} ({row.get('protocol')}) has no 'cmc' list")
        key = (row_dataset(row), row["protocol"])
        curves.setdefault(key, {}).setdefault(row_method(row), []).append(np.asarray(row["cmc"], dtype=float))
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for key, per_method in curves.items():
        out[key] = {}
        for method, cmcs in per_method.items():
            if len({len(c) for c in cmcs}) != 1:
                raise ValueError(f"CMC lengths differ across trials for {method} on {key}: {sorted({len(c) for c in cmcs})}")
            out[key][method] = np.mean(np.stack(cmcs), axis=0)
    return out


def plot_cmc(rows: Sequence[dict], out_path: str | Path) -> list[Path]:
    """Plot mean CMC curves and write them as PNG and PDF.

    Args:
        rows: metric rows with ``cmc`` (fractions), ``protocol``, ``dataset_format``, optionally
            ``dataset`` and ``method``.
        out_path: ``.../cmc.png`` or ``.../cmc.pdf`` (or no suffix); both formats are written
            beside each other.

    Returns:
        The paths written, PNG first.

    Raises:
        ValueError: no rows, or rows without ``cmc``.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("plot_cmc needs at least one metrics row")
    curves = mean_cmc(rows)
    fmt_of = {}
    for row in rows:
        fmt_of[(row_dataset(row), row["protocol"])] = row["dataset_format"]
    keys = list(curves)
    n = len(keys)
    n_cols = min(n, 3)
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.4 * n_rows), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        dataset, protocol = key
        for method, cmc in curves[key].items():
            ranks = np.arange(1, len(cmc) + 1)
            ax.plot(ranks, 100.0 * cmc, marker="o", markersize=2.5, linewidth=1.2, label=f"{method} (r=1 {100 * cmc[0]:.1f})")
        label = DATASET_LABELS.get(fmt_of[key], dataset)
        ax.set_title(f"{label}: {protocol.split(' ', 1)[-1]}" + ("" if dataset == fmt_of[key] else f" [{dataset}]"), fontsize=9)
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    out_path = Path(out_path)
    stem = out_path.with_suffix("") if out_path.suffix.lower() in (".png", ".pdf") else out_path
    written = []
    for suffix in (".png", ".pdf"):
        target = stem.with_name(stem.name + suffix)
        with atomic_output(target) as tmp:
            fig.savefig(tmp, dpi=150, format=suffix[1:])
        written.append(target)
    plt.close(fig)
    return written
