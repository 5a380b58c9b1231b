"""YCbCr -> RGB exactly as libjpeg-turbo converts (jdcolor.c, build_ycc_rgb_table), in numba."""
from __future__ import annotations

import numpy as np
from numba import njit

SCALEBITS = 16
ONE_HALF = 1 << (SCALEBITS - 1)


def _fix(x: float) -> int:
    return int(x * (1 << SCALEBITS) + 0.5)


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.arange(256, dtype=np.int64) - 128
    cr_r = (_fix(1.40200) * x + ONE_HALF) >> SCALEBITS
    cb_b = (_fix(1.77200) * x + ONE_HALF) >> SCALEBITS
    cr_g = -_fix(0.71414) * x
    cb_g = -_fix(0.34414) * x + ONE_HALF
    return cr_r, cb_b, cr_g, cb_g


CR_R, CB_B, CR_G, CB_G = _tables()


@njit(cache=True)
def ycc_to_rgb(y, cb, cr, cr_r, cb_b, cr_g, cb_g, out):
    h, w = y.shape
    for i in range(h):
        for j in range(w):
            yy = np.int64(y[i, j])
            b_ = cb[i, j]
            r_ = cr[i, j]
            r = yy + cr_r[r_]
            g = yy + ((cb_g[b_] + cr_g[r_]) >> SCALEBITS)
            b = yy + cb_b[b_]
            out[i, j, 0] = 0 if r < 0 else (255 if r > 255 else r)
            out[i, j, 1] = 0 if g < 0 else (255 if g > 255 else g)
            out[i, j, 2] = 0 if b < 0 else (255 if b > 255 else b)
