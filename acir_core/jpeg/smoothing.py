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

from acir_core.jpeg.tables import Frame

# zigzag 1..5: the coefficients estimated (natural positions 1, 8, 16, 9, 2)
LOW_AC = np.uint64(0b111110)


@njit(cache=True)
def _estimate(num: np.int64, q: np.int64) -> np.int64:
    """K.8's rounding of ``num`` / (q · 256), symmetric about zero."""
    if num >= 0:
        return ((q << 7) + num) // (q << 8)
    return -(((q << 7) - num) // (q << 8))


@njit(cache=True)
def _dc(coefs, known, r, c, centre):
    """The DC of block (r, c), or ``centre`` where that block never received one."""
    return np.int64(coefs[r, c, 0]) if known[r, c] & np.uint64(1) else centre


@njit(cache=True)
def _put(out, r, c, k, v):
    """An estimate into the int16 planes, within the range a baseline AC coefficient has."""
    out[r, c, k] = np.int16(min(max(v, -1023), 1023))


@njit(cache=True)
def _smooth(coefs, known, qt, rows, cols, out) -> int:
    """Into ``out`` (a copy of ``coefs``, (block rows, block cols, 64) int16): the estimates for
    every block of the first ``rows`` × ``cols`` (the component's own; the rest pads the MCU grid
    and is never shown) that has its DC, lacks some of zigzag 1..5 in ``known`` and is zero there.
    A neighbour past the edge, or without its DC, counts as the block itself. Returns how many
    blocks were given one."""
    q00 = np.int64(qt[0])
    q01, q10, q20, q11, q02 = np.int64(qt[1]), np.int64(qt[8]), np.int64(qt[16]), np.int64(qt[9]), np.int64(qt[2])
    if q00 == 0 or q01 == 0 or q10 == 0 or q20 == 0 or q11 == 0 or q02 == 0:
        return 0
    done = 0
    for r in range(rows):
        up, down = max(r - 1, 0), min(r + 1, rows - 1)
        for c in range(cols):
            have = known[r, c]
            if (have & LOW_AC) == LOW_AC or (have & np.uint64(1)) == 0:
                continue
            left, right = max(c - 1, 0), min(c + 1, cols - 1)
            d5 = np.int64(coefs[r, c, 0])
            d1, d2, d3 = _dc(coefs, known, up, left, d5), _dc(coefs, known, up, c, d5), _dc(coefs, known, up, right, d5)
            d4, d6 = _dc(coefs, known, r, left, d5), _dc(coefs, known, r, right, d5)
            d7, d8 = _dc(coefs, known, down, left, d5), _dc(coefs, known, down, c, d5)
            d9 = _dc(coefs, known, down, right, d5)
            if (have & np.uint64(2)) == 0 and coefs[r, c, 1] == 0:
                _put(out, r, c, 1, _estimate(36 * q00 * (d4 - d6), q01))
            if (have & np.uint64(4)) == 0 and coefs[r, c, 8] == 0:
                _put(out, r, c, 8, _estimate(36 * q00 * (d2 - d8), q10))
            if (have & np.uint64(8)) == 0 and coefs[r, c, 16] == 0:
                _put(out, r, c, 16, _estimate(9 * q00 * (d2 + d8 - 2 * d5), q20))
            if (have & np.uint64(16)) == 0 and coefs[r, c, 9] == 0:
                _put(out, r, c, 9, _estimate(5 * q00 * (d1 - d3 - d7 + d9), q11))
            if (have & np.uint64(32)) == 0 and coefs[r, c, 2] == 0:
                _put(out, r, c, 2, _estimate(9 * q00 * (d4 + d6 - 2 * d5), q02))
            done += 1
    return done


def _own_blocks(frame: Frame, ci: int) -> tuple[int, int]:
    """Block rows and columns of component ``ci`` itself (its grid pads them to whole MCUs)."""
    w, h = frame.comp_size(ci)
    return -(-h // 8), -(-w // 8)


def smoothed(frame: Frame, coefficients: tuple[np.ndarray, ...], bands: tuple[np.ndarray, ...] | None,
             qtables: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """``coefficients`` with the low AC of blocks that never received it estimated from the DCs
    around them (``bands``: per component the blocks' masks of zigzag positions with history, as
    :attr:`acir_core.jpeg.decoder.DecodeResult.bands`; None for a sequential file: unchanged). The
    same tuple where every block of the picture (padding aside) has them."""
    if bands is None:
        return coefficients
    own = [_own_blocks(frame, ci) for ci in range(len(coefficients))]
    if all(bool(((b[:r, :c] & LOW_AC) == LOW_AC).all()) for b, (r, c) in zip(bands, own)):
        return coefficients
    out = []
    for coefs, known, qt, (r, c) in zip(coefficients, bands, qtables, own):
        copy = coefs.copy()
        _smooth(coefs, np.ascontiguousarray(known), np.ascontiguousarray(qt, dtype=np.int64).reshape(64),
                min(r, coefs.shape[0]), min(c, coefs.shape[1]), copy)
        out.append(copy)
    return tuple(out)
