"""Errors a progressive DC scan reads silently, found and undone without a thumbnail.

The AC scans arrive apart from the DC scan, so every block keeps its shape when its DC is off.
Each edge between neighbouring MCUs then says how far apart their DCs should be for the picture
to go on across it (:func:`acir_core.sca.dcrecover.edge_targets`). After an error the DC scan
read silently, every later MCU's DC is off by one constant per component and may come from a
few MCUs on: the edges to the row above stop joining. The MCUs are followed in scan order as
against a thumbnail (:mod:`acir_core.sca.dcsteps`), each new stretch's shift judged by how its
own MCUs join each other and its offsets by how its first row joins the corrected row above
(docs/decoder.md, progressive files).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.decoder import DecodeResult
from acir_core.jpeg.render import component_plane
from acir_core.sca.dcrecover import edge_targets
from acir_core.sca.dcstretch import (BREAK, FIT, MAX_STRETCHES, QUIET_LEVELS, REACH, REFIT, ROLL, SAME, SKIP,
                                   WINDOW,
                                   DCSteps, by_mcu, dc_grid, dc_scan_of, mcu_sampling, moved_coefficients,
                                   first_break)

CLEAR = 0.5  # share of the stretch's misfit a new one must reach after a break
LOCAL = 1.5  # times the stretch's misfit before a break that a new one may have (at least FIT)
ALIKE = 1.15  # shifts within this factor of the best misfit join alike

TOP, BOTTOM, LEFT, RIGHT, TV, TH, WV, WH, INNER = range(9)  # the rows of the features array
CLIMB = 4  # rows of garbled MCUs a new stretch's first row looks up through for placed ones


def _features(result: DecodeResult, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per MCU (scan order) and component: the mean DC level (levels) of its top, bottom, left and
    right blocks, the level steps from the MCU above and from the one to the left that continue
    the picture across those edges, how much each edge is to be believed, and the step from its
    top blocks to its bottom ones; and per component the DC's quantiser in levels."""
    n, nc = rows * cols, len(result.frame.components)
    f = np.zeros((9, n, nc))
    scales = np.empty(nc)
    for ci, (coefs, qt) in enumerate(zip(result.coefficients, result.qtables)):
        v, h = mcu_sampling(result, ci)
        scales[ci] = float(qt.reshape(-1)[0]) / 8.0
        dc = by_mcu(coefs[..., 0].astype(np.float64) * scales[ci], rows, cols, v, h)  # (rows, v, cols, h)
        f[TOP, :, ci] = dc[:, 0].mean(axis=2).ravel()
        f[BOTTOM, :, ci] = dc[:, v - 1].mean(axis=2).ravel()
        f[LEFT, :, ci] = dc[:, :, :, 0].mean(axis=1).ravel()
        f[RIGHT, :, ci] = dc[:, :, :, h - 1].mean(axis=1).ravel()
        ac = coefs.copy()
        ac[..., 0] = 0
        th, wh, tv, wv = edge_targets(component_plane(ac, qt))
        shape = coefs.shape[:2]
        into_row, into_row_w = np.zeros(shape), np.zeros(shape)  # the step into block row r from r - 1
        into_row[1:], into_row_w[1:] = tv, wv
        rows_t, rows_w = by_mcu(into_row, rows, cols, v, h), by_mcu(into_row_w, rows, cols, v, h)
        f[TV, :, ci] = rows_t[:, 0].mean(axis=2).ravel()
        f[WV, :, ci] = rows_w[:, 0].mean(axis=2).ravel()
        f[INNER, :, ci] = rows_t[:, 1:].sum(axis=1).mean(axis=2).ravel()  # its top blocks to its bottom ones
        into_col, into_col_w = np.zeros(shape), np.zeros(shape)  # into block column c from c - 1
        into_col[:, 1:], into_col_w[:, 1:] = th, wh
        f[TH, :, ci] = by_mcu(into_col, rows, cols, v, h)[:, :, :, 0].mean(axis=1).ravel()
        f[WH, :, ci] = by_mcu(into_col_w, rows, cols, v, h)[:, :, :, 0].mean(axis=1).ravel()
    return f, scales


@njit(cache=True)
def _residual(f, cols, source, offset, trust, a, m, s, off, c, vertical, climb=0):
    """MCU ``m``'s level step over its top (``vertical``) or left edge less the step its AC asks
    for, its DC taken from ``s`` MCUs back less ``off`` (the stretch from MCU ``a`` on), the
    neighbour as placed (before ``a``) or in the same stretch; nan without a neighbour to judge by.
    ``climb``: rows of garbled MCUs a top edge may look up through to a placed one."""
    n = f.shape[1]
    q = m - s
    if vertical:
        if m < cols:
            return np.nan, 0.0
        p, own, other, t, w = m - cols, TOP, BOTTOM, TV, WV
    else:
        if m % cols == 0:
            return np.nan, 0.0
        p, own, other, t, w = m - 1, LEFT, RIGHT, TH, WH
    step = f[t, m, c]
    if p >= a:
        ps = p - s
        if ps < 0 or ps >= n:
            return np.nan, 0.0
        neighbour = f[other, ps, c] - off[c]
    else:
        # above garbled MCUs, the first placed one up the column, through their AC alone
        while vertical and not trust[p] and climb > 0 and p >= cols:
            step += f[INNER, p, c] + f[TV, p, c]
            p -= cols
            climb -= 1
        if not trust[p]:
            return np.nan, 0.0
        neighbour = f[other, source[p], c] - offset[p, c]
    return f[own, q, c] - off[c] - neighbour - step, f[w, m, c]


@njit(cache=True)
def _misfits(f, cols, source, offset, trust, a, at, s, off, sigma, anchored=False, climb=0):
    """Per MCU in ``at``: how badly it joins its neighbours above and left under the stretch
    (``s``, ``off``) from MCU ``a`` on, in noise units (root mean square over the components of
    the edge-weighted residuals); inf where its DC has no source or it has no neighbour.
    ``anchored``: only neighbours placed before ``a`` count (what says the offsets are right),
    nan where there are none; ``climb``: rows of garbled MCUs a top edge may look up through."""
    n, nc = f.shape[1], f.shape[2]
    out = np.full(at.size, np.inf)
    for i in range(at.size):
        m = at[i]
        if m - s < 0 or m - s >= n:
            continue
        tot, cnt = 0.0, 0
        for c in range(nc):
            acc = wsum = 0.0
            for vertical in (True, False):
                if anchored and (m - cols if vertical else m - 1) >= a:
                    continue
                r, w = _residual(f, cols, source, offset, trust, a, m, s, off, c, vertical, climb)
                if not np.isnan(r):
                    acc += w * r * r
                    wsum += w
            if wsum > 0:
                tot += acc / wsum / (sigma[c] * sigma[c])
                cnt += 1
        if cnt:
            out[i] = np.sqrt(tot / cnt)
        elif anchored:
            out[i] = np.nan
    return out


@njit(cache=True)
def _offsets(f, cols, source, offset, trust, at, s, out, climb=0):
    """Into ``out`` (per component): the median of the offsets the MCUs ``at`` (a stretch from
    ``at[0]``, at shift ``s``) that join placed neighbours ask for (up through ``climb`` rows of
    garbled MCUs); False where fewer than four do."""
    n, nc = f.shape[1], f.shape[2]
    a = at[0]
    zero = np.zeros(nc)
    found = np.zeros(nc)
    vals = np.empty(2 * at.size)
    for c in range(nc):
        cnt = 0
        for i in range(at.size):
            m = at[i]
            if m - s < 0 or m - s >= n:
                continue
            for vertical in (True, False):
                p = m - cols if vertical else m - 1
                if p >= a or p < 0 or (not vertical and m % cols == 0):
                    continue
                r, w = _residual(f, cols, source, offset, trust, a, m, s, zero, c, vertical, climb)
                if not np.isnan(r) and w > 0.0:
                    vals[cnt] = r
                    cnt += 1
        if cnt < 4:
            return False
        found[c] = np.median(vals[:cnt])
    out[:] = found
    return True


@njit(cache=True)
def _shift_fits(f, cols, source, offset, trust, at, reach, sigma, climb):
    """For each shift -reach..reach of the stretch starting at ``at[0]``: its offsets
    (:func:`_offsets`, looking up through ``climb`` rows of garbled MCUs) and its median misfit
    over ``at`` (inf where fewer than half have a source or too few join a placed one)."""
    k = 2 * reach + 1
    offs = np.zeros((k, f.shape[2]))
    costs = np.full(k, np.inf)
    for si in range(k):
        s = si - reach
        if not _offsets(f, cols, source, offset, trust, at, s, offs[si], climb):
            continue
        mis = _misfits(f, cols, source, offset, trust, at[0], at, s, offs[si], sigma)
        good = mis[np.isfinite(mis)]
        if good.size >= at.size // 2 and good.size:
            costs[si] = np.median(mis)
    return offs, costs


def _sigma(f: np.ndarray, cols: int) -> np.ndarray:
    """Per component the noise of how MCUs join the row above, from the quieter rows (a shifted
    stretch misjoins every row it spans; a step, one)."""
    n, nc = f.shape[1], f.shape[2]
    rows = n // cols
    if rows < 2:
        return np.ones(nc)
    r = (f[TOP, cols:] - f[BOTTOM, :-cols] - f[TV, cols:]).reshape(rows - 1, cols, nc)
    per_row = np.median(np.abs(r - np.median(r, axis=1, keepdims=True)), axis=1) / 0.6745
    return np.maximum(np.percentile(per_row, 25, axis=0), 0.5)


def continuity_steps(result: DecodeResult) -> DCSteps:
    """The stretches of a progressive frame's MCUs whose DC a silently read error moved, found
    from how the MCUs join their neighbours (no thumbnail), and the coefficients with each moved
    back; MCUs no stretch explains are untrusted."""
    rows, cols = dc_grid(result)
    n = rows * cols
    dc_scan = dc_scan_of(result)
    unit = 1 << dc_scan.band[3]
    f, scales = _features(result, rows, cols)
    known = np.ones((rows, cols), bool)
    for ci in range(len(result.frame.components)):
        v, h = mcu_sampling(result, ci)
        known &= by_mcu((result.bands[ci] & np.uint64(1)) != 0, rows, cols, v, h).all(axis=(1, 3))
    first = np.flatnonzero(~known.ravel())
    end = int(first[0]) if first.size else n
    weak = 0.0 if dc_scan.resyncs or dc_scan.silent_shift else QUIET_LEVELS
    sigma = _sigma(f, cols)
    nc = f.shape[2]
    source = np.arange(n)
    offset = np.zeros((n, nc))
    trust = np.zeros(n, bool)
    untrusted = np.zeros(n, bool)
    starts, shifts, offs = [0], [0], [np.zeros(nc)]
    shift, off, m = 0, np.zeros(nc), 0
    reach = 0 if weak else REACH

    def misfits(a: int, at: np.ndarray, s: int, o: np.ndarray) -> np.ndarray:
        return _misfits(f, cols, source, offset, trust, a, np.ascontiguousarray(at, np.int64), s, o, sigma)

    def judged(at: np.ndarray, s: int, o: np.ndarray) -> float:
        # the median misfit of the MCUs joining placed ones (those alone tell an offset), of all
        # where few do
        mis = _misfits(f, cols, source, offset, trust, at[0], np.ascontiguousarray(at, np.int64), s, o, sigma,
                       True, CLIMB)
        mis = mis[~np.isnan(mis)]
        return float(np.median(mis if mis.size >= ROLL else misfits(at[0], at, s, o)))

    def fit(at: np.ndarray, near: int) -> tuple[int, np.ndarray, float]:
        # where the picture is flat many shifts join alike: of those, the one nearest ``near``
        o, costs = _shift_fits(f, cols, source, offset, trust, np.ascontiguousarray(at, np.int64), reach, sigma,
                               CLIMB)
        alike = np.flatnonzero(costs <= ALIKE * costs.min())
        best = int(alike[np.argmin(np.abs(alike - reach - near))]) if alike.size else reach
        return best - reach, o[best], float(costs[best])

    def place(a: int, b: int, s: int, o: np.ndarray) -> None:
        source[a:b] = np.arange(a, b) - s
        offset[a:b] = o
        trust[a:b] = (source[a:b] >= 0) & (source[a:b] < n)

    begun = 0  # where the stretch being followed began
    while m < end:
        stop = first_break(lambda at: misfits(m, at, shift, off), m, end, 256)
        if not weak and stop - begun >= 2 * WINDOW and m == begun:
            # fitted on a window after its start, where the garbled MCUs still sit: a shift that
            # joins all its MCUs clearly better replaces it
            now = float(np.median(misfits(begun, np.arange(begun, stop), shift, off)))
            s2, o2, cost = fit(np.arange(begun, stop), shift)
            if s2 != shift and cost < REFIT * now:
                shift, off = s2, o2
                offs[-1], shifts[-1] = off.copy(), shift
                stop = first_break(lambda at: misfits(m, at, shift, off), m, end, 256)
        place(m, stop, shift, off)
        if stop >= end:
            break
        x, same = stop, False
        before = np.arange(max(begun, stop - WINDOW), stop)
        # how well the stretch joined its own MCUs: a textured part joins less well
        local = float(np.median(misfits(before[0], before, shift, off))) if before.size >= ROLL else BREAK
        while x < end:
            was = (shift, off)
            window = np.arange(x + ROLL, min(end, x + ROLL + WINDOW))
            if window.size < ROLL:
                break
            old_cost = judged(window, *was)
            if old_cost <= BREAK:
                same = True
                break
            shift, off, cost = fit(window, was[0])
            new_cost = judged(window, shift, off)
            if new_cost <= CLEAR * old_cost and cost <= max(FIT, LOCAL * local):
                # an error moves the predictor by more than a few units: a fit that close to the
                # stretch's own is the picture, not an error
                same = bool(np.all(np.abs(off - was[1]) < SAME * scales * unit) and shift == was[0]) \
                    or float(np.sqrt(np.mean((off - was[1]) ** 2))) < weak
                if same:
                    shift, off = was
                break
            shift, off = was
            if weak or (np.isfinite(cost) and old_cost <= 2 * new_cost):
                same = True  # the stretch joins what follows as well as any: texture
                break
            untrusted[x: x + SKIP] = True
            x += SKIP
        if x >= end or window.size < ROLL:  # the photo's last MCUs: the stretch, if it nearly joins them
            rest = np.arange(stop, end)
            if weak or (rest.size and judged(rest, *was) <= 2 * BREAK):
                place(stop, end, *was)
            else:
                untrusted[stop:end] = True
            break
        nxt = min(end, x + ROLL)
        if same:
            place(stop, nxt, shift, off)
        else:
            span = np.arange(stop, min(end, x + ROLL + WINDOW))
            good_new = misfits(stop, span, shift, off) <= BREAK
            runs = np.convolve(good_new, np.ones(ROLL // 2), "valid") == ROLL // 2
            hit = np.flatnonzero(runs)
            begin = max(stop + (int(hit[0]) if hit.size else nxt - stop), m + 1)  # always on
            untrusted[stop:begin] = True
            nxt = begin
            # the offsets again on the stretch's own first row, past the garbled MCUs
            first_row = np.arange(begin, min(end, begin + cols))
            again = np.zeros(nc)
            if first_row.size and _offsets(f, cols, source, offset, trust, first_row, shift, again, CLIMB):
                off = again
            if len(starts) >= MAX_STRETCHES:
                untrusted[nxt:end] = True
                break
            starts.append(nxt)
            shifts.append(shift)
            offs.append(off.copy())
            begun = nxt
        m = nxt
    # what the scan read on after a failure sits on a predictor the failure may have moved: where
    # no stretch began soon after it and the MCUs a row on do not join the placed row above, nothing
    # placed it, and it stays untrusted to the end of its restart segment
    ends = dc_scan.segment_first + dc_scan.segment_count
    for e in dc_scan.resyncs:
        if any(e.mcu <= st <= e.mcu + cols + WINDOW + 2 * ROLL for st in starts):
            continue
        after = np.arange(e.mcu + ROLL, min(end, e.mcu + ROLL + cols))
        if after.size >= ROLL and trust[after[0]] and \
                judged(after, int(after[0] - source[after[0]]), offset[after[0]]) <= BREAK:
            continue
        seg = int(np.searchsorted(dc_scan.segment_first, e.mcu, side="right")) - 1
        untrusted[e.mcu: min(int(ends[seg]), end)] = True
    untrusted[end:] = False
    untrusted |= (source < 0) | (source >= n)
    coefficients = moved_coefficients(result, source, offset, untrusted, scales, unit, cols)
    offsets = np.array([np.rint(o / scales / unit) * unit for o in offs], np.int64)
    return DCSteps(starts=tuple(starts), shifts=tuple(shifts), offsets=offsets, coefficients=coefficients,
                   untrusted=untrusted.reshape(rows, cols), source=source, offset=offset,
                   scales=scales, unit=unit, by_joins=True)
