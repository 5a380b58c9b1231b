"""Chroma upsampling exactly as libjpeg-turbo does it with "fancy" upsampling on (jdsample.c).

Which method a component gets depends on its sampling ratio to the frame maximum, as in
``jinit_upsampler``: 2x1 and 2x2 use triangle filters when the component is wider than 2
samples, 1x2 always uses its triangle filter, everything else (and narrow 2x components)
replicates samples. Vertical context at the image top and bottom repeats the first and last real
sample rows (jdmainct.c); columns beyond the component's width are never read.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def h2v1_fancy(src, width, height, out_w, out):
    """src: (>=height, >=width) component samples; out: (height, out_w)."""
    tmp = np.empty(2 * width, np.int32)
    for y in range(height):
        row = src[y]
        inv = np.int32(row[0])
        tmp[0] = inv
        tmp[1] = (inv * 3 + np.int32(row[1]) + 2) >> 2
        for x in range(1, width - 1):
            inv = np.int32(row[x]) * 3
            tmp[2 * x] = (inv + np.int32(row[x - 1]) + 1) >> 2
            tmp[2 * x + 1] = (inv + np.int32(row[x + 1]) + 2) >> 2
        inv = np.int32(row[width - 1])
        tmp[2 * width - 2] = (inv * 3 + np.int32(row[width - 2]) + 1) >> 2
        tmp[2 * width - 1] = inv
        for x in range(out_w):
            out[y, x] = tmp[x]


@njit(cache=True)
def h1v2_fancy(src, width, height, out_h, out_w, out):
    """Vertical 2x triangle filter; out: (out_h, out_w) with out_w <= width."""
    for oy in range(out_h):
        iy = oy >> 1
        if oy & 1:
            ny = min(iy + 1, height - 1)
            bias = 2
        else:
            ny = max(iy - 1, 0)
            bias = 1
        a = src[min(iy, height - 1)]
        b = src[ny]
        for x in range(out_w):
            out[oy, x] = (np.int32(a[x]) * 3 + np.int32(b[x]) + bias) >> 2


@njit(cache=True)
def h2v2_fancy(src, width, height, out_h, out_w, out):
    """2x2 triangle filter (9/16, 3/16, 3/16, 1/16) with libjpeg's rounding."""
    tmp = np.empty(2 * width, np.int32)
    for oy in range(out_h):
        iy = oy >> 1
        if oy & 1:
            ny = min(iy + 1, height - 1)
        else:
            ny = max(iy - 1, 0)
        a = src[min(iy, height - 1)]
        b = src[ny]
        this = np.int32(a[0]) * 3 + np.int32(b[0])
        nxt = np.int32(a[1]) * 3 + np.int32(b[1])
        tmp[0] = (this * 4 + 8) >> 4
        tmp[1] = (this * 3 + nxt + 7) >> 4
        last = this
        this = nxt
        for x in range(1, width - 1):
            nxt = np.int32(a[x + 1]) * 3 + np.int32(b[x + 1])
            tmp[2 * x] = (this * 3 + last + 8) >> 4
            tmp[2 * x + 1] = (this * 3 + nxt + 7) >> 4
            last = this
            this = nxt
        tmp[2 * width - 2] = (this * 3 + last + 8) >> 4
        tmp[2 * width - 1] = (this * 4 + 7) >> 4
        for x in range(out_w):
            out[oy, x] = tmp[x]


@njit(cache=True)
def replicate(src, hx, vx, out_h, out_w, out):
    """Box upsampling by integer factors (libjpeg's int_upsample, h2v1_upsample, h2v2_upsample)."""
    for y in range(out_h):
        row = src[y // vx]
        for x in range(out_w):
            out[y, x] = row[x // hx]


def upsample(plane: np.ndarray, comp_w: int, comp_h: int, hx: int, vx: int, out_w: int, out_h: int) -> np.ndarray:
    """A component plane at full resolution (out_h, out_w), by the method libjpeg would pick."""
    out = np.empty((out_h, out_w), np.uint8)
    if hx == 1 and vx == 1:
        out[:] = plane[:out_h, :out_w]
    elif hx == 2 and vx == 1 and comp_w > 2:
        h2v1_fancy(plane, comp_w, out_h, out_w, out)
    elif hx == 1 and vx == 2:
        h1v2_fancy(plane, comp_w, comp_h, out_h, out_w, out)
    elif hx == 2 and vx == 2 and comp_w > 2:
        h2v2_fancy(plane, comp_w, comp_h, out_h, out_w, out)
    else:
        replicate(plane, hx, vx, out_h, out_w, out)
    return out
