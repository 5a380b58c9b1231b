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

from acir_core.sca.dcfit import Placement

RECHECK_REACH = 2  # shifts either side of a run's own that are judged
RECHECK_RATIO = 0.8  # a run moves where its borders cost at most this share of where it is ...
RECHECK_LEVELS = 0.25  # ... and this many levels less
RECHECK_PAIRS = 4  # bordering MCUs a shift needs to be judged
RECHECK_PASSES = 3  # passes over the runs (a moved run changes its neighbours' borders)


def _maps(placements: list[Placement], solved: np.ndarray, units, n: int):
    """Per position: the placement holding it (later runs win), the decoded MCU there and its DC
    correction per component in levels (-1 / 0 where nothing is placed)."""
    owner = np.full(n, -1, np.int64)
    dec = np.zeros(n, np.int64)
    for r, pl in enumerate(placements):
        m = pl.run.trusted
        t = m + pl.shift
        ok = (t >= pl.first) & (t < pl.first + pl.count)
        owner[t[ok]] = r
        dec[t[ok]] = m[ok]
    off = [np.where(owner >= 0, -solved[np.maximum(owner, 0), k] * unit, 0.0) for k, unit in enumerate(units)]
    return owner, dec, off


def border_cost(r: int, pl: Placement, shift: int, maps: tuple, edges: tuple, cols: int, n: int) -> float:
    """Mean absolute step across the borders of run ``r`` at ``shift`` to the MCUs of other runs
    around it, above, below, before and after, once its own DC (the median step) is taken off;
    averaged over components. ``inf`` where fewer than ``RECHECK_PAIRS`` MCUs border it."""
    owner, dec, off = maps
    inner, outer = edges
    m = pl.run.trusted
    t = m + shift
    valid = (t >= pl.first) & (t < pl.first + pl.count)
    sides = []
    for nb, ok, mine, theirs in (
            (t - cols, valid & (t >= cols), inner[0], outer[0]),  # above: my top, their bottom
            (t - 1, valid & (t % cols != 0), inner[1], outer[1]),  # before: my left, their right
            (t + cols, valid & (t + cols < n), outer[0], inner[0]),  # below: my bottom, their top
            (t + 1, valid & ((t + 1) % cols != 0) & (t + 1 < n), outer[1], inner[1])):  # after
        ok = ok.copy()
        ok[ok] &= owner[nb[ok]] >= 0
        ok[ok] &= owner[nb[ok]] != r
        sides.append((nb[ok], m[ok], mine, theirs))
    if sum(s[0].size for s in sides) < RECHECK_PAIRS:
        return np.inf
    total = 0.0
    for k in range(len(off)):
        vals = np.concatenate([mine[k][i] - (theirs[k][dec[nb]] + off[k][nb][:, None])
                               for nb, i, mine, theirs in sides if nb.size], axis=None)
        total += float(np.mean(np.abs(vals - np.median(vals))))
    return total / len(off)


def recheck(placements: list[Placement], solved: np.ndarray, edges: tuple, units, cols: int,
            n: int) -> list[int]:
    """Runs of at most a row whose borders on all four sides fit another shift within
    ``RECHECK_REACH`` clearly better are moved there (``placements`` changed in place; the first
    run of a restart interval stays). ``edges``: (inner, outer), per component every decoded MCU's
    top and left edges extrapolated inwards and bottom and right ones outwards. Returns the
    indices of the runs moved."""
    moved: list[int] = []
    for _ in range(RECHECK_PASSES):
        maps = _maps(placements, solved, units, n)
        changed = False
        for r, pl in enumerate(placements):
            if pl.anchored or pl.run.trusted.size > cols or pl.run.trusted.size < RECHECK_PAIRS:
                continue
            here = border_cost(r, pl, pl.shift, maps, edges, cols, n)
            if not np.isfinite(here):
                continue
            best, best_s = here, pl.shift
            for d in range(-RECHECK_REACH, RECHECK_REACH + 1):
                if d == 0:
                    continue
                c = border_cost(r, pl, pl.shift + d, maps, edges, cols, n)
                if c < best:
                    best, best_s = c, pl.shift + d
            if best_s != pl.shift and best <= RECHECK_RATIO * here and here - best >= RECHECK_LEVELS:
                placements[r] = replace(pl, shift=best_s, cost=pl.cost * best / here)
                maps = _maps(placements, solved, units, n)
                moved.append(r)
                changed = True
        if not changed:
            break
    return moved
