"""Evaluate one trial's features under every protocol mode the config asks for."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import h5py  # noqa: E402

from rgbir_reid import __version__  # noqa: E402
from rgbir_reid.evaluation.protocols import EvaluationSettings, evaluate_features  # noqa: E402
from rgbir_reid.evaluation.rerank import RerankSettings  # noqa: E402
from rgbir_reid.io import write_json  # noqa: E402
from rgbir_reid.reporting.provenance import row_provenance  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402
from rgbir_reid.code_hash import training_code_hash  # noqa: E402

# The demo dataset has the SYSU-MM01 layout and is evaluated with its protocol.
PROTOCOL_OF_FORMAT = {"sysu_mm01": "sysu_mm01", "demo": "sysu_mm01", "regdb": "regdb"}


def main(smk, logger):
    ev = smk.params.settings
    settings = EvaluationSettings(
        sysu_modes=tuple(ev["sysu_mm01_modes"]),
        sysu_sampler=ev["gallery_sampler"],
        sysu_n_trials=ev["n_gallery_trials"],
        # Optional inputs: present only when the dataset's config sets the file.
        sysu_rand_perm_file=smk.input.get("rand_perm_cam"),
        sysu_indoor_id_file=smk.input.get("test_id_indoor"),
        regdb_directions=tuple(ev["regdb_directions"]),
        rerank=RerankSettings(ev["rerank_k1"], ev["rerank_k2"], ev["rerank_lambda"]) if ev["rerank"] else None,
    )
    with h5py.File(smk.input.features, "r") as f:
        data = {k: f[k][()] for k in ("features", "pid", "camera", "modality")}
        paths = f["path"].asstr()[()]
        attrs = dict(f.attrs)
    provenance = row_provenance(attrs, family=smk.params.family, settings=smk.params.method_settings,
                                version=__version__, code_hash=training_code_hash())
    rows = evaluate_features(
        data["features"], data["pid"], data["camera"], data["modality"], paths,
        dataset_format=PROTOCOL_OF_FORMAT[smk.params.format], settings=settings,
    )
    # seed: the training seed of the model (None: the method does not train); the report averages
    # each seed's rows first and gives the spread over seeds.
    extra = {"dataset": smk.wildcards.dataset, "method": smk.wildcards.method, "trial": int(smk.wildcards.trial),
             "seed": smk.params.seed, **provenance}
    rows = [{**row, **extra} for row in rows]
    write_json(rows, smk.output.metrics)
    for row in rows:
        logger.info(
            "%s%s, gallery trial %s: rank-1 %.4f mAP %.4f (chance: rank-1 %.4f mAP %.4f)",
            row["protocol"], " +rerank" if row["rerank"] else "", row["gallery_trial"], row["rank1"], row["mAP"],
            row["chance_rank1"], row["chance_mAP"],
        )


run_script(snakemake, main)  # noqa: F821
