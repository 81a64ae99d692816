"""Train the RGB<->IR CycleGAN on the trial's training identities (resumes when rerun)."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.config import settings_from  # noqa: E402
from rgbir_reid.data.records import THERMAL, VISIBLE, read_records_csv  # noqa: E402
from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402
from rgbir_reid.training.cyclegan import CycleGANSettings, train_cyclegan  # noqa: E402


def main(smk, logger):
    train = [r for r in read_records_csv(smk.input.split) if r.subset == "train"]
    train_cyclegan(
        [r.path for r in train if r.modality == VISIBLE],
        [r.path for r in train if r.modality == THERMAL],
        Path(smk.output.generator).parent,
        settings_from(CycleGANSettings, smk.params.settings, "cyclegan"),
        device=resolve_device(smk.params.device),
        seed=smk.params.seed,
        logger=logger,
    )


run_script(snakemake, main)  # noqa: F821
