"""Huffman decoding of one progressive scan (ITU T.81 Annex G), strict or robust, in numba.

A progressive file sends each block in pieces: a DC scan (first, then refinement bits), then AC
bands (spectral selection Ss..Se, one component at a time) at a coarse bit position Al that later
scans refine (successive approximation, Ah = Al + 1). Each scan adds to the coefficients earlier
ones left, so one kernel handles the four kinds (DC first / refine, AC first / refine) on the
shared coefficient planes. End-of-band runs (EOBRUN) let one symbol skip many blocks of a band.

Robust decoding: a DC scan reads on one bit after a failure (its short codes fall back in step
within a few symbols; what follows is placed and levelled by SCA). In an AC scan a code that is
not in the table, a run past Se or data that ends early costs the blocks near it. The scan resumes where the next blocks decode in a row (for a refinement, at
the block whose history decodes on, read as it was before the scan) and the run after the last
failure is placed by where the segment's bits end. Each block carries a 64-bit mask of the
coefficients whose history it has (``known``): a refinement scan reads one correction bit per
nonzero coefficient, so a block that missed the band's first scan, or an earlier refinement
(``doubt``), cannot be refined and the scan resumes past it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from acir_core.jpeg.entropy import ERR_BAD_CODE, ERR_OUT_OF_DATA, ERR_OVERFLOW, _ZZ, _extend, _peek16

DC_FIRST, DC_REFINE, AC_FIRST, AC_REFINE = 0, 1, 2, 3
ERR_HISTORY = 6  # a refinement reached a block whose earlier band was lost
ERR_SILENT = 7  # no failure, but the blocks are out of place from here
SILENT_BACK = 8  # blocks before the end of an error decoded silently that are dropped
REFINE_LEAST = 16  # blocks up to one in doubt that a refinement's resumption candidate must decode
REFINE_REACH = 2048  # blocks a refinement's resumption candidate is followed to be taken
REFINE_VERIFY = 1 << 19  # blocks decoded in all to find where a refinement scan resumes
REFINE_GIVE_UP = 5  # failures after which a refinement scan's rest keeps what earlier scans gave
ERR_CONVENTION = 8  # codes a libjpeg-style encoder never sends (read where it is known to be one)
SOFT_BACK = 24  # blocks before such a failure whose refinement is doubtful
SOFT_REACH = 64  # blocks from such a failure where the scan may resume
SOFT_WIDEN = 32  # further bit windows searched when it resumes nowhere near
SOFT_BUDGET = 1 << 24  # blocks decoded in all to find where such a scan resumes (2^19 a window)
SOFT_SCAN_BUDGET = 1 << 26  # ... and for all its failures, before the rest is read as from any encoder
MAX_EOB_RUN = 0x7FFF  # such an encoder sends an end-of-band run when it reaches this many blocks
MAX_RUN_CORRECTIONS = 937  # ... or when a refinement run holds more correction bits than this
# the end-of-band state ``eob`` carried between blocks (int64 array of EOB_STATE):
RUN, AFTER, CORRECTIONS, COUNT, VIOLATIONS, OPPORTUNITIES, SOFT = range(7)
EOB_STATE = 7


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
def _correct(buf, pos, coef, at, z, p1, m1):
    """One correction bit for a coefficient that already has history: 1 adds ``p1`` to its
    magnitude (unless that bit is already set). Returns the position after the bit."""
    if _bits(buf, pos, 1) and (coef[at, z] & p1) == 0:
        coef[at, z] = np.int16(coef[at, z] + (p1 if coef[at, z] >= 0 else m1))
    return pos + 1


@njit(cache=True)
def _unconventional(eob, zrl, first):
    """An end-of-band code (or a zero run to the band's end) where a libjpeg-style encoder sends
    none: after a zero-run code (it sends those only before a coefficient), or as a block's first
    code right after a run it did not have to end. Counted; a failure when ``eob[SOFT]`` is set."""
    if not (zrl or (first and eob[AFTER] != 0)):
        return False
    eob[VIOLATIONS] += 1
    return eob[SOFT] != 0


@njit(cache=True)
def _dc_first(buf, pos, end, al, coef, at, dc_tab, lut, pred, c):
    """A DC first scan's difference for block ``at``: the new position, or -1 minus an error code."""
    w = lut[dc_tab, _peek16(buf, pos)]
    if w < 0 or (w & 0xFF) > 11:
        return -1 - ERR_BAD_CODE
    pos += w >> 8
    s = w & 0xFF
    if s:
        pred[c] += _extend(_bits(buf, pos, s), s)
        pos += s
    coef[at, 0] = np.int16(pred[c] << al)
    return pos if pos <= end else -1 - ERR_OUT_OF_DATA


@njit(cache=True)
def _dc_refine(buf, pos, end, al, coef, at):
    """A DC refinement scan's bit for block ``at``: the new position, or -1 minus an error code."""
    if _bits(buf, pos, 1):
        coef[at, 0] = np.int16(coef[at, 0] | (1 << al))
    pos += 1
    return pos if pos <= end else -1 - ERR_OUT_OF_DATA


@njit(cache=True)
def _block(buf, pos, end, kind, ss, se, al, coef, at, dc_tab, ac_tab, lut, pred, c, eob):
    """Decode this scan's part of block ``at`` of ``coef`` (rows of 64 int16, natural order) at ``pos``.
    ``eob`` (``EOB_STATE``): the end-of-band run carried between blocks, and what the
    libjpeg-style checks need (:func:`_unconventional`). Returns the new position, or -1
    minus an error code."""
    if kind == DC_FIRST:
        return _dc_first(buf, pos, end, al, coef, at, dc_tab, lut, pred, c)
    if kind == DC_REFINE:
        return _dc_refine(buf, pos, end, al, coef, at)
    if kind == AC_FIRST:
        if eob[RUN] > 0:
            eob[RUN] -= 1
            if eob[RUN] == 0:
                eob[AFTER] = eob[COUNT] != MAX_EOB_RUN
            return pos
        k = ss
        zrl = False
        first = True
        eob[OPPORTUNITIES] += eob[AFTER]
        while k <= se:
            pos, r, s = _ac_symbol(buf, pos, lut, ac_tab)
            if pos < 0:
                return -1 - ERR_BAD_CODE
            if s:
                k += r
                if k > se:
                    return -1 - ERR_OVERFLOW
                coef[at, _ZZ[k]] = np.int16(_extend(_bits(buf, pos, s), s) << al)
                pos += s
                k += 1
                zrl = False
            elif r == 15:
                k += 16
                zrl = True
                eob[OPPORTUNITIES] += 1
            else:
                if _unconventional(eob, zrl, first):
                    return -1 - ERR_CONVENTION
                run, pos = _eob_run(buf, pos, r)
                eob[RUN] = run - 1
                eob[COUNT] = run
                eob[AFTER] = eob[RUN] == 0 and run != MAX_EOB_RUN
                return pos if pos <= end else -1 - ERR_OUT_OF_DATA
            first = False
            if pos > end:
                return -1 - ERR_OUT_OF_DATA
        if zrl and _unconventional(eob, True, False):  # a zero run to the band's end: an end-of-band code's place
            return -1 - ERR_CONVENTION
        eob[AFTER] = 0
    else:  # AC_REFINE (G.1.2.3): new coefficients of magnitude 1, correction bits for the others
        p1 = 1 << al
        m1 = -1 << al
        k = ss
        if eob[RUN] == 0:
            zrl = False
            first = True
            eob[OPPORTUNITIES] += eob[AFTER]
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
                    if _unconventional(eob, zrl, first):
                        return -1 - ERR_CONVENTION
                    eob[RUN], pos = _eob_run(buf, pos, r)
                    eob[COUNT] = eob[RUN]
                    eob[CORRECTIONS] = 0
                    break
                else:
                    zrl = True
                    eob[OPPORTUNITIES] += 1
                first = False
                while k <= se:  # skip r zero-history coefficients, refining the nonzero ones passed
                    z = _ZZ[k]
                    if coef[at, z] != 0:
                        pos = _correct(buf, pos, coef, at, z, p1, m1)
                    else:
                        if r == 0:
                            break
                        r -= 1
                    k += 1
                if v != 0:
                    if k > se:
                        return -1 - ERR_OVERFLOW
                    coef[at, _ZZ[k]] = np.int16(v)
                    zrl = False
                k += 1
                if pos > end:
                    return -1 - ERR_OUT_OF_DATA
            if eob[RUN] == 0:
                if zrl and _unconventional(eob, True, False):
                    return -1 - ERR_CONVENTION
                eob[AFTER] = 0
        if eob[RUN] > 0:  # in an end-of-band run: only correction bits for the nonzero ones
            while k <= se:
                if coef[at, _ZZ[k]] != 0:
                    pos = _correct(buf, pos, coef, at, _ZZ[k], p1, m1)
                    eob[CORRECTIONS] += 1
                k += 1
            eob[RUN] -= 1
            if eob[RUN] == 0:
                eob[AFTER] = eob[COUNT] != MAX_EOB_RUN and eob[CORRECTIONS] <= MAX_RUN_CORRECTIONS
    if pos > end:
        return -1 - ERR_OUT_OF_DATA
    return pos


@njit(cache=True)
def _block_at(m, b, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols):
    """The row of block ``b`` of MCU ``m`` in the shared coefficient planes."""
    c = blk_comp[b]
    cols = mcu_cols if interleaved else comp_cols[c]
    my = m // cols
    return _block_in(my, m - my * cols, b, interleaved, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw)


@njit(cache=True)
def _block_in(my, mx, b, interleaved, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw):
    """:func:`_block_at` for the MCU in row ``my``, column ``mx`` of the scan's MCU grid."""
    c = blk_comp[b]
    if interleaved:
        return comp_base[c] + (my * comp_v[c] + blk_dy[b]) * comp_bw[c] + mx * comp_h[c] + blk_dx[b]
    return comp_base[c] + my * comp_bw[c] + mx


@njit(cache=True)
def _lookahead(buf, pos, end, m, last, limit, kind, ss, se, al, coef, lay, dc_tab, ac_tab, lut, scratch, trace,
               known, doubt, eob0, soft):
    """How many MCUs of a scan decode in a row from ``pos`` as MCU ``m``
    (an end-of-band run counts its blocks; ``eob0`` carried in), without writing: a
    resynchronisation candidate's test. A refinement stops before a block whose history is in
    doubt. ``soft``: codes a libjpeg-style encoder never sends stop it too. ``trace`` (2 slots)
    gets the position and end-of-band run where the decoding stopped (run -1: at a block in doubt)."""
    interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols = lay
    band = band_bits(ss, se)
    eob = _eob_state(eob0, soft)
    pred = np.zeros(comp_h.shape[0], np.int64)
    n = 0
    while m < last and n < limit:
        for b in range(blk_comp.shape[0]):
            at = _block_at(m, b, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw,
                           comp_cols)
            if kind == AC_REFINE and _doubtful(known, doubt, at, band):
                trace[-2] = pos
                trace[-1] = -1
                return n
            for k in range(64):
                scratch[0, k] = coef[at, k]
            c = blk_comp[b]
            pos = _block(buf, pos, end, kind, ss, se, al, scratch, 0, dc_tab[c], ac_tab[c], lut, pred, c, eob)
            if pos < 0:
                break
        if pos < 0:
            break
        n += 1
        m += 1
    trace[-2] = pos
    trace[-1] = eob[RUN]
    return n


@njit(cache=True)
def _eob_state(run, soft):
    """A fresh end-of-band state carrying ``run`` blocks of a run whose start was not seen (so it
    counts as one the encoder had to end)."""
    eob = np.zeros(EOB_STATE, np.int64)
    eob[RUN] = run
    eob[COUNT] = MAX_EOB_RUN
    eob[SOFT] = soft
    return eob


@njit(cache=True)
def _doubtful(known, doubt, at, band):
    """A block a refinement cannot read: it missed the band's first scan or an earlier refinement."""
    return (known[at] & band) != band or doubt[at] != 0


@njit(cache=True)
def _accepts(n, limit, t, last, end, trace, least):
    """A candidate decodes ``limit`` blocks in a row, ``least`` up to a block in doubt, or exactly
    to the end of its segment."""
    if n >= limit or (trace[-1] == -1 and n >= least):
        return True
    return t + n == last and end - trace[-2] <= 7 and trace[-1] == 0 and n > 0


@njit(cache=True)
def _test_pair(buf, cand, end, t, last, limit, kind, ss, se, al, coef, lay, dc_tab, ac_tab, lut, scratch, trace,
               known, doubt, soft, budget):
    """A resumption candidate (bit, block): it must decode ``limit`` blocks in a row, then
    ``REFINE_REACH`` more or to the segment's end. Returns (verdict, blocks it went, blocks
    decoded): 1 taken, 0 not, -1 passed the first test only, 2 ``budget`` spent by the first."""
    n = _lookahead(buf, cand, end, t, last, limit, kind, ss, se, al, coef, lay, dc_tab, ac_tab, lut, scratch, trace,
                   known, doubt, 0, soft)
    if n + 1 >= budget:
        return 2, n, n + 1
    if not _accepts(n, limit, t, last, end, trace, REFINE_LEAST):
        return 0, n, n + 1
    if n < limit:
        return 1, n, n + 1  # decoded exactly to the segment's end
    further = min(last - t, REFINE_REACH)
    n2 = _lookahead(buf, cand, end, t, last, further, kind, ss, se, al, coef, lay, dc_tab, ac_tab, lut, scratch,
                    trace, known, doubt, 0, soft)
    return (1 if _accepts(n2, further, t, last, end, trace, REFINE_LEAST) else -1), n2, n + 1 + n2


@njit(cache=True)
def _refine_resync(buf, bit0, bit1, tb, t0, t1, end, last, limit, kind, ss, se, al, coef, lay, dc_tab, ac_tab, lut,
                   scratch, trace, verify, known, doubt, soft):
    """Where a refinement scan resumes after a failure: its correction bits depend on each block's
    history, so the block matters as much as the bit. Pairs (bit, block) from bits [bit0, bit1)
    and blocks [tb, t1), nearest ``t0`` first, are tested (:func:`_test_pair`; ``verify`` blocks
    decoded in all): the first taken is, else the one that went furthest. Returns (bit, block,
    blocks decoded), bit -1 for none."""
    best_bit, best_t, best_n = -1, 0, 0
    tried = 0
    for cand in range(bit0, min(end, bit1)):
        for i in range(2 * max(t1 - t0, t0 - tb)):
            t = t0 + (i >> 1) if i & 1 == 0 else t0 - 1 - (i >> 1)  # nearest first, alternately after and before
            if t < tb or t >= min(t1, last):
                continue
            verdict, n, used = _test_pair(buf, cand, end, t, last, limit, kind, ss, se, al, coef, lay, dc_tab,
                                          ac_tab, lut, scratch, trace, known, doubt, soft, verify - tried)
            tried += used
            if verdict == 2:
                return best_bit, best_t, tried
            if verdict == 1:
                return cand, t, tried
            if verdict == -1:
                if n > best_n:
                    best_bit, best_t, best_n = cand, t, n
                if tried >= verify:
                    return best_bit, best_t, tried
    return best_bit, best_t, tried


@njit(cache=True)
def _soft_resync(buf, bit0, bit1, start, m, per, starts, lo, tb, reach, end, last, limit, kind, ss, se, al, coef, lay,
                 dc_tab, ac_tab, lut, scratch, trace, budget, known, doubt):
    """Where a refinement scan that fails at codes against libjpeg's conventions resumes: found
    within blocks of the error, the stream's blocks at a bit lie near those the failing decode
    read there (``starts`` of MCUs [lo, m); past the failure at bit ``start``, ``per`` bits a
    block on). Pairs (bit, that block + d) for |d| = 0, 1, ... ``reach``, every bit of
    [bit0, bit1) at each d, are tested as :func:`_refine_resync` does (``budget`` blocks decoded
    in all). Returns (bit, block, blocks decoded), bit -1 for none."""
    best_bit, best_t, best_n = -1, 0, 0
    tried = 0
    for i in range(2 * reach + 1):
        d = (i + 1) >> 1 if i & 1 else -(i >> 1)
        j = lo
        for cand in range(bit0, min(end, bit1)):
            if cand < start:
                while j + 1 < m and 0 <= starts[j + 1] <= cand:
                    j += 1
                t = j + d
                if d == 0 and starts[j] == cand:
                    continue  # the failing decode itself
            else:
                t = m + (cand - start) // per + d
            if t < tb or t >= last:
                continue
            verdict, n, used = _test_pair(buf, cand, end, t, last, limit, kind, ss, se, al, coef, lay, dc_tab,
                                          ac_tab, lut, scratch, trace, known, doubt, 1, budget - tried)
            tried += used
            if verdict == 2:
                return best_bit, best_t, tried
            if verdict == 1:
                return cand, t, tried
            if verdict == -1 and n > best_n:
                best_bit, best_t, best_n = cand, t, n
    return best_bit, best_t, tried


@njit(cache=True)
def _move_band(coef, known, decoded, lay, band, ss, se, a, b, s, lo, hi):
    """Move the band ss..se of MCUs [a, b) by ``s`` MCUs (clipped to [lo, hi)); the MCUs left
    behind lose the band."""
    interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols = lay
    n = b - a
    for i in range(n):
        j = (n - 1 - i) if s > 0 else i
        src = a + j
        dst = src + s
        if dst < lo or dst >= hi:
            continue
        for q in range(blk_comp.shape[0]):
            at_s = _block_at(src, q, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base,
                             comp_bw, comp_cols)
            at_d = _block_at(dst, q, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base,
                             comp_bw, comp_cols)
            for k in range(ss, se + 1):
                coef[at_d, _ZZ[k]] = coef[at_s, _ZZ[k]]
            known[at_d] = (known[at_d] & ~band) | (known[at_s] & band)
        decoded[dst] = decoded[src]
    left_a, left_b = (a, min(b, a + s)) if s > 0 else (max(a, b + s), b)
    _drop_band(coef, known, decoded, lay, band, ss, se, left_a, left_b)


@njit(cache=True)
def _restore_band(coef, prior, decoded, lay, ss, se, a, b):
    """Single-component blocks [a, b) go back to what earlier scans gave them: their refinement
    was read out of step."""
    interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols = lay
    for m in range(a, b):
        at = _block_at(m, 0, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw,
                       comp_cols)
        for k in range(ss, se + 1):
            coef[at, _ZZ[k]] = prior[at, _ZZ[k]]
        decoded[m] = 0


@njit(cache=True)
def _drop_band(coef, known, decoded, lay, band, ss, se, a, b):
    """MCUs [a, b) lose the band ss..se: it was placed by guess."""
    interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols = lay
    for m in range(a, b):
        for q in range(blk_comp.shape[0]):
            at = _block_at(m, q, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw,
                           comp_cols)
            for k in range(ss, se + 1):
                coef[at, _ZZ[k]] = 0
            known[at] &= ~band
        decoded[m] = 0


@njit(cache=True)
def _event(events, n_ev, m, fail_bit, resume_bit, code):
    """Record a resumption (placement shift 0 until the segment's end sets it); the new count."""
    if n_ev < events.shape[0]:
        events[n_ev, 0] = m
        events[n_ev, 1] = fail_bit
        events[n_ev, 2] = resume_bit
        events[n_ev, 3] = 0
        events[n_ev, 4] = code
    return n_ev + 1


@njit(cache=True)
def decode_progressive_scan(buf, nbits, seg_start, seg_first, seg_count, n_mcus, mcu_cols, interleaved,
                            blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols,
                            dc_tab, ac_tab, lut, kind, ss, se, al, robust, cut, lookback, window, lookahead,
                            margin, refine_lookahead, refine_span, refine_back, refine_window, split, keep_middle, soft,
                            search, coef, prior, known, doubt, decoded, starts, events, err):
    """Decode one scan's restart segments into ``coef`` (all blocks, natural order). ``decoded``
    (per MCU of this scan) is set for every MCU decoded without a failure; ``known`` (per block)
    gains this scan's band for every block decoded; ``starts``: each MCU's first bit. Strict: the
    first failure stops with ``err`` = (code, bit, MCU). Robust: a DC first scan reads on one bit
    after a failure (an event; SCA places and levels the MCUs after it); AC scans
    resume after a failure and go on (``events`` rows: MCU, failure bit, resume
    bit, placement shift, error code; ``err[0]`` their count; ``err[1]`` the net shift of a scan
    that ended out of step with no failure); ``split``: an MCU where such a silent error ends, placed like a resumption;
    ``keep_middle``: an AC first scan's runs between two resumptions stay where decoded, for
    :func:`acir_core.jpeg.bandfit.place_runs` to place (else they lose the band);
    ``prior``: the planes before a refinement scan, ``doubt``: blocks later refinements cannot
    read; ``soft``: codes a libjpeg-style encoder never sends are failures too (robust), and
    ``err[3]``, ``err[4]`` count such codes and the places they could have been (docs/decoder.md,
    progressive files); ``search`` false: a refinement scan does not look for where it resumes
    after a failure or blocks it cannot read (the rest keeps what earlier scans gave; ``err[5]``
    set)."""
    band = band_bits(ss, se)
    nb = blk_comp.shape[0]
    ncomp = comp_h.shape[0]
    pred = np.zeros(ncomp, np.int64)
    eob = _eob_state(0, soft if robust else 0)
    scratch = np.zeros((1, 64), np.int16)
    lay = (interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, comp_cols)
    trace = np.zeros(2, np.int64)
    resyncs = robust and not interleaved and (kind == AC_FIRST or kind == AC_REFINE)
    cm, my, mx = -2, 0, 0  # the latest MCU placed, its row and column
    n_ev = 0
    soft_events = 0  # resumptions while codes against the conventions were failures
    soft_spent = 0  # blocks decoded to find them
    for g in range(seg_start.shape[0]):
        pos = seg_start[g]
        end = nbits if g + 1 == seg_start.shape[0] else seg_start[g + 1]
        first = seg_first[g]
        last = min(first + seg_count[g], n_mcus)
        for c in range(ncomp):
            pred[c] = 0
        eob[RUN] = 0
        eob[AFTER] = 0
        run0 = -1  # the MCU where the run after the latest resynchronisation begins
        fresh = 0  # MCUs right after a resynchronisation: decoded, not trusted
        m = first
        failed = 0
        while m < last:
            if m == split and run0 < 0 and resyncs and kind == AC_FIRST:
                run0 = m  # told where a silent error ends: the blocks around it were read from garbled bits
                _drop_band(coef, known, decoded, lay, band, ss, se, max(first, m - SILENT_BACK), m)
                fresh = margin
                n_ev = _event(events, n_ev, m, pos, pos, ERR_SILENT)
            failed = 0
            start = pos
            if resyncs and kind == AC_REFINE:
                at = _block_at(m, 0, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base,
                               comp_bw, comp_cols)
                if _doubtful(known, doubt, at, band):
                    # its bits cannot be read: resume at the next block not in doubt, where it decodes
                    m2 = m
                    while m2 < last and _doubtful(known, doubt, _block_at(
                            m2, 0, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base,
                            comp_bw, comp_cols), band):
                        m2 += 1
                    if m2 >= last:
                        break
                    if not search:  # a first look: the rest keeps what earlier scans gave
                        _restore_band(coef, prior, decoded, lay, ss, se, m, last)
                        err[5] = 1
                        break
                    carry = max(eob[RUN] - (m2 - m), 0)
                    found = -1
                    for cand in range(pos, min(end, pos + refine_window * (1 + m2 - m))):  # ~ bits they held
                        n = _lookahead(buf, cand, end, m2, last, refine_lookahead, kind, ss, se, al, prior, lay,
                                       dc_tab, ac_tab, lut, scratch, trace, known, doubt, carry, eob[SOFT])
                        if _accepts(n, refine_lookahead, m2, last, end, trace, 1):
                            found = cand
                            break
                    if found >= 0:
                        pos = found
                        eob[RUN] = carry
                        eob[COUNT] = MAX_EOB_RUN
                        eob[AFTER] = 0
                        m = m2
                        continue
                    failed = ERR_HISTORY  # nowhere near: resume as after a failure
            if m == cm + 1:  # the MCU's row and column, without a division for the next MCU
                mx += 1
                if mx == mcu_cols:
                    mx = 0
                    my += 1
            elif m != cm:
                my = m // mcu_cols
                mx = m - my * mcu_cols
            cm = m
            for b in range(nb if failed == 0 else 0):
                at = _block_in(my, mx, b, interleaved, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw)
                if kind == AC_REFINE and (known[at] & band) != band:
                    failed = ERR_HISTORY  # this block missed the band's first scan: cannot be refined
                    break
                c = blk_comp[b]
                if kind == DC_FIRST:  # the DC scans' small steps here: a call to _block costs more
                    r = _dc_first(buf, pos, end, al, coef, at, dc_tab[c], lut, pred, c)
                elif kind == DC_REFINE:
                    r = _dc_refine(buf, pos, end, al, coef, at)
                else:
                    r = _block(buf, pos, end, kind, ss, se, al, coef, at, dc_tab[c], ac_tab[c], lut, pred, c, eob)
                if r < 0:
                    failed = -1 - r
                    break
                pos = r
                if kind == DC_FIRST or kind == AC_FIRST:
                    known[at] |= band
            if failed == 0:
                starts[m] = start
                if fresh > 0:
                    fresh -= 1
                    if kind != AC_REFINE:
                        _drop_band(coef, known, decoded, lay, band, ss, se, m, m + 1)
                    else:
                        _restore_band(coef, prior, decoded, lay, ss, se, m, m + 1)
                else:
                    decoded[m] = 1
                m += 1
                continue
            if not robust:
                err[0] = failed
                err[1] = start
                err[2] = m
                return
            if kind == DC_FIRST and failed != ERR_OUT_OF_DATA and start + 1 < end:
                # DC codes fall back in step within a few symbols: read on, one bit later; the
                # stretches after are placed and levelled against the thumbnail (sca.dcsteps)
                if n_ev == 0 or events[min(n_ev, events.shape[0]) - 1, 0] != m:
                    n_ev = _event(events, n_ev, m, start, start + 1, failed)
                pos = start + 1
                continue
            if not resyncs or failed == ERR_OUT_OF_DATA:
                break  # the rest of this restart segment is lost to this scan
            # ---- an AC scan: the MCUs decoded from bits shortly before the failure are doubtful
            j = m - 1
            while j >= first and starts[j] >= start - lookback:
                decoded[j] = 0
                if kind != AC_REFINE:
                    _drop_band(coef, known, decoded, lay, band, ss, se, j, j + 1)
                j -= 1
            if kind == AC_REFINE:
                if n_ev - soft_events >= REFINE_GIVE_UP and not eob[SOFT]:  # resumed often: the rest keeps what earlier scans gave
                    _restore_band(coef, prior, decoded, lay, ss, se, j + 1, last)
                    break
                lo = j + 1
                if eob[SOFT] and failed != ERR_HISTORY:  # found within blocks of the error: the last few are doubtful
                    lo = max(first, min(lo, m - SOFT_BACK))
                if 0 <= run0 < lo and m - run0 < refine_lookahead:
                    lo = run0  # a short run since the last resynchronisation: doubtful too
                if run0 >= 0:
                    lo = max(lo, run0)
                _restore_band(coef, prior, decoded, lay, ss, se, lo, min(m + 1, last))
                bit0 = max(starts[lo] if lo < m else start, start - lookback)
                reach = SOFT_REACH if eob[SOFT] else refine_back
                tb = m + 1 if failed == ERR_HISTORY else max(first, lo - reach)  # past a block in doubt
                if run0 >= 0:  # never back to or before the last resumption
                    tb = max(tb, run0 + 1)
                    bit0 = max(bit0, starts[run0] + 1)
                t0 = max(lo, tb)
                per = max((start - seg_start[g]) // max(m - first, 1), 1)  # bits a block takes, on average
                if not search:
                    found = -1
                    err[5] = 1
                elif eob[SOFT]:  # near the failing decode's blocks first, then further on where the bits say
                    found, t1, spent = _soft_resync(buf, bit0, start + refine_window, start, m, per, starts, lo, tb,
                                                    SOFT_REACH, end, last, refine_lookahead, kind, ss, se, al, prior,
                                                    lay, dc_tab, ac_tab, lut, scratch, trace, REFINE_VERIFY, known,
                                                    doubt)
                    b0 = start + refine_window
                    for _ in range(SOFT_WIDEN):
                        if found >= 0 or b0 >= end or spent >= SOFT_BUDGET:
                            break
                        found, t1, n = _soft_resync(buf, b0, b0 + refine_window, start, m, per, starts, lo, tb,
                                                    SOFT_REACH, end, last, refine_lookahead, kind, ss, se, al, prior,
                                                    lay, dc_tab, ac_tab, lut, scratch, trace,
                                                    min(REFINE_VERIFY, SOFT_BUDGET - spent), known, doubt)
                        spent += n
                        b0 += refine_window
                    soft_spent += spent
                    if soft_spent >= SOFT_SCAN_BUDGET:  # searches enough for one scan: the rest as from any encoder
                        eob[SOFT] = 0
                        soft_events = n_ev + 1
                else:
                    found, t1, _ = _refine_resync(buf, bit0, start + refine_window, tb, t0, t0 + refine_span, end,
                                                  last, refine_lookahead, kind, ss, se, al, prior, lay, dc_tab,
                                                  ac_tab, lut, scratch, trace, REFINE_VERIFY, known, doubt, 0)
                if found < 0:
                    _restore_band(coef, prior, decoded, lay, ss, se, lo, last)
                    break
                # the failing decoding ran out of step at least as many blocks before the resumption as it
                # ran past it: their refinement goes back to what earlier scans gave
                good = max(run0 if run0 >= 0 else first, t1 - abs(m - t1) - margin)
                _restore_band(coef, prior, decoded, lay, ss, se, min(good, lo), lo)
                fresh = margin
                m = t1
            else:
                if run0 >= 0 and not keep_middle:
                    _drop_band(coef, known, decoded, lay, band, ss, se, run0, m)  # a middle run: its place is unknown
                found = -1
                need = min(lookahead, last - m)
                for cand in range(start + 1, min(end, start + window)):
                    if _lookahead(buf, cand, end, m, last, need, kind, ss, se, al, coef, lay, dc_tab, ac_tab, lut,
                                  scratch, trace, known, doubt, 0, eob[SOFT]) >= need:
                        found = cand
                        break
                if found < 0:
                    break
                fresh = margin
            n_ev = _event(events, n_ev, m, start, found, failed)
            pos = found
            eob[RUN] = 0
            eob[AFTER] = 0
            run0 = m
        if kind == DC_FIRST and robust and err[1] == 0 and not cut[g]:
            # out of step with its bits: an error read silently (or read on through) moved the MCUs
            if m < last:
                err[1] = last - m
            elif end - pos > 7:
                err[1] = -1
        # ---- the run after the last resynchronisation ends where the segment ends: that places it
        # (refinement bits depend on each block's history: a decoding out of place rejoins the stream)
        if not resyncs or kind == AC_REFINE:
            continue
        if failed == 0:
            at_last, eob_last = pos, eob[RUN]
            extra = 0  # blocks still in an end-of-band run, then blocks the bits left hold
            while True:
                extra += eob[RUN]
                eob[RUN] = 0
                if end - pos <= 7:
                    break
                r = pos
                for q in range(nb):
                    for k in range(64):
                        scratch[0, k] = 0
                    r = _block(buf, r, end, kind, ss, se, al, scratch, 0, dc_tab[blk_comp[q]], ac_tab[blk_comp[q]], lut,
                               pred, blk_comp[q], eob)
                    if r < 0:
                        break
                if r < 0:
                    break
                pos = r
                extra += 1
            shift = -extra
            ok = end - pos <= 7 and not cut[g]
        else:
            at_last, eob_last = pos, 0
            shift = last - m  # the bits ended before the MCU count did
            ok = failed == ERR_OUT_OF_DATA and end - start <= 7 and not cut[g]
        if run0 < 0:  # no failure, yet the blocks do not end with the bits: an error decoded silently
            if ok and g + 1 == seg_start.shape[0]:
                err[1] = shift
            continue
        if not ok or run0 + shift < first:
            _drop_band(coef, known, decoded, lay, band, ss, se, run0, m)
            continue
        if shift == 0:
            continue
        _move_band(coef, known, decoded, lay, band, ss, se, run0, m, shift, first, last)
        if n_ev - 1 < events.shape[0]:
            events[n_ev - 1, 3] = shift
        if shift < 0:  # the blocks the bits left hold end the segment
            pos = at_last
            eob[RUN] = eob_last
            for t in range(last + shift, last):
                r = pos
                for q in range(nb):
                    at = _block_at(t, q, interleaved, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base,
                                   comp_bw, comp_cols)
                    r = _block(buf, r, end, kind, ss, se, al, coef, at, dc_tab[blk_comp[q]], ac_tab[blk_comp[q]], lut,
                               pred, blk_comp[q], eob)
                    if r < 0:
                        break
                    known[at] |= band
                if r < 0:
                    _drop_band(coef, known, decoded, lay, band, ss, se, t, last)
                    break
                pos = r
                decoded[t] = 1
    err[0] = n_ev
    err[3] = eob[VIOLATIONS]
    err[4] = eob[OPPORTUNITIES]


@dataclass(frozen=True, kw_only=True, eq=False)
class BandDamage:
    """What a damaged or cut progressive file lost, per MCU of the frame: ``dc_lost`` (a block
    without its DC: no picture there), ``detail_lost`` (a block without some AC band the file
    sends: coarse there); ``scans``: per scan its band and the MCUs it lost (JSON-able)."""

    dc_lost: np.ndarray = field(repr=False)
    detail_lost: np.ndarray = field(repr=False)
    scans: list[dict]


def dc_lost(result) -> np.ndarray:
    """The MCUs (frame grid; blocks, for one component) of a progressive decode where some
    block never received its DC."""
    frame = result.frame
    single = len(frame.components) == 1
    rows, cols = (result.bands[0].shape if single else (frame.mcu_rows, frame.mcu_cols))
    lost = np.zeros((rows, cols), bool)
    for ci, comp in enumerate(frame.components):
        v, h = (1, 1) if single else (comp.v, comp.h)
        no_dc = (result.bands[ci][: rows * v, : cols * h] & np.uint64(1)) == 0
        lost |= no_dc.reshape(rows, v, cols, h).any(axis=(1, 3))
    return lost


def band_damage(result) -> BandDamage:
    """:class:`BandDamage` of a progressive :class:`~acir_core.jpeg.decoder.DecodeResult`."""
    frame = result.frame
    single = len(frame.components) == 1
    dc_lost_ = dc_lost(result)
    rows, cols = dc_lost_.shape
    detail = np.zeros((rows, cols), bool)
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
    return BandDamage(dc_lost=dc_lost_, detail_lost=detail & ~dc_lost_, scans=scans)
