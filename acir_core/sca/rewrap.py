"""Stretches of runs whose row wraps say they sit an MCU or two off, moved together.

A run decoded in order holds, at every row start, an MCU whose predecessor in the decode is the
last MCU of the row above: not its neighbour, so the step between the two is large. Placed at its
true shift, those steps fall where the rows wrap; placed an MCU off, they fall one MCU inside a
row and a step between true neighbours sits at the wrap. Once one run is placed off, the next
ones join it best where they are (their borders with it fit), and a stretch of runs locks in off
together; each run's own wraps still say where it belongs. In smooth content a wrap says little,
so a stretch moves only when the wraps of its runs agree: enough of them, nearly all pointing the
same way, and its borders with runs that never move do not say otherwise. Borders with other runs
weigh less, by as much as the wraps stand out: those runs may have locked in off with it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.recheck import _claim
from acir_core.sca.resplit import border_table
from acir_core.sca.shifts import seam_steps

REWRAP_DELTAS = (-1, 1, -2, 2)  # moves tried, in this order (a silent break gains or loses an MCU or two)
REWRAP_LEVELS = 2.0  # levels the wraps at the moved place must stand out by, more than at the current one (median)
REWRAP_HERE = 0.5  # levels the current wraps may stand out by at most (median): there the rows do not wrap ...
REWRAP_HERE_SHARE = 0.2  # ... or this share of how far the wraps aside stand out, where that is more
REWRAP_SAMPLES = 4  # row wraps a stretch needs to be moved
REWRAP_AGREE = 0.9  # share of them that must point the same way
REWRAP_GAP = 64  # decoded MCUs of garbage between two runs that a stretch may span
REWRAP_BORDERS = 0.5  # levels per bordering MCU the borders with held runs may cost more once moved ...
REWRAP_TRUST = 1.0  # ... with other runs, this share of how far the wraps aside stand out (median) more


def wrap_evidence(steps: np.ndarray, pos: np.ndarray, cols: int, delta: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row wrap of a run at ``delta`` MCUs from where it is: how much more the seam step there
    (the MCU at a row's start against its predecessor in the decode, ``steps``, -1: none) stands
    out from the run's median step than the step at its current wrap in that row (0 where that
    one does not stand out or is not in the run); and per current wrap how much its step stands
    out. ``pos``: the run's MCUs' positions (ascending)."""
    excess = _excess(steps)
    if excess is None:
        return np.zeros(0), np.zeros(0)
    return _evidence(excess, pos, cols, delta)


def _excess(steps: np.ndarray) -> np.ndarray | None:
    """The seam steps less their median, nan where there is none (None with fewer than 8)."""
    valid = steps >= 0
    if valid.sum() < 8:
        return None
    return np.where(valid, steps - float(np.median(steps[valid])), np.nan)


def _evidence(excess: np.ndarray, pos: np.ndarray, cols: int, delta: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wrap_evidence` from the steps' excess (:func:`_excess`)."""
    valid = ~np.isnan(excess)
    here = valid & (pos % cols == 0)
    at = valid & ((pos + delta) % cols == 0)
    rows_here, ex_here = pos[here] // cols, excess[here]
    rows_at = (pos[at] + delta) // cols
    now = np.zeros(rows_at.size)
    if rows_here.size:
        k = np.minimum(np.searchsorted(rows_here, rows_at), rows_here.size - 1)
        match = rows_here[k] == rows_at
        now[match] = np.maximum(ex_here[k[match]], 0.0)
    return excess[at] - now, ex_here.astype(np.float64)


def _agrees(d: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether wraps (:func:`wrap_evidence`: how much more they stand out aside, and how much
    at the current place) agree that the rows wrap aside and not here."""
    aside, here = d
    if not aside.size:
        return False
    level = float(np.median(aside))
    return level >= REWRAP_LEVELS and float((aside > 0).mean()) >= REWRAP_AGREE and \
        (not here.size or float(np.median(here)) <= _here_allowed(level))


def _here_allowed(level: float) -> float:
    """How far, in levels (median), the current wraps may stand out where the wraps aside stand
    out by ``level``: next to the step of a whole row's width, a level or two is texture."""
    return max(REWRAP_HERE, REWRAP_HERE_SHARE * level)


def rewrap(placements: list[Placement], edges: tuple, cols: int, fixed: np.ndarray) -> int:
    """Move stretches of consecutive runs (one restart interval, garbage of at most
    ``REWRAP_GAP`` MCUs between them) by the delta their row wraps agree on
    (``placements`` changed in place): a stretch starts at a run whose wraps agree on it
    (:func:`wrap_evidence`: median ``REWRAP_LEVELS``, ``REWRAP_AGREE`` of them positive, the
    current wraps standing out by :func:`_here_allowed` at most), takes in the runs after it that agree
    or have no wrap aside to say, and stops at one that says otherwise (its wraps aside do not
    agree, or its current ones stand out by more than the first run's evidence allows) or is ``fixed`` (an interval's first run, one held to its interval's end, one in
    an interval decoded as written); it moves with ``REWRAP_SAMPLES`` wraps or more among its
    runs where its borders (:func:`_border_gain`) cost at most ``REWRAP_BORDERS`` levels per
    MCU more with ``fixed`` runs, and that plus ``REWRAP_TRUST`` × the wraps' median with the
    others. ``edges``: (inner, outer) per side and component as for
    :func:`acir_core.sca.recheck.recheck`. Returns the number of runs moved."""
    lefts, outer_rights = edges[0][1], edges[1][1]
    excess = [None if fixed[r] or not pl.run.trusted.size else _excess(seam_steps(lefts, outer_rights, pl.run.trusted))
              for r, pl in enumerate(placements)]
    moved = np.zeros(len(placements), bool)
    none = (np.zeros(0), np.zeros(0))
    total = 0
    for delta in REWRAP_DELTAS:
        evidence = [none if ex is None or moved[r] else
                    _evidence(ex, placements[r].run.trusted + placements[r].shift, cols, delta)
                    for r, ex in enumerate(excess)]
        owner = dec = None
        r = 0
        while r < len(placements):
            if fixed[r] or moved[r] or not _agrees(evidence[r]):
                r += 1
                continue
            pool, last, q = [evidence[r]], r, r
            allowed_here = _here_allowed(float(np.median(evidence[r][0])))
            while q + 1 < len(placements) and not fixed[q + 1] and not moved[q + 1] and \
                    placements[q + 1].first == placements[r].first and \
                    placements[q + 1].run.first - placements[q].run.end <= REWRAP_GAP:
                e = evidence[q + 1]
                if (e[0].size and not _agrees(e)) or (e[1].size and float(np.median(e[1])) > allowed_here):
                    break  # it says otherwise: its rows wrap aside the wrong way, or where they are
                q += 1
                if e[0].size:
                    pool.append(e)
                    last = q
            both = (np.concatenate([e[0] for e in pool]), np.concatenate([e[1] for e in pool]))
            if both[0].size >= REWRAP_SAMPLES and _agrees(both) and _inside(placements[r:last + 1], delta):
                if owner is None:
                    owner, dec = _owners(placements, edges[0][0][0].shape[0])
                gain, pairs = _border_gain(placements, r, last, delta, owner, dec, edges, cols, fixed)
                allowed = (REWRAP_BORDERS, REWRAP_BORDERS + REWRAP_TRUST * float(np.median(both[0])))
                if gain[0] < -allowed[0] * pairs[0] or gain[1] < -allowed[1] * pairs[1]:
                    r = last + 1
                    continue
                for k in range(r, last + 1):
                    placements[k] = replace(placements[k], shift=placements[k].shift + delta)
                    moved[k] = True
                total += last + 1 - r
                owner = None  # where runs lie changed
            r = last + 1
    return total


def held(placements: list[Placement], sound) -> np.ndarray:
    """Per placement, whether it never moves: the first run of its restart interval, a run of an
    interval decoded as written (first MCUs in ``sound``), one without MCUs to place, one whose
    last MCU sits on its interval's last position (the search held it to the interval's end)."""
    return np.array([pl.anchored or pl.first in sound or not pl.run.trusted.size
                     or int(pl.run.trusted[-1]) + pl.shift == pl.first + pl.count - 1 for pl in placements], bool)


def _owners(placements: list[Placement], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per position, the index of the placement there (-1: none; a later one's where two land)
    and the decoded MCU it put there."""
    owner = np.full(n, -1, np.int64)
    dec = np.zeros(n, np.int64)
    for r, pl in enumerate(placements):
        _claim(owner, dec, r, pl.run.trusted, pl.shift, pl.first, pl.count)
    return owner, dec


def _border_gain(placements: list[Placement], r1: int, r2: int, delta: int, owner: np.ndarray, dec: np.ndarray,
                 edges: tuple, cols: int, fixed: np.ndarray) -> tuple[tuple[float, float], tuple[int, int]]:
    """How much the luma borders of runs ``r1..r2`` with the content above and below them that
    other runs placed cost less moved by ``delta`` than where they are
    (:func:`acir_core.sca.resplit.border_table`, summed over the MCUs bordering other runs at
    both places), and over how many MCU borders: (held: a ``fixed`` run beside it at either
    place; the others). A held run is where it belongs; any other may have locked in off with the
    stretch, and a border with it then fits only while the stretch stays off."""
    tops, bottoms = edges[0][0][:1], edges[1][0][:1]
    gain, pairs = [0.0, 0.0], [0, 0]
    for r in range(r1, r2 + 1):
        pl = placements[r]
        costs, who = border_table(pl.run.trusted, np.array([pl.shift, pl.shift + delta], np.int64), pl.first,
                                  pl.count, cols, owner, dec, tops, bottoms)
        outside = (who >= 0) & ((who < r1) | (who > r2))
        both = outside[0] & outside[1] & ~np.isnan(costs[0]) & ~np.isnan(costs[1])
        held_by = fixed[np.maximum(who[0], 0)] | fixed[np.maximum(who[1], 0)]  # beside it at either place
        for k, sel in enumerate((both & held_by, both & ~held_by)):
            gain[k] += float((costs[0][sel] - costs[1][sel]).sum())
            pairs[k] += int(sel.sum())
    return (gain[0], gain[1]), (pairs[0], pairs[1])


def _inside(runs: list[Placement], delta: int) -> bool:
    """Whether every run of ``runs`` moved by ``delta`` stays inside its restart interval."""
    for pl in runs:
        m = pl.run.trusted
        if m.size and (int(m[0]) + pl.shift + delta < pl.first or int(m[-1]) + pl.shift + delta >= pl.first + pl.count):
            return False
    return True
