"""CMC figure: PNG and PDF written, real images of non-trivial size."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from rgbir_reid.reporting.figures import mean_cmc, plot_cmc


def _row(method, protocol, cmc, dataset=None):
    fmt = "regdb" if protocol.startswith("regdb") else "sysu_mm01"
    return {"dataset": dataset or fmt, "method": method, "dataset_format": fmt, "protocol": protocol, "cmc": cmc}


ROWS = [
    _row("CE2L", "regdb visible->thermal", list(np.linspace(0.4, 0.9, 20))),
    _row("CE2L", "regdb visible->thermal", list(np.linspace(0.6, 1.0, 20))),
    _row("Baseline", "regdb visible->thermal", list(np.linspace(0.2, 0.7, 20))),
    _row("CE2L", "sysu_mm01 all-search single-shot official", list(np.linspace(0.3, 0.8, 20))),
]


def test_mean_cmc_over_trials():
    curves = mean_cmc(ROWS)
    np.testing.assert_allclose(curves[("regdb", "regdb visible->thermal")]["CE2L"][[0, -1]], [0.5, 0.95])
    assert set(curves) == {("regdb", "regdb visible->thermal"), ("sysu_mm01", "sysu_mm01 all-search single-shot official")}


def test_plot_cmc_writes_png_and_pdf(tmp_path):
    png, pdf = plot_cmc(ROWS, tmp_path / "cmc.png")
    assert png == tmp_path / "cmc.png" and pdf == tmp_path / "cmc.pdf"
    image = mpimg.imread(png)
    assert image.shape[0] > 200 and image.shape[1] > 400  # two panels side by side
    assert image[..., :3].std() > 0.05  # not a blank canvas
    assert png.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000


def test_plot_cmc_rejects_rows_without_cmc(tmp_path):
    with pytest.raises(ValueError, match="no 'cmc'"):
        plot_cmc([{"dataset_format": "regdb", "protocol": "regdb visible->thermal"}], tmp_path / "cmc.png")
    with pytest.raises(ValueError, match="at least one"):
        plot_cmc([], tmp_path / "cmc.png")
