"""Quality metrics: the literature's convention, cross-checked against scikit-image."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from acir_core.errors import InvalidParameter
from acir_core.metrics import downscale, evaluate, rgb_psnr, rgb_to_y, y_psnr, y_ssim
from conftest import photo_like


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    ref = photo_like(200, 120, seed=3)
    rng = np.random.default_rng(0)
    noisy = np.clip(ref.astype(int) + rng.integers(-25, 26, ref.shape), 0, 255).astype(np.uint8)
    noisy[40:60, 50:90] = 0  # a block-shaped hole, as damage looks
    return noisy, ref


def test_luma_follows_matlab_rgb2ycbcr() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    assert rgb_to_y(rgb)[0].tolist() == pytest.approx([16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966])


@pytest.mark.parametrize("border", [0, 4])
def test_y_psnr_and_ssim_match_scikit_image(pair, border) -> None:
    a, b = pair
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    sk_psnr = peak_signal_noise_ratio(yb, ya, data_range=255)
    sk_ssim = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=255)
    assert abs(y_psnr(a, b, crop_border=border) - sk_psnr) < 1e-6
    assert abs(y_ssim(a, b, crop_border=border) - sk_ssim) < 1e-6


def test_rgb_psnr_matches_scikit_image(pair) -> None:
    a, b = pair
    assert abs(rgb_psnr(a, b) - peak_signal_noise_ratio(b, a, data_range=255)) < 1e-6


def test_identical_images_score_infinite_psnr_and_unit_ssim(pair) -> None:
    _, ref = pair
    assert math.isinf(y_psnr(ref, ref)) and y_ssim(ref, ref) == pytest.approx(1.0)
    assert evaluate(ref, ref)[0].as_dict()["y_psnr"] is None  # JSON has no infinity


def test_multi_scale_evaluation_downsamples_both_images(pair) -> None:
    a, b = pair
    res = evaluate(a, b, scales=(1, 2, 4))
    assert [(q.width, q.height) for q in res] == [(200, 120), (100, 60), (50, 30)]
    assert res[1].y_psnr == pytest.approx(y_psnr(downscale(a, 2), downscale(b, 2)))
    assert res[2].y_psnr > res[0].y_psnr  # noise averages out at lower resolution


def test_mismatched_sizes_and_bad_arguments_are_refused(pair) -> None:
    a, b = pair
    with pytest.raises(InvalidParameter, match="differ in size"):
        y_psnr(a[:-1], b)
    with pytest.raises(InvalidParameter, match="crop border"):
        y_ssim(a, b, crop_border=70)
    with pytest.raises(InvalidParameter, match="at least 11x11"):
        y_ssim(a[:8, :8], b[:8, :8])
    with pytest.raises(InvalidParameter, match="H×W×3"):
        y_psnr(a[..., 0], b[..., 0])
