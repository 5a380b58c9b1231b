"""Where the guided and the unguided SCA put different content, and the kept one has no better
local evidence: marked as precautions.

The engine keeps one SCA for the whole photo on the evidence (:mod:`acir_core.sca.evidence`).
Where the other one placed a run differently (a shift, a DC level), and the kept result's seams at
the MCU boundaries there are no fewer and its distance to the thumbnail not clearly smaller, the
photo holds two placements the evidence cannot tell apart: SCA could not verify what it shows
there. Those MCUs join the mask and keep their decoded content (the fill is not changed). Judged
on each disputed area as a whole and on each MCU's 3×3 neighbourhood, so that a small misplaced
stretch inside a large area placed right is seen too (camera set: benchmarks/HISTORY.md, session 40).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from acir_core.bands import over_rows
from acir_core.errors import InvalidParameter
from acir_core.sca.evidence import step_excess
from acir_core.thumbframe import luma

DISPUTE_LEVELS = 14.0  # luma levels (0-255) two results must differ by at a pixel ...
DISPUTE_SHARE = 0.05  # ... over more than this share of an MCU's pixels for it to be disputed
THUMB_RATIO = 0.5  # the kept result is clearly nearer the thumbnail below this share of the other's distance
NEAR_SEAMS = 1.1  # times the other's seams a 3×3 neighbourhood's must exceed: inside a large area placed
# right the two differ by a level offset alone and their seams nearly tie


@dataclass(frozen=True, kw_only=True)
class LocalEvidence:
    """Per MCU cell (rows × cols, a partial last cell included) of one restoration: ``seams``,
    the step excess summed over the cell's top and left boundary pixels (as
    :func:`acir_core.sca.evidence.judge` counts it); ``thumbnail``, the cell's pixel count times
    the absolute difference of its mean luma and the up-sampled thumbnail's there (zeros without
    one): a 160-px thumbnail knows a cell's level, not its texture, and per-pixel differences in
    a detailed or noisy photo are mostly texture."""

    seams: np.ndarray
    thumbnail: np.ndarray


def local_evidence(rgb: np.ndarray, cell: tuple[int, int], thumb_y: np.ndarray | None, *,
                   y: np.ndarray | None = None) -> LocalEvidence:
    """:class:`LocalEvidence` of ``rgb`` (H×W×3 uint8, the view the evidence judges) in cells of
    ``cell`` (height, width) pixels; ``thumb_y``: the luma (:func:`acir_core.thumbframe.luma`)
    of the thumbnail up-sampled to the photo, or None (bands of cell rows on the cores:
    :mod:`acir_core.bands`); ``y``: ``luma(rgb)`` where the caller has it already."""
    ch, cw = int(cell[0]), int(cell[1])
    y = luma(rgb) if y is None else y
    if thumb_y is not None and thumb_y.shape != y.shape:
        raise InvalidParameter(f"the thumbnail's luma is {thumb_y.shape[1]}x{thumb_y.shape[0]}, "
                               f"the photo {y.shape[1]}x{y.shape[0]}: up-sample it to the photo first")
    t = thumb_y if thumb_y is not None else y[:1, :1]
    shape = (-(-y.shape[0] // ch), -(-y.shape[1] // cw))
    seams, thumb = np.zeros(shape), np.zeros(shape)
    over_rows(lambda a, b: _evidence_rows(y, t, thumb_y is not None, ch, cw, a, b, seams, thumb), shape[0],
              min_rows=8)
    return LocalEvidence(seams=seams, thumbnail=thumb)


def disputed(kept: np.ndarray, other: np.ndarray, kept_ev: LocalEvidence, other_ev: LocalEvidence,
             cell: tuple[int, int]) -> np.ndarray:
    """The cells (rows × cols bool) to mark: where ``kept`` and ``other`` (H×W×3 uint8, the two
    SCAs' decoded content, unfilled) differ by more than :data:`DISPUTE_LEVELS` over more than
    :data:`DISPUTE_SHARE` of a cell, in a disputed area (8-connected) over which ``kept_ev``
    shows at least ``other_ev``'s seams and at least :data:`THUMB_RATIO` of its thumbnail
    distance, or whose 3×3 neighbourhood shows :data:`NEAR_SEAMS` times its seams and that share
    of its distance."""
    ch, cw = int(cell[0]), int(cell[1])
    if kept.shape != other.shape:
        raise InvalidParameter(f"the two results differ in size: {kept.shape} and {other.shape}")
    ya, yb = luma(kept), luma(other)
    share = np.zeros((-(-ya.shape[0] // ch), -(-ya.shape[1] // cw)))
    over_rows(lambda lo, hi: _share_rows(ya, yb, DISPUTE_LEVELS, ch, cw, lo, hi, share), share.shape[0], min_rows=8)
    del ya, yb
    dispute = share > DISPUTE_SHARE
    if not dispute.any():
        return dispute
    labels, n = _label8(dispute)
    sk, so, tk, to = (_around_labels(labels, n, a) for a in (kept_ev.seams, other_ev.seams,
                                                               kept_ev.thumbnail, other_ev.thumbnail))
    weak = (sk >= so) & (tk >= THUMB_RATIO * to)
    weak[0] = False
    marked = weak[labels]
    wk, wo = _box3(kept_ev.seams), _box3(other_ev.seams)
    tk3, to3 = _box3(kept_ev.thumbnail), _box3(other_ev.thumbnail)
    return marked | (dispute & (wk > NEAR_SEAMS * wo) & (tk3 >= THUMB_RATIO * to3))


def cells_to_pixels(cells: np.ndarray, cell: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """``cells`` (rows × cols bool) as pixels (``shape``: H, W), each cell ``cell`` pixels."""
    ch, cw = int(cell[0]), int(cell[1])
    return np.repeat(np.repeat(cells, ch, axis=0), cw, axis=1)[: shape[0], : shape[1]]


@njit(cache=True, nogil=True)
def _evidence_rows(y: np.ndarray, t: np.ndarray, with_thumb: bool, ch: int, cw: int, lo: int, hi: int,
                   seams: np.ndarray, thumb: np.ndarray) -> None:
    """Cell rows ``lo``..``hi`` of :func:`local_evidence`: the step excess (where positive) over
    each cell's left and top boundary pixel pairs into ``seams``, and the absolute summed
    difference of ``y`` and ``t`` (the cell's pixel count times the difference of its means)
    into ``thumb``."""
    h, w = y.shape
    for i in range(lo * ch, min(hi * ch, h)):
        ci = i // ch
        for x in range(cw, w - 1, cw):
            e = step_excess(y[i, x - 2], y[i, x - 1], y[i, x], y[i, x + 1])
            if e > 0:
                seams[ci, x // cw] += e
        if with_thumb:
            for j in range(w):
                thumb[ci, j // cw] += np.float64(y[i, j]) - np.float64(t[i, j])
        if i >= ch and i >= 2 and i % ch == 0 and i < h - 1:
            for j in range(w):
                e = step_excess(y[i - 2, j], y[i - 1, j], y[i, j], y[i + 1, j])
                if e > 0:
                    seams[ci, j // cw] += e
    for ci in range(lo, hi):
        for cj in range(thumb.shape[1]):
            thumb[ci, cj] = abs(thumb[ci, cj])


@njit(cache=True, nogil=True)
def _share_rows(a: np.ndarray, b: np.ndarray, levels: float, ch: int, cw: int, lo: int, hi: int,
                share: np.ndarray) -> None:
    """Cell rows ``lo``..``hi``: the share of each cell's pixels where ``a`` and ``b`` differ by
    more than ``levels``."""
    h, w = a.shape
    for i in range(lo * ch, min(hi * ch, h)):
        ci = i // ch
        for j in range(w):
            if abs(np.float64(a[i, j]) - np.float64(b[i, j])) > levels:
                share[ci, j // cw] += 1.0
    for ci in range(lo, hi):
        rows = min(ch, h - ci * ch)
        for cj in range(share.shape[1]):
            share[ci, cj] /= rows * min(cw, w - cj * cw)


@njit(cache=True)
def _label8(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of ``mask``: labels 1..n (0 outside) and n."""
    rows, cols = mask.shape
    labels = np.zeros((rows, cols), np.int64)
    stack = np.empty((rows * cols, 2), np.int64)
    n = 0
    for r0 in range(rows):
        for c0 in range(cols):
            if not mask[r0, c0] or labels[r0, c0]:
                continue
            n += 1
            labels[r0, c0] = n
            stack[0, 0], stack[0, 1] = r0, c0
            top = 1
            while top:
                top -= 1
                r, c = stack[top, 0], stack[top, 1]
                for dr in range(-1, 2):
                    for dc in range(-1, 2):
                        rr, cc = r + dr, c + dc
                        if 0 <= rr < rows and 0 <= cc < cols and mask[rr, cc] and not labels[rr, cc]:
                            labels[rr, cc] = n
                            stack[top, 0], stack[top, 1] = rr, cc
                            top += 1
    return labels, n


@njit(cache=True)
def _around_labels(labels: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Per label (index 0 unused): ``values`` summed over the label's cells and the ring of cells
    around it (its 3×3 dilation), each cell counted once per label."""
    rows, cols = labels.shape
    out = np.zeros(n + 1)
    seen = np.zeros(9, np.int64)
    for r in range(rows):
        for c in range(cols):
            k = 0
            for dr in range(-1, 2):
                for dc in range(-1, 2):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < rows and 0 <= cc < cols:
                        lab = labels[rr, cc]
                        if lab:
                            dup = False
                            for t in range(k):
                                if seen[t] == lab:
                                    dup = True
                            if not dup:
                                seen[k] = lab
                                k += 1
                                out[lab] += values[r, c]
    return out


def _box3(a: np.ndarray) -> np.ndarray:
    """Sum over each cell's 3×3 neighbourhood (cells outside the grid count 0)."""
    p = np.pad(a, 1)
    rows, cols = a.shape
    return sum(p[dr: dr + rows, dc: dc + cols] for dr in range(3) for dc in range(3))
