"""Does AlignGAN learn on the built-in demo within a CPU budget? Train a small one and evaluate it.

Generates the demo as ``tests/learning_check.py`` does (512 training and 32 held-out
identities at 64x32, seed 1, trial 1), caches the training images, trains a small AlignGAN
(ShuffleNet V2 x0.5 backbone, 64x32 pixels, narrow generators and discriminators, short
stages), extracts the AlignGAN test feature of the held-out identities
(:func:`rgbir_reid.training.aligngan.aligngan_features`: visible gallery via ``G_rgb2ir``,
flip TTA) and prints all-search single-shot rank-1 / mAP over 10 seeded gallery trials
against the gallery's chance level, the training time, and diagnostics of where it fails:

* the same metrics with the visible gallery fed to the encoder as plain grey images (no G_rgb2ir);
* nearest-neighbour rank-1 over the held-out images of other cameras, infrared->infrared,
  visible->visible (both through G_rgb2ir) and infrared->visible: how much identity the encoder
  sees in real infrared, and how much G_rgb2ir keeps;
* when the setting uses the running statistics (official), the same with G_rgb2ir's
  instance norms on each image's own statistics instead.

Usage: ``.venv/bin/python benchmarks/aligngan_demo.py [--out DIR] [--threads 1] [key=value ...]``
where each ``key=value`` overrides one :class:`AlignGANSettings` field of :data:`DEMO` (the
``aligngan:`` section of ``workflow/configs/demo_aligngan.yaml``)
(values parsed as Python literals, e.g. ``joint_iterations=300 lr_decay_iterations=(200,)``).
"""

from __future__ import annotations

import argparse
import ast
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

from rgbir_reid.data.cache import write_cache
from rgbir_reid.data.demo import generate_demo
from rgbir_reid.data.records import MODALITY_CODE, THERMAL
from rgbir_reid.data.splits import index_dataset, make_trial_split
from rgbir_reid.data.transforms import load_image, to_tensor
from rgbir_reid.evaluation.protocols import EvaluationSettings, evaluate_features, nearest_neighbour_rank1
from rgbir_reid.config import settings_from
from rgbir_reid.training.cyclegan import CycleGANSettings, train_cyclegan
from rgbir_reid.training.aligngan import (
    AlignGANSettings,
    aligngan_features,
    load_aligngan_model,
    train_aligngan,
    use_norm_statistics,
)

N_TRAIN_IDS, N_TEST_IDS = 512, 32  # as tests/learning_check.py
SIZE = (64, 32)
# The demo setting is the aligngan: section of workflow/configs/demo_aligngan.yaml (one place);
# key=value arguments override it. Measured with this script (1 torch thread, a 2-core machine
# shared with other jobs, so times are 2-3x an idle machine's; docs/methods/aligngan.md):
# - earlier rounds (ngf 8, 4 PatchGAN layers, running statistics, dropout 0.5): 1.9-4.4 % rank-1
#   against 3.1 % chance; an 11-minute run (1,200 / 500 / 400 iterations) 4.0 % (1.3x);
# - 100 / 150 / 250 iterations, ngf 16, ndf 16, 2 PatchGAN layers, GAN batch 4 x 1, IDE 64 x 1,
#   reid_size 64x32, lr 0.1, per-image statistics, dropout 0.5: 5.18 % (1.7x) in 474 s; training
#   accuracy 1.8 % on real infrared at the end;
# - the feature warm-up alone, 200 iterations: 5.39 % (1.7x), infrared->infrared 30.7 %;
#   with dropout 0 and weight decay 0 the training accuracy after 200 iterations was 7.2 %
#   instead of 1.0 % (held-out infrared->infrared 29.8 %);
# - dropout 0 (weight decay kept), 100 / 200 / 300 iterations, decay at 250: 9.30 % rank-1,
#   mAP 15.03 % (3.0x chance) in 1148 s; infrared->infrared 43.0 %, visible->visible 41.5 %,
#   infrared->visible 9.2 %; training accuracy 16 % (real) / 8 % (fake infrared), still rising.
CONFIG = Path(__file__).resolve().parents[1] / "workflow" / "configs" / "demo_aligngan.yaml"
DEMO = AlignGANSettings.from_dict(yaml.safe_load(CONFIG.read_text())["aligngan"])
# The demo CycleGAN (pixel_init: cyclegan starts AlignGAN's generators from it), as the workflow trains it.
DEMO_CYCLEGAN = settings_from(CycleGANSettings, yaml.safe_load(CONFIG.read_text())["cyclegan"], "cyclegan")


def print_nearest_neighbour(model, images: torch.Tensor, modality: torch.Tensor, test: list) -> None:
    """Nearest-neighbour rank-1 over the images of other cameras: IR->IR, V->V, IR->V."""
    features = aligngan_features(model, images, modality).numpy()
    pid = np.array([r.pid for r in test])
    camera = np.array([r.camera for r in test])
    code = modality.numpy()
    infrared, visible = code == MODALITY_CODE[THERMAL], code != MODALITY_CODE[THERMAL]
    # The features are L2-normalised: Euclidean order = cosine order.
    parts = []
    for name, queries, gallery in (("IR->IR", infrared, infrared), ("V->V", visible, visible), ("IR->V", infrared, visible)):
        rank1 = nearest_neighbour_rank1(features, pid, camera, np.flatnonzero(queries), np.flatnonzero(gallery))
        parts.append(f"{name} {100 * rank1:.1f} %")
    print("nearest-neighbour rank-1, held-out images of other cameras: " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (2 OpenMP threads on a shared, busy 2-core machine ran ~10x slower)")
    parser.add_argument("overrides", nargs="*", help="AlignGANSettings field=value")
    args = parser.parse_args()
    settings = replace(DEMO, **{k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.overrides)})
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    with tempfile.TemporaryDirectory() as tmp_name:
        work = args.out or Path(tmp_name)
        work.mkdir(parents=True, exist_ok=True)
        root = work / "demo"
        if not root.exists():
            generate_demo(root, seed=1, n_train_ids=N_TRAIN_IDS, n_test_ids=N_TEST_IDS, height=SIZE[0], width=SIZE[1])
        split = make_trial_split("demo", root, index_dataset("demo", root, verify_images=False), 1)
        train = [r for r in split if r.subset == "train"]
        test = [r for r in split if r.subset == "test"]
        cache = work / "cache.h5"
        if not cache.exists():
            write_cache(cache, train, SIZE)
        generators = None
        if settings.pixel_init == "cyclegan":  # the trial's CycleGAN, as the workflow's train_cyclegan makes it
            generators = work / "cyclegan" / "generator.pt"
            if not generators.exists():
                train_cyclegan([r.path for r in train if r.modality != THERMAL], [r.path for r in train if r.modality == THERMAL],
                               work / "cyclegan", DEMO_CYCLEGAN, device="cpu", seed=0)
        run = work / f"run_{int(time.time())}"
        t0 = time.perf_counter()
        model_path = train_aligngan(cache, run, settings, device="cpu", seed=0, logger=logging.getLogger("aligngan_demo"),
                                    init_generators=generators)
        seconds = time.perf_counter() - t0

        model, _ = load_aligngan_model(model_path)
        images = to_tensor(np.stack([load_image(r.path, SIZE) for r in test]))
        modality = torch.tensor([MODALITY_CODE[r.modality] for r in test])

        def evaluate(features: np.ndarray) -> tuple[float, float, float]:
            rows = evaluate_features(
                features,
                np.array([r.pid for r in test]),
                np.array([r.camera for r in test]),
                modality.numpy(),
                [r.path for r in test],
                dataset_format="sysu_mm01",
                settings=EvaluationSettings(sysu_modes=("all-search/single-shot",), sysu_sampler="seeded", sysu_n_trials=10),
            )
            return tuple(float(np.mean([r[k] for r in rows])) for k in ("rank1", "mAP", "chance_rank1"))

        rank1, mAP, chance = evaluate(aligngan_features(model, images, modality).numpy())
        # Diagnostic: does G_rgb2ir help or hurt? The visible gallery as plain grey (ITU-R 601
        # luma in all channels), fed to the encoder like infrared images.
        luma = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        grey = (images * luma).sum(1, keepdim=True).expand_as(images)
        grey_rank1, grey_mAP, _ = evaluate(aligngan_features(model, grey, MODALITY_CODE[THERMAL]).numpy())
        print(f"G_rgb2ir with {settings.norm_statistics} instance-norm statistics (norm_statistics):")
        print_nearest_neighbour(model, images, modality, test)
        if settings.norm_statistics == "running":
            use_norm_statistics(model, "per_image")
            print("G_rgb2ir with per-image instance-norm statistics:")
            print_nearest_neighbour(model, images, modality, test)
    changed = {k: v for k, v in settings.to_dict().items() if v != getattr(AlignGANSettings(), k)}
    print(f"settings (differences from the official ones): {changed}")
    print(f"training: {seconds:.0f} s on {args.threads} threads, {settings.total_iterations} iterations")
    print(f"all-search single-shot, 10 trials, {N_TEST_IDS} held-out identities: rank-1 {100 * rank1:.2f} %, "
          f"mAP {100 * mAP:.2f} %, chance rank-1 {100 * chance:.2f} % ({rank1 / chance:.1f}x chance)")
    print(f"diagnostic, visible gallery as plain grey images (no G_rgb2ir): rank-1 {100 * grey_rank1:.2f} %, "
          f"mAP {100 * grey_mAP:.2f} % ({grey_rank1 / chance:.1f}x chance)")


if __name__ == "__main__":
    main()
