"""Speed of the modality-conversion cache, measured in one run on real SYSU-MM01 crops.

1. Cache build: ``write_cache`` with batched converters (``make_converters``) against
   converting one image at a time and saving a PNG per image, as the reference CycleGAN
   code's test script does. Same generator (paper size: ngf 64, 9 residual blocks, random
   weights — speed does not depend on them), same device, 288x144 images.
2. Training loader: ``CacheDataset`` + ``DataLoader`` reading the HDF5 cache against a
   ``DataLoader`` over a dataset decoding and resizing the JPEG files (same size).

Images are the 60 real crops of ``../shared/data/sysu_mm01_sample`` replicated to the
requested counts. Rates are per image; the slow path uses fewer images to keep the run short.

    .venv/bin/python benchmarks/conversion_speed.py [--n-convert 32] [--n-single 8] [--n-loader 600] [--threads 1]

The sample crops are small (about 41x107 px), so JPEG decoding here is cheaper than on the
full-size SYSU-MM01 images; the loader ratio is a lower bound for real data.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from rgbir_reid.data.cache import CacheDataset, write_cache
from rgbir_reid.data.records import THERMAL, VISIBLE, ImageRecord
from rgbir_reid.data.transforms import load_image, to_tensor, to_uint8
from rgbir_reid.device import resolve_device
from rgbir_reid.models.cyclegan import GENERATOR_NAMES, build_cyclegan
from rgbir_reid.conversion import load_generators, make_converters, save_generators

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sysu_mm01_sample"
SIZE = (288, 144)


def sysu_records(n: int) -> list[ImageRecord]:
    files = sorted(SAMPLE.glob("cam*/*/*.jpg"))
    if not files:
        raise SystemExit(f"no images under {SAMPLE}")
    base = []
    for p in files:
        cam = int(p.parts[-3][3:])
        base.append(ImageRecord(str(p), int(p.parts[-2]), cam, THERMAL if cam in (3, 6) else VISIBLE, "train"))
    return [base[i % len(base)] for i in range(n)]


class JpegDataset(Dataset):
    """What a loader without the cache does: decode and resize every JPEG on every read."""

    def __init__(self, records: list[ImageRecord]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        r = self.records[i]
        img = load_image(r.path, SIZE)
        return {"image": torch.from_numpy(img).permute(2, 0, 1), "pid": r.pid, "camera": r.camera}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def loader_rate(dataset: Dataset, workers: int, batch_size: int = 32) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(0))
    n = 0

    def run() -> None:
        nonlocal n
        for batch in loader:
            n += len(batch["image"])

    elapsed = timed(run)
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-convert", type=int, default=32, help="images converted by the batched cache build")
    ap.add_argument("--n-single", type=int, default=8, help="images converted one at a time (slow path)")
    ap.add_argument("--n-loader", type=int, default=600, help="images read by each training loader")
    ap.add_argument("--batch-size", type=int, default=16, help="converter batch size")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads is not None:
        # On a shared, oversubscribed CPU one thread per process avoids spin-waiting threads.
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, images {SIZE[0]}x{SIZE[1]}, generator ngf 64, 9 blocks")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nets = build_cyclegan(ngf=64, ndf=64, n_blocks=9, seed=0)
        gen_path = save_generators(tmp / "generator.pt", {n: nets[n] for n in GENERATOR_NAMES})

        # 1. Conversion: batched cache build vs one image at a time + a PNG per image.
        converters = make_converters(gen_path, device, batch_size=args.batch_size)
        converters["rgb2ir"](np.zeros((1, *SIZE, 3), np.uint8))  # warm-up (allocator, kernels)
        records = sysu_records(args.n_convert)
        t_cache = timed(
            lambda: write_cache(tmp / "cache.h5", records, SIZE, converters=converters, batch_size=args.batch_size)
        )
        rate_cache = len(records) / t_cache

        gens = load_generators(gen_path, device)
        singles = sysu_records(args.n_single)
        (tmp / "png").mkdir()

        def one_at_a_time() -> None:
            with torch.inference_mode():
                for i, r in enumerate(singles):
                    g = gens["G_rgb2ir" if r.modality == VISIBLE else "G_ir2rgb"]
                    fake = to_uint8(g(to_tensor(load_image(r.path, SIZE)).to(device)))[0]
                    Image.fromarray(fake).save(tmp / "png" / f"{i:05d}_fake.png")

        rate_single = len(singles) / timed(one_at_a_time)
        print(f"conversion, batched write_cache (batch {args.batch_size}, {len(records)} images): {rate_cache:.3f} images/s")
        print(f"conversion, one image at a time + PNG per image ({len(singles)} images): {rate_single:.3f} images/s")
        print(f"conversion speed-up of the batched cache build: {rate_cache / rate_single:.2f}x")

        # 2. Training loader: HDF5 cache vs decoding JPEGs (same 288x144 resize).
        loader_records = sysu_records(args.n_loader)
        write_cache(tmp / "real.h5", loader_records, SIZE, converters=None, batch_size=64)
        for workers in (0, 2):
            r_h5 = loader_rate(CacheDataset(tmp / "real.h5"), workers)
            r_jpg = loader_rate(JpegDataset(loader_records), workers)
            print(
                f"training loader, {workers} workers, {len(loader_records)} images: HDF5 cache {r_h5:.0f} images/s, "
                f"JPEG decode {r_jpg:.0f} images/s, ratio {r_h5 / r_jpg:.2f}x"
            )


if __name__ == "__main__":
    main()
