# Re-ID: train one network per dataset trial and method, then extract test features.


rule train_reid:
    input:
        cache="results/{dataset}/trial{trial}/cache.h5",
    output:
        model="results/{dataset}/trial{trial}/{method}/model.pt",
        losses="results/{dataset}/trial{trial}/{method}/losses.csv",
        curve=report(
            "results/{dataset}/trial{trial}/{method}/losses.png",
            caption="../report/loss_curves.rst",
            category="Training",
            labels={"dataset": "{dataset}", "trial": "{trial}", "method": "{method}"},
        ),
        curve_pdf="results/{dataset}/trial{trial}/{method}/losses.pdf",
    message:
        "train_reid {wildcards.dataset} trial {wildcards.trial} {wildcards.method}: {params.budget}"
    log:
        "results/logs/{dataset}/trial{trial}/{method}/train_reid.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/{method}/train_reid.tsv"
    params:
        settings=lambda wc: reid_settings(wc.method),
        budget=lambda wc: training_budget(wc.method),
        device=config["device"],
        seed=config["seed"],
    threads: 8
    resources:
        gpu=1,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_reid.py"


rule extract:
    input:
        model="results/{dataset}/trial{trial}/{method}/model.pt",
        split="results/{dataset}/splits/trial{trial}.csv",
    output:
        features="results/{dataset}/trial{trial}/{method}/features.h5",
    log:
        "results/logs/{dataset}/trial{trial}/{method}/extract.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/{method}/extract.tsv"
    params:
        batch_size=config["extract"]["batch_size"],
        flip=config["extract"]["flip"],
        device=config["device"],
    threads: 8
    resources:
        gpu=1,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/extract.py"
