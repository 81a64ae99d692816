"""AlignGAN's loss history: ``losses.csv`` and ``losses.png`` / ``losses.pdf`` of a training run.

Terms are logged unweighted, as the official code logs them (:mod:`rgbir_reid.training.aligngan`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rgbir_reid.io import atomic_output
from rgbir_reid.training.aligngan_settings import AlignGANSettings

# Loss terms (unweighted, as the official code logs them) and the training accuracies.
FEATURE_TERMS = ("feat_total", "feat_cls_real_ir", "feat_cls_fake_ir", "feat_triplet", "feat_gan", "acc_real_ir", "acc_fake_ir")
PIXEL_TERMS = ("G_total", "G_gan", "G_cycle", "G_identity", "G_triplet", "G_cls", "D_rgb", "D_ir")
LOSS_TERMS = FEATURE_TERMS + PIXEL_TERMS
STAGE_TERMS = {
    "feature_warmup": ("feat_total", "feat_cls_real_ir", "feat_triplet", "acc_real_ir"),
    "pixel_warmup": PIXEL_TERMS,
    "joint": LOSS_TERMS,
}
HISTORY_COLUMNS = ("iteration", "stage", "lr_pixel", "lr_feature", *LOSS_TERMS)


def write_loss_table(history: list[dict], out_dir: Path) -> pd.DataFrame:
    """Write ``out_dir/losses.csv`` atomically (columns :data:`HISTORY_COLUMNS`)."""
    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    with atomic_output(out_dir / "losses.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def write_loss_curves(history: list[dict], settings: AlignGANSettings, out_dir: Path) -> None:
    """Write ``losses.png`` / ``losses.pdf`` (feature losses, pixel losses, accuracies) atomically.

    Dashed lines mark the stage boundaries.
    """
    # Figure + Agg canvas, not pyplot: no global backend state in a library.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    fig = Figure(figsize=(13, 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    groups = (
        ("feature module (unweighted terms)", [t for t in FEATURE_TERMS if not t.startswith("acc")], "loss"),
        ("pixel module (unweighted terms)", list(PIXEL_TERMS), "loss"),
        ("training identity accuracy", ["acc_real_ir", "acc_fake_ir"], "accuracy"),
    )
    boundaries = np.cumsum([settings.feature_warmup_iterations, settings.pixel_warmup_iterations])
    for ax, (title, columns, ylabel) in zip(axes, groups):
        for col in columns:
            if frame[col].notna().any():
                ax.plot(frame["iteration"], frame[col], marker=".", markersize=3, label=col)
        for b in boundaries:
            if 0 < b < settings.total_iterations:
                ax.axvline(b, color="grey", linestyle="--", linewidth=0.8)
        ax.set(xlabel="iteration", ylabel=ylabel, title=title)
        if ax.lines[len(boundaries):] or any(frame[c].notna().any() for c in columns):
            ax.legend(fontsize=7)
    axes[2].set_ylim(0, 1)
    fig.tight_layout()
    for fmt in ("png", "pdf"):
        with atomic_output(out_dir / f"losses.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=100)
