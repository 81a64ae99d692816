"""LOMO: length, and each part behaving as its definition says (Liao et al., CVPR 2015)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from rgbir_reid.descriptors import lomo as L

HSV_DIM = 40 * 512  # block rows 24 + 11 + 5 at 128x48, 64x24, 32x12
SILTP_DIM = 40 * 81


def _images(n: int, seed: int = 0, size=(128, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def test_length_and_parts_at_128x48():
    f = L.lomo(_images(3))
    assert f.shape == (3, 26960) and f.dtype == np.float32
    assert np.isfinite(f).all() and (f >= 0).all()
    parts = np.split(f, [HSV_DIM, HSV_DIM + SILTP_DIM], axis=1)
    assert [p.shape[1] for p in parts] == [HSV_DIM, SILTP_DIM, SILTP_DIM]
    for p in parts:  # log(x + 1) then unit L2 norm per part
        np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, rtol=1e-5)


def test_block_rows_per_scale():
    assert [L.block_starts(h).size for h in (128, 64, 32)] == [24, 11, 5]
    assert [L.block_starts(w).size for w in (48, 24, 12)] == [8, 3, 1]
    np.testing.assert_array_equal(L.block_starts(48), [0, 5, 10, 15, 20, 25, 30, 35])


def test_constant_image_occupies_one_hsv_bin_per_block():
    img = np.full((1, 128, 48, 3), (200, 40, 90), dtype=np.uint8)
    counts = L.hsv_part(img)[0]
    assert counts.size == HSV_DIM
    per_row = counts.reshape(40, 512)
    assert ((per_row > 0).sum(axis=1) == 1).all()
    assert (per_row.max(axis=1) == 100).all()  # the whole 10x10 window in that bin
    assert len(set(per_row.argmax(axis=1))) == 1  # the same bin at every row and scale


def test_hsv_levels_and_joint_code_of_pure_colours():
    rgb = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.5, 0.5, 0.5], [0, 0, 0]])
    lv = L.hsv_levels(rgb)
    # H = 0, 1/3, 2/3 -> levels 0, 2, 5; grey and black have H = S = 0.
    np.testing.assert_array_equal(lv, [[0, 7, 7], [2, 7, 7], [5, 7, 7], [0, 0, 4], [0, 0, 0]])
    np.testing.assert_array_equal(L.joint_hsv_code(lv), [504, 506, 509, 256, 0])


def test_constant_colour_codes_fill_a_single_bin_in_every_window():
    codes = np.full((1, 128, 48), 506)
    h = L.block_histograms(codes, 512)
    assert h.shape == (1, 24, 8, 512)
    assert (h[..., 506] == 100).all() and h.sum() == 100 * 24 * 8


def test_infrared_occupies_value_bins_only():
    grey = np.random.default_rng(1).integers(0, 256, (2, 128, 48, 1), dtype=np.uint8)
    counts = L.hsv_part(np.repeat(grey, 3, axis=3)).reshape(2, 40, 512)
    occupied = np.flatnonzero(counts.sum(axis=(0, 1)))
    assert occupied.size > 1 and (occupied % 64 == 0).all()  # H = S = 0: code = V * 64


def test_siltp_flat_patch_is_the_all_equal_code():
    for value in (0.0, 0.4, 1.0):
        codes = L.siltp(np.full((1, 20, 20), value), radius=3)
        assert (codes == 0).all()


def test_siltp_hand_computed_code_and_scale_invariance():
    g = np.ones((1, 3, 3))
    g[0, 1, 2] = 0.5  # right: below 0.7 -> state 1, weight 1
    g[0, 0, 1] = 1.5  # up: above 1.3 -> state 2, weight 3
    g[0, 1, 0] = 1.1  # left: within tolerance -> 0
    g[0, 2, 1] = 0.69  # down: below 0.7 -> state 1, weight 27
    assert L.siltp(g, radius=1)[0, 1, 1] == 1 + 2 * 3 + 27
    x = np.random.default_rng(2).random((2, 30, 20)) + 0.05
    codes = L.siltp(x, radius=5)
    assert codes.min() >= 0 and codes.max() <= 80
    np.testing.assert_array_equal(L.siltp(3.7 * x, radius=5), codes)


def test_max_occurrence_is_the_row_maximum_of_window_histograms():
    codes = np.random.default_rng(3).integers(0, 81, (2, 64, 24))
    np.testing.assert_array_equal(L.max_occurrence(codes, 81), L.block_histograms(codes, 81).max(axis=2))


def test_pattern_moved_along_a_row_gives_the_same_feature():
    # A textured 10x10 patch on a flat background, moved along its row by three window steps;
    # every window that sees the patch or its SILTP neighbourhood (R = 3) exists in both.
    rng = np.random.default_rng(4)
    patch = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    a = np.full((1, 128, 48, 3), 120, dtype=np.uint8)
    b, c = a.copy(), a.copy()
    a[0, 20:30, 10:20] = patch
    b[0, 20:30, 25:35] = patch
    c[0, 60:70, 10:20] = patch  # moved across rows instead

    def hsv_codes(x):
        return L.joint_hsv_code(L.hsv_levels(x / 255.0))

    def siltp_codes(x):
        return L.siltp(L.grey(x), radius=3)

    for codes, n_bins in ((hsv_codes, 512), (siltp_codes, L.SILTP_BINS)):
        ca, cb, cc = codes(a), codes(b), codes(c)
        np.testing.assert_array_equal(L.max_occurrence(ca, n_bins), L.max_occurrence(cb, n_bins))
        assert not np.array_equal(L.max_occurrence(ca, n_bins), L.max_occurrence(cc, n_bins))
        # The window histograms themselves differ: the row maximum is what removes the shift.
        assert not np.array_equal(L.block_histograms(ca, n_bins), L.block_histograms(cb, n_bins))


def test_pooling_drops_odd_edges_and_floors_levels():
    lv = np.array([[[[1], [2], [9]], [[2], [2], [9]], [[9], [9], [9]]]])  # [1, 3, 3, 1]
    np.testing.assert_array_equal(L.pool_levels(lv), [[[[1]]]])  # floor(7 / 4)
    np.testing.assert_allclose(L.pool_grey(np.arange(12.0).reshape(1, 2, 6)), [[[3.5, 5.5, 7.5]]])


def test_retinex_range_grey_stays_grey_and_flat_is_mid_grey():
    rng = np.random.default_rng(5)
    out = L.retinex(_images(2, seed=5))
    assert out.shape == (2, 128, 48, 3) and out.min() >= 0.0 and out.max() <= 1.0
    grey = np.repeat(rng.integers(0, 256, (1, 128, 48, 1), dtype=np.uint8), 3, axis=3)
    g = L.retinex(grey)
    np.testing.assert_array_equal(g[..., 0], g[..., 1])
    np.testing.assert_array_equal(g[..., 0], g[..., 2])
    assert np.all(L.retinex(np.full((1, 16, 16, 3), 77, dtype=np.uint8)) == 0.5)


@pytest.mark.parametrize("sigma", L.RETINEX_SIGMAS)
def test_gaussian_surround_is_scipys_gaussian_filter(sigma):
    x = np.random.default_rng(6).random((2, 128, 48, 3)) + 1.0
    ref = ndimage.gaussian_filter(x, (0, sigma, sigma, 0), mode="nearest", truncate=4.0)
    np.testing.assert_allclose(L.gaussian_surround(x, sigma), ref, rtol=1e-12, atol=0)


def test_retinex_enhances_the_dark_half():
    img = np.full((1, 128, 48, 3), 20, dtype=np.uint8)
    img[:, :, 24:] = 200
    img[:, 40:50, 5:15] = 35  # a faint detail in the dark half
    out = L.retinex(img)[0, ..., 0]
    # Local contrast of the detail grows relative to the global contrast.
    detail = out[45, 10] - out[45, 20]
    edges = out[45, 40] - out[45, 20]
    assert detail / edges > (35 - 20) / (200 - 20)


@pytest.mark.parametrize("radius", [3, 5])
def test_narrow_scales_are_skipped(radius):
    # 128x20: widths 20, 10, 5; R = 3 needs 7 columns, R = 5 needs 11.
    counts = L.siltp_part(_images(1, size=(128, 20)), radius)
    rows = {3: 24 + 11, 5: 24}[radius]  # the third scale has no window row for R=3 (width 5 < 10)
    assert counts.shape == (1, rows * 81)
