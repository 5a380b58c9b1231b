"""The compiled IRLS step of the thumbnail DC fit (:func:`acir_core.sca.thumbdc.solve_offsets`).

The design matrix is stored as sparse rows (per thumbnail pixel, the chunks under its footprint,
then the tone's bias and gain columns; :func:`acir_core.sca.thumbmodel.footprints`). Each step
forms the weighted normal equations, adds the fused penalty between neighbouring chunks and the
priors, factors them inside their envelope (:mod:`acir_core.sca.envelope`) and reweights the
residual with Cauchy weights: a few compiled calls per step instead of many array operations.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.sca.envelope import cholesky_envelope, envelope_start, solve_envelope
from acir_core.sca.median import median


@njit(cache=True)
def ascending(idx: np.ndarray, val: np.ndarray):
    """The sparse rows with each row's entries in ascending variable order (padding last), so
    that the lower triangle of AᵀWA is each entry times those before it."""
    idx_s = idx.copy()
    val_s = val.copy()
    for p in range(idx.shape[0]):
        k = 0
        while k < idx.shape[1] and idx[p, k] >= 0:
            k += 1
        for a in range(1, k):  # insertion sort: a row has a few dozen entries at most
            i, v = idx_s[p, a], val_s[p, a]
            b = a - 1
            while b >= 0 and idx_s[p, b] > i:
                idx_s[p, b + 1] = idx_s[p, b]
                val_s[p, b + 1] = val_s[p, b]
                b -= 1
            idx_s[p, b + 1] = i
            val_s[p, b + 1] = v
    return idx_s, val_s


@njit(cache=True)
def _normal(idx: np.ndarray, val: np.ndarray, w: np.ndarray, r: np.ndarray, n: int):
    """Weighted normal equations AᵀWA (lower triangle only: the solver reads no more), AᵀWr
    of the sparse rows, given in ascending order (:func:`ascending`)."""
    mat = np.zeros((n, n))
    rhs = np.zeros(n)
    for p in range(idx.shape[0]):
        wp = w[p]
        for q in range(idx.shape[1]):
            i = idx[p, q]
            if i < 0:
                break
            wi = wp * val[p, q]
            rhs[i] += wi * r[p]
            for s in range(q + 1):
                mat[i, idx[p, s]] += wi * val[p, s]
    return mat, rhs


@njit(cache=True)
def _robust_sigma(err: np.ndarray) -> float:
    """1.4826 · median |err|: the residual's spread, robust to the outliers IRLS discounts."""
    return 1.4826 * median(np.abs(err), 0.25)  # np.median's value, without compiling np.median


@njit(cache=True)
def _predict(idx: np.ndarray, val: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.zeros(idx.shape[0])
    for p in range(idx.shape[0]):
        acc = 0.0
        for q in range(idx.shape[1]):
            i = idx[p, q]
            if i < 0:
                break
            acc += val[p, q] * x[i]
        out[p] = acc
    return out


@njit(cache=True)
def irls_system(idx_s, val_s, wts, resid, n_var, sigma, x, left, right, fuse, pin, bias_prior, gain_prior):
    """One IRLS step of :func:`acir_core.sca.thumbdc.solve_offsets` up to its solve: the normal
    equations in units of the residual spread ``sigma``, the fused penalty between neighbouring
    chunks linearised at ``x``, the priors, and the envelope Cholesky factor. Every entry gets
    its additions in a fixed order, so the fit is reproducible to the bit.
    Returns (lower triangle, rhs, envelope, factor, ok, solution when ok)."""
    n = n_var + 2
    mat, rhs = _normal(idx_s, val_s, wts, resid, n)
    s2 = sigma * sigma
    for i in range(n):
        rhs[i] /= s2
        for j in range(i + 1):
            mat[i, j] /= s2
    lam = np.empty(left.size)
    for q in range(left.size):
        d = x[left[q]] - x[right[q]]
        lam[q] = fuse / np.sqrt(d * d + 0.01)
    for q in range(left.size):
        mat[left[q], left[q]] += lam[q]
    for q in range(left.size):
        mat[right[q], right[q]] += lam[q]
    for q in range(left.size):
        mat[right[q], left[q]] += -lam[q]  # lower triangle: right > left
    for i in range(n_var):
        mat[i, i] += pin[i]
    mat[n - 2, n - 2] += bias_prior
    mat[n - 1, n - 1] += gain_prior
    first = envelope_start(mat)
    low, ok = cholesky_envelope(mat, first)
    solved = solve_envelope(low, first, rhs) if ok else rhs
    return mat, rhs, first, low, ok, solved


@njit(cache=True)
def irls_weights(idx, val, x, resid, anneal):
    """The rest of an IRLS step: residual, its robust spread (+0.05 levels) and the Cauchy
    weights at a scale of 3σ but not below ``anneal``."""
    err = resid - _predict(idx, val, x)
    sigma = _robust_sigma(err) + 0.05
    scale = max(3.0 * sigma, anneal)
    wts = np.empty(err.size)
    for p in range(err.size):
        e = err[p] / scale
        wts[p] = 1.0 / (1.0 + e * e)
    return err, sigma, wts


def symmetric(lower: np.ndarray) -> np.ndarray:
    """The full matrix from its lower triangle (for the dense fallback when the factor fails)."""
    return np.tril(lower) + np.tril(lower, -1).T

