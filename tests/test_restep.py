"""Silent DC steps inside runs, judged against the thumbnail where the runs were placed."""
from __future__ import annotations

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.edges import inward, outward
from acir_core.sca.options import RunOptions
from acir_core.sca.restep import restep
from acir_core.sca.runs import Run, top_steps

ROWS, COLS = 12, 24  # MCUs of 8×8 samples, one component
N = ROWS * COLS
SHIFT = 30  # the run's MCUs belong this many places after their decode index


def picture_blocks(horizon: bool = False, rows: int = ROWS, cols: int = COLS, seed: int = 3) -> np.ndarray:
    """A smooth, textured picture's MCUs (rows·cols, 8, 8) in raster order; ``horizon``: 40
    levels brighter from MCU row 6 on (an edge along an MCU row, in the thumbnail too)."""
    y, x = np.mgrid[0 : 8 * rows, 0 : 8 * cols].astype(float)
    rng = np.random.default_rng(seed)
    img = 110 + 30 * np.sin(x / 9.0) + 20 * np.cos(y / 13.0 + x / 17.0) + rng.normal(0, 1.0, x.shape)
    if horizon:
        img += 40.0 * (y >= 8 * 6)
    return img.reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3).reshape(rows * cols, 8, 8)


def placed_late(pic: np.ndarray, cols: int, jump_at: int, jump: float, tone=lambda v: v) -> tuple:
    """The decode of ``pic`` whose MCUs belong SHIFT places after their index, the DC moved by
    ``jump`` levels from decoded MCU ``jump_at`` on: (top steps, MCU means, the thumbnail's
    mean per position through ``tone``)."""
    blocks = np.zeros_like(pic)
    blocks[: pic.shape[0] - SHIFT] = pic[SHIFT:]
    blocks[jump_at:] += jump
    top = inward(blocks[:, 0, :], blocks[:, 1, :])
    bottom = outward(blocks[:, 7, :], blocks[:, 6, :])
    steps = top_steps((top,), (bottom,), cols)
    return steps, blocks.mean(axis=(1, 2))[:, None], tone(pic.mean(axis=(1, 2)))[:, None]


def case(jump: float, horizon: bool = False) -> tuple:
    """A run of decoded MCUs 10..250 placed SHIFT late (decoded MCU i shows the picture's MCU
    i + SHIFT), the DC moved by ``jump`` levels from decoded MCU 120 on (a silent break that
    kept every block in place); the thumbnail's mean per position is the picture's."""
    steps, means, thumb = placed_late(picture_blocks(horizon), COLS, 120, jump)
    run = Run(10, 250, np.arange(10, 250))
    pls = [Placement(run=run, shift=SHIFT, dc=(0,), cost=0.0, anchored=True, first=0, count=N)]
    return pls, steps, means, thumb


def test_a_step_the_thumbnail_confirms_where_the_run_lies_is_cut():
    pls, steps, means, thumb = case(20.0)
    assert restep(pls, steps, COLS, RunOptions(), means, thumb, set()) == 1
    a, b = pls
    assert a.shift == b.shift == SHIFT and a.anchored and not b.anchored
    assert abs(a.run.end - 120) <= 2 and abs(b.run.first - 120) <= 2
    assert a.run.trusted.max() < 120 <= b.run.trusted.min()


def test_runs_without_a_step_or_in_sound_intervals_stay_whole():
    pls, steps, means, thumb = case(0.0)
    assert restep(pls, steps, COLS, RunOptions(), means, thumb, set()) == 0 and len(pls) == 1
    pls, steps, means, thumb = case(20.0)
    assert restep(pls, steps, COLS, RunOptions(), means, thumb, {0}) == 0 and len(pls) == 1


def test_an_edge_the_thumbnail_shows_too_is_not_cut():
    """A horizon along an MCU row steps the edges alike, but the thumbnail steps with it."""
    pls, steps, means, thumb = case(0.0, horizon=True)
    assert restep(pls, steps, COLS, RunOptions(), means, thumb, set()) == 0 and len(pls) == 1


SHORT_COLS, SHORT_ROWS = 64, 6  # a wider picture: a run shorter than a row has no pairs inside it


def short_case(jump: float, tone=lambda v: v) -> tuple:
    """A run of decoded MCUs 70..134 (under a row: its own edges cannot show a step) placed
    SHIFT late, its DC moved by ``jump`` levels from decoded MCU 108 on; the thumbnail's mean
    per position is the picture's, through ``tone`` (a camera's own curve)."""
    pic = picture_blocks(rows=SHORT_ROWS, cols=SHORT_COLS, seed=5)
    steps, means, thumb = placed_late(pic, SHORT_COLS, 108, jump, tone)
    run = Run(70, 134, np.arange(70, 134))
    pls = [Placement(run=run, shift=SHIFT, dc=(0,), cost=0.0, anchored=False, first=0, count=pic.shape[0])]
    return pls, steps, means, thumb


def test_a_short_run_is_cut_where_the_thumbnail_at_its_place_steps():
    """Under a row a run's own edges say nothing; where it was decoded the thumbnail shows other
    content; where it lies the thumbnail shows the step."""
    pls, steps, means, thumb = short_case(20.0)
    assert restep(pls, steps, SHORT_COLS, RunOptions(), means, thumb, set()) == 0  # the edges alone
    assert restep(pls, steps, SHORT_COLS, RunOptions(), means, thumb, set(), units=[1.0]) == 1
    a, b = pls
    assert a.shift == b.shift == SHIFT
    assert a.run.trusted.max() < 108 <= b.run.trusted.min() and abs(b.run.first - 108) <= 2


def test_a_short_run_stays_whole_without_a_step_or_where_the_edges_refuse():
    pls, steps, means, thumb = short_case(0.0, tone=lambda v: 255.0 * (v / 255.0) ** 0.8)  # a camera's curve
    assert restep(pls, steps, SHORT_COLS, RunOptions(), means, thumb, set(), units=[1.0]) == 0 and len(pls) == 1
    pls, steps, means, thumb = short_case(20.0)
    seen = []

    def refuse(run, cut_mcu):
        seen.append(cut_mcu)
        return False
    assert restep(pls, steps, SHORT_COLS, RunOptions(), means, thumb, set(), units=[1.0], confirm=refuse) == 0
    assert len(pls) == 1 and seen and abs(seen[0] - 108) <= 2
