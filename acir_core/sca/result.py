"""What SCA returns: the compensated image and mask, and how each run of MCUs was put back."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, kw_only=True)
class SegmentFix:
    """How one run of decoded MCUs was put back: decoded MCUs ``[first_mcu, end_mcu)`` of ``scan``
    belong at index + ``shift``; ``dc`` (quantised units, per scan component) was subtracted from
    their DC. ``cost``: mean boundary/thumbnail residual in sample levels, less what the run's own
    row wraps vouch for (:func:`acir_core.sca.shifts.wrap_costs`; can be below 0); ``confident``: the run's
    pixels are trusted (otherwise they are in the damage mask)."""

    scan: int
    first_mcu: int
    end_mcu: int
    shift: int
    dc: tuple[int, ...]
    cost: float
    confident: bool


@dataclass(frozen=True, kw_only=True, eq=False)
class SCAResult:
    """Compensated image (H×W×3 uint8, not filled), damage mask (H×W bool, True = not trusted),
    the per-MCU damage grid of the first scan, what was done per run, corrected coefficients,
    the method ("aware" or "paper") and timings (s). ``doubtful``: the part of ``mcu_mask``
    marked only as a precaution (content placed in a confident run, but next to garbage or
    unseen by the thumbnail: mostly right), or None; ``unsure``: the pixels (H×W bool) the mask
    holds only for runs whose own evidence says they may lie a place or two off (kept as decoded
    where the mask is inpainted; the evidence judges a restoration as if they were not marked),
    or None."""

    rgb: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    mcu_mask: np.ndarray = field(repr=False)
    segments: tuple[SegmentFix, ...]
    coefficients: tuple[np.ndarray, ...] = field(repr=False)
    method: str
    timings: dict[str, float]
    doubtful: np.ndarray | None = field(default=None, repr=False)
    unsure: np.ndarray | None = field(default=None, repr=False)

    @property
    def damaged_fraction(self) -> float:
        return float(self.mask.mean())
