"""Index a dataset root in its native layout into a manifest CSV, and its completeness warnings."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.data.completeness import capture_completeness_warnings, write_warnings_file  # noqa: E402
from rgbir_reid.data.records import write_records_csv  # noqa: E402
from rgbir_reid.data.splits import get_format, index_dataset  # noqa: E402
from rgbir_reid.data.sysu_mm01 import check_sysu_mm01_evaluation_files  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    p = smk.params
    # Every dataset entry carries every option (schema defaults); pass those its format reads.
    candidates = {"verify_images": p.verify_images, "train_id_lists": tuple(p.train_id_lists)}
    accepted = get_format(p.format).options
    options = {k: v for k, v in candidates.items() if k in accepted}
    with capture_completeness_warnings() as messages:
        records = index_dataset(p.format, p.root, **options)
        if p.format == "sysu_mm01":
            # Read from the config, not params or inputs: they are evaluate's inputs, and as this
            # job's they would rerun indexing and all training when one is set or edited.
            ds = smk.config["datasets"][smk.wildcards.dataset]
            check_sysu_mm01_evaluation_files(
                p.root,
                rand_perm_file=ds.get("rand_perm_cam"),
                indoor_id_file=ds.get("test_id_indoor"),
                train_id_lists=tuple(p.train_id_lists),
            )
    for message in messages:
        logger.warning("%s", message)
    write_warnings_file(messages, smk.output.warnings)
    write_records_csv(records, smk.output.manifest)
    logger.info("%d images indexed from %s (%s), %d warning(s)", len(records), p.root, p.format, len(messages))


run_script(snakemake, main)  # noqa: F821
