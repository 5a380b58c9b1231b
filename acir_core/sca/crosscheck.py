"""Stretches of runs moved to where an SCA of the same decode without the thumbnail put them.

SCA runs twice on a photo with a thumbnail: once on the decode alone, once guided by the
thumbnail. A camera's thumbnail steps against the photo where its tone curve bends, so the guided
SCA splits runs the unguided one keeps whole; a short piece placed an MCU off lets the runs after
it lock in off with it, row after row (see :mod:`acir_core.sca.rewrap`). The unguided SCA, which
never made that cut, often has those runs where they belong. The runs the two place the same
delta apart, joined where they follow each other in the decode or lie above and below each other
(a stretch locked in off spans rows, and the rows around it are off with it), move together
where the borders of every MCU they leave or take fit better once moved.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from numba import njit

from acir_core.sca.dcfit import Placement
from acir_core.sca.options import RunOptions
from acir_core.sca.recheck import _claim
from acir_core.sca.resplit import _spread
from acir_core.sca.rewrap import REWRAP_GAP, _inside
from acir_core.sca.runs import split_at

CROSS_AGREE = 0.9  # share of a run's MCUs the other SCA placed that must lie the same delta away
CROSS_COVER = 0.8  # share of a run's MCUs the other SCA must have placed for the run to count
CROSS_PIECE = 8  # trusted MCUs each piece of a run cut where the other SCA's places step must have (before the cut)
CROSS_DELTA = 32  # the largest move (MCUs) taken from the other SCA
CROSS_GAIN = 0.5  # levels the borders around a moved group must cost less once moved (mean per MCU pair)
CROSS_PAIRS = 0.9  # share of its bordering MCU pairs a group must keep once moved
CROSS_PASSES = 3  # times the groups are formed again after some moved (their neighbours may follow)


def reference_positions(segments, n: int, scan: int = 0) -> np.ndarray:
    """Per decoded MCU of ``scan`` (``n`` of them), where an SCA's trusted runs (its
    :class:`~acir_core.sca.result.SegmentFix` list ``segments``) put it, every MCU of a run's range
    counted (those it left out too: where its pieces meet is where it cut); -1 where none did."""
    pos = np.full(n, -1, np.int64)
    for s in segments:
        if s.scan != scan or not s.confident:
            continue
        lo, hi = max(s.first_mcu, 0), min(s.end_mcu, n)
        pos[lo:hi] = np.arange(lo, hi) + s.shift
    return pos


def _hint_deltas(pl: Placement, hint: np.ndarray):
    """Per trusted MCU of run ``pl``, the other SCA's place for it less its own (a sentinel where
    it has none), whether it has one, and the distinct deltas with their counts; None where it
    placed fewer than ``CROSS_COVER`` of them."""
    m = pl.run.trusted
    h = hint[m]
    seen = h >= 0
    if not m.size or seen.sum() < CROSS_COVER * m.size:
        return None
    d = np.where(seen, h - m - pl.shift, np.iinfo(np.int64).min)
    vals, counts = np.unique(d[seen], return_counts=True)
    return d, seen, vals, counts


def _delta_of(pl: Placement, hint: np.ndarray) -> int:
    """The move the other SCA's positions ``hint`` ask of run ``pl`` (0: none, or they do not agree)."""
    found = _hint_deltas(pl, hint)
    if found is None:
        return 0
    _, seen, vals, counts = found
    k = int(np.argmax(counts))
    delta = int(vals[k])
    if counts[k] < CROSS_AGREE * seen.sum() or abs(delta) > CROSS_DELTA:
        return 0
    return delta


def crosscheck(placements: list[Placement], hint: np.ndarray, edges: tuple, cols: int, fixed: np.ndarray,
               opts: RunOptions) -> int:
    """Move groups of runs (none ``fixed``) to where the positions ``hint`` (per decoded MCU,
    -1: none; :func:`reference_positions` of the unguided SCA) put them, each run of a group by
    the same delta (:func:`_delta_of`; ``placements`` changed in place): a group is the runs
    with that delta that follow each other in one restart interval (garbage of at most
    ``REWRAP_GAP`` MCUs between them) or border each other above and below. It moves where the
    luma borders of every MCU pair it touches at either place cost ``CROSS_GAIN`` levels less
    on average moved (:func:`_pair_cost`), keeping ``CROSS_PAIRS`` of those pairs. Groups are
    formed again after a move, ``CROSS_PASSES`` times at most. ``edges``: (inner, outer) per
    side and component as for :func:`acir_core.sca.recheck.recheck`. Returns the runs moved."""
    if hint is None or not hint.size or not len(placements):
        return 0
    tops, bottoms = edges[0][0][:1], edges[1][0][:1]
    n = tops[0].shape[0]
    original = list(placements)
    cut_from: list[int] = []  # per placement, the index in ``original`` of the run it is a piece of
    pieces: list[Placement] = []
    for r, pl in enumerate(original):
        parts = [pl] if fixed[r] else _split_by_hint(pl, hint, opts)
        pieces += parts
        cut_from += [r] * len(parts)
    fixed = np.asarray([bool(fixed[r]) for r in cut_from], bool)
    placements[:] = pieces
    total = 0
    for _ in range(CROSS_PASSES):
        deltas = [0 if fixed[r] else _delta_of(pl, hint) for r, pl in enumerate(placements)]
        runs = _RunTable(placements)
        owner, dec = runs.owners(n)
        moved = 0
        for group in _groups(placements, deltas, owner, cols):
            delta = deltas[group[0]]
            if not _inside([placements[r] for r in group], delta):
                continue
            o2, d2 = runs.owners(n, group, delta)
            pos = np.concatenate([placements[r].run.trusted + placements[r].shift + d
                                  for r in group for d in (0, delta)])
            pos = pos[(pos >= 0) & (pos < n)]
            keys = np.unique(np.concatenate([pos, pos + cols]))
            s0, c0 = _pair_cost(keys, owner, dec, tops, bottoms, cols)
            s1, c1 = _pair_cost(keys, o2, d2, tops, bottoms, cols)
            if c1 and c1 >= CROSS_PAIRS * c0 and s1 / c1 <= s0 / max(c0, 1) - CROSS_GAIN:
                for r in group:
                    placements[r] = replace(placements[r], shift=placements[r].shift + delta)
                runs.shifts[group] += delta
                owner, dec = o2, d2
                moved += len(group)
        total += moved
        if not moved:
            break
    _unsplit(placements, original, cut_from)
    return total


def _unsplit(placements: list[Placement], original: list[Placement], cut_from: list[int]) -> None:
    """Runs :func:`_split_by_hint` cut whose pieces all stayed where they were, whole again."""
    out: list[Placement] = []
    k = 0
    while k < len(placements):
        q = k
        while q + 1 < len(placements) and cut_from[q + 1] == cut_from[k]:
            q += 1
        whole = original[cut_from[k]]
        if q > k and all(placements[j].shift == whole.shift for j in range(k, q + 1)):
            out.append(whole)
        else:
            out += placements[k:q + 1]
        k = q + 1
    placements[:] = out


def _split_by_hint(pl: Placement, hint: np.ndarray, opts: RunOptions) -> list[Placement]:
    """``pl`` cut in two where the other SCA's places step from one delta to another
    (:func:`_delta_of`), each piece ``CROSS_PIECE`` trusted MCUs or more and the two deltas
    covering ``CROSS_AGREE`` of the MCUs it placed: it found a silent break the guided SCA left
    inside the run. ``pl`` alone otherwise."""
    m = pl.run.trusted
    found = _hint_deltas(pl, hint) if m.size >= 2 * CROSS_PIECE else None
    if found is None:
        return [pl]
    d, seen, vals, counts = found
    if vals.size < 2:
        return [pl]
    top = np.argsort(counts)[::-1][:2]
    a, b = int(vals[top[0]]), int(vals[top[1]])
    if counts[top[0]] >= CROSS_AGREE * seen.sum() or counts[top].sum() < CROSS_AGREE * seen.sum() or \
            max(abs(a), abs(b)) > CROSS_DELTA:
        return [pl]
    if np.flatnonzero(d == a).mean() > np.flatnonzero(d == b).mean():
        a, b = b, a
    # agreement with "a before the cut, b from it on", per cut
    before = np.concatenate([[0], np.cumsum(d == a)])
    after = np.concatenate([np.cumsum((d == b)[::-1])[::-1], [0]])
    agree = before + after
    cuts = np.arange(CROSS_PIECE, m.size - CROSS_PIECE + 1)
    if not cuts.size:
        return [pl]
    cut = int(cuts[np.argmax(agree[cuts])])
    if agree[cut] < CROSS_AGREE * seen.sum():
        return [pl]
    first, second = split_at(pl.run, cut, int(m[cut]), opts)
    return [replace(pl, run=first), replace(pl, run=second, anchored=False)]


class _RunTable:
    """The runs' MCUs and shifts in flat arrays, for owner maps made in one compiled call (a
    group is tried dozens of times a photo, each against every run's claim)."""

    def __init__(self, placements: list[Placement]) -> None:
        sizes = [pl.run.trusted.size for pl in placements]
        self.trusted = np.concatenate([pl.run.trusted for pl in placements]).astype(np.int64) if placements \
            else np.zeros(0, np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.shifts = np.array([pl.shift for pl in placements], np.int64)
        self.firsts = np.array([pl.first for pl in placements], np.int64)
        self.counts = np.array([pl.count for pl in placements], np.int64)

    def owners(self, n: int, group: list[int] | None = None, delta: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """As :func:`acir_core.sca.rewrap._owners`, with the runs of ``group`` moved by ``delta``."""
        shifts = self.shifts
        if group:
            shifts = shifts.copy()
            shifts[group] += delta
        return _owner_map(self.trusted, self.starts, shifts, self.firsts, self.counts, n)


@njit(cache=True)
def _owner_map(trusted, starts, shifts, firsts, counts, n):
    """Per position, the index of the run placed there (-1: none; the later one where two land)
    and the decoded MCU it put there."""
    owner = np.full(n, -1, np.int64)
    dec = np.zeros(n, np.int64)
    for r in range(starts.size - 1):
        _claim(owner, dec, r, trusted[starts[r]:starts[r + 1]], shifts[r], firsts[r], counts[r])
    return owner, dec


def _groups(placements: list[Placement], deltas: list[int], owner: np.ndarray, cols: int) -> list[list[int]]:
    """The runs with a nonzero delta, grouped (:func:`crosscheck`), each group ascending."""
    parent = list(range(len(placements)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a
    n = owner.size
    for r, pl in enumerate(placements):
        if not deltas[r]:
            continue
        nxt = r + 1
        if nxt < len(placements) and deltas[nxt] == deltas[r] and placements[nxt].first == pl.first and \
                placements[nxt].run.first - pl.run.end <= REWRAP_GAP:
            parent[find(r)] = find(nxt)
        pos = pl.run.trusted + pl.shift
        near = np.concatenate([pos - cols, pos + cols])
        for o in np.unique(owner[near[(near >= 0) & (near < n)]]).tolist():
            if o >= 0 and o != r and deltas[o] == deltas[r]:
                parent[find(r)] = find(o)
    out: dict[int, list[int]] = {}
    for r in range(len(placements)):
        if deltas[r]:
            out.setdefault(find(r), []).append(r)
    return list(out.values())


@njit(cache=True)
def _pair_cost(keys, owner, dec, tops, bottoms, cols):
    """Summed luma border cost (mean absolute step less its mean, as
    :func:`acir_core.sca.resplit.border_table`) of the MCU pairs (p - ``cols``, p) for each p of
    ``keys`` with both placed (``owner``, ``dec``), and how many."""
    total, count = 0.0, 0
    v = np.empty(64)
    for p in keys:
        a = p - cols
        if a < 0 or p >= owner.size or owner[a] < 0 or owner[p] < 0:
            continue
        i, j = dec[p], dec[a]
        cost = 0.0
        for k in range(len(tops)):
            w = tops[k].shape[1]
            for x in range(w):
                v[x] = tops[k][i, x] - bottoms[k][j, x]
            cost += _spread(v, w)
        total += cost / len(tops)
        count += 1
    return total, count
