"""SCA's place for a progressive file: its DC put right, and what its scans lost as the mask.

A progressive file's blocks arrive in bands, and the robust decoder keeps, for every block, what
each scan gave it (:mod:`acir_core.jpeg.progressive`). A DC scan read on after a failure, or
through an error it read silently, puts later MCUs' DC on a wrong predictor and a few places
off: against the thumbnail those stretches are placed and levelled (:mod:`acir_core.sca.dcsteps`),
without one from how the MCUs join across their edges (:mod:`acir_core.sca.dccontinuity`). A
block still without a DC it can trust gets one from the AC it kept, its neighbours and the
thumbnail (:mod:`acir_core.sca.dcrecover`); those MCUs are the mask, which the fill judges. A
block that missed only later AC bands shows the coarse picture the earlier scans gave, which no
thumbnail improves on: it stays, counted in the record. A second decode, its AC placed against
the DC a first one put right, has its DC steps found again, and keeps whichever DC the edges of
its bits-placed AC bands back.
"""
from __future__ import annotations

import time

import numpy as np

from acir_core.jpeg.bandfit import DCHint
from acir_core.jpeg.decoder import DecodeResult
from acir_core.jpeg.progressive import dc_lost
from acir_core.sca.dccontinuity import continuity_steps
from acir_core.sca.dcplace import edge_misfits, place_by_edges
from acir_core.sca.dcrecover import recover_dc
from acir_core.sca.dcsteps import find_dc_steps
from acir_core.sca.dcstretch import DCSteps
from acir_core.sca.fill import upsampled_thumbnail
from acir_core.sca.result import SCAResult
from acir_core.sca.thumbmodel import block_levels
from acir_core.thumbframe import frame_thumbnail


def silently_scrambled(result: DecodeResult, thumbnail: np.ndarray | None) -> bool:
    """Whether a progressive decode without a failure still shows the steps an error its DC scan
    read silently leaves, against its thumbnail (framed here) or, without one, in how its MCUs
    join (:func:`_dc_steps`): then the file is damaged, not intact."""
    return result.frame.marker == 0xC2 and _dc_steps(result, thumbnail, place=False).found


def _blocks(frame, grid: np.ndarray, ci: int, shape: tuple[int, int], outside: bool) -> np.ndarray:
    """The frame's MCU grid ``grid`` as component ``ci``'s blocks (``shape``); blocks past the
    MCU grid (padding) get ``outside``."""
    single = len(frame.components) == 1
    v, h = (1, 1) if single else (frame.components[ci].v, frame.components[ci].h)
    out = np.full(shape, outside, bool)
    up = np.repeat(np.repeat(grid, v, 0), h, 1)
    r, c = min(shape[0], up.shape[0]), min(shape[1], up.shape[1])
    out[:r, :c] = up[:r, :c]
    return out


def _dc_read_on(result: DecodeResult) -> bool:
    """Whether a DC first scan read on after a failure or ended out of step: its later MCUs may
    sit a few places off, on a wrong predictor."""
    return any(sr.band is not None and sr.band[0] == 0 and sr.band[2] == 0 and (sr.resyncs or sr.silent_shift)
               for sr in result.scans)


def _ac_placed(result: DecodeResult) -> bool:
    """Whether an AC first scan met an error (a failure, or an end out of step): what it read
    after it is placed against the DCs."""
    return any(sr.band is not None and sr.band[0] > 0 and sr.band[2] == 0 and (sr.resyncs or sr.silent_shift)
               for sr in result.scans)


def _dc_steps(result: DecodeResult, thumbnail: np.ndarray | None, place: bool = True) -> DCSteps:
    """The DC steps of a progressive decode: against ``thumbnail`` (framed here) where there is
    one, else from how its MCUs join (:func:`continuity_steps`); ``place``: then placed to the
    MCU by the AC's edges (:func:`place_by_edges`)."""
    frame = result.frame
    framed = None if thumbnail is None else frame_thumbnail(thumbnail, frame.width, frame.height, result.rgb).rgb
    return _steps_of(result, framed, place)


def _steps_of(result: DecodeResult, framed: np.ndarray | None, place: bool = True) -> DCSteps:
    """The DC steps against a thumbnail already framed to the photo (``framed``), else from how
    the MCUs join; ``place``: then placed to the MCU by the AC's edges."""
    steps = find_dc_steps(result, framed) if framed is not None else continuity_steps(result)
    return place_by_edges(result, steps) if place else steps


def dc_hint(result: DecodeResult, thumbnail: np.ndarray | None) -> DCHint | None:
    """For a progressive decode whose DC scan read an error (steps against ``thumbnail``, or from
    continuity without one: :func:`_dc_steps`; or a failure it read on after) and whose AC first
    scans met one, the DC put right for a second decode (:func:`acir_core.jpeg.decoder.decode`
    ``dc_hint``): its AC first scans then place what they read against DCs in place rather than
    follow MCUs a DC error moved, and the refinements read that history. None where no AC scan
    needs it or the DC is in place."""
    frame = result.frame
    if frame.marker != 0xC2 or not _ac_placed(result):
        return None
    steps = _dc_steps(result, thumbnail)
    if not steps.found and not _dc_read_on(result):
        return None
    grid = dc_lost(result)
    coefficients = result.coefficients
    if steps.found:
        coefficients, grid = steps.coefficients, grid | steps.untrusted
    in_place = [~_blocks(frame, grid, ci, coefficients[ci].shape[:2], True) & ((result.bands[ci] & np.uint64(1)) != 0)
                for ci in range(len(frame.components))]
    return DCHint(dc=tuple(c[..., 0].copy() for c in coefficients), in_place=tuple(in_place), untrusted=grid)


def _with_dc(coefficients: np.ndarray, dc: np.ndarray) -> np.ndarray:
    """``coefficients`` with the DC ``dc`` (a copy)."""
    out = coefficients.copy()
    out[..., 0] = dc
    return out


def progressive_sca(result: DecodeResult, thumbnail: np.ndarray | None = None) -> SCAResult:
    """The decode with the DC steps of errors its DC scan read undone (given a thumbnail framed
    to the photo, against it: :func:`acir_core.sca.dcsteps.find_dc_steps`; else from how the MCUs
    join: :func:`acir_core.sca.dccontinuity.continuity_steps`; on a second decode, the DC it was
    given (``result.dc_hint``) where the bits-placed edges fit that better:
    :func:`acir_core.sca.dcplace.edge_misfits`), then the DC of every
    block that lost it (or sits in a stretch those corrections could not make fit) estimated from
    the AC the block kept, its neighbours and the thumbnail
    (:func:`acir_core.sca.dcrecover.recover_dc`); those MCUs are the mask (frame MCU grid), which
    the fill judges against the thumbnail."""
    t0 = time.perf_counter()
    frame = result.frame
    grid = dc_lost(result)
    coefficients = result.coefficients
    steps = _steps_of(result, thumbnail)
    lost = grid
    if steps.found:
        coefficients = steps.coefficients
        grid = grid | steps.untrusted
    hint = result.dc_hint
    if hint is not None and hint.untrusted is not None:  # the DC the AC was placed against, if the edges back it
        hinted = tuple(_with_dc(c, dc) for c, dc in zip(result.coefficients, hint.dc))
        both = grid | hint.untrusted
        ours, theirs = edge_misfits(result, (hinted, coefficients), both)
        if ours < theirs:
            coefficients, grid = hinted, lost | hint.untrusted
    single = len(frame.components) == 1
    ch, cw = (8, 8) if single else (8 * frame.max_v, 8 * frame.max_h)
    mask = np.repeat(np.repeat(grid, ch, 0), cw, 1)[: frame.height, : frame.width]
    if grid.any() and not grid.all():
        unknown, grids, scales = [], [], []
        for ci, comp in enumerate(frame.components):
            rows, cols = coefficients[ci].shape[:2]
            unk = _blocks(frame, grid, ci, (rows, cols), False)
            unknown.append(unk | ((result.bands[ci] & np.uint64(1)) == 0))
            grids.append((rows, cols))
            scales.append((1, 1) if single else (frame.max_v // comp.v, frame.max_h // comp.h))
        levels = None
        if thumbnail is not None:
            up = upsampled_thumbnail(thumbnail, frame.width, frame.height)
            levels = block_levels(up, frame.color, grids, scales)
        coefficients = recover_dc(coefficients, result.qtables, unknown, levels)
    rgb = result.rgb if coefficients is result.coefficients else result.rerender(coefficients)
    return SCAResult(rgb=rgb, mask=mask, mcu_mask=grid, segments=(), coefficients=coefficients,
                     method="progressive", timings={"total": time.perf_counter() - t0}, doubtful=None)
