"""Runs whose row wraps or borders favour a place aside, too weakly to move them: precautions."""
from __future__ import annotations

import numpy as np

from acir_core.sca.rewrap import held, rewrap
from acir_core.sca.unsure import unsure_runs
from tests.test_rewrap import COLS, N, ROWS, blocks_of, edges_of, placed


def columns_of(period: float = 13.0, seed: int = 0) -> np.ndarray:
    """The MCUs (N, 8, 8), decoded in order, of vertical stripes: each column looks the same all
    the way down, so a run an MCU aside meets the rows above and below out of step."""
    y, x = np.mgrid[0 : 8 * ROWS, 0 : 8 * COLS].astype(float)
    img = 90 + 40 * np.sin(2 * np.pi * x / period) + np.random.default_rng(seed).normal(0, 0.5, x.shape)
    return img.reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(N, 8, 8)


def test_a_run_a_row_long_one_off_is_unsure_though_too_short_to_move():
    """One row wrap says the run belongs an MCU back: too few to move it, enough to doubt it."""
    pls = placed([(0, 60, 0), (60, 90, 0), (90, 114, 1), (115, 230, 0)])
    edges = edges_of(blocks_of(120.0))
    assert rewrap(pls, edges, COLS, held(pls, set())) == 0
    assert unsure_runs(pls, edges, COLS, held(pls, set())).tolist() == [False, False, True, False]


def test_a_short_run_one_off_is_unsure_by_its_borders():
    """A run shorter than a row has no wrap to say; the content above and below it does."""
    edges = edges_of(columns_of())
    off = placed([(0, 100, 0), (100, 110, 1), (111, 288, 0)])
    assert unsure_runs(off, edges, COLS, held(off, set())).tolist() == [False, True, False]
    right = placed([(0, 100, 0), (100, 110, 0), (111, 288, 0)])
    assert not unsure_runs(right, edges, COLS, held(right, set())).any()


def test_runs_in_place_are_sure():
    pls = placed([(0, 60, 0), (60, 110, 0), (110, 170, 0), (170, 230, 0)])
    for blocks in (blocks_of(120.0), columns_of()):
        assert not unsure_runs(pls, edges_of(blocks), COLS, held(pls, set())).any()


def test_held_runs_are_never_unsure():
    pls = placed([(0, 60, 0), (60, 90, 0), (90, 114, 1), (115, 230, 0)])
    assert not unsure_runs(pls, edges_of(blocks_of(120.0)), COLS, np.ones(len(pls), bool)).any()


def test_flat_content_raises_no_doubt():
    """Where nothing shows where a run belongs, nothing says it is off either."""
    pls = placed([(0, 60, 0), (60, 90, 0), (90, 114, 1), (115, 230, 0)])
    assert not unsure_runs(pls, edges_of(blocks_of(0.0, 0.0)), COLS, held(pls, set())).any()
