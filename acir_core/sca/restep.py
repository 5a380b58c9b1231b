"""Silent DC steps inside runs, judged again once the runs are placed.

Before the search a run's MCUs are compared with the thumbnail at their own decode index, which
is where they belong only until the first MCU gained or lost: at quality 90+ and 1e-5 most of a
photo sits tens to hundreds of MCUs from its decode index, and there the thumbnail beside a DC
step shows unrelated content. A step the edges find (:func:`acir_core.sca.runs.split_step`) is
kept only where the thumbnail steps alike, so those were mostly refused. Placed, every MCU is
compared with the thumbnail where it now lies, and the runs are cut where that confirms a step,
and where the offsets from the thumbnail there step by themselves (the same test as before the
search): a run under a row long has no pairs of MCUs inside it for its edges to measure.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.options import RunOptions
from acir_core.sca.runs import Run, split_silent, split_step

RESTEP_LEVELS = 3.0  # levels (median over the row of pairs) a step must reach here: twice what splitting before the search asks


def restep(placements: list[Placement], steps: np.ndarray, cols: int, opts: RunOptions, means: np.ndarray,
           thumb: np.ndarray, sound: set, units: list[float] | None = None,
           confirm: Callable[[Run, int], bool] | None = None) -> int:
    """Cut placed runs where their edges show a DC step of ``RESTEP_LEVELS`` or more and the
    thumbnail at their places agrees (:func:`~acir_core.sca.runs.split_step` with each MCU's
    offset from the thumbnail where its run put it); the pieces keep the run's shift (``placements`` changed in place, in decode
    order). ``steps``: :func:`~acir_core.sca.runs.top_steps`; ``means`` (N, K): every decoded
    MCU's mean; ``thumb`` (N, K): the thumbnail's mean at each position; ``sound``: first MCUs of
    intervals decoded as written (no silent step in them); ``units``: levels per DC step, per
    component: with them every piece is also cut where its offsets from the thumbnail where it
    lies step (:func:`~acir_core.sca.runs.split_silent`, ``confirm`` as there). Returns the
    number of cuts."""
    n = thumb.shape[0]
    at = np.arange(means.shape[0])
    for pl in placements:
        at[pl.run.trusted] = pl.run.trusted + pl.shift
    offsets = means - thumb[np.clip(at, 0, n - 1)]
    opts = replace(opts, step_levels=max(opts.step_levels, RESTEP_LEVELS))
    out: list[Placement] = []
    cuts = 0
    for pl in placements:
        pieces = [pl.run] if pl.first in sound else split_step(pl.run, steps, cols, opts, offsets)
        if units is not None and pl.first not in sound:
            pieces = [q for piece in pieces for q in split_silent(piece, offsets, units, opts, confirm=confirm)]
        if len(pieces) == 1:
            out.append(pl)
            continue
        pieces = [piece for piece in pieces if piece.trusted.size]
        cuts += len(pieces) - 1
        out += [replace(pl, run=piece, anchored=pl.anchored and k == 0) for k, piece in enumerate(pieces)]
    placements[:] = out
    return cuts
