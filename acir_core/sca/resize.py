"""Pillow's antialiased bicubic reduction of 8-bit RGB, bit for bit, in numba.

The thumbnail check compares our result with the thumbnail through the same reduction the
thumbnail was made with (the paper's thumbnail is Pillow's bicubic resize), and it reduces the
2K image once per photo and again band by band as runs move. Pillow's row pass is scalar (one
output sample and channel at a time, after a copy into its 4-byte pixels); here a band of 16 image rows is turned on its side once, so each filter tap is one multiply-add
over 48 contiguous lanes, and the result is identical: the same integer taps (Pillow's
``precompute_coeffs`` and ``normalize_coeffs_8bpc``: 22 fraction bits, rounded away from zero),
the same half-unit start and the same clipping (``Resample.c``, Pillow 9-13). Pillow 13 takes
the column pass first where the height shrinks by more than twice as many pixels as the width
(its pull request 9549); :func:`bicubic_resize` follows the Pillow that is installed.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import PIL
from numba import njit

from acir_core.bands import over_rows

_BITS = 22  # Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2
_PILLOW_MAJOR = int(PIL.__version__.split(".")[0])
_BAND = 16  # image rows turned on their side at once: 48 byte lanes, summed in int32


def _bicubic(x: float) -> float:
    """Pillow's bicubic filter (a = -0.5), in its own operation order."""
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


@lru_cache(maxsize=16)
def integer_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, count, taps) of each output sample along one axis: the first input sample, how
    many it reads, and its weights in Pillow's fixed point, computed in Pillow's double-precision
    operation order so that every rounding lands the same way. Cached and read-only."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"cannot resize {n_in} samples to {n_out}")
    scale = n_in / n_out
    fscale = max(scale, 1.0)
    support = 2.0 * fscale
    inv = 1.0 / fscale
    first = np.zeros(n_out, np.int64)
    count = np.zeros(n_out, np.int64)
    taps = np.zeros((n_out, int(math.ceil(support)) * 2 + 1), np.int32)
    one = float(1 << _BITS)
    for o in range(n_out):
        center = (o + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        w = [_bicubic((x + lo - center + 0.5) * inv) for x in range(hi - lo)]
        total = 0.0
        for v in w:
            total += v
        for x, v in enumerate(w):
            v = v / total if total != 0.0 else v
            taps[o, x] = int(-0.5 + v * one) if v < 0 else int(0.5 + v * one)
        first[o], count[o] = lo, hi - lo
    for a in (first, count, taps):
        a.flags.writeable = False
    return first, count, taps


@njit(cache=True)
def _clip8(v: int) -> int:
    if v >= (1 << (_BITS + 8)):
        return 255
    if v <= 0:
        return 0
    return v >> _BITS


@njit(cache=True, nogil=True)
def _row_pass(src: np.ndarray, lo: int, hi: int, first: np.ndarray, count: np.ndarray, taps: np.ndarray,
              out: np.ndarray) -> None:
    """Rows ``lo:hi`` of ``src`` (H, W, 3) reduced along the row into ``out`` (H, n_out, 3)."""
    w = src.shape[1]
    lanes = _BAND * 3
    side = np.empty((w, lanes), np.uint8)
    acc = np.empty(lanes, np.int32)
    for y0 in range(lo, hi, _BAND):
        nr = min(_BAND, hi - y0)
        for r in range(nr):
            for x in range(w):
                for c in range(3):
                    side[x, r * 3 + c] = src[y0 + r, x, c]
        used = nr * 3  # a band cut short by the end of the stretch multiplies only its own rows
        for o in range(taps.shape[0]):
            acc[:] = 1 << (_BITS - 1)
            x0 = first[o]
            if used == lanes:
                for x in range(count[o]):
                    k = taps[o, x]
                    line = side[x0 + x]
                    for j in range(lanes):
                        acc[j] += line[j] * k
            else:
                for x in range(count[o]):
                    k = taps[o, x]
                    line = side[x0 + x]
                    for j in range(used):
                        acc[j] += line[j] * k
            for r in range(nr):
                for c in range(3):
                    out[y0 + r, o, c] = _clip8(acc[r * 3 + c])


@njit(cache=True, nogil=True)
def _column_pass(src: np.ndarray, first: np.ndarray, count: np.ndarray, taps: np.ndarray, out: np.ndarray,
                 lo: int, hi: int) -> None:
    """Output rows ``lo:hi`` of ``src`` (H, W, 3) reduced along the columns into ``out`` (n_out, W, 3)."""
    _, w, _ = src.shape
    acc = np.empty((w, 3), np.int32)
    for o in range(lo, hi):
        acc[:] = 1 << (_BITS - 1)
        for y in range(count[o]):
            k = taps[o, y]
            line = src[first[o] + y]
            for x in range(w):
                for c in range(3):
                    acc[x, c] += line[x, c] * k
        for x in range(w):
            for c in range(3):
                out[o, x, c] = _clip8(acc[x, c])


def reduce_rows(rgb: np.ndarray, width: int, out: np.ndarray | None = None, lo: int = 0,
                hi: int | None = None) -> np.ndarray:
    """Pillow's first pass of ``resize((width, height), BICUBIC)``: every row of ``rgb``
    (H, W, 3 uint8) reduced to ``width`` samples, into ``out`` (H, width, 3) when given, for
    rows ``lo:hi`` only."""
    h = rgb.shape[0]
    hi = h if hi is None else hi
    if out is None:
        out = np.empty((h, width, 3), np.uint8)
    first, count, taps = integer_taps(rgb.shape[1], width)
    src = np.ascontiguousarray(rgb, np.uint8)
    if not src.flags.writeable:  # numba compiles a read-only array as another type: copy instead
        src = src.copy()
    over_rows(lambda a, b: _row_pass(src, lo + a, lo + b, first, count, taps, out), hi - lo, min_rows=32)
    return out


def reduce_columns(rows: np.ndarray, height: int) -> np.ndarray:
    """Pillow's second pass: the columns of ``rows`` (H, W, 3 uint8) reduced to ``height``."""
    first, count, taps = integer_taps(rows.shape[0], height)
    src = np.ascontiguousarray(rows, np.uint8)
    out = np.empty((height, src.shape[1], 3), np.uint8)
    over_rows(lambda a, b: _column_pass(src, first, count, taps, out, a, b), height, min_rows=8)
    return out


def _columns_first(w: int, h: int, width: int, height: int) -> bool:
    """Whether the installed Pillow resizes ``w``×``h`` to ``width``×``height`` column pass
    first: from Pillow 13 on, where the height shrinks by more than twice the pixels the width
    does (the row pass first before that, and otherwise)."""
    return _PILLOW_MAJOR >= 13 and height < h and h - height > 2 * (w - width)


def bicubic_resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """What ``Image.fromarray(rgb).resize((width, height), Image.BICUBIC)`` gives for an RGB
    image (a pass that keeps its size is the identity, as Pillow skipping it)."""
    if _columns_first(rgb.shape[1], rgb.shape[0], width, height):
        return reduce_rows(reduce_columns(rgb, height), width)
    return reduce_columns(reduce_rows(rgb, width), height)
