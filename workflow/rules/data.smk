# Datasets: the built-in demo, the manifest of a native layout, per-trial splits.


rule make_demo:
    output:
        root=directory("results/{dataset}/demo_data"),
    log:
        "results/logs/{dataset}/make_demo.log",
    benchmark:
        "results/benchmarks/{dataset}/make_demo.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 8  # rendering processes (same bytes for any number)
    params:
        options=lambda wc: canonical(DATASETS[wc.dataset]["demo"]),
        seed=config["seed"],
    script:
        "../scripts/make_demo.py"


rule index_dataset:
    input:
        unpack(index_dataset_input),
    output:
        manifest="results/{dataset}/manifest.csv",
        warnings="results/{dataset}/index_warnings.txt",
    log:
        "results/logs/{dataset}/index_dataset.log",
    benchmark:
        "results/benchmarks/{dataset}/index_dataset.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        format=lambda wc: dataset_format(wc.dataset),
        root=lambda wc: dataset_root(wc.dataset),
        train_id_lists=lambda wc: DATASETS[wc.dataset]["train_id_lists"],
        verify_images=lambda wc: DATASETS[wc.dataset]["verify_images"],
        images=index_dataset_images,
    script:
        "../scripts/index_dataset.py"


rule make_splits:
    input:
        manifest="results/{dataset}/manifest.csv",
    output:
        split="results/{dataset}/splits/trial{trial}.csv",
    log:
        "results/logs/{dataset}/trial{trial}/make_splits.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/make_splits.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        format=lambda wc: dataset_format(wc.dataset),
        root=lambda wc: dataset_root(wc.dataset),
    script:
        "../scripts/make_splits.py"
