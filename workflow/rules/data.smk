# Datasets: the built-in demo, the manifest of a native layout, per-trial splits.

import hashlib
import os


rule make_demo:
    output:
        root=directory("results/{dataset}/demo_data"),
    log:
        "results/logs/{dataset}/make_demo.log",
    benchmark:
        "results/benchmarks/{dataset}/make_demo.tsv"
    params:
        options=lambda wc: canonical(DATASETS[wc.dataset]["demo"]),
        seed=config["seed"],
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/make_demo.py"


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
    return [e.path for e in _entries(os.path.join(root, folder)) if e.is_file() and e.name.endswith(".txt")]


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
                    digest.update(f"{image_dir}/{pid_dir.name}/{e.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
                    count += 1
    return {"images": count, "sha256": digest.hexdigest()}


def index_dataset_input(wildcards):
    fmt = dataset_format(wildcards.dataset)
    if fmt == "demo":
        return {"root": dataset_root(wildcards.dataset)}  # rule make_demo's output folder
    return {"bookkeeping": native_bookkeeping_files(fmt, os.path.expanduser(dataset_root(wildcards.dataset)))}


def index_dataset_images(wildcards):
    fmt = dataset_format(wildcards.dataset)
    if fmt == "demo":
        return None  # the demo's images change only with make_demo, whose output is the input
    return native_image_state(fmt, os.path.expanduser(dataset_root(wildcards.dataset)))


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
    params:
        format=lambda wc: dataset_format(wc.dataset),
        root=lambda wc: dataset_root(wc.dataset),
        train_id_lists=lambda wc: DATASETS[wc.dataset]["train_id_lists"],
        verify_images=lambda wc: DATASETS[wc.dataset]["verify_images"],
        images=index_dataset_images,
    conda:
        "../../envs/torch.yaml"
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
    params:
        format=lambda wc: dataset_format(wc.dataset),
        root=lambda wc: dataset_root(wc.dataset),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/make_splits.py"
