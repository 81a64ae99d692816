# Config validation, targets and input functions shared by every rule file.

import sys
from pathlib import Path

from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

# The method families (rgbir_reid.methods) say what each method needs; importing the registry
# does not import torch, so parsing stays fast.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from rgbir_reid.methods import get_family, method_settings as _method_settings

# Trials per dataset format: SYSU-MM01 (and the demo, which has its layout) has one
# training split, evaluated over gallery trials inside `evaluate`; RegDB has ten splits,
# each with its own models.
FORMAT_TRIALS = {"sysu_mm01": [1], "demo": [1], "regdb": list(range(1, 11))}
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


# Each method's family (rgbir_reid.methods.MethodFamily), fixed by the config.
FAMILY_OF = {method: get_family(entry["family"]) for method, entry in METHODS.items()}


def method_settings(method):
    """A method's settings: its family's defaults section with the method's overrides."""
    return canonical(_method_settings(METHODS[method], config))


def family_methods(family):
    """The config's methods of one family, in config order."""
    return [m for m in METHODS if FAMILY_OF[m].name == family]


def training_budget(method):
    """One line on a method's optimisation budget, shown by `snakemake -n` (the train job's message)."""
    return FAMILY_OF[method].budget(method_settings(method)) if FAMILY_OF[method].budget else "no budget line"


def uses_conversion(method):
    return FAMILY_OF[method].needs_conversion(method_settings(method))


def uses_cache(method):
    return FAMILY_OF[method].trains and FAMILY_OF[method].needs_cache(method_settings(method))


# Fixed by the config, so decided once here rather than in every input function call.
ANY_CONVERSION = any(uses_conversion(m) for m in METHODS)
# Families with a training job (train_<family>), in config order.
TRAINED_FAMILIES = list(dict.fromkeys(f.name for f in FAMILY_OF.values() if f.trains))


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


def train_input(wildcards):
    if uses_cache(wildcards.method):
        return {"cache": f"results/{wildcards.dataset}/trial{wildcards.trial}/cache.h5"}
    return {"split": f"results/{wildcards.dataset}/splits/trial{wildcards.trial}.csv"}


def extract_input(wildcards):
    """The split, and the trained model for families that train (hand-crafted ones need none)."""
    inputs = {"split": f"results/{wildcards.dataset}/splits/trial{wildcards.trial}.csv"}
    if FAMILY_OF[wildcards.method].trains:
        inputs["model"] = f"results/{wildcards.dataset}/trial{wildcards.trial}/{wildcards.method}/model.pt"
    return inputs


def extract_settings(method):
    """Settings `extract` reads: none for trained families (the model file carries them)."""
    return {} if FAMILY_OF[method].trains else method_settings(method)


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
