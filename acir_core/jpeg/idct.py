"""libjpeg-turbo's "islow" inverse DCT (jidctint.c), integer for integer, in numba.

Matching it exactly is what lets acir promise that an undamaged block decodes to the very pixels
Pillow shows. Constants are libjpeg's FIX(x) = round(x * 2^13); the output range limit is its
``IDCT_range_limit`` table, wrap-around included (it matters only for absurd coefficients that
damaged data can produce).
"""
from __future__ import annotations

import numpy as np
from numba import njit

CONST_BITS, PASS1_BITS = 13, 2
F_0_298631336, F_0_390180644, F_0_541196100, F_0_765366865 = 2446, 3196, 4433, 6270
F_0_899976223, F_1_175875602, F_1_501321110, F_1_847759065 = 7373, 9633, 12299, 15137
F_1_961570560, F_2_053119869, F_2_562915447, F_3_072711026 = 16069, 16819, 20995, 25172


def _range_limit_table() -> np.ndarray:
    """IDCT_range_limit(cinfo)[x & 1023] for 8-bit samples (jdmaster.c prepare_range_limit_table)."""
    x = np.arange(1024)
    signed = np.where(x < 512, x, x - 1024)
    return np.clip(signed + 128, 0, 255).astype(np.uint8)


RANGE_LIMIT = _range_limit_table()


@njit(cache=True)
def _idct_1d(x0, x1, x2, x3, x4, x5, x6, x7):
    """One 8-point islow IDCT (jidctint.c's even/odd parts), before descaling: outputs 0..7,
    scaled by 2^CONST_BITS."""
    z1 = (x2 + x6) * F_0_541196100
    tmp2 = z1 - x6 * F_1_847759065
    tmp3 = z1 + x2 * F_0_765366865
    tmp0 = (x0 + x4) << CONST_BITS
    tmp1 = (x0 - x4) << CONST_BITS
    tmp10 = tmp0 + tmp3
    tmp13 = tmp0 - tmp3
    tmp11 = tmp1 + tmp2
    tmp12 = tmp1 - tmp2
    z1 = x7 + x1
    z2 = x5 + x3
    z3 = x7 + x3
    z4 = x5 + x1
    z5 = (z3 + z4) * F_1_175875602
    z1 = z1 * -F_0_899976223
    z2 = z2 * -F_2_562915447
    z3 = z3 * -F_1_961570560 + z5
    z4 = z4 * -F_0_390180644 + z5
    o0 = x7 * F_0_298631336 + z1 + z3
    o1 = x5 * F_2_053119869 + z2 + z4
    o2 = x3 * F_3_072711026 + z2 + z3
    o3 = x1 * F_1_501321110 + z1 + z4
    return (tmp10 + o3, tmp11 + o2, tmp12 + o1, tmp13 + o0, tmp13 - o0, tmp12 - o1, tmp11 - o2, tmp10 - o3)


@njit(cache=True)
def _idct_block(blk, qt, limit, ws, out, y0, x0):
    """One block (64 int16, natural order) into ``out[y0:y0+8, x0:x0+8]``; ``ws``: 64 int64 of
    scratch."""
    sh1 = CONST_BITS - PASS1_BITS
    half1 = np.int64(1) << (sh1 - 1)
    sh2 = CONST_BITS + PASS1_BITS + 3
    half2 = np.int64(1) << (sh2 - 1)
    # pass 1: columns (a column of zero AC terms is the DC alone, as libjpeg short-cuts it)
    for col in range(8):
        if (blk[8 + col] == 0 and blk[16 + col] == 0 and blk[24 + col] == 0 and blk[32 + col] == 0
                and blk[40 + col] == 0 and blk[48 + col] == 0 and blk[56 + col] == 0):
            dc = (np.int64(blk[col]) * qt[col]) << PASS1_BITS
            for r in range(8):
                ws[8 * r + col] = dc
            continue
        o = _idct_1d(np.int64(blk[col]) * qt[col], np.int64(blk[8 + col]) * qt[8 + col],
                     np.int64(blk[16 + col]) * qt[16 + col], np.int64(blk[24 + col]) * qt[24 + col],
                     np.int64(blk[32 + col]) * qt[32 + col], np.int64(blk[40 + col]) * qt[40 + col],
                     np.int64(blk[48 + col]) * qt[48 + col], np.int64(blk[56 + col]) * qt[56 + col])
        for r in range(8):
            ws[8 * r + col] = (o[r] + half1) >> sh1
    # pass 2: rows; the column pass's results are C ints (32-bit): keep that wrap
    for r in range(8):
        b = 8 * r
        y = y0 + r
        w = (np.int64(np.int32(ws[b])), np.int64(np.int32(ws[b + 1])), np.int64(np.int32(ws[b + 2])),
             np.int64(np.int32(ws[b + 3])), np.int64(np.int32(ws[b + 4])), np.int64(np.int32(ws[b + 5])),
             np.int64(np.int32(ws[b + 6])), np.int64(np.int32(ws[b + 7])))
        if w[1] == 0 and w[2] == 0 and w[3] == 0 and w[4] == 0 and w[5] == 0 and w[6] == 0 and w[7] == 0:
            v = limit[((w[0] + 16) >> 5) & 1023]
            for c in range(8):
                out[y, x0 + c] = v
            continue
        o = _idct_1d(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7])
        for c in range(8):
            out[y, x0 + c] = limit[((o[c] + half2) >> sh2) & 1023]


@njit(cache=True, nogil=True)
def idct_islow_plane(coefs, qt, rows, cols, limit, out):
    """IDCT every block of a component: ``coefs`` (rows*cols, 64) int16 natural order, ``qt`` (64,)
    int32 natural order, into ``out`` (rows*8, cols*8) uint8."""
    ws = np.empty(64, np.int64)
    for bi in range(rows * cols):
        by = bi // cols
        _idct_block(coefs[bi], qt, limit, ws, out, by * 8, (bi - by * cols) * 8)


@njit(cache=True, nogil=True)
def idct_changed_blocks(coefs, words, kept_words, valid, qt, limit, out) -> int:
    """IDCT of the blocks of ``coefs`` (rows, cols, 64) that differ from the kept coefficients
    (those ``out`` (rows*8, cols*8) shows where ``valid``), which then take their place. ``words``
    and ``kept_words`` are both as (rows, cols, 16) uint64 views (``a.view(np.uint64)``): after a
    DC fix moves a few chunks, most blocks of the rows re-rendered are as they were, and comparing
    blocks as 16 words of 64 bits vectorises (value by value cost more than the transforms it
    saved). Returns how many blocks were transformed."""
    rows, cols = coefs.shape[0], coefs.shape[1]
    ws = np.empty(64, np.int64)
    done = 0
    for by in range(rows):
        for bx in range(cols):
            if valid[by, bx]:
                diff = np.uint64(0)
                for k in range(16):
                    diff |= words[by, bx, k] ^ kept_words[by, bx, k]
                if diff == 0:
                    continue
            _idct_block(coefs[by, bx], qt, limit, ws, out, by * 8, bx * 8)
            for k in range(16):
                kept_words[by, bx, k] = words[by, bx, k]
            valid[by, bx] = True
            done += 1
    return done
