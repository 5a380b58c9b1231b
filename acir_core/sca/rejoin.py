"""Silent breaks taken back: pieces of one decoded run that were placed alike are one run again.

A run is split wherever its offset against the thumbnail or the roughness across its rows steps
(a silent break). Where the pieces then come out at the same shift and within a level of the same
DC, the break moved nothing that matters, and the likelier story is that there was none: the
decode went on without a failure, so the pieces' DCs differ only by the noise of the fit. Taking
the break back gives them one DC (exact where the split was false) and puts the MCUs the split
left out back as precautions, which their borders can then clear.
"""
from __future__ import annotations

import numpy as np

from acir_core.jpeg.decoder import ScanResult
from acir_core.sca.dcfit import Placement
from acir_core.sca.runs import Run


def _alike(a: np.ndarray, b: np.ndarray, units: np.ndarray, levels: float) -> bool:
    return bool(np.all(np.abs(a - b) * units <= levels + 1e-9))


def _groups(placements: list[Placement], solved: np.ndarray, breaks: set[int], units: np.ndarray,
            levels: float) -> list[list[int]]:
    """Placements (indices, consecutive) that are pieces of one decoded run split only silently
    and placed at one shift with DCs within ``levels`` of each other."""
    groups: list[list[int]] = []
    for i, pl in enumerate(placements):
        if groups:
            j = groups[-1][-1]
            prev = placements[j]
            if (j == i - 1 and prev.first == pl.first and prev.run.end == pl.run.first
                    and pl.run.first not in breaks and prev.shift == pl.shift
                    and all(_alike(solved[g], solved[i], units, levels) for g in groups[-1])):
                groups[-1].append(i)
                continue
        groups.append([i])
    return groups


def rejoin(placements: list[Placement], solved: np.ndarray, sr: ScanResult, units: list[float], levels: float,
           around: tuple[int, int]) -> tuple[list[Placement], np.ndarray, np.ndarray]:
    """``placements`` with every group of pieces placed alike (see the module docstring) joined
    into one, with the DC of its anchored piece or else its largest, and ``solved`` to match.
    Also returns the decoded MCUs (bool per index of the scan) put back or next to where a break
    was taken back (``around``: so many before and after, as a split marks them): placed, but
    only as precautions."""
    n = sr.mcu_rows * sr.mcu_cols
    loose = np.zeros(n, bool)
    if len(placements) < 2:
        return placements, solved, loose
    u = np.asarray(units, np.float64)
    breaks = {int(e.mcu) for e in sr.resyncs}
    out: list[Placement] = []
    dcs = []
    usable = sr.decoded & ~sr.suspect
    for group in _groups(placements, solved, breaks, u, levels):
        pieces = [placements[i] for i in group]
        if len(group) == 1:
            out.append(pieces[0])
            dcs.append(solved[group[0]])
            continue
        ref = next((i for i, p in zip(group, pieces) if p.anchored),
                   max(group, key=lambda i: placements[i].run.trusted.size))
        parts = [pieces[0].run.trusted]
        for a, b in zip(pieces[:-1], pieces[1:]):
            lo = int(a.run.trusted[-1]) + 1 if a.run.trusted.size else a.run.first
            hi = int(b.run.trusted[0]) if b.run.trusted.size else b.run.end
            gap = np.arange(lo, hi, dtype=np.int64)
            gap = gap[usable[gap]] if gap.size else gap
            parts += [gap, b.run.trusted]
            loose[max(lo - around[0], 0): min(hi + around[1], n)] = True
        first, last = pieces[0].run, pieces[-1].run
        run = Run(first.first, last.end, np.concatenate(parts).astype(np.int64), first.settled, last.tail,
                  first.probe_from, last.probe_to)
        size = np.array([p.run.trusted.size for p in pieces], np.float64)
        finite = np.array([p.cost for p in pieces]) < 1e17
        cost = float(np.average([p.cost for p in pieces], weights=size + 1e-9)) if finite.all() else \
            max(p.cost for p in pieces)
        out.append(Placement(run=run, shift=pieces[0].shift, dc=placements[ref].dc, cost=cost,
                             anchored=pieces[0].anchored, first=pieces[0].first, count=pieces[0].count))
        dcs.append(solved[ref])
    return out, np.asarray(dcs).reshape(len(out), -1), loose
