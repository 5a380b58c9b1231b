"""Silent DC steps inside placed runs, seen in how they join the runs above and below them.

Without a thumbnail a silent DC break inside a run under a row long shows nowhere before the
search: the run has no pairs of MCUs inside it for its edges to measure. Once the runs are placed
and their DCs solved, each MCU meets content other runs put above and below it; across a break
the steps to that content change by the break's DC difference, on both sides alike, while an
edge of the picture or a neighbour run off by its own error changes one side only. Garbage that
decoded in step (no failure, the MCU count kept) moves the level from the MCU it hit to where the
run ends (an interval decoded as written: to the interval's end), which the same joins show at
that MCU.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from numba import njit

from acir_core.sca.dcfit import Placement, last_landed, per_mcu
from acir_core.sca.options import RunOptions
from acir_core.sca.recheck import _beside
from acir_core.sca.rewrap import _owners
from acir_core.sca.runs import Run, split_at, step_scan

JOIN_SIDE_PAIRS = 8  # MCUs with a neighbour on a side, before and after a cut, that both sides need
JOIN_SIDE_SHARE = 0.5  # share of the step both sides must show, in its direction
GARBLE_LEVELS = 8.0  # levels an MCU must step by to the content above and below alike, where garbage moved it
GARBLE_BEFORE = 0.5  # share of that the MCU decoded before it may step by (an edge the photo shows runs on)
GARBLE_WINDOW = 8  # MCUs from it on whose median step must keep half of it, its way (a line ends)


@njit(cache=True)
def side_steps(m, shift, r, owner, dec, dc_of, tops, bottoms, units, cols, first, count):
    """Per decoded MCU ``m[q]`` of run ``r[q]`` placed at ``m[q] + shift[q]`` (the run may claim
    ``first[q]`` .. ``+ count[q]``) and component: the mean signed step (levels, DCs applied)
    from the content of other runs above it to it (``[0]``: it minus the content above) and from
    the content of other runs below to it (``[1]``: it minus the content below), so that an MCU
    off by d reads d on both sides; nan where none. Every run's MCUs in one call."""
    n = owner.size
    n_k = len(tops)
    out = np.full((2, m.size, n_k), np.nan)
    for q in range(m.size):
        d = m[q]
        t = d + shift[q]
        if t < first[q] or t >= first[q] + count[q]:
            continue
        for side in range(2):
            nb = _beside(t, 2 * side, cols, n)  # above, below
            if nb < 0 or owner[nb] < 0 or owner[nb] == r[q]:
                continue
            o = dec[nb]
            for k in range(n_k):
                top = tops[k]
                bot = bottoms[k]
                acc = 0.0
                w = top.shape[1]
                for x in range(w):
                    acc += (top[d, x] - bot[o, x]) if side == 0 else (bot[d, x] - top[o, x])
                out[side, q, k] = acc / w - (dc_of[r[q], k] - dc_of[owner[nb], k]) * units[k]
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


def mean_steps(m: np.ndarray, shift: np.ndarray, r: np.ndarray, owner: np.ndarray, dec: np.ndarray,
               dc_of: np.ndarray, means: np.ndarray, units: np.ndarray, cols: int,
               span: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """As :func:`side_steps`, from the MCUs' means (``means`` (N, K), levels) instead of their
    edges: stripes finer than an MCU step at its edges, not in its mean. ``span``: per MCU the
    positions its run may claim (its interval's first and count)."""
    n = owner.size
    t = m + shift
    level = means[m] - dc_of[r] * units[None, :]
    out = np.full((2, m.size, units.size), np.nan)
    mine = (t >= span[0]) & (t < span[0] + span[1])
    for side, nb in enumerate((t - cols, t + cols)):
        ok = mine & (nb >= 0) & (nb < n)
        ok[ok] &= (owner[nb[ok]] >= 0) & (owner[nb[ok]] != r[ok])
        o = owner[nb[ok]]
        other = means[dec[nb[ok]]] - dc_of[o] * units[None, :]
        out[side, ok] = level[ok] - other
    return out


def _alike(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smaller of two signed steps where both are known and point the same way; 0 elsewhere."""
    both = ~np.isnan(a) & ~np.isnan(b) & (np.sign(a) == np.sign(b))
    a, b = np.where(both, a, 0.0), np.where(both, b, 0.0)
    return np.sign(a) * np.minimum(np.abs(a), np.abs(b))


def garble_steps(sides: np.ndarray) -> np.ndarray:
    """Per MCU and component: the smaller of its steps to the content above and below (levels,
    signed), where both sides have content and step the same way; 0 elsewhere (an MCU at the
    edge of something the photo shows steps to one side only)."""
    return _alike(sides[0], sides[1])


def _garble_at(z: np.ndarray, around: np.ndarray, before: np.ndarray | None, after: np.ndarray | None) -> int:
    """The first MCU (index into ``z``, :func:`garble_steps` of a run) where the level changes
    as garbage that ended in step changes it, up to the run's end (an interval decoded as
    written: the interval's): by ``GARBLE_LEVELS`` or more to both sides in some component; the
    MCU before it (the run's first: ``before``, the one placed before it; None: not a
    candidate), the one after the run's end (``after``; None: nothing placed there, or the run
    does not end its interval) and the rows above and below it against the rows beyond them
    (``around``) all under ``GARBLE_BEFORE`` of that; the median of the ``GARBLE_WINDOW`` from it
    on half of it or more, its way. An edge the photo shows runs on past those bounds, and
    stripes step at every row. -1 where none."""
    big = np.abs(z) >= GARBLE_LEVELS
    for q in np.flatnonzero(big.any(axis=1)):
        k = int(np.argmax(np.abs(z[q])))
        step = z[q, k]
        prior = z[q - 1, k] if q > 0 else (before[k] if before is not None else np.inf)
        if abs(prior) >= GARBLE_BEFORE * abs(step):
            continue
        if after is not None and abs(after[k]) >= GARBLE_BEFORE * abs(step):
            continue
        if around[q, k] >= GARBLE_BEFORE * abs(step):
            continue
        if np.median(z[q : q + GARBLE_WINDOW, k]) * np.sign(step) >= 0.5 * abs(step):
            return int(q)
    return -1


def _garbled(run: Run, z: np.ndarray, around: np.ndarray, opts: RunOptions, before: np.ndarray | None = None,
             after: np.ndarray | None = None) -> list[Run]:
    """A run (or a piece of one) cut where garbage that decoded in step changed its level
    (:func:`_garble_at`): the MCU found and the one before it are left out (the garbage is in
    one of them); what follows keeps the run's shift and gets its own DC if ``opts.min_split``
    MCUs or more, else is left out too (a handful of MCUs' borders pin a DC no better than the
    fill makes them). The rest is not looked at again: its steps hold its level as the DCs were
    solved with the garbage in, and a second cut from them cost more than it gave (camera set at
    1e-5: Nikon D40 seed 0, outside the mask 0.13 -> 0.54 %)."""
    m = run.trusted
    q = _garble_at(z, around, before, after)
    if q < 0:
        return [run]
    head = Run(run.first, int(m[q]), m[: max(q - 1, 0)], run.settled, run.tail, run.probe_from, run.probe_to)
    rest = m[q + 1 :]
    if rest.size < opts.min_split:
        return [head]
    return [head, Run(int(m[q]), run.end, rest, max(run.settled, int(rest[0]) + opts.settle_mcus), run.tail,
                      int(rest[0]) + opts.silent_margin, run.probe_to)]


def _both_steps(sides: np.ndarray, at: tuple, placed: tuple, units: np.ndarray, cols: int,
                means: np.ndarray | None) -> np.ndarray:
    """:func:`garble_steps` of the placed runs' MCUs from their edges' ``sides``
    (:func:`side_steps`) and, with ``means``, the smaller of that and the same from their means,
    where both step the same way. ``at``: per MCU (decoded MCU, shift, run, first, count)."""
    owner, dec, dc_of = placed
    z = garble_steps(sides)
    if means is None:
        return z
    m, shift, r, first, count = at
    return _alike(z, garble_steps(mean_steps(m, shift, r, owner, dec, dc_of, means, units, cols, (first, count))))


def _row_steps(owner: np.ndarray, dec: np.ndarray, dc_of: np.ndarray, means: np.ndarray, units: np.ndarray,
               cols: int) -> np.ndarray:
    """Per position and component: how far the MCU's mean (its run's DC applied) lies from the
    one above it, whichever runs they are in (0 where either is not placed; ``owner``/``dec`` as
    :func:`~acir_core.sca.rewrap._owners`)."""
    placed = owner >= 0
    level = np.full((owner.size, units.size), np.nan)
    level[placed] = means[dec[placed]] - dc_of[owner[placed]] * units[None, :]
    out = np.zeros_like(level)
    out[cols:] = np.abs(np.nan_to_num(level[cols:] - level[:-cols], nan=0.0))
    return out


def _around(t: np.ndarray, rows: np.ndarray, cols: int, n: int, offsets: tuple[int, int]) -> np.ndarray:
    """Per position of ``t``: the larger of ``rows`` at the rows ``offsets`` away (in MCU rows)."""
    out = np.zeros((t.size, rows.shape[1]))
    for d in offsets:
        nb = t + d * cols
        ok = (nb >= 0) & (nb < n)
        out[ok] = np.fmax(out[ok], rows[nb[ok]])
    return out


def join_steps(placements: list[Placement], solved: np.ndarray, edges: tuple, units: list[float], cols: int, n: int,
               opts: RunOptions, sound: set, means: np.ndarray | None = None) -> int:
    """Cut placed runs where their joins with the runs above and below step (the mean of both
    sides, :func:`~acir_core.sca.runs.step_scan` as before the search, both sides measuring it
    and agreeing, :func:`_sides_agree`; a thumbnail is not consulted: where it is too coarse or
    toned unlike the photo, the joins still show a break), except in intervals decoded as
    written; then every piece, those too, where garbage that ended in step moved its level
    (:func:`_garbled`; ``means`` (N, K): every decoded MCU's mean, levels, which stripes finer
    than an MCU do not move; None: the edges alone). The pieces keep the run's shift
    (``placements`` changed in place). ``solved``: per placement its DC per component;
    ``edges``: ((tops, lefts), (bottoms, rights)) per component. Returns the number of cuts."""
    tops, bottoms = edges[0][0], edges[1][0]
    owner, dec = _owners(placements, n)
    dc_of = np.asarray(solved, np.float64).reshape(len(placements), -1)
    u = np.asarray(units, np.float64)
    out: list[Placement] = []
    cuts = 0
    # per run, its signed steps to the runs above and below: read by the garble test and the step
    # scan; every run's MCUs at once (a restart interval every few MCUs makes tens of thousands)
    at = per_mcu(placements)
    sides_all = side_steps(*at[:3], owner, dec, dc_of, tops, bottoms, u, cols, *at[3:])
    z_all = _both_steps(sides_all, at, (owner, dec, dc_of), u, cols, means)
    bounds = np.concatenate([[0], np.cumsum([pl.run.trusted.size for pl in placements])]).astype(np.int64)
    t_all = at[0] + at[1]
    inside = np.flatnonzero((t_all >= np.maximum(at[3], 0)) & (t_all < np.minimum(at[3] + at[4], n)))
    z_at = np.full((n, u.size), np.nan)  # per position: the garble steps of the run there
    keep = inside[last_landed(t_all[inside])]
    z_at[t_all[keep]] = z_all[keep]
    big = np.zeros(len(placements), bool)  # runs with a step the garble test may take
    hit = np.flatnonzero((np.abs(z_all) >= GARBLE_LEVELS).any(axis=1))
    big[np.unique(at[2][hit])] = True
    # the rows around an MCU, each against the row beyond it (without means: their own garble
    # steps): stripes step there as much
    rows = np.abs(np.nan_to_num(z_at)) if means is None else _row_steps(owner, dec, dc_of, means, u, cols)
    for r, pl in enumerate(placements):
        m = pl.run.trusted
        if not m.size:
            out.append(pl)
            continue
        cuttable = pl.first not in sound and m.size >= 2 * opts.min_split
        if not cuttable and not big[r]:  # neither test can cut it
            out.append(pl)
            continue
        lo, hi = int(bounds[r]), int(bounds[r + 1])
        pieces = [pl.run]
        if cuttable:
            sides = sides_all[:, lo:hi]
            has = ~np.isnan(sides)
            z = np.where(has.any(axis=0), np.where(has, sides, 0.0).sum(axis=0) / np.maximum(has.sum(axis=0), 1),
                         np.nan)
            pieces = [q for q in _cut(pl.run, z, sides, u, opts, 0) if q.trusted.size]
        around = _around(m + pl.shift, rows, cols, n, (-1, 2) if means is not None else (-1, 1))
        kept: list[Run] = []
        found = len(pieces) - 1  # the step scan's cuts, then each garble's
        for k, piece in enumerate(pieces):
            idx = np.searchsorted(m, piece.trusted)
            t0, t1 = int(piece.trusted[0]) + pl.shift, int(piece.trusted[-1]) + pl.shift
            before = z_at[t0 - 1] if k == 0 and 0 < t0 <= n and not np.isnan(z_at[t0 - 1, 0]) else None
            # a level moved by garbage ends where the interval does (or the run, at its next failure)
            ends = k == len(pieces) - 1 and (t1 == pl.first + pl.count - 1 or pl.first not in sound) and \
                0 <= t1 + 1 < n and not np.isnan(z_at[t1 + 1, 0])
            got = _garbled(piece, z_all[lo:hi][idx], around[idx], opts, before, z_at[t1 + 1] if ends else None)
            found += len(got) - (got[-1].end == piece.end)  # a rest left out ends its piece early
            kept += got
        if not found or not kept:
            out.append(pl)
            continue
        cuts += found
        out += [replace(pl, run=q, anchored=pl.anchored and k == 0) for k, q in enumerate(kept) if q.trusted.size]
    placements[:] = out
    return cuts
