"""GPU check: the speed and peak GPU memory of every training stage at the paper configs' sizes, and the full run's time.

For each training stage of a paper config (default ``workflow/configs/sysu_mm01.yaml``), read
and validated as the workflow reads it (the schema fills in the defaults; methods get their
family's section with their own keys over it), this runs the library's own training function
for a few hundred iterations on synthetic data of the configured sizes:

* ``train_cyclegan``: :func:`rgbir_reid.training.cyclegan.train_cyclegan` (256x256, batch 1,
  9 residual blocks in the paper configs), on synthetic JPEG files;
* ``train_reid <method>``: :func:`rgbir_reid.training.reid.train_reid` for every ``reid``-family
  method (CE²L and BDTR: two-stream AlexNet at 227x227; Wu et al.'s baselines: ResNet-50 at
  256x128; AGW and CAJ, where the config has them: ResNet-50 with non-local blocks at
  288x144), on a synthetic HDF5 cache of real and "converted" rows;
* ``train_aligngan <method> / <stage>``: :func:`rgbir_reid.training.aligngan.train_aligngan`,
  each of its three stages (feature warm-up, pixel warm-up, joint) at the official sizes and
  batches, on the same cache;

with AMP (re-ID and AlignGAN: ``amp``, bf16 in the paper configs; the CycleGAN has no AMP
setting and trains in float32), channels-last, loader workers and batch shapes as configured,
in this order: CycleGAN, AlignGAN, the re-ID methods. Only the lengths are
changed (and ``pretrained: none``: a GPU machine may not reach the ImageNet weights, and the
initial weights do not change the speed). It prints a table with, per stage, the seconds per
iteration and images per second after ``--warmup`` iterations, the peak GPU memory
(``torch.cuda.max_memory_allocated``), and the estimated time of the full paper run: seconds
per iteration x the config's iterations (CycleGAN ``iterations``; re-ID ``epochs`` x steps per
epoch over the dataset's training set; AlignGAN's stage lengths), plus the measured cost of
the periodic checkpoints where it can be separated (re-ID: per epoch; AlignGAN: per
``checkpoint_every``).

How the iterations are timed, without changing the library:

* CycleGAN: its loop logs one line every ``log_every`` iterations after reading its loss sums
  back from the device (a synchronisation); with ``log_every = warmup`` the time between the
  lines of iteration ``warmup`` and of the last one covers the timed iterations.
* re-ID: three epochs of ``ceil(iterations / 2)`` steps; the first is the warm-up. The loop
  logs one line per epoch after its steps, once it has read its loss sums back from the device
  (and each step copies its labels to the device, which synchronises), then writes the
  checkpoint and the loss table, then calls ``on_epoch_end``: the steps of epoch ``e`` take from
  the end of epoch ``e - 1`` to its line, its overhead from its line to its end. Images per
  step: the loop's own images/s (its ``losses.csv`` column, which counts CAJ's extra channel
  views) times the seconds per step.
* AlignGAN: ``on_iteration_end`` is called after every iteration once its loss terms are read
  back as floats (a synchronisation); each stage runs ``warmup + iterations`` iterations and the
  last ``iterations`` are timed. The joint stage runs one more, which writes the checkpoint: its
  extra time is the cost of one checkpoint.

Training-set sizes for the re-ID epochs (one trial): SYSU-MM01 22,258 visible and 11,909
thermal images of 395 identities (training + validation ids, as the published baselines use
them; the counts of Wu et al. 2017 and later work); RegDB 2,060 + 2,060 images of 206
identities (half of 412 identities x 10 images per modality, Nguyen et al. 2017). Converted
sets double the rows (one conversion per real image).

Not measured: image decoding from the real dataset (CycleGAN decodes synthetic JPEGs of
288x144; the synthetic cache is small enough to be read into memory, as caches of at most
1 GiB are, while the real SYSU-MM01 cache, 13 GB, is read from disk), the cache build,
extraction and evaluation, and CycleGAN's checkpoints (every ``checkpoint_every``).

On a CPU (or with ``--tiny``) the same code runs at tiny sizes (small networks, 32x16 to 64x32
pixels) and a handful of iterations, in seconds: it checks that the script still runs
(``tests/benchmarks/test_gpu_check.py``); its figures say nothing about the GPU.

Run::

    .venv/bin/python benchmarks/gpu_check.py --json /tmp/gpu_check.json      # a few minutes on one GPU (expected)
    .venv/bin/python benchmarks/gpu_check.py --iterations 50 --only ce2l aligngan
    .venv/bin/python benchmarks/gpu_check.py --device cpu                     # tiny, seconds

The script puts ``src/`` on the import path itself, and runs without Snakemake (then it reads
the schema's defaults without validating): on a GPU machine whose Python holds PyTorch, h5py,
pandas and matplotlib but not this project, ``PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py
--json $OUT/gpu_check.json`` from the repository root is enough.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # runs from a plain checkout too (no install needed)

from rgbir_reid.config import settings_from  # noqa: E402
from rgbir_reid.data.cache import write_cache  # noqa: E402
from rgbir_reid.data.records import KIND_REAL, MODALITY_CODE, THERMAL, TRAIN_SETS, VISIBLE, ImageRecord  # noqa: E402
from rgbir_reid.data.samplers import CrossModalityIdentitySampler  # noqa: E402
from rgbir_reid.data.splits import trials_of  # noqa: E402
from rgbir_reid.device import resolve_device  # noqa: E402
from rgbir_reid.methods import get_family, method_settings  # noqa: E402
from rgbir_reid.training.aligngan import STAGES, AlignGANSettings, train_aligngan  # noqa: E402
from rgbir_reid.training.cyclegan import CycleGANSettings, train_cyclegan  # noqa: E402
from rgbir_reid.training.reid import train_reid  # noqa: E402
from rgbir_reid.training.reid_settings import ReidSettings  # noqa: E402

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO / "workflow" / "configs" / "sysu_mm01.yaml"


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """Real training images of one trial of a dataset format (sources in the module docstring)."""

    identities: int
    visible: int
    thermal: int


TRAINING_SETS = {
    "sysu_mm01": TrainingSet(identities=395, visible=22_258, thermal=11_909),
    "regdb": TrainingSet(identities=206, visible=2_060, thermal=2_060),
}

# Synthetic source images (a person crop's 2:1 shape) and the cache's converted rows (content
# does not matter for speed; the shapes do).
SOURCE_SIZE = (288, 144)
CONVERTERS = {"rgb2ir": lambda x: 255 - x, "ir2rgb": lambda x: 255 - x}

# --tiny: the same code on small networks and images (each replaces settings of the paper config).
TINY_CYCLEGAN = dict(image_size=(32, 32), ngf=4, ndf=4, n_blocks=1, sample_count=1, num_workers=0)
TINY_REID = dict(pretrained="none", embedding_dim=16, image_size=(32, 16), crop_size=(32, 16), crop_padding=2,
                 num_workers=0)
TINY_ALIGNGAN = dict(backbone="shufflenet_v2_x0_5", ngf=4, n_blocks=1, ndf=4, bottleneck_dim=8, embedding_dim=8,
                     image_size=(64, 32), reid_size=(32, 16), gan_identities=2, gan_instances=2, ide_identities=2,
                     ide_instances=2)
TINY_CACHE_SIZE = (64, 32)


@dataclasses.dataclass
class Row:
    """One line of the table: a training stage's measured speed and its full-run estimate."""

    stage: str
    family: str
    method: str
    input_size: str
    amp: str
    images_per_iteration: float  # images through the network(s) per iteration
    timed_iterations: int
    seconds_per_iteration: float
    peak_memory_mib: float | None
    reserved_memory_mib: float | None
    paper_iterations: int
    paper_iterations_note: str
    overhead_seconds: float = 0.0  # measured periodic costs (checkpoints) over the full run

    @property
    def images_per_second(self) -> float:
        return self.images_per_iteration / self.seconds_per_iteration

    @property
    def estimated_seconds(self) -> float:
        return self.paper_iterations * self.seconds_per_iteration + self.overhead_seconds

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "images_per_second": self.images_per_second,
                "estimated_seconds": self.estimated_seconds, "estimated_hours": self.estimated_seconds / 3600}


class GpuMemory:
    """Peak allocated / reserved CUDA memory since the last :meth:`reset`, in MiB (``None`` on CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset(self, *, free_cache: bool = False) -> None:
        """Start a new peak; ``free_cache`` first returns the allocator's cached blocks (between runs),
        so that the reserved peak is the run's own."""
        if self.cuda:
            self.sync()
            if free_cache:
                torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> tuple[float | None, float | None]:
        if not self.cuda:
            return None, None
        self.sync()
        return (torch.cuda.max_memory_allocated(self.device) / 2**20,
                torch.cuda.max_memory_reserved(self.device) / 2**20)


class LogRecords(logging.Handler):
    """Keeps the records a training loop logs (for their times and arguments); warnings also go to stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.levelno >= logging.WARNING:
            print(f"  {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


def stage_logger(name: str) -> tuple[logging.Logger, LogRecords]:
    logger = logging.getLogger(f"gpu_check.{name}")
    logger.handlers.clear()
    handler = LogRecords()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def load_config(path: Path) -> dict:
    """The config at ``path`` validated against the workflow's schema, defaults filled in, as
    ``workflow/rules/common.smk`` does (Snakemake's ``validate``).

    Where Snakemake is not installed (a bare GPU machine's Python may hold PyTorch but not
    Snakemake or jsonschema), the sections' defaults are read from the same schema without
    validating, and a line says so: every setting the training reads then has the value the
    workflow would give it (the settings dataclasses' defaults are the schema's, which
    ``tests/workflow/test_config.py`` checks).

    Raises:
        SystemExit: the file is missing, not YAML, or fails validation (the message names the file).
    """
    if not path.is_file():
        sys.exit(f"--config {path}: no such file")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        sys.exit(f"--config {path}: not YAML: {e}")
    try:
        from snakemake.utils import validate
    except ImportError:
        print(f"note: Snakemake is not installed here, so {path.name} is not validated; "
              f"the defaults come from {SCHEMA.relative_to(REPO)}")
        return schema_defaults_filled(config)
    try:
        validate(config, str(SCHEMA))
    except Exception as e:  # snakemake's WorkflowError, naming the bad key
        sys.exit(f"--config {path}: {e}")
    return config


def schema_defaults_filled(config: dict) -> dict:
    """``config`` with the schema's top-level and per-section ``default`` values filled in (no validation)."""
    schema = yaml.safe_load(SCHEMA.read_text())
    out = dict(config)
    for key, prop in schema["properties"].items():
        if key not in out and "default" in prop:
            out[key] = prop["default"]
        ref = prop.get("$ref", "")
        section = schema["$defs"].get(ref.removeprefix("#/$defs/"), {}) if ref.startswith("#/$defs/") else {}
        if isinstance(out.get(key), dict) and "properties" in section:
            out[key] = {**{k: v["default"] for k, v in section["properties"].items() if "default" in v}, **out[key]}
    return out


def training_set_of(config: dict, path: Path) -> tuple[str, TrainingSet, int]:
    """The format of the config's first dataset, its training-set size (one trial) and its number
    of trials (each trains its own models: RegDB's 10).

    Raises:
        SystemExit: no dataset, or a format without known training-set sizes (names the key).
    """
    for name, ds in config["datasets"].items():
        if ds["format"] not in TRAINING_SETS:
            sys.exit(f"--config {path}: datasets.{name}.format is {ds['format']!r}; the full-run estimates "
                     f"know the training sets of {sorted(TRAINING_SETS)}")
        return ds["format"], TRAINING_SETS[ds["format"]], len(ds.get("trials") or trials_of(ds["format"]))
    sys.exit(f"--config {path}: no datasets")


def write_images(folder: Path, identities: int, per_modality: int, seed: int = 0) -> list[ImageRecord]:
    """``per_modality`` visible (camera 1) and thermal (camera 3, grey) JPEG files per identity, of :data:`SOURCE_SIZE`."""
    rng = np.random.default_rng(seed)
    h, w = SOURCE_SIZE
    records = []
    for pid in range(1, identities + 1):
        for modality, camera in ((VISIBLE, 1), (THERMAL, 3)):
            for k in range(per_modality):
                small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
                if modality == THERMAL:
                    small[:] = small.mean(axis=2, keepdims=True).astype(np.uint8)
                path = folder / f"cam{camera}" / f"{pid:04d}" / f"{k:04d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(small).resize((w, h), Image.BILINEAR).save(path, quality=90)
                records.append(ImageRecord(str(path), pid, camera, modality, "train"))
    return records


def steps_per_epoch(settings: ReidSettings, training_set: TrainingSet) -> int:
    """Steps of one re-ID epoch over the dataset's training rows of ``settings.train_sets``, as the
    training's sampler counts them (``batches_per_epoch``, or one pass over the rows: ``ceil(rows
    / images per batch)``).

    Rows are spread evenly over the identities (the counts depend only on the number of rows).
    A set's rows come from the visible images (real visible, converted RGB->IR) or the thermal ones.
    """
    pids, modalities, converted = [], [], []
    for name in settings.train_sets:
        kind, modality = TRAIN_SETS[name]
        from_visible = (kind == KIND_REAL) == (modality == MODALITY_CODE[VISIBLE])
        n = training_set.visible if from_visible else training_set.thermal
        pids.append(np.arange(n) % training_set.identities)
        modalities.append(np.full(n, modality))
        converted.append(np.full(n, kind != KIND_REAL))
    k = settings.num_instances
    return len(CrossModalityIdentitySampler(
        np.concatenate(pids), np.concatenate(modalities), num_identities=settings.num_identities,
        num_instances=k, seed=0, batches_per_epoch=settings.batches_per_epoch, converted=np.concatenate(converted),
        num_converted_instances=k if settings.num_converted_instances is None else settings.num_converted_instances,
    ))


def size_text(size: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in size)


def run_cyclegan(config: dict, records: list[ImageRecord], out: Path, device: torch.device, *, tiny: bool,
                 warmup: int, iterations: int, memory: GpuMemory) -> list[Row]:
    """Time the CycleGAN of the config's ``cyclegan:`` section on the synthetic images ``records``."""
    paper = settings_from(CycleGANSettings, config["cyclegan"], "cyclegan")
    total = warmup + iterations
    settings = dataclasses.replace(paper, **(TINY_CYCLEGAN if tiny else {}), iterations=total, log_every=warmup,
                                   checkpoint_every=total)
    logger, log = stage_logger("cyclegan")
    memory.reset(free_cache=True)
    train_cyclegan([r.path for r in records if r.modality == VISIBLE], [r.path for r in records if r.modality == THERMAL],
                   out / "cyclegan", settings, device=device, seed=0, logger=logger)
    allocated, reserved = memory.peak()
    # The loop's "iter <done>/<total> ..." lines: logged after its loss sums are read back from the device.
    marks = {rec.args[0]: rec.created for rec in log.records
             if isinstance(rec.msg, str) and rec.msg.startswith("iter ") and isinstance(rec.args, tuple)}
    if warmup not in marks or total not in marks:
        raise RuntimeError(f"train_cyclegan logged no 'iter N/M' line at iterations {warmup} and {total} "
                           f"(got {sorted(marks)}): has its log line changed?")
    return [Row(
        stage="train_cyclegan", family="cyclegan", method="cyclegan", input_size=size_text(settings.image_size),
        amp="none", images_per_iteration=2 * settings.batch_size, timed_iterations=iterations,
        seconds_per_iteration=(marks[total] - marks[warmup]) / iterations, peak_memory_mib=allocated,
        reserved_memory_mib=reserved, paper_iterations=paper.iterations,
        paper_iterations_note=f"{paper.iterations:,} iterations",
    )]


def run_reid(method: str, settings_map: dict, cache: Path, out: Path, device: torch.device, *, tiny: bool,
             warmup: int, iterations: int, training_set: TrainingSet, memory: GpuMemory) -> list[Row]:
    """Time one ``reid``-family method (``warmup`` is not used: the first epoch is the warm-up)."""
    section = f"methods.{method}"
    paper = settings_from(ReidSettings, settings_map, section)
    per_epoch = max(1, math.ceil(iterations / 2))
    changes: dict[str, Any] = dict(pretrained="none", epochs=3, batches_per_epoch=per_epoch)
    if tiny:
        streams = paper.architecture.split("_stream_")[0]
        changes.update(TINY_REID, architecture=f"{streams}_stream_shufflenet_v2_x0_5",
                       num_identities=min(paper.num_identities, 2), num_instances=min(paper.num_instances, 2))
    settings = dataclasses.replace(paper, **changes)
    ended: dict[int, float] = {}

    def on_epoch_end(epoch: int, row: dict) -> None:
        memory.sync()
        ended[epoch] = time.time()  # the clock of LogRecord.created

    logger, log = stage_logger(f"reid.{method}")
    memory.reset(free_cache=True)
    train_reid(cache, out / method, settings, device=device, seed=0, logger=logger, on_epoch_end=on_epoch_end)
    allocated, reserved = memory.peak()
    # The loop's "epoch <e>/<E> ..." line comes right after its steps (once their loss sums are
    # read back from the device), before the checkpoint and loss table; on_epoch_end after them.
    # Epoch e's steps: from the end of epoch e-1 to its line; its overhead: from its line to its end.
    logged = {rec.args[0]: rec.created for rec in log.records
              if isinstance(rec.msg, str) and rec.msg.startswith("epoch ") and isinstance(rec.args, tuple)}
    timed = list(range(2, settings.epochs + 1))
    if any(e not in logged or e not in ended for e in timed) or 1 not in ended:
        raise RuntimeError(f"train_reid logged no 'epoch e/E' line for epochs {timed} (got {sorted(logged)}): "
                           "has its log line changed?")
    seconds_per_step = sum(logged[e] - ended[e - 1] for e in timed) / (len(timed) * per_epoch)
    overhead = float(np.mean([ended[e] - logged[e] for e in timed]))
    # Images through the network per step (CAJ's channel views included), from the loop's own images/s.
    history = pd.read_csv(out / method / "losses.csv").set_index("epoch")
    images_per_second = float(np.mean([history.loc[e, "images_per_s"] for e in timed]))
    steps = steps_per_epoch(paper, training_set)
    return [Row(
        stage=f"train_reid {method}", family="reid", method=method,
        input_size=f"{size_text(settings.crop_size)} {settings.architecture}", amp=settings.amp if device.type == "cuda" else "none",
        images_per_iteration=images_per_second * seconds_per_step, timed_iterations=len(timed) * per_epoch,
        seconds_per_iteration=seconds_per_step, peak_memory_mib=allocated, reserved_memory_mib=reserved,
        paper_iterations=paper.epochs * steps, paper_iterations_note=f"{paper.epochs} epochs x {steps:,} steps",
        overhead_seconds=paper.epochs * max(0.0, overhead),
    )]


def run_aligngan(method: str, settings_map: dict, cache: Path, out: Path, device: torch.device, *, tiny: bool,
                 warmup: int, iterations: int, training_set: TrainingSet, memory: GpuMemory) -> list[Row]:
    """Time each of an ``aligngan``-family method's three stages (one run of all three)."""
    section = f"methods.{method}"
    paper = settings_from(AlignGANSettings, settings_map, section)
    n = warmup + iterations
    # The joint stage's extra last iteration writes the (only) checkpoint: its cost is measured apart.
    lengths = dict(feature_warmup_iterations=n, pixel_warmup_iterations=n, joint_iterations=n + 1)
    settings = dataclasses.replace(paper, **(TINY_ALIGNGAN if tiny else {}), pretrained="none", **lengths,
                                   log_every=n + 1, checkpoint_every=3 * n + 1)
    total = settings.total_iterations
    times: dict[int, float] = {}
    peaks: dict[str, tuple[float | None, float | None]] = {}

    def on_iteration_end(done: int, info: dict) -> None:
        times[done] = time.perf_counter()
        if done == total or settings.stage_of(done) != info["stage"]:  # the stage's last iteration
            peaks[info["stage"]] = memory.peak()
            memory.reset()

    logger, _ = stage_logger(f"aligngan.{method}")
    memory.reset(free_cache=True)
    train_aligngan(cache, out / method, settings, device=device, seed=0, logger=logger, on_iteration_end=on_iteration_end)

    family = get_family("aligngan")
    starts = {"feature_warmup": 0, "pixel_warmup": n, "joint": 2 * n}
    seconds = {stage: (times[first + n] - times[first + warmup]) / iterations for stage, first in starts.items()}
    checkpoint_seconds = max(0.0, times[total] - times[total - 1] - seconds["joint"])
    rows = []
    for stage in STAGES:
        one = {k: 0 for k in lengths}
        one[f"{stage}_iterations"] = 1
        paper_iterations = getattr(paper, f"{stage}_iterations")
        rows.append(Row(
            stage=f"train_aligngan {method} / {stage}", family="aligngan", method=method,
            input_size=f"{size_text(settings.image_size)} px, {size_text(settings.reid_size)} {settings.backbone}",
            amp=settings.amp if device.type == "cuda" else "none",
            # Images through the encoder per iteration of this stage, as the family counts its work.
            images_per_iteration=family.work({**settings.to_dict(), **one}), timed_iterations=iterations,
            seconds_per_iteration=seconds[stage], peak_memory_mib=peaks[stage][0], reserved_memory_mib=peaks[stage][1],
            paper_iterations=paper_iterations, paper_iterations_note=f"{paper_iterations:,} iterations",
            overhead_seconds=paper_iterations / paper.checkpoint_every * checkpoint_seconds,
        ))
    return rows


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def format_table(rows: Sequence[Row]) -> str:
    """The figures as a Markdown table, with one total line per method of several stages."""
    lines = ["| stage | input | AMP | images/iter | s/iter | images/s | peak GPU MiB | paper run | est. full run |",
             "|---|---|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        memory = "-" if r.peak_memory_mib is None else f"{r.peak_memory_mib:,.0f}"
        lines.append(f"| {r.stage} | {r.input_size} | {r.amp} | {r.images_per_iteration:.0f} | {r.seconds_per_iteration:.4f} "
                     f"| {r.images_per_second:,.1f} | {memory} | {r.paper_iterations_note} | {hours(r.estimated_seconds)} |")
    for method in dict.fromkeys(r.method for r in rows):
        of = [r for r in rows if r.method == method]
        if len(of) > 1:
            lines.append(f"| **{method} total** | | | | | | | | {hours(sum(r.estimated_seconds for r in of))} |")
    return "\n".join(lines)


# The families whose training this script times, by their runner.
RUNNERS: dict[str, Callable[..., list[Row]]] = {"aligngan": run_aligngan, "reid": run_reid}


def synthetic_shape(settings: Iterable[dict], tiny: bool) -> tuple[int, int]:
    """``(identities, images per identity and modality)`` that every batch of these methods can be drawn from.

    Re-ID batches need ``num_identities`` x ``num_instances``; AlignGAN's GAN and IDE batches
    ``*_identities`` x ``*_instances`` (tiny settings: 2 x 2 at most).
    """
    if tiny:
        return 2, 2
    ids, k = [2], [1]
    for s in settings:
        ids += [s.get(key, 0) for key in ("num_identities", "gan_identities", "ide_identities")]
        k += [s.get(key, 0) for key in ("num_instances", "gan_instances", "ide_instances")]
    return max(ids), max(k)


def write_json(path: Path, rows: Sequence[Row], *, config: Path, dataset_format: str, training_set: TrainingSet,
               device: torch.device, gpu: str | None, wall: dict[str, float], **run: Any) -> None:
    """The figures and what produced them (``run``: tiny, warmup, iterations, failed, skipped; ``wall``:
    seconds per stage, all in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "config": str(config), "dataset_format": dataset_format, "training_set": dataclasses.asdict(training_set),
        "device": str(device), "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda, **run,
        "wall_seconds": wall, "rows": [r.to_dict() for r in rows],
    }, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="a paper config (default: SYSU-MM01's)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and a few iterations (forced on a CPU)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="timed iterations per stage, after the warm-up (default 150; 2 with --tiny)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="iterations before the timed ones (default iterations/10, at least 1; re-ID: its first epoch)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these: 'cyclegan' and/or method names of the config (default: every training stage)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no stage after this many minutes (the stages left are listed as skipped)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file (rewritten after every stage)")
    parser.add_argument("--workdir", type=Path, help="keep the synthetic data and outputs here (default: a temporary folder)")
    args = parser.parse_args(argv)

    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as e:
        sys.exit(f"--device {args.device}: {e}")
    tiny = args.tiny or device.type != "cuda"
    iterations = args.iterations if args.iterations is not None else (2 if tiny else 150)
    warmup = args.warmup if args.warmup is not None else max(1, iterations // 10)
    if iterations < 1 or warmup < 1:
        sys.exit(f"--iterations and --warmup must be >= 1, got {iterations} and {warmup}")
    config = load_config(args.config)
    dataset_format, training_set, trials = training_set_of(config, args.config)

    # What to run: the CycleGAN, then the methods of each family this script times (AlignGAN's
    # first, the re-ID ones after), each family's in config order.
    trained = {m: e["family"] for m, e in config["methods"].items() if get_family(e["family"]).trains}
    untimed = sorted(m for m, f in trained.items() if f not in RUNNERS)
    plan = ["cyclegan", *(m for family in RUNNERS for m, f in trained.items() if f == family)]
    if args.only:
        unknown = sorted(set(args.only) - set(plan))
        if unknown:
            sys.exit(f"--only {' '.join(unknown)}: not a stage of {args.config}; choose from {' '.join(plan)}")
        plan = [name for name in plan if name in args.only]

    threads = torch.get_num_threads()
    if tiny and device.type == "cpu":
        # Tiny tensors: one thread is faster, and far faster when other processes share the cores.
        torch.set_num_threads(1)
    try:
        return run_plan(args, config, device, tiny=tiny, warmup=warmup, iterations=iterations, plan=plan,
                        trained=trained, untimed=untimed, dataset_format=dataset_format, training_set=training_set,
                        trials=trials)
    finally:
        torch.set_num_threads(threads)


def run_plan(args: argparse.Namespace, config: dict, device: torch.device, *, tiny: bool, warmup: int, iterations: int,
             plan: list[str], trained: dict[str, str], untimed: list[str], dataset_format: str,
             training_set: TrainingSet, trials: int) -> int:
    """Make the synthetic data, time each stage of ``plan``, print the table (and write the JSON); 1 if a stage failed."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    print(f"gpu_check: {args.config.name} ({dataset_format}), device {device}{f' ({gpu})' if gpu else ''}, "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.get_num_threads()} CPU threads; "
          f"{'TINY sizes (a check that the script runs, not GPU figures); ' if tiny else ''}"
          f"{warmup} warm-up + {iterations} timed iterations per stage")
    if untimed:
        print(f"not timed (no runner for their family here): {', '.join(untimed)}")

    rows: list[Row] = []
    failed: list[str] = []
    wall: dict[str, float] = {}
    started = time.perf_counter()
    memory = GpuMemory(device)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        settings = {m: method_settings(config["methods"][m], config) for m in plan if m != "cyclegan"}
        identities, per_modality = synthetic_shape(settings.values(), tiny)
        t0 = time.perf_counter()
        records = write_images(work / "images", identities, per_modality)
        cache_size = TINY_CACHE_SIZE if tiny else tuple(config["cache"]["image_size"])
        cache = write_cache(work / "cache.h5", records, cache_size, converters=CONVERTERS)
        print(f"synthetic data: {identities} identities x {per_modality} images per modality ({SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} "
              f"JPEG), cache {size_text(cache_size)} with converted rows, {time.perf_counter() - t0:.1f} s")
        skipped: list[str] = []
        for name in plan:
            t0 = time.perf_counter()
            if args.max_minutes is not None and t0 - started > 60 * args.max_minutes:
                skipped.append(name)
                continue
            try:
                if name == "cyclegan":
                    new = run_cyclegan(config, records, work, device, tiny=tiny, warmup=warmup,
                                       iterations=iterations, memory=memory)
                else:
                    new = RUNNERS[trained[name]](name, settings[name], cache, work, device, tiny=tiny, warmup=warmup,
                                                 iterations=iterations, training_set=training_set, memory=memory)
            except Exception:  # e.g. out of GPU memory: report it and go on with the other stages
                traceback.print_exc()
                failed.append(name)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            rows += new
            for r in new:
                memory_text = "" if r.peak_memory_mib is None else f", peak {r.peak_memory_mib:,.0f} MiB"
                print(f"  {r.stage}: {r.seconds_per_iteration:.4f} s/iter, {r.images_per_second:,.1f} images/s"
                      f"{memory_text}", flush=True)
            wall[name] = time.perf_counter() - t0
            print(f"  ({name}: {wall[name]:.1f} s in all)", flush=True)
            if args.json:  # after every stage, so that a run stopped part way keeps what it measured
                write_json(args.json, rows, failed=failed, skipped=skipped, wall=wall, config=args.config,
                           dataset_format=dataset_format, training_set=training_set, device=device, gpu=gpu,
                           tiny=tiny, warmup=warmup, iterations=iterations, trials=trials)

    print()
    print(format_table(rows))
    print(f"\nest. full run: one trial of {dataset_format} ({training_set.visible:,} visible + {training_set.thermal:,} "
          f"thermal training images); the config trains {trials} trial(s), each with its own models")
    print(f"\ngpu_check ran {time.perf_counter() - started:.0f} s in all")
    if skipped:
        print(f"\nskipped (past --max-minutes {args.max_minutes}): {', '.join(skipped)}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (tracebacks above)")
    if args.json:
        write_json(args.json, rows, failed=failed, skipped=skipped, wall=wall, config=args.config,
                   dataset_format=dataset_format, training_set=training_set, device=device, gpu=gpu,
                   tiny=tiny, warmup=warmup, iterations=iterations, trials=trials)
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
