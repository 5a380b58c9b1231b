"""Huffman decoding of one progressive scan (ITU T.81 Annex G), strict or robust, in numba.

A progressive file sends each block in pieces: a DC scan (first, then refinement bits), then AC
bands (spectral selection Ss..Se, one component at a time) at a coarse bit position Al that later
scans refine (successive approximation, Ah = Al + 1). Each scan adds to the coefficients earlier
ones left, so one kernel handles the four kinds (DC first / refine, AC first / refine) on the
shared coefficient planes. End-of-band runs (EOBRUN) let one symbol skip many blocks of a band.

Robust decoding: a code that is not in the table, a run past Se or data that ends early costs
the rest of that restart interval (the whole rest of the scan without markers): those MCUs keep
what earlier scans gave them and are reported as not decoded in this scan. Each block carries a
64-bit mask of the coefficients whose history it has (``known``): a refinement scan reads one
correction bit per nonzero coefficient, so a block that missed the band's first scan cannot be
refined, and the refinement scan stops there too (its bits would be read out of step).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from acir_core.jpeg.entropy import ERR_BAD_CODE, ERR_NONE, ERR_OUT_OF_DATA, ERR_OVERFLOW, _ZZ, _extend, _peek16

DC_FIRST, DC_REFINE, AC_FIRST, AC_REFINE = 0, 1, 2, 3
ERR_HISTORY = 6  # a refinement reached a block whose earlier band was lost


@njit(cache=True)
def _bits(buf, pos, n):
    """``n`` (0..16) bits at ``pos`` as an unsigned value."""
    if n == 0:
        return 0
    return np.int32(_peek16(buf, pos) >> (16 - n))


@njit(cache=True)
def band_bits(ss, se):
    """The ``known`` mask of coefficients ss..se (zigzag positions)."""
    m = np.uint64(0)
    for k in range(ss, se + 1):
        m |= np.uint64(1) << np.uint64(k)
    return m


@njit(cache=True)
def _ac_symbol(buf, pos, lut, tab):
    """The next AC run/size symbol: (position after its code, run, size), position -1 for a code
    not in the table."""
    w = lut[tab, _peek16(buf, pos)]
    if w < 0:
        return -1, 0, 0
    rs = w & 0xFF
    return pos + (w >> 8), rs >> 4, rs & 15


@njit(cache=True)
def _eob_run(buf, pos, r):
    """The end-of-band run EOBr codes (2^r plus r more bits) and the position after them."""
    run = 1 << r
    if r:
        run += _bits(buf, pos, r)
    return run, pos + r


@njit(cache=True)
def _correct(buf, pos, blk, z, p1, m1):
    """One correction bit for a coefficient that already has history: 1 adds ``p1`` to its
    magnitude (unless that bit is already set). Returns the position after the bit."""
    if _bits(buf, pos, 1) and (blk[z] & p1) == 0:
        blk[z] = np.int16(blk[z] + (p1 if blk[z] >= 0 else m1))
    return pos + 1


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
            pos, r, s = _ac_symbol(buf, pos, lut, ac_tab)
            if pos < 0:
                return -1 - ERR_BAD_CODE
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
                run, pos = _eob_run(buf, pos, r)
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
                pos, r, s = _ac_symbol(buf, pos, lut, ac_tab)
                if pos < 0:
                    return -1 - ERR_BAD_CODE
                v = 0
                if s:
                    if s != 1:
                        return -1 - ERR_BAD_CODE
                    v = p1 if _bits(buf, pos, 1) else m1
                    pos += 1
                elif r != 15:
                    eob[0], pos = _eob_run(buf, pos, r)
                    break
                while k <= se:  # skip r zero-history coefficients, refining the nonzero ones passed
                    z = _ZZ[k]
                    if blk[z] != 0:
                        pos = _correct(buf, pos, blk, z, p1, m1)
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
                if blk[_ZZ[k]] != 0:
                    pos = _correct(buf, pos, blk, _ZZ[k], p1, m1)
                k += 1
            eob[0] -= 1
    if pos > end:
        return -1 - ERR_OUT_OF_DATA
    return pos


@njit(cache=True)
def decode_progressive_scan(buf, nbits, seg_start, seg_first, seg_count, n_mcus, mcu_cols, interleaved,
                            blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols,
                            dc_tab, ac_tab, lut, kind, ss, se, al, robust, coef, known, decoded, err):
    """Decode one scan's restart segments into ``coef`` (all blocks, natural order). ``decoded``
    (per MCU of this scan) is set for every MCU decoded without a failure; ``known`` (per block)
    gains this scan's band for every block decoded. Strict: the first failure stops with ``err``
    = (code, bit, MCU); robust: it costs the rest of its segment."""
    band = band_bits(ss, se)
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
                at = comp_base[c] + row * comp_bw[c] + col
                if kind == AC_REFINE and (known[at] & band) != band:
                    failed = ERR_HISTORY  # this block missed the band's first scan: cannot be refined
                    break
                r = _block(buf, pos, end, kind, ss, se, al, coef[at], dc_tab[c], ac_tab[c], lut, pred, c, eob)
                if r < 0:
                    failed = -1 - r
                    break
                pos = r
                if kind == DC_FIRST or kind == AC_FIRST:
                    known[at] |= band
            if failed:
                if not robust:
                    err[0] = failed
                    err[1] = pos
                    err[2] = m
                    return
                break  # the rest of this restart segment is lost to this scan
            decoded[m] = 1
    err[0] = ERR_NONE


@dataclass(frozen=True, kw_only=True, eq=False)
class BandDamage:
    """What a damaged or cut progressive file lost, per MCU of the frame: ``dc_lost`` (a block
    without its DC: no picture there), ``detail_lost`` (a block without some AC band the file
    sends: coarse there); ``scans``: per scan its band and the MCUs it lost (JSON-able)."""

    dc_lost: np.ndarray = field(repr=False)
    detail_lost: np.ndarray = field(repr=False)
    scans: list[dict]


def band_damage(result) -> BandDamage:
    """:class:`BandDamage` of a progressive :class:`~acir_core.jpeg.decoder.DecodeResult`."""
    frame = result.frame
    single = len(frame.components) == 1
    rows, cols = (result.bands[0].shape if single else (frame.mcu_rows, frame.mcu_cols))
    dc_lost = np.zeros((rows, cols), bool)
    detail = np.zeros((rows, cols), bool)
    for ci, comp in enumerate(frame.components):
        v, h = (1, 1) if single else (comp.v, comp.h)
        no_dc = (result.bands[ci][: rows * v, : cols * h] & np.uint64(1)) == 0
        dc_lost |= no_dc.reshape(rows, v, cols, h).any(axis=(1, 3))
    for sr in result.scans:
        if sr.decoded.all():
            continue
        lost = ~sr.decoded.reshape(sr.mcu_rows, sr.mcu_cols)
        if len(sr.components) == 1 and not single:  # a component's own blocks: MCU = v×h of them
            comp = frame.components[sr.components[0]]
            grid = np.zeros((rows * comp.v, cols * comp.h), bool)
            r, c = min(grid.shape[0], lost.shape[0]), min(grid.shape[1], lost.shape[1])
            grid[:r, :c] = lost[:r, :c]
            lost = grid.reshape(rows, comp.v, cols, comp.h).any(axis=(1, 3))
        detail |= lost[:rows, :cols]
    scans = [{"scan": i + 1, "band": f"{sr.band[0]}-{sr.band[1]}", "bits": f"{sr.band[2]}/{sr.band[3]}",
              "components": [frame.components[c].id for c in sr.components],
              "mcus_lost": int((~sr.decoded).sum()), "mcus": int(sr.decoded.size)}
             for i, sr in enumerate(result.scans) if sr.band is not None]
    return BandDamage(dc_lost=dc_lost, detail_lost=detail & ~dc_lost, scans=scans)
