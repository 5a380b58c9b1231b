"""Blocks no 8-bit picture gives: samples past 0..255 by more than quantisation ringing reaches.

An encoder saw samples in 0..255 only, and quantising its coefficients moves a sample by a few
levels at most, so a block whose inverse transform leaves the range by more holds garbage that
decoded without a failure. The margin is :data:`OVERSHOOT_LEVELS` plus :data:`OVERSHOOT_NOISE`
times the quantiser's noise per sample: ringing grows with a coarser table (what clean files
reach: benchmarks/HISTORY.md, session 37)."""
from __future__ import annotations

import numpy as np

from acir_core.sca.edges import DCT

OVERSHOOT_LEVELS = 12.0  # levels past 0..255 a clean block may reach however fine its quantiser ...
OVERSHOOT_NOISE = 1.5  # ... plus this many times the quantiser's noise per sample
CHUNK = 32768  # blocks transformed at once


def overshoot_margin(qt: np.ndarray) -> float:
    """Levels a clean block's samples may pass 0..255 by under quantiser ``qt`` (64,): its
    rounding noise per sample, sqrt(sum(q^2) / 12) / 8 for an orthonormal transform, is what
    grows with coarser tables."""
    q = np.asarray(qt, np.float64)
    return OVERSHOOT_LEVELS + OVERSHOOT_NOISE * float(np.sqrt(np.sum(q * q) / 12.0)) / 8.0


def overshooting(blocks: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """Per unit of ``blocks`` (N, B, 64 quantised coefficients, natural order): whether any of
    its B blocks' samples pass 0..255 by more than :func:`overshoot_margin`. A block's samples
    lie within a quarter of the sum of its dequantised AC magnitudes of its mean, so only blocks
    whose bound reaches past the range are transformed."""
    n, per = blocks.shape[0], int(np.prod(blocks.shape[1:-1]))
    if not n or not per:
        return np.zeros(n, bool)
    flat = blocks.reshape(-1, 64)
    q = np.asarray(qt, np.float32).reshape(64)
    margin = overshoot_margin(qt)
    mean = flat[:, 0].astype(np.float32) * (q[0] / 8.0) + 128.0
    reach = 0.25 * (np.abs(flat[:, 1:].astype(np.float32)) @ q[1:])
    cand = np.flatnonzero((mean + reach > 255.0 + margin) | (mean - reach < -margin))
    bad = np.zeros(flat.shape[0], bool)
    basis = DCT.astype(np.float32)
    for c0 in range(0, cand.size, CHUNK):
        idx = cand[c0: c0 + CHUNK]
        s = basis.T @ (flat[idx].astype(np.float32) * q).reshape(-1, 8, 8) @ basis + 128.0
        bad[idx] = (s.max(axis=(1, 2)) > 255.0 + margin) | (s.min(axis=(1, 2)) < -margin)
    return bad.reshape(n, per).any(axis=1)
