"""The re-ID network a :class:`ReidSettings` describes, and its ``model.pt`` file."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from rgbir_reid.device import resolve_device
from rgbir_reid.io import save_torch
from rgbir_reid.models.reid import ReidNet, build_reid_model
from rgbir_reid.io import CheckpointError, load_checkpoint
from rgbir_reid.training.reid_settings import ReidSettings

MODEL_FORMAT = "rgbir_reid.reid_model/1"


def model_from_settings(settings: ReidSettings, num_classes: int, *, pretrained: str | None = None) -> ReidNet:
    """The re-ID network ``settings`` describe, with ``num_classes`` identity outputs.

    Args:
        pretrained: overrides ``settings.pretrained`` (``"none"`` when weights are loaded next).

    Raises:
        ValueError: from :func:`rgbir_reid.models.reid.build_reid_model` (unknown
            architecture, unreadable pretrained weights).
    """
    return build_reid_model(
        settings.architecture,
        num_classes,
        embedding_dim=settings.embedding_dim,
        dropout=settings.dropout,
        pretrained=settings.pretrained if pretrained is None else pretrained,
        last_stride=settings.last_stride,
        specific_stages=settings.specific_stages,
        zero_padding=settings.zero_padding,
        head=settings.head,
        pooling=settings.pooling,
        non_local=settings.non_local,
        non_local_inter_channels=settings.non_local_inter_channels,
        test_feature=settings.test_feature,
    )


def save_reid_model(path: str | Path, model: ReidNet, settings: ReidSettings, pids: list[int]) -> Path:
    """Write the final model atomically: ``{"format", "state_dict", "settings", "pids"}``.

    ``pids[label]`` is the dataset identity of classifier output ``label``; ``settings`` is
    ``asdict(ReidSettings)``, enough for :func:`load_reid_model` to rebuild the network.
    """
    state = {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "settings": asdict(settings),
        "pids": [int(p) for p in pids],
    }
    save_torch(state, path)
    return Path(path)


def load_reid_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[ReidNet, ReidSettings, list[int]]:
    """Rebuild a model written by :func:`save_reid_model`, in eval mode on ``device``.

    Returns:
        ``(model, settings, pids)``.

    Raises:
        CheckpointError: (a ``ValueError``) if the file is missing, damaged, not a re-ID model
            of this format, or its weights do not fit the network its settings describe (names
            the file).
    """
    state = load_checkpoint(path, expected_format=MODEL_FORMAT, required=("state_dict", "settings", "pids"))
    settings = ReidSettings.from_dict(state["settings"])
    pids = list(state["pids"])
    model = model_from_settings(settings, len(pids), pretrained="none")
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: its weights do not fit the {settings.architecture} network its settings "
                              f"describe: {str(e).splitlines()[0]}") from None
    return model.to(resolve_device(device)).eval(), settings, pids
