# Methods: train each method of a training family (one train_<family> job per dataset trial,
# method and training seed, `seeds:`: train_reid for CE²L and the baselines), then extract test
# features for every run. Families come from rgbir_reid.methods; a family that does not train
# (hand-crafted features) has no train job, no seed folder, and goes straight to `extract`.


for _family in TRAINED_FAMILIES:

    rule:
        name:
            f"train_{_family}"
        input:
            unpack(train_input),
        output:
            # figures of this family's own (e.g. AlignGAN's RGB -> fake IR sample grid)
            **{
                name: report(
                    f"results/{{dataset}}/trial{{trial}}/{{method}}/seed{{seed}}/{filename}",
                    caption="../report/method_figures.rst",
                    category="Training",
                    labels={
                        "dataset": "{dataset}",
                        "trial": "{trial}",
                        "method": "{method}",
                        "seed": "{seed}",
                        "figure": name,
                    },
                )
                for name, filename in get_family(_family).figures.items()
            },
            model="results/{dataset}/trial{trial}/{method}/seed{seed}/model.pt",
            losses="results/{dataset}/trial{trial}/{method}/seed{seed}/losses.csv",
            curve=report(
                "results/{dataset}/trial{trial}/{method}/seed{seed}/losses.png",
                caption="../report/loss_curves.rst",
                category="Training",
                labels={
                    "dataset": "{dataset}",
                    "trial": "{trial}",
                    "method": "{method}",
                    "seed": "{seed}",
                },
            ),
            curve_pdf="results/{dataset}/trial{trial}/{method}/seed{seed}/losses.pdf",
        log:
            f"results/logs/{{dataset}}/trial{{trial}}/{{method}}/seed{{seed}}/train_{_family}.log",
        benchmark:
            f"results/benchmarks/{{dataset}}/trial{{trial}}/{{method}}/seed{{seed}}/train_{_family}.tsv"
        wildcard_constraints:
            method="|".join(family_methods(_family)),
        priority: method_priority
        conda:
            "../../envs/torch.yaml"
        threads: 8
        resources:
            gpu=1,
        params:
            family=_family,
            settings=lambda wc: method_settings(wc.method),
            budget=lambda wc: training_budget(wc.method),
            device=config["device"],
            seed=lambda wc: int(wc.seed),  # the training seed (config key seeds)
        message:
            f"train_{_family} {{wildcards.dataset}} trial {{wildcards.trial}} {{wildcards.method}} seed {{wildcards.seed}}: {{params.budget}}"
        script:
            "../scripts/train.py"


rule extract:
    input:
        unpack(extract_input),
    output:
        features="results/{dataset}/trial{trial}/{method}/{seed_folder}features.h5",
    log:
        "results/logs/{dataset}/trial{trial}/{method}/{seed_folder}extract.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/{method}/{seed_folder}extract.tsv"
    priority: method_priority
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        gpu=1,
    params:
        family=lambda wc: FAMILY_OF[wc.method].name,
        settings=lambda wc: extract_settings(wc.method),
        batch_size=config["extract"]["batch_size"],
        flip=config["extract"]["flip"],
        device=config["device"],
    script:
        "../scripts/extract.py"
