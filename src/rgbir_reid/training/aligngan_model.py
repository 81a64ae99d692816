"""The AlignGAN model file and its test feature.

Source: the official code (wangguanan/AlignGAN ``core/test.py``, ``core/base.py``), as this
project's reference notes describe it (``aligngan-and-baselines.md`` §1.5). Networks:
:mod:`rgbir_reid.models.aligngan`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE
from rgbir_reid.device import resolve_device
from rgbir_reid.io import load_checkpoint, save_torch
from rgbir_reid.models.aligngan import AlignGAN, build_aligngan
from rgbir_reid.training.aligngan_settings import AlignGANSettings

MODEL_FORMAT = "rgbir_reid.aligngan_model/1"


def build_model_from_settings(settings: AlignGANSettings, num_classes: int, *, seed: int = 0,
                              pretrained: str | None = None) -> tuple[AlignGAN, nn.ModuleDict]:
    """``(model, discriminators)`` as ``settings`` describe them, initialised from ``seed``.

    ``pretrained`` overrides ``settings.pretrained`` (``"none"`` when weights are loaded next).
    """
    return build_aligngan(
        num_classes,
        seed=seed,
        ndf=settings.ndf,
        n_disc_layers=settings.n_disc_layers,
        backbone=settings.backbone,
        pretrained=settings.pretrained if pretrained is None else pretrained,
        last_stride=settings.last_stride,
        ngf=settings.ngf,
        n_blocks=settings.n_blocks,
        generator=settings.generator,
        reid_size=settings.reid_size,
        bottleneck_dim=settings.bottleneck_dim,
        embedding_dim=settings.embedding_dim,
        dropout=settings.dropout,
    )


def save_aligngan_model(path: str | Path, model: AlignGAN, settings: AlignGANSettings, pids: Sequence[int]) -> Path:
    """Write the test-time model atomically: ``{"format", "state_dict", "settings", "pids"}``.

    ``state_dict`` is the :class:`~rgbir_reid.models.aligngan.AlignGAN`'s (both generators,
    encoder, embedder; no discriminator); ``pids[label]`` is the dataset identity of classifier
    output ``label``; ``settings`` is :meth:`AlignGANSettings.to_dict`.
    """
    state = {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "settings": settings.to_dict(),
        "pids": [int(p) for p in pids],
    }
    save_torch(state, path)
    return Path(path)


def load_aligngan_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[AlignGAN, AlignGANSettings]:
    """Rebuild the model written by :func:`save_aligngan_model`, in eval mode on ``device``.

    The classifier's identities are in the file's ``"pids"`` (not returned: test features do
    not use the classifier). The pixel generators' instance norms use the statistics the
    settings' ``norm_statistics`` names (:func:`use_norm_statistics`).

    Raises:
        ValueError: if ``path`` is not an AlignGAN model file of this format (names the file).
    """
    state = load_checkpoint(path, expected_format=MODEL_FORMAT, required=("state_dict", "settings", "pids"))
    settings = AlignGANSettings.from_dict(state["settings"])
    model, _ = build_model_from_settings(settings, len(state["pids"]), pretrained="none")
    model.load_state_dict(state["state_dict"])
    use_norm_statistics(model, settings.norm_statistics)
    return model.to(resolve_device(device)).eval(), settings


def use_norm_statistics(model: AlignGAN, mode: str) -> None:
    """Set which statistics the pixel generators' instance norms use in eval mode.

    ``"running"`` (official ``core/test.py``: eval mode, the running means and variances
    gathered in training) or ``"per_image"`` (each image's own mean and variance, as in
    training). Only ``G_rgb2ir`` and ``G_ir2rgb`` are touched. With ``"per_image"`` their
    running buffers are dropped from the module (torch's instance norm would otherwise keep
    updating them from test images; the model file keeps them), so it cannot go back to
    ``"running"``: load the model again for that.

    Raises:
        ValueError: ``mode`` is neither.
    """
    if mode not in ("running", "per_image"):
        raise ValueError(f"norm_statistics {mode!r}: expected 'running' or 'per_image'")
    for generator in (model.G_rgb2ir, model.G_ir2rgb):
        for norm in generator.modules():
            if isinstance(norm, nn.InstanceNorm2d) and mode == "per_image":
                norm.track_running_stats = False
                norm.running_mean = norm.running_var = norm.num_batches_tracked = None
            elif isinstance(norm, nn.InstanceNorm2d) and norm.running_mean is None:
                raise ValueError("norm_statistics 'running': this generator's running statistics were dropped (load the model again)")


@torch.no_grad()
def aligngan_features(
    model: AlignGAN,
    images: torch.Tensor,
    modality: int | torch.Tensor,
    *,
    flip: bool = True,
    batch_size: int = 64,
) -> torch.Tensor:
    """L2-normalised AlignGAN test features (official ``core/test.py``), float32 ``[N, C]`` on the CPU.

    Visible images (modality 0, the gallery) are turned into fake infrared by ``G_rgb2ir``,
    infrared ones (modality 1, the queries) go straight in; the encoder's map of each (at the
    model's ``reid_size``) is average-pooled to ``C`` values (the backbone width: 2048 for
    ResNet-50; the official ``features_c``, not the 256-d embedding). With ``flip`` (official)
    the pooled features of the (fake) infrared image and of its horizontal mirror are summed
    before normalising. The networks run in eval mode (the generator's instance norms with
    their running statistics, as official, unless :func:`use_norm_statistics` chose each
    image's own, as :func:`load_aligngan_model` does for ``norm_statistics: per_image``); the
    model's mode is restored afterwards.

    Args:
        model: a trained :class:`~rgbir_reid.models.aligngan.AlignGAN` (see :func:`load_aligngan_model`).
        images: float ``[N, 3, H, W]`` in [-1, 1] (``(x / 255 - 0.5) / 0.5``, as in training;
            :func:`rgbir_reid.data.transforms.to_tensor`) at the training ``image_size``
            (sides multiples of 4).
        modality: one code for all images or int ``[N]`` per image: 0 visible, 1 infrared.
        flip: flip test-time augmentation.
        batch_size: images per forward pass.

    Raises:
        ValueError: on a shape mismatch or a modality code other than 0 or 1.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"aligngan_features: expected images [N, 3, H, W], got {tuple(images.shape)}")
    n = images.shape[0]
    modality = torch.as_tensor(modality).long()
    modality = modality.expand(n) if modality.ndim == 0 else modality
    if modality.shape != (n,):
        raise ValueError(f"aligngan_features: modality must be a code or [{n}], got {tuple(modality.shape)}")
    visible, infrared = MODALITY_CODE[VISIBLE], MODALITY_CODE[THERMAL]
    if bool(((modality != visible) & (modality != infrared)).any()):
        raise ValueError("aligngan_features: modality codes must be 0 (visible) or 1 (infrared)")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, n, batch_size):
            x = images[start : start + batch_size].to(device).float()
            m = modality[start : start + batch_size].to(device)
            is_visible = (m == visible)[:, None, None, None]
            if bool(is_visible.any()):
                x = torch.where(is_visible, model.G_rgb2ir(x), x)
            pooled = model.encode(x).mean(dim=(2, 3))
            if flip:
                pooled = pooled + model.encode(x.flip(3)).mean(dim=(2, 3))
            out.append(F.normalize(pooled.float(), dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, model.feature_dim)
