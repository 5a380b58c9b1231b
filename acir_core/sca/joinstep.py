"""Silent DC steps inside placed runs, seen in how they join the runs above and below them.

Without a thumbnail a silent DC break inside a run under a row long shows nowhere before the
search: the run has no pairs of MCUs inside it for its edges to measure. Once the runs are placed
and their DCs solved, each MCU meets content other runs put above and below it; across a break
the steps to that content change by the break's DC difference, on both sides alike, while an
edge of the picture or a neighbour run off by its own error changes one side only.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from numba import njit

from acir_core.sca.dcfit import Placement
from acir_core.sca.options import RunOptions
from acir_core.sca.recheck import _beside
from acir_core.sca.rewrap import _owners
from acir_core.sca.runs import Run, split_at, step_scan

JOIN_SIDE_PAIRS = 8  # MCUs with a neighbour on a side, before and after a cut, that both sides need
JOIN_SIDE_SHARE = 0.5  # share of the step both sides must show, in its direction


@njit(cache=True)
def side_steps(m, shift, r, dcs, owner, dec, dc_of, tops, bottoms, units, cols, first, count):
    """Per MCU of the run ``m`` (decoded, placed at ``m + shift``; run ``r``) and component: the
    mean signed step (levels, DCs applied) from the content of other runs above it to it
    (``[0]``) and from it to the content of other runs below (``[1]``); nan where none."""
    n = owner.size
    n_k = len(tops)
    out = np.full((2, m.size, n_k), np.nan)
    for q in range(m.size):
        d = m[q]
        t = d + shift
        if t < first or t >= first + count:
            continue
        for side in range(2):
            nb = _beside(t, 2 * side, cols, n)  # above, below
            if nb < 0 or owner[nb] < 0 or owner[nb] == r:
                continue
            o = dec[nb]
            for k in range(n_k):
                top = tops[k]
                bot = bottoms[k]
                acc = 0.0
                w = top.shape[1]
                for x in range(w):
                    acc += (top[d, x] - bot[o, x]) if side == 0 else (bot[d, x] - top[o, x])
                out[side, q, k] = acc / w - (dcs[k] - dc_of[owner[nb], k]) * units[k]
    return out


def _sides_agree(sides: np.ndarray, cut: int, jump: np.ndarray) -> bool:
    """Whether both sides, each with ``JOIN_SIDE_PAIRS`` MCUs before and after ``cut``, step as
    ``jump`` (per component, levels) says, by ``JOIN_SIDE_SHARE`` of it in its largest
    component: one side alone cannot tell the run's break from its neighbour's."""
    k = int(np.argmax(np.abs(jump)))
    for side in sides:
        before, after = side[:cut, k], side[cut:, k]
        before, after = before[~np.isnan(before)], after[~np.isnan(after)]
        if min(before.size, after.size) < JOIN_SIDE_PAIRS:
            return False
        step = float(np.median(after) - np.median(before))
        if step * jump[k] < JOIN_SIDE_SHARE * jump[k] ** 2:
            return False
    return True


def _cut(run: Run, z: np.ndarray, sides: np.ndarray, units: np.ndarray, opts: RunOptions, depth: int) -> list[Run]:
    """``run`` cut at the likeliest step of ``z`` (per trusted MCU, the mean of its ``sides``;
    nan: no neighbour of another run) that scores as a silent break before the search does and
    that both sides show, then each piece likewise (``opts.max_depth`` deep)."""
    m = run.trusted
    if depth > opts.max_depth:
        return [run]
    ok = ~np.isnan(z[:, 0])
    if ok.sum() < 2 * opts.min_split:
        return [run]
    zz = z[ok] / np.maximum(units, 1.0)[None, :]
    p, score, jump = step_scan(zz, opts.min_split)
    if score < opts.split_score or jump < opts.split_jump:
        return [run]
    idx = np.flatnonzero(ok)
    cut = int(idx[p])
    step = np.median(z[idx[p:]], axis=0) - np.median(z[idx[:p]], axis=0)
    if not _sides_agree(sides, cut, step):
        return [run]
    a, b = split_at(run, cut, int(m[cut]), opts)
    za = z[: a.trusted.size]
    zb = z[m.size - b.trusted.size:]
    sa = sides[:, : a.trusted.size]
    sb = sides[:, m.size - b.trusted.size:]
    return _cut(a, za, sa, units, opts, depth + 1) + _cut(b, zb, sb, units, opts, depth + 1)


def join_steps(placements: list[Placement], solved: np.ndarray, edges: tuple, units: list[float], cols: int, n: int,
               opts: RunOptions, sound: set) -> int:
    """Cut placed runs where their joins with the runs above and below step (the mean of both
    sides, :func:`~acir_core.sca.runs.step_scan` as before the search, both sides measuring it
    and agreeing, :func:`_sides_agree`; a thumbnail is not consulted: where it is too coarse or
    toned unlike the photo, the joins still show a break); the pieces keep the run's shift
    (``placements`` changed in place). ``solved``:
    per placement its DC per component; ``edges``: ((tops, lefts), (bottoms, rights)) per
    component. Returns the number of cuts."""
    tops, bottoms = edges[0][0], edges[1][0]
    owner, dec = _owners(placements, n)
    dc_of = np.asarray(solved, np.float64).reshape(len(placements), -1)
    u = np.asarray(units, np.float64)
    out: list[Placement] = []
    cuts = 0
    for r, pl in enumerate(placements):
        m = pl.run.trusted
        if pl.first in sound or m.size < 2 * opts.min_split:
            out.append(pl)
            continue
        sides = side_steps(m, pl.shift, r, dc_of[r], owner, dec, dc_of, tops, bottoms, u, cols, pl.first, pl.count)
        has = ~np.isnan(sides)
        z = np.where(has.any(axis=0), np.where(has, sides, 0.0).sum(axis=0) / np.maximum(has.sum(axis=0), 1), np.nan)
        pieces = [q for q in _cut(pl.run, z, sides, u, opts, 0) if q.trusted.size]
        if len(pieces) == 1:
            out.append(pl)
            continue
        cuts += len(pieces) - 1
        out += [replace(pl, run=q, anchored=pl.anchored and k == 0) for k, q in enumerate(pieces)]
    placements[:] = out
    return cuts
