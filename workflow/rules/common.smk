# Config validation, targets and input functions shared by every rule file.

import hashlib
import os
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
            raise ValueError(
                f"config key datasets.{name}.root is required for format {ds['format']!r}"
            )
        bad = set(ds.get("trials", [])) - set(FORMAT_TRIALS[ds["format"]])
        if bad:
            raise ValueError(
                f"config key datasets.{name}.trials: {sorted(bad)} not trials of format "
                f"{ds['format']!r}; expected a subset of {FORMAT_TRIALS[ds['format']]}"
            )


_check_datasets()


def _check_results_folder():
    # Every output goes under results/; a file there (or an unwritable folder) would otherwise
    # surface as a traceback from inside Snakemake's planning.
    results = Path("results")
    if results.exists() and not results.is_dir():
        raise ValueError(
            f"{results.resolve()} is a file, not a folder: the workflow writes every output under results/; move it away"
        )
    target = results if results.exists() else Path(".")
    if not os.access(target, os.W_OK):
        raise ValueError(
            f"cannot write {target.resolve()}: the workflow writes every output under results/ (permission denied)"
        )


_check_results_folder()


# Training seeds (`seeds:`; without it the one `seed:`): a method of a training family trains
# one model per seed, each in its own folder {method}/seed{seed}/; a method that does not train
# is deterministic, runs once and keeps {method}/. `seed:` still seeds everything else (the demo,
# the gallery sampling of the ranked lists, ...).
SEEDS = config.get("seeds") or [config["seed"]]


wildcard_constraints:
    dataset="|".join(DATASETS) or "no-dataset",
    method="|".join(METHODS) or "no-method",
    trial=r"\d+",
    seed=r"\d+",
    # a run's folder inside {method}/: "seed<N>/" for a trained model, "" for a method that does not train
    seed_folder=r"(seed\d+/)?",


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


def _check_methods():
    # Settings that must fit the rest of the config (e.g. AlignGAN starting from the CycleGAN).
    for method, family in FAMILY_OF.items():
        if family.check:
            family.check(method_settings(method), config, f"methods.{method}")


_check_methods()


def family_methods(family):
    """The config's methods of one family, in config order."""
    return [m for m in METHODS if FAMILY_OF[m].name == family]


def training_budget(method):
    """One line on a method's optimisation budget, shown by `snakemake -n` (the train job's message)."""
    return (
        FAMILY_OF[method].budget(method_settings(method))
        if FAMILY_OF[method].budget
        else "no budget line"
    )


def method_priority(wildcards):
    """Snakemake priority of a method's train, extract and evaluate jobs: its family's estimate
    of the training's size (0 for methods that do not train). The largest trainings start
    first, so that with two jobs at once the longest does not start last and hold up the end;
    a trained method's extract and evaluate then come before the smaller trainings still
    waiting, so they do not pile up at the end either."""
    family = FAMILY_OF[wildcards.method]
    return family.work(method_settings(wildcards.method)) if family.work else 0


def seed_folders(method):
    """The run folders of a method inside its own: one "seed<N>/" per training seed for a
    family that trains, a single "" for one that does not (no seed changes its features).
    """
    return [f"seed{s}/" for s in SEEDS] if FAMILY_OF[method].trains else [""]


def run_seed(wildcards):
    """The training seed of a run (extract, evaluate jobs), None for a method that does not train."""
    folder = wildcards.seed_folder
    trains = FAMILY_OF[wildcards.method].trains
    if trains != bool(folder):
        raise ValueError(
            f"results/{wildcards.dataset}/trial{wildcards.trial}/{wildcards.method}/{folder}: "
            + (
                f"method {wildcards.method} trains one model per seed (config key seeds), so its "
                "results are under {method}/seed<N>/"
                if trains
                else f"method {wildcards.method} does not train, so it has no seed folder"
            )
        )
    return int(folder.removeprefix("seed").removesuffix("/")) if folder else None


def run_dirs(dataset, trial, method):
    """The result folders of one method of one trial: one per training seed, or one."""
    return [
        f"results/{dataset}/trial{trial}/{method}/{folder}".rstrip("/")
        for folder in seed_folders(method)
    ]


def uses_conversion(method):
    return FAMILY_OF[method].needs_conversion(method_settings(method))


def uses_cache(method):
    return FAMILY_OF[method].trains and FAMILY_OF[method].needs_cache(
        method_settings(method)
    )


# Fixed by the config, so decided once here rather than in every input function call.
ANY_CONVERSION = any(uses_conversion(m) for m in METHODS)
# Families with a training job (train_<family>), in config order.
TRAINED_FAMILIES = list(dict.fromkeys(f.name for f in FAMILY_OF.values() if f.trains))


# What indexing reads under a user's root, so that adding, removing or replacing an image (or
# editing an id list / idx file) reruns index_dataset and, through the manifest, what follows.
# - The bookkeeping files (exp/*.txt, idx/*.txt; at most 44) are file inputs: the "mtime" and
#   "input" rerun triggers notice an edited, added or removed one.
# - The images are summed up in a param, `images`: their count and a sha256 over each one's
#   path, size and mtime (ns), listed with os.scandir when the DAG is built. A change of the
#   param reruns the job ("params" trigger, on by default); the dry run's reason reads
#   "params changed". A directory input would not do: Snakemake takes a directory's own mtime,
#   which a file replaced in place (or deep inside) does not change.
#   Measured with Snakemake 9.27 on 2 cores over a fake SYSU-MM01 tree of 45,863 empty files
#   (the real dataset's count): with the images as 45,863 file inputs instead, `snakemake -n`
#   took 7.3 s before indexing (2.3 s on the 60-image sample; 10.6 s without --quiet, which
#   prints every input of the planned job, 2 MB) and 10.5 s with nothing to do, and the run
#   left 15 MB of .snakemake/metadata; with the param, 2.7 s before indexing and 2.8 s with
#   nothing to do (the listing itself: 0.28 s, warm file cache), 12 KB of metadata.
# Only files that exist are listed, without a layout check: a missing id list or camera folder
# is for the indexing job to name in its error.
# The evaluation files (rand_perm_cam, test_id_indoor) are checked by the indexing job too, but
# are inputs of evaluate only: as inputs or params here, setting or editing one would rerun
# indexing and so all training, where only evaluation depends on them.
NATIVE_LAYOUTS = {
    # format: (bookkeeping folder, image folders, image suffixes), as the readers in
    # src/rgbir_reid/data/ (sysu_mm01.py, regdb.py) read them.
    "sysu_mm01": ("exp", [f"cam{c}" for c in range(1, 7)], (".jpg", ".jpeg")),
    "regdb": ("idx", ["Visible", "Thermal"], (".bmp",)),
}


def _entries(folder):
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def native_bookkeeping_files(fmt, root):
    """The id lists (SYSU-MM01) or idx files (RegDB) under a native root that exist."""
    folder = NATIVE_LAYOUTS[fmt][0]
    return [
        e.path
        for e in _entries(os.path.join(root, folder))
        if e.is_file() and e.name.endswith(".txt")
    ]


def native_image_state(fmt, root):
    """{"images": count, "sha256": digest of (relative path, size, mtime_ns) of every image}."""
    _, image_dirs, suffixes = NATIVE_LAYOUTS[fmt]
    digest = hashlib.sha256()
    count = 0
    for image_dir in image_dirs:
        for pid_dir in _entries(os.path.join(root, image_dir)):
            if not pid_dir.is_dir():
                continue
            for e in _entries(pid_dir.path):
                if e.is_file() and e.name.lower().endswith(suffixes):
                    st = e.stat()
                    digest.update(
                        f"{image_dir}/{pid_dir.name}/{e.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode()
                    )
                    count += 1
    return {"images": count, "sha256": digest.hexdigest()}


def index_dataset_input(wildcards):
    fmt = dataset_format(wildcards.dataset)
    if fmt == "demo":
        return {
            "root": dataset_root(wildcards.dataset)
        }  # rule make_demo's output folder
    return {
        "bookkeeping": native_bookkeeping_files(
            fmt, os.path.expanduser(dataset_root(wildcards.dataset))
        )
    }


def index_dataset_images(wildcards):
    fmt = dataset_format(wildcards.dataset)
    if fmt == "demo":
        return None  # the demo's images change only with make_demo, whose output is the input
    return native_image_state(fmt, os.path.expanduser(dataset_root(wildcards.dataset)))


def cache_input(wildcards):
    inputs = {"split": f"results/{wildcards.dataset}/splits/trial{wildcards.trial}.csv"}
    if ANY_CONVERSION:
        inputs["generator"] = (
            f"results/{wildcards.dataset}/trial{wildcards.trial}/cyclegan/generator.pt"
        )
    return inputs


# Dataset keys naming the SYSU-MM01 protocol files that `evaluate` reads.
PROTOCOL_FILE_KEYS = ("rand_perm_cam", "test_id_indoor")


def train_input(wildcards):
    """The cache (or the split) and, for a method starting from the trial's CycleGAN, its generators."""
    trial = f"results/{wildcards.dataset}/trial{wildcards.trial}"
    if uses_cache(wildcards.method):
        inputs = {"cache": f"{trial}/cache.h5"}
    else:
        inputs = {
            "split": f"results/{wildcards.dataset}/splits/trial{wildcards.trial}.csv"
        }
    family = FAMILY_OF[wildcards.method]
    if family.needs_generators and family.needs_generators(
        method_settings(wildcards.method)
    ):
        inputs["generators"] = f"{trial}/cyclegan/generator.pt"
    return inputs


def extract_input(wildcards):
    """The split, and the trained model of the run's seed for families that train (hand-crafted
    ones need none)."""
    inputs = {"split": f"results/{wildcards.dataset}/splits/trial{wildcards.trial}.csv"}
    if run_seed(wildcards) is not None:
        inputs["model"] = (
            f"results/{wildcards.dataset}/trial{wildcards.trial}/{wildcards.method}/{wildcards.seed_folder}model.pt"
        )
    return inputs


def extract_settings(method):
    """Settings `extract` reads: none for trained families (the model file carries them)."""
    return {} if FAMILY_OF[method].trains else method_settings(method)


def evaluate_input(wildcards):
    """The features, and each protocol file the dataset sets: inputs, so editing one reruns `evaluate`."""
    ds = DATASETS[wildcards.dataset]
    inputs = {
        "features": f"results/{wildcards.dataset}/trial{wildcards.trial}/{wildcards.method}/{wildcards.seed_folder}features.h5"
    }
    inputs.update({key: ds[key] for key in PROTOCOL_FILE_KEYS if ds.get(key)})
    return inputs


def metrics_files():
    return [
        f"{run}/metrics.json"
        for d in DATASETS
        for t in trials_of(d)
        for m in METHODS
        for run in run_dirs(d, t, m)
    ]


def cyclegan_sample_grids():
    if not ANY_CONVERSION:
        return []
    return [
        f"results/{d}/trial{t}/cyclegan/samples.png"
        for d in DATASETS
        for t in trials_of(d)
    ]


def method_figure_files():
    """The figures training families write beside their models (e.g. AlignGAN's sample grids)."""
    return [
        f"{run}/{filename}"
        for d in DATASETS
        for t in trials_of(d)
        for m in METHODS
        for run in run_dirs(d, t, m)
        for filename in FAMILY_OF[m].figures.values()
    ]


def fidelity_files():
    return (
        ["results/fidelity/fidelity.csv"]
        if config["conversion_fidelity"]["root"]
        else []
    )


def all_targets():
    return ["results/report/table.md", "results/report/table.csv"]
