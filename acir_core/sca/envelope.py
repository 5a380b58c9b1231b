"""Cholesky solves for the thumbnail DC fit's normal equations, which are nearly banded.

The fit's variables are chunks of MCUs in raster order, and a thumbnail pixel's filter footprint
is a few MCU rows tall, so a chunk only meets chunks a row or three away: each row of the matrix
has its nonzeros within ~20 places left of the diagonal, except the last rows (the tone's bias
and gain, which every pixel has). A dense solve of the ~300-variable system costs n³/3 per IRLS
step and was the fit's largest cost; factoring only inside each row's *envelope* (from its first
nonzero to the diagonal) costs about n·b². The standard errors need only the diagonal of the
inverse, which Takahashi's recurrence gives from the same factor without forming the inverse:
the envelope is closed under it, so only entries inside it are ever needed.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def envelope_start(mat: np.ndarray) -> np.ndarray:
    """Per row, the column of its first nonzero left of (or on) the diagonal."""
    n = mat.shape[0]
    first = np.empty(n, np.int64)
    for i in range(n):
        j = 0
        while j < i and mat[i, j] == 0.0:
            j += 1
        first[i] = j
    return first


@njit(cache=True)
def cholesky_envelope(mat: np.ndarray, first: np.ndarray):
    """Lower factor L (dense storage, zero outside the envelope) of a symmetric positive definite
    matrix given by its lower triangle; ok False when a pivot is not positive."""
    n = mat.shape[0]
    low = np.zeros((n, n))
    for i in range(n):
        fi = first[i]
        for j in range(fi, i + 1):
            s = mat[i, j]
            for k in range(max(fi, first[j]), j):
                s -= low[i, k] * low[j, k]
            if j < i:
                low[i, j] = s / low[j, j]
            elif s > 0.0:
                low[i, i] = np.sqrt(s)
            else:
                return low, False
    return low, True


@njit(cache=True)
def solve_envelope(low: np.ndarray, first: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x with L·Lᵀ·x = rhs."""
    n = rhs.size
    y = rhs.copy()
    for i in range(n):
        s = y[i]
        for k in range(first[i], i):
            s -= low[i, k] * y[k]
        y[i] = s / low[i, i]
    for i in range(n - 1, -1, -1):
        y[i] /= low[i, i]
        for k in range(first[i], i):
            y[k] -= low[i, k] * y[i]
    return y


@njit(cache=True)
def inverse_diagonal(low: np.ndarray, first: np.ndarray) -> np.ndarray:
    """diag((L·Lᵀ)⁻¹) by Takahashi's recurrence, from the last column back: every entry of the
    inverse it reads lies inside the envelope and has been computed already."""
    n = low.shape[0]
    z = np.zeros((n, n))  # lower triangle of the inverse, inside the envelope
    below = np.empty(n, np.int64)
    for j in range(n - 1, -1, -1):
        m = 0
        for i in range(j + 1, n):  # the rows of column j of L
            if first[i] <= j:
                below[m] = i
                m += 1
        inv = 1.0 / low[j, j]
        for a in range(m - 1, -1, -1):
            i = below[a]
            s = 0.0
            for b in range(m):
                k = below[b]
                s += low[k, j] * (z[i, k] if i >= k else z[k, i])
            z[i, j] = -inv * s
        s = 0.0
        for b in range(m):
            k = below[b]
            s += low[k, j] * z[k, j]
        z[j, j] = inv * inv - inv * s
    out = np.empty(n)
    for i in range(n):
        out[i] = z[i, i]
    return out
