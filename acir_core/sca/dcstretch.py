"""What following a progressive DC scan's stretches needs, with a thumbnail or without one.

A DC scan that reads an error silently, or reads on after a failure, leaves every later MCU of
its restart interval on a wrong predictor (one offset per component) and perhaps a few MCUs from
where it belongs: the photo's MCUs fall into stretches, each with its shift and offsets. Both
ways of finding them (:mod:`acir_core.sca.dcsteps` against a thumbnail,
:mod:`acir_core.sca.dccontinuity` from how the MCUs join) follow the MCUs in scan order with the
same pace and tolerances and give the same result.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from acir_core.jpeg.decoder import DecodeResult, ScanResult

REACH = 48  # MCUs a stretch after a silent error may have moved
WINDOW = 192  # MCUs a new stretch's shift and offsets are fitted on
ROLL = 16  # MCUs the running median of the misfit is taken over
BREAK = 3.0  # running median misfit (in noise units) that ends a stretch
FIT = 2.0  # median misfit a fitted stretch must reach to be kept
SKIP = 32  # MCUs skipped on when nothing fits
MAX_STRETCHES = 64
QUIET_LEVELS = 6.0  # the step (levels, root mean square) an error must make in a scan that ended in step
SAME = 3  # DC units within which a refit at the same shift is the stretch it broke from
REFIT = 0.8  # share of its misfit a stretch's shift fitted on all its MCUs must bring it to


@dataclass(frozen=True, kw_only=True, eq=False)
class DCSteps:
    """``starts``: the MCU (scan order) where each stretch begins, the first at 0; ``shifts``:
    how many MCUs on each was decoded; ``offsets``: per stretch and component the DC units taken
    off; ``coefficients``: the corrected planes; ``untrusted``: MCU grid of what no stretch
    explains (garbled, or out of reach). Per MCU (scan order), to place them again
    (:func:`acir_core.sca.dcplace.place_by_edges`): ``source``, the MCU its DC was taken from,
    and ``offset``, the levels taken off per component (of ``scales`` levels per DC step and the
    scan's ``unit``), as :func:`moved_coefficients` takes them; ``by_joins``: the offsets come from
    how the MCUs join (:mod:`acir_core.sca.dccontinuity`), not from a thumbnail."""

    starts: tuple[int, ...]
    shifts: tuple[int, ...]
    offsets: np.ndarray = field(repr=False)
    coefficients: tuple[np.ndarray, ...] = field(repr=False)
    untrusted: np.ndarray = field(repr=False)
    source: np.ndarray | None = field(default=None, repr=False)
    offset: np.ndarray | None = field(default=None, repr=False)
    scales: np.ndarray | None = field(default=None, repr=False)
    unit: int = 1
    by_joins: bool = False

    @property
    def found(self) -> bool:
        return len(self.starts) > 1 or bool(self.untrusted.any())


def by_mcu(plane: np.ndarray, rows: int, cols: int, v: int, h: int) -> np.ndarray:
    """A component's block grid (its first two axes) as (rows, v, cols, h): its blocks per MCU."""
    return plane[: rows * v, : cols * h].reshape(rows, v, cols, h, *plane.shape[2:])


def mcu_sampling(result: DecodeResult, ci: int) -> tuple[int, int]:
    """Component ``ci``'s blocks per MCU (v, h) on the grid of :func:`dc_grid`."""
    comp = result.frame.components[ci]
    return (1, 1) if len(result.frame.components) == 1 else (comp.v, comp.h)


@njit(cache=True)
def rolling_median(x: np.ndarray, n: int) -> np.ndarray:
    """Median of x[i:i+n] for each i (shorter at the end)."""
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = np.median(x[i: min(i + n, x.size)])
    return out


def dc_grid(result: DecodeResult) -> tuple[int, int]:
    """The MCU grid a DC scan's stretches are found on (blocks, for one component)."""
    frame = result.frame
    return result.bands[0].shape if len(frame.components) == 1 else (frame.mcu_rows, frame.mcu_cols)


def dc_scan_of(result: DecodeResult) -> ScanResult:
    """The frame's DC first scan (the one whose stretches are found)."""
    return next(s for s in result.scans if s.band is not None and s.band[0] == 0 and s.band[2] == 0)


def moved_coefficients(result: DecodeResult, source: np.ndarray, offset: np.ndarray, untrusted: np.ndarray,
                       scales: np.ndarray, unit: int, cols: int) -> tuple[np.ndarray, ...]:
    """The decode's coefficients with each trusted MCU's DC (scan order on :func:`dc_grid`) taken
    from MCU ``source`` less ``offset`` (levels per component, rounded to the scan's ``unit``
    of DC steps of ``scales`` levels)."""
    coefficients = tuple(c.copy() for c in result.coefficients)
    moved = (source != np.arange(source.size)) | np.any(np.abs(offset) > 0, axis=1)
    moved &= ~untrusted
    if moved.any():
        dst = np.flatnonzero(moved)
        sr, sc = divmod(source[dst], cols)
        dr, dc = divmod(dst, cols)
        for ci in range(len(result.frame.components)):
            v, h = mcu_sampling(result, ci)
            units = np.rint(offset[dst, ci] / scales[ci] / unit).astype(np.int64) * unit
            plane = result.coefficients[ci]
            for dy in range(v):
                for dx in range(h):
                    # the first scan's bits move; a refinement's (below its unit, read one per block
                    # in place) stay
                    first = plane[sr * v + dy, sc * h + dx, 0].astype(np.int64) & ~np.int64(unit - 1)
                    refined = plane[dr * v + dy, dc * h + dx, 0].astype(np.int64) & np.int64(unit - 1)
                    coefficients[ci][dr * v + dy, dc * h + dx, 0] = first - units + refined
    return coefficients


def first_break(misfit: Callable[[np.ndarray], np.ndarray], m: int, end: int, size: int) -> int:
    """The first MCU from ``m`` where the running median of ``misfit`` (of MCU indices, under the
    stretch being followed) passes BREAK, else ``end``; looked for in pieces from ``size`` MCUs,
    doubling, so a stretch costs what it spans rather than the rest of the photo."""
    while m < end:
        b = min(end, m + size + ROLL - 1)
        roll = rolling_median(misfit(np.arange(m, b)), ROLL)
        n = size if b < end else b - m
        broken = np.flatnonzero(roll[:n] > BREAK)
        if broken.size:
            return m + int(broken[0])
        m += n
        size *= 2
    return end
