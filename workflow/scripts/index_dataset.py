"""Index a dataset root in its native layout into a manifest CSV."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.data.records import write_records_csv  # noqa: E402
from rgbir_reid.data.splits import get_format, index_dataset  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    p = smk.params
    # Every dataset entry carries every option (schema defaults); pass those its format reads.
    candidates = {"verify_images": p.verify_images, "train_id_lists": tuple(p.train_id_lists)}
    accepted = get_format(p.format).options
    options = {k: v for k, v in candidates.items() if k in accepted}
    records = index_dataset(p.format, p.root, **options)
    write_records_csv(records, smk.output.manifest)
    logger.info("%d images indexed from %s (%s)", len(records), p.root, p.format)


run_script(snakemake, main)  # noqa: F821
