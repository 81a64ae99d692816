"""CE²L re-ID training on a tiny cache of real SYSU-MM01 images: outputs, determinism, exact resume."""

import logging
from dataclasses import replace

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from rgbir_reid.data.cache import write_cache
from rgbir_reid.features import extract_features
from rgbir_reid.models.reid import IMAGENET_MEAN, IMAGENET_STD
from rgbir_reid.data.records import REAL_SETS
from rgbir_reid.training.reid import train_reid, train_transform
from rgbir_reid.training.reid_loss import reid_loss_terms, set_of_rows
from rgbir_reid.training.reid_model import load_reid_model, model_from_settings
from rgbir_reid.training.reid_settings import ReidSettings
from reid_tiny import TINY, assert_same_weights, sample_records






@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    records = sample_records()
    assert len(records) == 60
    path = tmp_path_factory.mktemp("cache") / "cache.h5"
    return write_cache(path, records, (32, 16), converters={"rgb2ir": lambda x: 255 - x, "ir2rgb": lambda x: 255 - x})






@pytest.fixture(scope="module")
def reference_run(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_a")
    return train_reid(cache, out, TINY, device="cpu", seed=3)


def test_outputs_written(reference_run):
    out = reference_run.parent
    assert reference_run == out / "model.pt"
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "losses.png").stat().st_size > 0
    frame = pd.read_csv(out / "losses.csv")
    assert list(frame["epoch"]) == [1, 2, 3]
    assert {"loss_cross", "loss_intra", "loss_id", "accuracy", "images_per_s", "lr"} <= set(frame.columns)
    assert np.isfinite(frame[["loss_total", "loss_cross", "loss_intra", "loss_id"]].to_numpy()).all()
    # warm-up epoch 1 at half lr, then full lr, then decayed at the milestone (epoch index 2)
    assert frame["lr"].tolist() == pytest.approx([0.005, 0.01, 0.001])
    model, settings, pids = load_reid_model(reference_run)
    assert settings == TINY and pids == [1, 2, 3, 4, 5]
    assert model.classifier.out_features == 5 and not model.training


def test_same_seed_same_weights(cache, reference_run, tmp_path):
    again = train_reid(cache, tmp_path / "b", TINY, device="cpu", seed=3)
    assert_same_weights(reference_run, again)


class Interrupt(Exception):
    pass


def test_resume_after_interrupt_gives_identical_weights_and_features(cache, reference_run, tmp_path, caplog):
    out = tmp_path / "resumed"

    def stop_after_first(epochs_done, row):
        if epochs_done == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_reid(cache, out, TINY, device="cpu", seed=3, on_epoch_end=stop_after_first)
    assert not (out / "model.pt").exists() and len(pd.read_csv(out / "losses.csv")) == 1
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    logger = logging.getLogger("test_resume")
    with caplog.at_level(logging.INFO, logger="test_resume"):
        resumed = train_reid(cache, out, TINY, device="cpu", seed=3, logger=logger)
    assert "resuming from epoch 2" in caplog.text
    assert_same_weights(reference_run, resumed)
    # the history survives the interruption: same per-epoch losses (timings aside)
    resumed_losses = pd.read_csv(out / "losses.csv").drop(columns="images_per_s")
    assert resumed_losses.equals(pd.read_csv(reference_run.parent / "losses.csv").drop(columns="images_per_s"))
    test_records = sample_records()[::7]
    fa = extract_features(reference_run, test_records, tmp_path / "fa.h5", device="cpu")
    fb = extract_features(resumed, test_records, tmp_path / "fb.h5", device="cpu")
    with h5py.File(fa) as a, h5py.File(fb) as b:
        assert np.array_equal(a["features"][()], b["features"][()])


def test_checkpoint_of_other_settings_is_not_resumed(cache, reference_run, tmp_path, caplog):
    out = tmp_path / "other"
    out.mkdir()
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.pt").write_bytes((reference_run.parent / "checkpoints" / "last.pt").read_bytes())
    logger = logging.getLogger("test_other")
    one_epoch = replace(TINY, epochs=1)
    with caplog.at_level(logging.INFO, logger="test_other"):
        train_reid(cache, out, one_epoch, device="cpu", seed=3, logger=logger)
    assert "ignoring checkpoint" in caplog.text and "resuming" not in caplog.text
    assert len(pd.read_csv(out / "losses.csv")) == 1


def test_baseline_method_trains_on_real_images_only(cache, tmp_path):
    base = replace(TINY, train_sets=REAL_SETS, lsr_sets=(), weight_intra=0.0)  # the demo config's baseline
    np.random.seed(11)
    torch.manual_seed(11)
    model_path = train_reid(cache, tmp_path / "base", replace(base, epochs=1), device="cpu", seed=0)
    after = (np.random.random(), torch.rand(1).item())
    np.random.seed(11)
    torch.manual_seed(11)
    assert after == (np.random.random(), torch.rand(1).item()), "training must leave the caller's RNG states alone"
    frame = pd.read_csv(model_path.parent / "losses.csv")
    assert frame["loss_intra"].tolist() == [0.0] and frame["loss_cross"].iloc[0] > 0


def test_set_of_rows_names_each_kind_and_modality():
    kind = np.array([0, 0, 1, 1])
    modality = np.array([0, 1, 1, 0])
    assert set_of_rows(kind, modality).tolist() == ["real_visible", "real_thermal", "converted_thermal", "converted_visible"]


def test_loss_terms_weighting_and_lsr_mask():
    g = torch.Generator().manual_seed(0)
    emb, logits = torch.randn(4, 3, generator=g), torch.randn(4, 2, generator=g)
    pid, modality, target = torch.tensor([7, 8, 7, 8]), torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    hard = reid_loss_terms(emb, logits, pid, modality, target, torch.zeros(4, dtype=torch.bool), TINY)
    soft = reid_loss_terms(emb, logits, pid, modality, target, torch.ones(4, dtype=torch.bool), TINY)
    assert hard["cross"] == soft["cross"] and hard["intra"] == soft["intra"] and hard["id"] != soft["id"]
    off = reid_loss_terms(emb, logits, pid, modality, target, torch.zeros(4, dtype=torch.bool),
                          replace(TINY, weight_intra=0.0))
    assert off["intra"].item() == 0.0 and off["cross"] == hard["cross"]
    # skipping the label check (train_reid checks its labels once) changes no value
    unchecked = reid_loss_terms(emb, logits, pid, modality, target, torch.ones(4, dtype=torch.bool), TINY,
                                check_labels=False)
    assert all(torch.equal(unchecked[k], soft[k]) for k in soft)


def test_model_from_settings_uses_every_network_setting():
    s = replace(TINY, dropout=0.25, specific_stages=2, last_stride=2, embedding_dim=12)
    model = model_from_settings(s, 7)
    assert model.dropout.p == 0.25 and model.classifier.out_features == 7 and model.embedding.out_features == 12
    assert len(model.visible_stream) == 2 and len(model.shared_deep) == len(model_from_settings(TINY, 7).shared_deep) - 1


def test_settings_validation_and_from_dict():
    s = ReidSettings.from_dict({"image_size": [288, 144], "crop_size": [288, 144], "train_sets": ["real_visible"]})
    assert s.image_size == (288, 144) and s.train_sets == ("real_visible",)
    with pytest.raises(ValueError, match="unknown re-ID settings"):
        ReidSettings.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="train_sets"):
        ReidSettings(train_sets=("fake_visible",))
    with pytest.raises(ValueError, match="architecture"):
        ReidSettings(architecture="vgg")
    with pytest.raises(ValueError, match="crop_size"):
        ReidSettings(image_size=(100, 100), crop_size=(227, 227))
    for key in ("random_grayscale", "num_converted_instances"):
        with pytest.raises(ValueError, match=key):
            ReidSettings(**{key: -1})


def test_train_transform_follows_the_settings():
    # The batch steps themselves are tested in tests/data/test_transforms.py; here: the
    # settings reach them (sizes, grayscale probability, the ImageNet statistics).
    rng = np.random.default_rng(0)
    colour = torch.from_numpy(rng.integers(0, 256, (8, 3, 40, 20), dtype=np.uint8))
    settings = replace(TINY, image_size=(36, 18), crop_size=(32, 16), crop_padding=0, random_grayscale=1.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = (train_transform(settings)(colour) * std + mean) * 255
    assert out.shape == (8, 3, 32, 16)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-3) and torch.allclose(out[:, 1], out[:, 2], atol=1e-3)
    off = train_transform(replace(settings, random_grayscale=0.0))(colour)
    assert not torch.allclose(off[:, 0], off[:, 1])


def test_empty_selection_names_the_cache(tmp_path):
    real_only = write_cache(tmp_path / "real.h5", sample_records()[:12], (32, 16))
    with pytest.raises(ValueError, match="real.h5"):
        train_reid(real_only, tmp_path / "x", replace(TINY, train_sets=("converted_thermal",)), device="cpu")
