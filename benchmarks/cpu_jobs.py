"""How should a CPU-only machine run the demo's training jobs: one at a time on every core, or
several at once on fewer threads each? And does the channels-last memory format pay on CPU?

Trains the demo's re-ID network (two-stream ShuffleNet V2 x0.5, 64x32 input, batches of 256
images, identity loss, SGD) for a few steps in separate processes, as Snakemake jobs would run,
and prints the total training images/s of each layout side by side:

* one job on all cores (what ``threads: 8`` gives on a small machine), contiguous and NHWC;
* one job on one thread, contiguous and NHWC;
* ``cores`` jobs at once, one thread each, NHWC (what ``make run`` does on a CPU-only machine).

Optionally also ResNet-18 and AlexNet (``--all``), one thread, contiguous against NHWC.

Run: ``.venv/bin/python benchmarks/cpu_jobs.py [--steps 15] [--all]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

WORKER = r"""
import sys, time, torch
import torch.nn.functional as F
from rgbir_reid.models.reid import ReidNet
arch, h, w, batch, threads, nhwc, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1", int(sys.argv[7])
torch.set_num_threads(threads)
torch.manual_seed(0)
net = ReidNet(arch, 512, two_stream=True, specific_stages=1, embedding_dim=128, pretrained="none")
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
fmt = torch.channels_last if nhwc else torch.contiguous_format
net = net.to(memory_format=fmt)
x = torch.randn(batch, 3, h, w).contiguous(memory_format=fmt)
modality, labels = torch.arange(batch) % 2, torch.randint(0, 512, (batch,))
def step():
    _, logits = net(x, modality)
    loss = F.cross_entropy(logits, labels)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(3):
    step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
print(batch * steps / (time.perf_counter() - t0))
"""


def run_jobs(n_jobs: int, arch: str, h: int, w: int, batch: int, threads: int, nhwc: bool, steps: int) -> list[float]:
    """Start ``n_jobs`` training processes at once; each one's images/s."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    args = [arch, str(h), str(w), str(batch), str(threads), "1" if nhwc else "0", str(steps)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(n_jobs)]
    rates = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"worker failed with exit code {p.returncode}")
        rates.append(float(out.strip().splitlines()[-1]))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15, help="timed steps per job (after 3 warm-up steps)")
    parser.add_argument("--all", action="store_true", help="also ResNet-18 (128x64) and AlexNet (224x112), one thread")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"{cores} cores; two-stream ShuffleNet V2 x0.5 at 64x32, batch 256 (the demo's ce2l step)")
    print(f"{'layout':<44} {'images/s (total)':>16}  per job")
    layouts = [
        (f"1 job x {cores} threads, contiguous", 1, cores, False),
        (f"1 job x {cores} threads, channels_last", 1, cores, True),
        ("1 job x 1 thread, contiguous", 1, 1, False),
        ("1 job x 1 thread, channels_last", 1, 1, True),
        (f"{cores} jobs x 1 thread, channels_last (make run)", cores, 1, True),
    ]
    for name, n_jobs, threads, nhwc in layouts:
        rates = run_jobs(n_jobs, "shufflenet_v2_x0_5", 64, 32, 256, threads, nhwc, args.steps)
        print(f"{name:<44} {sum(rates):>16.0f}  {', '.join(f'{r:.0f}' for r in rates)}")
    if args.all:
        for arch, h, w, batch in (("resnet18", 128, 64, 32), ("alexnet", 224, 112, 16)):
            for nhwc in (False, True):
                rate = run_jobs(1, arch, h, w, batch, 1, nhwc, max(3, args.steps // 3))[0]
                print(f"{arch} {h}x{w}, batch {batch}, 1 thread, {'channels_last' if nhwc else 'contiguous':<13} {rate:>10.1f}")


if __name__ == "__main__":
    main()
