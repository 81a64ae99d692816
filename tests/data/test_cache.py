"""The HDF5 cache with CycleGAN converters: provenance, contents, and no half file after SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rgbir_reid.data.cache import KIND_CONVERTED, KIND_REAL, CacheBatchDataset, CacheDataset, cache_is_current, read_cache_attrs, write_cache
from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE, ImageRecord
from rgbir_reid.data.transforms import load_image
from rgbir_reid.io import sha256_file
from rgbir_reid.models.cyclegan import build_cyclegan
from rgbir_reid.conversion import build_cache, make_converters, save_generators

SIZE = (32, 16)



def _sysu_records(shared_data: Path) -> list[ImageRecord]:
    root = shared_data / "sysu_mm01_sample"
    out = []
    for p in sorted(root.glob("cam*/*/*.jpg")):
        cam, pid = int(p.parts[-3][3:]), int(p.parts[-2])
        out.append(ImageRecord(str(p), pid, cam, THERMAL if cam in (3, 6) else VISIBLE, "train"))
    return out


def _generator(path: Path, seed: int) -> Path:
    nets = build_cyclegan(ngf=4, ndf=4, n_blocks=1, seed=seed)
    return save_generators(path, {n: nets[n] for n in ("G_rgb2ir", "G_ir2rgb")})


def test_cache_names_generator_and_holds_converted_images(shared_data, tmp_path):
    records = _sysu_records(shared_data)[::3]  # 20 images of both modalities
    gen = _generator(tmp_path / "generator.pt", seed=0)
    out = build_cache(tmp_path / "cache.h5", records, SIZE, gen, batch_size=8, config_hash="abc")
    sha = sha256_file(gen)
    attrs = read_cache_attrs(out)
    assert attrs["generator_sha256"] == sha and attrs["config_hash"] == "abc"
    assert (attrs["image_height"], attrs["image_width"]) == SIZE
    assert cache_is_current(out, generator_sha256=sha, config_hash="abc")
    other = sha256_file(_generator(tmp_path / "other.pt", seed=1))
    assert other != sha and not cache_is_current(out, generator_sha256=other, config_hash="abc")

    n = len(records)
    with h5py.File(out, "r") as f:
        images, modality, kind, source = f["images"][()], f["modality"][()], f["kind"][()], f["source_index"][()]
        pid, camera, path = f["pid"][()], f["camera"][()], f["path"].asstr()[()]
    assert images.shape == (2 * n, *SIZE, 3)
    assert (source[:n] == np.arange(n)).all()
    assert pid[:n].tolist() == [r.pid for r in records] and camera[:n].tolist() == [r.camera for r in records]
    assert path[:n].tolist() == [r.path for r in records]
    # a converted image keeps the identity, camera and file of its source
    assert (pid[n:] == pid[:n]).all() and (camera[n:] == camera[:n]).all() and (path[n:] == path[:n]).all()
    assert (kind[:n] == KIND_REAL).all() and (kind[n:] == KIND_CONVERTED).all()
    assert (source[n:] == np.arange(n)).all()
    assert (modality[n:] == 1 - modality[:n]).all()  # converted images show the other modality
    real = np.stack([load_image(r.path, SIZE) for r in records])
    assert np.array_equal(images[:n], real)
    conv = make_converters(gen, "cpu")
    for i, r in enumerate(records):
        expected = conv["rgb2ir" if r.modality == VISIBLE else "ir2rgb"](real[i : i + 1])[0]
        assert modality[n + i] == MODALITY_CODE[THERMAL if r.modality == VISIBLE else VISIBLE]
        assert np.abs(images[n + i].astype(int) - expected.astype(int)).max() <= 1

    loader = DataLoader(CacheDataset(out), batch_size=16, num_workers=0)
    batch = next(iter(loader))
    assert batch["image"].shape == (16, 3, *SIZE) and batch["image"].dtype == torch.uint8


SCRIPT = """
import time
from rgbir_reid.data.cache import write_cache
from rgbir_reid.data.records import ImageRecord

def slow(images):
    time.sleep(0.1)
    return images[..., ::-1].copy()

records = [ImageRecord(*r) for r in {records!r}]
write_cache({out!r}, records, {size!r}, converters={{"rgb2ir": slow, "ir2rgb": slow}}, batch_size=1)
"""


def test_killed_write_leaves_no_file_at_output(shared_data, tmp_path):
    records = _sysu_records(shared_data)
    out = tmp_path / "cache.h5"
    script = tmp_path / "write.py"
    rows = [(r.path, r.pid, r.camera, r.modality, r.subset) for r in records]
    script.write_text(textwrap.dedent(SCRIPT.format(records=rows, out=str(out), size=SIZE)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("cache.tmp-*.h5")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # a few batches into the file
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "write_cache ended before it could be killed"
    assert list(tmp_path.glob("cache.tmp-*.h5")), "the kill should have hit a partly written temporary file"
    assert not out.exists()  # so Snakemake would not take the cache as complete

    # A rerun writes the complete file despite the leftover temporary file, and clears it; a
    # file of the user's with a similar name stays.
    mine = tmp_path / "cache.tmp-notes.h5"
    mine.write_text("keep")
    write_cache(out, records[:4], SIZE, converters={"rgb2ir": np.copy, "ir2rgb": np.copy}, batch_size=2)
    assert len(CacheDataset(out)) == 8
    assert sorted(p.name for p in tmp_path.glob("cache.tmp-*.h5")) == ["cache.tmp-notes.h5"]


@pytest.mark.parametrize("in_memory_bytes", [0, 1 << 30], ids=["row-by-row", "in-memory"])
def test_batch_dataset_reads_the_rows_asked_for_in_order_with_repeats(shared_data, tmp_path, in_memory_bytes):
    out = write_cache(tmp_path / "c.h5", _sysu_records(shared_data)[:8], (32, 16))
    single, batched = CacheDataset(out), CacheBatchDataset(out, indices=[7, 5, 3, 1])
    batched.in_memory_bytes = in_memory_bytes
    batch = batched[[3, 0, 0, 2]]  # positions into indices -> rows 1, 7, 7, 3
    assert (getattr(batched, "_pixels", None) is not None) == (in_memory_bytes > 0)
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (4, 3, 32, 16)
    assert batch["index"].tolist() == [1, 7, 7, 3]
    for i, row in enumerate([1, 7, 7, 3]):
        ref = single[row]
        assert torch.equal(batch["image"][i], ref["image"])
        for key in ("pid", "camera", "modality", "kind"):
            assert int(batch[key][i]) == ref[key]
