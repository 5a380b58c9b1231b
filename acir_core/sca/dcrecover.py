"""The DC of blocks that kept their AC but lost their DC: a progressive file whose DC scan failed
or went out of step after a bit error, while its AC scans (sent separately) arrived.

A block's DC moves all 64 of its samples by one amount; its AC gives their shape. So each pair
of neighbouring blocks says how far apart their DCs should be for the picture to go on smoothly
across their shared edge (each side's edge samples carried half a sample further). Blocks whose
DC is known pin the solution; the thumbnail's block means hold the low frequencies where the
unknown area is wide. The least-squares problem is solved by over-relaxed Gauss-Seidel on the
block grid (docs/decoder.md, progressive files).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.render import component_plane

THUMB_WEIGHT = 2.0  # the thumbnail's block mean against one edge's continuity
EDGE_SPREAD = 16.0  # squared levels: an edge whose rows disagree this much counts half
RELAX = 1.8
SWEEPS = 600


def edge_targets(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From one component's AC-only samples (rows·8 × cols·8, level 128 for DC 0): for each
    horizontal neighbour pair the DC-level step right minus left that continues the edge, its
    weight, and the same for vertical pairs (below minus above)."""
    rows, cols = plane.shape[0] // 8, plane.shape[1] // 8
    p = plane.astype(np.float64).reshape(rows, 8, cols, 8)
    right = p[:, :, :-1, 7] + 0.5 * (p[:, :, :-1, 7] - p[:, :, :-1, 6])  # (rows, 8, cols-1)
    left = p[:, :, 1:, 0] - 0.5 * (p[:, :, 1:, 1] - p[:, :, 1:, 0])
    d = right - left
    th = d.mean(axis=1)
    wh = 1.0 / (1.0 + d.var(axis=1) / EDGE_SPREAD)
    below = p[:-1, 7, :, :] + 0.5 * (p[:-1, 7, :, :] - p[:-1, 6, :, :])  # (rows-1, cols, 8)
    above = p[1:, 0, :, :] - 0.5 * (p[1:, 1, :, :] - p[1:, 0, :, :])
    d = below - above
    tv = d.mean(axis=2)
    wv = 1.0 / (1.0 + d.var(axis=2) / EDGE_SPREAD)
    return th, wh, tv, wv


@njit(cache=True)
def _solve(u, unknown, th, wh, tv, wv, prior, lam, relax, sweeps):
    """Over-relaxed Gauss-Seidel on the unknown entries of ``u`` (DC levels, rows × cols):
    u[r, c+1] - u[r, c] ≈ th[r, c] (weight wh), u[r+1, c] - u[r, c] ≈ tv[r, c] (wv),
    u ≈ prior (weight lam; none where lam is 0)."""
    rows, cols = u.shape
    ys, xs = np.nonzero(unknown)
    for _ in range(sweeps):
        for k in range(ys.size):
            r, c = ys[k], xs[k]
            num = lam * prior[r, c]
            den = lam
            if c > 0:
                num += wh[r, c - 1] * (u[r, c - 1] + th[r, c - 1])
                den += wh[r, c - 1]
            if c + 1 < cols:
                num += wh[r, c] * (u[r, c + 1] - th[r, c])
                den += wh[r, c]
            if r > 0:
                num += wv[r - 1, c] * (u[r - 1, c] + tv[r - 1, c])
                den += wv[r - 1, c]
            if r + 1 < rows:
                num += wv[r, c] * (u[r + 1, c] - tv[r, c])
                den += wv[r, c]
            if den > 0:
                u[r, c] += relax * (num / den - u[r, c])


def recover_dc(coefficients: tuple[np.ndarray, ...], qtables: tuple[np.ndarray, ...], unknown: list[np.ndarray],
               levels: list[np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
    """``coefficients`` (per component, block rows × cols × 64, natural order) with the DC of the
    blocks flagged in ``unknown`` (per component, rows × cols bool) estimated from their AC,
    their neighbours and, where given, ``levels`` (per component, the mean sample level per block
    the thumbnail shows). Components with nothing unknown, or nothing to pin them, are copied."""
    out = []
    for ci, (coefs, qt, unk) in enumerate(zip(coefficients, qtables, unknown)):
        q0 = float(qt.reshape(-1)[0])
        prior = levels[ci] - 128.0 if levels is not None else np.zeros(unk.shape)
        lam = THUMB_WEIGHT if levels is not None else 0.0
        if not unk.any() or (unk.all() and lam == 0):
            out.append(coefs)
            continue
        ac = coefs.copy()
        ac[..., 0] = 0
        th, wh, tv, wv = edge_targets(component_plane(ac, qt))
        u = coefs[..., 0].astype(np.float64) * q0 / 8.0
        u[unk] = prior[unk] if lam > 0 else float(u[~unk].mean())
        _solve(u, unk, th, wh, tv, wv, np.ascontiguousarray(prior, np.float64), lam, RELAX, SWEEPS)
        fixed = coefs.copy()
        fixed[..., 0][unk] = np.clip(np.rint(u[unk] * 8.0 / q0), -32768, 32767).astype(coefs.dtype)
        out.append(fixed)
    return tuple(out)
