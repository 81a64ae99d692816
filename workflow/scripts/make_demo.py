"""Generate the built-in demo dataset (SYSU-MM01 layout)."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.data.demo import generate_demo  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    generate_demo(smk.output.root, seed=smk.params.seed, workers=smk.threads, **smk.params.options)
    logger.info("demo dataset written to %s", smk.output.root)


run_script(snakemake, main)  # noqa: F821
