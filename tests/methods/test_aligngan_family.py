"""The aligngan family's extract: real SYSU-MM01 test images through a saved AlignGAN model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rgbir_reid.data.transforms import load_image, to_tensor
from rgbir_reid.methods import get_family
from rgbir_reid.training.aligngan import (
    AlignGANSettings,
    aligngan_features,
    build_model_from_settings,
    load_aligngan_model,
    save_aligngan_model,
)
from reid_tiny import sample_records

pytestmark = pytest.mark.usefixtures("shared_data")

SMALL = replace(AlignGANSettings(), backbone="shufflenet_v2_x0_5", pretrained="none", ngf=4, n_blocks=1, ndf=4,
                bottleneck_dim=8, embedding_dim=8, image_size=(64, 32), reid_size=(32, 16))


def test_extract_is_the_model_feature_of_each_record_in_order(tmp_path):
    model, _ = build_model_from_settings(SMALL, 3, seed=0)
    path = save_aligngan_model(tmp_path / "model.pt", model, SMALL, [1, 2, 3])
    records = sample_records()[::6]
    assert {r.modality for r in records} == {"visible", "thermal"}
    features, attrs = get_family("aligngan").extract(path, records, {}, batch_size=4, flip=False, device="cpu")
    assert features.dtype == np.float32 and features.shape[0] == len(records)
    assert attrs["flip"] is True  # the official test always flips, whatever extract.flip says
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    loaded, _ = load_aligngan_model(path)
    images = to_tensor(np.stack([load_image(r.path, SMALL.image_size) for r in records]))
    codes = torch.tensor([0 if r.modality == "visible" else 1 for r in records])
    expected = aligngan_features(loaded, images, codes, flip=True).numpy()
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_extract_refuses_a_model_file_of_another_family(tmp_path):
    other = tmp_path / "model.pt"
    torch.save({"format": "rgbir_reid.reid_model/1"}, other)
    with pytest.raises(ValueError, match="model.pt"):
        get_family("aligngan").extract(other, sample_records()[:1], {}, device="cpu")


def test_budget_line_names_the_three_stages():
    from rgbir_reid.config import defaults_of

    line = get_family("aligngan").budget(defaults_of(AlignGANSettings))
    assert line.startswith("5000 feature warm-up + 10000 pixel warm-up + 10100 joint iterations")


def test_sample_grid_shows_the_generators_on_real_training_images(tmp_path):
    from PIL import Image

    from rgbir_reid.data.cache import write_cache
    from rgbir_reid.methods.aligngan import write_sample_grid
    from rgbir_reid.reporting.samples import COLUMNS

    assert get_family("aligngan").figures == {"samples": "samples.png"}  # declared, so the job outputs it
    cache = write_cache(tmp_path / "cache.h5", sample_records(), (64, 32))
    model, _ = build_model_from_settings(SMALL, 3, seed=0)
    path = save_aligngan_model(tmp_path / "model.pt", model, SMALL, [1, 2, 3])
    out = write_sample_grid(path, cache, tmp_path / "samples.png", count=3)
    grid = np.asarray(Image.open(out))
    h, w = SMALL.image_size
    # header + 3 rows of tiles (2 px gaps), 4 columns: real RGB | fake IR | real IR | fake RGB
    assert grid.shape[0] > 3 * h and grid.shape[1] == len(COLUMNS) * (w + 2)
    tile = lambda row, col: grid[-(3 - row) * (h + 2):, :][:h, col * (w + 2):col * (w + 2) + w]  # noqa: E731
    assert not np.array_equal(tile(0, 0), tile(0, 1))  # the fake IR is the generator's output, not a copy
