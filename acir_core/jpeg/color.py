"""YCbCr -> RGB exactly as libjpeg-turbo converts (jdcolor.c, build_ycc_rgb_table), in numba.

libjpeg looks each term up in tables built as ``(FIX(c) * x + ONE_HALF) >> SCALEBITS``; here the
same integer expressions are computed inline instead. Each table entry is exactly that expression,
so the pixels are the same (tests compare all 2^24 inputs against the tables), and without the
seven table reads per pixel the loop vectorises (SCA renders again after every fit).
"""
from __future__ import annotations

import numpy as np
from numba import njit

SCALEBITS = 16
ONE_HALF = 1 << (SCALEBITS - 1)


def _fix(x: float) -> int:
    return int(x * (1 << SCALEBITS) + 0.5)


FIX_1_40200, FIX_1_77200 = _fix(1.40200), _fix(1.77200)
FIX_0_71414, FIX_0_34414 = _fix(0.71414), _fix(0.34414)


@njit(cache=True, nogil=True)
def ycc_to_rgb(y, cb, cr, out):
    """``out`` (H, W, 3) C-contiguous uint8 from the (H, W) uint8 planes. Every intermediate fits
    in 32 bits (|FIX · (x − 128)| < 2^24), which is what lets it run in wide vector lanes."""
    h, w = y.shape
    flat = out.reshape(h, w * 3)
    c_r, c_b = np.int32(FIX_1_40200), np.int32(FIX_1_77200)
    c_gr, c_gb = np.int32(FIX_0_71414), np.int32(FIX_0_34414)
    half = np.int32(ONE_HALF)
    for i in range(h):
        y_row, cb_row, cr_row, o = y[i], cb[i], cr[i], flat[i]
        for j in range(w):
            yy = np.int32(y_row[j])
            b_ = np.int32(cb_row[j]) - np.int32(128)
            r_ = np.int32(cr_row[j]) - np.int32(128)
            r = yy + ((c_r * r_ + half) >> SCALEBITS)
            g = yy + ((half - c_gb * b_ - c_gr * r_) >> SCALEBITS)
            b = yy + ((c_b * b_ + half) >> SCALEBITS)
            o[3 * j] = np.uint8(min(max(r, 0), 255))
            o[3 * j + 1] = np.uint8(min(max(g, 0), 255))
            o[3 * j + 2] = np.uint8(min(max(b, 0), 255))
