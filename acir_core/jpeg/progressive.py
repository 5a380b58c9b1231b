"""Huffman decoding of one progressive scan (ITU T.81 Annex G), strict or robust, in numba.

A progressive file sends each block in pieces: a DC scan (first, then refinement bits), then AC
bands (spectral selection Ss..Se, one component at a time) at a coarse bit position Al that later
scans refine (successive approximation, Ah = Al + 1). Each scan adds to the coefficients earlier
ones left, so one kernel handles the four kinds (DC first / refine, AC first / refine) on the
shared coefficient planes. End-of-band runs (EOBRUN) let one symbol skip many blocks of a band.

Robust decoding: a code that is not in the table, a run past Se or data that ends early costs
the rest of that restart interval (the whole rest of the scan without markers): those MCUs keep
what earlier scans gave them and are reported as not decoded in this scan.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.entropy import ERR_BAD_CODE, ERR_NONE, ERR_OUT_OF_DATA, ERR_OVERFLOW, _ZZ, _extend, _peek16

DC_FIRST, DC_REFINE, AC_FIRST, AC_REFINE = 0, 1, 2, 3


@njit(cache=True)
def _bits(buf, pos, n):
    """``n`` (0..16) bits at ``pos`` as an unsigned value."""
    if n == 0:
        return 0
    return np.int32(_peek16(buf, pos) >> (16 - n))


@njit(cache=True)
def _block(buf, pos, end, kind, ss, se, al, blk, dc_tab, ac_tab, lut, pred, c, eob):
    """Decode this scan's part of one block ``blk`` (64 int16, natural order) at ``pos``.
    ``eob[0]``: the end-of-band run carried between blocks. Returns the new position, or -1
    minus an error code."""
    if kind == DC_FIRST:
        w = lut[dc_tab, _peek16(buf, pos)]
        if w < 0:
            return -1 - ERR_BAD_CODE
        pos += w >> 8
        s = w & 0xFF
        if s > 11:
            return -1 - ERR_BAD_CODE
        diff = 0
        if s:
            diff = _extend(_bits(buf, pos, s), s)
            pos += s
        pred[c] += diff
        blk[0] = np.int16(pred[c] << al)
    elif kind == DC_REFINE:
        if _bits(buf, pos, 1):
            blk[0] = np.int16(blk[0] | (1 << al))
        pos += 1
    elif kind == AC_FIRST:
        if eob[0] > 0:
            eob[0] -= 1
            return pos
        k = ss
        while k <= se:
            w = lut[ac_tab, _peek16(buf, pos)]
            if w < 0:
                return -1 - ERR_BAD_CODE
            pos += w >> 8
            rs = w & 0xFF
            r = rs >> 4
            s = rs & 15
            if s:
                k += r
                if k > se:
                    return -1 - ERR_OVERFLOW
                blk[_ZZ[k]] = np.int16(_extend(_bits(buf, pos, s), s) << al)
                pos += s
                k += 1
            elif r == 15:
                k += 16
            else:
                run = 1 << r
                if r:
                    run += _bits(buf, pos, r)
                    pos += r
                eob[0] = run - 1
                break
            if pos > end:
                return -1 - ERR_OUT_OF_DATA
    else:  # AC_REFINE (G.1.2.3): new coefficients of magnitude 1, correction bits for the others
        p1 = 1 << al
        m1 = -1 << al
        k = ss
        if eob[0] == 0:
            while k <= se:
                w = lut[ac_tab, _peek16(buf, pos)]
                if w < 0:
                    return -1 - ERR_BAD_CODE
                pos += w >> 8
                rs = w & 0xFF
                r = rs >> 4
                s = rs & 15
                v = 0
                if s:
                    if s != 1:
                        return -1 - ERR_BAD_CODE
                    v = p1 if _bits(buf, pos, 1) else m1
                    pos += 1
                elif r != 15:
                    eob[0] = 1 << r
                    if r:
                        eob[0] += _bits(buf, pos, r)
                        pos += r
                    break
                while k <= se:  # skip r zero-history coefficients, refining the nonzero ones passed
                    z = _ZZ[k]
                    if blk[z] != 0:
                        if _bits(buf, pos, 1):
                            if (blk[z] & p1) == 0:
                                blk[z] = np.int16(blk[z] + (p1 if blk[z] >= 0 else m1))
                        pos += 1
                    else:
                        if r == 0:
                            break
                        r -= 1
                    k += 1
                if v != 0:
                    if k > se:
                        return -1 - ERR_OVERFLOW
                    blk[_ZZ[k]] = np.int16(v)
                k += 1
                if pos > end:
                    return -1 - ERR_OUT_OF_DATA
        if eob[0] > 0:  # in an end-of-band run: only correction bits for the nonzero ones
            while k <= se:
                z = _ZZ[k]
                if blk[z] != 0:
                    if _bits(buf, pos, 1):
                        if (blk[z] & p1) == 0:
                            blk[z] = np.int16(blk[z] + (p1 if blk[z] >= 0 else m1))
                    pos += 1
                k += 1
            eob[0] -= 1
    if pos > end:
        return -1 - ERR_OUT_OF_DATA
    return pos


@njit(cache=True)
def decode_progressive_scan(buf, nbits, seg_start, seg_first, seg_count, n_mcus, mcu_cols, interleaved,
                            blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols,
                            dc_tab, ac_tab, lut, kind, ss, se, al, robust, coef, decoded, err):
    """Decode one scan's restart segments into ``coef`` (all blocks, natural order). ``decoded``
    (per MCU of this scan) is set for every MCU decoded without a failure. Strict: the first
    failure stops with ``err`` = (code, bit, MCU); robust: it costs the rest of its segment."""
    nb = blk_comp.shape[0]
    ncomp = comp_h.shape[0]
    pred = np.zeros(ncomp, np.int64)
    eob = np.zeros(1, np.int64)
    for g in range(seg_start.shape[0]):
        pos = seg_start[g]
        end = nbits if g + 1 == seg_start.shape[0] else seg_start[g + 1]
        for c in range(ncomp):
            pred[c] = 0
        eob[0] = 0
        for m in range(seg_first[g], min(seg_first[g] + seg_count[g], n_mcus)):
            my = m // mcu_cols
            mx = m - my * mcu_cols
            failed = 0
            for b in range(nb):
                c = blk_comp[b]
                if interleaved:
                    row = my * comp_v[c] + blk_dy[b]
                    col = mx * comp_h[c] + blk_dx[b]
                else:
                    row = m // comp_cols[c]
                    col = m - row * comp_cols[c]
                blk = coef[comp_base[c] + row * comp_bw[c] + col]
                r = _block(buf, pos, end, kind, ss, se, al, blk, dc_tab[c], ac_tab[c], lut, pred, c, eob)
                if r < 0:
                    failed = -1 - r
                    break
                pos = r
            if failed:
                if not robust:
                    err[0] = failed
                    err[1] = pos
                    err[2] = m
                    return
                break  # the rest of this restart segment is lost to this scan
            decoded[m] = 1
    err[0] = ERR_NONE
