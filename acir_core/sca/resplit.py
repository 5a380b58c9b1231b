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

from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from acir_core.sca.dcfit import Placement
from acir_core.sca.median import median
from acir_core.sca.options import RunOptions
from acir_core.sca.recheck import _claim
from acir_core.sca.runs import split_at

RESPLIT_DELTAS = (-4, -3, -2, -1, 1, 2, 3, 4)  # moves tried: a silent break gains or loses an MCU or two
RESPLIT_RATIO = 0.3  # a piece moves where its borders then cost at most 1 - this share of where it is ...
RESPLIT_LEVELS = 0.5  # ... and this many levels less per bordering MCU
RESPLIT_PAIRS = 12  # bordering MCUs a move needs to be judged ...
RESPLIT_SHARE = 0.5  # ... and this share of the moved MCUs, up to a row of them
RESPLIT_SIGMAS = 6.0  # ... or stands this many standard errors above 0
RESPLIT_PIECE = 8  # MCUs a moved piece, and the piece left in place, must keep
RESPLIT_UNJOINED = 5.0  # a border whose best join costs this × the run's median best says nothing
RESPLIT_UNJOINED_LEVELS = 8.0  # ... and this many levels (in flat content every textured border is 5× the median)
RESPLIT_PASSES = 4  # passes over the runs (a moved piece changes its neighbours' borders)

_DELTAS = np.array(RESPLIT_DELTAS, np.int64)
_OPPOSITE = np.array([RESPLIT_DELTAS.index(-d) for d in RESPLIT_DELTAS], np.int64)  # index of -delta


@njit(cache=True)
def _spread(v, w) -> float:
    """Mean absolute deviation of ``v[:w]`` from its mean."""
    mean = 0.0
    for x in range(w):
        mean += v[x]
    mean /= w
    s = 0.0
    for x in range(w):
        s += abs(v[x] - mean)
    return s / w


@njit(cache=True)
def border_table(m, shifts, f, cnt, cols, owner, dec, tops, bottoms):
    """Per shift of ``shifts``, side (0: top, 1: bottom) and MCU of ``m`` placed at ``m + shift``:
    the mean absolute step across that border to the MCU placed beside it, once the mean step
    is taken off (a DC the break may have changed says nothing), averaged over components; nan
    where nothing is placed there. ``tops`` / ``bottoms``: per component the MCUs' top edges
    extrapolated inwards and bottom ones outwards. Also returns which placement (``owner``) each
    of those MCUs belongs to (-1: none)."""
    n = owner.size
    out = np.full((shifts.size, 2, m.size), np.nan)
    who = np.full((shifts.size, 2, m.size), -1, np.int64)
    v = np.empty(64)
    for d in range(shifts.size):
        for q in range(m.size):
            i = m[q]
            t = i + shifts[d]
            if t < f or t >= f + cnt:
                continue
            for side in range(2):
                nb = t - cols if side == 0 else t + cols
                if nb < 0 or nb >= n or owner[nb] < 0:
                    continue
                j = dec[nb]
                total = 0.0
                for k in range(len(tops)):
                    a = tops[k] if side == 0 else bottoms[k]
                    b = bottoms[k] if side == 0 else tops[k]
                    w = a.shape[1]
                    for x in range(w):
                        v[x] = a[i, x] - b[j, x]
                    total += _spread(v, w)
                out[d, side, q] = total / len(tops)
                who[d, side, q] = owner[nb]
    return out, who


@njit(cache=True)
def mute_unjoined(costs: np.ndarray) -> np.ndarray:
    """``costs`` (:func:`border_table`) with the borders that join at no shift tried left out
    (nan): where the best of them still costs more than ``RESPLIT_UNJOINED`` × the run's median
    best and more than ``RESPLIT_UNJOINED_LEVELS``, the content beside is garbage or a run placed off. It
    says nothing of which shift is right, and its large steps would outweigh a row of clear
    borders in the sums that judge a move."""
    n_s, sides, size = costs.shape
    best = np.full((sides, size), np.nan)
    found = np.empty(sides * size)
    c = 0
    for side in range(sides):
        for q in range(size):
            low = np.inf
            seen = False
            for d in range(n_s):
                v = costs[d, side, q]
                if not np.isnan(v):
                    seen = True
                    low = min(low, v)
            if seen:
                best[side, q] = low
                found[c] = low
                c += 1
    if c == 0:
        return costs
    bar = max(RESPLIT_UNJOINED * median(found[:c], 0.5), RESPLIT_UNJOINED_LEVELS)
    out = costs.copy()
    for side in range(sides):
        for q in range(size):
            if best[side, q] > bar:
                out[:, side, q] = np.nan
    return out


@njit(cache=True)
def border_sums(table, who, own):
    """Per quantity (gain, base and pairs over all borders, then over those with other runs than
    the MCU's own, then the squared gains of both), delta and side: its running sum over the
    MCUs (one more entry than MCUs). ``table`` / ``who``: :func:`border_table` (shift index 0
    where the MCUs are, then the moves); ``own``: each MCU's run in ``who``'s numbering."""
    deltas, size = table.shape[0] - 1, table.shape[2]
    cs = np.zeros((8, deltas, 2, size + 1))
    for d in range(deltas):
        for side in range(2):
            acc = np.zeros(8)
            for q in range(size):
                h = table[0, side, q]
                c = table[d + 1, side, q]
                if not (np.isnan(h) or np.isnan(c)):
                    acc[0] += h - c
                    acc[1] += h
                    acc[2] += 1.0
                    acc[6] += (h - c) * (h - c)
                    if who[0, side, q] != own[q] and who[d + 1, side, q] != own[q]:
                        acc[3] += h - c
                        acc[4] += h
                        acc[5] += 1.0
                        acc[7] += (h - c) * (h - c)
                for k in range(8):
                    cs[k, d, side, q + 1] = acc[k]
    return cs


@njit(cache=True)
def _window(cs, k, d, top_lo, top_hi, bot_lo, bot_hi):
    return (cs[k, d, 0, top_hi] - cs[k, d, 0, top_lo]) + (cs[k, d, 1, bot_hi] - cs[k, d, 1, bot_lo])


@njit(cache=True)
def _scan_cuts(cs, m, cols, place, deltas, opposite, limits, pieces):
    """The best (score, cut, tail, delta index) over every cut, both pieces and every delta, as
    :func:`_best_move` describes; score -inf where none. ``place``: (shift, segment's first MCU,
    its MCU count, anchored, pinned); ``limits``: (ratio, levels, pairs, share, sigmas);
    ``pieces``: (MCUs a piece keeps, MCUs a cut leaves out before it, after it)."""
    shift, first, count, anchored, pinned = place
    ratio, levels, min_pairs, share, sigmas = limits
    min_piece, back, skip = pieces
    size = m.size
    first_row = np.searchsorted(m, m[0] + cols)
    last_row = np.searchsorted(m, m[size - 1] - cols + 1)
    best = (-np.inf, 0, True, 0)
    for c in range(0, size - min_piece + 1):
        if c > 0 and (c - back < min_piece or size - c - skip < min_piece):
            continue  # what the cut leaves of either piece is too short
        row_end = np.searchsorted(m, m[c] + cols)
        head_last = min(np.searchsorted(m, m[max(c - 1, 0)] - cols + 1), c)
        # the tail from c: its first row against what lies above, the run's last row below;
        # the head up to c: the run's first row above, the head's last row below
        tail_w = (c, row_end, max(c, last_row), size)
        head_w = (0, min(first_row, c), head_last, c)
        for tail in (True, False):
            if (tail and (pinned or (c == 0 and anchored))) or (not tail and (c == 0 or anchored)):
                continue  # an interval's first run starts where it does, a pinned one ends there
            piece = size - c if tail else c
            lo, hi = (m[c], m[size - 1]) if tail else (m[0], m[c - 1])
            need = max(min_pairs, share * min(piece, cols))
            mw = tail_w if tail else head_w
            ow = head_w if tail else tail_w
            for d in range(deltas.size):
                if lo + shift + deltas[d] < first or hi + shift + deltas[d] >= first + count:
                    continue  # the piece would leave its interval
                g = _window(cs, 0, d, mw[0], mw[1], mw[2], mw[3])
                b = _window(cs, 1, d, mw[0], mw[1], mw[2], mw[3])
                p = _window(cs, 2, d, mw[0], mw[1], mw[2], mw[3])
                if p < need or g < levels * p:
                    continue
                g2 = _window(cs, 6, d, mw[0], mw[1], mw[2], mw[3])
                var = max(g2 - g * g / p, 1e-9)
                if g < ratio * b and g < sigmas * np.sqrt(var):
                    continue
                o = opposite[d]
                xg = _window(cs, 3, d, mw[0], mw[1], mw[2], mw[3]) - _window(cs, 3, o, ow[0], ow[1], ow[2], ow[3])
                xb = _window(cs, 4, d, mw[0], mw[1], mw[2], mw[3]) + _window(cs, 4, o, ow[0], ow[1], ow[2], ow[3])
                xp = _window(cs, 5, d, mw[0], mw[1], mw[2], mw[3]) + _window(cs, 5, o, ow[0], ow[1], ow[2], ow[3])
                if xp < min_pairs / 2 or xg < ratio * xb or xg < levels * xp:
                    continue
                score = g / p
                if score > best[0]:
                    best = (score, c, tail, d)
    return best


def _best_move(pl: Placement, table: np.ndarray, who: np.ndarray, own: int, cols: int, opts: RunOptions):
    """The clearest move of one run's head or tail: (gain per bordering MCU, index of the cut in
    its trusted MCUs, moves the tail, index of the delta) or None. ``table`` / ``who``:
    :func:`border_table` at the run's shift (row 0) and at each move; ``own``: the run's index
    there. The borders between the head and the tail say only that the two disagree; which of
    them is off, only the borders with other runs can say: there, the piece moved must gain more
    than the other piece would by the opposite move. The first run of an interval keeps its
    head, a run that ends where its interval does keeps its tail, and no piece leaves its
    interval."""
    m = pl.run.trusted
    pinned = int(m[-1]) + pl.shift == pl.first + pl.count - 1
    sums = border_sums(table, who, np.full(m.size, own, np.int64))
    found = _scan_cuts(sums, m, cols, (pl.shift, pl.first, pl.count, pl.anchored, pinned), _DELTAS, _OPPOSITE,
                       (RESPLIT_RATIO, RESPLIT_LEVELS, float(RESPLIT_PAIRS), RESPLIT_SHARE, RESPLIT_SIGMAS),
                       (RESPLIT_PIECE, opts.back_mcus, opts.skip_mcus + 1))
    return None if not np.isfinite(found[0]) else (float(found[0]), int(found[1]), bool(found[2]), int(found[3]))


@dataclass(slots=True)
class _Entry:
    """What :class:`_Borders` keeps of one placement: the placement itself (so that its id stays
    its own), its number, its MCU rows (offset by one), its table and when it was made, and the
    table's neighbours as list indices with the pass they were mapped in."""

    pl: Placement
    uid: int
    rows: np.ndarray
    costs: np.ndarray | None = None
    who: np.ndarray | None = None
    made_at: int = 0
    mapped: np.ndarray | None = None
    mapped_in: int = -1


class _Borders:
    """The border tables (:func:`border_table`) of the placed runs, each kept while nothing placed
    near it moves (every move is stamped on the rows around it, every table with when it was
    made, so a table older than a move near it is made again, whichever step asks next). Runs
    are known by a number of their own (``who`` holds those), since a cut renumbers the list."""

    def __init__(self, edges: tuple, cols: int, n: int):
        (tops, _), (bottoms, _) = edges
        self.tops, self.bottoms = tops[:1], bottoms[:1]
        self.cols, self.n = cols, n
        self.rows = (n + cols - 1) // cols
        self.shifts = np.concatenate([[0], _DELTAS])
        self.cache: dict[int, _Entry] = {}  # id of a placement -> what is kept of it
        self.clock = 0  # moves so far
        self.moved_at = np.zeros(self.rows + 2, np.int64)  # per MCU row (offset by one): the last move near it
        self.next_uid = 0
        self.passes = 0  # passes begun (the list indices ``index`` gives hold for one)

    def rows_of(self, pl: Placement) -> np.ndarray:
        """The MCU rows (offset by one) ``pl`` covers."""
        entry = self.cache.get(id(pl))
        if entry is not None and entry.pl is pl:
            return entry.rows
        return np.clip((pl.run.trusted + pl.shift) // self.cols + 1, 0, self.rows + 1)

    def near(self, at: np.ndarray, reach: int) -> np.ndarray:
        """The rows (offset by one) within ``reach`` of rows ``at``."""
        at = np.unique(at)
        return np.clip((at[:, None] + np.arange(-reach, reach + 1)[None, :]).ravel(), 0, self.rows + 1)

    def start(self, placements: list[Placement]) -> None:
        """A pass over ``placements`` begins: where each MCU lies and whose it is."""
        for pl in placements:
            if id(pl) not in self.cache:
                rows = np.clip((pl.run.trusted + pl.shift) // self.cols + 1, 0, self.rows + 1)
                self.cache[id(pl)] = _Entry(pl=pl, uid=self.next_uid, rows=rows)
                self.next_uid += 1
        live = {id(pl) for pl in placements}
        for key in [k for k in self.cache if k not in live]:
            del self.cache[key]
        self.owner = np.full(self.n, -1, np.int64)
        self.dec = np.zeros(self.n, np.int64)
        for pl in placements:
            _claim(self.owner, self.dec, self.cache[id(pl)].uid, pl.run.trusted, pl.shift, pl.first, pl.count)
        self.index = np.full(self.next_uid, -1, np.int64)  # a run's number -> its index in the list
        for r, pl in enumerate(placements):
            self.index[self.cache[id(pl)].uid] = r
        self.passes += 1

    def stale(self, pl: Placement) -> bool:
        """Whether something near ``pl`` moved since its table was made (or it has none)."""
        entry = self.cache[id(pl)]
        return entry.costs is None or int(self.moved_at[entry.rows].max(initial=0)) > entry.made_at

    def table(self, pl: Placement) -> tuple[np.ndarray, np.ndarray]:
        """Its border costs and, per cost, the index in the list of the run bordering there."""
        entry = self.cache[id(pl)]
        if self.stale(pl):
            costs, who = border_table(pl.run.trusted, pl.shift + self.shifts, pl.first, pl.count, self.cols,
                                      self.owner, self.dec, self.tops, self.bottoms)
            entry.costs, entry.who, entry.made_at = mute_unjoined(costs), who, self.clock
            entry.mapped_in = -1
        if entry.mapped_in != self.passes:
            entry.mapped = np.where(entry.who >= 0, self.index[np.maximum(entry.who, 0)], -1)
            entry.mapped_in = self.passes
        return entry.costs, entry.mapped

    def moved(self, pl: Placement) -> None:
        """``pl`` moves: the tables of the rows around where it was are out of date (a table
        reads the rows either side of its run, up to 4 MCUs aside, and a move crosses into the
        next row as far)."""
        self.clock += 1
        self.moved_at[self.near(self.rows_of(pl), 3)] = self.clock


def resplit(placements: list[Placement], borders: _Borders, opts: RunOptions, sound: frozenset = frozenset()) -> int:
    """Cut runs whose head or tail joins the content around it clearly better an MCU or two
    aside, and move that piece there (``placements`` changed in place: the pieces replace the
    run, in decode order; a moved whole run keeps its place in the list). In each pass the
    clearest moves go first, and a run next to one that moved waits for the next pass (the two
    may each have seen the other's error). Returns the number of moves."""
    total = 0
    for _ in range(RESPLIT_PASSES):
        borders.start(placements)
        found = []
        for r, pl in enumerate(placements):
            m = pl.run.trusted
            if m.size < RESPLIT_PIECE or pl.first in sound or not borders.stale(pl):
                continue
            best = _best_move(pl, *borders.table(pl), r, borders.cols, opts)
            if best is not None:
                found.append((best[0], r, best[1:]))
        claimed = np.zeros(borders.rows + 2, bool)
        moves: dict[int, tuple] = {}
        for _, r, move in sorted(found, key=lambda x: -x[0]):
            at = borders.rows_of(placements[r])
            if claimed[at].any():
                continue
            claimed[borders.near(at, 1)] = True
            moves[r] = move
        out: list[Placement] = []
        for r, pl in enumerate(placements):
            if r not in moves:
                out.append(pl)
                continue
            cut, tail, d = moves[r]
            delta = RESPLIT_DELTAS[d]
            borders.moved(pl)
            if cut == 0:
                out.append(replace(pl, shift=pl.shift + delta))
                continue
            head, rest = split_at(pl.run, cut, int(pl.run.trusted[cut]), opts)
            for piece, moves_it in ((head, not tail), (rest, tail)):
                if piece.trusted.size:
                    out.append(replace(pl, run=piece, shift=pl.shift + (delta if moves_it else 0),
                                       anchored=pl.anchored and piece is head))
        placements[:] = out
        total += len(moves)
        if not moves:
            break
    return total


GROUP_RUNS = 16  # consecutive runs moved together at most
GROUP_ROWS = 4  # rows of MCUs such a group may hold


@njit(cache=True)
def group_moves(costs, who, starts, sizes, first, fixed, span, deltas, max_runs, max_size, ratio, levels,
                min_pairs, share, cols):
    """Per run r1, the best group of runs r1..r2 (consecutive in decode order, one restart
    segment, none anchored) to move together by one delta, judged on the borders its MCUs share
    with runs outside it, above and below, at its place and moved: (score, r2, delta index) with
    score -inf where no group clears ``ratio``, ``levels``, ``min_pairs`` and ``share`` as in
    :func:`_best_move`. ``fixed``: runs that never move (an interval's first, one pinned to its
    end, one in a sound interval); ``span``: per run its first and last position and its
    interval's end (a group never leaves its interval). ``costs`` / ``who``: :func:`border_table`
    of every run concatenated (shift index, side, MCU); run r's MCUs are ``starts[r]`` ..
    + ``sizes[r]``."""
    runs = starts.size
    ndeltas = costs.shape[0] - 1
    score = np.full(runs, -np.inf)
    end = np.zeros(runs, np.int64)
    which = np.zeros(runs, np.int64)
    gain = np.zeros(ndeltas)
    base = np.zeros(ndeltas)
    pairs = np.zeros(ndeltas)
    for r1 in range(runs):
        if fixed[r1]:
            continue
        size = 0
        for r2 in range(r1, min(runs, r1 + max_runs)):
            if fixed[r2] or first[r2] != first[r1]:
                break
            size += sizes[r2]
            if size > max_size:
                break
            gain[:] = 0.0
            base[:] = 0.0
            pairs[:] = 0.0
            for q in range(starts[r1], starts[r2] + sizes[r2]):
                for side in range(2):
                    h = costs[0, side, q]
                    wh = who[0, side, q]
                    if np.isnan(h) or (r1 <= wh <= r2):
                        continue
                    for d in range(ndeltas):
                        c = costs[d + 1, side, q]
                        wm = who[d + 1, side, q]
                        if np.isnan(c) or (r1 <= wm <= r2):
                            continue
                        gain[d] += h - c
                        base[d] += h
                        pairs[d] += 1.0
            need = max(min_pairs, share * min(size, cols))
            lo = span[r1, 0]
            hi = span[r1, 1]
            for r in range(r1, r2 + 1):
                lo = min(lo, span[r, 0])
                hi = max(hi, span[r, 1])
            for d in range(ndeltas):
                if lo + deltas[d] < first[r1] or hi + deltas[d] >= span[r1, 2]:
                    continue
                if pairs[d] >= need and gain[d] >= ratio * base[d] and gain[d] >= levels * pairs[d]:
                    sc = gain[d] / pairs[d]
                    if sc > score[r1]:
                        score[r1] = sc
                        end[r1] = r2
                        which[r1] = d
    return score, end, which


def regroup(placements: list[Placement], borders: _Borders, sound: frozenset = frozenset()) -> int:
    """Move groups of consecutive runs that sit an MCU or a few off together: in smooth content a
    run placed off leaves the next ones a choice between matching it and the truth, and a
    stretch of short runs locks in off; each alone then fits its neighbours in the stretch
    better where it is, the stretch as a whole fits the content around it better aside
    (``placements`` changed in place; ``sound``: first MCUs of intervals decoded as written,
    left alone). Returns the number of runs moved."""
    total = 0
    for _ in range(RESPLIT_PASSES):
        if not placements:
            break
        borders.start(placements)
        span = np.array([(int(pl.run.trusted[0]) + pl.shift, int(pl.run.trusted[-1]) + pl.shift, pl.first + pl.count)
                         if pl.run.trusted.size else (0, 0, 0) for pl in placements], np.int64).reshape(-1, 3)
        fixed = np.array([pl.anchored or pl.first in sound or not pl.run.trusted.size for pl in placements]) | \
            (span[:, 1] == span[:, 2] - 1)
        if fixed.all():
            break
        empty = (np.zeros((_DELTAS.size + 1, 2, 0)), np.zeros((_DELTAS.size + 1, 2, 0), np.int64))
        tables = [empty if f else borders.table(pl) for pl, f in zip(placements, fixed.tolist())]
        sizes = np.array([t[0].shape[2] for t in tables], np.int64)  # a fixed run is no group's member
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        score, end, which = group_moves(np.concatenate([t[0] for t in tables], axis=2),
                                        np.concatenate([t[1] for t in tables], axis=2), starts, sizes,
                                        np.array([pl.first for pl in placements], np.int64), fixed, span,
                                        _DELTAS, GROUP_RUNS, GROUP_ROWS * borders.cols,
                                        RESPLIT_RATIO, RESPLIT_LEVELS, float(RESPLIT_PAIRS), RESPLIT_SHARE,
                                        borders.cols)
        claimed = np.zeros(borders.rows + 2, bool)  # rows near a moved group wait for the next pass
        moved = 0
        for r1 in np.argsort(-score, kind="stable"):
            if not np.isfinite(score[r1]):
                break
            r2 = int(end[r1])
            at = np.concatenate([borders.rows_of(placements[r]) for r in range(r1, r2 + 1)])
            if claimed[at].any():
                continue
            claimed[borders.near(at, 1)] = True
            delta = RESPLIT_DELTAS[int(which[r1])]
            for r in range(r1, r2 + 1):
                pl = placements[r]
                borders.moved(pl)
                placements[r] = replace(pl, shift=pl.shift + delta)
                moved += 1
        total += moved
        if not moved:
            break
    return total
