# Modality conversion: CycleGAN RGB<->IR on the trial's training identities, the HDF5
# cache of real and converted images, and the conversion fidelity on registered pairs.


rule train_cyclegan:
    input:
        split="results/{dataset}/splits/trial{trial}.csv",
    output:
        generator="results/{dataset}/trial{trial}/cyclegan/generator.pt",
        samples=report(
            "results/{dataset}/trial{trial}/cyclegan/samples.png",
            caption="../report/cyclegan_samples.rst",
            category="Modality conversion",
            labels={
                "dataset": "{dataset}",
                "trial": "{trial}",
                "figure": "sample grid",
            },
        ),
        losses="results/{dataset}/trial{trial}/cyclegan/losses.csv",
    log:
        "results/logs/{dataset}/trial{trial}/train_cyclegan.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/train_cyclegan.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        gpu=1,
    params:
        settings=canonical(config["cyclegan"]),
        device=config["device"],
        seed=config["seed"],
    script:
        "../scripts/train_cyclegan.py"


rule build_cache:
    input:
        unpack(cache_input),
    output:
        cache="results/{dataset}/trial{trial}/cache.h5",
    log:
        "results/logs/{dataset}/trial{trial}/build_cache.log",
    benchmark:
        "results/benchmarks/{dataset}/trial{trial}/build_cache.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        gpu=1,
    params:
        settings=canonical(config["cache"]),
        device=config["device"],
    script:
        "../scripts/build_cache.py"


rule train_cyclegan_pairs:
    output:
        generator="results/fidelity/cyclegan/generator.pt",
        samples="results/fidelity/cyclegan/samples.png",
        losses="results/fidelity/cyclegan/losses.csv",
    log:
        "results/logs/fidelity/train_cyclegan_pairs.log",
    benchmark:
        "results/benchmarks/fidelity/train_cyclegan_pairs.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        gpu=1,
    params:
        root=config["conversion_fidelity"]["root"],
        settings=canonical(config["cyclegan"]),
        device=config["device"],
        seed=config["seed"],
    script:
        "../scripts/train_cyclegan_pairs.py"


rule conversion_fidelity:
    input:
        generator="results/fidelity/cyclegan/generator.pt",
    output:
        table=report(
            "results/fidelity/fidelity.csv",
            caption="../report/fidelity.rst",
            category="Modality conversion",
            labels={"table": "conversion fidelity"},
        ),
    log:
        "results/logs/fidelity/conversion_fidelity.log",
    benchmark:
        "results/benchmarks/fidelity/conversion_fidelity.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 8
    resources:
        gpu=1,
    params:
        root=config["conversion_fidelity"]["root"],
        image_size=config["cyclegan"]["image_size"],
        device=config["device"],
    script:
        "../scripts/conversion_fidelity.py"
