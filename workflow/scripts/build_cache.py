"""Write the trial's HDF5 cache of real and converted training images."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from tqdm import tqdm  # noqa: E402

from rgbir_reid.data.records import read_records_csv  # noqa: E402
from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.io import config_hash  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402
from rgbir_reid.conversion import build_cache  # noqa: E402


def main(smk, logger):
    s = smk.params.settings
    train = [r for r in read_records_csv(smk.input.split) if r.subset == "train"]
    generator = smk.input.get("generator")
    with tqdm(total=len(train), desc="build_cache", disable=not sys.stderr.isatty()) as bar:
        build_cache(
            smk.output.cache,
            train,
            tuple(s["image_size"]),
            generator,
            device=resolve_device(smk.params.device),
            batch_size=s["batch_size"],
            config_hash=config_hash(s),
            progress=bar.update,
        )
    logger.info("cache of %d real images (converted: %s) at %s", len(train), bool(generator), smk.output.cache)


run_script(snakemake, main)  # noqa: F821
