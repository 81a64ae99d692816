# Evaluation: every protocol mode the config asks for, one metrics file per trial, method and
# training seed (one per trial and method for methods that do not train).


rule evaluate:
    input:
        unpack(evaluate_input),
    output:
        metrics="results/{dataset}/trial{trial}/{method}/{seed_folder}metrics.json",
    log:
        "results/logs/{dataset}/trial{trial}/{method}/{seed_folder}evaluate.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/{method}/{seed_folder}evaluate.tsv"
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
        seed=run_seed,  # the run's training seed, None for a method that does not train
    script:
        "../scripts/evaluate.py"
