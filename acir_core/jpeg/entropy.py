"""Huffman decoding of one scan, strict or robust, in numba.

Positions are bit offsets in the scan's *destuffed* byte stream (0xFF00 -> 0xFF, restart markers
removed), MSB first. The robust decoder follows the paper's mechanism: when MCU i fails (a code
not in the table, more than 64 coefficients, and our extra checks: a DC/AC category or magnitude
impossible for 8-bit data and its quantiser, an undefined run/size symbol), MCU i is discarded
and decoding restarts at later bits until it decodes. ``RESYNC_PAPER`` takes the first bit where
MCU i decodes; ``RESYNC_LOOKAHEAD`` scores candidate (bit, block-phase) resume points by how many
MCUs decode after them and takes the best, which avoids most false syncs.
"""
from __future__ import annotations

import numpy as np
from numba import njit

RESYNC_PAPER, RESYNC_LOOKAHEAD = 0, 1
ERR_NONE, ERR_BAD_CODE, ERR_OVERFLOW, ERR_OUT_OF_DATA, ERR_MAGNITUDE, ERR_EXTRANEOUS = 0, 1, 2, 3, 4, 5
ERROR_NAMES = {ERR_BAD_CODE: "invalid Huffman code", ERR_OVERFLOW: "more than 64 coefficients in a block",
               ERR_OUT_OF_DATA: "entropy-coded data ended early", ERR_MAGNITUDE: "impossible coefficient value",
               ERR_EXTRANEOUS: "extraneous data after the last MCU of a restart interval",
               6: "a refinement reached a block whose earlier band was lost",
               7: "an error decoded without a failure",
               8: "a code a libjpeg-style encoder never sends",
               9: "a zero-filled stretch taken out of the data"}
ERR_SPLICE = 9

# zigzag index -> natural index, duplicated here so the kernels need no module-level Python objects
_ZZ = np.array([
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
    21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60,
    61, 54, 47, 55, 62, 63], dtype=np.int32)


@njit(cache=True)
def _peek16(buf, pos):
    i = pos >> 3
    v = (np.int64(buf[i]) << 16) | (np.int64(buf[i + 1]) << 8) | np.int64(buf[i + 2])
    return (v >> (8 - (pos & 7))) & 0xFFFF


@njit(cache=True)
def _fail(err, code, pos):
    err[0] = code
    err[1] = pos
    return -1


@njit(cache=True)
def _extend(bits, s):
    # T.81 F.2.2.1 EXTEND: values below 2^(s-1) are negative
    if bits < (1 << (s - 1)):
        return bits - (1 << s) + 1
    return bits


@njit(cache=True)
def _copy(dst, src):
    # a loop, not ``dst[:] = src``: numba's general slice assignment costs seconds to compile per use
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@njit(cache=True)
def _decode_blocks(buf, pos, end, first_block, nb, blk_comp, dc_tab, ac_tab, lut, qt, robust, pred, out, err):
    """Decode blocks ``first_block..nb-1`` of one MCU from ``pos`` into ``out`` (nb x 64, natural
    order) updating ``pred``. Returns the new position, or -1 with err[0] = code, err[1] = bit."""
    for b in range(first_block, nb):
        c = blk_comp[b]
        for k in range(64):
            out[b, k] = 0
        # ---- DC
        w = lut[dc_tab[c], _peek16(buf, pos)]
        if w < 0:
            return _fail(err, ERR_BAD_CODE, pos)
        pos += w >> 8
        s = w & 0xFF
        if s > 11:
            return _fail(err, ERR_MAGNITUDE, pos)
        diff = 0
        if s:
            diff = _extend(np.int32(_peek16(buf, pos) >> (16 - s)), s)
            pos += s
        if pos > end:
            return _fail(err, ERR_OUT_OF_DATA, pos)
        if robust and abs(diff) * qt[c, 0] > 2048 + 2 * qt[c, 0]:
            return _fail(err, ERR_MAGNITUDE, pos)
        dc = pred[c] + diff
        pred[c] = dc
        out[b, 0] = dc
        # ---- AC
        k = 1
        while k < 64:
            w = lut[ac_tab[c], _peek16(buf, pos)]
            if w < 0:
                return _fail(err, ERR_BAD_CODE, pos)
            pos += w >> 8
            rs = w & 0xFF
            r = rs >> 4
            s = rs & 15
            if s:
                k += r
                if k > 63:
                    return _fail(err, ERR_OVERFLOW, pos)
                v = _extend(np.int32(_peek16(buf, pos) >> (16 - s)), s)
                pos += s
                if robust and (s > 10 or abs(v) * qt[c, _ZZ[k]] > 1024 + 2 * qt[c, _ZZ[k]]):
                    return _fail(err, ERR_MAGNITUDE, pos)
                out[b, _ZZ[k]] = v
                k += 1
            elif r == 15:
                k += 16
                if k > 64:
                    return _fail(err, ERR_OVERFLOW, pos)
            else:
                if robust and r != 0:  # run/size (r, 0) with 0 < r < 15 is undefined in baseline
                    return _fail(err, ERR_BAD_CODE, pos)
                break
            if pos > end:
                return _fail(err, ERR_OUT_OF_DATA, pos)
        if pos > end:
            return _fail(err, ERR_OUT_OF_DATA, pos)
    return pos


@njit(cache=True)
def _commit(m, nb, tmp, first_block, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw,
            interleaved, coefs):
    mrow = m // mcu_cols
    mcol = m - mrow * mcu_cols
    for b in range(first_block, nb):
        c = blk_comp[b]
        if interleaved:
            by = mrow * comp_v[c] + blk_dy[b]
            bx = mcol * comp_h[c] + blk_dx[b]
        else:
            by = mrow
            bx = mcol
        idx = comp_base[c] + by * comp_bw[c] + bx
        for k in range(64):
            coefs[idx, k] = tmp[b, k]


@njit(cache=True)
def _lookahead_score(buf, pos, end, phase, nb, blk_comp, dc_tab, ac_tab, lut, qt, pred, tmp, err, limit, left):
    """How many MCUs decode in a row from ``pos`` (the first one from block ``phase``), up to ``limit``."""
    p = pred.copy()
    n = 0
    first = phase
    check = np.bool_(True)
    while n < limit and n < left:
        q = _decode_blocks(buf, pos, end, first, nb, blk_comp, dc_tab, ac_tab, lut, qt, check, p, tmp, err)
        if q < 0:
            break
        pos = q
        first = 0
        n += 1
    return n


SPLICE_TRACK_BITS = 1 << 22  # bits after a splice whose block starts are remembered, to merge chains


@njit(cache=True)
def _splice_resume(buf, splice, end, window, nb, blk_comp, dc_tab, ac_tab, lut, qt, pred, tmp, err, budget):
    """Where decoding resumes after data taken out at bit ``splice``: the first (bit, block phase)
    from which the rest of the segment decodes without a failure and ends on an MCU boundary
    followed by fill bits, as the encoder ended it. Read from the wrong block of an MCU, data
    coded with complete tables can decode without a failure to the end (other tables read other
    codes), so surviving the lookahead says little; ending where the encoder ended says which
    phase is right. Chains of candidates merge once they start a block at the same bit in the
    same phase, so each is followed only until it meets one already followed. Returns (-1, 0)
    when none ends so, or past ``budget`` blocks decoded."""
    track = min(end - splice, SPLICE_TRACK_BITS) + 1
    owner = np.full(track, -1, np.int32)
    owner_ph = np.zeros(track, np.int8)
    limit = min(end, splice + window)
    outcome = np.zeros(max(limit - splice, 1) * nb, np.int8)
    p = pred.copy()
    work = 0
    n_chain = 0
    for cand in range(splice, limit):
        for ph in range(nb):
            k0 = cand - splice
            if owner[k0] >= 0 and owner_ph[k0] == ph:
                continue  # a block start of a chain already followed (and not good, or it was taken)
            cid = n_chain
            n_chain += 1
            pos = cand
            b = ph
            good = 0
            while True:
                if b == 0 and end - pos <= 7:
                    if end - pos == 0 or (_peek16(buf, pos) >> (16 - (end - pos))) == (1 << (end - pos)) - 1:
                        good = 1
                    break
                k = pos - splice
                if k < track:
                    if owner[k] >= 0 and owner_ph[k] == b:
                        good = outcome[owner[k]]
                        break
                    if owner[k] < 0:
                        owner[k] = cid
                        owner_ph[k] = b
                q = _decode_blocks(buf, pos, end, b, b + 1, blk_comp, dc_tab, ac_tab, lut, qt, np.bool_(True), p,
                                   tmp, err)
                work += 1
                if q < 0 or work > budget:
                    break
                pos = q
                b = b + 1 if b + 1 < nb else 0
            outcome[cid] = good
            if good:
                return cand, ph
            if work > budget:
                return -1, 0
    return -1, 0


@njit(cache=True)
def decode_scan(buf, seg_start, seg_end, seg_first, seg_count, mcu_cols, interleaved,
                blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw, dc_tab, ac_tab, lut, qt,
                robust, resync_mode, lookback_bits, window_bits, lookahead, max_candidates, splices,
                coefs, mcu_bit_start, decoded, suspect, resyncs, resync_pred, seg_extra, seg_pad, status):
    """Decode every restart segment of a scan.

    Outputs: ``coefs`` (blocks x 64, natural order), per-MCU ``mcu_bit_start`` (-1 if missing),
    ``decoded`` and ``suspect`` flags; ``resyncs`` rows (mcu, fail_bit, resume_bit, bits_skipped,
    block_phase, error_code) with ``resync_pred`` the DC predictors after each; ``status`` =
    (n_resyncs, strict_error_code, strict_error_mcu, strict_error_bit, trailing_bits); ``seg_extra``: per
    segment, how many more MCUs decode from the bits left after its last MCU (robust mode): the
    decoder gained that many MCUs inside the segment, which fixes the net block shift at its end;
    ``seg_pad``: per segment, the bits between its last MCU decoded and its end when they are fill
    (fewer than 8, all ones: the segment ends where the encoder ended it, with or without every
    MCU decoded), else -1. ``splices``: sorted bit positions where data was taken out (zero-filled
    stretches): the MCU read across one is a failure, and the resume is searched from the splice
    on, whatever decoded across it.
    """
    nb = blk_comp.shape[0]
    ncomp = comp_h.shape[0]
    tmp = np.zeros((nb, 64), np.int32)
    tmp2 = np.zeros((nb, 64), np.int32)
    err = np.zeros(2, np.int64)
    err2 = np.zeros(2, np.int64)
    pred = np.zeros(ncomp, np.int32)
    trial = np.zeros(ncomp, np.int32)
    n_res = 0
    trailing = 0
    phases = nb if resync_mode == RESYNC_LOOKAHEAD else 1
    # literal arguments (0, True) would compile the callees once more per literal: pass typed values
    first0 = np.int64(0)
    check = np.bool_(True)
    si = 0  # the next splice
    for sgi in range(seg_start.shape[0]):
        pos = seg_start[sgi]
        end = seg_end[sgi]
        m = seg_first[sgi]
        last = m + seg_count[sgi]
        for c in range(ncomp):
            pred[c] = 0
        while m < last:
            while si < splices.shape[0] and splices[si] < pos:
                si += 1
            _copy(trial, pred)
            q = _decode_blocks(buf, pos, end, first0, nb, blk_comp, dc_tab, ac_tab, lut, qt, robust, trial, tmp, err)
            spliced = robust and si < splices.shape[0] and splices[si] < end and (
                (q >= 0 and q > splices[si]) or (q < 0 and err[1] >= splices[si]))
            if spliced:
                q = -1
                err[0] = ERR_SPLICE
                err[1] = splices[si]
            if q >= 0:
                _commit(m, nb, tmp, first0, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw,
                        interleaved, coefs)
                _copy(pred, trial)
                mcu_bit_start[m] = pos
                decoded[m] = 1
                pos = q
                m += 1
                continue
            if not robust:
                status[1] = err[0]
                status[2] = m
                status[3] = err[1]
                return
            fail_bit = err[1]
            code = err[0]
            # ---- find where to resume MCU m (predictors as before MCU m)
            best_bit = -1
            best_phase = 0
            best_score = -1
            tried = 0
            target = 1 + min(lookahead, last - m - 1)
            stop = min(end, fail_bit + window_bits)
            cand = pos + 1
            if spliced:
                cand = splices[si]
                best_bit, best_phase = _splice_resume(buf, cand, end, window_bits, nb, blk_comp, dc_tab, ac_tab, lut,
                                                      qt, pred, tmp2, err2, 16 * nb * (last - m) + 4096)
                if best_bit >= 0:
                    best_score = target  # taken: no lookahead search
            while cand < stop and best_score < target and tried < max_candidates:
                for ph in range(phases):
                    _copy(trial, pred)
                    q2 = _decode_blocks(buf, cand, end, ph, nb, blk_comp, dc_tab, ac_tab, lut, qt, check, trial,
                                        tmp2, err2)
                    if q2 < 0:
                        continue
                    if resync_mode == RESYNC_PAPER:
                        best_bit = cand
                        best_score = target
                        break
                    score = 1 + _lookahead_score(buf, q2, end, first0, nb, blk_comp, dc_tab, ac_tab, lut, qt, trial,
                                                 tmp2, err2, lookahead, last - m - 1)
                    tried += 1
                    if score > best_score:
                        best_score = score
                        best_bit = cand
                        best_phase = ph
                        if score >= target:
                            break
                cand += 1
            if best_bit < 0:
                # nothing in the window: keep trying, as the paper does, to the end of the segment
                cand = max(stop, pos + 1)
                while cand < end:
                    _copy(trial, pred)
                    if _decode_blocks(buf, cand, end, first0, nb, blk_comp, dc_tab, ac_tab, lut, qt, check, trial,
                                      tmp2, err2) >= 0:
                        best_bit = cand
                        break
                    cand += 1
            if best_bit < 0:
                break  # nothing decodes any more in this segment: its remaining MCUs are missing
            # ---- MCUs decoded from bits shortly before the failure are suspect (walk back)
            j = m - 1
            floor = fail_bit - lookback_bits
            while j >= seg_first[sgi] and decoded[j]:
                suspect[j] = 1
                if mcu_bit_start[j] < floor:
                    break
                j -= 1
            # ---- decode MCU m at the chosen point and commit it
            _copy(trial, pred)
            q = _decode_blocks(buf, best_bit, end, best_phase, nb, blk_comp, dc_tab, ac_tab, lut, qt, check, trial,
                               tmp, err)
            for b in range(best_phase):
                for k in range(64):
                    tmp[b, k] = 0
            _commit(m, nb, tmp, first0, mcu_cols, blk_comp, blk_dy, blk_dx, comp_h, comp_v, comp_base, comp_bw,
                    interleaved, coefs)
            _copy(pred, trial)
            if n_res < resyncs.shape[0]:
                resyncs[n_res, 0] = m
                resyncs[n_res, 1] = fail_bit
                resyncs[n_res, 2] = best_bit
                resyncs[n_res, 3] = best_bit - pos
                resyncs[n_res, 4] = best_phase
                resyncs[n_res, 5] = code
                for c in range(ncomp):
                    resync_pred[n_res, c] = pred[c]
                n_res += 1
            mcu_bit_start[m] = best_bit
            decoded[m] = 1
            suspect[m] = 1
            pos = q
            m += 1
        seg_pad[sgi] = -1
        if 0 <= end - pos <= 7:
            if end - pos == 0 or (_peek16(buf, pos) >> (16 - (end - pos))) == (1 << (end - pos)) - 1:
                seg_pad[sgi] = end - pos
        if robust and m >= last:
            extra = 0
            while end - pos > 7:
                _copy(trial, pred)
                q = _decode_blocks(buf, pos, end, first0, nb, blk_comp, dc_tab, ac_tab, lut, qt, check, trial, tmp2,
                                   err)
                if q < 0:
                    break
                _copy(pred, trial)
                pos = q
                extra += 1
            seg_extra[sgi] = extra
        if m >= last and end - pos > 7:
            if not robust and sgi + 1 < seg_start.shape[0]:
                status[1] = ERR_EXTRANEOUS
                status[2] = m - 1
                status[3] = pos
                return
            trailing += end - pos
    status[0] = n_res
    status[4] = trailing
