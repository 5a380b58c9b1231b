"""Filling damaged pixels: from the thumbnail with a seamless edge, or by inpainting without one.

Both are normalised convolutions built from box blurs (cumulative sums, so the cost does not
grow with the blur radius): a field known on some pixels is spread smoothly over the others.

* With a thumbnail: damaged pixels take the bicubic-upsampled thumbnail plus a smooth correction
  that makes it meet the exact pixels around the hole (the correction is the difference between
  the image and the upsampled thumbnail on a ring outside the hole, spread inwards). The thumbnail
  brings the content; the correction removes the seam.
* Without one: push-pull inpainting (a pyramid of normalised convolutions, coarse levels filling
  what fine levels cannot reach), our own numpy equivalent of diffusion inpainting.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def box_blur(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Mean over a window of 2r+1 along ``axis`` (edges: window clipped), via cumulative sums."""
    if r <= 0:
        return a
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0]
    c = np.cumsum(a, axis=0, dtype=np.float64)
    c = np.concatenate([np.zeros((1,) + a.shape[1:]), c], axis=0)
    idx = np.arange(n)
    lo = np.clip(idx - r, 0, n)
    hi = np.clip(idx + r + 1, 0, n)
    shape = (n,) + (1,) * (a.ndim - 1)
    out = (c[hi] - c[lo]) / (hi - lo).reshape(shape)
    return np.moveaxis(out, 0, axis)


def smooth(a: np.ndarray, r: int, passes: int = 3) -> np.ndarray:
    """Approximately Gaussian blur (three box passes per axis) of an H×W or H×W×C array."""
    out = a.astype(np.float64)
    for _ in range(passes):
        out = box_blur(box_blur(out, r, 0), r, 1)
    return out


def spread(values: np.ndarray, known: np.ndarray, r: int) -> np.ndarray:
    """Normalised convolution: values known where ``known`` is True, smoothly extended elsewhere."""
    w = known.astype(np.float64)
    num = smooth(values * (w[..., None] if values.ndim == 3 else w), r)
    den = smooth(w, r)
    den = den[..., None] if values.ndim == 3 else den
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(den > 1e-9, out, 0.0)


def upsample_thumbnail(thumb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic upsampling of the thumbnail to the photo's size (float64 RGB)."""
    im = Image.fromarray(np.ascontiguousarray(thumb, np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(im).astype(np.float64)


def ring(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels outside ``mask`` within ``width`` pixels of it."""
    grown = smooth(mask.astype(np.float64), width, passes=1) > 1e-9
    return grown & ~mask


def fill_from_thumbnail(rgb: np.ndarray, mask: np.ndarray, thumb_up: np.ndarray, ring_px: int = 3,
                        spread_px: int = 12) -> np.ndarray:
    """Replace ``mask`` pixels with the upsampled thumbnail, corrected to meet the pixels around."""
    if not mask.any():
        return rgb.copy()
    edge = ring(mask, ring_px)
    offset = spread(rgb.astype(np.float64) - thumb_up, edge, spread_px)
    filled = np.clip(np.rint(thumb_up + offset), 0, 255).astype(np.uint8)
    out = rgb.copy()
    out[mask] = filled[mask]
    return out


def inpaint(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill ``mask`` from the surrounding pixels (push-pull normalised convolution)."""
    if not mask.any():
        return rgb.copy()
    known = ~mask
    values = rgb.astype(np.float64)
    estimate = np.zeros_like(values)
    have = np.zeros(mask.shape, bool)
    r = 2
    while True:
        level = spread(values, known, r)
        support = smooth(known.astype(np.float64), r) > 1e-6
        take = support & ~have
        estimate[take] = level[take]
        have |= support
        if have.all() or r > max(mask.shape):
            break
        r *= 2
    out = rgb.copy()
    out[mask] = np.clip(np.rint(estimate[mask]), 0, 255).astype(np.uint8)
    return out
