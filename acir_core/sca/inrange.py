"""Runs' DC corrections kept inside what a picture can hold, when no thumbnail judges them.

A block's mean is its DC, quantised by at most half a step, and no picture holds levels past
0..255: a run's correction that moves most of its MCU means past them is wrong (a silent break
the edges missed, chained into the solve). Every run of a scan is judged in one compiled pass; a
file with a restart interval every few MCUs has tens of thousands of runs.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _quantile(sorted_vals: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (its default, linear method) of values already sorted, bit for bit."""
    n = sorted_vals.size
    vi = (n - 1) * q
    if vi >= n - 1:
        return sorted_vals[n - 1]
    below = int(np.floor(vi))
    gamma = vi - below
    a, b = sorted_vals[below], sorted_vals[below + 1]
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


@njit(cache=True)
def run_quantiles(levels: np.ndarray, starts: np.ndarray, lo_q: float, hi_q: float) -> np.ndarray:
    """Per run (``levels[:, starts[g]:starts[g + 1]]``, one row per component) and component
    its ``hi_q`` and ``lo_q`` quantiles (G, K, 2); nan for a run without MCUs."""
    g_n = starts.size - 1
    k_n = levels.shape[0]
    out = np.full((g_n, k_n, 2), np.nan)
    for g in range(g_n):
        a, b = starts[g], starts[g + 1]
        if b <= a:
            continue
        for k in range(k_n):
            vals = np.sort(levels[k, a:b])
            out[g, k, 0] = _quantile(vals, hi_q)
            out[g, k, 1] = _quantile(vals, lo_q)
    return out


def runs_into_range(mcu_means: tuple, ms: list[np.ndarray], dcs: list, units: list[float], mk) -> list[tuple]:
    """Per run (its placed MCUs ``ms[g]``, its DC correction ``dcs[g]`` per component) the
    correction moved, per component, by the least that keeps most of its MCU means inside
    0..255 (all but ``mk.range_share`` within ``mk.range_levels`` and a DC step); a run without
    MCUs keeps its own. ``mcu_means``: per component every decoded MCU's mean (levels)."""
    if not ms:
        return []
    u = np.asarray(units, np.float64)
    sizes = np.array([m.size for m in ms], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    idx = np.concatenate(ms).astype(np.int64)
    shift = np.asarray(dcs, np.float64).reshape(len(ms), -1) * u[None, :]  # (G, K) levels
    levels = np.stack([means[idx] for means in mcu_means]) - np.repeat(shift, sizes, axis=0).T
    q = run_quantiles(np.ascontiguousarray(levels), starts, float(mk.range_share), 1.0 - float(mk.range_share))
    out = []
    for g, dc in enumerate(dcs):
        if not sizes[g]:
            out.append(tuple(int(d) for d in dc))
            continue
        moved = []
        for k in range(len(mcu_means)):
            slack = mk.range_levels + units[k]
            hi = float(q[g, k, 0]) - (255.0 + slack)
            lo = float(q[g, k, 1]) + slack
            move = hi if hi > 0 else (lo if lo < 0 else 0.0)
            moved.append(int(dc[k]) + int(np.ceil(abs(move) / units[k])) * int(np.sign(move)))
        out.append(tuple(moved))
    return out
