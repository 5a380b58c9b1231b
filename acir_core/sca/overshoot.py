"""Blocks no 8-bit picture gives: samples past 0..255 by more than quantisation ringing reaches.

An encoder saw samples in 0..255 only, and quantising its coefficients moves a sample by a few
levels at most, so a block whose inverse transform leaves the range by more holds garbage that
decoded without a failure. The margin is :data:`OVERSHOOT_LEVELS` plus :data:`OVERSHOOT_NOISE`
times the quantiser's noise per sample: ringing grows with a coarser table (what clean files
reach: benchmarks/HISTORY.md, session 37)."""
from __future__ import annotations

import numpy as np

from acir_core.jpeg.samplerange import samples_past_range

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
    :func:`overshoot_margin` (:func:`acir_core.jpeg.samplerange.samples_past_range`)."""
    return samples_past_range(grid, qt, overshoot_margin(qt))
