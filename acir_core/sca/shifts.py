"""Placing runs: the shift and DC of each run that best join it to the content already placed.

Every later run of a restart interval is out by a whole number of MCUs and one constant DC error
per component. For each candidate shift the DC that best joins the run to the placed content
above and left (and to the thumbnail's means) is the median of the edge steps, and what remains
is the cost; a dynamic programme over the runs then picks the shifts so that the interval ends
where the data says.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.sca.median import BUCKETS, bucket_median
from acir_core.sca.options import ShiftOptions
from acir_core.sca.runs import Run

INF = np.float64(1e18)
"""The cost of a shift that was not costed."""
WRAP_ROWS = 1  # rows a run must span for its row wraps to judge its shift
DECISIVE_LEVELS = 2.0  # levels a decisive edge minimum must lie below every other shift's cost
DECISIVE_ROWS = 4  # rows a run must span for its edges alone to place it
WRAP_REACH = 16  # shifts either side of the edges' best that a run's row wraps judge
WRAP_FLOOR = 0.25  # share of a run's residual its row wraps can never take off (shifts a row apart stay apart)


class Canvas:
    """The placed content at its true MCU positions, for judging where the next run fits: per
    component only what the edge steps read, each placed MCU's bottom and right edges
    extrapolated half a pixel outwards (:func:`acir_core.sca.edges.outward`) plus the DC correction it was placed
    with. ``outer``: those edges of every decoded MCU, uncorrected."""

    def __init__(self, outer: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]):
        self.outer = outer  # tuples of arrays: what the compiled placing and search take
        self.bottom = tuple(np.zeros_like(e) for e in outer[0])
        self.right = tuple(np.zeros_like(e) for e in outer[1])
        self.known = np.zeros(outer[0][0].shape[0], bool)

    def snapshot(self, positions: np.ndarray | slice | None = None) -> tuple:
        """What is placed so far, for :meth:`restore` (a search that has to be done again); only
        at ``positions`` (an index array or a slice of MCU positions) when a trial places nothing
        elsewhere (a trial per sound restart interval would otherwise copy the whole canvas)."""
        at = slice(None) if positions is None else positions
        return (at, tuple(e[at].copy() for e in self.bottom), tuple(e[at].copy() for e in self.right),
                self.known[at].copy())

    def restore(self, state: tuple) -> None:
        at = state[0]
        for dst, src in zip(self.bottom + self.right, state[1] + state[2]):
            dst[at] = src
        self.known[at] = state[3]

    def place(self, true_pos: np.ndarray, dec_idx: np.ndarray, offsets: list[float]) -> None:
        place(self.bottom, self.right, self.outer[0], self.outer[1], self.known, true_pos, dec_idx,
               np.asarray(offsets, np.float64))


@njit(cache=True)
def place(bottoms, rights, outer_bottoms, outer_rights, known, true_pos, dec_idx, offsets) -> None:
    """:meth:`Canvas.place` for every component in one compiled call."""
    for k in range(offsets.size):
        off = offsets[k]
        for q in range(true_pos.size):
            t, i = true_pos[q], dec_idx[q]
            for x in range(bottoms[k].shape[1]):
                bottoms[k][t, x] = outer_bottoms[k][i, x] + off
            for x in range(rights[k].shape[1]):
                rights[k][t, x] = outer_rights[k][i, x] + off
    for q in range(true_pos.size):
        known[true_pos[q]] = True


@njit(cache=True)
def edge_terms(inner, outer, known, m, use, s, f, cnt, offset, row_start_ok, cols, w, vals, wts, n):
    """Append the steps across one edge (above: ``offset`` = cols; left: 1) of each probed MCU at
    shift ``s`` whose neighbour there is placed: the MCU's extrapolated edge (``inner``, per
    decoded MCU) minus the neighbour's (``outer``, per position). Returns the new count."""
    for q in range(use.size):
        i = m[use[q]]
        t = i + s
        nb = t - offset
        if t < f or t >= f + cnt or nb < 0 or not known[nb] or (row_start_ok and t % cols == 0):
            continue
        for x in range(inner.shape[1]):
            vals[n] = inner[i, x] - outer[nb, x]
            wts[n] = w
            n += 1
    return n


@njit(cache=True)
def shift_costs(top: np.ndarray, left: np.ndarray, bottom: np.ndarray, right: np.ndarray, known: np.ndarray,
                m: np.ndarray, shifts: np.ndarray, f: int, cnt: int, cols: int, use_a: np.ndarray,
                use_l: np.ndarray, use_t: np.ndarray, means: np.ndarray, thumb: np.ndarray,
                thumb_weight: float, unit: float):
    """One component's part of :func:`evaluate_shifts`, per shift: the steps across the edges to
    placed content above and left (each side extrapolated half a pixel,
    :func:`acir_core.sca.edges.inward`: ``top`` and ``left`` per decoded MCU, the canvas's
    ``bottom`` and ``right`` per position) and the offsets of MCU means from the thumbnail; their
    median gives the DC, the best of it and its two neighbours by weighted mean absolute residual
    gives the cost. Returns (cost, dc, measured)."""
    n_s = shifts.size
    tw, th = top.shape[1], left.shape[1]
    cap = use_a.size * tw + use_l.size * th + use_t.size
    vals = np.empty(cap)
    wts = np.empty(cap)
    bucket = np.empty(cap, np.int64)
    work = np.empty(cap)
    counts = np.zeros(BUCKETS, np.int64)  # bucket_median leaves it all zero
    cost = np.full(n_s, 1e18)
    dc = np.zeros(n_s, np.int64)
    has = np.zeros(n_s, np.bool_)
    wa = 1.0 / max(use_a.size * tw, 1)
    wl = 1.0 / max(use_l.size * th, 1)
    wt = thumb_weight / max(use_t.size, 1)
    for si in range(n_s):
        s = shifts[si]
        n = np.int64(0)  # not the literal 0: that would compile edge_terms a second time
        n = edge_terms(top, bottom, known, m, use_a, s, f, cnt, cols, np.bool_(False), cols, wa, vals, wts, n)
        n = edge_terms(left, right, known, m, use_l, s, f, cnt, np.int64(1), np.bool_(True), cols, wl, vals, wts, n)
        for q in range(use_t.size):
            i = m[use_t[q]]
            t = i + s
            if t < f or t >= f + cnt:
                continue
            vals[n] = means[i] - thumb[min(max(t, 0), thumb.size - 1)]
            wts[n] = wt
            n += 1
        if n == 0:
            continue
        med = bucket_median(vals, n, 0.5 * unit, counts, bucket, work) / unit
        base = np.int64(np.rint(med))
        wsum = 0.0
        lo_acc, mid_acc, hi_acc = 0.0, 0.0, 0.0
        c_lo, c_mid, c_hi = (base - 1) * unit, base * unit, (base + 1) * unit
        for j in range(n):
            wj = wts[j]
            wsum += wj
            lo_acc += abs(vals[j] - c_lo) * wj
            mid_acc += abs(vals[j] - c_mid) * wj
            hi_acc += abs(vals[j] - c_hi) * wj
        wsum = max(wsum, 1e-12)
        best, best_dc = 1e18, base
        for delta, acc in ((-1, lo_acc), (0, mid_acc), (1, hi_acc)):
            acc /= wsum
            if acc < best:
                best, best_dc = acc, base + delta
        cost[si] = best
        dc[si] = best_dc
        has[si] = True
    return cost, dc, has


@njit(cache=True)
def with_neighbour(m: np.ndarray, shifts: np.ndarray, f: int, cnt: int, cols: int, known: np.ndarray,
                    offset: int, limit: int) -> np.ndarray:
    """Indices into ``m`` (at most ``limit``, in order) of the MCUs that, at some shift, land in
    the segment with a placed neighbour ``offset`` places before (above: cols; left: 1, not
    across a row start)."""
    out = np.empty(min(limit, m.size), np.int64)
    last = known.size - 1  # the last placed position: MCUs beyond it (+ the widest shift) have none
    while last >= 0 and not known[last]:
        last -= 1
    lowest = shifts.min() if shifts.size else 0
    n = 0
    for q in range(m.size):
        if n == limit or m[q] + lowest - offset > last:
            break
        for s in shifts:
            t = m[q] + s
            nb = t - offset
            if t < f or t >= f + cnt or nb < 0 or not known[nb] or (offset == 1 and t % cols == 0):
                continue
            out[n] = q
            n += 1
            break
    return out[:n]


def search_runs(runs: list[Run], f: int, cnt: int, cols: int, inner: tuple[tuple, tuple], units,
                 canvas: Canvas, thumb: tuple, use_thumb: bool, opts: ShiftOptions, means: tuple,
                 start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place ``runs`` (the later runs of one restart segment) one after another, each at its best
    shift within ``opts.window`` of the one before, and return every run's costs (R, S) over its
    shifts ``bases[r] + 0..S-1``, with the best integer DC per shift and component (R, S, K):
    the residual after removing the DC offset, as mean absolute sample difference across the
    boundary to the placed content above/left and to the thumbnail (:func:`shift_costs`).
    ``inner``: per component, every decoded MCU's top and left edges extrapolated
    (:func:`acir_core.sca.edges.inward`); ``thumb``: per component, the thumbnail's mean at each
    MCU position (contiguous; read only with ``use_thumb``); ``start``: the shift the first run's
    window is centred on. One compiled call per segment, so no Python runs between the runs'
    searches."""
    trusted = np.concatenate([r.trusted for r in runs]).astype(np.int64) if runs else np.zeros(0, np.int64)
    starts = np.cumsum([0] + [r.trusted.size for r in runs]).astype(np.int64)
    # a run within a row or two is placed mostly by the left edge of its first MCU: all of it judges
    probes = [r.probes() if r.trusted.size >= 2 * cols else r.trusted for r in runs]
    probe = np.concatenate(probes).astype(np.int64) if runs else np.zeros(0, np.int64)
    probe_starts = np.cumsum([0] + [p.size for p in probes]).astype(np.int64)
    return search_segment(inner[0], inner[1], canvas.bottom, canvas.right, canvas.outer[0], canvas.outer[1],
                           canvas.known, trusted, starts, probe, probe_starts, f, cnt, cols, int(opts.window),
                           int(opts.refine),
                           thumb, use_thumb, means, thumb_weight(opts, units), np.asarray(units, np.float64),
                           float(opts.wrap_weight), float(opts.decisive), int(start))


def thumb_weight(opts: ShiftOptions, units) -> float:
    """The thumbnail's weight against the edge steps: ``opts.thumb_weight`` per DC step of a
    level or more, more where a step is finer (quality 90+: edges in a detailed 10 Mpx photo say
    less of where a run belongs than the thumbnail's levels do)."""
    return float(opts.thumb_weight) / min(float(units[0]), 1.0)


@njit(cache=True)
def lowest(costs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` lowest costs, lowest first, the lower index first among equals (a
    stable argsort's first ``k``; NumPy's default sort leaves the order of ties unspecified)."""
    taken = np.zeros(costs.size, np.bool_)
    out = np.empty(min(k, costs.size), np.int64)
    for q in range(out.size):
        best, arg = np.inf, -1
        for j in range(costs.size):
            if not taken[j] and (arg < 0 or costs[j] < best):
                best, arg = costs[j], j
        taken[arg] = True
        out[q] = arg
    return out


@njit(cache=True)
def costed(tops, lefts, bottoms, rights, known, m, cand, f, cnt, cols, refine, thumbs, use_thumb, means, thumb_weight,
           units, steps, wrap_weight):
    """Costs and DCs of the run ``m`` at every shift ``cand``: a coarse pass on a quarter of the
    samples, then the best ``refine`` in full, each with the run's row-wrap term
    (:func:`wrap_costs` of its seam ``steps``, ``wrap_weight``; 0: none) at the shifts
    :func:`near_best` the coarse pass's best."""
    n_k = units.size
    c, d = evaluate_shifts(tops, lefts, bottoms, rights, known, m, cand, f, cnt, cols, np.int64(4), thumbs,
                           use_thumb, means, thumb_weight, units)
    wrap = np.zeros(cand.size)
    lo, hi = near_best(c)
    if wrap_weight > 0 and hi > lo:  # costed only there: a wide window spans thousands of shifts
        wrap[lo:hi] = wrap_costs(steps, m, cand[lo:hi], cols, wrap_weight)
    for j in range(cand.size):
        if c[j] < INF:
            c[j] = max(c[j] + wrap[j], WRAP_FLOOR * c[j])
    top = lowest(c, refine)
    c_top, d_top = evaluate_shifts(tops, lefts, bottoms, rights, known, m, cand[top], f, cnt, cols,
                                   np.int64(1), thumbs, use_thumb, means, thumb_weight, units)
    for q in range(top.size):
        if c_top[q] < INF:
            c_top[q] = max(c_top[q] + wrap[top[q]], WRAP_FLOOR * c_top[q])
    for q in range(top.size):
        c[top[q]] = c_top[q]
        for k in range(n_k):
            d[top[q], k] = d_top[q, k]
    return c, d


@njit(cache=True)
def near_best(c: np.ndarray) -> tuple[int, int]:
    """The index range ``lo:hi`` of the shifts within ``WRAP_REACH`` of the lowest cost ``c``
    (empty where none was costed), the only ones a run's row wraps judge: they tell apart shifts
    the edges leave close (one MCU along a row is a DC change in a ramp); across a wide window (a
    lost stretch), the one or two wraps of a short run would let some far shift land its wrap on
    an edge inside the picture."""
    best = -1
    for j in range(c.size):
        if c[j] < INF and (best < 0 or c[j] < c[best]):
            best = j
    if best < 0:
        return 0, 0
    return max(best - WRAP_REACH, 0), min(best + WRAP_REACH + 1, c.size)


@njit(cache=True)
def sharp(c: np.ndarray, ratio: float, margin: float) -> bool:
    """Whether the lowest cost in ``c`` is ``ratio`` times and ``margin`` levels below every other
    one (a decisive minimum; the costs are of neighbouring shifts, so the runner-up is usually
    one MCU off; in flat content every cost is near 0 and ratios say nothing)."""
    best, second = INF, INF
    for j in range(c.size):
        if c[j] < best:
            best, second = c[j], best
        elif c[j] < second:
            second = c[j]
    return best < INF and best >= 0 and best * ratio <= second and second - best >= margin


@njit(cache=True)
def search_segment(tops, lefts, bottoms, rights, outer_bottoms, outer_rights, known, trusted, starts, probe,
                   probe_starts, f, cnt, cols, window, refine, thumbs, use_thumb, means, thumb_weight, units,
                   wrap_weight, decisive, start):
    """:func:`search_runs`, compiled: per run, a coarse pass over every shift on a quarter of the
    samples, then the best ``refine`` in full, each with the run's own row wrap
    (:func:`wrap_costs`), all judged on the run's ``probe`` MCUs (``probe_starts``: each run's
    slice of them; :meth:`~acir_core.sca.runs.Run.probes`). With the thumbnail, a run of
    ``DECISIVE_ROWS`` rows or more is costed on its edges alone too, and where those have a
    :func:`sharp` minimum (``decisive``) within an MCU of the choice with the thumbnail, they
    place it. The run is placed on the canvas at the lowest
    cost (the first among equals) with its DC. A run that no shift can judge keeps the shift
    before it, at cost ``INF`` / 2 (finite: the programme may still pass through it)."""
    n_runs, span, n_k = starts.size - 1, 2 * window + 1, units.size
    costs = np.full((n_runs, span), INF)
    dcs = np.zeros((n_runs, span, n_k), np.int64)
    bases = np.empty(n_runs, np.int64)
    offsets = np.empty(n_k)
    prev = start
    for r in range(n_runs):
        m = trusted[starts[r]: starts[r + 1]]
        judge = probe[probe_starts[r]: probe_starts[r + 1]]
        if judge.size == 0:
            judge = m
        base = prev - window
        bases[r] = base
        if m.size:
            cand = np.arange(base, base + span)
            steps = seam_steps(lefts, outer_rights, judge) if wrap_weight > 0 else np.zeros(0)
            c, d = costed(tops, lefts, bottoms, rights, known, judge, cand, f, cnt, cols, refine, thumbs, use_thumb,
                          means, thumb_weight, units, steps, wrap_weight)
            if use_thumb and decisive > 0 and judge.size >= DECISIVE_ROWS * cols:  # rows of vertical edges
                ce, de = costed(tops, lefts, bottoms, rights, known, judge, cand, f, cnt, cols, refine, thumbs, False,
                                means, thumb_weight, units, steps, wrap_weight)
                # the edges alone are sure, and within the MCU the thumbnail cannot resolve (further
                # off, periodic texture can fool the edges and the thumbnail is the better judge)
                if sharp(ce, decisive, DECISIVE_LEVELS) and abs(np.argmin(ce) - np.argmin(c)) <= 1:
                    c, d = ce, de
            # element by element: an array assignment would compile numba's shape-mismatch message
            for j in range(span):
                costs[r, j] = c[j]
                for k in range(n_k):
                    dcs[r, j, k] = d[j, k]
        arg = -1
        for j in range(span):
            if costs[r, j] < INF and (arg < 0 or costs[r, j] < costs[r, arg]):
                arg = j
        if arg < 0:
            arg = window
            costs[r, arg] = INF / 2
        best = base + arg
        n_in = 0
        for q in range(m.size):
            if f <= m[q] + best < f + cnt:
                n_in += 1
        pos = np.empty(n_in, np.int64)
        dec = np.empty(n_in, np.int64)
        n_in = 0
        for q in range(m.size):
            if f <= m[q] + best < f + cnt:
                pos[n_in] = m[q] + best
                dec[n_in] = m[q]
                n_in += 1
        for k in range(n_k):
            offsets[k] = -dcs[r, arg, k] * units[k]
        place(bottoms, rights, outer_bottoms, outer_rights, known, pos, dec, offsets)
        if m.size >= cols // 2 or abs(best - prev) <= window // 2:
            prev = best  # a short run's far jump does not move the next run's window (it may be garbage)
    return costs, dcs, bases


@njit(cache=True)
def seam_steps(lefts, outer_rights, m) -> np.ndarray:
    """Per MCU of the run ``m`` (decoded indices): the mean absolute step, over components, between
    its left edge and the right edge of the MCU decoded just before it, when that one is in the
    run too (else -1). Where a row ends the two are not neighbours, so the step is large."""
    out = np.full(m.size, -1.0)
    for q in range(1, m.size):
        i = m[q]
        if m[q - 1] != i - 1:
            continue
        acc, n = 0.0, 0
        for k in range(len(lefts)):
            for x in range(lefts[k].shape[1]):
                acc += abs(lefts[k][i, x] - outer_rights[k][i - 1, x])
                n += 1
        out[q] = acc / max(n, 1)
    return out


@njit(cache=True)
def wrap_costs(steps, m, sh, cols, weight) -> np.ndarray:
    """Per candidate shift of a run ``WRAP_ROWS`` rows long or more: ``weight`` × (the mean step
    inside the run − the median step where the candidate says its rows wrap: one garbage MCU
    beside a resync outsteps any wrap, and would win a mean for the shift that wraps there), added to the
    run's cost, which keeps at least ``WRAP_FLOOR`` of the residual (at 0, shifts a whole row
    apart tied and the first, a row early, won; below 0, garbage passed for a trusted run). A run placed one MCU off puts the wrap between
    two neighbours and two strangers side by side, on every row it spans; the thumbnail at 160 px
    cannot see that, nor the edges to the rows placed above. Rows that wrap where the shift says
    also vouch for the run: its cost drops, and SCA trusts it more readily."""
    out = np.zeros(sh.size)
    total, n = 0.0, 0
    for q in range(steps.size):
        if steps[q] >= 0:
            total += steps[q]
            n += 1
    if n + 1 < WRAP_ROWS * cols:  # a run of r rows has r·cols - 1 steps inside it
        return out
    mean = total / n
    at = np.empty(steps.size)
    for j in range(sh.size):
        c = 0
        for q in range(steps.size):
            if steps[q] >= 0 and (m[q] + sh[j]) % cols == 0:
                at[c] = steps[q]
                c += 1
        if c:
            out[j] = weight * (mean - np.median(at[:c]))
    return out


@njit(cache=True)
def evaluate_shifts(tops, lefts, bottoms, rights, known, m, sh, f, cnt, cols, stride, thumbs, use_thumb, means,
                    thumb_weight, units):
    """Costs (S,) of placing the run of decoded MCUs ``m`` at each shift ``sh``, and the best
    integer DC per shift and component (S, K), probing every ``stride``-th MCU with a placed
    neighbour (see :func:`search_runs`). All components in one call: runs are costed hundreds of
    times per photo, and per-component calls would cost more than the costs themselves."""
    n_s, n_k = sh.size, units.size
    # probe the first 2 rows' worth of MCUs that have a placed neighbour for some shift
    use_a = with_neighbour(m, sh, f, cnt, cols, known, cols, 2 * cols)[::stride]
    use_l = with_neighbour(m, sh, f, cnt, cols, known, np.int64(1), cols)[::stride]
    if use_thumb:
        use_t = np.arange(0, m.size, max(1, m.size // (512 // stride)))
    else:
        use_t = np.zeros(0, np.int64)
    total = np.zeros(n_s)
    weight = np.zeros(n_s)
    dcs = np.zeros((n_s, n_k), np.int64)
    for k in range(n_k):
        cost, dc, has = shift_costs(tops[k], lefts[k], bottoms[k], rights[k], known, m, sh, f, cnt, cols,
                                    use_a, use_l, use_t, means[k], thumbs[k], thumb_weight, units[k])
        for i in range(n_s):
            if has[i]:
                total[i] += cost[i]
                weight[i] += 1.0
            dcs[i, k] = dc[i]
    costs = np.empty(n_s)
    for i in range(n_s):
        costs[i] = total[i] / max(weight[i], 1.0) if weight[i] > 0 else INF
    return costs, dcs


def pin_end(costs: np.ndarray, bases: np.ndarray, final: int) -> None:
    """Leave the last run only the shift ``final`` (in place), costed 0 where its borders give no
    cost there; nothing changes when ``final`` lies outside the shifts searched."""
    if not costs.shape[0]:
        return
    j = final - int(bases[-1])
    if 0 <= j < costs.shape[1]:
        keep = costs[-1, j] if costs[-1, j] < INF else 0.0
        costs[-1, :] = INF
        costs[-1, j] = keep


def held_path(costs: np.ndarray, bases: np.ndarray, final: int | None, penalty: float, pinned: bool) -> list[int]:
    """:func:`viterbi`'s path from shift 0 towards ``final``, the last run held there when
    ``pinned`` (:func:`pin_end`, on a copy: the costs also say where the search placed each run,
    which what searches again reads)."""
    if pinned and final is not None:
        costs = costs.copy()
        pin_end(costs, bases, final)
    return viterbi(costs, bases, 0, final, penalty)


def viterbi(costs: np.ndarray, bases: np.ndarray, start: int, final: int | None, penalty: float) -> list[int]:
    """Shifts per run minimising total cost + penalty·|jumps|, ending at ``final`` when given.
    ``costs`` (R, S): run r's cost at shift ``bases[r]`` + j, ``INF`` where not costed."""
    if not costs.shape[0]:
        return []
    run, col = np.nonzero(costs < INF)
    keys = np.concatenate([bases[run] + col, [start] + ([final] if final is not None else [])])
    lo, hi = int(keys.min()), int(keys.max())
    local = np.full((costs.shape[0], hi - lo + 1), INF)
    local[run, bases[run] + col - lo] = costs[run, col]
    prev, back = viterbi_pass(local, start - lo, penalty)
    if final is not None and lo <= final <= hi and prev[final - lo] < INF:
        end = final - lo
    else:
        end = int(np.argmin(prev))
    path = [end]
    for arg in back[:0:-1]:
        path.append(int(arg[path[-1]]))
    return [int(p + lo) for p in path[::-1]]


@njit(cache=True)
def viterbi_pass(local: np.ndarray, start: int, penalty: float):
    """The forward pass of :func:`viterbi` over shifts ``0..span-1``: per run and shift the best
    predecessor (the lowest-index one among equals, as ``np.argmin``) and the final totals. A
    state more than ``penalty`` × span above the best can win nowhere (the best one reaches every
    shift for less), so each step reads just the few states a run was costed at, not every pair
    of shifts (uncosted ones sit at ``INF``); the margin keeps float rounding from deciding."""
    n_r, span = local.shape
    prev = np.full(span, INF)
    prev[start] = 0.0
    back = np.zeros((n_r, span), np.int64)
    live = np.empty(span, np.int64)
    reach = penalty * span
    for r in range(n_r):
        low = prev.min()
        bound = low + reach + 1e-9 * (abs(low) + reach) + 1e-9  # costs may be below 0 (row wraps)
        n_live = 0
        for j in range(span):
            if prev[j] <= bound:
                live[n_live] = j
                n_live += 1
        nxt = np.empty(span)
        for s in range(span):
            best, arg = np.inf, live[0]
            for q in range(n_live):
                j = live[q]
                v = prev[j] + penalty * abs(s - j)
                if v < best:
                    best, arg = v, j
            back[r, s] = arg
            nxt[s] = best + local[r, s]
        prev = nxt
    return prev, back
