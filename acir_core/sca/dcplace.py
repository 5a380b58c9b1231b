"""The stretches of a progressive DC scan placed to the MCU by the picture's own edges.

Against a thumbnail a stretch that an error moved is placed to within a few MCUs: a 160-pixel
thumbnail of a 4000-pixel photo has one pixel per one or two MCUs. The AC bands the bits placed
(:class:`acir_core.jpeg.witness.BandWitness`) draw every edge of the picture but not its levels;
across each block border they say how far the DCs on either side must step for the picture to
go on (:func:`acir_core.sca.dcrecover.edge_targets`). A stretch whose DCs come from a few MCUs
off steps where no edge is; at its place the DC steps follow the edges (docs/decoder.md,
progressive files).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from acir_core.jpeg.decoder import DecodeResult
from acir_core.jpeg.progressive import dc_lost
from acir_core.jpeg.render import component_plane
from acir_core.sca.dcrecover import edge_targets
from acir_core.sca.dcstretch import DCSteps, by_mcu, dc_grid, mcu_sampling, moved_coefficients

PLACE_REACH = 3  # MCUs around its place so far a stretch is tried at
PLACE_LEAST = 64  # MCUs a stretch needs to be placed again
PLACE_CLEAR = 0.8  # share of the misfit at its place so far, and at every other shift, the best must reach
PLACE_VOTE = 0.95  # share of its own misfit where it is that a component's edges must reach to back a move
PLACE_VOTES = 2  # components that must back it (each one's bands come from scans of its own)
PLACE_VETO = 1.25  # times its own misfit where it is past which one component's edges stop a move
PLACE_SPLIT = 0.8  # share of a stretch's best misfit as one that two pieces at different shifts must reach
LEVEL_WEIGHT = 0.1  # weight a border's edge target needs to level a stretch moved
LEVEL_LEAST = 32  # such borders it needs


def _low_witnessed(result: DecodeResult, ci: int) -> np.ndarray:
    """Component ``ci``'s blocks whose lowest AC band (zig-zag 1) the bits placed."""
    return (result.witness_bands[ci] & np.uint64(2)) != 0


def _targets(result: DecodeResult, ci: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Component ``ci``'s edge targets from its witnessed AC (:func:`edge_targets`), weighted 0
    across a border where a block lacks its lowest AC band; None without any."""
    seen = _low_witnessed(result, ci)
    if not seen.any():
        return None
    th, wh, tv, wv = edge_targets(component_plane(result.witness[ci], result.qtables[ci]))
    return th, wh * (seen[:, :-1] & seen[:, 1:]), tv, wv * (seen[:-1] & seen[1:])


def _borders(result: DecodeResult, sid: np.ndarray,
             targets: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None], rows: int,
             cols: int, coefficients: tuple[np.ndarray, ...] | None = None) -> list[tuple | None]:
    """Per component, what :func:`_misfits` needs whatever the shift: its DC levels per MCU (scan
    order, v × h blocks; from ``coefficients``, default the decode's) and the edge targets with
    their weights, 0 on borders that leave a stretch (``sid``: per MCU its stretch, -1
    untrusted: its borders count nowhere)."""
    coefficients = result.coefficients if coefficients is None else coefficients
    out = []
    for ci, t in enumerate(targets):
        if t is None:
            out.append(None)
            continue
        th, wh, tv, wv = t
        v, h = mcu_sampling(result, ci)
        q0 = float(result.qtables[ci].reshape(-1)[0]) / 8.0
        dc = by_mcu(coefficients[ci][..., 0].astype(np.float64) * q0, rows, cols, v, h)
        k = np.repeat(np.repeat(sid.reshape(rows, cols), v, 0), h, 1)
        br, bc = rows * v, cols * h
        wh = wh[:br, :bc - 1] * ((k[:, 1:] == k[:, :-1]) & (k[:, 1:] >= 0))
        wv = wv[:br - 1, :bc] * ((k[1:] == k[:-1]) & (k[1:] >= 0))
        out.append((dc.transpose(0, 2, 1, 3).reshape(rows * cols, v, h), th[:br, :bc - 1], wh, tv[:br - 1, :bc], wv))
    return out


def _misfits(borders: list[tuple | None], source: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Per component and MCU (scan order): how far the DC steps across its blocks' right and
    bottom borders, with each MCU's DC taken from ``source``, are from the edge targets (weighted
    squares, levels; ``borders`` from :func:`_borders`)."""
    out = np.zeros((len(borders), rows * cols))
    for ci, b in enumerate(borders):
        if b is None:
            continue
        dc, th, wh, tv, wv = b
        v, h = dc.shape[1:]
        lvl = dc[source].reshape(rows, cols, v, h).transpose(0, 2, 1, 3).reshape(rows * v, cols * h)
        per = np.zeros(lvl.shape)
        per[:, :-1] += wh * (np.diff(lvl, axis=1) - th) ** 2
        per[:-1] += wv * (np.diff(lvl, axis=0) - tv) ** 2
        out[ci] = by_mcu(per, rows, cols, v, h).sum(axis=(1, 3)).ravel()
    return out


def edge_misfits(result: DecodeResult, candidates: Sequence[tuple[np.ndarray, ...]],
                 untrusted: np.ndarray) -> list[float]:
    """For each of ``candidates`` (DC placements of one decode, its coefficients), how far its DC
    steps across the block borders of and between MCUs outside ``untrusted`` (the frame's MCU
    grid) are from the edges the bits-placed AC bands draw (weighted squares, levels): the one
    the picture's own edges back has the smallest. All 0 without a witness."""
    if result.witness is None or result.witness_bands is None:
        return [0.0] * len(candidates)
    rows, cols = dc_grid(result)
    targets = [_targets(result, ci) for ci in range(len(result.frame.components))]
    sid = np.where(untrusted.ravel(), -1, 0)
    return [float(_misfits(_borders(result, sid, targets, rows, cols, c), np.arange(rows * cols), rows, cols).sum())
            for c in candidates]


def _relevel(result: DecodeResult, steps: DCSteps, source: np.ndarray, untrusted: np.ndarray, sid: np.ndarray,
             moved: list[tuple[int, int]], rows: int, cols: int) -> np.ndarray:
    """The offsets of ``steps`` with each stretch ``moved`` (MCU ranges, scan order) levelled
    again, in turn, by the median misfit of its DC steps into trusted MCUs above and before it
    (``sid``: per MCU its stretch, -1 untrusted): an offset fitted at the old shift joined the
    wrong MCUs. The edges come from the decode's AC where the bits placed the lowest band, a
    smooth picture elsewhere."""
    offset = steps.offset.copy()
    coefficients = moved_coefficients(result, source, offset, untrusted, steps.scales, steps.unit, cols)
    for ci in range(len(result.frame.components)):
        v, h = mcu_sampling(result, ci)
        step = float(steps.scales[ci]) * steps.unit  # levels per unit of the DC scan
        ac = np.where(_low_witnessed(result, ci)[..., None], result.coefficients[ci], 0)
        ac[..., 0] = 0
        th, wh, tv, wv = edge_targets(component_plane(ac.astype(np.int16), result.qtables[ci]))
        br, bc = rows * v, cols * h
        lvl = coefficients[ci][:br, :bc, 0].astype(np.float64) * float(steps.scales[ci])
        blk = np.repeat(np.repeat(sid.reshape(rows, cols), v, 0), h, 1)
        down = wv[:br - 1, :bc] > LEVEL_WEIGHT
        across = wh[:br, :bc - 1] > LEVEL_WEIGHT
        for a, b in moved:
            s = sid[a:b].max()
            top = down & (blk[1:] == s) & (blk[:-1] != s) & (blk[:-1] >= 0)
            left = across & (blk[:, 1:] == s) & (blk[:, :-1] != s) & (blk[:, :-1] >= 0)
            r = np.concatenate([(np.diff(lvl, axis=0) - tv[:br - 1, :bc])[top],
                                (np.diff(lvl, axis=1) - th[:br, :bc - 1])[left]])
            if r.size < LEVEL_LEAST:
                continue
            m = float(np.median(r)) / step
            units = float(np.rint(m)) if abs(m) >= 1 else 0.0  # the targets carry half a unit of noise
            if units:
                offset[a:b, ci] += units * step
                lvl[blk == s] -= units * step
    return offset


def place_by_edges(result: DecodeResult, steps: DCSteps) -> DCSteps:
    """``steps`` with each stretch of at least ``PLACE_LEAST`` MCUs moved up to ``PLACE_REACH``
    MCUs where its DC steps follow the edges of the bits-placed AC bands clearly better (the
    ``PLACE_*`` rules: clear by the summed misfit or by the geometric mean of each component's
    share of its own; backed by two components, none against); one that moves is cut first
    where its pieces belong at different shifts (:func:`_pieces`), each piece judged again, and
    the last may move past the scan's end (its MCUs there left untrusted). Offsets that came from how the
    MCUs join are levelled again from the first stretch moved on (:func:`_relevel`).
    ``starts``, ``shifts`` and ``offsets`` stay as found. Unchanged without a witness or a step
    (docs/decoder.md)."""
    if result.witness is None or result.witness_bands is None or result.bands is None or \
            steps.source is None or not steps.found:
        return steps
    rows, cols = dc_grid(result)
    n = rows * cols
    targets = [_targets(result, ci) for ci in range(len(result.frame.components))]
    if all(t is None for t in targets):
        return steps
    untrusted = steps.untrusted.ravel()
    out = untrusted | dc_lost(result).ravel()
    # a stretch: one shift and one offset, every MCU trusted and holding its DC
    new_shift = np.diff(np.arange(n) - steps.source) != 0
    new_offset = np.any(np.diff(steps.offset, axis=0) != 0, axis=1)
    cut = np.concatenate([[True], new_shift | new_offset | (out[1:] != out[:-1])])
    sid = np.where(out, -1, np.cumsum(cut) - 1)
    bounds = np.concatenate([np.flatnonzero(cut), [n]])
    stretches = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])
                 if b - a >= PLACE_LEAST and not out[a] and not (a == 0 and steps.source[0] == 0)]
    if not stretches:
        return steps
    shifts = range(-PLACE_REACH, PLACE_REACH + 1)
    borders = _borders(result, sid, targets, rows, cols)
    cost = np.stack([_misfits(borders, np.clip(steps.source + d, 0, n - 1), rows, cols)
                     for d in shifts], axis=1)  # component, shift, MCU
    source = steps.source.copy()
    moved = []
    for a, b in stretches:
        beyond = _beyond(int(steps.source[a:b].min()), n)
        whole = _best_shift(cost[:, :, a:b].sum(axis=2), beyond)
        pieces = _pieces(cost, a, b, beyond) if whole else []  # a stretch that stays is not cut
        for lo, hi in pieces:
            if lo > a:
                sid[lo:hi] = sid.max() + 1
            best = whole if len(pieces) == 1 else \
                _best_shift(cost[:, :, lo:hi].sum(axis=2), _beyond(int(steps.source[lo:hi].min()), n))
            if best:
                source[lo:hi] += best
                moved.append((lo, hi))
    if not moved:
        return steps
    past = source >= n  # the last stretch moved on: its last MCUs' DC lies past the scan's end
    if past.any():
        untrusted = untrusted | past
        sid[past] = -1
        source = np.minimum(source, n - 1)
    offset = steps.offset
    if steps.by_joins:  # each stretch was levelled on the one above: from the first moved on, all again
        cuts = np.flatnonzero(np.diff(sid) != 0) + 1
        edges = np.concatenate([[0], cuts, [n]]).tolist()
        later = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if a >= moved[0][0] and sid[a] >= 0]
        offset = _relevel(result, steps, source, untrusted, sid, later, rows, cols)
    coefficients = moved_coefficients(result, source, offset, untrusted, steps.scales, steps.unit, cols)
    return dataclasses.replace(steps, coefficients=coefficients, source=source, offset=offset,
                               untrusted=untrusted.reshape(rows, cols))


def _beyond(lo: int, n: int) -> np.ndarray:
    """Per shift in reach, whether it takes a stretch whose sources start at ``lo`` out of the
    scan's ``n`` MCUs: past its start, or wholly past its end (partly is allowed: the MCUs whose
    DC would lie past the end are left untrusted)."""
    return np.array([lo + d < 0 or lo + d >= n for d in range(-PLACE_REACH, PLACE_REACH + 1)])


def _pieces(cost: np.ndarray, a: int, b: int, beyond: np.ndarray) -> list[tuple[int, int]]:
    """The stretch ``a``..``b`` cut where its halves belong at different shifts (``cost``: misfit
    per component, shift and MCU; ``beyond``: shifts out of the scan, :func:`_beyond`): a DC step
    no search found inside it. Cut at the MCU where two pieces, each at its own best shift, fit
    under ``PLACE_SPLIT`` of the stretch's best as one (each component's misfit in its share of
    its own where the stretch is, so that each weighs alike), each piece at least
    ``PLACE_LEAST`` MCUs, and the pieces cut again the same way."""
    each = cost[:, :, a:b]
    own = each[:, PLACE_REACH].sum(axis=1)
    judges = own > 0
    if b - a < 2 * PLACE_LEAST or not judges.any():
        return [(a, b)]
    share = (each[judges] / own[judges, None, None]).sum(axis=0)[~beyond]  # shift in the scan, MCU
    cum = np.concatenate([np.zeros((share.shape[0], 1)), np.cumsum(share, axis=1)], axis=1)
    at = np.arange(PLACE_LEAST, b - a - PLACE_LEAST + 1)
    left, right = cum[:, at], cum[:, -1:] - cum[:, at]
    k = int(np.argmin(left.min(axis=0) + right.min(axis=0)))
    t = int(at[k])
    if left[:, k].min() + right[:, k].min() >= PLACE_SPLIT * cum[:, -1].min() or \
            int(np.argmin(left[:, k])) == int(np.argmin(right[:, k])):
        return [(a, b)]
    return _pieces(cost, a, a + t, beyond) + _pieces(cost, a + t, b, beyond)


def _best_shift(each: np.ndarray, beyond: np.ndarray) -> int:
    """The shift a stretch moves by (0: it stays) from its misfit per component and shift
    (``each``; ``beyond``: shifts out of the scan, :func:`_beyond`): clear by the summed misfit or
    by the geometric mean of each component's share of its own (a component whose edges misfit
    everywhere, a band its errors left noisy, then outweighs no other), and backed by
    ``PLACE_VOTES`` components with none against (a band an error read silently moved
    witnesses a wrong place, and each component's bands come from scans of their own)."""
    c = each.sum(axis=0)
    c[beyond] = np.inf
    here = each[:, PLACE_REACH]
    judges = here > 0
    if not judges.any():
        return 0
    rel = np.exp(np.log(np.maximum(each[judges], 1e-12) / here[judges, None]).mean(axis=0))
    rel[beyond] = np.inf
    for score in (c, rel):
        k = int(np.argmin(score))
        if k != PLACE_REACH and score[k] < PLACE_CLEAR * score[PLACE_REACH] and \
                score[k] <= PLACE_CLEAR * np.min(np.delete(score, k)):
            backed = np.sum(each[:, k] < PLACE_VOTE * here) >= PLACE_VOTES
            return k - PLACE_REACH if backed and not np.any(each[:, k] > PLACE_VETO * here) else 0
    return 0
