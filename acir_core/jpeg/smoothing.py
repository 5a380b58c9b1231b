"""The lowest AC coefficients of blocks whose scans never arrived, estimated from the DCs around
them (T.81 Annex K.8, as libjpeg's block smoothing does for a progressive file shown early).

A progressive file cut short, or an AC band lost to damage, leaves blocks with their DC alone:
shown as they are, they are flat 8×8 tiles. The DCs of the eight blocks around one say how the
picture slopes and bends across it; the five AC coefficients that carry a slope or a bend (AC01,
AC10, AC20, AC11, AC02) are set to what those DCs imply, only where the block never received them.
Blocks that did are never touched, so an intact file renders exactly as before.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# zigzag 1..5: the coefficients estimated (natural positions 1, 8, 16, 9, 2)
LOW_AC = np.uint64(0b111110)


@njit(cache=True)
def _estimate(num: np.int64, q: np.int64) -> np.int64:
    """K.8's rounding of ``num`` / (q · 256), symmetric about zero."""
    if num >= 0:
        return ((q << 7) + num) // (q << 8)
    return -(((q << 7) - num) // (q << 8))


@njit(cache=True)
def _smooth(coefs, known, qt, out) -> int:
    """Into ``out`` (a copy of ``coefs``, (rows, cols, 64) int16): the estimates for every block
    whose ``known`` mask lacks some of zigzag 1..5 and whose coefficient there is zero. Returns how
    many blocks were given one."""
    rows, cols = coefs.shape[0], coefs.shape[1]
    q00 = np.int64(qt[0])
    q01, q10, q20, q11, q02 = np.int64(qt[1]), np.int64(qt[8]), np.int64(qt[16]), np.int64(qt[9]), np.int64(qt[2])
    if q00 == 0 or q01 == 0 or q10 == 0 or q20 == 0 or q11 == 0 or q02 == 0:
        return 0
    done = 0
    for r in range(rows):
        up, down = max(r - 1, 0), min(r + 1, rows - 1)
        for c in range(cols):
            have = known[r, c]
            if (have & LOW_AC) == LOW_AC:
                continue
            left, right = max(c - 1, 0), min(c + 1, cols - 1)
            d1, d2, d3 = np.int64(coefs[up, left, 0]), np.int64(coefs[up, c, 0]), np.int64(coefs[up, right, 0])
            d4, d5, d6 = np.int64(coefs[r, left, 0]), np.int64(coefs[r, c, 0]), np.int64(coefs[r, right, 0])
            d7, d8, d9 = np.int64(coefs[down, left, 0]), np.int64(coefs[down, c, 0]), np.int64(coefs[down, right, 0])
            if (have & np.uint64(2)) == 0 and coefs[r, c, 1] == 0:
                out[r, c, 1] = np.int16(_estimate(36 * q00 * (d4 - d6), q01))
            if (have & np.uint64(4)) == 0 and coefs[r, c, 8] == 0:
                out[r, c, 8] = np.int16(_estimate(36 * q00 * (d2 - d8), q10))
            if (have & np.uint64(8)) == 0 and coefs[r, c, 16] == 0:
                out[r, c, 16] = np.int16(_estimate(9 * q00 * (d2 + d8 - 2 * d5), q20))
            if (have & np.uint64(16)) == 0 and coefs[r, c, 9] == 0:
                out[r, c, 9] = np.int16(_estimate(5 * q00 * (d1 - d3 - d7 + d9), q11))
            if (have & np.uint64(32)) == 0 and coefs[r, c, 2] == 0:
                out[r, c, 2] = np.int16(_estimate(9 * q00 * (d4 + d6 - 2 * d5), q02))
            done += 1
    return done


def smoothed(coefficients: tuple[np.ndarray, ...], bands: tuple[np.ndarray, ...] | None,
             qtables: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """``coefficients`` with the low AC of blocks that never received it estimated from the DCs
    around them (``bands``: per component the blocks' masks of zigzag positions with history, as
    :attr:`acir_core.jpeg.decoder.DecodeResult.bands`; None for a sequential file: unchanged). The
    same tuple where every block has them."""
    if bands is None or all(bool(((b & LOW_AC) == LOW_AC).all()) for b in bands):
        return coefficients
    out = []
    for coefs, known, qt in zip(coefficients, bands, qtables):
        copy = coefs.copy()
        _smooth(coefs, np.ascontiguousarray(known), np.ascontiguousarray(qt, dtype=np.int64).reshape(64), copy)
        out.append(copy)
    return tuple(out)
