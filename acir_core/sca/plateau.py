"""A run's DC pinned exactly where it holds clipped highlights or shadows.

Continuity and a 160-pixel thumbnail put a run's DC within a step or two, and at quality 95 a
luma step is an eighth of a level: close, but not the coefficients the file held. Blown
highlights are the exception: an encoder cannot be given more than 255, so flat blocks at white
have one DC, that of 255s (or of the level a camera clips at, a step below on some). Where a run
whose DC is known (the first of a restart interval) holds such a plateau, every other run that
holds one within a few steps of it as placed takes that level exactly; the same holds for
clipped shadows. Chroma is not pinned: cameras clip luma on its own, and their clipped
highlights need not be neutral.
"""
from __future__ import annotations

import numpy as np

PLATEAU_BLOCKS = 8  # flat luma blocks at one DC that make a clipped plateau
PLATEAU_REACH = 4  # DC steps the plateau may lie from the clipped value, as the run was placed
EXACT_REACH = 1  # DC steps from 255s' (or 0s') a camera may clip at (the Panasonic FZ5: one below)
FLAT_AC = 1  # the sum of a flat block's AC magnitudes, at most


def _clip_dcs(q0: float) -> tuple[int, int]:
    """The luma DC of flat blocks of 255s and of 0s at DC quantiser ``q0``."""
    return round(1016 / q0), round(-1024 / q0)


def plateau_level(luma: np.ndarray, m: np.ndarray, dc: int, q0: float) -> int | None:
    """The corrected DC at which the flat luma blocks of the run of decoded MCUs ``m`` (correction
    ``dc``, subtracted from the decoded DCs) make a plateau within ``PLATEAU_REACH`` of a
    clipped value, with no flat block anywhere beyond it; None where they make none. ``luma``: the
    decode's MCU-major luma blocks (N, v, h, 64); ``q0``: luma's DC quantiser."""
    if not m.size:
        return None
    y = luma[m].reshape(m.size, -1, 64).astype(np.int32)
    flat = np.abs(y[..., 1:]).sum(axis=-1) <= FLAT_AC
    level = y[..., 0] - int(dc)
    for end in _clip_dcs(float(q0)):
        at = flat & (np.abs(level - end) <= PLATEAU_REACH)
        if int(at.sum()) < PLATEAU_BLOCKS:
            continue
        values, counts = np.unique(level[at], return_counts=True)
        top = int(values[np.argmax(counts)])
        beyond = flat & ((level > top) if end > 0 else (level < top))
        if int(counts.max()) >= PLATEAU_BLOCKS and not beyond.any():
            return top
    return None


def exact_levels(runs: list[np.ndarray], luma: np.ndarray, q0: float) -> set[int]:
    """The plateau levels (:func:`plateau_level`) of ``runs`` (decoded MCUs of runs whose DC is
    exact: the first of each restart interval, decoded from a reset predictor), those within
    ``EXACT_REACH`` steps of a clipped value only: such a run may still hold a silent DC step, or
    sit where a lost marker put it, and a level far from white is that, not the camera's clip."""
    ends = _clip_dcs(float(q0))
    runs = [m for m in runs if m.size]
    if not runs:
        return set()
    # one pass over all their MCUs first: a restart-marker file has thousands of such runs, few near white
    every = np.concatenate(runs)
    dc = luma[every, ..., 0].reshape(every.size, -1).astype(np.int32)
    near = (np.abs(dc - ends[0]) <= PLATEAU_REACH) | (np.abs(dc - ends[1]) <= PLATEAU_REACH)
    q, b = np.nonzero(near)  # only blocks near white or black are read in full
    blocks = luma[every[q]].reshape(q.size, dc.shape[1], 64)[np.arange(q.size), b]
    near[q, b] = np.abs(blocks[:, 1:].astype(np.int32)).sum(axis=-1) <= FLAT_AC
    counts = np.add.reduceat(near.sum(axis=1), np.cumsum([0] + [m.size for m in runs[:-1]]))
    levels = (plateau_level(luma, m, 0, q0) for m, c in zip(runs, counts) if c >= PLATEAU_BLOCKS)
    return {lv for lv in levels if lv is not None and min(abs(lv - e) for e in ends) <= EXACT_REACH}


def pin_plateau(luma: np.ndarray, m: np.ndarray, dc: int, q0: float, seen: set[int]) -> int:
    """The luma DC correction ``dc`` of the run ``m`` (as :func:`plateau_level`), moved so that
    its plateau lands on the level the plateaus of runs whose DC is exact lie at (``seen``:
    :func:`exact_levels`; a camera may clip a step below 255s). Unchanged where the run holds no
    plateau or none of ``seen`` is within reach."""
    top = plateau_level(luma, m, dc, q0)
    near = [] if top is None else [r for r in seen if abs(top - r) <= PLATEAU_REACH]
    return int(dc) + top - min(near, key=lambda r: abs(top - r)) if near else int(dc)
