"""Train one re-ID method on the trial's cache (checkpoint every epoch, resumes when rerun)."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.config import settings_from  # noqa: E402
from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402
from rgbir_reid.training.reid import ReidSettings, train_reid  # noqa: E402


def main(smk, logger):
    section = f"methods.{smk.wildcards.method} / reid"
    train_reid(
        smk.input.cache,
        Path(smk.output.model).parent,
        settings_from(ReidSettings, smk.params.settings, section),
        device=resolve_device(smk.params.device),
        seed=smk.params.seed,
        logger=logger,
    )


run_script(snakemake, main)  # noqa: F821
