"""Short runs judged again once every run is placed: by all four borders, not the two before them.

The shift search places runs in decode order, each against what lies above and before it. A run
placed one MCU off leaves the runs after it a choice between matching it (and being off as well)
or the truth; in smooth content the edges barely tell them apart, so whole stretches of runs lock
in one MCU off. Once everything is placed, a run's borders below and after it are known too, and
most of its neighbours are right: judged on all four, a locked-in run shows where it belongs.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from numba import njit

from acir_core.sca.dcfit import Placement
from acir_core.sca.median import median

RECHECK_REACH = 3  # shifts either side of the search's that are judged (a move lands strictly inside them)
RECHECK_RATIO = 0.8  # a run moves where its borders cost at most this share of where it is ...
RECHECK_LEVELS = 0.25  # ... and this many levels less
RECHECK_PAIRS = 4  # bordering MCUs a shift needs to be judged (and one per MCU of the run)
RECHECK_MIN = 16  # MCUs a run needs to be judged again (a few MCUs move wherever garbage lets them)
RECHECK_PASSES = 3  # passes over the runs (a moved run changes its neighbours' borders)


def _maps(placements: list[Placement], solved: np.ndarray, units, n: int):
    """Per position: the placement holding it (later runs win; -1: nothing placed) and the
    decoded MCU there; per run its DC correction per component in levels (K, runs)."""
    owner = np.full(n, -1, np.int64)
    dec = np.zeros(n, np.int64)
    for r, pl in enumerate(placements):
        _claim(owner, dec, r, pl.run.trusted, pl.shift, pl.first, pl.count)
    off = np.stack([-solved[:, k] * unit for k, unit in enumerate(units)]).astype(np.float64)
    return owner, dec, off


@njit(cache=True)
def _claim(owner, dec, r, m, shift, f, cnt) -> None:
    for q in range(m.size):
        t = m[q] + shift
        if f <= t < f + cnt:
            owner[t] = r
            dec[t] = m[q]


@njit(cache=True)
def _release(owner, r, m, shift, f, cnt) -> None:
    for q in range(m.size):
        t = m[q] + shift
        if f <= t < f + cnt and owner[t] == r:
            owner[t] = -1


@njit(cache=True)
def _beside(t: int, side: int, cols: int, n: int) -> int:
    """The position next to ``t`` above (side 0), before (1), below (2) or after (3) it, in the
    same row for 1 and 3; -1 where there is none."""
    if side == 0:
        return t - cols if t >= cols else -1
    if side == 1:
        return t - 1 if t % cols != 0 else -1
    if side == 2:
        return t + cols if t + cols < n else -1
    return t + 1 if (t + 1) % cols != 0 and t + 1 < n else -1


@njit(cache=True)
def border_cost(r, m, shift, f, cnt, cols, owner, dec, off, tops, lefts, bottoms, rights) -> float:
    """Mean absolute step across the borders of run ``r`` (decoded MCUs ``m``) at ``shift`` to the
    MCUs of other runs around it, above, below, before and after, once its own DC (the median
    step) is taken off; averaged over components. ``tops`` .. ``rights``: per component every
    decoded MCU's edges (top and left extrapolated inwards, bottom and right outwards); ``off``:
    per component and run the DC correction in levels. ``inf`` where fewer than
    ``RECHECK_PAIRS`` MCUs (and one per MCU of the run) border it."""
    n = owner.size
    pairs = 0
    for q in range(m.size):
        t = m[q] + shift
        if f <= t < f + cnt:
            for side in range(4):
                nb = _beside(t, side, cols, n)
                if nb >= 0 and owner[nb] >= 0 and owner[nb] != r:
                    pairs += 1
    if pairs < max(RECHECK_PAIRS, m.size):
        return np.inf
    total = 0.0
    for k in range(len(tops)):
        vals = np.empty(pairs * max(tops[k].shape[1], lefts[k].shape[1]))
        v = 0
        for q in range(m.size):
            i = m[q]
            t = i + shift
            if t < f or t >= f + cnt:
                continue
            for side in range(4):
                nb = _beside(t, side, cols, n)
                if nb < 0 or owner[nb] < 0 or owner[nb] == r:
                    continue
                j, o = dec[nb], off[k, owner[nb]]
                # above / before: my top / left against their bottom / right; below / after: the other way
                mine = (tops, lefts, bottoms, rights)[side][k]
                theirs = (bottoms, rights, tops, lefts)[side][k]
                for x in range(mine.shape[1]):
                    vals[v] = mine[i, x] - theirs[j, x] - o
                    v += 1
        med = median(vals[:v], 0.5)
        total += np.mean(np.abs(vals[:v] - med))
    return total / len(tops)


def recheck(placements: list[Placement], solved: np.ndarray, edges: tuple, units, cols: int,
            n: int) -> list[int]:
    """Runs of at most a row whose borders on all four sides fit another shift within
    ``RECHECK_REACH`` of the search's clearly better are moved there (``placements`` changed in place; the first
    run of a restart interval stays). ``edges``: (inner, outer), per component every decoded MCU's
    top and left edges extrapolated inwards and bottom and right ones outwards. Returns the
    indices of the runs moved."""
    moved: list[int] = []
    (tops, lefts), (bottoms, rights) = edges
    owner, dec, off = _maps(placements, solved, units, n)
    searched = [pl.shift for pl in placements]  # a run moves at most RECHECK_REACH from where the search put it
    # a run judged and left is judged again only if a move since changed the owners around it
    changed_at = np.full(n, -1, np.int64)  # per position: the clock of the last move that claimed or left it
    seen = np.full(len(placements), -1, np.int64)  # per run: the clock when it was last judged and left
    clock = 0
    for _ in range(RECHECK_PASSES):
        changed = False
        for r, pl in enumerate(placements):
            m = pl.run.trusted
            if pl.anchored or m.size > cols or m.size < RECHECK_MIN:
                continue
            lo = max(int(m.min()) + searched[r] - RECHECK_REACH - cols - 1, 0)
            hi = min(int(m.max()) + searched[r] + RECHECK_REACH + cols + 2, n)
            if seen[r] >= 0 and (hi <= lo or changed_at[lo:hi].max() < seen[r]):
                continue

            def cost(shift: int) -> float:
                return border_cost(r, m, shift, pl.first, pl.count, cols, owner, dec, off, tops, lefts, bottoms,
                                   rights)
            seen[r] = clock
            here = cost(pl.shift)
            if not np.isfinite(here):
                continue
            best, best_s = here, pl.shift
            for shift in range(searched[r] - RECHECK_REACH, searched[r] + RECHECK_REACH + 1):
                c = cost(shift) if shift != pl.shift else np.inf
                if c < best:
                    best, best_s = c, shift
            inside = abs(best_s - searched[r]) < RECHECK_REACH  # a minimum, not a slope running on past the reach
            if best_s != pl.shift and inside and best <= RECHECK_RATIO * here and here - best >= RECHECK_LEVELS:
                _release(owner, r, m, pl.shift, pl.first, pl.count)
                _claim(owner, dec, r, m, best_s, pl.first, pl.count)
                for s in (pl.shift, best_s):
                    t = m + s
                    changed_at[t[(t >= pl.first) & (t < pl.first + pl.count)]] = clock
                clock += 1
                seen[r] = -1
                placements[r] = replace(pl, shift=best_s, cost=pl.cost * best / here)
                moved.append(r)
                changed = True
        if not changed:
            break
    return moved
