# Report: paper-style tables (Markdown, CSV, LaTeX), CMC curves, provenance and ranked lists over every run.

from rgbir_reid.reporting.ranked_lists import (
    PROTOCOL_OF_FORMAT,
    figure_name,
    protocol_modes,
)

# One ranked-list figure per dataset, method and protocol mode, from the features of the first
# trial and, for a method that trains, of its first training seed only (one model per method is
# enough to see what it matches); sorted, so that the param does not change with the key order
# of a config file.
RANKED_LISTS = [
    {
        "dataset": d,
        "method": m,
        "mode": mode,
        "protocol": PROTOCOL_OF_FORMAT[dataset_format(d)],
        "features": f"{run_dirs(d, trials_of(d)[0], m)[0]}/features.h5",
        "rand_perm": DATASETS[d].get("rand_perm_cam"),
        "title": f"{d} / {m}: {mode} (trial {trials_of(d)[0]}"
        + (f", seed {SEEDS[0]}" if FAMILY_OF[m].trains else "")
        + ", gallery trial 0)",
        "out": f"results/report/ranked/{figure_name(d, m, mode)}",
    }
    for d in sorted(DATASETS)
    for m in sorted(METHODS)
    for mode in protocol_modes(dataset_format(d), config["evaluation"])
]


rule ranked_lists:
    input:
        features=sorted({fig["features"] for fig in RANKED_LISTS}),
        protocol_files=sorted(
            {fig["rand_perm"] for fig in RANKED_LISTS if fig["rand_perm"]}
        ),
    output:
        [
            report(
                fig["out"],
                caption="../report/ranked_list.rst",
                category="Ranked lists",
                subcategory=fig["dataset"],
                labels={"method": fig["method"], "mode": fig["mode"]},
            )
            for fig in RANKED_LISTS
        ],
    log:
        "results/logs/ranked_lists.log",
    benchmark:
        "results/benchmarks/ranked_lists.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        figures=RANKED_LISTS,
        sampler=config["evaluation"]["gallery_sampler"],
    script:
        "../scripts/ranked_lists.py"


rule report:
    input:
        metrics=metrics_files(),
        fidelity=fidelity_files(),
        samples=cyclegan_sample_grids(),
        method_figures=method_figure_files(),
        dataset_warnings=[f"results/{d}/index_warnings.txt" for d in DATASETS],
        ranked_lists=[fig["out"] for fig in RANKED_LISTS],
    output:
        table_md=report(
            "results/report/table.md",
            caption="../report/table.rst",
            category="Results",
            labels={"table": "CMC and mAP (Markdown)"},
        ),
        table_csv="results/report/table.csv",
        provenance=report(
            "results/report/provenance.html",
            caption="../report/provenance.rst",
            category="Results",
            labels={"table": "Provenance of every row"},
        ),
        table_tex="results/report/table.tex",
        cmc_png=report(
            "results/report/cmc.png",
            caption="../report/cmc.rst",
            category="Results",
            labels={"figure": "CMC curves"},
        ),
        cmc_pdf="results/report/cmc.pdf",
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/report.py"
