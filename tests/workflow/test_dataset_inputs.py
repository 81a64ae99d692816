"""Adding, removing or replacing an image under a user's SYSU-MM01 root reruns indexing.

The root is a tiny tree in tmp_path whose images are symlinks to the real sample beside the
project (nothing is copied); the workflow indexes it and makes the split once, then dry runs
show what a change of the root plans.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import planned_jobs, run_snakemake, write_config

pytestmark = pytest.mark.workflow

IDS = ("0001", "0002", "0003", "0004", "0005")
SPLIT = "results/sysu/splits/trial1.csv"


def _link_tree(sample: Path, root: Path) -> None:
    for cam in (f"cam{c}" for c in range(1, 7)):
        for pid in IDS:
            (root / cam / pid).mkdir(parents=True)
            for image in sorted((sample / cam / pid).iterdir()):
                (root / cam / pid / image.name).symlink_to(image)
    (root / "exp").mkdir()
    for f in (sample / "exp").iterdir():
        (root / "exp" / f.name).symlink_to(f)


def _plan(workdir: Path, config: Path) -> dict[str, int]:
    return planned_jobs(run_snakemake(workdir, SPLIT, "-n", "--configfile", str(config)))


def _build(workdir: Path, config: Path) -> None:
    run_snakemake(workdir, SPLIT, "--cores", "1", "--configfile", str(config))


def test_image_changes_rerun_indexing_and_what_follows(tmp_path: Path, shared_data: Path):
    sample = shared_data / "sysu_mm01_sample"
    root = tmp_path / "SYSU-MM01"
    _link_tree(sample, root)
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = write_config(workdir, {"sysu": {"format": "sysu_mm01", "root": str(root), "verify_images": False}})
    _build(workdir, config)
    assert (workdir / "results" / "sysu" / "index_warnings.txt").read_text() == ""  # the sample is complete
    assert _plan(workdir, config) == {}

    rerun = {"index_dataset": 1, "make_splits": 1}
    added = root / "cam1" / "0001" / "0003.jpg"
    added.symlink_to(sample / "cam1" / "0002" / "0001.jpg")
    assert _plan(workdir, config) == rerun
    added.unlink()  # back to the indexed set of images: nothing to do again
    assert _plan(workdir, config) == {}

    removed = root / "cam4" / "0005" / "0002.jpg"
    removed.unlink()
    assert _plan(workdir, config) == rerun
    removed.symlink_to(sample / "cam4" / "0005" / "0002.jpg")
    assert _plan(workdir, config) == {}

    # A bookkeeping file is a file input: an edit reruns indexing (Snakemake compares the
    # content of a newer small input with the recorded checksum, so a rewrite alone does not).
    val = root / "exp" / "val_id.txt"
    text = val.read_text()
    val.unlink()
    val.write_text(text.strip() + "\n")
    assert _plan(workdir, config) == rerun
    val.unlink()
    val.symlink_to(sample / "exp" / "val_id.txt")

    replaced = root / "cam3" / "0004" / "0001.jpg"
    replaced.unlink()
    shutil.copyfile(sample / "cam3" / "0004" / "0002.jpg", replaced)  # same name, other file
    assert _plan(workdir, config) == rerun
    _build(workdir, config)
    assert _plan(workdir, config) == {}


def test_incomplete_root_warns_in_the_warnings_file(tmp_path: Path, shared_data: Path):
    sample = shared_data / "sysu_mm01_sample"
    root = tmp_path / "SYSU-MM01"
    _link_tree(sample, root)
    for cam in ("cam3", "cam6"):
        shutil.rmtree(root / cam / "0005")  # test id 5 without infrared images
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = write_config(workdir, {"sysu": {"format": "sysu_mm01", "root": str(root), "verify_images": False}})
    run_snakemake(workdir, "results/sysu/manifest.csv", "--cores", "1", "--configfile", str(config))
    lines = (workdir / "results" / "sysu" / "index_warnings.txt").read_text().splitlines()
    assert len(lines) == 1 and "test_id.txt have no infrared image (cam3/cam6): 5" in lines[0]
    assert lines[0] in (workdir / "results" / "logs" / "sysu" / "index_dataset.log").read_text()


def test_evaluation_file_naming_missing_images_stops_indexing(tmp_path: Path, shared_data: Path):
    # The real rand_perm_cam.mat describes the real ids, not the sample's renumbered 1..5.
    sample = shared_data / "sysu_mm01_sample"
    root = tmp_path / "SYSU-MM01"
    _link_tree(sample, root)
    workdir = tmp_path / "work"
    workdir.mkdir()
    rand_perm = shared_data / "sysu_mm01_protocol" / "evaluation" / "rand_perm_cam.mat"
    config = write_config(
        workdir, {"sysu": {"format": "sysu_mm01", "root": str(root), "verify_images": False, "rand_perm_cam": str(rand_perm)}}
    )
    proc = run_snakemake(workdir, "results/sysu/manifest.csv", "--cores", "1", "--configfile", str(config), check=False)
    assert proc.returncode != 0
    log = (workdir / "results" / "logs" / "sysu" / "index_dataset.log").read_text()
    assert "rand_perm_cam.mat records other image counts" in log and "cam1/0004 holds 2, expected" in log
    assert not os.path.exists(workdir / "results" / "sysu" / "manifest.csv")
