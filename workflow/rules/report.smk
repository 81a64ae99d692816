# Report: paper-style tables (Markdown, CSV, LaTeX) and CMC curves over every run.


rule report:
    input:
        metrics=metrics_files(),
        fidelity=fidelity_files(),
        samples=cyclegan_sample_grids(),
        method_figures=method_figure_files(),
        dataset_warnings=[f"results/{d}/index_warnings.txt" for d in DATASETS],
    output:
        table_md=report(
            "results/report/table.md",
            caption="../report/table.rst",
            category="Results",
            labels={"table": "CMC and mAP (Markdown)"},
        ),
        table_csv="results/report/table.csv",
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
