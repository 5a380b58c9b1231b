"""Runs whose own evidence says they may sit an MCU or two off, marked as precautions.

Once every run is placed and moved where the evidence was strong enough, some runs still show
signs of lying a place or two off that were too weak, or too lonely, to move them: their row
wraps stand out a place aside (a run of a row or so has one or two wraps, too few to move it), or
the content other runs placed above and below them joins them better a place aside (a short run
whose left and right neighbours in the decode hold it where it is), or clearly better several
places aside (a run the search put that far off, beyond what the moves try). Moving them on that
evidence breaks as many runs as it fixes; leaving them unmarked shows wrong pixels as sure. They are kept
where they are and marked as precautions: the fill judges them against the thumbnail with the
loose tolerance, and the mask says they were not verified.
"""
from __future__ import annotations

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.resplit import border_table
from acir_core.sca.rewrap import _evidence, _excess, _inside, _owners
from acir_core.sca.shifts import seam_steps

UNSURE_DELTAS = (-1, 1, -2, 2)  # places aside judged (a silent break gains or loses an MCU or two)
UNSURE_WRAP_LEVELS = 2.0  # levels the wraps aside stand out by more than the current ones (median) ...
UNSURE_WRAP_AGREE = 0.75  # ... with this share of them pointing the same way ...
UNSURE_WRAP_HERE = 2.0  # ... and the current wraps standing out by at most this (median)
UNSURE_BORDER_LEVELS = 0.2  # levels per bordering MCU the borders with other runs cost less aside (mean)
UNSURE_BORDER_PAIRS = 4  # bordering MCUs that judgement needs
UNSURE_WIDE = tuple(d for k in range(3, 17) for d in (-k, k))  # places further aside judged ...
UNSURE_WIDE_LEVELS = 1.0  # ... where the borders cost this many levels less there (mean)
UNSURE_PASSES = 3  # passes of the border rule, each without the runs found unsure before it
UNSURE_ROWS = 2  # rows of MCUs a run may hold at most: a longer one has wraps and borders enough to be moved


def unsure_runs(placements: list[Placement], edges: tuple, cols: int, fixed: np.ndarray) -> np.ndarray:
    """Per placement, whether its row wraps or its luma borders with the runs placed above and
    below it favour a place ``UNSURE_DELTAS`` aside, or its borders clearly one ``UNSURE_WIDE``
    aside (the search may have put it there; see the module docstring); never for a
    ``fixed`` one (:func:`acir_core.sca.rewrap.held`) or one of more than ``UNSURE_ROWS`` rows
    of MCUs (the moves before judged it on evidence enough). The wraps are judged first; the
    borders then in ``UNSURE_PASSES`` passes, each without the runs found unsure before it (the
    same for every run of a pass, whatever their order). ``edges``: (inner, outer) per side and
    component as for :func:`acir_core.sca.rewrap.rewrap`."""
    out = np.zeros(len(placements), bool)
    judged = [r for r, pl in enumerate(placements)
              if not fixed[r] and 0 < pl.run.trusted.size <= UNSURE_ROWS * cols]
    if not judged:
        return out
    lefts, outer_rights = edges[0][1], edges[1][1]
    for r in judged:
        pl = placements[r]
        excess = _excess(seam_steps(lefts, outer_rights, pl.run.trusted))
        out[r] = excess is not None and _wraps_aside(excess, pl, cols)
    tops, bottoms = edges[0][0][:1], edges[1][0][:1]
    owner, dec = _owners(placements, edges[0][0][0].shape[0])
    borders = {r: _borders(placements[r], r, cols, owner, dec, tops, bottoms) for r in judged if not out[r]}
    for _ in range(UNSURE_PASSES):  # a neighbour found unsure vouches for nothing
        found = [r for r, b in borders.items() if not out[r] and b is not None and _borders_aside(*b, out)]
        if not found:
            break
        out[found] = True
    return out


def _wraps_aside(excess: np.ndarray, pl: Placement, cols: int) -> bool:
    """Whether a run's row wraps at some place aside, inside its restart interval, stand out
    more than where it lies."""
    calm = None  # whether the current wraps stand out little, once asked
    pos = pl.run.trusted + pl.shift
    for delta in UNSURE_DELTAS:
        if not _inside([pl], delta):
            continue
        aside, here = _evidence(excess, pos, cols, delta)
        if not aside.size or float((aside > 0).mean()) < UNSURE_WRAP_AGREE or \
                float(np.median(aside)) < UNSURE_WRAP_LEVELS:
            continue
        if calm is None:
            calm = not here.size or float(np.median(here)) <= UNSURE_WRAP_HERE
        if calm:
            return True
    return False


def _borders(pl: Placement, r: int, cols: int, owner: np.ndarray, dec: np.ndarray, tops: tuple,
             bottoms: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A run's luma border costs with the other runs above and below it where it lies and at
    each place aside (:func:`acir_core.sca.resplit.border_table`), the run beside each border,
    and which borders are with another run; None where too few are."""
    shifts = np.array((pl.shift,) + tuple(pl.shift + d for d in UNSURE_DELTAS + UNSURE_WIDE), np.int64)
    costs, who = border_table(pl.run.trusted, shifts, pl.first, pl.count, cols, owner, dec, tops, bottoms)
    other = (who >= 0) & (who != r) & ~np.isnan(costs)
    if int((other[0] & other[1:]).sum(axis=(1, 2)).max(initial=0)) < UNSURE_BORDER_PAIRS:
        return None
    return costs, who, other


def _borders_aside(costs: np.ndarray, who: np.ndarray, other: np.ndarray, unsure: np.ndarray) -> bool:
    """Whether a run's borders (:func:`_borders`) with runs not ``unsure`` cost less at some
    place aside (mean over the MCUs bordering those runs at both places)."""
    other = other.copy()
    other[other] &= ~unsure[who[other]]
    both = other[0][None] & other[1:]  # (places aside, ...)
    axes = tuple(range(1, both.ndim))
    pairs = both.sum(axis=axes)
    gain = np.subtract(costs[0][None], costs[1:], out=np.zeros(both.shape), where=both)
    rough = gain.sum(axis=axes) / np.maximum(pairs, 1)
    need = np.where(np.arange(1, costs.shape[0]) <= len(UNSURE_DELTAS), UNSURE_BORDER_LEVELS, UNSURE_WIDE_LEVELS)
    # all places at once, to a rounding; each place that may pass judged exactly, in order
    for d in np.flatnonzero((pairs >= UNSURE_BORDER_PAIRS) & (rough >= need - 1e-6)) + 1:
        b = both[d - 1]
        if float((costs[0][b] - costs[d][b]).mean()) >= need[d - 1]:
            return True
    return False
