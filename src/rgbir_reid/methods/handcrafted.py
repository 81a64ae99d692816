"""The ``handcrafted`` family: a fixed descriptor (HOG, LOMO or MLBP) of each test image, no training.

The hand-crafted rows of the CE²L comparison table (from Wu et al.'s SYSU-MM01 paper): each
test image is resized to the descriptor's input size and described
(:mod:`rgbir_reid.descriptors`), and query and gallery are matched by Euclidean distance, as
in the table. Infrared images are decoded to three equal channels, so colour descriptors see
them as grey (LOMO's HSV histogram then has saturation 0). There is nothing to train, so the
workflow plans no CycleGAN, cache or training job for these methods; a method entry is
``{family: handcrafted, descriptor: lomo}``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from rgbir_reid.data.records import ImageRecord
from rgbir_reid.methods import MethodFamily, Settings

# Images decoded and described at once: bounds memory (LOMO: 26,960 float32 per image).
CHUNK = 256


def extract(
    model_path: str | Path | None,
    records: Sequence[ImageRecord],
    settings: Settings,
    *,
    batch_size: int = CHUNK,
    flip: bool = False,
    device: str = "cpu",
    logger: logging.Logger | None = None,
) -> tuple[np.ndarray, dict]:
    """The descriptor ``settings["descriptor"]`` of each record's image: ``(features [N, D] float32, attrs)``.

    ``model_path``, ``flip`` and ``device`` are not used (no model, no test-time augmentation:
    the table's hand-crafted rows use none; CPU only). ``attrs`` = ``{"descriptor"}``.

    Raises:
        ValueError: unknown descriptor (lists the valid ones) or no records.
        DatasetFormatError: an image cannot be decoded (names the file).
    """
    from rgbir_reid.data.transforms import load_image
    from rgbir_reid.descriptors import describe, input_size

    name = settings["descriptor"]
    size = input_size(name)
    if not records:
        raise ValueError(f"no test records to describe with {name}")
    log = logger or logging.getLogger(__name__)
    chunks = []
    for start in range(0, len(records), batch_size):
        images = np.stack([load_image(r.path, size) for r in records[start:start + batch_size]])
        chunks.append(describe(name, images))
    features = np.concatenate(chunks)
    log.info("%s: %d images of %dx%d -> %d-d features", name, len(records), *size, features.shape[1])
    return features, {"descriptor": name}


FAMILY = MethodFamily(
    name="handcrafted",
    summary="a hand-crafted descriptor (HOG, LOMO, MLBP) matched by Euclidean distance; no training",
    defaults_section=None,
    needs_cache=lambda settings: False,
    needs_conversion=lambda settings: False,
    train=None,
    extract=extract,
)
