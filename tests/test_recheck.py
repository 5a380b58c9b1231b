"""Runs judged again on all four borders once placed, and the fill's tolerance for camera thumbnails."""
from __future__ import annotations

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.fill import AGREE_CELLS, thumbnail_spread
from acir_core.sca.recheck import recheck
from acir_core.sca.runs import Run

ROWS, COLS = 6, 16  # MCUs of 8×8 samples, one component


def picture() -> np.ndarray:
    """A smooth picture with texture along rows, so a run one MCU off shows at its borders."""
    y, x = np.mgrid[0 : 8 * ROWS, 0 : 8 * COLS].astype(float)
    rng = np.random.default_rng(3)
    return 120 + 40 * np.sin(x / 5.0) + 25 * np.cos(y / 7.0 + x / 11.0) + rng.normal(0, 1, x.shape)


def edges_of(img: np.ndarray) -> tuple:
    """(inner, outer) as SCA passes them: per MCU its top / left sample lines and its bottom /
    right ones, in decode order (here the MCUs are decoded where they belong)."""
    blocks = img.reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(ROWS * COLS, 8, 8)
    inner = ((blocks[:, 0, :],), (blocks[:, :, 0],))
    outer = ((blocks[:, 7, :],), (blocks[:, :, 7],))
    return inner, outer


def placement(first: int, end: int, shift: int, anchored: bool = False) -> Placement:
    run = Run(first=first, end=end, trusted=np.arange(first, end))
    return Placement(run=run, shift=shift, dc=(0,), cost=1.0, anchored=anchored, first=0, count=ROWS * COLS)


def test_a_short_run_one_mcu_off_goes_where_all_four_borders_fit() -> None:
    placements = [placement(0, 40, 0, anchored=True), placement(40, 56, 1), placement(56, 96, 0)]
    moved = recheck(placements, np.zeros((3, 1), np.int64), edges_of(picture()), [1.0], COLS, ROWS * COLS)
    assert moved == [1]
    assert placements[1].shift == 0
    assert placements[0].shift == 0 and placements[2].shift == 0


def test_runs_in_place_and_anchored_runs_stay() -> None:
    placements = [placement(0, 40, 0, anchored=True), placement(40, 56, 0), placement(56, 92, 0),
                  placement(92, 96, -1)]  # a run of a few MCUs is never judged again
    assert recheck(placements, np.zeros((4, 1), np.int64), edges_of(picture()), [1.0], COLS, ROWS * COLS) == []
    assert [p.shift for p in placements] == [0, 0, 0, -1]


def test_the_fill_tolerance_follows_how_far_the_thumbnail_lies_from_trusted_content() -> None:
    rng = np.random.default_rng(0)
    side = 16 * 20
    rgb = rng.integers(60, 200, (side, side, 3)).astype(np.uint8)
    mask = np.zeros((side, side), bool)
    assert thumbnail_spread(rgb, mask, rgb, (16, 16)) == 0.0
    off = rgb.astype(int)
    off[:160] += 30  # the top half of the thumbnail 30 levels brighter: its tone, not damage
    off = np.clip(off, 0, 255).astype(np.uint8)
    assert 25.0 < thumbnail_spread(rgb, mask, off, (16, 16)) <= 30.5
    mask[: side - 16 * 4] = True  # too few trusted cells to tell
    assert (side // 16) * 4 < AGREE_CELLS
    assert thumbnail_spread(rgb, mask, off, (16, 16)) is None
