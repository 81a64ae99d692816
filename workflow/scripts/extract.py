"""Extract L2-normalised features of the trial's test images (flip-averaged when asked)."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.data.records import read_records_csv  # noqa: E402
from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.features import extract_features  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    test = [r for r in read_records_csv(smk.input.split) if r.subset == "test"]
    extract_features(
        smk.input.model,
        test,
        smk.output.features,
        batch_size=smk.params.batch_size,
        device=resolve_device(smk.params.device),
        flip=smk.params.flip,
    )
    logger.info("features of %d test images written to %s", len(test), smk.output.features)


run_script(snakemake, main)  # noqa: F821
