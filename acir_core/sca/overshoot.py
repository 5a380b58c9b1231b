"""Blocks no 8-bit picture gives: samples past 0..255 by more than quantisation ringing reaches.

An encoder saw samples in 0..255 only, and quantising its coefficients moves a sample by a few
levels at most, so a block whose inverse transform leaves the range by more holds garbage that
decoded without a failure. The margin is :data:`OVERSHOOT_LEVELS` plus :data:`OVERSHOOT_NOISE`
times the quantiser's noise per sample: ringing grows with a coarser table (what clean files
reach: benchmarks/HISTORY.md, session 37)."""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.sca.edges import DCT

OVERSHOOT_LEVELS = 12.0  # levels past 0..255 a clean block may reach however fine its quantiser ...
OVERSHOOT_NOISE = 1.5  # ... plus this many times the quantiser's noise per sample


def overshoot_margin(qt: np.ndarray) -> float:
    """Levels a clean block's samples may pass 0..255 by under quantiser ``qt`` (64,): its
    rounding noise per sample, sqrt(sum(q^2) / 12) / 8 for an orthonormal transform, is what
    grows with coarser tables."""
    q = np.asarray(qt, np.float64)
    return OVERSHOOT_LEVELS + OVERSHOOT_NOISE * float(np.sqrt(np.sum(q * q) / 12.0)) / 8.0


def overshooting(blocks: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """Per unit of ``blocks`` (N, B, 64 quantised coefficients, natural order): whether any of
    its B blocks' samples pass 0..255 by more than :func:`overshoot_margin`."""
    n = blocks.shape[0]
    if not n or not blocks.size:
        return np.zeros(n, bool)
    return grid_overshooting(blocks.reshape(n, 1, 1, -1, 64), qt)[:, 0]


def grid_overshooting(grid: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """Per MCU of ``grid`` (rows, v, cols, h, 64: a component's coefficients MCU-major, a view
    is fine): whether any of its blocks' samples pass 0..255 by more than
    :func:`overshoot_margin`."""
    out = np.zeros((grid.shape[0], grid.shape[2]), np.bool_)
    _grid_flags(grid, np.asarray(qt, np.float64).reshape(64), overshoot_margin(qt), DCT.astype(np.float64), out)
    return out


@njit(cache=True, nogil=True)
def _grid_flags(grid, q, margin, dct, out):
    """:func:`grid_overshooting` in one pass: a block's samples lie within a quarter of the sum
    of its dequantised AC magnitudes of its mean, so only blocks whose bound reaches past the
    range are transformed."""
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
