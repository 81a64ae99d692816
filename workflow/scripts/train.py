"""Train one method of a training family on the trial's cache (its family's `train`; resumes when rerun)."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.methods import get_family  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    family = get_family(smk.params.family)
    # The trial's CycleGAN generators, for families that start from them (AlignGAN's pixel_init: cyclegan).
    extra = {"generators": smk.input.generators} if "generators" in smk.input.keys() else {}
    family.train(
        smk.input.get("cache"),
        Path(smk.output.model).parent,
        smk.params.settings,
        device=resolve_device(smk.params.device),
        seed=smk.params.seed,
        logger=logger,
        section=f"methods.{smk.wildcards.method}",
        **extra,
    )


run_script(snakemake, main)  # noqa: F821
