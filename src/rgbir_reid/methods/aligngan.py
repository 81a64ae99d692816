"""The ``aligngan`` family: AlignGAN (Wang et al., ICCV 2019), pixel and feature alignment trained end to end.

Training: :func:`rgbir_reid.training.aligngan.train_aligngan` on the real rows of the trial's
cache (its three stages: feature warm-up, pixel warm-up, joint), with the ``aligngan:``
section's settings (official values by default) and each method's overrides. With the
official ``pixel_init: none`` it needs no CycleGAN (AlignGAN's pixel warm-up trains its
generators with the library's CycleGAN iteration); with ``pixel_init: cyclegan`` both pixel
generators start from the trial's CycleGAN (``results/<dataset>/trial<t>/cyclegan/generator.pt``,
so the workflow trains it first), whose ``ngf`` and ``n_blocks`` the settings must repeat. Test features: visible (gallery) images through
``G_rgb2ir`` then the feature generator, infrared (query) images straight in, the pooled map
L2-normalised, with the official flip test-time augmentation
(:func:`rgbir_reid.training.aligngan.aligngan_features`); the config's ``extract.flip`` is not
used, since the official test always flips.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from rgbir_reid.data.records import MODALITY_CODE, ImageRecord
from rgbir_reid.methods import MethodFamily, Settings


def training_budget(settings: Settings) -> str:
    """One line on the three stages' lengths, batches and learning rates (``snakemake -n``)."""
    return (
        f"{settings['feature_warmup_iterations']} feature warm-up + {settings['pixel_warmup_iterations']} pixel "
        f"warm-up + {settings['joint_iterations']} joint iterations; GAN batches {settings['gan_identities']} x "
        f"{settings['gan_instances']}, IDE batches {settings['ide_identities']} x {settings['ide_instances']} per "
        f"modality; lr pixel {settings['pixel_lr']}, feature {settings['feature_lr']}, x{settings['lr_decay_gamma']} "
        f"at joint iterations {settings['lr_decay_iterations']}"
    )


def training_work(settings: Settings) -> int:
    """Images through the encoder in training, summed over the three stages (for the
    workflow's job order): IDE batches in the feature warm-up; both modalities' GAN batches
    in the pixel warm-up; both modalities' IDE and GAN batches in the joint stage.
    """
    ide = settings["ide_identities"] * settings["ide_instances"]
    gan = settings["gan_identities"] * settings["gan_instances"]
    return int(settings["feature_warmup_iterations"] * ide + settings["pixel_warmup_iterations"] * 2 * gan
               + settings["joint_iterations"] * 2 * (ide + gan))


def train(
    cache_path: str | Path,
    out_dir: str | Path,
    settings: Settings,
    *,
    device: str = "auto",
    seed: int = 0,
    logger: logging.Logger | None = None,
    section: str = "aligngan",
    generators: str | Path | None = None,
) -> Path:
    """Train AlignGAN on the cache's real rows (:func:`rgbir_reid.training.aligngan.train_aligngan`);
    ``generators``: the trial's CycleGAN ``generator.pt`` for ``pixel_init: cyclegan``.

    Raises:
        ValueError: a setting unknown to :class:`AlignGANSettings` or out of range (names
            ``section.key``), a cache that cannot feed a batch, or a generator file that does
            not fit the settings (names it).
    """
    from rgbir_reid.config import settings_from
    from rgbir_reid.training.aligngan import AlignGANSettings, train_aligngan

    model_path = train_aligngan(cache_path, out_dir, settings_from(AlignGANSettings, settings, section),
                                device=device, seed=seed, logger=logger, init_generators=generators)
    write_sample_grid(model_path, cache_path, Path(out_dir) / "samples.png")
    return model_path


def starts_from_cyclegan(settings: Settings) -> bool:
    """Whether the pixel generators start from the trial's CycleGAN (``pixel_init: cyclegan``)."""
    return settings.get("pixel_init", "none") == "cyclegan"


def check_settings(settings: Settings, config: Settings, section: str) -> None:
    """With ``pixel_init: cyclegan``, the pixel generators must be the trial's CycleGAN's:
    ``generator: cyclegan`` and the ``cyclegan:`` section's ``ngf`` and ``n_blocks`` (its
    resolved default when that is null).

    Raises:
        ValueError: naming ``section``'s keys and the ``cyclegan:`` values they must repeat.
    """
    if not starts_from_cyclegan(settings):
        return
    cyclegan = config.get("cyclegan", {})
    n_blocks = cyclegan.get("n_blocks")
    if n_blocks is None:
        from rgbir_reid.models.cyclegan import default_n_blocks  # imports torch: only here

        n_blocks = default_n_blocks(int(cyclegan["image_size"][0]))
    want = {"generator": "cyclegan", "ngf": cyclegan.get("ngf"), "n_blocks": n_blocks}
    wrong = {k: v for k, v in want.items() if settings.get(k) != v}
    if wrong:
        raise ValueError(
            f"config key {section}.pixel_init: 'cyclegan' starts the pixel generators from the trial's CycleGAN, so "
            + ", ".join(f"{section}.{k} must be {v!r} (got {settings.get(k)!r})" for k, v in wrong.items())
            + " (the cyclegan: section's settings)")


def write_sample_grid(model_path: str | Path, cache_path: str | Path, out_png: str | Path, count: int = 4) -> Path:
    """``real RGB | fake IR | real IR | fake RGB`` rows of the trained pixel generators on ``count``
    real training images of each modality (evenly spaced cache rows), at the model's ``image_size``
    (:func:`rgbir_reid.reporting.samples.save_sample_grid`).

    Raises:
        ValueError: if the cache holds no real image of a modality.
    """
    import torch
    import torch.nn.functional as F

    from rgbir_reid.data.cache import KIND_REAL, CacheBatchDataset
    from rgbir_reid.data.records import THERMAL, VISIBLE
    from rgbir_reid.data.transforms import to_uint8
    from rgbir_reid.reporting.samples import save_sample_grid
    from rgbir_reid.training.aligngan import load_aligngan_model

    model, settings = load_aligngan_model(model_path, "cpu")
    cached = CacheBatchDataset(cache_path)
    meta = cached.meta
    pixels = {}
    for modality in (VISIBLE, THERMAL):
        rows = np.flatnonzero((meta["kind"] == KIND_REAL) & (meta["modality"] == MODALITY_CODE[modality]))
        if len(rows) == 0:
            raise ValueError(f"cache {cache_path} holds no real {modality} image for the sample grid")
        picks = rows[np.linspace(0, len(rows) - 1, min(count, len(rows))).round().astype(int)]
        images = cached[list(picks)]["image"].float().div(127.5).sub(1.0)  # [-1, 1], as in training
        pixels[modality] = F.interpolate(images, size=tuple(settings.image_size), mode="bilinear",
                                         antialias=True, align_corners=False)
    n = min(len(pixels[VISIBLE]), len(pixels[THERMAL]))
    with torch.no_grad():
        fake_ir = model.G_rgb2ir(pixels[VISIBLE][:n])
        fake_rgb = model.G_ir2rgb(pixels[THERMAL][:n])
    return save_sample_grid(to_uint8(pixels[VISIBLE][:n]), to_uint8(fake_ir), to_uint8(pixels[THERMAL][:n]),
                            to_uint8(fake_rgb), out_png)


def extract(
    model_path: str | Path,
    records: Sequence[ImageRecord],
    settings: Settings,
    *,
    batch_size: int = 64,
    flip: bool = True,
    device: str = "auto",
    logger: logging.Logger | None = None,
) -> tuple[np.ndarray, dict]:
    """AlignGAN test features ``[N, C]`` of ``records`` (``C`` = the feature generator's width, 2048
    for ResNet-50); the settings come from the model file, and flip TTA is always on (official).

    Raises:
        ValueError: no records; CheckpointError / ValueError if the model file is not an AlignGAN model.
        DatasetFormatError: an image cannot be decoded (names the file).
    """
    import torch

    from rgbir_reid.data.transforms import load_image, to_tensor
    from rgbir_reid.device import resolve_device
    from rgbir_reid.io import sha256_file
    from rgbir_reid.training.aligngan import aligngan_features, load_aligngan_model

    if not records:
        raise ValueError(f"no test records given for {model_path}")
    model, model_settings = load_aligngan_model(model_path, resolve_device(device))
    size = tuple(model_settings.image_size)
    codes = np.array([MODALITY_CODE[r.modality] for r in records], dtype=np.int64)
    chunks = []
    for start in range(0, len(records), batch_size):
        pixels = np.stack([load_image(r.path, size) for r in records[start:start + batch_size]])
        chunks.append(aligngan_features(model, to_tensor(pixels), torch.from_numpy(codes[start:start + batch_size]),
                                        flip=True, batch_size=batch_size).numpy())
    return np.concatenate(chunks).astype(np.float32), {"model_sha256": sha256_file(model_path), "flip": True}


FAMILY = MethodFamily(
    name="aligngan",
    summary="AlignGAN: pixel generators, feature generator and joint discriminator trained end to end",
    defaults_section="aligngan",
    needs_cache=lambda settings: True,
    needs_conversion=lambda settings: False,
    train=train,
    extract=extract,
    budget=training_budget,
    work=training_work,
    figures={"samples": "samples.png"},
    needs_generators=starts_from_cyclegan,
    check=check_settings,
)
