"""Conversion-fidelity metrics on known inputs, and a brief real training run scored on LLVIP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rgbir_reid.conversion import convert_images
from rgbir_reid.data.paired import load_pairs, read_pairs
from rgbir_reid.evaluation.fidelity import BASELINE_NAME, conversion_fidelity, l1_error, psnr, ssim, to_grey
from rgbir_reid.training.cyclegan import CycleGANSettings, train_cyclegan



def _random(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_identical_images():
    a = _random((2, 16, 16, 3))
    assert l1_error(a, a) == 0.0
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a) == math.inf  # documented: not capped


def test_known_differences():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 255, np.uint8)
    assert l1_error(a, b) == 1.0
    assert psnr(a, b) == pytest.approx(0.0)  # MSE = 255^2
    c = np.full((8, 8, 3), 51, np.uint8)  # error 51 = 0.2 * 255 everywhere
    assert l1_error(a, c) == pytest.approx(0.2)
    assert psnr(a, c) == pytest.approx(10 * math.log10(255**2 / 51**2))  # 13.98 dB
    # Batch mean of per-image values: PSNRs 13.98 and 0.
    assert psnr(np.stack([a, a]), np.stack([c, b])) == pytest.approx(0.5 * 10 * math.log10(25))


def test_ssim_matches_its_definition_on_constant_images():
    # Constant images: variances 0, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), C1 = (0.01 * 255)^2.
    a = np.full((9, 9, 3), 100, np.uint8)
    b = np.full((9, 9, 3), 150, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 150 + c1) / (100**2 + 150**2 + c1))
    assert ssim(a, _random((9, 9, 3))) < 0.5


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="shape"):
        l1_error(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


def test_grey_uses_bt601_luma():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    grey = to_grey(px)
    assert grey[0, :, 0].tolist() == [76, 150, 29, 18]  # round(255*.299), round(255*.587), round(255*.114), 18.15
    assert (grey[..., 0] == grey[..., 2]).all()


def test_brief_training_on_llvip_gives_fidelity_table(shared_data, tmp_path):
    train = read_pairs(shared_data / "llvip_pairs" / "train")
    test = read_pairs(shared_data / "llvip_pairs" / "test")
    settings = CycleGANSettings(
        image_size=(32, 32), ngf=8, ndf=8, n_blocks=2, iterations=10, log_every=5, checkpoint_every=10, sample_count=2
    )
    # Unpaired training: the pairing of the training set is not used.
    gen = train_cyclegan([p.visible for p in train], [p.infrared for p in train][::-1], tmp_path, settings, seed=0)
    visible, infrared = load_pairs(test, (32, 32))
    converted = convert_images(gen, visible, "rgb2ir")
    table = conversion_fidelity(visible, infrared, converted)
    assert table["method"].tolist() == ["G_rgb2ir", BASELINE_NAME]
    assert (table["n_pairs"] == 12).all()
    values = table[["l1", "psnr_db", "ssim"]].to_numpy()
    assert np.isfinite(values).all()
    assert ((table["l1"] > 0) & (table["l1"] < 1)).all()
    assert ((table["ssim"] > -1) & (table["ssim"] < 1)).all()
    assert (tmp_path / "samples.png").exists() and (tmp_path / "losses.csv").exists()
