"""How well a restored photo agrees with what is known of the original, without the original.

Two kinds of evidence: the decode's own consistency (a JPEG of a real scene has no seams at its
MCU boundaries; a run put back at the wrong place or level leaves one along its whole edge) and
the thumbnail (the photo reduced to its size should look like it). The engine restores a photo in
more than one way (with the thumbnail, without it, the standard decoder's view) and keeps the one
the evidence favours, so acir never shows a photo worse than a standard decoder would.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from acir_core.bands import over_rows
from acir_core.thumbframe import luma, reduce_to

WRAP_RATIO = 4.0  # times the row's median seam a row's first or last boundary must exceed ...
WRAP_LEVELS = 2.0  # ... plus these levels, to say the row wraps at the wrong MCU
CLIP_LEVELS = 2.0  # a flat MCU whose mean lies this close to black or white is a dark or blown-out
# area (or one clipped by a level error the thumbnail term sees), not a decoder that gave up
WRAP_WEIGHT = 30.0  # score per share of rows wrapped wrong (at 1e-5 a guided result one MCU off in
# many rows is still far better than an unguided one whose DC drifted, which the thumbnail shows)


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """``seams``: mean luma step across MCU boundaries beyond the step between the pixels beside
    them (levels); ``broken``: share of boundary pixels whose step exceeds that by more than 16
    levels; ``flat``: share of MCUs without any texture (luma spread under 0.75 levels: what a
    decoder shows where it gave up, its last DC repeated; black or white ones not counted);
    ``wrapped``: share of MCU rows whose first or last MCU boundary stands out
    (:func:`_wrap_share`); ``thumbnail``: mean absolute
    luma difference to the thumbnail at its size (levels, 0 without one); ``score``: what the
    choice minimises."""

    seams: float
    broken: float
    flat: float
    wrapped: float
    thumbnail: float
    score: float


@njit(cache=True)
def step_excess(before: float, last: float, first: float, after: float) -> float:
    """How much the step between two neighbouring pixels ``last`` and ``first`` exceeds the mean
    step of the pixel pairs just inside either side (``before``-``last``, ``first``-``after``)."""
    return abs(first - last) - 0.5 * (abs(last - before) + abs(after - first))


@njit(cache=True)
def _seam_sums(y: np.ndarray, ch: int, cw: int) -> tuple[float, int, int]:
    """Across every MCU boundary (every ``cw`` columns and ``ch`` rows of ``y``, at least two
    pixels in): the sum of how much the step at the boundary exceeds the mean step of the pixel
    pairs just inside on either side (where it does), how many exceed it by more than 16 levels,
    and how many boundary pixel pairs there are."""
    h, w = y.shape
    total = 0.0
    broken = 0
    count = 0
    for x in range(cw, w - 1, cw):
        if x < 2:
            continue
        for i in range(h):
            excess = step_excess(y[i, x - 2], y[i, x - 1], y[i, x], y[i, x + 1])
            if excess > 0:
                total += excess
            if excess > 16.0:
                broken += 1
            count += 1
    for r in range(ch, h - 1, ch):
        if r < 2:
            continue
        for j in range(w):
            excess = step_excess(y[r - 2, j], y[r - 1, j], y[r, j], y[r + 1, j])
            if excess > 0:
                total += excess
            if excess > 16.0:
                broken += 1
            count += 1
    return total, broken, count


def _flat_share(y: np.ndarray, ch: int, cw: int, clip: float) -> float:
    """Share of the whole ``ch``×``cw`` cells of ``y`` whose standard deviation is under 0.75,
    except those whose mean lies within ``clip`` levels of 0 or 255 (bands of cell rows on the
    cores: :mod:`acir_core.bands`)."""
    rows, cols = y.shape[0] // ch, y.shape[1] // cw
    if rows == 0 or cols == 0:
        return 0.0
    counts = over_rows(lambda a, b: _flat_cells(y[a * ch: b * ch], ch, cw, clip), rows, min_rows=4)
    return sum(counts) / (rows * cols)


@njit(cache=True, nogil=True)
def _flat_cells(y: np.ndarray, ch: int, cw: int, clip: float) -> int:
    """How many whole cells of ``y`` :func:`_flat_share` counts as flat."""
    rows, cols = y.shape[0] // ch, y.shape[1] // cw
    flat = 0
    n = ch * cw
    for br in range(rows):
        for bc in range(cols):
            s = 0.0
            for i in range(br * ch, br * ch + ch):
                for j in range(bc * cw, bc * cw + cw):
                    s += y[i, j]
            mean = s / n
            v = 0.0
            for i in range(br * ch, br * ch + ch):
                for j in range(bc * cw, bc * cw + cw):
                    d = y[i, j] - mean
                    v += d * d
            if v / n < 0.5625 and clip < mean < 255.0 - clip:
                flat += 1
    return flat


@njit(cache=True)
def _wrap_share(y: np.ndarray, ch: int, cw: int, ratio: float, levels: float) -> float:
    """Share of the MCU rows of ``y`` that wrap at the wrong MCU. A run placed one MCU late puts
    the MCU that ends a row at the start of the next: the row's first MCU boundary shows a seam
    (``ratio`` times and ``levels`` above the median of the row's boundaries), while that MCU's
    left edge continues the right edge of the row above's last MCU, its true neighbour. One MCU
    early, the same with the row's last boundary and the next row's first MCU. Natural edges at
    a row's first boundary do not continue across the wrap. Without whole MCUs across (the last
    one's right edge cut off), the seam alone judges."""
    h, w = y.shape
    rows = h // ch
    xs = [x for x in range(cw, w - 1, cw) if x >= 2]
    if rows == 0 or len(xs) < 3:
        return 0.0
    whole = w % cw == 0 and w >= 2 * cw
    wrap = np.zeros(rows + 1)  # wrap[r]: step from row r-1's last pixel column to row r's first
    if whole:
        for br in range(1, rows):
            acc = 0.0
            for i in range(ch):
                a, b = y[(br - 1) * ch + i], y[br * ch + i]
                acc += max(step_excess(a[w - 2], a[w - 1], b[0], b[1]), 0.0)
            wrap[br] = acc / ch
    seam = np.empty(len(xs))
    wrong = 0
    for br in range(rows):
        for k in range(len(xs)):
            x = xs[k]
            acc = 0.0
            for i in range(br * ch, br * ch + ch):
                acc += max(step_excess(y[i, x - 2], y[i, x - 1], y[i, x], y[i, x + 1]), 0.0)
            seam[k] = acc / ch
        bar = ratio * np.median(seam) + levels
        if not whole:
            late, early = seam[0] > bar, seam[-1] > bar
        else:
            late = br > 0 and seam[0] > bar and wrap[br] * ratio < seam[0]
            early = br + 1 < rows and seam[-1] > bar and wrap[br + 1] * ratio < seam[-1]
        if late or early:
            wrong += 1
    return wrong / rows


def judge(rgb: np.ndarray, cell: tuple[int, int], thumbnail: np.ndarray | None = None, *,
          thumb_weight: float = 1.0, y: np.ndarray | None = None) -> Evidence:
    """The evidence on ``rgb`` (H×W×3 uint8) with MCUs of ``cell`` (height, width) pixels and an
    optional ``thumbnail`` framed to the photo. ``score`` = seams + 100 × (broken + flat) +
    30 × wrapped + ``thumb_weight`` × thumbnail distance: a broken seam is what a misplaced run looks
    like, a row wrapped at the wrong MCU what a run one MCU off looks like (a camera thumbnail
    cannot see that), a flat MCU what a decoder that gave up shows, and the thumbnail tells a
    plausible fill from garbage that happens to be smooth. ``y``: ``luma(rgb)`` where the caller
    has it already."""
    y = luma(rgb) if y is None else y
    total, n_broken, count = _seam_sums(y, int(cell[0]), int(cell[1]))
    seams = total / count if count else 0.0
    broken = n_broken / count if count else 0.0
    flat = _flat_share(y, int(cell[0]), int(cell[1]), CLIP_LEVELS)
    wrapped = _wrap_share(y, int(cell[0]), int(cell[1]), WRAP_RATIO, WRAP_LEVELS)
    dist = 0.0
    if thumbnail is not None:
        th, tw = thumbnail.shape[:2]
        dist = float(np.mean(np.abs(luma(reduce_to(rgb, tw, th).astype(np.uint8)) - luma(thumbnail))))
    return Evidence(seams=seams, broken=broken, flat=flat, wrapped=wrapped, thumbnail=dist,
                    score=seams + 100.0 * (broken + flat) + WRAP_WEIGHT * wrapped + thumb_weight * dist)
