"""Write one trial's train/test split of the manifest."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.data.records import read_records_csv, write_records_csv  # noqa: E402
from rgbir_reid.data.splits import make_trial_split  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    records = read_records_csv(smk.input.manifest)
    split = make_trial_split(smk.params.format, smk.params.root, records, int(smk.wildcards.trial))
    write_records_csv(split, smk.output.split)
    n_train = sum(r.subset == "train" for r in split)
    logger.info("trial %s: %d train, %d test images", smk.wildcards.trial, n_train, len(split) - n_train)


run_script(snakemake, main)  # noqa: F821
