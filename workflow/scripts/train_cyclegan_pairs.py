"""Train a CycleGAN on the train/ half of registered pairs, sampled unpaired (as CycleGAN trains)."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.config import settings_from  # noqa: E402
from rgbir_reid.data.paired import read_pairs  # noqa: E402
from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402
from rgbir_reid.training.cyclegan import CycleGANSettings, train_cyclegan  # noqa: E402


def main(smk, logger):
    pairs = read_pairs(Path(smk.params.root) / "train")
    train_cyclegan(
        [p.visible for p in pairs],
        [p.infrared for p in pairs],
        Path(smk.output.generator).parent,
        settings_from(CycleGANSettings, smk.params.settings, "cyclegan"),
        device=resolve_device(smk.params.device),
        seed=smk.params.seed,
        logger=logger,
    )


run_script(snakemake, main)  # noqa: F821
