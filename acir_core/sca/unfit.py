"""Runs that fit nowhere: a silent break inside them, found by trying cuts where they step.

A run that holds a silent break its detectors missed (damage that decoded without a failure in
the middle of a row: the DC predictors change, the count of MCUs may too) joins the content
around it badly at every shift, and its best shift is noise, often at the edge of the search
window. Placed there, it drags every run below it along: the next run joins the misplaced one
best where it sits. Cut where the decode steps most across a vertical MCU edge, the pieces fit.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from acir_core.sca.options import RunOptions
from acir_core.sca.runs import Run, split_at
from acir_core.sca.shifts import INF, Canvas, seam_steps

UNFIT_RATIO = 3.0  # times the reference continuity a run's cost must reach to be tried
UNFIT_LEVELS = 3.0  # ... and levels above it
UNFIT_TRIES = 10  # runs tried per segment at most
UNFIT_CUTS = 3  # cuts tried per run (its largest steps)
UNFIT_PIECES = 0.5  # times the run's own cost its pieces may cost on their own, at most
UNFIT_GAIN = 0.25  # share of the run's excess cost (× its MCUs) the segment must gain
UNFIT_EDGE = 8  # trusted MCUs each piece keeps at least, beyond what the cut leaves out
SEARCH_CHUNK = 8  # runs searched again at a time before checking whether the rest can stay


@dataclass(kw_only=True)
class SegmentSearch:
    """One restart segment's later runs on ``canvas``, searched again from any run on: ``before``
    is the canvas there before the first search (:meth:`Canvas.snapshot` of the segment's slice),
    ``search(runs, start)`` the compiled search (costs, DCs, bases) with the first window centred
    on ``start``, ``path(costs, bases)`` the dynamic programme (the segment's end held), ``window``
    the search's half width; ``units``: levels per DC step; ``cols``: MCUs per row; ``absolute``:
    the search judges DCs against a thumbnail too."""

    canvas: Canvas
    before: tuple
    first: int
    count: int
    cols: int
    absolute: bool
    units: np.ndarray
    window: int
    search: Callable
    path: Callable

    def placed(self, run: Run, costs: np.ndarray, dcs: np.ndarray, base: int):
        """Where the search put ``run`` (the lowest cost, first among equals): positions, decoded
        MCUs and DC offsets in levels."""
        arg = int(np.argmin(costs))
        pos = run.trusted + base + arg
        ok = (pos >= self.first) & (pos < self.first + self.count)
        return pos[ok], run.trusted[ok], -dcs[arg].astype(np.float64) * self.units

    def undo(self, gone: tuple, kept: tuple) -> None:
        """Take back from the canvas what the runs of ``gone`` placed and put back what those
        of ``kept`` placed there before them; each is (runs, costs, DCs, bases) of a search."""
        hit = [self.placed(r, gone[1][q], gone[2][q], int(gone[3][q]))[0] for q, r in enumerate(gone[0])]
        if not hit:
            return
        mark = np.zeros(self.count, bool)
        for pos in hit:
            mark[pos - self.first] = True
        rel = np.flatnonzero(mark)
        if not rel.size:
            return
        at = rel + self.first
        c = self.canvas
        for dst, src in zip(c.bottom + c.right, self.before[1] + self.before[2]):
            dst[at] = src[rel]
        c.known[at] = self.before[3][rel]
        lo, hi = int(at[0]), int(at[-1])
        for q, r in enumerate(kept[0]):  # earlier runs whose content a later one overwrote
            base = int(kept[3][q])
            if not r.trusted.size or r.trusted[0] + base > hi or r.trusted[-1] + base + kept[1].shape[1] < lo:
                continue
            pos, dec, off = self.placed(r, kept[1][q], kept[2][q], base)
            on = mark[pos - self.first]
            if on.any():
                c.place(pos[on], dec[on], off.tolist())

    def search_on(self, runs: list[Run], k: int, old: tuple, start: int) -> tuple:
        """Search ``runs[k:]`` again, ``runs[k]`` and ``runs[k + 1]`` the pieces of the run ``k``
        of ``old`` (runs, costs, DCs, bases: the search the canvas held, taken back from ``k`` on),
        ``runs[k + 2:]`` its later runs, the first window centred on ``start``. Once every run of
        a chunk is searched to the same shift from the same window as before, its DCs those
        before moved by one amount (without a thumbnail a search only sees DCs relative to each
        other; with one, none may move), and nothing any later run can read changed (the rows
        above and the MCU left of where it may go; where the DCs moved, nothing placed before
        this search either), every later run would be searched alike: from there on they are put
        back as they were, their DCs moved alike. Returns their costs, DCs, bases."""
        o_runs, o_costs, o_dcs, o_bases = old
        reach = lambda run, c, d, b: int(self.placed(run, c, d, int(b))[0].max(initial=-1))
        dirty = reach(o_runs[k], o_costs[k], o_dcs[k], o_bases[k])
        # placed before this search, never moved by it: the last known position (earlier
        # segments lie before this one)
        inside = np.flatnonzero(self.canvas.known[self.first:self.first + self.count])
        earlier = np.flatnonzero(self.canvas.known[:self.first]) if not inside.size else None
        settled = self.first + int(inside[-1]) if inside.size else int(earlier[-1]) if earlier.size else -1
        # per later run, the lowest position its search may read if its window stays as before
        low = np.array([int(r.trusted[0]) + int(o_bases[j + k + 1]) - self.cols - 1 if r.trusted.size else 1 << 62
                        for j, r in enumerate(runs[k + 2:])], np.int64)
        low = np.minimum.accumulate(low[::-1])[::-1] if low.size else low
        delta = np.zeros(o_dcs.shape[2], np.int64)
        alike = False  # every run so far since the pieces searched as before, up to ``delta``
        top = -1  # the last position the runs searched so far placed
        rows: list[tuple] = []
        q, prev = k, start
        while q < len(runs):
            hi = min(len(runs), q + SEARCH_CHUNK)
            c, d, b = self.search(runs[q:hi], prev)
            for i in range(hi - q):
                run, r = runs[q + i], q + i
                rows.append((c[i], d[i], b[i]))
                arg = int(np.argmin(c[i]))
                o = r - 1  # its index in ``old`` (the pieces have none)
                moved = d[i][arg] - o_dcs[o][arg] if r >= k + 2 else None
                here = reach(run, c[i], d[i], b[i])
                if moved is None or int(b[i]) != int(o_bases[o]) or arg != int(np.argmin(o_costs[o])) or \
                        (self.absolute and np.any(moved != 0)):
                    was = reach(run, o_costs[o], o_dcs[o], o_bases[o]) if moved is not None else -1
                    dirty = max(dirty, here, was)
                    alike = False
                else:
                    if np.any(moved != delta):  # what was placed before this moved otherwise
                        dirty = max(dirty, top)
                        delta = moved
                    alike = True
                top = max(top, here)
                best = int(b[i]) + arg
                if run.trusted.size >= self.cols // 2 or abs(best - prev) <= self.window // 2:
                    prev = best
            if alike and hi < len(runs) and int(o_bases[hi - 1]) == prev - self.window and \
                    int(low[hi - k - 2]) > (max(dirty, settled) if np.any(delta != 0) else dirty):
                costed = o_costs[hi - 1:, :, None] < INF
                rest = (o_costs[hi - 1:], np.where(costed, o_dcs[hi - 1:] + delta[None, None, :], o_dcs[hi - 1:]),
                        o_bases[hi - 1:])
                self.replace((runs[hi:],) + rest)
                return _stack(rows, rest)
            q = hi
        return _stack(rows, None)

    def replace(self, done: tuple) -> None:
        """Place the runs of ``done`` (runs, costs, DCs, bases) where their search put them."""
        for q, r in enumerate(done[0]):
            pos, dec, off = self.placed(r, done[1][q], done[2][q], int(done[3][q]))
            self.canvas.place(pos, dec, off.tolist())


def _stack(rows: list[tuple], rest: tuple | None) -> tuple:
    """Per-run rows (costs, DCs, base) and the arrays of the runs after them as one search."""
    c = np.stack([r[0] for r in rows])
    d = np.stack([r[1] for r in rows])
    b = np.array([r[2] for r in rows], np.int64)
    if rest is not None and rest[0].shape[0]:
        c, d, b = np.concatenate([c, rest[0]]), np.concatenate([d, rest[1]]), np.concatenate([b, rest[2]])
    return c, d, b


def weighted_cost(runs: list[Run], costs: np.ndarray, bases: np.ndarray, path) -> float:
    """Placing cost per placed MCU along ``path`` (runs no shift could judge left out)."""
    total = mass = 0.0
    for r, (run, s) in enumerate(zip(runs, path)):
        j = s - int(bases[r])
        if 0 <= j < costs.shape[1] and costs[r, j] < INF / 4:
            total += float(costs[r, j]) * run.trusted.size
            mass += run.trusted.size
    return total / mass if mass else 0.0


def cuts_of(run: Run, jumps: np.ndarray, opts: RunOptions) -> list[tuple[Run, Run]]:
    """The ``UNFIT_CUTS`` cuts of ``run`` at its largest seam steps, two MCUs apart at least,
    that leave both pieces ``UNFIT_EDGE`` trusted MCUs beyond what :func:`split_at` leaves out."""
    m = run.trusted
    lo = UNFIT_EDGE + opts.back_mcus
    hi = m.size - UNFIT_EDGE - opts.skip_mcus - 1
    if hi <= lo:
        return []
    out: list[int] = []
    for q in (lo + np.argsort(-jumps[lo:hi], kind="stable")).tolist():
        if len(out) == UNFIT_CUTS or jumps[q] <= 0:
            break
        if all(abs(q - p) > 1 for p in out):  # garbage one MCU long steps on both its sides
            out.append(q)
    return [split_at(run, q, int(m[q]), opts) for q in out]


def _unfit(runs: list[Run], found: tuple, ref: float, tried: set, cols: int) -> int:
    """Of the runs a quarter of a row long or more (cut, shorter ones left pieces that their
    lower cost then had trusted with their DC off) whose cost on the path reaches
    ``UNFIT_RATIO`` × ``ref`` and ``UNFIT_LEVELS`` more, not yet ``tried``: the one furthest above
    ``ref`` × its MCUs, or the unfit run it lies below (ending within two rows before it starts,
    and so on up): a run that fits nowhere puts the runs below it off too, and those fit once it
    is cut. -1: none."""
    costs, _, bases, path = found
    unfit: list[tuple[int, float]] = []
    for r, (run, s) in enumerate(zip(runs, path)):
        j = s - int(bases[r])
        if run.first in tried or not 0 <= j < costs.shape[1] or costs[r, j] >= INF / 4:
            continue
        c = float(costs[r, j])
        if c >= UNFIT_RATIO * ref and c >= ref + UNFIT_LEVELS and run.trusted.size >= cols // 4:
            unfit.append((r, (c - ref) * run.trusted.size))
    if not unfit:
        return -1
    worst = max(unfit, key=lambda u: u[1])[0]
    for r, _ in reversed(unfit):
        if r < worst and runs[r].end + 2 * cols >= runs[worst].first:
            worst = r
    return worst


def split_unfit(later: list[Run], found: tuple, ref: float, seams: tuple, opts: RunOptions,
                seg: SegmentSearch) -> tuple[list[Run], tuple]:
    """Runs whose cost on the path reaches ``UNFIT_RATIO`` × ``ref`` (and ``UNFIT_LEVELS`` more),
    worst first (:func:`_unfit`), up to ``UNFIT_TRIES``: of the cuts at its largest seam steps
    (``seams``: per component the MCUs' left edges inward and right edges outward) the one whose
    pieces cost least on their own, if that is ``UNFIT_PIECES`` × the run's cost or less; the
    segment is searched again from there and the cut stays where its cost per MCU falls by
    ``UNFIT_GAIN`` of the run's excess. ``found``: the last search (costs, DCs, bases, path); the
    canvas holds its placements and is left holding the kept one's."""
    tried: set[int] = set()
    mass = sum(r.trusted.size for r in later)
    for _ in range(UNFIT_TRIES):
        k = _unfit(later, found, ref, tried, seg.cols)
        if k < 0:
            break
        run = later[k]
        tried.add(run.first)
        costs, dcs, bases, path = found
        own = float(costs[k, path[k] - int(bases[k])])
        start = int(bases[k]) + seg.window
        jumps = np.maximum(seam_steps(seams[0], seams[1], run.trusted.astype(np.int64)), 0.0)
        kept = (later[:k], costs[:k], dcs[:k], bases[:k])
        seg.undo((later[k:], costs[k:], dcs[k:], bases[k:]), kept)
        best = None
        for a, b in cuts_of(run, jumps, opts):
            c, d, bs = seg.search([a, b], start)
            seg.undo(([a, b], c, d, bs), kept)
            cost = weighted_cost([a, b], c, bs, [int(bs[q]) + int(np.argmin(c[q])) for q in range(2)])
            if best is None or cost < best[0]:
                best = (cost, a, b)
        if best is not None and best[0] < UNFIT_PIECES * own:
            trial = later[:k] + [best[1], best[2]] + later[k + 1:]
            c, d, bs = seg.search_on(trial, k, (later, costs, dcs, bases), start)
            got = (np.concatenate([costs[:k], c]), np.concatenate([dcs[:k], d]), np.concatenate([bases[:k], bs]))
            got = got + (seg.path(got[0], got[2]),)
            gain = weighted_cost(later, costs, bases, path) - weighted_cost(trial, got[0], got[2], got[3])
            if gain * mass >= UNFIT_GAIN * (own - ref) * run.trusted.size:
                later, found = trial, got
                continue
            seg.undo((trial[k:], c, d, bs), kept)
        seg.replace((later[k:], costs[k:], dcs[k:], bases[k:]))  # the runs as they were
    return later, found
