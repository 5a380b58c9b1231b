"""A run its trusted neighbours vouch for, whatever its placing cost said.

A run's placing cost is the mean step across its first row's top edge and its first MCU's left
edge, to whatever was placed there: garbage or a run one row up that failed to place makes a run
placed right look wrong, and in a detailed 10 Mpx photo the cost of a run placed right varies
more than the confidence margin allows. Once every run is placed and its DC solved, the steps
between a run and the confidently placed runs above it are compared with the steps inside the
run itself: a run placed right (shift and DC) joins them as smoothly as it joins itself.
"""
from __future__ import annotations

import numpy as np

from acir_core.sca.dcfit import Placement, group_median_mad

VOUCH_PAIRS = 32  # MCU pairs across a run's border with trusted runs needed to judge it
VOUCH_RATIO = 1.5  # times its own inner step the border's median step may be ...
VOUCH_LEVELS = 1.0  # ... or this many levels more, whichever is larger


def _steps(top: tuple, bottom: tuple, lower: np.ndarray, upper: np.ndarray, dc_lower: np.ndarray,
           dc_upper: np.ndarray, units) -> np.ndarray:
    """Per pair: the mean absolute step between MCU ``lower``'s top (or left) edge and MCU
    ``upper``'s bottom (or right) edge (decoded indices), each with its run's DC correction,
    averaged over components."""
    out = np.zeros(lower.size)
    for k, unit in enumerate(units):
        shift = (dc_upper[:, k] - dc_lower[:, k]) * float(unit)
        out += np.mean(np.abs(top[k][lower] - bottom[k][upper] + shift[:, None]), axis=1)
    return out / len(units)


def position_maps(landed: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per position (of ``n``): the index of the run that landed there and the decoded MCU it put
    there (-1: none), from each run's (decoded MCUs, positions); a later run wins where two land,
    as the placing does."""
    run_at = np.full(n, -1, np.int64)
    dec_at = np.full(n, -1, np.int64)
    for i, (m, t) in enumerate(landed):
        run_at[t] = i
        dec_at[t] = m
    return run_at, dec_at


def vouched(placements: list[Placement], solved: np.ndarray, top: tuple, bottom: tuple, units,
            cols: int, n: int, trusted: np.ndarray) -> np.ndarray:
    """Per placement: whether the runs already ``trusted`` (bool per placement) above it vouch
    for it: ``VOUCH_PAIRS`` or more vertical MCU pairs across its border with them, whose median
    step is within ``VOUCH_RATIO`` × (or ``VOUCH_LEVELS`` above) the median step between the
    run's own rows. ``top``, ``bottom``: per component the inward top and outward bottom edges
    of every decoded MCU (levels); ``solved``: the runs' DC corrections (P, K) in DC steps."""
    p = len(placements)
    out = np.zeros(p, bool)
    if p == 0 or cols <= 0 or trusted.all():  # nothing left to vouch for
        return out
    landed = []
    for pl in placements:
        m = pl.run.trusted.astype(np.int64)
        t = m + pl.shift
        ok = (t >= pl.first) & (t < pl.first + pl.count)
        landed.append((m[ok], t[ok]))
    run_at, dec_at = position_maps(landed, n)
    pos = np.arange(cols, n)
    below, above = run_at[pos], run_at[pos - cols]
    ok = (below >= 0) & (above >= 0)
    pos, below, above = pos[ok], below[ok], above[ok]
    lower, upper = dec_at[pos], dec_at[pos - cols]
    dcs = np.asarray(solved, np.float64).reshape(p, -1)
    steps = _steps(top, bottom, lower, upper, dcs[below], dcs[above], units)
    inner = below == above
    border = ~inner & trusted[above]
    for i in np.unique(below[border]):
        if trusted[i]:
            continue
        b = steps[border & (below == i)]
        own = steps[inner & (below == i)]
        if b.size < VOUCH_PAIRS or own.size < VOUCH_PAIRS:
            continue
        base = float(np.median(own))
        out[i] = float(np.median(b)) <= max(VOUCH_RATIO * base, base + VOUCH_LEVELS)
    return out


CLEAR_RATIO = 1.5  # times the run's typical step an MCU's worst join to trusted neighbours may be ...
CLEAR_LEVELS = 1.0  # ... or this many levels more, whichever is larger
CLEAR_SIDES = 2  # trusted neighbours (of four) an MCU needs to be cleared


def cleared(doubted: np.ndarray, trusted: np.ndarray, dec_at: np.ndarray, dc_at: np.ndarray, run_at: np.ndarray,
            inner: tuple[tuple, tuple], outer: tuple[tuple, tuple], units, cols: int) -> np.ndarray:
    """The precautionary MCUs (``doubted``, per position) that join their trusted neighbours as
    smoothly as the MCUs of their own run join each other: ``CLEAR_SIDES`` or more of the four
    neighbours trusted, and the worst of those joins within ``CLEAR_RATIO`` × (or
    ``CLEAR_LEVELS`` above) the median join inside the run. Garbage decoded just before a failure
    or just after a resume has coefficients of another stretch of the stream, and breaks its
    borders. ``dec_at``, ``dc_at`` (P, K DC steps), ``run_at``: per position the decoded MCU
    there, its DC correction and its run (-1: none); ``inner``/``outer``: per side (top, left)
    and component the inward and outward edges of every decoded MCU."""
    n = doubted.size
    out = np.zeros(n, bool)
    cand = np.flatnonzero(doubted & (dec_at >= 0))
    if cand.size == 0:
        return out
    pos = np.arange(n)
    col = pos % cols
    # every join between two placed, trusted positions: (lower/right position, upper/left one, side)
    joins = []
    for side, nb in ((0, pos - cols), (1, np.where(col > 0, pos - 1, -1))):
        ok = (nb >= 0) & (dec_at >= 0)
        ok[ok] &= dec_at[nb[ok]] >= 0
        joins.append((pos[ok], nb[ok], side))
    steps = [_steps(inner[side], outer[side], dec_at[a], dec_at[b], dc_at[a], dc_at[b], units)
             for a, b, side in joins]
    a_all = np.concatenate([j[0] for j in joins])
    b_all = np.concatenate([j[1] for j in joins])
    s_all = np.concatenate(steps)
    sure = trusted & ~doubted
    # each run's typical join between its own sure MCUs
    same = (run_at[a_all] == run_at[b_all]) & sure[a_all] & sure[b_all]
    typical = np.full(int(run_at.max()) + 1 if run_at.size else 0, np.inf)
    if same.any():
        runs = run_at[a_all[same]]
        order = np.argsort(runs, kind="stable")
        keys, meds, _, counts = group_median_mad(runs[order], s_all[same][order][:, None])
        typical[keys[counts >= 16]] = meds[counts >= 16]
    # per candidate: its joins to sure neighbours, either side of it
    worst = np.zeros(n)
    count = np.zeros(n, np.int64)
    for x, y in ((a_all, b_all), (b_all, a_all)):
        use = doubted[x] & sure[y]
        np.maximum.at(worst, x[use], s_all[use])
        np.add.at(count, x[use], 1)
    ref = typical[np.maximum(run_at, 0)]
    ok = (count >= CLEAR_SIDES) & np.isfinite(ref) & (worst <= np.maximum(CLEAR_RATIO * ref, ref + CLEAR_LEVELS))
    out[cand] = ok[cand]
    return out
