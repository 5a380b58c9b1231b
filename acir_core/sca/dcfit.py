"""The joint DC fit: every run's DC error at once, from all run boundaries and the thumbnail.

Placing runs one after another measures each run's DC against what was placed before it, so one
poorly measured boundary would pass its error down the image. Here the relative offsets across
every boundary between two runs and the absolute offsets against the thumbnail are solved
together by iteratively reweighted least squares, the first run of each restart interval fixed
at 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from acir_core.sca.envelope import cholesky_envelope, envelope_start, solve_envelope
from acir_core.sca.median import median
from acir_core.sca.options import DCOptions
from acir_core.sca.runs import Run


ANCHOR_SHARE = 0.1  # share of the placed MCUs anchored runs need to measure the thumbnail's own offset
RANGE_CHUNK = 32  # a run's bounds are judged on stretches of this many of its MCUs ...
LINK_SAMPLE = 4  # every this many MCU pairs inside runs measure the edges' own offset ...
LINK_LEAST = 64  # ... when there are at least this many
RANGE_SPARE = 2  # ... sparing the most extreme this many (garbage before a resync reaches ~50 MCUs)


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where the shift search put one run: its shift, the DC it measured (per component, DC steps)
    and the cost left; ``anchored``: the first run of its restart interval (DC fixed at 0);
    ``first``, ``count``: the interval's MCUs."""

    run: Run
    shift: int
    dc: tuple[int, ...]
    cost: float
    anchored: bool
    first: int
    count: int


def per_mcu(placements: list[Placement]) -> tuple[np.ndarray, ...]:
    """Every placed run's decoded MCUs in list order, and per MCU its run's shift, its run's
    index in the list, and its interval's first MCU and count: what passes over all runs at
    once read (a restart interval every few MCUs makes tens of thousands of runs)."""
    sizes = np.array([pl.run.trusted.size for pl in placements], np.int64)
    dec = np.concatenate([pl.run.trusted for pl in placements]).astype(np.int64) if placements \
        else np.zeros(0, np.int64)
    each = [np.repeat(np.array(vals, np.int64), sizes) for vals in
            ([pl.shift for pl in placements], range(len(placements)), [pl.first for pl in placements],
             [pl.count for pl in placements])]
    return (dec, *each)


def last_landed(at: np.ndarray) -> np.ndarray:
    """Indices into ``at`` of the last entry at each distinct position: where two runs land on
    one place, the later one holds it."""
    _, from_end = np.unique(at[::-1], return_index=True)
    return at.size - 1 - from_end


@njit(cache=True)
def group_median_mad(keys: np.ndarray, vals: np.ndarray):
    """Per run of equal ``keys`` (sorted), the median and median absolute deviation of the rows
    of ``vals`` (each row one boundary pair's samples) and the number of samples."""
    n, width = vals.shape
    starts = [0]
    for i in range(1, n):
        if keys[i] != keys[i - 1]:
            starts.append(i)
    g = len(starts)
    out_k = np.empty(g, np.int64)
    med = np.empty(g)
    mad = np.empty(g)
    size = np.empty(g, np.int64)
    for q in range(g):
        a = starts[q]
        b = starts[q + 1] if q + 1 < g else n
        flat = vals[a:b].ravel()
        m = median(flat, 0.5)
        out_k[q], med[q], mad[q], size[q] = keys[a], m, median(np.abs(flat - m), 0.25), flat.size
    return out_k, med, mad, size



def reweighted_differences(plus: np.ndarray, minus: np.ndarray, b: np.ndarray, wts: np.ndarray, n: int,
                           rounds: int, scale: float) -> np.ndarray:
    """The unknowns x (n,) of measurements x[plus] - x[minus] ≈ b (an index of -1 is a known 0),
    weighted ``wts``, by iteratively reweighted least squares (Cauchy, ``scale``) so that one bad
    boundary does not pull the rest. Each row has two entries at most, so the normal equations
    are summed entry by entry rather than from a dense design matrix of mostly zeros."""
    x = np.zeros(n + 1)  # x[n]: the known 0 that index -1 reads
    p, m = np.where(plus < 0, n, plus), np.where(minus < 0, n, minus)
    for it in range(rounds):
        w = wts if it == 0 else wts / (1.0 + (np.abs(x[p] - x[m] - b) / scale) ** 2)
        mat, rhs = difference_normals(p, m, w, b, n)
        # runs meet runs a row or so away in decode order: the matrix is nearly banded
        first = envelope_start(mat)
        low, ok = cholesky_envelope(mat, first)
        x[:n] = solve_envelope(low, first, rhs) if ok else np.linalg.solve(mat, rhs)
    return x[:n]


@njit(cache=True)
def difference_normals(p: np.ndarray, m: np.ndarray, w: np.ndarray, b: np.ndarray, n: int):
    """The normal equations of :func:`reweighted_differences` (index n: the known 0), each of
    their four parts summed in row order and then combined as ``np.bincount`` of each would, with
    the 1e-9 ridge that keeps a run no measurement reaches at 0."""
    size = n + 1
    same_p = np.zeros(size)  # Σ w over rows by their plus index (the diagonal from x[plus])
    same_m = np.zeros(size)
    cross = np.zeros((size, size))  # Σ w over rows by (plus, minus); by (minus, plus) is its transpose
    rhs_p = np.zeros(size)
    rhs_m = np.zeros(size)
    for r in range(p.size):
        same_p[p[r]] += w[r]
        same_m[m[r]] += w[r]
        cross[p[r], m[r]] += w[r]
        rhs_p[p[r]] += w[r] * b[r]
        rhs_m[m[r]] += w[r] * b[r]
    mat = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            diag = same_p[i] + same_m[i] if i == j else 0.0
            mat[i, j] = diag - cross[i, j] - cross[j, i] + (1e-9 if i == j else 0.0)
    return mat, rhs_p[:n] - rhs_m[:n]


ACROSS_ROWS = 4  # MCU rows a run with no border looks up through a hole for placed content


def _across_holes(owner: np.ndarray, pairs: list, cols: int, p: int):
    """For runs that border no other run (a hole a row or more long above and before them), the
    pairs (position, placed position up to ``ACROSS_ROWS`` rows above it in the same column, key)
    through the hole: the levels of rows a few MCUs apart say more of a run's DC than nothing
    does, where no thumbnail is there to say it."""
    bordered = np.zeros(p, bool)
    for t, _, key, _ in pairs:
        bordered[key // p] = True
        bordered[key % p] = True
    t_all = np.flatnonzero(owner >= 0)
    lonely = t_all[~bordered[owner[t_all]]]
    lonely = lonely[(lonely >= cols) & (owner[np.maximum(lonely - cols, 0)] < 0)]  # a hole right above
    ts, ups = [], []
    for k in range(2, ACROSS_ROWS + 1):
        if not lonely.size:
            break
        up = lonely - k * cols
        ok = up >= 0
        ok[ok] &= owner[up[ok]] >= 0
        ok[ok] &= owner[up[ok]] != owner[lonely[ok]]
        ts.append(lonely[ok])
        ups.append(up[ok])
        # a position looks only as far up as the first placed content above it
        lonely = lonely[~ok & (up >= 0)]
    if not ts:
        return None
    return _keyed(np.concatenate(ts), np.concatenate(ups), owner, p)


def _keyed(t: np.ndarray, nb: np.ndarray, owner: np.ndarray, p: int):
    """Pairs of positions (``t``, ``nb``) of two runs, with the key (run of t) * p + (run of
    nb), ordered by it: each key's pairs one boundary between two runs, measured together."""
    key = owner[t] * p + owner[nb]
    order = np.argsort(key, kind="stable")
    return t[order], nb[order], key[order]


def _add_relative(rows: tuple, key: np.ndarray, vals: np.ndarray, p: int) -> None:
    """One measurement per boundary (run of t minus run of nb ≈ the median of its ``vals``,
    weighted by their count and spread) appended to ``rows`` (plus, minus, rhs, weights)."""
    keys, meds, mads, counts = group_median_mad(key, vals)
    rows[0].append(keys // p)
    rows[1].append(keys % p)
    rows[2].append(meds)
    rows[3].append(counts / (1.57 * mads * mads + 0.05))


def _edge_offset(inside: tuple, inner: np.ndarray, outer: np.ndarray, dec: np.ndarray, opts: DCOptions) -> float:
    """The median step (levels) across the edges of MCUs beside one of their own run (``inside``:
    positions and neighbours), where no DC error can lie: the extrapolated edges of a photo's
    content meet a little off 0 on the whole (its curvature is not symmetric), and a chain of
    hundreds of runs joined by boundaries drifts by that much per link unless it is taken off."""
    t, nb = inside
    if not opts.link_bias or t.size < LINK_LEAST:
        return 0.0
    return float(np.median(inner[dec[t]] - outer[dec[nb]]))


def solve_dc(placements: list[Placement], inner: tuple[tuple, tuple], outer: tuple[tuple, tuple], mcu_means,
             units, thumb: np.ndarray | None, cols: int, n: int, opts: DCOptions,
             extremes: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """DC errors of all runs at once, per component: weighted least squares over the relative
    offsets measured across every boundary between two runs and the absolute offsets against the
    thumbnail, with the first run of each restart segment fixed at 0. Solving jointly keeps one
    poorly measured boundary from passing its error down the rest of the image. ``inner`` and
    ``outer``: per component the extrapolated top/left and bottom/right edges of every decoded MCU
    (:func:`acir_core.sca.edges.inward`, :func:`acir_core.sca.edges.outward`), as the shift search uses them.
    ``extremes``: per component the highest and lowest sample on every decoded MCU's border; a
    run's DC is then also kept where its samples stay inside 0..255 (:func:`_within_range`).
    A camera's thumbnail sits off the photo's level as a whole (its own tone): with
    ``opts.thumb_bias`` > 0 (off by default: it cost thumbnails made from the photo) that offset
    is an unknown of the fit too, held near 0 by a prior of that many levels, so the runs' levels
    come from the boundaries to the first run of a segment. Returns the DCs (runs × components)
    and that offset per component (levels, photo minus thumbnail; 0 when not fitted)."""
    p = len(placements)
    k_n = len(units)
    # every run's MCUs where they land (inside their segment), run by run
    dec_all, shift_of, run_of, seg_f, seg_n = per_mcu(placements)
    at = dec_all + shift_of
    ok = (at >= seg_f) & (at < seg_f + seg_n)
    run_of, dec_all, at = run_of[ok], dec_all[ok], at[ok]
    owner = np.full(n, -1, np.int64)
    dec = np.zeros(n, np.int64)
    last = last_landed(at)  # where two runs land on one place, the later one holds it
    owner[at[last]] = run_of[last]
    dec[at[last]] = dec_all[last]
    result = np.zeros((p, k_n), np.int64)
    bias = np.zeros(k_n)
    anchored = np.array([pl.anchored for pl in placements], bool)
    t_all = np.arange(n)
    pairs = []
    inside = []  # per side, MCUs whose neighbour there is of their own run: no step but content's
    for nb, side in ((t_all - cols, 0), (np.where(t_all % cols != 0, t_all - 1, -1), 1)):  # above, left
        ok = (nb >= 0) & (owner >= 0)
        ok[ok] &= owner[nb[ok]] >= 0
        same = ok.copy()
        ok[ok] &= owner[nb[ok]] != owner[ok]
        same &= ~ok
        pairs.append((*_keyed(t_all[ok], nb[ok], owner, p), side))
        inside.append((t_all[same][::LINK_SAMPLE], nb[same][::LINK_SAMPLE]))
    across = _across_holes(owner, pairs, cols, p) if thumb is None else None
    for k, (means, unit) in enumerate(zip(mcu_means, units)):
        plus, minus, rhs, wts = [], [], [], []
        for t, nb, key, side in pairs:
            if t.size == 0:
                continue
            off = _edge_offset(inside[side], inner[side][k], outer[side][k], dec, opts)
            _add_relative((plus, minus, rhs, wts), key, (inner[side][k][dec[t]] - outer[side][k][dec[nb]] - off) / unit, p)
        if across is not None and across[0].size:  # MCU means through a hole, for runs with no border
            t, nb, key = across
            _add_relative((plus, minus, rhs, wts), key, ((means[dec[t]] - means[dec[nb]]) / unit)[:, None], p)
        biased = thumb is not None and run_of.size > 0 and opts.thumb_bias > 0
        if thumb is not None and run_of.size:  # each run's MCUs against the thumbnail where they land
            vals = (means[dec_all] - thumb[at, k]) / unit
            keys, meds, mads, counts = group_median_mad(run_of, vals[:, None])
            if not biased:
                known = anchored[run_of]
                if known.sum() >= ANCHOR_SHARE * known.size:  # what the thumbnail is off by where the level is known
                    meds = meds - float(np.median(vals[known]))
            plus.append(keys)
            # run - bias ≈ offset: the thumbnail's own level (index p) is an unknown of the fit
            minus.append(np.full(keys.size, p if biased else -1, np.int64))
            rhs.append(meds)
            wts.append(opts.thumb_weight * counts / (1.57 * mads * mads + 0.05))
            if biased:  # ... held near 0 by the spread camera thumbnails show
                plus.append(np.array([p], np.int64))
                minus.append(np.array([-1], np.int64))
                rhs.append(np.zeros(1))
                wts.append(np.array([(unit / opts.thumb_bias) ** 2]))
        free = np.flatnonzero(~anchored)
        if not free.size or not plus:
            result[:, k] = [int(round(pl.dc[k])) for pl in placements]
            continue
        col = np.full(p + 2, -1, np.int64)  # column of each unknown (runs, the bias); -1: anchored and index -1
        col[free] = np.arange(free.size)
        col[p] = free.size
        rows = (col[np.concatenate(plus)], col[np.concatenate(minus)], np.concatenate(rhs), np.concatenate(wts))
        bounds = None
        if extremes is not None and (thumb is None or opts.range_thumb):
            lo, hi = _run_bounds(placements, extremes[k], unit, opts.range_slack)
            bounds = (np.append(lo[free], -np.inf), np.append(hi[free], np.inf))
        sol = _within_range(rows, bounds, free.size + 1, opts)
        result[free, k] = np.rint(sol[:free.size]).astype(np.int64)
        bias[k] = -float(sol[free.size]) * unit
    return result, bias


def _run_bounds(placements: list[Placement], extreme: tuple, unit: float, slack: float):
    """Per run, the DC corrections (DC steps) that keep its samples inside 0..255 give or take
    ``slack`` levels: the encoder saw no others, and a JPEG's ringing passes them by a few levels
    at most. Garbage the decoder read before it noticed an error lies out of range too, and
    reaches tens of MCUs before the resync, so the run is judged in stretches of ``RANGE_CHUNK``
    MCUs and the ``RANGE_SPARE`` most extreme stretches have no say. -inf / inf: no bound."""
    top_s, bottom_s = extreme
    p = len(placements)
    lo, hi = np.full(p, -np.inf), np.full(p, np.inf)
    for i, pl in enumerate(placements):
        m = pl.run.trusted
        chunks = m.size // RANGE_CHUNK
        if chunks <= RANGE_SPARE:
            continue
        m = m[: chunks * RANGE_CHUNK]
        tops = np.sort(top_s[m].reshape(chunks, RANGE_CHUNK).max(axis=1))[-1 - RANGE_SPARE]
        bottoms = np.sort(bottom_s[m].reshape(chunks, RANGE_CHUNK).min(axis=1))[RANGE_SPARE]
        a, b = np.ceil((tops - 255.0 - slack) / unit), np.floor((bottoms + slack) / unit)
        if a <= b:  # a run that spans more than the range holds garbage: it gets no bound
            lo[i], hi[i] = a, b
    return lo, hi


def _within_range(rows: tuple, bounds: tuple | None, n: int, opts: DCOptions) -> np.ndarray:
    """The fit of ``rows`` (plus, minus, rhs, weights), then, for as long as some run's DC falls
    outside its ``bounds`` (lo, hi), those runs held at the bound they pass and the fit made again:
    a chain of boundaries can drift a whole region of the photo tens of levels off with no
    thumbnail to say so, and the range is what stops it."""
    plus, minus, rhs, wts = rows
    sol = reweighted_differences(plus, minus, rhs, wts, n, opts.rounds, opts.scale)
    if bounds is None or not n:
        return sol
    lo, hi = bounds
    held = np.zeros(n, bool)
    big = 1e3 * float(wts.max()) if wts.size else 1.0
    for _ in range(opts.range_rounds):
        out = ~held & ((sol < lo - 0.5) | (sol > hi + 0.5))
        if not out.any():
            break
        idx = np.flatnonzero(out)
        plus = np.concatenate([plus, idx])
        minus = np.concatenate([minus, np.full(idx.size, -1, np.int64)])
        rhs = np.concatenate([rhs, np.where(sol[idx] < lo[idx], lo[idx], hi[idx])])
        wts = np.concatenate([wts, np.full(idx.size, big)])
        held[idx] = True
        sol = reweighted_differences(plus, minus, rhs, wts, n, opts.rounds, opts.scale)
    return sol
