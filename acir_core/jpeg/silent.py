"""Errors a progressive AC scan decodes silently: garbled bits read as valid codes move every
later block of the band, with no failure to say where.

A block's energy in a band follows the energy of what it already holds (DC steps to its
neighbours, the other AC bands): textured blocks are textured in every band. A stretch of blocks
whose band fits the blocks a few places on better than its own is out of place; a band in place
scores 0 for every shift, since shifting it only fits worse (docs/decoder.md, progressive files).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from acir_core.jpeg.bandfit import dc_agreement, place_runs, shift_gain
from acir_core.jpeg.entropy import ERROR_NAMES, _ZZ
from acir_core.jpeg.progressive import ERR_SILENT, SILENT_BACK
from acir_core.jpeg.tables import Frame, Scan

SILENT_REACH = 64  # shifts a stretch between errors decoded silently is tested for
SILENT_ROUNDS = 4  # such stretches moved per scan
SILENT_SCORE = 5.5  # standard errors its change point must stand out (a band in place: 0)
TAIL_PLACED = 0.5  # share of the blocks after the split a decode must place to be kept


def _drop_scan_band(coef_flat: np.ndarray, known: np.ndarray, base: int, grid: tuple[int, int], ss: int,
                    se: int) -> None:
    """A component's blocks lose the band ss..se (an AC band's first scan, to be decoded again)."""
    n = grid[0] * grid[1]
    coef_flat[base: base + n, np.asarray(_ZZ[ss: se + 1])] = 0
    known[base: base + n] &= ~np.uint64(sum(1 << k for k in range(ss, se + 1)))


def place_silent(sr, scan: Scan, frame: Frame, coef_flat: np.ndarray, known: np.ndarray, base: int,
                 qt: np.ndarray, dc_ok: np.ndarray, redecode: Callable[[int], object],
                 dc_plane: np.ndarray | None = None):
    """An AC band's first scan that read garbled bits as valid codes moved every later block: a
    scan that ends out of step with no failure is split where its band stops fitting the blocks
    and decoded again (the tail placed by where its bits end). Up to its first failure, a stretch
    of blocks whose band clearly fits the blocks up to ``SILENT_REACH`` on better (between two
    errors decoded silently, or before a failure) is moved there (docs/decoder.md, progressive
    files). Runs between two failures are placed by :func:`~acir_core.jpeg.bandfit.place_runs`
    (``qt``: the component's quantisation table, ``dc_ok``: its blocks whose DC is in place,
    ``dc_plane``: the DCs to place them against, default the decoded ones).
    ``sr`` is the scan's :class:`~acir_core.jpeg.decoder.ScanResult`; ``redecode(split)``
    decodes the scan again with the silent error's end at MCU ``split``. Returns the result kept."""
    grid = frame.block_grid(scan.components[0].index)
    own, fit = _band_fit(coef_flat, base, grid, sr.mcu_rows, sr.mcu_cols, scan.ss, scan.se, dc_plane, dc_ok)
    if sr.silent_shift:
        parts = _agreement(coef_flat, base, grid, sr, scan, qt, dc_plane, dc_ok)
        x = _change_point(own, fit, sr.silent_shift, own.size)[0] if parts is None else \
            _best_stretch(shift_gain(parts, sr.silent_shift))[0]
        _drop_scan_band(coef_flat, known, base, grid, scan.ss, scan.se)
        again = redecode(x)
        if x > 0 and again.decoded[x:].mean() >= TAIL_PLACED:
            sr = again
        else:  # several errors, or none where the shift says: the band up to where it stops fitting
            _drop_scan_band(coef_flat, known, base, grid, scan.ss, scan.se)
            sr = redecode(-1)
            _drop_from(coef_flat, known, sr, base, grid, scan.ss, scan.se, _first_misfit(own, fit))
    place_runs(sr, scan, frame, coef_flat, known, base, qt, dc_ok, dc_plane)
    failures = [e.mcu for e in sr.resyncs if e.reason != ERROR_NAMES[ERR_SILENT]]
    hi = failures[0] if failures else sr.mcu_rows * sr.mcu_cols
    for _ in range(SILENT_ROUNDS):
        parts = _agreement(coef_flat, base, grid, sr, scan, qt, dc_plane, dc_ok)
        if parts is None:
            own, fit = _band_fit(coef_flat, base, grid, sr.mcu_rows, sr.mcu_cols, scan.ss, scan.se, dc_plane, dc_ok)
            tries = ((_change_point(own, fit, s, hi), s) for s in range(-SILENT_REACH, SILENT_REACH + 1) if s)
        else:
            tries = ((_best_stretch(shift_gain(parts, s)[:hi]), s) for s in range(-SILENT_REACH, SILENT_REACH + 1)
                     if s)
        (x1, x2, score), shift = max(tries, key=lambda t: t[0][2])
        if score < SILENT_SCORE:
            break
        _shift_stretch(coef_flat, known, sr, base, grid, scan.ss, scan.se, x1, x2, shift)
    return sr


def _agreement(coef_flat: np.ndarray, base: int, grid: tuple[int, int], sr, scan: Scan, qt: np.ndarray,
               dc_plane: np.ndarray | None, dc_ok: np.ndarray):
    """:func:`~acir_core.jpeg.bandfit.dc_agreement` of the scan's band where a DC hint puts the
    DCs in place and the band holds the lowest AC; else None (the band's energy decides)."""
    if dc_plane is None:
        return None
    return dc_agreement(coef_flat, base, grid, sr.mcu_rows, sr.mcu_cols, scan.ss, scan.se, qt, dc_plane, dc_ok)


def _band_fit(coef_flat: np.ndarray, base: int, grid: tuple[int, int], mcu_rows: int, mcu_cols: int, ss: int,
              se: int, dc_plane: np.ndarray | None = None, dc_ok: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per block of a single-component scan (its MCU order): the log energy of the band ss..se and
    what a line fit on the energy of what the block already holds (DC steps to its neighbours,
    the other AC bands) expects of it. Textured blocks are textured in every band. ``dc_plane``:
    the DCs to take the steps from (a hint; default: the decoded ones), ``dc_ok`` where they are
    in place: with a hint, steps count only between blocks in place, and a block with neither
    such a step nor an earlier band expects nothing (NaN)."""
    rows, bw = grid
    plane = coef_flat[base: base + rows * bw].reshape(rows, bw, 64)[:mcu_rows, :mcu_cols].astype(np.float64)
    zz = np.asarray(_ZZ)
    own = np.log1p(np.abs(plane[..., zz[ss: se + 1]]).sum(-1)).ravel()
    other = np.abs(plane[..., zz[1:ss]]).sum(-1) + np.abs(plane[..., zz[se + 1:]]).sum(-1)
    hinted = dc_plane is not None
    dc = dc_plane[:mcu_rows, :mcu_cols].astype(np.float64) if hinted else plane[..., 0]
    ok = dc_ok[:mcu_rows, :mcu_cols] if hinted and dc_ok is not None else np.ones(dc.shape, bool)
    across, down = np.abs(np.diff(dc, axis=1)), np.abs(np.diff(dc, axis=0))
    other[:, 1:] += np.where(ok[:, 1:] & ok[:, :-1], across, 0.0)
    other[1:, :] += np.where(ok[1:, :] & ok[:-1, :], down, 0.0)
    ref = np.log1p(other).ravel()
    says = ok.ravel() if hinted and ss == 1 else np.ones(ref.size, bool)  # a first band: only DCs in place say
    if not says.any():
        return own, np.full(own.size, np.nan)
    slope, icept = np.polyfit(ref[says], own[says], 1) if np.ptp(ref[says]) > 0 else (0.0, float(own[says].mean()))
    return own, np.where(says, icept + slope * ref, np.nan)


def _change_point(own: np.ndarray, fit: np.ndarray, shift: int, hi: int) -> tuple[int, int, float]:
    """The stretch [x1, x2) of blocks below ``hi`` whose band fits the blocks ``shift`` on better
    than its own, and how clearly: the gain summed over it, in standard errors of the per-block
    gain (0 for a band in place: shifting it only fits worse)."""
    own, fit = own[:hi], fit[:hi]
    moved = np.clip(np.arange(own.size) + shift, 0, max(own.size - 1, 0))
    return _best_stretch(np.nan_to_num(np.abs(own - fit) - np.abs(own - fit[moved])))  # saying nothing: 0


def _best_stretch(gain: np.ndarray) -> tuple[int, int, float]:
    """The stretch [x1, x2) over which ``gain`` (per block) sums highest, and by how many standard
    errors of the per-block gain."""
    if not gain.size:
        return 0, 0, 0.0
    total = np.concatenate([[0.0], np.cumsum(gain)])
    lowest = np.minimum.accumulate(total)  # best stretch ending at each block: total - the lowest before it
    x2 = int(np.argmax(total - lowest))
    x1 = int(np.flatnonzero(total[: x2 + 1] == lowest[x2])[0])
    spread = float(np.std(gain)) * np.sqrt(gain.size)
    return x1, x2, float((total[x2] - total[x1]) / spread) if spread > 0 else 0.0


def _first_misfit(own: np.ndarray, fit: np.ndarray) -> int:
    """The block from which the band fits its blocks worse than before (the change point of the
    misfit's running sum): where the first error decoded silently put it out of place."""
    e = np.abs(own - fit)
    if e.size < 2:
        return 0
    e = np.where(np.isnan(e), np.nanmean(e) if np.isfinite(e).any() else 0.0, e)
    return int(np.argmin(np.cumsum(e - e.mean()))) + 1


def _drop_from(coef_flat: np.ndarray, known: np.ndarray, sr, base: int, grid: tuple[int, int], ss: int, se: int,
               x: int) -> None:
    """The blocks from ``x`` - ``SILENT_BACK`` on (in the scan's order) lose the band ss..se."""
    rows, bw = grid
    blocks = np.arange(max(0, x - SILENT_BACK), sr.mcu_rows * sr.mcu_cols)
    r, c = blocks // sr.mcu_cols, blocks % sr.mcu_cols
    zz = np.asarray(_ZZ[ss: se + 1])
    coef_flat[base: base + rows * bw].reshape(rows, bw, 64)[r[:, None], c[:, None], zz[None, :]] = 0
    known[base: base + rows * bw].reshape(rows, bw)[r, c] &= ~np.uint64(sum(1 << k for k in range(ss, se + 1)))
    sr.decoded[blocks] = False


def _shift_stretch(coef_flat: np.ndarray, known: np.ndarray, sr, base: int, grid: tuple[int, int],
                   ss: int, se: int, x1: int, x2: int, shift: int) -> None:
    """Move the band of blocks [x1, x2) of a single-component scan ``shift`` blocks on, within that
    stretch; the blocks left without it and the ``SILENT_BACK`` before x1 (read from garbled bits)
    lose it."""
    rows, bw = grid
    cols = sr.mcu_cols
    zz = np.asarray(_ZZ[ss: se + 1])
    band = np.uint64(sum(1 << k for k in range(ss, se + 1)))
    plane = coef_flat[base: base + rows * bw].reshape(rows, bw, 64)
    flat_known = known[base: base + rows * bw].reshape(rows, bw)
    src = np.arange(x1, x2)
    dst = src + shift
    keep = (dst >= x1) & (dst < x2)
    src, dst = src[keep], dst[keep]
    vals = plane[src // cols, src % cols][:, zz]
    left = np.setdiff1d(np.arange(max(0, x1 - SILENT_BACK), x2), dst)
    for blocks, on in ((left, False), (dst, True)):
        r, c = blocks // cols, blocks % cols
        if on:
            plane[r[:, None], c[:, None], zz[None, :]] = vals
            flat_known[r, c] |= band
        else:
            plane[r[:, None], c[:, None], zz[None, :]] = 0
            flat_known[r, c] &= ~band
        sr.decoded[blocks] = on
