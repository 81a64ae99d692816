"""Test-image features of a trained re-ID model, written to HDF5 for evaluation.

Layout of ``features.h5`` (one row per test image, in the order of the records given):

=============  ===================  ==============================================
dataset        dtype / shape        meaning
=============  ===================  ==============================================
``features``   float32 ``[N, D]``   L2-normalised embedding (flip-averaged if asked)
``pid``        int64 ``[N]``        identity as the dataset numbers it
``camera``     int64 ``[N]``        camera
``modality``   int8 ``[N]``         0 visible, 1 thermal
``path``       utf-8 str ``[N]``    image file
=============  ===================  ==============================================

Attributes: ``family`` (the method family that made them) and the family's provenance; the
``reid`` family writes ``model_sha256`` (the model file the features came from), ``flip``
(whether the flip test-time augmentation was applied) and ``test_feature`` (which feature of
the network: ``bnneck`` or ``pooled``, see :class:`rgbir_reid.models.reid.ReidNet`).
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
from rgbir_reid.training.reid_model import load_reid_model


def load_test_image(path: str | Path, image_size: Sequence[int], crop_size: Sequence[int]) -> np.ndarray:
    """One test image with the training geometry: uint8 ``[h, w, 3]`` of size ``crop_size``.

    The image is resized (bilinear) to the training resize ``image_size`` and the centre
    ``crop_size`` window is kept, so people appear at the scale the network was trained on
    (training takes random ``crop_size`` windows of ``image_size`` images; resizing straight
    to ``crop_size`` would enlarge them by ``image_size / crop_size``, ~13 % at 256 -> 227).
    Where ``crop_size`` exceeds ``image_size`` (training padded before cropping) the image is
    zero-padded around its centre instead.

    Raises:
        DatasetFormatError: if the image cannot be decoded (names the file).
    """
    img = load_image(path, (int(image_size[0]), int(image_size[1])))
    out = np.zeros((int(crop_size[0]), int(crop_size[1]), 3), dtype=np.uint8)
    (h, w), (ch, cw) = img.shape[:2], out.shape[:2]
    # Offsets of the centre window in the source (positive) or in the output (negative).
    dy, dx = (h - ch) // 2, (w - cw) // 2
    src = img[max(dy, 0):max(dy, 0) + min(h, ch), max(dx, 0):max(dx, 0) + min(w, cw)]
    out[max(-dy, 0):max(-dy, 0) + src.shape[0], max(-dx, 0):max(-dx, 0) + src.shape[1]] = src
    return out


def imagenet_normalize(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, H, W]``, ``(x / 255 - mean) / std`` (ImageNet statistics).

    The same arithmetic as the end of the training augmentation (:func:`rgbir_reid.data.transforms.normalize`).
    """
    return normalize(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2), IMAGENET_MEAN, IMAGENET_STD)


@torch.no_grad()
def embed(model: ReidNet, x: torch.Tensor, modality: torch.Tensor, *, flip: bool = False) -> torch.Tensor:
    """L2-normalised test features ``[N, D]`` of normalised images ``x [N, 3, H, W]``.

    The feature is the network's embedding in eval mode: ``Linear`` then ``BatchNorm1d`` with
    its running statistics, the layer the ranking losses see in training (before the dropout
    and the identity classifier); see :class:`rgbir_reid.models.reid.ReidNet`. With ``flip``
    the embeddings of ``x`` and of its horizontal mirror are averaged before normalising
    (flip test-time augmentation, common in later re-ID code; CE²L and BDTR do not use it).

    Args:
        model: a re-ID network in eval mode.
        modality: int ``[N]`` (0 visible, 1 thermal), which stream each image takes.
        flip: average with the mirrored image.
    """
    emb = model(x, modality)[0].float()
    if flip:
        emb = (emb + model(torch.flip(x, dims=[3]), modality)[0].float()) / 2
    return F.normalize(emb, dim=1)


def write_features(out_h5: str | Path, features: np.ndarray, records: Sequence[ImageRecord], attrs: dict) -> Path:
    """Write ``out_h5`` atomically in the layout above: ``features [N, D]`` of ``records`` (same order)
    and the provenance ``attrs`` (e.g. ``model_sha256``, ``flip``, ``family``).

    Raises:
        ValueError: if ``features`` does not have one row per record.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) != len(records):
        raise ValueError(f"{out_h5}: {features.shape} features for {len(records)} records; expected [N, D] with N = {len(records)}")
    modality_codes = np.array([MODALITY_CODE[r.modality] for r in records], dtype=np.int8)
    with atomic_output(out_h5) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("features", data=features)
        f.create_dataset("pid", data=np.array([r.pid for r in records], dtype=np.int64))
        f.create_dataset("camera", data=np.array([r.camera for r in records], dtype=np.int64))
        f.create_dataset("modality", data=modality_codes)
        f.create_dataset("path", data=np.array([r.path for r in records], dtype=object), dtype=h5py.string_dtype("utf-8"))
        for key, value in attrs.items():
            f.attrs[key] = value
    return Path(out_h5)


def reid_features(
    model_path: str | Path,
    records: Sequence[ImageRecord],
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    flip: bool = False,
) -> tuple[np.ndarray, dict]:
    """Embed a trial's test images with a trained re-ID model: ``(features [N, D] float32, attrs)``.

    Each image gets the training geometry (:func:`load_test_image`: resize to the model's
    ``image_size``, centre ``crop_size`` window), ImageNet normalisation as in training, and
    goes through the stream of its modality; the feature is the eval-mode embedding,
    L2-normalised (:func:`embed`), optionally averaged with its mirror's (``flip``).
    ``attrs`` = ``{"model_sha256", "flip", "test_feature"}`` (``"bnneck"``: the BN output, i.e. the
    embedding or AGW's BN-neck feature; ``"pooled"``: the pooled backbone feature).

    Args:
        model_path: ``model.pt`` written by :func:`rgbir_reid.training.reid.train_reid`.
        records: the trial's test images (query and gallery).
        batch_size: images per forward pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        flip: flip test-time augmentation (off in the paper configs).

    Raises:
        DatasetFormatError: if an image cannot be decoded (names the file).
        ValueError: if ``records`` is empty; CheckpointError (a ``ValueError``) if the model
            file is missing, damaged or not a re-ID model (names the file).
    """
    if not records:
        raise ValueError(f"no test records given for {model_path}")
    device = resolve_device(device)
    model, settings, _ = load_reid_model(model_path, device)
    modality_codes = np.array([MODALITY_CODE[r.modality] for r in records], dtype=np.int8)
    chunks = []
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        pixels = np.stack([load_test_image(r.path, settings.image_size, settings.crop_size) for r in batch])
        x = imagenet_normalize(pixels).to(device)
        modality = torch.from_numpy(modality_codes[start:start + batch_size]).long().to(device)
        chunks.append(embed(model, x, modality, flip=flip).cpu().numpy().astype(np.float32))
    return np.concatenate(chunks), {"model_sha256": sha256_file(model_path), "flip": bool(flip),
                                    "test_feature": settings.test_feature}


def extract_features(
    model_path: str | Path,
    records: Sequence[ImageRecord],
    out_h5: str | Path,
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    flip: bool = False,
) -> Path:
    """:func:`reid_features` of ``records`` written to ``out_h5`` (:func:`write_features`); same errors."""
    features, attrs = reid_features(model_path, records, batch_size=batch_size, device=device, flip=flip)
    return write_features(out_h5, features, records, attrs)
