# Methods: train each method of a training family (one train_<family> job per dataset trial and
# method: train_reid for CE²L and the baselines), then extract test features for every method.
# Families come from rgbir_reid.methods; a family that does not train (hand-crafted features)
# has no train job and goes straight to `extract`.


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
                    f"results/{{dataset}}/trial{{trial}}/{{method}}/{filename}",
                    caption="../report/method_figures.rst",
                    category="Training",
                    labels={
                        "dataset": "{dataset}",
                        "trial": "{trial}",
                        "method": "{method}",
                        "figure": name,
                    },
                )
                for name, filename in get_family(_family).figures.items()
            },
            model="results/{dataset}/trial{trial}/{method}/model.pt",
            losses="results/{dataset}/trial{trial}/{method}/losses.csv",
            curve=report(
                "results/{dataset}/trial{trial}/{method}/losses.png",
                caption="../report/loss_curves.rst",
                category="Training",
                labels={
                    "dataset": "{dataset}",
                    "trial": "{trial}",
                    "method": "{method}",
                },
            ),
            curve_pdf="results/{dataset}/trial{trial}/{method}/losses.pdf",
        log:
            f"results/logs/{{dataset}}/trial{{trial}}/{{method}}/train_{_family}.log",
        benchmark:
            f"results/benchmarks/{{dataset}}/trial{{trial}}/{{method}}/train_{_family}.tsv"
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
            seed=config["seed"],
        message:
            f"train_{_family} {{wildcards.dataset}} trial {{wildcards.trial}} {{wildcards.method}}: {{params.budget}}"
        script:
            "../scripts/train.py"


rule extract:
    input:
        unpack(extract_input),
    output:
        features="results/{dataset}/trial{trial}/{method}/features.h5",
    log:
        "results/logs/{dataset}/trial{trial}/{method}/extract.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/{method}/extract.tsv"
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
