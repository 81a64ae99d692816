"""Paper-style tables and CMC curves over every trial and method."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import json  # noqa: E402

from rgbir_reid.reporting.figures import plot_cmc  # noqa: E402
from rgbir_reid.reporting.provenance import provenance_html  # noqa: E402
from rgbir_reid.reporting.tables import dataset_warnings_markdown, markdown_table, provenance_records, write_tables  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402

import pandas as pd  # noqa: E402

from rgbir_reid.io import atomic_output  # noqa: E402


def append_fidelity(table_md, fidelity):
    """Add the conversion-fidelity table (registered pairs) below the re-ID tables."""
    text = Path(table_md).read_text()
    text += "\n## Conversion fidelity (registered visible/infrared test pairs)\n\n"
    text += "L1 on [0, 1] pixels, PSNR in dB, SSIM; G_rgb2ir(visible) against the real infrared image.\n\n"
    cells = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in fidelity.itertuples(index=False)]
    text += "\n".join(markdown_table(list(fidelity.columns), cells)) + "\n"
    with atomic_output(table_md) as tmp:
        tmp.write_text(text)


def append_dataset_warnings(table_md, warning_files):
    """Add what indexing found incomplete in each dataset copy (its index_warnings.txt), if anything."""
    section = dataset_warnings_markdown({Path(f).parent.name: Path(f).read_text().splitlines() for f in warning_files})
    if section:
        with atomic_output(table_md) as tmp:
            tmp.write_text(Path(table_md).read_text() + section)


def main(smk, logger):
    rows = [row for path in smk.input.metrics for row in json.loads(Path(path).read_text())]
    out = Path(smk.output.table_md).parent
    paths = write_tables(rows, out)
    if smk.input.fidelity:
        append_fidelity(paths["md"], pd.read_csv(smk.input.fidelity[0]))
    append_dataset_warnings(paths["md"], smk.input.dataset_warnings)
    plot_cmc(rows, smk.output.cmc_png)
    with atomic_output(smk.output.provenance) as tmp:
        tmp.write_text(provenance_html(provenance_records(rows)), encoding="utf-8")
    logger.info("%d metric rows from %d files reported in %s", len(rows), len(smk.input.metrics), out)


run_script(snakemake, main)  # noqa: F821
