"""Ranked-list figures: for each dataset, method and protocol mode, a few seeded queries and their top-10."""

import sys
from pathlib import Path

# Snakemake sets __file__ to this script; make src/ importable inside conda envs too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rgbir_reid.reporting.ranked_lists import ranked_list_figure  # noqa: E402
from rgbir_reid.scripting import run_script  # noqa: E402


def main(smk, logger):
    for fig in smk.params.figures:
        ranked = ranked_list_figure(fig["features"], fig["out"], mode=fig["mode"], protocol=fig["protocol"],
                                    sampler=smk.params.sampler, rand_perm_file=fig["rand_perm"], title=fig["title"])
        logger.info("%s: queries %s, true matches in the top %d: %s", fig["out"], ranked.position.tolist(),
                    ranked.gallery.shape[1], ranked.match.sum(1).tolist())


run_script(snakemake, main)  # noqa: F821
