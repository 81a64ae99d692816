"""The descriptor registry, describe(), HOG and MLBP."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.feature import hog as skimage_hog
from skimage.feature import local_binary_pattern

from rgbir_reid.descriptors import DESCRIPTORS, describe, input_size
from rgbir_reid.descriptors import mlbp as M

DIMS = {"hog": 3780, "lomo": 26960, "mlbp": 5664}


def _images(name: str, n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *input_size(name), 3), dtype=np.uint8)


def test_registry_sizes():
    assert set(DESCRIPTORS) == set(DIMS)
    assert input_size("hog") == (128, 64)
    assert input_size("lomo") == (128, 48)
    assert input_size("mlbp") == (128, 64)


@pytest.mark.parametrize("name", sorted(DIMS))
def test_every_descriptor_shape_dtype_finite(name):
    rgb = _images(name, 2)
    ir = np.repeat(_images(name, 1, seed=1)[..., :1], 3, axis=3)
    flat = np.zeros((1, *input_size(name), 3), dtype=np.uint8)
    f = describe(name, np.concatenate([rgb, ir, flat]))
    assert f.shape == (4, DIMS[name]) and f.dtype == np.float32
    assert np.isfinite(f).all()
    assert not np.array_equal(f[0], f[1])  # different images, different features
    empty = describe(name, rgb[:0])
    assert empty.shape == (0, DIMS[name]) and empty.dtype == np.float32


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="hog, lomo, mlbp"):
        describe("sift", _images("hog"))
    with pytest.raises(ValueError, match="hog, lomo, mlbp"):
        input_size("sift")


def test_describe_refuses_wrong_size_dtype_and_layout():
    with pytest.raises(ValueError, match="128x48"):
        describe("lomo", _images("hog"))
    with pytest.raises(ValueError, match="uint8"):
        describe("hog", _images("hog").astype(np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        describe("hog", _images("hog")[..., 0])


def test_hog_agrees_with_scikit_image_dalal_triggs():
    images = _images("hog", 2)
    f = describe("hog", images)
    for im, row in zip(images, f):
        ref = skimage_hog(rgb2gray(im), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), block_norm="L2-Hys")
        np.testing.assert_allclose(row, ref, rtol=1e-6, atol=1e-7)
    blocks = f.reshape(2, 15 * 7, 2 * 2 * 9)  # L2-Hys: each block has unit norm
    np.testing.assert_allclose(np.linalg.norm(blocks, axis=2), 1.0, rtol=1e-4)


def test_hog_options_reach_scikit_image():
    f = describe("hog", _images("hog", 1), orientations=6, pixels_per_cell=(16, 16))
    assert f.shape == (1, 7 * 3 * 2 * 2 * 6)


def test_mlbp_length_and_cells_sum_to_one():
    f = describe("mlbp", _images("mlbp", 2))
    cells = f.reshape(2, len(M.RADII), 8 * 4, M.N_LABELS)
    assert M.N_LABELS == 59
    np.testing.assert_allclose(cells.sum(axis=3), 1.0, rtol=1e-6)


def test_mlbp_flat_image_is_one_uniform_label_per_cell():
    cells = describe("mlbp", np.full((1, 128, 64, 3), 90, dtype=np.uint8)).reshape(-1, M.N_LABELS)
    assert ((cells > 0).sum(axis=1) == 1).all() and (cells.max(axis=1) == 1.0).all()
    assert (cells[:, M.NON_UNIFORM_LABEL] == 0).all()  # all neighbours >= centre: uniform


def test_mlbp_ramp_is_uniform_noise_is_not():
    ramp = np.repeat(np.repeat(np.arange(64, dtype=np.uint8)[None, None, :, None] * 4, 128, axis=1), 3, axis=3)
    noise = _images("mlbp", 1, seed=7)
    for radius in M.RADII:
        assert (M.uniform_lbp(ramp[0, ..., 0], radius) != M.NON_UNIFORM_LABEL).all()
        assert (M.uniform_lbp(noise[0, ..., 0], radius) == M.NON_UNIFORM_LABEL).mean() > 0.2


def test_mlbp_labels_agree_with_scikit_image_inside_the_border():
    g = _images("mlbp", 1, seed=3)[0, ..., 0]
    for r in M.RADII:
        ref = local_binary_pattern(g, M.POINTS, r, method="nri_uniform")
        inner = (slice(r + 1, -r - 1),) * 2
        np.testing.assert_array_equal(M.uniform_lbp(g, r)[inner], ref[inner])
