"""Errors a progressive DC scan reads silently, found and undone against the thumbnail.

A DC scan codes each block's DC as a step from the one before. Garbled bits that still decode
leave the predictor off by a constant from there on, and the MCUs read from them can move every
later one a few places, with no failure to say where. Against the thumbnail's MCU means the
decoded DC then stops fitting. The MCUs are followed in scan order: where the running median
misfit rises, the shift (MCUs) and offsets (per component) that make the next stretch fit are
searched, and that stretch's DC is taken from where it was decoded, less the offset (in the
scan's own DC units, so the correction is exact when the estimate is within half a unit). MCUs
no such fit explains are left to :func:`acir_core.sca.dcrecover.recover_dc` (docs/decoder.md,
progressive files).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.decoder import DecodeResult
from acir_core.sca.dccontinuity import continuity_steps
from acir_core.sca.dcstretch import (BREAK, FIT, MAX_STRETCHES, QUIET_LEVELS, REACH, REFIT, ROLL, SAME, SKIP, WINDOW,
                                     DCSteps, by_mcu, dc_grid, dc_scan_of, first_break, mcu_sampling,
                                     moved_coefficients)
from acir_core.sca.fill import upsampled_thumbnail
from acir_core.sca.thumbmodel import block_levels
from acir_core.thumbframe import fit_tone

OUTSIDE_SAME = 0.01  # share of blocks out of the sample range within which two passes are alike
CLEAR = 0.6  # share of the next best shift's misfit that places MCUs no stretch explained


def _mcu_means(coefs: np.ndarray, rows: int, cols: int, v: int, h: int) -> np.ndarray:
    """A component's mean DC per MCU (rows × cols) from its block grid."""
    return by_mcu(coefs[..., 0].astype(np.float64), rows, cols, v, h).mean(axis=(1, 3))


def _misfit(level: np.ndarray, thumb: np.ndarray, sigma: np.ndarray, at: np.ndarray, shift: int,
            off: np.ndarray) -> np.ndarray:
    """Per MCU in ``at``: how far its DC, taken from ``shift`` MCUs back and less ``off``, is from
    the thumbnail, in noise units (root mean square over the components; inf without a source)."""
    src = at - shift
    ok = (src >= 0) & (src < level.shape[0])
    out = np.full(at.size, np.inf)
    d = (level[src[ok]] - off - thumb[at[ok]]) / sigma
    out[ok] = np.sqrt((d ** 2).mean(axis=1))
    return out


def _fits(level: np.ndarray, thumb: np.ndarray, sigma: np.ndarray, at: np.ndarray,
          reach: int = REACH) -> list[tuple[int, np.ndarray, float]]:
    """For each shift within ``reach`` with a source for half of the MCUs ``at``: the shift, the
    offsets (levels) that best explain them from there, and how well (median misfit)."""
    if at.size < ROLL:
        return []
    valid, offs, costs = _shift_fits(level, thumb, sigma, np.ascontiguousarray(at, np.int64), reach)
    return [(int(s) - reach, offs[s], float(costs[s])) for s in np.flatnonzero(valid)]


@njit(cache=True)
def _shift_fits(level: np.ndarray, thumb: np.ndarray, sigma: np.ndarray, at: np.ndarray,
                reach: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_fits` per shift -reach..reach: whether it has a source for half the MCUs, its
    offsets (the median difference per component) and its median misfit."""
    n, nc = level.shape
    k = 2 * reach + 1
    valid = np.zeros(k, np.bool_)
    offs = np.zeros((k, nc))
    costs = np.full(k, np.inf)
    idx = np.empty(at.size, np.int64)
    diff = np.empty(at.size)
    for si in range(k):
        shift = si - reach
        m = 0
        for i in range(at.size):
            src = at[i] - shift
            if 0 <= src < n:
                idx[m] = i
                m += 1
        if m < at.size // 2 or m == 0:
            continue
        valid[si] = True
        for c in range(nc):
            for j in range(m):
                i = idx[j]
                diff[j] = level[at[i] - shift, c] - thumb[at[i], c]
            offs[si, c] = np.median(diff[:m])
        for j in range(m):
            i = idx[j]
            t = 0.0
            for c in range(nc):
                d = (level[at[i] - shift, c] - offs[si, c] - thumb[at[i], c]) / sigma[c]
                t += d * d
            diff[j] = np.sqrt(t / nc)
        costs[si] = np.median(diff[:m])
    return valid, offs, costs


def _fit(level: np.ndarray, thumb: np.ndarray, sigma: np.ndarray, at: np.ndarray,
         reach: int = REACH) -> tuple[int, np.ndarray, float]:
    """The shift (within ``reach``) and offsets (levels) that best explain the MCUs ``at`` and how
    well (median misfit)."""
    return min(_fits(level, thumb, sigma, at, reach), key=lambda f: f[2], default=(0, np.zeros(level.shape[1]), np.inf))


def _clear_fit(level: np.ndarray, thumb: np.ndarray, sigma: np.ndarray, at: np.ndarray):
    """:func:`_fit`, when it explains the MCUs ``at`` far better than any shift more than one MCU
    from it (``CLEAR`` of that misfit) and within ``2 * BREAK`` (detailed parts of a photo
    misfit their thumbnail more than the part the noise was measured on); else None. Where every
    shift fits alike (flat, dark) the place stays unknown: what holds nothing is filled alike."""
    fits = _fits(level, thumb, sigma, at)
    if not fits:
        return None
    shift, off, cost = min(fits, key=lambda f: f[2])
    rival = min((c for s, _, c in fits if abs(s - shift) > 1), default=np.inf)
    return (shift, off) if cost <= 2 * BREAK and cost <= CLEAR * rival else None


def _head(result: DecodeResult, n: int) -> int:
    """How many MCUs from the first the thumbnail's tone and level are taken on: the first
    quarter, cut at the first error the DC scan reported (at least ``WINDOW``)."""
    first = n // 4
    for sr in result.scans:
        if sr.band is not None and sr.band[0] == 0 and sr.band[2] == 0 and sr.resyncs:
            first = min(first, min(e.mcu for e in sr.resyncs))
    return min(n, max(first, WINDOW))


def _toned(result: DecodeResult, thumbnail: np.ndarray, rows: int, cols: int, cell_h: int, cell_w: int,
           head: int) -> np.ndarray:
    """``thumbnail`` mapped to the photo's colours (:func:`acir_core.thumbframe.fit_tone`) on the
    MCUs of :func:`_head`: a camera's thumbnail can be tens of levels off in places, which would
    read as a DC step."""
    frame = result.frame
    trusted = np.zeros(rows * cols, bool)
    trusted[:head] = True
    mask = np.repeat(np.repeat(trusted.reshape(rows, cols), cell_h, 0), cell_w, 1)[: frame.height, : frame.width]
    tone = fit_tone(thumbnail, result.rgb, mask)
    return thumbnail if tone is None else tone.apply(thumbnail)


def _segments(source: np.ndarray, untrusted: np.ndarray, end: int) -> list[tuple[int, int]]:
    """The MCU ranges [a, b) below ``end`` of one shift and trust."""
    key = np.where(untrusted[:end], np.iinfo(np.int64).min, np.arange(end) - source[:end])
    cuts = np.flatnonzero(np.diff(key)) + 1
    bounds = np.concatenate([[0], cuts, [end]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _refit(level: np.ndarray, thumb: np.ndarray, sigma: np.ndarray, bias: np.ndarray, source: np.ndarray,
           offset: np.ndarray, untrusted: np.ndarray, end: int) -> None:
    """Each stretch fitted again on all its MCUs (it was fitted on the ``WINDOW`` after its start,
    where the garbled MCUs still sit): a shift that fits the whole clearly better replaces it. In
    what no stretch explained, each ``WINDOW`` of MCUs that one shift and offset explain clearly
    (:func:`_clear_fit`: a stretch between two errors close together, which the search skipped
    past) is placed. In place."""
    for a, b in _segments(source, untrusted, end):
        at = np.arange(a, b)
        if untrusted[a]:
            placed = []  # (shift, MCUs) of the pieces placed, those in a row with one shift merged
            for x in range(a, b - ROLL + 1, WINDOW):
                piece = np.arange(x, min(b, x + WINDOW))
                fit = _clear_fit(level, thumb, sigma, piece)
                if fit is None:
                    continue
                if placed and placed[-1][0] == fit[0] and placed[-1][1][-1] + 1 == x:
                    placed[-1] = (fit[0], np.concatenate([placed[-1][1], piece]))
                else:
                    placed.append((fit[0], piece))
            for shift, mcus in placed:  # one error's stretch: one offset, fitted on all of it
                src = mcus - shift
                inside = (src >= 0) & (src < level.shape[0])
                off = np.median(level[src[inside]] - thumb[mcus[inside]], axis=0)
                fits = mcus[_misfit(level, thumb, sigma, mcus, shift, off) <= 2 * BREAK]  # not the garbled ones
                source[fits], offset[fits], untrusted[fits] = fits - shift, off - bias, False
            continue
        if b - a < 2 * WINDOW:
            continue
        was = a - int(source[a])
        now = float(np.median(_misfit(level, thumb, sigma, at, was, offset[a] + bias)))
        shift, off, cost = _fit(level, thumb, sigma, at)
        if shift != was and cost < REFIT * now:
            source[at], offset[at] = at - shift, off - bias


def find_dc_steps(result: DecodeResult, thumbnail: np.ndarray) -> DCSteps:
    """The stretches of a progressive frame's MCUs whose DC a silently read error moved, against
    ``thumbnail`` (framed to the photo), and the coefficients with each moved back. The thumbnail
    is toned on the MCUs before the DC scan's first reported error (:func:`_head`); where a step
    shows up inside them (an error read silently) or blocks come out of the sample range, also on
    the MCUs before that step and on fewer MCUs, and the stretches found again for each (toned on
    MCUs an error moved, the thumbnail took on their colours): the pass that puts fewest blocks
    out of range and leaves the first MCUs as decoded is kept. Where even that one leaves blocks
    out of range or moves the first MCUs, well before the first step the MCUs' joins show, the thumbnail
    misleads: the steps from those joins (:func:`continuity_steps`) are taken if they find a step
    and leave no more blocks out of range."""
    rows, cols = dc_grid(result)
    head = _head(result, rows * cols)
    first = _steps(result, thumbnail, head)
    outside, untouched = _outside(result, first), _untouched(result, first)
    if untouched >= head and outside <= OUTSIDE_SAME:
        return first
    heads = dict.fromkeys(h for h in (max(untouched, WINDOW), head // 4, head // 16, WINDOW) if WINDOW <= h < head)
    passes = [(outside, untouched, first)]
    for h in heads:
        p = _steps(result, thumbnail, h)
        passes.append((_outside(result, p), _untouched(result, p), p))
    # a block's mean lies within the sample range: of the passes nearly as good at that, the
    # one that leaves the decode as it was from the first MCU (right up to the first error)
    # longest, then the one that trusts most
    least = min(o for o, _, _ in passes)
    near = [t for t in passes if t[0] <= least + OUTSIDE_SAME]
    outside, untouched, best = max(near, key=lambda t: (t[1], -float(t[2].untrusted.mean())))
    if (outside <= OUTSIDE_SAME and untouched >= WINDOW) or 2 * untouched + WINDOW > rows * cols:
        return best
    # every pass leaves blocks out of range, or moves the very first MCUs: where that is well
    # before the MCUs' joins show a first step, the thumbnail misleads wherever it is toned (a
    # thumbnail unlike the photo's first MCUs); then the steps from how the MCUs join are taken
    # if they see a step themselves and leave no more blocks out of range
    joined = continuity_steps(result)
    if joined.found and 2 * untouched + WINDOW <= _untouched(result, joined) and _outside(result, joined) <= outside:
        return joined
    return best


def _outside(result: DecodeResult, steps: DCSteps) -> float:
    """The share of blocks whose corrected DC puts their mean outside the sample range (by more
    than a quantiser step): no picture has them, an offset left wrong does."""
    out = total = 0
    for coefs, qt in zip(steps.coefficients, result.qtables):
        q0 = float(qt.reshape(-1)[0])
        level = coefs[..., 0].astype(np.float64) * q0 / 8.0 + 128.0
        out += int(((level < -q0) | (level > 255.0 + q0)).sum())
        total += level.size
    return out / max(total, 1)


def _untouched(result: DecodeResult, steps: DCSteps) -> int:
    """How many MCUs from the first keep the DC decoded (no stretch moved or levelled them) and
    are trusted."""
    rows, cols = steps.untrusted.shape
    changed = steps.untrusted.copy()
    for ci, (ours, decoded) in enumerate(zip(steps.coefficients, result.coefficients)):
        changed |= by_mcu(ours[..., 0] != decoded[..., 0], rows, cols, *mcu_sampling(result, ci)).any(axis=(1, 3))
    first = np.flatnonzero(changed.ravel())[:1]
    return int(first[0]) if first.size else changed.size


def _steps(result: DecodeResult, thumbnail: np.ndarray, head: int) -> DCSteps:
    """:func:`find_dc_steps` with the thumbnail toned on the first ``head`` MCUs."""
    frame = result.frame
    single = len(frame.components) == 1
    rows, cols = dc_grid(result)
    cell_h, cell_w = (8, 8) if single else (8 * frame.max_v, 8 * frame.max_h)
    thumbnail = _toned(result, thumbnail, rows, cols, cell_h, cell_w, head)
    up = upsampled_thumbnail(thumbnail, frame.width, frame.height)
    ncomp = len(frame.components)
    thumb_levels = block_levels(up, frame.color, [(rows, cols)] * ncomp, [(cell_h // 8, cell_w // 8)] * ncomp)
    dc_scan = dc_scan_of(result)
    unit = 1 << dc_scan.band[3]
    levels, thumbs, scales, known = [], [], [], np.ones((rows, cols), bool)
    for ci in range(len(frame.components)):
        v, h = mcu_sampling(result, ci)
        q0 = float(result.qtables[ci].reshape(-1)[0])
        level = _mcu_means(result.coefficients[ci], rows, cols, v, h) * q0 / 8.0 + 128.0
        levels.append(level.ravel())
        thumbs.append(thumb_levels[ci].ravel())
        scales.append(q0 / 8.0)
        known &= by_mcu((result.bands[ci] & np.uint64(1)) != 0, rows, cols, v, h).all(axis=(1, 3))
    # with no failure and the bits ending in step, only a clear step in place (no shift) is an
    # error read silently
    weak = 0.0 if dc_scan.resyncs or dc_scan.silent_shift else QUIET_LEVELS
    level = np.stack(levels, axis=1)  # per MCU (scan order) and component, in levels
    thumb = np.stack(thumbs, axis=1)
    n = level.shape[0]
    first = np.flatnonzero(~known.ravel())
    end = int(first[0]) if first.size else n  # a DC scan that failed lost the rest: nothing to place
    head = slice(0, min(end, head))  # where the thumbnail was toned: before any error
    bias = np.median(level[head] - thumb[head], axis=0) if end else np.zeros(level.shape[1])
    sigma = np.maximum(np.median(np.abs(np.diff(level[:end] - thumb[:end], axis=0)), axis=0) / 0.954, 0.5) \
        if end > 2 else np.ones(level.shape[1])
    source = np.arange(n)
    offset = np.zeros((n, level.shape[1]))
    untrusted = np.zeros(n, bool)
    starts, shifts, offs = [0], [0], [np.zeros(level.shape[1])]
    shift, off, m = 0, bias, 0
    while m < end:
        stop = first_break(lambda at: _misfit(level, thumb, sigma, at, shift, off), m, end, 1024)
        source[m:stop] = np.arange(m, stop) - shift
        offset[m:stop] = off - bias
        if stop >= end:
            break
        x, same = stop, False
        while x < end:
            was = (shift, off)
            window = np.arange(x + ROLL, min(end, x + ROLL + WINDOW))
            old_cost = float(np.median(_misfit(level, thumb, sigma, window, shift, off))) if window.size else np.inf
            if old_cost <= BREAK:  # the stretch still explains what follows: the picture misfits there
                same = True
                break
            shift, off, cost = _fit(level, thumb, sigma, window, 0 if weak else REACH)
            if cost <= FIT:
                # an error moves the predictor by more than a few units, and the old stretch then
                # fits what follows far worse: anything less is the picture misfitting its thumbnail
                same = bool(np.all(np.abs(off - was[1]) < SAME * np.array(scales) * unit)) or old_cost <= 2 * cost \
                    or float(np.sqrt(np.mean((off - was[1]) ** 2))) < weak
                if same:
                    shift, off = was
                break
            shift, off = was
            if weak:  # no sign of an error from the decoder: a picture the thumbnail does not explain
                same = True
                break
            untrusted[x: x + SKIP] = True
            x += SKIP
        if x >= end:  # nothing fits the rest: garbled, unless the stretch still nearly explains it
            rest = np.arange(stop, end)
            near = float(np.median(_misfit(level, thumb, sigma, rest, was[0], was[1]))) <= 2 * BREAK
            untrusted[stop:end] = not near
            if near:
                source[stop:end] = rest - was[0]
                offset[stop:end] = was[1] - bias
            break
        nxt = min(end, x + ROLL)
        if same:  # the picture misfits the thumbnail there, no error: the stretch goes on
            source[stop:nxt] = np.arange(stop, nxt) - shift
            offset[stop:nxt] = off - bias
            untrusted[stop:nxt] = False
        else:
            # the old stretch goes on while it fits MCU by MCU; the new one starts where it fits
            span = np.arange(stop, min(end, x + ROLL + WINDOW))
            good_old = _misfit(level, thumb, sigma, span, was[0], was[1]) <= BREAK
            keep = int(np.argmin(good_old)) if x == stop and not good_old.all() else 0
            source[stop:stop + keep] = span[:keep] - was[0]
            offset[stop:stop + keep] = was[1] - bias
            good_new = _misfit(level, thumb, sigma, span, shift, off) <= BREAK
            runs = np.convolve(good_new, np.ones(ROLL // 2), "valid") == ROLL // 2  # this many in a row fit
            first = np.flatnonzero(runs[keep:])
            begin = stop + keep + (int(first[0]) if first.size else nxt - stop - keep)
            untrusted[stop + keep:begin] = True  # the garbled MCUs
            nxt = begin
            if len(starts) >= MAX_STRETCHES:
                untrusted[nxt:end] = True
                break
            starts.append(nxt)
            shifts.append(shift)
            offs.append(off - bias)
        m = nxt
    if not weak:
        _refit(level, thumb, sigma, bias, source, offset, untrusted, end)
    untrusted |= (source < 0) | (source >= n)  # moved in from before the first MCU or past the last
    coefficients = moved_coefficients(result, source, offset, untrusted, np.array(scales), unit, cols)
    offsets = np.array([np.rint(o / np.array(scales) / unit) * unit for o in offs], np.int64)
    return DCSteps(starts=tuple(starts), shifts=tuple(shifts), offsets=offsets, coefficients=coefficients,
                   untrusted=untrusted.reshape(rows, cols), source=source, offset=offset,
                   scales=np.array(scales), unit=unit)
