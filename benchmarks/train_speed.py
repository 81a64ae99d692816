"""Re-ID training throughput on this machine's CPU, and whether data loading keeps up.

Prints, for the two-stream ResNet-50 at 288x144 and the two-stream AlexNet at 227x227
(the CE²L paper's setting):
  * training images/s (forward + CE²L losses + backward + SGD step, after warm-up);
  * achieved FLOP/s (forward FLOPs counted by torch.utils.flop_counter, training ≈ 3x
    forward) as a fraction of this machine's measured float32 matmul FLOP/s;
  * the data loader's images/s over a cache built from the real SYSU-MM01 sample images,
    two ways side by side: the training loop's way (whole batches read as uint8 by
    CacheBatchDataset, augmented at once by BatchAugmentation) and the per-image torchvision
    v2 pipeline that common re-ID code (and this project before) runs in the DataLoader;
    each divided by the model's images/s: above 1 means the model never waits for data.

Also the demo's setting (two-stream ShuffleNet V2 x0.5 at 64x32), where loading matters most.

Run: ``.venv/bin/python benchmarks/train_speed.py [--iters 3] [--batch 16] [--workers 1]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms import v2

from rgbir_reid.data.cache import CacheBatchDataset, CacheDataset, write_cache
from rgbir_reid.data.records import ImageRecord
from rgbir_reid.models.reid import IMAGENET_MEAN, IMAGENET_STD
from rgbir_reid.training.reid import train_transform
from rgbir_reid.training.reid_loss import reid_loss_terms
from rgbir_reid.training.reid_model import model_from_settings
from rgbir_reid.training.reid_settings import ReidSettings

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sysu_mm01_sample"
NUM_CLASSES = 395  # SYSU-MM01 training + validation identities

CONFIGS = {
    "two_stream_resnet50 288x144": ReidSettings(
        architecture="two_stream_resnet50", pretrained="none", image_size=(288, 144), crop_size=(288, 144),
        crop_padding=10, embedding_dim=512,
    ),
    "two_stream_alexnet 227x227": ReidSettings(architecture="two_stream_alexnet", pretrained="none"),
    "two_stream_shufflenet_v2_x0_5 64x32": ReidSettings(
        architecture="two_stream_shufflenet_v2_x0_5", pretrained="none", image_size=(64, 32), crop_size=(64, 32),
        embedding_dim=128, random_grayscale=0.5,
    ),
}


def matmul_flops(n: int = 2048, reps: int = 5) -> float:
    """Measured float32 matmul FLOP/s (2 n³ per product), best of ``reps``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def model_speed(settings: ReidSettings, batch: int, iters: int) -> tuple[float, float]:
    """(training images/s, forward FLOPs per batch) of one configuration."""
    torch.manual_seed(0)
    model = model_from_settings(settings, NUM_CLASSES, pretrained="none").train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    h, w = settings.crop_size
    x = torch.randn(batch, 3, h, w)
    half = batch // 2
    modality = torch.tensor([0] * half + [1] * (batch - half))
    pid = torch.arange(batch) % (batch // 4) + 1  # P = batch/4 identities, K = 2 per modality
    target = pid - 1
    smooth = torch.arange(batch) % 2 == 0
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, modality)
    forward_flops = counter.get_total_flops()

    def step() -> None:
        emb, logits = model(x, modality)
        terms = reid_loss_terms(emb, logits, pid, modality, target, smooth, settings)
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: allocator and kernel selection
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return batch * iters / (time.perf_counter() - t0), forward_flops


def per_image_pipeline(settings: ReidSettings) -> v2.Compose:
    """The same augmentation as a per-image torchvision v2 pipeline (the usual DataLoader way)."""
    steps: list = [v2.ToImage(), v2.Resize(list(settings.image_size), antialias=True)]
    if settings.crop_padding:
        steps.append(v2.Pad(settings.crop_padding))
    steps += [v2.RandomCrop(list(settings.crop_size)), v2.RandomHorizontalFlip()]
    if settings.random_grayscale:
        steps.append(v2.RandomGrayscale(settings.random_grayscale))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)


def loader_speed(cache: Path, settings: ReidSettings, batch: int, workers: int, images: int, *, batched: bool) -> float:
    """Images/s of augmented batches: the training loop's batched path, or the per-image pipeline."""
    g = torch.Generator().manual_seed(0)
    if batched:
        dataset = CacheBatchDataset(cache)
        augment = train_transform(settings)
        batches = torch.randint(0, len(dataset), (images // batch + 2, batch), generator=g).tolist()
        loader = DataLoader(dataset, sampler=batches, batch_size=None, num_workers=workers,
                            persistent_workers=workers > 0)
    else:
        dataset = CacheDataset(cache, transform=per_image_pipeline(settings))
        augment = None
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                            persistent_workers=workers > 0, generator=g)
    it = iter(loader)
    next(it)  # warm-up (worker start-up, file open)
    seen, t0 = 0, time.perf_counter()
    while seen < images:
        b = next(it, None)
        if b is None:
            it = iter(loader)
            continue
        x = augment(b["image"]) if augment is not None else b["image"]
        seen += x.shape[0]
    return seen / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3, help="timed training iterations per model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1,
                        help="DataLoader workers for the loader measurement (each runs with 1 torch thread)")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}, "
          f"{args.iters} timed iterations after 1 warm-up")
    peak = matmul_flops()
    print(f"matmul float32: {peak / 1e9:.1f} GFLOP/s (2048x2048)")
    records = [
        ImageRecord(str(p), int(p.parent.name), int(p.parent.parent.name[3:]),
                    "thermal" if p.parent.parent.name in ("cam3", "cam6") else "visible")
        for p in sorted(SAMPLE.glob("cam*/*/*.jpg"))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        cache = write_cache(Path(tmp) / "cache.h5", records, (288, 144))
        print(f"cache: {len(records)} real SYSU-MM01 sample images at 288x144")
        print(f"{'configuration':<36} {'fwd GFLOP/img':>13} {'train img/s':>11} {'GFLOP/s':>8} "
              f"{'of matmul':>9} {'batched img/s':>13} {'per-image img/s':>15} {'batched/model':>13} "
              f"{'per-image/model':>15}")
        for name, settings in CONFIGS.items():
            ips, fwd = model_speed(settings, args.batch, args.iters)
            achieved = 3 * fwd / args.batch * ips
            n = max(640, 8 * args.batch)
            fast = loader_speed(cache, settings, args.batch, args.workers, n, batched=True)
            slow = loader_speed(cache, settings, args.batch, args.workers, n, batched=False)
            print(f"{name:<36} {fwd / args.batch / 1e9:>13.2f} {ips:>11.2f} {achieved / 1e9:>8.1f} "
                  f"{achieved / peak:>9.1%} {fast:>13.1f} {slow:>15.1f} {fast / ips:>13.1f} {slow / ips:>15.1f}")


if __name__ == "__main__":
    main()
