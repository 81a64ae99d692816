"""Paper-style tables and CMC curves over every trial and method."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import json  # noqa: E402

from rgbir_reid.reporting.figures import plot_cmc  # noqa: E402
from rgbir_reid.reporting.tables import write_tables  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    rows = [row for path in smk.input.metrics for row in json.loads(Path(path).read_text())]
    out = Path(smk.output.table_md).parent
    write_tables(rows, out)
    plot_cmc(rows, smk.output.cmc_png)
    logger.info("%d metric rows from %d files reported in %s", len(rows), len(smk.input.metrics), out)


run_script(snakemake, main)  # noqa: F821
