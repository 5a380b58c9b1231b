"""Stretches of runs an MCU off, moved where their row wraps agree they belong."""
from __future__ import annotations

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.edges import inward, outward
from acir_core.sca.rewrap import held, rewrap, wrap_evidence
from acir_core.sca.runs import Run
from acir_core.sca.shifts import seam_steps

ROWS, COLS = 12, 24  # MCUs of 8×8 samples, one component
N = ROWS * COLS


def blocks_of(ramp: float, wave: float = 6.0, seed: int = 0, stripes: float = 0.0) -> np.ndarray:
    """The MCUs (N, 8, 8), decoded in order, of a picture that brightens left to right by ``ramp``
    levels across each row (so a row's last MCU and the next row's first differ by about that),
    with a ``wave`` down the rows, vertical ``stripes`` of that amplitude (13 samples apart, so
    an MCU aside they no longer meet those above) and a little noise."""
    y, x = np.mgrid[0 : 8 * ROWS, 0 : 8 * COLS].astype(float)
    rng = np.random.default_rng(seed)
    img = 60 + ramp * x / (8 * COLS) + wave * np.sin(y / 5.0) + stripes * np.sin(2 * np.pi * x / 13) + \
        rng.normal(0, 0.5, x.shape)
    return img.reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(N, 8, 8)


def edges_of(blocks: np.ndarray) -> tuple:
    inner = ((inward(blocks[:, 0, :], blocks[:, 1, :]),), (inward(blocks[:, :, 0], blocks[:, :, 1]),))
    outer = ((outward(blocks[:, 7, :], blocks[:, 6, :]),), (outward(blocks[:, :, 7], blocks[:, :, 6]),))
    return inner, outer


def placed(bounds: list[tuple[int, int, int]]) -> list[Placement]:
    """Runs [first, end) at the given shifts, the first anchored, all in one restart interval."""
    return [Placement(run=Run(a, b, np.arange(a, b)), shift=s, dc=(0,), cost=0.0, anchored=k == 0, first=0, count=N)
            for k, (a, b, s) in enumerate(bounds)]


def test_wraps_say_where_the_rows_start():
    """At a run's true place its seam steps stand out where the rows wrap; an MCU aside they do not."""
    inner, outer = edges_of(blocks_of(120.0))
    m = np.arange(30, 130)
    steps = seam_steps(inner[1], outer[1], m)
    aside, here = wrap_evidence(steps, m + 1, COLS, -1)  # placed one late: back one
    assert np.median(aside) > 50 and np.abs(here).max() < 1
    for delta in (1, -1):  # placed right: nothing aside, the wraps stand out where they are
        aside, here = wrap_evidence(steps, m, COLS, delta)
        assert aside.max() < 1 and here.min() > 50


def test_a_stretch_locked_in_off_moves_together():
    pls = placed([(0, 60, 0), (60, 110, 1), (110, 170, 1), (170, 230, 1)])
    edges = edges_of(blocks_of(120.0))
    assert rewrap(pls, edges, COLS, held(pls, set())) == 3
    assert [pl.shift for pl in pls] == [0, 0, 0, 0]


def test_a_stretch_moves_past_a_neighbour_locked_in_with_it():
    """A short run without a row wrap of its own sits an MCU late above the stretch, as the search
    left it once the stretch was: its border fits the stretch only where the stretch is, and the
    wraps, which stand out far more than that border misfits, move the stretch all the same."""
    pls = placed([(0, 49, 0), (49, 70, 1), (70, 200, 1), (200, 230, 1)])
    assert rewrap(pls, edges_of(blocks_of(120.0, stripes=10.0)), COLS, held(pls, set())) == 2
    assert [pl.shift for pl in pls] == [0, 1, 0, 0]


def test_a_border_with_a_held_run_at_the_moved_place_stays_strict():
    """The stretch's first row lies, moved, under the scan's first run (held) where it now lies
    under a run that may move; that held run's last MCU no longer meets it there, so it stays."""
    blocks = blocks_of(120.0, stripes=10.0)
    blocks[48] += np.linspace(-30, 30, 8)[None, :]
    pls = placed([(0, 49, 0), (49, 72, 0), (72, 200, 1), (200, 230, 1)])
    assert rewrap(pls, edges_of(blocks), COLS, held(pls, set())) == 0
    assert [pl.shift for pl in pls] == [0, 0, 1, 1]


def test_weak_wraps_yield_to_the_borders_with_runs_locked_in():
    """Where the wraps stand out barely (a soft ramp across the rows), the same misfit with the
    neighbour keeps the stretch where it is."""
    pls = placed([(0, 49, 0), (49, 70, 1), (70, 200, 1), (200, 230, 1)])
    edges = edges_of(blocks_of(12.0, stripes=10.0))
    assert rewrap(pls, edges, COLS, held(pls, set())) == 0


def test_a_small_step_at_the_current_wraps_does_not_hold_a_stretch_whose_wraps_aside_stand_out():
    """The last column is 4 levels brighter, so the seams where a run an MCU late has its
    rows wrap step a little; the wraps aside step by the whole ramp across a row, and decide."""
    blocks = blocks_of(120.0)
    blocks[np.arange(N) % COLS == COLS - 1] += 4.0
    pls = placed([(0, 60, 0), (60, 110, 1), (110, 170, 1), (170, 230, 1)])
    edges = edges_of(blocks)
    steps = seam_steps(edges[0][1], edges[1][1], pls[1].run.trusted)
    _, here = wrap_evidence(steps, pls[1].run.trusted + 1, COLS, -1)
    assert np.median(here) > 1.0
    assert rewrap(pls, edges, COLS, held(pls, set())) == 3
    assert [pl.shift for pl in pls] == [0, 0, 0, 0]


def test_runs_in_place_stay():
    pls = placed([(0, 60, 0), (60, 110, 0), (110, 170, 0), (170, 230, 0)])
    assert rewrap(pls, edges_of(blocks_of(120.0)), COLS, held(pls, set())) == 0


def test_wraps_that_say_nothing_move_nothing():
    """In flat content a row's end and the next row's start look alike: no evidence, no move."""
    pls = placed([(0, 60, 0), (60, 110, 1), (110, 170, 1), (170, 230, 1)])
    assert rewrap(pls, edges_of(blocks_of(0.0, 0.0)), COLS, held(pls, set())) == 0
    assert [pl.shift for pl in pls] == [0, 1, 1, 1]


def test_a_run_in_place_ends_the_stretch():
    """A run whose wraps say it is right stops the stretch: the long run before it (4 wraps) moves,
    the short one after it (2 wraps, too few alone) stays."""
    pls = placed([(0, 30, 0), (30, 130, 1), (130, 180, 0), (180, 230, 1)])
    assert rewrap(pls, edges_of(blocks_of(120.0)), COLS, held(pls, set())) == 1
    assert [pl.shift for pl in pls] == [0, 0, 0, 1]


def test_a_run_whose_wraps_stand_out_where_it_is_ends_the_stretch():
    """A short run with no wrap aside to say, whose row does wrap where it is, is not pulled along
    by the runs after it."""
    pls = placed([(0, 30, 0), (30, 130, 1), (131, 145, 0), (145, 250, 1)])
    rewrap(pls, edges_of(blocks_of(120.0)), COLS, held(pls, set()))
    assert pls[2].shift == 0 and pls[1].shift == 0


def test_held_runs_never_move():
    """An interval's first run, one in an interval decoded as written and one held to its
    interval's end stay where they are, and a stretch stops at them."""
    pls = placed([(0, 60, 0), (60, 110, 1), (110, 170, 1), (170, 230, 1)])
    assert held(pls, {0}).all()  # the interval was decoded as written
    assert rewrap(pls, edges_of(blocks_of(120.0)), COLS, held(pls, {0})) == 0
    end = placed([(0, 60, 0), (60, 110, 1), (110, 170, 1), (170, N - 1, 1)])
    fixed = held(end, set())
    assert fixed.tolist() == [True, False, False, True]
    rewrap(end, edges_of(blocks_of(120.0)), COLS, fixed)
    assert end[-1].shift == 1


def test_a_content_edge_at_the_wraps_is_not_taken_for_them():
    """A bright, striped band from the third MCU column on steps at the same column in every row,
    as row wraps would two MCUs aside, while the true wraps (dark beside dark) do not stand out;
    moved there, the stripes no longer meet those of the rows above and below, so it stays."""
    y, x = np.mgrid[0 : 8 * ROWS, 0 : 8 * COLS].astype(float)
    band = (x >= 16) & (x < 88)
    img = 60 + band * (80 + 20 * np.sin(2 * np.pi * x / 6)) + np.random.default_rng(1).normal(0, 0.5, x.shape)
    blocks = img.reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(N, 8, 8)
    pls = placed([(0, 60, 0), (60, 160, 0), (160, 230, 0)])
    edges = edges_of(blocks)
    steps = seam_steps(edges[0][1], edges[1][1], pls[1].run.trusted)
    aside, here = wrap_evidence(steps, pls[1].run.trusted, COLS, -2)
    assert np.median(aside) > 20 and np.median(here) < 1  # the wraps alone would move it
    assert rewrap(pls, edges, COLS, held(pls, set())) == 0
    assert [pl.shift for pl in pls] == [0, 0, 0]
