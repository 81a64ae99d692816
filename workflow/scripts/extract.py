"""Features of the trial's test images, by the method's family (e.g. the re-ID embedding, a hand-crafted descriptor)."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.data.records import read_records_csv  # noqa: E402
from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.features import write_features  # noqa: E402
from rgbir_reid.methods import get_family  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    test = [r for r in read_records_csv(smk.input.split) if r.subset == "test"]
    family = get_family(smk.params.family)
    features, attrs = family.extract(
        smk.input.get("model"),
        test,
        smk.params.settings,
        batch_size=smk.params.batch_size,
        flip=smk.params.flip,
        device=resolve_device(smk.params.device),
        logger=logger,
    )
    write_features(smk.output.features, features, test, {"family": family.name, **attrs})
    logger.info("%s features [%d, %d] of %d test images written to %s",
                family.name, *features.shape, len(test), smk.output.features)


run_script(snakemake, main)  # noqa: F821
