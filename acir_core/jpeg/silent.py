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
from numba import njit

from acir_core.jpeg.bandfit import dc_agreement, place_runs, shift_gain
from acir_core.jpeg.entropy import ERROR_NAMES, _ZZ
from acir_core.jpeg.progressive import ERR_SILENT, SILENT_BACK
from acir_core.jpeg.realign import realign_band
from acir_core.jpeg.tables import Frame, Scan
from acir_core.jpeg.witness import BandWitness

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
                 dc_plane: np.ndarray | None = None, witness: BandWitness | None = None):
    """An AC band's first scan that read garbled bits as valid codes moved every later block: a
    scan that ends out of step with no failure is split where its band stops fitting the blocks
    and decoded again (the tail placed by where its bits end). Up to its first failure, a stretch
    of blocks whose band clearly fits the blocks up to ``SILENT_REACH`` on better (between two
    errors decoded silently, or before a failure) is moved there (docs/decoder.md, progressive
    files). Runs between two failures are placed by :func:`~acir_core.jpeg.bandfit.place_runs`
    (``qt``: the component's quantisation table, ``dc_ok``: its blocks whose DC is in place, which
    :func:`~acir_core.jpeg.realign.realign_band` may narrow for later bands,
    ``dc_plane``: the DCs to place them against, default the decoded ones).
    ``sr`` is the scan's :class:`~acir_core.jpeg.decoder.ScanResult`; ``redecode(split)``
    decodes the scan again with the silent error's end at MCU ``split``. Last, every stretch
    still out of place goes where its border steps say (:func:`~acir_core.jpeg.realign.realign_band`).
    ``witness`` keeps what the bits alone placed, before anything is placed against the DCs.
    Returns the result kept."""
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
    if witness is not None:
        witness.keep(sr, scan.ss, scan.se, coef_flat, base, grid[1], middle=False)
    place_runs(sr, scan, frame, coef_flat, known, base, qt, dc_ok, dc_plane)
    failures = [e.mcu for e in sr.resyncs if e.reason != ERROR_NAMES[ERR_SILENT]]
    hi = failures[0] if failures else sr.mcu_rows * sr.mcu_cols
    for _ in range(SILENT_ROUNDS):
        parts = _agreement(coef_flat, base, grid, sr, scan, qt, dc_plane, dc_ok)
        if parts is None:
            own, fit = _band_fit(coef_flat, base, grid, sr.mcu_rows, sr.mcu_cols, scan.ss, scan.se, dc_plane, dc_ok)
            x1, x2, score, shift = _energy_tries(own[:hi], fit[:hi], SILENT_REACH)
        else:
            x1, x2, score, shift = _agreement_tries(*parts, hi, SILENT_REACH)
        if score < SILENT_SCORE:
            break
        _shift_stretch(coef_flat, known, sr, base, grid, scan.ss, scan.se, x1, x2, shift)
    realign_band(sr, scan.ss, scan.se, coef_flat, known, base, grid, qt, dc_ok, dc_plane)
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
    plane = coef_flat[base: base + rows * bw].reshape(rows, bw, 64)
    own, other = _band_energy(plane, mcu_rows, mcu_cols, ss, se, np.asarray(_ZZ, np.int64))
    own = np.log1p(own).ravel()
    hinted = dc_plane is not None
    dc = (dc_plane if hinted else plane[..., 0])[:mcu_rows, :mcu_cols].astype(np.float64)
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


@njit(cache=True)
def _band_energy(plane: np.ndarray, mcu_rows: int, mcu_cols: int, ss: int, se: int,
                 zz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block (mcu_rows × mcu_cols of a block grid): the sum of |coefficient| over the band
    ss..se (zig-zag), and over the other AC."""
    own = np.zeros((mcu_rows, mcu_cols))
    other = np.zeros((mcu_rows, mcu_cols))
    for r in range(mcu_rows):
        for c in range(mcu_cols):
            a, b = 0.0, 0.0
            for k in range(1, 64):
                v = abs(float(plane[r, c, zz[k]]))
                if ss <= k <= se:
                    a += v
                else:
                    b += v
            own[r, c] = a
            other[r, c] = b
    return own, other


def _change_point(own: np.ndarray, fit: np.ndarray, shift: int, hi: int) -> tuple[int, int, float]:
    """The stretch [x1, x2) of blocks below ``hi`` whose band fits the blocks ``shift`` on better
    than its own, and how clearly: the gain summed over it, in standard errors of the per-block
    gain (0 for a band in place: shifting it only fits worse)."""
    if not shift:
        return 0, 0, 0.0
    x1, x2, score, _ = _energy_tries(own[:hi], fit[:hi], abs(shift), shift)
    return x1, x2, score


@njit(cache=True)
def _energy_tries(own: np.ndarray, fit: np.ndarray, reach: int, only: int = 0) -> tuple[int, int, float, int]:
    """Over the shifts -reach..reach (not 0; ``only``: that one alone): the stretch whose band fits
    the blocks that many on better than its own that stands out most (:func:`_stretch_of` of the
    per-block gain; a block whose fit says nothing gains 0), as (x1, x2, score, shift)."""
    n = own.size
    gain = np.zeros(n)
    best = (0, 0, -np.inf, 0)
    for s in range(-reach, reach + 1):
        if s == 0 or (only != 0 and s != only):
            continue
        for i in range(n):
            g = abs(own[i] - fit[i]) - abs(own[i] - fit[min(max(i + s, 0), n - 1)])
            gain[i] = 0.0 if np.isnan(g) else g
        x1, x2, score = _stretch_of(gain)
        if score > best[2]:
            best = (x1, x2, score, s)
    return best


@njit(cache=True)
def _agreement_tries(own: np.ndarray, ref: np.ndarray, ok: np.ndarray, hi: int,
                     reach: int) -> tuple[int, int, float, int]:
    """:func:`_energy_tries` for a band judged by its agreement with the DC predictions
    (:func:`~acir_core.jpeg.bandfit.shift_gain` over the blocks below ``hi``)."""
    n = own.shape[0]
    m = min(hi, n)
    gain = np.zeros(m)
    best = (0, 0, -np.inf, 0)
    for s in range(-reach, reach + 1):
        if s == 0:
            continue
        for i in range(m):
            j = min(max(i + s, 0), n - 1)
            g = 0.0
            if ok[i] and ok[j]:
                a, b = 0.0, 0.0
                for k in range(own.shape[1]):
                    a += own[i, k] * ref[j, k]
                    b += own[i, k] * ref[i, k]
                g = a - b
            gain[i] = g
        x1, x2, score = _stretch_of(gain)
        if score > best[2]:
            best = (x1, x2, score, s)
    return best


@njit(cache=True)
def _stretch_of(gain: np.ndarray) -> tuple[int, int, float]:
    """The stretch [x1, x2) over which ``gain`` (per block) sums highest, and by how many standard
    errors of the per-block gain."""
    n = gain.size
    if n == 0:
        return 0, 0, 0.0
    total, lowest, low_at, best, x1, x2 = 0.0, 0.0, 0, 0.0, 0, 0
    for i in range(n):
        total += gain[i]
        if total < lowest:
            lowest, low_at = total, i + 1
        if total - lowest > best:
            best, x1, x2 = total - lowest, low_at, i + 1
    mean = total / n
    var = 0.0
    for i in range(n):
        var += (gain[i] - mean) ** 2
    spread = np.sqrt(var / n) * np.sqrt(n)
    return x1, x2, best / spread if spread > 0 else 0.0


def _best_stretch(gain: np.ndarray) -> tuple[int, int, float]:
    """The stretch [x1, x2) over which ``gain`` (per block) sums highest, and by how many standard
    errors of the per-block gain."""
    return _stretch_of(np.ascontiguousarray(gain, np.float64))


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
