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
def idct_islow_plane(coefs, qt, rows, cols, limit, out):
    """IDCT every block of a component: ``coefs`` (rows*cols, 64) int16 natural order, ``qt`` (64,)
    int32 natural order, into ``out`` (rows*8, cols*8) uint8."""
    ws = np.empty(64, np.int64)
    for bi in range(rows * cols):
        by = bi // cols
        bx = bi - by * cols
        blk = coefs[bi]
        # pass 1: columns
        for col in range(8):
            if (blk[8 + col] == 0 and blk[16 + col] == 0 and blk[24 + col] == 0 and blk[32 + col] == 0
                    and blk[40 + col] == 0 and blk[48 + col] == 0 and blk[56 + col] == 0):
                dc = (np.int64(blk[col]) * qt[col]) << PASS1_BITS
                for r in range(8):
                    ws[8 * r + col] = dc
                continue
            z2 = np.int64(blk[16 + col]) * qt[16 + col]
            z3 = np.int64(blk[48 + col]) * qt[48 + col]
            z1 = (z2 + z3) * F_0_541196100
            tmp2 = z1 - z3 * F_1_847759065
            tmp3 = z1 + z2 * F_0_765366865
            z2 = np.int64(blk[col]) * qt[col]
            z3 = np.int64(blk[32 + col]) * qt[32 + col]
            tmp0 = (z2 + z3) << CONST_BITS
            tmp1 = (z2 - z3) << CONST_BITS
            tmp10 = tmp0 + tmp3
            tmp13 = tmp0 - tmp3
            tmp11 = tmp1 + tmp2
            tmp12 = tmp1 - tmp2
            tmp0 = np.int64(blk[56 + col]) * qt[56 + col]
            tmp1 = np.int64(blk[40 + col]) * qt[40 + col]
            tmp2 = np.int64(blk[24 + col]) * qt[24 + col]
            tmp3 = np.int64(blk[8 + col]) * qt[8 + col]
            z1 = tmp0 + tmp3
            z2 = tmp1 + tmp2
            z3 = tmp0 + tmp2
            z4 = tmp1 + tmp3
            z5 = (z3 + z4) * F_1_175875602
            tmp0 = tmp0 * F_0_298631336
            tmp1 = tmp1 * F_2_053119869
            tmp2 = tmp2 * F_3_072711026
            tmp3 = tmp3 * F_1_501321110
            z1 = z1 * -F_0_899976223
            z2 = z2 * -F_2_562915447
            z3 = z3 * -F_1_961570560 + z5
            z4 = z4 * -F_0_390180644 + z5
            tmp0 += z1 + z3
            tmp1 += z2 + z4
            tmp2 += z2 + z3
            tmp3 += z1 + z4
            sh = CONST_BITS - PASS1_BITS
            half = np.int64(1) << (sh - 1)
            ws[col] = (tmp10 + tmp3 + half) >> sh
            ws[56 + col] = (tmp10 - tmp3 + half) >> sh
            ws[8 + col] = (tmp11 + tmp2 + half) >> sh
            ws[48 + col] = (tmp11 - tmp2 + half) >> sh
            ws[16 + col] = (tmp12 + tmp1 + half) >> sh
            ws[40 + col] = (tmp12 - tmp1 + half) >> sh
            ws[24 + col] = (tmp13 + tmp0 + half) >> sh
            ws[32 + col] = (tmp13 - tmp0 + half) >> sh
        # pass 2: rows; the column pass's int results are C ints (32-bit): keep that wrap
        for r in range(8):
            o = 8 * r
            y0 = by * 8 + r
            x0 = bx * 8
            w0 = np.int64(np.int32(ws[o]))
            w1 = np.int64(np.int32(ws[o + 1]))
            w2 = np.int64(np.int32(ws[o + 2]))
            w3 = np.int64(np.int32(ws[o + 3]))
            w4 = np.int64(np.int32(ws[o + 4]))
            w5 = np.int64(np.int32(ws[o + 5]))
            w6 = np.int64(np.int32(ws[o + 6]))
            w7 = np.int64(np.int32(ws[o + 7]))
            if w1 == 0 and w2 == 0 and w3 == 0 and w4 == 0 and w5 == 0 and w6 == 0 and w7 == 0:
                v = limit[((w0 + 16) >> 5) & 1023]
                for c in range(8):
                    out[y0, x0 + c] = v
                continue
            z1 = (w2 + w6) * F_0_541196100
            tmp2 = z1 - w6 * F_1_847759065
            tmp3 = z1 + w2 * F_0_765366865
            tmp0 = (w0 + w4) << CONST_BITS
            tmp1 = (w0 - w4) << CONST_BITS
            tmp10 = tmp0 + tmp3
            tmp13 = tmp0 - tmp3
            tmp11 = tmp1 + tmp2
            tmp12 = tmp1 - tmp2
            tmp0 = w7
            tmp1 = w5
            tmp2 = w3
            tmp3 = w1
            z1 = tmp0 + tmp3
            z2 = tmp1 + tmp2
            z3 = tmp0 + tmp2
            z4 = tmp1 + tmp3
            z5 = (z3 + z4) * F_1_175875602
            tmp0 = tmp0 * F_0_298631336
            tmp1 = tmp1 * F_2_053119869
            tmp2 = tmp2 * F_3_072711026
            tmp3 = tmp3 * F_1_501321110
            z1 = z1 * -F_0_899976223
            z2 = z2 * -F_2_562915447
            z3 = z3 * -F_1_961570560 + z5
            z4 = z4 * -F_0_390180644 + z5
            tmp0 += z1 + z3
            tmp1 += z2 + z4
            tmp2 += z2 + z3
            tmp3 += z1 + z4
            sh = CONST_BITS + PASS1_BITS + 3
            half = np.int64(1) << (sh - 1)
            out[y0, x0 + 0] = limit[((tmp10 + tmp3 + half) >> sh) & 1023]
            out[y0, x0 + 7] = limit[((tmp10 - tmp3 + half) >> sh) & 1023]
            out[y0, x0 + 1] = limit[((tmp11 + tmp2 + half) >> sh) & 1023]
            out[y0, x0 + 6] = limit[((tmp11 - tmp2 + half) >> sh) & 1023]
            out[y0, x0 + 2] = limit[((tmp12 + tmp1 + half) >> sh) & 1023]
            out[y0, x0 + 5] = limit[((tmp12 - tmp1 + half) >> sh) & 1023]
            out[y0, x0 + 3] = limit[((tmp13 + tmp0 + half) >> sh) & 1023]
            out[y0, x0 + 4] = limit[((tmp13 - tmp0 + half) >> sh) & 1023]
