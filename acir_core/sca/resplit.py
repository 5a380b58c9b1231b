"""Runs that hold a silent break, found once every run is placed.

Garbage that decodes without a failure can still gain or lose an MCU or two: from there on the
run's MCUs belong one or two places further left or right. The search places a run by its first
row and the dynamic programme by its neighbours, so the part of a run beyond such a break (or
before it) lands one MCU off, and in texture that shows only against the content around it. Once
everything is placed, the rows where the run meets other content are judged at the shifts either
side: where the first row after some MCU, or the run's last row, joins what lies above or below
it clearly better a place or two aside, the run is cut there and that piece moved.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.sca.dcfit import Placement
from acir_core.sca.options import RunOptions
from acir_core.sca.recheck import _claim
from acir_core.sca.runs import split_at

RESPLIT_DELTAS = (-2, -1, 1, 2)  # moves tried: a silent break gains or loses an MCU or two
RESPLIT_RATIO = 0.3  # a piece moves where its borders then cost at most 1 - this share of where it is ...
RESPLIT_LEVELS = 0.5  # ... and this many levels less per bordering MCU
RESPLIT_PAIRS = 12  # bordering MCUs a move needs to be judged
RESPLIT_PIECE = 8  # MCUs a moved piece, and the piece left in place, must keep
RESPLIT_PASSES = 3  # passes over the runs (a moved piece changes its neighbours' borders)


@njit(cache=True)
def side_costs(m, shift, f, cnt, cols, owner, dec, mine, theirs, below):
    """Per MCU of ``m`` placed at ``m + shift``: the mean absolute step across its top (or, with
    ``below``, bottom) border to the MCU placed there, once the median step is taken off (a DC
    the break may have changed says nothing), averaged over components; nan where nothing is
    placed next to it. ``mine`` / ``theirs``: per component the edges meeting there."""
    n = owner.size
    out = np.full(m.size, np.nan)
    for q in range(m.size):
        i = m[q]
        t = i + shift
        if t < f or t >= f + cnt:
            continue
        nb = t + cols if below else t - cols
        if nb < 0 or nb >= n or owner[nb] < 0:
            continue
        j = dec[nb]
        total = 0.0
        for k in range(len(mine)):
            a = mine[k]
            b = theirs[k]
            w = a.shape[1]
            v = np.empty(w)
            for x in range(w):
                v[x] = a[i, x] - b[j, x]
            med = np.median(v)
            s = 0.0
            for x in range(w):
                s += abs(v[x] - med)
            total += s / w
        out[q] = total / len(mine)
    return out


def _window_sums(vals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of ``vals`` over [lo, hi) for each pair."""
    cs = np.concatenate([[0.0], np.cumsum(vals)])
    return cs[hi] - cs[np.maximum(lo, 0)] if lo.size else np.zeros(0)


def _best_move(m: np.ndarray, here: tuple, moved: tuple, cols: int, anchored: bool):
    """The clearest move of one run's head or tail by one delta: (gain, index of the cut in
    ``m``, moves the tail) or None. ``here`` / ``moved``: per MCU its (top, bottom) border costs
    at the run's shift and at the moved one."""
    size = m.size
    gains = []
    for side in (0, 1):
        a, b = here[side], moved[side]
        ok = ~np.isnan(a) & ~np.isnan(b)
        gains.append((np.where(ok, a - b, 0.0), np.where(ok, a, 0.0), ok.astype(np.float64)))
    # the tail from cut c: its first row judged against what lies above, the run's last row below
    c = np.arange(0 if not anchored else RESPLIT_PIECE, size - RESPLIT_PIECE + 1)
    if c.size == 0:
        return None
    first_row_end = np.searchsorted(m, m[c] + cols)
    last_row = np.searchsorted(m, m[-1] - cols + 1)
    best = None
    for tail in (True, False):
        if tail:
            top_lo, top_hi = c, first_row_end
            bot_lo, bot_hi = np.maximum(c, last_row), np.full(c.size, size)
            cuts = c
        else:
            cc = c[c >= RESPLIT_PIECE]
            if cc.size == 0:
                continue
            top_lo, top_hi = np.zeros(cc.size, np.int64), np.minimum(np.searchsorted(m, m[0] + cols), cc)
            bot_lo, bot_hi = np.searchsorted(m, m[cc - 1] - cols + 1), cc
            cuts = cc
        parts = []
        for g in range(3):
            parts.append(_window_sums(gains[0][g], top_lo, top_hi) + _window_sums(gains[1][g], bot_lo, bot_hi))
        gain, base, pairs = parts
        ok = (pairs >= RESPLIT_PAIRS) & (gain >= RESPLIT_RATIO * base) & (gain >= RESPLIT_LEVELS * pairs)
        if not ok.any():
            continue
        k = int(np.argmax(np.where(ok, gain / np.maximum(pairs, 1), -np.inf)))
        cand = (float(gain[k] / pairs[k]), int(cuts[k]), tail)
        if best is None or cand[0] > best[0]:
            best = cand
    return best


def resplit(placements: list[Placement], edges: tuple, cols: int, n: int, opts: RunOptions) -> int:
    """Cut runs whose head or tail joins the content around it clearly better an MCU or two
    aside, and move that piece there (``placements`` changed in place: the pieces replace the
    run, in decode order; a moved whole run keeps its place in the list). ``edges``: (inner,
    outer) as for :func:`acir_core.sca.recheck.recheck`. Returns the number of moves."""
    (tops, _), (bottoms, _) = edges
    total = 0
    for _ in range(RESPLIT_PASSES):
        owner = np.full(n, -1, np.int64)
        dec = np.zeros(n, np.int64)
        for r, pl in enumerate(placements):
            _claim(owner, dec, r, pl.run.trusted, pl.shift, pl.first, pl.count)
        out: list[Placement] = []
        moves = 0
        for pl in placements:
            m = pl.run.trusted
            if m.size < 2 * RESPLIT_PIECE and not (m.size >= RESPLIT_PIECE and not pl.anchored):
                out.append(pl)
                continue
            args = (pl.first, pl.count, cols, owner, dec)
            here = (side_costs(m, pl.shift, *args, tops, bottoms, False),
                    side_costs(m, pl.shift, *args, bottoms, tops, True))
            best = None
            for delta in RESPLIT_DELTAS:
                moved = (side_costs(m, pl.shift + delta, *args, tops, bottoms, False),
                         side_costs(m, pl.shift + delta, *args, bottoms, tops, True))
                found = _best_move(m, here, moved, cols, pl.anchored)
                if found is not None and (best is None or found[0] > best[0]):
                    best = (*found, delta)
            if best is None:
                out.append(pl)
                continue
            _, cut, tail, delta = best
            moves += 1
            if cut == 0:
                out.append(Placement(run=pl.run, shift=pl.shift + delta, dc=pl.dc, cost=pl.cost,
                                     anchored=pl.anchored, first=pl.first, count=pl.count))
                continue
            head, rest = split_at(pl.run, cut, int(m[cut]), opts)
            for piece, moves_it in ((head, not tail), (rest, tail)):
                if piece.trusted.size:
                    out.append(Placement(run=piece, shift=pl.shift + (delta if moves_it else 0), dc=pl.dc,
                                         cost=pl.cost, anchored=pl.anchored and piece is head, first=pl.first,
                                         count=pl.count))
        placements[:] = out
        total += moves
        if not moves:
            break
    return total

