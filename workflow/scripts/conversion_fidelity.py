"""Score G_rgb2ir on held-out registered pairs (L1, PSNR, SSIM) beside a grey baseline."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.conversion import convert_images  # noqa: E402
from rgbir_reid.data.paired import load_pairs, read_pairs  # noqa: E402
from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.evaluation.fidelity import conversion_fidelity  # noqa: E402
from rgbir_reid.io import atomic_output  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    pairs = read_pairs(Path(smk.params.root) / "test")
    if not pairs:
        raise ValueError(f"conversion_fidelity.root: no test pairs under {Path(smk.params.root) / 'test'}")
    visible, infrared = load_pairs(pairs, tuple(smk.params.image_size))
    # Conversion, then scoring of the converted images (evaluation sees images, not networks).
    converted = convert_images(smk.input.generator, visible, "rgb2ir", device=resolve_device(smk.params.device), batch_size=8)
    table = conversion_fidelity(visible, infrared, converted)
    with atomic_output(smk.output.table) as tmp:
        table.to_csv(tmp, index=False)
    logger.info("conversion fidelity on %d test pairs:\n%s", len(pairs), table.to_string(index=False))


run_script(snakemake, main)  # noqa: F821
