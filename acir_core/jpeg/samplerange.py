"""Blocks whose samples no 8-bit picture gives: past 0..255 by more than a margin.

An encoder is given samples in 0..255, and quantising moves them by a few levels, so a block
that decodes far past the range holds values no photo produced: garbage a damaged stream
decoded in step (SCA masks it), or a block decoders' 16-bit inverse transforms would disagree
on (the repaired JPEG makes it up). One pass over the coefficients; a block's samples lie
within a quarter of the sum of its dequantised AC magnitudes of its mean, so only blocks whose
bound reaches past the range are transformed."""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.fdct import DCT


def samples_past_range(grid: np.ndarray, qt: np.ndarray, margin: float) -> np.ndarray:
    """Per MCU of ``grid`` (rows, v, cols, h, 64 quantised coefficients in natural order, a
    component MCU-major; a view is fine, and a plane of blocks is ``plane[:, None, :, None]``):
    whether any of its blocks' samples pass 0..255 by more than ``margin`` levels under the
    quantiser ``qt`` (64,)."""
    out = np.zeros((grid.shape[0], grid.shape[2]), np.bool_)
    if grid.size:
        _flags(grid, np.asarray(qt, np.float64).reshape(64), float(margin), DCT.astype(np.float64), out)
    return out


@njit(cache=True, nogil=True)
def _flags(grid, q, margin, dct, out):
    """:func:`samples_past_range`, writing ``out``."""
    rows, v, cols, h = grid.shape[0], grid.shape[1], grid.shape[2], grid.shape[3]
    f = np.empty((8, 8))
    t = np.empty((8, 8))
    for r in range(rows):
        for c in range(cols):
            for a in range(v):
                if out[r, c]:
                    break
                for b in range(h):
                    mean = grid[r, a, c, b, 0] * q[0] / 8.0 + 128.0
                    reach = 0.0
                    for j in range(1, 64):
                        reach += abs(float(grid[r, a, c, b, j])) * q[j]
                    reach *= 0.25
                    if mean + reach <= 255.0 + margin and mean - reach >= -margin:
                        continue
                    for j in range(64):
                        f[j // 8, j % 8] = grid[r, a, c, b, j] * q[j]
                    for u in range(8):  # t = F @ dct, then samples = dct.T @ t
                        for x in range(8):
                            acc = 0.0
                            for k in range(8):
                                acc += f[u, k] * dct[k, x]
                            t[u, x] = acc
                    for y in range(8):
                        for x in range(8):
                            acc = 128.0
                            for u in range(8):
                                acc += dct[u, y] * t[u, x]
                            if acc > 255.0 + margin or acc < -margin:
                                out[r, c] = True
                    if out[r, c]:
                        break
