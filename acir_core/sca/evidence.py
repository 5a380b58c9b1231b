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

from acir_core.thumbframe import luma, reduce_to


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """``seams``: mean luma step across MCU boundaries beyond the step between the pixels beside
    them (levels); ``broken``: share of boundary pixels whose step exceeds that by more than 16
    levels; ``flat``: share of MCUs without any texture (luma spread under 0.75 levels: what a
    decoder shows where it gave up, its last DC repeated); ``thumbnail``: mean absolute luma
    difference to the thumbnail at its size (levels, 0 without one); ``score``: what the choice
    minimises."""

    seams: float
    broken: float
    flat: float
    thumbnail: float
    score: float


def _boundary_steps(y: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Across the boundaries every ``step`` columns of ``y``: |step at the boundary| and the mean
    |step| of the pixel pairs just inside on either side."""
    xs = np.arange(step, y.shape[1] - 1, step)
    xs = xs[xs >= 2]
    if xs.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    at = np.abs(y[:, xs] - y[:, xs - 1])
    inside = 0.5 * (np.abs(y[:, xs - 1] - y[:, xs - 2]) + np.abs(y[:, xs + 1] - y[:, xs]))
    return at.ravel(), inside.ravel()


def judge(rgb: np.ndarray, cell: tuple[int, int], thumbnail: np.ndarray | None = None, *,
          thumb_weight: float = 0.5) -> Evidence:
    """The evidence on ``rgb`` (H×W×3 uint8) with MCUs of ``cell`` (height, width) pixels and an
    optional ``thumbnail`` framed to the photo. ``score`` = seams + 100 × (broken + flat) +
    ``thumb_weight`` × thumbnail distance: a broken seam is what a misplaced run looks like, a
    flat MCU what a decoder that gave up shows, and the thumbnail tells a plausible fill from
    garbage that happens to be smooth."""
    y = luma(rgb)
    a1, i1 = _boundary_steps(y, cell[1])
    a2, i2 = _boundary_steps(y.T, cell[0])
    at = np.concatenate([a1, a2])
    inside = np.concatenate([i1, i2])
    if at.size:
        excess = at - inside
        seams = float(np.mean(np.maximum(excess, 0.0)))
        broken = float(np.mean(excess > 16.0))
    else:
        seams = broken = 0.0
    ch, cw = cell
    rows, cols = y.shape[0] // ch, y.shape[1] // cw
    flat = 0.0
    if rows and cols:
        blocks = y[: rows * ch, : cols * cw].reshape(rows, ch, cols, cw)
        flat = float(np.mean(blocks.std(axis=(1, 3)) < 0.75))
    dist = 0.0
    if thumbnail is not None:
        th, tw = thumbnail.shape[:2]
        dist = float(np.mean(np.abs(luma(reduce_to(rgb, tw, th).astype(np.uint8)) - luma(thumbnail))))
    return Evidence(seams=seams, broken=broken, flat=flat, thumbnail=dist,
                    score=seams + 100.0 * (broken + flat) + thumb_weight * dist)
