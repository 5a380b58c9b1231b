"""Stretches of the decode that sit an MCU or a few off together, cut where they begin and end.

Garbage that decodes in step mostly gains an MCU: the rest of its run belongs a place further on.
The runs placed after such a tail join it best where it sits, and a later run with a silent break
of its own carries the error on, so a chain of pieces spanning runs and rows locks in off
together. Moving one piece (:func:`acir_core.sca.resplit.resplit`) is vetoed by the pieces locked
in with it, and moving whole runs (:func:`acir_core.sca.resplit.regroup`) cannot leave the heads
placed right where they are. Here a stretch is any span of one interval's decode: it is judged on
the borders its first row shares with the content above it and its last row with the content
below it, each side must say the same, and it moves as one, its end runs cut.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from numba import njit

from acir_core.sca.dcfit import Placement
from acir_core.sca.options import RunOptions
from acir_core.sca.resplit import (RESPLIT_DELTAS, RESPLIT_LEVELS, RESPLIT_PAIRS, RESPLIT_PASSES, RESPLIT_PIECE,
                                   RESPLIT_RATIO, RESPLIT_SHARE, RESPLIT_SIGMAS, _Borders, border_sums,
                                   regroup, resplit)
from acir_core.sca.runs import split_at

CHAIN_ROWS = 8  # rows of MCUs a moved stretch may span
CHAIN_DELTAS = (-4, -3, -2, -1)  # a stretch moves back only: garbage decodes to more MCUs than it held
STACKS = True  # two pieces of a row each, the lower under the upper, locked in off together, moved as one


@njit(cache=True)
def _part(cs, k, d, side, lo, hi):
    return cs[k, d, side, hi] - cs[k, d, side, lo] if hi > lo else 0.0


@njit(cache=True)
def _start_ok(a, starts, anchored, back, min_piece) -> bool:
    """Whether a stretch may begin at trusted MCU ``a``: not an interval's first run's first MCU
    (the marker places it), and a cut inside a run leaves its head enough MCUs."""
    if a == starts[a]:
        return not (anchored and starts[a] == 0)
    return a - starts[a] - back >= min_piece


@njit(cache=True)
def _end_ok(a, b, starts, ends, back, skip, min_piece) -> bool:
    """Whether a stretch [a, b) may end before ``b``: every piece a cut leaves, of the runs it
    cuts and of the stretch itself (:func:`acir_core.sca.runs.split_at` leaves ``back`` MCUs
    out before a cut and ``skip`` + 1 from it), keeps enough MCUs."""
    lo = a if a == starts[a] else a + skip + 1  # the stretch's first MCU that moves
    if a != starts[a] and ends[a] < b and ends[a] - lo < min_piece:
        return False  # the first run's moving tail
    if b == starts.size or b == starts[b]:
        return ends[a] < b or b - lo >= min_piece
    return b - back - max(lo, starts[b - 1]) >= min_piece and ends[b - 1] - b - skip - 1 >= min_piece


@njit(cache=True)
def best_chains(cs, m, pos, starts, ends, cols, place, deltas, limits, pieces, span):
    """Per first MCU ``a`` of a stretch [a, b) (indices into the segment's trusted MCUs ``m``, at
    places ``pos``) whose first row's top borders say move: the stretch that clears the limits
    with the most gain per bordering MCU as (that gain, b, delta index), score -inf where none
    does. ``starts`` / ``ends``: per MCU the index range of its run's trusted MCUs; ``place``:
    the interval's first MCU and MCU count, whether its first run is anchored and its last
    pinned; ``limits``: (ratio, levels, pairs, share, sigmas); ``pieces``: (MCUs a piece keeps,
    MCUs a cut leaves out before it, after it); ``span``: most MCUs a stretch holds."""
    first, count, anchored, pinned = place
    ratio, levels, min_pairs, share, sigmas = limits
    min_piece, back, skip = pieces
    size = m.size
    top_end = np.searchsorted(m, m + cols)  # the stretch's first row: its top borders meet what lies above
    bottom_start = np.zeros(size + 1, np.int64)  # its last row, for a stretch ending before index b
    for b in range(1, size + 1):
        bottom_start[b] = np.searchsorted(m, m[b - 1] - cols + 1)
    bottom_ok = np.zeros((deltas.size, size + 1), np.bool_)  # a whole last row's bottoms say move
    for d in range(deltas.size):
        for b in range(1, size + 1):
            lo = bottom_start[b]
            bottom_ok[d, b] = _part(cs, 0, d, 1, lo, b) >= levels * _part(cs, 2, d, 1, lo, b)
    score = np.full(size, -np.inf)
    best_end = np.zeros(size, np.int64)
    best_d = np.zeros(size, np.int64)
    for a in range(size):
        if not _start_ok(a, starts, anchored, back, min_piece):
            continue
        for d in range(deltas.size):
            if pos[a] + deltas[d] < first:
                continue
            te = top_end[a]
            gt = _part(cs, 0, d, 0, a, te)
            pt = _part(cs, 2, d, 0, a, te)
            if pt < min_pairs / 2 or gt < levels * pt or gt < ratio * _part(cs, 1, d, 0, a, te):
                continue  # the first row's top says nothing of this move
            for b in range(a + min_piece, min(size, a + span) + 1):
                if pos[b - 1] + deltas[d] >= first + count or (b == size and pinned):
                    break  # nothing leaves the interval, and its last run ends where it does
                b_lo = max(bottom_start[b], a)
                if (b_lo == bottom_start[b] and not bottom_ok[d, b]) or \
                        not _end_ok(a, b, starts, ends, back, skip, min_piece):
                    continue
                t_hi = min(te, b)
                gt = _part(cs, 0, d, 0, a, t_hi)
                pt = _part(cs, 2, d, 0, a, t_hi)
                gb = _part(cs, 0, d, 1, b_lo, b)
                pb = _part(cs, 2, d, 1, b_lo, b)
                if gt < levels * pt or gb < levels * pb:
                    continue  # the rows above and below must agree
                p = pt + pb
                g = gt + gb
                if p < max(min_pairs, share * min(b - a, cols)) or g / p <= score[a]:
                    continue
                base = _part(cs, 1, d, 0, a, t_hi) + _part(cs, 1, d, 1, b_lo, b)
                g2 = _part(cs, 6, d, 0, a, t_hi) + _part(cs, 6, d, 1, b_lo, b)
                var = max(g2 - g * g / p, 1e-9)
                if g < ratio * base and g < sigmas * np.sqrt(var):
                    continue
                xg = _part(cs, 3, d, 0, a, t_hi) + _part(cs, 3, d, 1, b_lo, b)
                xb = _part(cs, 4, d, 0, a, t_hi) + _part(cs, 4, d, 1, b_lo, b)
                xp = _part(cs, 5, d, 0, a, t_hi) + _part(cs, 5, d, 1, b_lo, b)
                if xp < min_pairs / 2 or xg < levels * xp or xg < ratio * xb:
                    continue  # only borders with other runs say the stretch, not its run's rest, is off
                score[a] = g / p
                best_end[a] = b
                best_d[a] = d
    return score, best_end, best_d


@njit(cache=True)
def _may_beat(gain, value, a, b) -> bool:
    """Whether ``gain``, a difference of the running sums ``a`` and ``b``, may exceed ``value``
    once the sums' rounding is allowed for."""
    return gain > value - 1e-6 * (1.0 + abs(a) + abs(b))


@njit(cache=True)
def _window_max(h, lo_off, hi_off):
    """Per index x of ``h``, the largest of ``h[x + lo_off .. x + hi_off]`` (clipped to ``h``;
    -inf where that is empty), by a queue of the indices that may still be the largest."""
    n = h.size
    out = np.full(n, -np.inf)
    queue = np.empty(n, np.int64)
    head = tail = nxt = 0
    for x in range(n):
        lo, hi = max(x + lo_off, 0), min(x + hi_off, n - 1)
        while nxt <= hi:
            while tail > head and h[queue[tail - 1]] <= h[nxt]:
                tail -= 1
            queue[tail] = nxt
            tail += 1
            nxt += 1
        while tail > head and queue[head] < lo:
            head += 1
        if lo <= hi and tail > head:
            out[x] = h[queue[head]]
    return out


@njit(cache=True)
def _row_pieces(cs, m, pos, starts, ends, cols, place, d, delta, limits, pieces, top):
    """Per start (``top``) or end of a piece of at most a row, its best other end where that
    row's own side (its top borders, or its bottom ones) says move by ``delta`` and the other
    side says stay: a piece locked in off with what lies beyond that other side (-1: none)."""
    first, count, anchored, pinned = place
    ratio, levels, min_pairs = limits[0], limits[1], limits[2]
    min_piece, back, skip = pieces
    size = m.size
    side, other = (0, 1) if top else (1, 0)
    best = np.full(size + 1, -1, np.int64)
    # a piece is kept only with gain past ``levels`` a pair on its own side: the running sums of
    # that excess show, per x, whether any other end within reach has some (to a rounding)
    excess = cs[0, d, side] - levels * cs[2, d, side]
    reach = _window_max(excess, min_piece, cols) if top else -_window_max(-excess, -cols, -min_piece)
    late = np.flatnonzero(pos + delta >= first + count) + 1  # ends b whose last MCU moves past the interval
    for x in range(size + 1):
        if not _may_beat(reach[x] - excess[x] if top else excess[x] - reach[x], 0.0, reach[x], excess[x]):
            continue
        value = 0.0
        if top:
            if x == size or not _start_ok(x, starts, anchored, back, min_piece) or pos[x] + delta < first:
                continue
            hi = min(x + min_piece, size)
            if _part(cs, 0, d, 0, x, hi) < levels * _part(cs, 2, d, 0, x, hi):
                continue  # every such piece starts with these MCUs, and their tops must say move
            lo_y, hi_y = x + min_piece, min(size, x + cols)
            for y in late:  # the loop below stops at the first end past the interval a piece may have
                if lo_y <= y <= hi_y and _end_ok(x, y, starts, ends, back, skip, min_piece):
                    hi_y = y
                    break
        else:
            if x < min_piece or (x == size and pinned) or pos[x - 1] + delta >= first + count:
                continue
            if _part(cs, 0, d, 1, x - min_piece, x) < levels * _part(cs, 2, d, 1, x - min_piece, x):
                continue
            lo_y, hi_y = max(0, x - cols), x - min_piece
        for y in range(lo_y, hi_y + 1):
            if not _may_beat(excess[y] - excess[x] if top else excess[x] - excess[y], value, excess[x], excess[y]):
                continue  # no better than the best so far
            a, b = (x, y) if top else (y, x)
            if not _end_ok(a, b, starts, ends, back, skip, min_piece) or \
                    (not top and not _start_ok(a, starts, anchored, back, min_piece)):
                continue  # (an upper piece's start was checked above)
            if top and pos[b - 1] + delta >= first + count:
                break
            if not top and pos[a] + delta < first:
                continue
            g = _part(cs, 0, d, side, a, b)
            p = _part(cs, 2, d, side, a, b)
            if p < min_pairs or g < levels * p or g < ratio * _part(cs, 1, d, side, a, b):
                continue
            if _part(cs, 0, d, other, a, b) >= levels * _part(cs, 2, d, other, a, b):
                continue  # the other side agrees: a plain stretch
            if g - levels * p > value:
                value = g - levels * p
                best[x] = y
    return best


@njit(cache=True)
def _across(table, d, lo, hi, side, pos, cols, lo2, hi2):
    """Gain, base and pairs over the ``side`` (0: top, 1: bottom) borders of MCUs lo..hi-1 whose
    neighbour there does not lie in the other piece (MCUs lo2..hi2-1)."""
    g = b = p = 0.0
    for q in range(lo, hi):
        h = table[0, side, q]
        c = table[d + 1, side, q]
        if np.isnan(h) or np.isnan(c):
            continue
        t = pos[q] + (cols if side == 1 else -cols)
        if pos[lo2] <= t <= pos[hi2 - 1]:
            continue  # the two pieces move together: the border between them stays
        g += h - c
        b += h
        p += 1.0
    return g, b, p


@njit(cache=True)
def best_stacks(cs, table, m, pos, starts, ends, cols, place, deltas, limits, pieces):
    """Per first MCU ``a`` of an upper piece [a, b) of at most a row whose top borders say move
    and whose bottom ones say stay, the best lower piece [a2, b2) decoded after it (ending
    within three rows of it), lying under it for half the shorter one or more, whose bottom
    borders say move and top ones stay: the two locked in off together. Judged on the upper
    piece's top, the lower one's bottom and the borders of each with the content between them
    (which must say move on their own), with ``limits`` as in :func:`best_chains` (the gain
    against ``ratio`` of what the borders cost, no standard errors). Returns (score, b, a2, b2,
    delta index) per ``a``, score -inf where none."""
    ratio, levels, min_pairs, share, sigmas = limits
    size = m.size
    score = np.full(size, -np.inf)
    out = np.zeros((size, 4), np.int64)
    for d in range(deltas.size):
        uppers = _row_pieces(cs, m, pos, starts, ends, cols, place, d, deltas[d], limits, pieces, True)
        lowers = _row_pieces(cs, m, pos, starts, ends, cols, place, d, deltas[d], limits, pieces, False)
        for a in range(size):
            b = uppers[a]
            if b < 0:
                continue
            for b2 in range(b + 1, min(size, b + 3 * cols) + 1):
                a2 = lowers[b2]
                if a2 < b or starts[a2] == starts[b - 1]:
                    continue  # the lower piece comes after the upper one, in another run
                lo = max(pos[a] + cols, pos[a2])
                hi = min(pos[b - 1] + cols, pos[b2 - 1])
                if hi - lo + 1 < 0.5 * min(b - a, b2 - a2):
                    continue  # not under it
                g = _part(cs, 0, d, 0, a, b) + _part(cs, 0, d, 1, a2, b2)
                base = _part(cs, 1, d, 0, a, b) + _part(cs, 1, d, 1, a2, b2)
                p = _part(cs, 2, d, 0, a, b) + _part(cs, 2, d, 1, a2, b2)
                xg = _part(cs, 3, d, 0, a, b) + _part(cs, 3, d, 1, a2, b2)
                xp = _part(cs, 5, d, 0, a, b) + _part(cs, 5, d, 1, a2, b2)
                if xp < min_pairs / 2 or xg < levels * xp or g / p <= score[a]:
                    continue
                cg, cb, cp = _across(table, d, a, b, 1, pos, cols, a2, b2)
                cg2, cb2, cp2 = _across(table, d, a2, b2, 0, pos, cols, a, b)
                if cg + cg2 < levels * (cp + cp2):
                    continue  # the content between them must agree
                g += cg + cg2
                base += cb + cb2
                p += cp + cp2
                if p < max(min_pairs, share * min(b - a + b2 - a2, cols)) or g < levels * p or g < ratio * base:
                    continue
                if g / p > score[a]:
                    score[a] = g / p
                    out[a, 0], out[a, 1], out[a, 2], out[a, 3] = b, a2, b2, d
    return score, out


def _segment_moves(placements: list[Placement], idx: list[int], borders: _Borders, opts: RunOptions) -> list[tuple]:
    """The stretches of one interval's runs (``idx``: their indices in ``placements``, in decode
    order) that clear the limits, alone or stacked two together: (score, moves), each move
    (the runs it spans, index a in the first one's trusted MCUs, index b in the last one's
    (exclusive), delta)."""
    m = np.concatenate([placements[r].run.trusted for r in idx]).astype(np.int64)
    if m.size < RESPLIT_PIECE or np.any(np.diff(m) <= 0):
        return []  # pieces out of decode order: nothing to judge a span by
    tables = [borders.table(placements[r]) for r in idx]
    sizes = np.array([placements[r].run.trusted.size for r in idx], np.int64)
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    nth = np.repeat(np.arange(len(idx)), sizes)  # each MCU's run, by its place in idx
    run_of = np.asarray(idx, np.int64)[nth]
    starts = np.repeat(offs[:-1], sizes)
    ends = np.repeat(offs[1:], sizes)
    pos = m + np.repeat(np.array([placements[r].shift for r in idx], np.int64), sizes)
    sel = np.flatnonzero(np.isin(RESPLIT_DELTAS, CHAIN_DELTAS))
    shifts = np.concatenate([[0], sel + 1])
    table = np.concatenate([t[0] for t in tables], axis=2)[shifts]
    cs = border_sums(table, np.concatenate([t[1] for t in tables], axis=2)[shifts], run_of)
    head, tail = placements[idx[0]], placements[idx[-1]]
    pinned = int(tail.run.trusted[-1]) + tail.shift == tail.first + tail.count - 1
    place = (head.first, head.count, head.anchored, pinned)
    deltas = np.array(RESPLIT_DELTAS, np.int64)[sel]
    limits = (RESPLIT_RATIO, RESPLIT_LEVELS, float(RESPLIT_PAIRS), RESPLIT_SHARE, RESPLIT_SIGMAS)
    pieces = (RESPLIT_PIECE, opts.back_mcus, opts.skip_mcus)
    cols = borders.cols

    def move(a: int, b: int, d: int) -> tuple:
        return tuple(idx[nth[a] : nth[b - 1] + 1]), int(a - starts[a]), int(b - starts[b - 1]), int(deltas[d])

    score, end, which = best_chains(cs, m, pos, starts, ends, cols, place, deltas, limits, pieces, CHAIN_ROWS * cols)
    out = [(float(score[a]), [move(a, int(end[a]), int(which[a]))]) for a in np.flatnonzero(np.isfinite(score))]
    if STACKS:
        score, stack = best_stacks(cs, table, m, pos, starts, ends, cols, place, deltas, limits, pieces)
        for a in np.flatnonzero(np.isfinite(score)):
            b, a2, b2, d = (int(x) for x in stack[a])
            out.append((float(score[a]), [move(a, b, d), move(a2, b2, d)]))
    return out


def _moved(placements: list[Placement], move: tuple, opts: RunOptions) -> dict[int, list[Placement]]:
    """What each run of a stretch becomes once it moves: per index in ``placements``, its pieces
    in decode order (a cut run's head or tail stays, the part in the stretch moves)."""
    runs, a, b, delta = move
    out: dict[int, list[Placement]] = {}
    for r in runs:
        pl = placements[r]
        lo = a if r == runs[0] else 0
        hi = b if r == runs[-1] else pl.run.trusted.size
        pieces: list[tuple] = []
        run = pl.run
        if hi < run.trusted.size:  # the end of the stretch cuts the run: its tail stays
            head_part, rest = split_at(run, hi, int(run.trusted[hi]), opts)
            pieces.append((rest, False))
            run = head_part
        if lo > 0:  # the start cuts the run: its head stays
            keep, moving = split_at(run, lo, int(run.trusted[lo]), opts)
            pieces.append((moving, True))
            pieces.append((keep, False))
        else:
            pieces.append((run, True))
        out[r] = [replace(pl, run=piece, shift=pl.shift + (delta if moves else 0),
                          anchored=pl.anchored and piece.first == pl.run.first)
                  for piece, moves in reversed(pieces) if piece.trusted.size]
    return out


def rechain(placements: list[Placement], borders: _Borders, opts: RunOptions, sound: frozenset = frozenset()) -> int:
    """Move stretches of the decode that join the rows above and below them clearly better an
    MCU or a few aside, cutting the runs where they begin and end (``placements`` changed in
    place, pieces in decode order). Intervals decoded as written (``sound``) are left alone.
    Returns the number of stretches moved."""
    total = 0
    for npass in range(RESPLIT_PASSES):
        borders.start(placements)
        segments: dict[int, list[int]] = {}
        for r, pl in enumerate(placements):
            if pl.run.trusted.size and pl.first not in sound:
                segments.setdefault(pl.first, []).append(r)
        found = []
        for idx in segments.values():
            idx.sort(key=lambda r: placements[r].run.first)
            if npass and not any(borders.stale(placements[r]) for r in idx):
                continue  # nothing near this interval moved since it was judged
            found.extend(_segment_moves(placements, idx, borders, opts))
        claimed = np.zeros(borders.rows + 2, bool)
        changes: dict[int, list[Placement]] = {}
        for _, moves in sorted(found, key=lambda x: -x[0]):
            runs = [r for mv in moves for r in mv[0]]
            if any(r in changes for r in runs):
                continue
            at = np.concatenate([borders.rows_of(placements[r]) for r in runs])
            if claimed[at].any():
                continue
            claimed[borders.near(at, 1)] = True
            for r in runs:
                borders.moved(placements[r])
            for mv in moves:
                changes.update(_moved(placements, mv, opts))
            total += 1
        if not changes:
            break
        placements[:] = [piece for r, pl in enumerate(placements) for piece in changes.get(r, [pl])]
    return total


def realign(placements: list[Placement], edges: tuple, cols: int, n: int, opts: RunOptions,
            sound: frozenset = frozenset(), chains: bool = True) -> int:
    """:func:`~acir_core.sca.resplit.resplit`, :func:`~acir_core.sca.resplit.regroup`, then
    :func:`rechain` (``chains``), on the border tables they share. ``edges``: (inner, outer) as
    for :func:`acir_core.sca.recheck.recheck`; ``sound``: first MCUs of the intervals decoded as
    written (no silent break can be in them: left alone). Returns the number of moves."""
    borders = _Borders(edges, cols, n)
    moves = resplit(placements, borders, opts, sound) + regroup(placements, borders, sound)
    return moves + (rechain(placements, borders, opts, sound) if chains else 0)
