# Config validation, targets and input functions shared by every rule file.

import copy

from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

# Trials per dataset format: SYSU-MM01 (and the demo, which has its layout) has one
# training split, evaluated over gallery trials inside `evaluate`; RegDB has ten splits,
# each with its own models.
FORMAT_TRIALS = {"sysu_mm01": [1], "demo": [1], "regdb": list(range(1, 11))}
# Methods whose training reads converted images need the CycleGAN.
CONVERTED_SETS = {"converted_visible", "converted_thermal"}

DATASETS = config["datasets"]
METHODS = config["methods"]


def _check_datasets():
    for name, ds in DATASETS.items():
        if ds["format"] != "demo" and not ds.get("root"):
            raise ValueError(f"config key datasets.{name}.root is required for format {ds['format']!r}")
        bad = set(ds.get("trials", [])) - set(FORMAT_TRIALS[ds["format"]])
        if bad:
            raise ValueError(
                f"config key datasets.{name}.trials: {sorted(bad)} not trials of format "
                f"{ds['format']!r}; expected a subset of {FORMAT_TRIALS[ds['format']]}"
            )


_check_datasets()


wildcard_constraints:
    dataset="|".join(DATASETS) or "no-dataset",
    method="|".join(METHODS) or "no-method",
    trial=r"\d+",


def canonical(settings):
    """A settings mapping with sorted keys: Snakemake compares params as recorded, so key
    order (which differs between config files) must not look like a change."""
    if isinstance(settings, dict):
        return {k: canonical(settings[k]) for k in sorted(settings)}
    return settings


def dataset_format(dataset):
    return DATASETS[dataset]["format"]


def dataset_root(dataset):
    """The dataset's native-layout root; the demo is generated under results/."""
    if dataset_format(dataset) == "demo":
        return f"results/{dataset}/demo_data"
    return DATASETS[dataset]["root"]


def trials_of(dataset):
    return DATASETS[dataset].get("trials") or FORMAT_TRIALS[dataset_format(dataset)]


def reid_settings(method):
    """The re-ID settings of one method: the `reid:` section with the method's overrides."""
    settings = copy.deepcopy(config["reid"])
    settings.update(METHODS[method] or {})
    return canonical(settings)


def training_budget(method):
    """One line on a method's optimisation budget, shown by `snakemake -n` (train_reid's message).

    Steps per epoch are `batches_per_epoch`, or one pass over the method's training rows: with
    converted sets the rows and the batch both double (K_c = K), so methods run side by side
    take the same number of steps whenever their epochs, batches_per_epoch and schedule agree.
    """
    s = reid_settings(method)
    converted = uses_conversion(method)
    k, p = s["num_instances"], s["num_identities"]
    k_c = (k if s.get("num_converted_instances") is None else s["num_converted_instances"]) if converted else 0
    batch = 2 * p * (k + k_c)
    # Rows per real image: 2 with converted sets (each real image and its conversion).
    per_epoch = s["batches_per_epoch"] or f"ceil(real training images / {batch / (2 if converted else 1):g})"
    return (
        f"{s['epochs']} epochs of {per_epoch} steps, {batch} images per step "
        f"({p} identities x {k} real{f' + {k_c} converted' if converted else ''} per modality); "
        f"lr {s['lr']}, x{s['lr_gamma']} at epochs {s['lr_milestones']}, warm-up {s['warmup_epochs']} epochs"
    )


def uses_conversion(method):
    return bool(CONVERTED_SETS & set(reid_settings(method)["train_sets"]))


# Fixed by the config, so decided once here rather than in every input function call.
ANY_CONVERSION = any(uses_conversion(m) for m in METHODS)


def index_input(wildcards):
    if dataset_format(wildcards.dataset) == "demo":
        return {"root": dataset_root(wildcards.dataset)}
    return {}


def cache_input(wildcards):
    inputs = {"split": f"results/{wildcards.dataset}/splits/trial{wildcards.trial}.csv"}
    if ANY_CONVERSION:
        inputs["generator"] = f"results/{wildcards.dataset}/trial{wildcards.trial}/cyclegan/generator.pt"
    return inputs


# Dataset keys naming the SYSU-MM01 protocol files that `evaluate` reads.
PROTOCOL_FILE_KEYS = ("rand_perm_cam", "test_id_indoor")


def evaluate_input(wildcards):
    """The features, and each protocol file the dataset sets: inputs, so editing one reruns `evaluate`."""
    ds = DATASETS[wildcards.dataset]
    inputs = {"features": f"results/{wildcards.dataset}/trial{wildcards.trial}/{wildcards.method}/features.h5"}
    inputs.update({key: ds[key] for key in PROTOCOL_FILE_KEYS if ds.get(key)})
    return inputs


def metrics_files():
    return [
        f"results/{d}/trial{t}/{m}/metrics.json"
        for d in DATASETS
        for t in trials_of(d)
        for m in METHODS
    ]


def cyclegan_sample_grids():
    if not ANY_CONVERSION:
        return []
    return [f"results/{d}/trial{t}/cyclegan/samples.png" for d in DATASETS for t in trials_of(d)]


def fidelity_files():
    return ["results/fidelity/fidelity.csv"] if config["conversion_fidelity"]["root"] else []


def all_targets():
    return ["results/report/table.md", "results/report/table.csv"]
