# Evaluation: every protocol mode the config asks for, one metrics file per trial and method.


rule evaluate:
    input:
        unpack(evaluate_input),
    output:
        metrics="results/{dataset}/trial{trial}/{method}/metrics.json",
    log:
        "results/logs/{dataset}/trial{trial}/{method}/evaluate.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/{method}/evaluate.tsv"
    priority: method_priority
    conda:
        "../../envs/torch.yaml"
    threads: 2  # rank_metrics ranks blocks of queries on up to 4 threads
    params:
        format=lambda wc: dataset_format(wc.dataset),
        settings=canonical(config["evaluation"]),
        # For each row's provenance (its config hash); editing a setting reruns the method anyway.
        family=lambda wc: FAMILY_OF[wc.method].name,
        method_settings=lambda wc: method_settings(wc.method),
    script:
        "../scripts/evaluate.py"
