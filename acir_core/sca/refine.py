"""The last DC check, against the thumbnail (:mod:`acir_core.sca.thumbdc`).

A run off by δ quantiser steps is off by δ·q/8 levels everywhere, and a thumbnail pixel is a
fixed weighted sum of the photo's pixels, so every chunk of every run can be fitted at once
through the thumbnail's resampling filter. Chunks the fit pins to a whole step move by it; the
ones it cannot pin, or finds between two steps, become damage; the content around what it
rejects is marked as a precaution. Only a thumbnail that reproduces our downsampled result to a
fraction of a level has a say (an exact bicubic thumbnail does, an EXIF one stored as a q90 JPEG
does not).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acir_core.jpeg.decoder import DecodeResult, ScanResult
from acir_core.jpeg.render import SamplePlanes, rows_redone
from acir_core.jpeg.tables import scan_cell
from acir_core.sca.edges import scan_geometry
from acir_core.sca.marks import above_or_below, short_fixes, spread, unseen_edges, with_decode_neighbours
from acir_core.sca.options import MaskOptions, RefineOptions
from acir_core.sca.result import SegmentFix
from acir_core.sca.thumbdc import solve_offsets
from acir_core.sca.thumbmodel import Downsample


@dataclass(frozen=True, kw_only=True, eq=False)
class RefineContext:
    """What the check works on: the decode, its single scan, the corrected coefficients (changed
    in place), the placed runs (``fixes``) and which of them holds each MCU (``owner``, rows ×
    cols, -1: damage), the thumbnail (H'×W'×3 uint8), and the image rendered from ``coefs``
    (``rgb``, re-rendered in place) with its blocks' samples (``samples``)."""

    result: DecodeResult
    scan: ScanResult
    coefs: list[np.ndarray] = field(repr=False)
    owner: np.ndarray = field(repr=False)
    fixes: list[SegmentFix]
    thumbnail: np.ndarray = field(repr=False)
    rgb: np.ndarray = field(repr=False)
    samples: SamplePlanes = field(repr=False)


@dataclass(frozen=True, kw_only=True, eq=False)
class Refined:
    """What the check changed: the new fixes (a run whose chunks moved differently is split into
    one fix per stretch), the MCUs it found damaged and those it marks as a precaution (rows ×
    cols bool), and the re-rendered image."""

    fixes: list[SegmentFix]
    damaged: np.ndarray = field(repr=False)
    doubted: np.ndarray = field(repr=False)
    rgb: np.ndarray = field(repr=False)


def round_marks(fit, var: np.ndarray, run: np.ndarray, bad_chunk: np.ndarray, loose_chunk: np.ndarray,
                mixed_chunk: np.ndarray, reversed_ids: np.ndarray | None, rows: int, cols: int,
                options: RefineOptions, marks: MaskOptions) -> tuple[np.ndarray, np.ndarray]:
    """The MCUs (flat) one thumbnail fit finds damaged, and those it marks as a precaution, as
    :func:`thumbnail_refine` describes: its chunk verdicts, what the thumbnail contradicts
    (``fit.standouts()``) and the precautions around them."""
    standouts = fit.standouts().reshape(-1) & (var >= 0)
    damaged = np.isin(var, np.flatnonzero(bad_chunk & ~loose_chunk)) | standouts
    doubted = np.isin(var, np.flatnonzero(loose_chunk)) | with_decode_neighbours(
        damaged, var, run, marks.garble_before, marks.garble_after)
    coverage = fit.coverage()
    doubted |= unseen_edges(damaged | doubted | (var < 0), coverage.reshape(-1) < options.blind, options.blind_reach)
    if options.beside_cover > 0:  # an MCU row beside damage is judged from few pixels: not shown as sure
        beside = above_or_below((damaged | doubted | (var < 0)).reshape(rows, cols))
        doubted |= (beside & (coverage < options.beside_cover)).reshape(-1) & (var >= 0)
    if options.mixed_nb:  # the fused tie shares a mixed chunk's pull with its neighbours in the run
        nb = spread(mixed_chunk, 1, 1, run[1:] == run[:-1])
        doubted |= np.isin(var, np.flatnonzero(nb & ~bad_chunk))
    if reversed_ids is not None:
        doubted |= np.isin(var, np.flatnonzero(reversed_ids))
    doubted &= ~damaged
    return damaged, doubted


def thumbnail_refine(ctx: RefineContext, options: RefineOptions, marks: MaskOptions, *,
                     fit=solve_offsets) -> Refined | None:
    """Fit the remaining offset of every chunk of every run through the thumbnail's filter and
    act on it. A chunk moves by the whole steps its offset rounds to when the fit pins it to
    ``max_stderr`` steps, or when it is at least ``big_offset`` steps off and ``big_z`` standard
    errors from 0 (clipping makes such a fit loose; moved, the next round sees it better).
    Damage: a chunk confidently between two steps (``mixed``: a silent break inside it), one
    likely off that the fit cannot pin (``unfixed_z``), one the thumbnail cannot pin to
    ``unseen`` steps at all (only a precaution within ``blurred``), and the MCUs the thumbnail
    contradicts. Precautions: the MCUs decoded beside those (``marks.garble_before`` /
    ``garble_after``), unseen MCUs (coverage under ``blind``) within ``blind_reach`` of damage in
    decode order, fixes spanning fewer than ``short_span`` thumbnail pixels unless a restart
    anchors them, ``split_reach`` MCUs either side of a split the fit found, with ``mixed_nb``
    the chunks beside a mixed one in its run, with ``reversal`` a chunk moved one way and then
    back (a fit pulled by garbage it had not yet found), and the MCUs directly above or below
    damage that the thumbnail sees less than ``beside_cover`` of (those rows are judged from few
    pixels: the thumbnail pixels whose footprint reaches damage are left out of the fit).

    Up to ``rounds`` fits, each on the image re-rendered with the last one's moves, while some
    chunk moved by two steps or more (clipping at 0 or 255 makes a large offset look smaller
    than it is). A thumbnail whose fit residual spreads ``exact_sigma`` levels or more has no
    say. ``fit``: the thumbnail fit (:func:`acir_core.sca.thumbdc.solve_offsets`; tests pass one
    that edits its findings). Returns None when nothing changed."""
    result, sr, coefs, owner, fixes = ctx.result, ctx.scan, ctx.coefs, ctx.owner, ctx.fixes
    thumbnail, rgb, samples = ctx.thumbnail, ctx.rgb, ctx.samples
    frame = result.frame
    _, comps = scan_geometry(result, sr)
    cell = scan_cell(frame, sr.components)
    firsts = set(sr.segment_first.tolist())
    anchored = np.array([j for j, fx in enumerate(fixes) if fx.first_mcu in firsts], np.int64)
    sound = set(sr.segment_first[sr.sound_segments()].tolist())
    pinned = np.array([j for j, fx in enumerate(fixes) if fx.first_mcu in sound], np.int64)
    rows, cols = owner.shape
    units = np.array([float(result.qtables[ci][0]) / 8.0 for ci, _, _ in comps])
    grain = np.maximum(units, 1.0)
    px_per_mcu = cell[1] * thumbnail.shape[1] / frame.width  # thumbnail pixels an MCU spans
    damaged = np.zeros(rows * cols, bool)
    doubted = np.zeros(rows * cols, bool)
    total = None
    chunks = None
    reversed_ids = None
    judged = None
    small = Downsample(rgb, thumbnail.shape[1], thumbnail.shape[0])
    for _ in range(options.rounds):
        found = fit(rgb, thumbnail, owner, anchored, cell, frame.color, down=small.image,
                    stop_sigma=options.exact_sigma, pinned=pinned)
        if found is None:
            break
        chunks = found.chunks
        var = chunks.var.reshape(-1)
        planes = [min(ci, found.offset.shape[1] - 1) for ci, _, _ in comps]
        est = found.offset[:, planes] / units
        err = found.stderr[:, planes] / units
        # judged in grains: a DC step finer than a level (quality 90+) is below what a
        # thumbnail can see, so there a level is the unit of every threshold
        est_g = found.offset[:, planes] / grain
        err_g = found.stderr[:, planes] / grain
        if np.any(found.sigma[planes] >= options.exact_sigma):
            break  # a thumbnail that is not our downsample (JPEG-compressed, another tone): no say
        # a large offset is moved when its direction and size are sure even if its last step is
        # not: clipped pixels make the fit of a far-off chunk short and loose, and left alone its
        # residual bleeds into its neighbours' estimates
        far = (np.abs(est_g) >= options.big_offset) & (np.abs(est_g) >= options.big_z * err_g)
        sure = ((np.abs(est) >= 0.5) & (err <= options.max_stderr)) | far
        steps = np.where(sure, np.rint(est), 0).astype(np.int64)
        frac = np.abs(est - np.rint(est))
        bad_chunk = np.any((frac > options.mixed) & (err <= options.max_stderr / 2), axis=1)
        mixed_chunk = bad_chunk.copy()
        # likely off by a step or more, but too loosely fitted to say by how much: not fixed, so damage
        bad_chunk |= np.any(~sure & (np.abs(est_g) >= 0.6) & (np.abs(est_g) >= options.unfixed_z * err_g), axis=1)
        # a chunk the thumbnail hardly sees (its pixels clipped or their footprints on damage, so its
        # offset comes from the prior and its neighbours) keeps whatever DC the boundary fit gave
        # it: next to damage that is off by a step or two often enough that it is not trusted
        # a fit loose by a fifth to a third of a step is still right far more often than not:
        # shown as damage, but the fill keeps it unless it clearly disagrees
        unseen_chunk = np.any((err_g > options.unseen) & (units >= options.visible_step), axis=1) & ~chunks.fixed
        loose_chunk = unseen_chunk & np.all(err_g <= options.blurred, axis=1) & ~bad_chunk
        bad_chunk |= unseen_chunk
        if options.reversal and total is not None:  # moved one way, then back: the fit was pulled
            flip = np.any(steps * total < 0, axis=1)
            reversed_ids = flip if reversed_ids is None else reversed_ids | flip
        # the damage is judged on the latest image (what only looked wrong before a move is not
        # damage), so only the last round that judged counts: its findings are kept and the
        # marks made from them once, after the rounds
        judged = (found, var, chunks.run, bad_chunk, loose_chunk, mixed_chunk, reversed_ids)
        total = steps if total is None else total + steps
        if not steps.any():
            break
        again = np.abs(steps).max() >= 2  # only large moves can have been shortened by clipping
        pos = np.flatnonzero(var >= 0)
        pos = pos[np.any(steps[var[pos]] != 0, axis=1)]
        mr, mc = pos // cols, pos % cols
        for k, (ci, h, v) in enumerate(comps):
            add = steps[var[pos], k].astype(coefs[ci].dtype)
            for dy in range(v):
                for dx in range(h):
                    coefs[ci][mr * v + dy, mc * h + dx, 0] += add
        # only the MCU rows that moved are rendered again (in the frame's MCU rows of 8·max_v pixels)
        frame_row = np.unique(mr * cell[0] // (8 * frame.max_v))
        changed = np.zeros(-(-frame.height // (8 * frame.max_v)), bool)
        changed[frame_row[frame_row < changed.size]] = True
        rgb = result.rerender_rows(tuple(coefs), rgb, changed, in_place=True, planes=samples)
        small.update(rgb, rows_redone(frame, changed))
        if not again:
            break
    if judged is not None:
        damaged, doubted = round_marks(*judged, rows, cols, options, marks)
    if total is None or (not total.any() and not damaged.any() and not doubted.any()):
        short = short_fixes(fixes, firsts, rows * cols, px_per_mcu, options.short_span)
        if chunks is None or not short.any():
            return None
        return Refined(fixes=fixes, damaged=damaged.reshape(rows, cols), doubted=short.reshape(rows, cols), rgb=rgb)
    var = chunks.var.reshape(-1)
    pos = np.flatnonzero(var >= 0)
    chunk_first = np.full(chunks.run.size, var.size, np.int64)
    np.minimum.at(chunk_first, var[pos], pos)  # each chunk's first MCU position
    new_fixes: list[SegmentFix] = []
    for j, fix in enumerate(fixes):
        ids = np.flatnonzero(chunks.run == j)
        if ids.size == 0:
            new_fixes.append(fix)
            continue
        # chunks in decode order; a new fix wherever the step changes
        starts = chunk_first[ids] - fix.shift
        order = np.argsort(starts)
        ids, starts = ids[order], starts[order]
        first = fix.first_mcu
        for q, i in enumerate(ids):
            last = q + 1 == ids.size
            if not last and np.array_equal(total[ids[q + 1]], total[i]):
                continue
            end = fix.end_mcu if last else int(starts[q + 1])
            dc = tuple(int(d - s) for d, s in zip(fix.dc, total[i]))
            new_fixes.append(SegmentFix(scan=fix.scan, first_mcu=first, end_mcu=end, shift=fix.shift, dc=dc,
                                        cost=fix.cost, confident=fix.confident))
            if not last:  # a silent break the fit found only to a chunk: its garbage is near
                lo = max(end + fix.shift - options.split_reach, 0)
                doubted[lo:max(end + fix.shift + options.split_reach, 0)] = True
            first = end
    doubted |= short_fixes(new_fixes, firsts, rows * cols, px_per_mcu, options.short_span)
    doubted &= ~damaged & (var >= 0)
    return Refined(fixes=new_fixes, damaged=damaged.reshape(rows, cols), doubted=doubted.reshape(rows, cols), rgb=rgb)