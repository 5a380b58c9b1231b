"""Image quality the way the restoration literature reports it (design.md §5).

Convention, stated once: images are H×W×3 uint8 RGB. The luma used for Y-PSNR/Y-SSIM is
ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` defines it, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B``
with R, G, B in [0, 1], kept in floating point (not rounded to integers, as BasicSR does), so Y
lies in [16, 235]; the peak for PSNR is 255. SSIM is Wang et al. 2004: 11×11 Gaussian window
σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, averaged over the positions where the window fits
entirely inside the image (equal to scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``). ``crop_border`` pixels are removed
from every side before either metric. Multi-scale evaluation downsamples both images with
Pillow's bicubic filter, as the paper evaluates at 512×256 / 1024×512 / 2048×1024.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from PIL import Image

from acir_core.errors import InvalidParameter

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_SSIM_SIGMA, _SSIM_RADIUS = 1.5, 5
_K1, _K2, _PEAK = 0.01, 0.03, 255.0


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in [16, 235] (float64) from uint8 RGB (MATLAB rgb2ycbcr convention, unrounded)."""
    rgb = _as_rgb(rgb)
    return 16.0 + rgb.astype(np.float64) @ _Y_WEIGHTS


def _as_rgb(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InvalidParameter(f"expected an H×W×3 RGB image, got shape {a.shape}")
    return a


def _crop(a: np.ndarray, border: int) -> np.ndarray:
    if border < 0:
        raise InvalidParameter(f"crop border must be >= 0, got {border}")
    if border == 0:
        return a
    if 2 * border >= min(a.shape[:2]):
        raise InvalidParameter(f"crop border {border} leaves nothing of a {a.shape[1]}x{a.shape[0]} image")
    return a[border:-border, border:-border]


def _pair(a: np.ndarray, b: np.ndarray, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_rgb(a), _as_rgb(b)
    if a.shape != b.shape:
        raise InvalidParameter(f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    return _crop(a, crop_border), _crop(b, crop_border)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = _PEAK) -> float:
    """PSNR in dB between two same-shape arrays; ``inf`` when they are identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def y_psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0) -> float:
    """PSNR (dB) on BT.601 luma, peak 255 (module docstring)."""
    a, b = _pair(a, b, crop_border)
    return psnr(rgb_to_y(a), rgb_to_y(b))


def rgb_psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0) -> float:
    """PSNR (dB) over all three RGB channels, peak 255."""
    a, b = _pair(a, b, crop_border)
    return psnr(a, b)


def _gaussian_kernel() -> np.ndarray:
    x = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=np.float64)
    k = np.exp(-(x * x) / (2 * _SSIM_SIGMA**2))
    return k / k.sum()


@njit(cache=True)
def _ssim_mean(a, b, k, c1, c2):
    """Mean SSIM over 'valid' window positions. The five moments are filtered horizontally one
    input row at a time into a ring of window-height rows, and each output row is filtered
    vertically from that ring as soon as its last input row is in: the working set stays a few
    hundred KiB (cache-resident) instead of five full-size planes, which is what made two SSIM
    workers on one machine slow each other down. Each filter runs tap by tap over a whole row, so
    the compiler vectorises across pixels; every pixel still sums its taps in the same order as
    the two-plane form, so the same bits."""
    h, w = a.shape
    n = k.shape[0]
    wo, ho = w - n + 1, h - n + 1
    ring = np.empty((n, 5, wo))
    col = np.empty((5, wo))
    total = 0.0
    for r in range(h):
        row = ring[r % n]
        ar = a[r]
        br = b[r]
        row[:] = 0.0
        for i in range(n):
            kk = k[i]
            for x in range(wo):
                va = ar[x + i]
                vb = br[x + i]
                row[0, x] += kk * va
                row[1, x] += kk * vb
                row[2, x] += kk * va * va
                row[3, x] += kk * vb * vb
                row[4, x] += kk * va * vb
        y = r - n + 1
        if y < 0:
            continue
        col[:] = 0.0
        for i in range(n):
            kk = k[i]
            src = ring[(y + i) % n]
            for c in range(5):
                for x in range(wo):
                    col[c, x] += kk * src[c, x]
        for x in range(wo):
            ma = col[0, x]
            mb = col[1, x]
            va = col[2, x] - ma * ma
            vb = col[3, x] - mb * mb
            cov = col[4, x] - ma * mb
            total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return total / (ho * wo)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = _PEAK) -> float:
    """Mean SSIM of two 2-D float images (module docstring for the exact definition)."""
    a = np.ascontiguousarray(a, np.float64)
    b = np.ascontiguousarray(b, np.float64)
    win = 2 * _SSIM_RADIUS + 1
    if min(a.shape) < win:
        raise InvalidParameter(f"SSIM needs images of at least {win}x{win} pixels, got {a.shape[1]}x{a.shape[0]}")
    return float(_ssim_mean(a, b, _gaussian_kernel(), (_K1 * peak) ** 2, (_K2 * peak) ** 2))


def y_ssim(a: np.ndarray, b: np.ndarray, crop_border: int = 0) -> float:
    """SSIM on BT.601 luma (module docstring)."""
    a, b = _pair(a, b, crop_border)
    return ssim(rgb_to_y(a), rgb_to_y(b))


def downscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Bicubic downsampling by an integer factor (Pillow BICUBIC; sizes rounded to nearest)."""
    if factor < 1:
        raise InvalidParameter(f"scale factor must be a positive integer, got {factor}")
    rgb = _as_rgb(rgb)
    if factor == 1:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).resize(size, Image.Resampling.BICUBIC))


@dataclass(frozen=True, kw_only=True)
class Quality:
    """Scores of one image against its reference at one scale (``scale`` = downsampling factor)."""

    scale: int
    width: int
    height: int
    y_psnr: float
    y_ssim: float
    rgb_psnr: float

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in self.__dict__.items()}


def evaluate(restored: np.ndarray, reference: np.ndarray, scales: tuple[int, ...] = (1,),
             crop_border: int = 0) -> list[Quality]:
    """Y-PSNR, Y-SSIM and RGB PSNR of ``restored`` against ``reference`` at each downsampling factor."""
    restored, reference = _pair(restored, reference, 0)
    out = []
    for s in scales:
        a, b = _crop(downscale(restored, s), crop_border), _crop(downscale(reference, s), crop_border)
        ya, yb = rgb_to_y(a), rgb_to_y(b)  # once for both luma scores
        out.append(Quality(scale=s, width=a.shape[1] + 2 * crop_border, height=a.shape[0] + 2 * crop_border,
                           y_psnr=psnr(ya, yb), y_ssim=ssim(ya, yb), rgb_psnr=psnr(a, b)))
    return out
