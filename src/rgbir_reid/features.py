"""Test-image features of a trained re-ID model, written to HDF5 for evaluation.

Layout of ``features.h5`` (one row per test image, in the order of the records given):

=============  ===================  ==============================================
dataset        dtype / shape        meaning
=============  ===================  ==============================================
``features``   float32 ``[N, D]``   L2-normalised embedding (flip-averaged)
``pid``        int64 ``[N]``        identity as the dataset numbers it
``camera``     int64 ``[N]``        camera
``modality``   int8 ``[N]``         0 visible, 1 thermal
``path``       utf-8 str ``[N]``    image file
=============  ===================  ==============================================

Attribute ``model_sha256`` records the model file the features came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from rgbir_reid.data.records import MODALITY_CODE, ImageRecord
from rgbir_reid.data.transforms import load_image, normalize
from rgbir_reid.device import resolve_device
from rgbir_reid.io import atomic_output, sha256_file
from rgbir_reid.models.reid import IMAGENET_MEAN, IMAGENET_STD, ReidNet
from rgbir_reid.training.reid import load_reid_model




def imagenet_normalize(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, H, W]``, ``(x / 255 - mean) / std`` (ImageNet statistics).

    The same arithmetic as the end of the training augmentation (:func:`rgbir_reid.data.transforms.normalize`).
    """
    return normalize(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2), IMAGENET_MEAN, IMAGENET_STD)


@torch.no_grad()
def embed_with_flip(model: ReidNet, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean of the embeddings of ``x`` and its horizontal mirror, ``[N, D]``.

    Args:
        model: a re-ID network in eval mode.
        x: normalised images ``[N, 3, H, W]``; modality: int ``[N]`` (0 visible, 1 thermal).
    """
    emb, _ = model(x, modality)
    emb_flip, _ = model(torch.flip(x, dims=[3]), modality)
    return F.normalize((emb.float() + emb_flip.float()) / 2, dim=1)


def extract_features(
    model_path: str | Path,
    records: Sequence[ImageRecord],
    out_h5: str | Path,
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
) -> Path:
    """Embed a trial's test images with a trained model and write ``out_h5`` (layout above).

    Each image is decoded with :func:`rgbir_reid.data.transforms.load_image`, resized
    (bilinear) to the model's training ``crop_size`` — the size the network saw — ImageNet
    normalised, embedded together with its horizontal mirror (flip test-time augmentation:
    the two embeddings are averaged), and L2-normalised.

    Args:
        model_path: ``model.pt`` written by ``rgbir_reid.training.reid.train_reid``.
        records: the trial's test images (query and gallery).
        out_h5: output file, written atomically.
        batch_size: images per forward pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``.

    Raises:
        DatasetFormatError: if an image cannot be decoded (names the file).
        ValueError: if ``records`` is empty or the model file is not a re-ID model.
    """
    if not records:
        raise ValueError(f"no test records given for {out_h5}")
    device = resolve_device(device)
    model, settings, _ = load_reid_model(model_path, device)
    size = tuple(settings.crop_size)
    modality_codes = np.array([MODALITY_CODE[r.modality] for r in records], dtype=np.int8)
    chunks = []
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        x = imagenet_normalize(np.stack([load_image(r.path, size) for r in batch])).to(device)
        modality = torch.from_numpy(modality_codes[start:start + batch_size]).long().to(device)
        chunks.append(embed_with_flip(model, x, modality).cpu().numpy().astype(np.float32))
    features = np.concatenate(chunks)
    with atomic_output(out_h5) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("features", data=features)
        f.create_dataset("pid", data=np.array([r.pid for r in records], dtype=np.int64))
        f.create_dataset("camera", data=np.array([r.camera for r in records], dtype=np.int64))
        f.create_dataset("modality", data=modality_codes)
        f.create_dataset("path", data=np.array([r.path for r in records], dtype=object), dtype=h5py.string_dtype("utf-8"))
        f.attrs["model_sha256"] = sha256_file(model_path)
    return Path(out_h5)
