"""Evaluate one trial's features under every protocol mode the config asks for."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.evaluation.protocols import evaluate_features  # noqa: E402
from rgbir_reid.io import write_json  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    ds, ev = smk.params.dataset_settings, smk.params.settings
    rows = evaluate_features(
        smk.input.features,
        smk.params.format,
        sysu_mm01_modes=ev["sysu_mm01_modes"],
        gallery_sampler=ev["gallery_sampler"],
        n_gallery_trials=ev["n_gallery_trials"],
        indoor_ids=ev["indoor_ids"],
        regdb_directions=ev["regdb_directions"],
        rand_perm_cam=ds.get("rand_perm_cam"),
        test_id_indoor=ds.get("test_id_indoor"),
    )
    extra = {"dataset": smk.wildcards.dataset, "method": smk.wildcards.method, "trial": int(smk.wildcards.trial)}
    rows = [{**extra, **row} for row in rows]
    write_json(rows, smk.output.metrics)
    for row in rows:
        logger.info("%s gallery trial %s: rank-1 %.4f mAP %.4f", row["protocol"], row["gallery_trial"], row["rank1"], row["mAP"])


run_script(snakemake, main)  # noqa: F821
