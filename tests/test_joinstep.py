"""Silent DC steps inside placed runs, seen in how they join the runs above and below."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.edges import inward, outward
from acir_core.sca.joinstep import join_steps
from acir_core.sca.options import RunOptions
from acir_core.sca.runs import Run

ROWS, COLS = 6, 64  # MCUs of 8×8 samples, one component
N = ROWS * COLS


def layout(jump: float = 0.0, above_off: float = 0.0, at: int = 40, until: int = COLS, means: bool = False,
           stripes: float = 0.0, rows_of_runs: tuple = (2, 1, 3), again: int = COLS) -> tuple:
    """Rows 0-1, 2 and 3-5 decoded as three runs in place; run 1 (row 2) has its DC moved by
    ``jump`` levels from MCU 2·COLS + ``at`` on (a silent break), up to column ``until``;
    ``above_off``: run 0's MCUs from column 40 of its last row on are that far off instead (its
    own error, above run 1); ``stripes``: every MCU row from column 40 on that far brighter and
    darker in turn. ``means``: the MCUs' means (N, 1) returned too; ``rows_of_runs``: MCU rows
    per run (run 1 must start at row 2); ``again``: row 2 steps by ``jump`` once more from this
    column on."""
    y, x = np.mgrid[0 : 8 * ROWS, 0 : 8 * COLS].astype(float)
    rng = np.random.default_rng(7)
    img = 110 + 30 * np.sin(x / 9.0) + 20 * np.cos(y / 13.0 + x / 17.0) + rng.normal(0, 1.0, x.shape)
    blocks = img.reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(N, 8, 8)
    blocks[2 * COLS + at : 2 * COLS + until] += jump
    blocks[2 * COLS + again : 3 * COLS] += jump
    blocks[COLS + 40 : 2 * COLS] += above_off
    for r in range(ROWS):
        blocks[r * COLS + 40 : (r + 1) * COLS] += stripes * (-1) ** r
    tops = (inward(blocks[:, 0, :], blocks[:, 1, :]),)
    bottoms = (outward(blocks[:, 7, :], blocks[:, 6, :]),)
    edges = ((tops, tops), (bottoms, bottoms))  # left/right edges are not read
    ends = np.cumsum(rows_of_runs) * COLS
    spans = [(int(a), int(b)) for a, b in zip(np.concatenate([[0], ends[:-1]]), ends)]
    pls = [Placement(run=Run(a, b, np.arange(a, b)), shift=0, dc=(0,), cost=0.0, anchored=a == 0, first=0, count=N)
           for a, b in spans]
    solved = np.zeros((len(spans), 1), np.int64)
    if means:
        return pls, solved, edges, blocks.mean(axis=(1, 2))[:, None]
    return pls, solved, edges


def test_a_run_is_cut_where_its_joins_above_and_below_step():
    pls, solved, edges = layout(jump=20.0)
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), set()) == 1
    assert len(pls) == 4
    a, b = pls[1], pls[2]
    assert a.shift == b.shift == 0 and not b.anchored
    assert a.run.trusted.max() < 2 * COLS + 40 <= b.run.trusted.min() and abs(b.run.first - (2 * COLS + 40)) <= 2


def test_runs_without_a_step_stay_whole():
    for sound in (set(), {0}):
        pls, solved, edges = layout()
        assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), sound) == 0 and len(pls) == 3


def test_silent_garbage_in_a_sound_interval_is_left_out_with_what_follows_it():
    """An interval decoded as written whose level steps 20 levels at column 40 (silent garbage
    that kept every code boundary): the MCU found and the one before it are left out, and the 23
    after them, too few for a DC of their own, too."""
    pls, solved, edges = layout(jump=20.0)
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {0}) == 1
    assert len(pls) == 3
    head = pls[1].run
    assert head.trusted.min() == 2 * COLS and head.trusted.max() in (2 * COLS + 37, 2 * COLS + 38)
    placed = np.concatenate([p.run.trusted for p in pls])
    assert not np.isin(np.arange(2 * COLS + 39, 3 * COLS), placed).any()


def test_a_long_rest_after_silent_garbage_gets_its_own_dc():
    pls, solved, edges = layout(jump=20.0, at=10)
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {0}) == 1
    assert len(pls) == 4
    head, rest = pls[1], pls[2]
    assert not rest.anchored and rest.shift == 0
    assert head.run.trusted.max() < 2 * COLS + 10 and rest.run.trusted.min() in (2 * COLS + 10, 2 * COLS + 11)
    assert rest.run.trusted.max() == 3 * COLS - 1


def test_what_the_photo_shows_in_a_sound_interval_is_not_garbage():
    """A bright stretch of 3 MCUs (an object within the row) steps both ways and ends: the
    median from it on stays near 0."""
    pls, solved, edges = layout(jump=20.0, at=40, until=43)
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {0}) == 0 and len(pls) == 3


def test_a_step_at_the_edges_but_not_in_the_means_is_not_garbage():
    """Stripes finer than an MCU step at its edges both ways; the MCU's mean does not: with the
    means of a photo without the step, the step its edges show is not taken for garbage; with
    the means that show it too, it is."""
    pls, solved, edges, stepped = layout(jump=40.0, means=True)  # the rows' own means step by up to 9
    *_, level = layout(means=True)
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {0}, level) == 0 and len(pls) == 3
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {0}, stepped) == 1


def test_stripes_are_not_garbage():
    """Every MCU row from column 40 on 20 levels brighter and darker in turn: row 2 steps both
    ways as garbage would, but so do the rows above and below it."""
    pls, solved, edges, level = layout(stripes=20.0, means=True)
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {0}, level) == 0 and len(pls) == 3


def test_garbage_in_a_sound_intervals_first_mcu_leaves_no_anchored_piece():
    """The interval's first MCU hit: every later MCU carries the wrong level, so none of them is
    held at the interval's own (restart-reset) level. The MCU placed before it (row 1's last,
    a run of its own) is calm."""
    pls, solved, edges, level = layout(jump=40.0, at=0, means=True, rows_of_runs=(1, 1, 1, 3))
    pls[2] = replace(pls[2], anchored=True)
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {0}, level) == 1
    rest = [p for p in pls if 2 * COLS <= p.run.first < 3 * COLS]
    assert len(rest) == 1 and not rest[0].anchored and rest[0].run.trusted.min() == 2 * COLS + 1


def test_a_neighbour_off_on_one_side_does_not_cut():
    """Content off above the run steps its top joins only, the joins below stay as they were; the
    run above sees the step on its bottom side only (its top is its own): neither is cut."""
    pls, solved, edges = layout(above_off=20.0)
    before = [(p.run.first, p.run.end) for p in pls]
    join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), set())
    assert [(p.run.first, p.run.end) for p in pls] == before


def test_the_neighbours_dc_corrections_are_applied_before_the_joins_are_compared():
    """Row 1 is two runs decoded 30 levels too bright and too dark, their solved DCs saying so;
    only with those corrections applied do the joins above run 1 stay level up to its break
    (uncorrected, they step by 60 levels at column 20, on the top side only)."""
    pls, _, edges = layout(jump=20.0)
    (tops, _), (bottoms, _) = edges
    tops, bottoms = tops[0].copy(), bottoms[0].copy()
    a, b = np.arange(0, COLS + 20), np.arange(COLS + 20, 2 * COLS)
    for idx, off in ((a, 30.0), (b, -30.0)):
        tops[idx] += off
        bottoms[idx] += off
    edges = (((tops,), (tops,)), ((bottoms,), (bottoms,)))
    runs = [(a, 30), (b, -30), (np.arange(2 * COLS, 3 * COLS), 0), (np.arange(3 * COLS, N), 0)]
    pls = [Placement(run=Run(int(m[0]), int(m[-1]) + 1, m), shift=0, dc=(0,), cost=0.0, anchored=k == 0, first=0,
                     count=N) for k, (m, _) in enumerate(runs)]
    solved = np.array([[dc] for _, dc in runs], np.int64)
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), set()) == 1
    cut = [p for p in pls if p.run.first > 2 * COLS and p.run.first < 3 * COLS]
    assert len(cut) == 1 and abs(cut[0].run.first - (2 * COLS + 40)) <= 2


def test_runs_placed_partly_past_the_scan_are_judged_without_error():
    """A run the search put a few MCUs past the scan's end (its last MCUs fall off) is judged on
    what lies inside."""
    pls, solved, edges, level = layout(jump=20.0, means=True)
    pls[2] = replace(pls[2], shift=5)
    pls[0] = replace(pls[0], shift=-3)
    join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {0}, level)
    assert all(p.run.trusted.size for p in pls)


def test_garbage_near_a_runs_end_is_left_out_where_the_scan_finds_no_step():
    """Outside intervals decoded as written too: the last 8 MCUs of a run 40 levels off are too
    few for the scan's pieces of 24, but step as garbage does; they are left out."""
    pls, solved, edges, level = layout(jump=40.0, at=56, means=True)  # the rows' own means step by up to 12
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), set(), level) == 1
    placed = np.concatenate([p.run.trusted for p in pls])
    assert not np.isin(np.arange(2 * COLS + 56, 3 * COLS), placed).any()
    assert np.isin(np.arange(2 * COLS, 2 * COLS + 54), placed).all()


def test_the_rest_after_a_garble_is_not_searched_again():
    """Each run an interval of its own, decoded as written; row 2 steps 40 levels at column 10
    and 40 more at column 40: the rest after the first gets its own DC, whole (its steps hold
    the level the DCs were solved at with the garbage in)."""
    pls, solved, edges, level = layout(jump=40.0, at=10, again=40, means=True, rows_of_runs=(2, 1, 1, 2))
    pls = [replace(p, first=p.run.first, count=p.run.end - p.run.first) for p in pls]
    assert join_steps(pls, solved, edges, [1.0], COLS, N, RunOptions(), {p.first for p in pls}, level) == 1
    row2 = [p.run.trusted for p in pls if 2 * COLS <= p.run.first < 3 * COLS]
    assert [(int(t.min()), int(t.max())) for t in row2] == [(2 * COLS, 2 * COLS + 8), (2 * COLS + 11, 3 * COLS - 1)]
