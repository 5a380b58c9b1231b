"""Runs that fit nowhere: a silent break inside them, found by cutting where they step."""
from __future__ import annotations

import numpy as np

from acir_core.sca.edges import inward, outward
from acir_core.sca.options import RunOptions, ShiftOptions
from acir_core.sca.runs import Run
from acir_core.sca.shifts import Canvas, held_path, search_runs
from acir_core.sca.unfit import SegmentSearch, split_unfit

ROWS, COLS = 12, 24  # MCUs of 8×8 samples, one component
N = ROWS * COLS


def picture(seed: int) -> np.ndarray:
    """A smooth picture with texture along rows and columns, so a run an MCU off shows at its borders."""
    y, x = np.mgrid[0 : 8 * ROWS, 0 : 8 * COLS].astype(float)
    rng = np.random.default_rng(seed)
    return 120 + 40 * np.sin(x / 6.0 + rng.uniform(0, 6)) + 25 * np.cos(y / 7.0 + x / 11.0) + \
        rng.normal(0, 1, x.shape)


def decode_with_break(seed: int, at: int | None, jump: float) -> np.ndarray:
    """The MCUs (N, 8, 8) as decoded: from MCU ``at`` on, silent garbage read one MCU more than
    it held and moved the DC predictor by ``jump`` levels (None: decoded as written)."""
    b = picture(seed).reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(N, 8, 8)
    if at is None:
        return b
    noise = np.random.default_rng(seed + 100).uniform(0, 255, (1, 8, 8))
    return np.concatenate([b[:at], noise, b[at:-1] + jump])


def edges_of(blocks: np.ndarray) -> tuple:
    """(inner, outer, means) as SCA passes them: per decoded MCU its top / left edges inward,
    its bottom / right ones outward, its mean."""
    inner = ((inward(blocks[:, 0, :], blocks[:, 1, :]),), (inward(blocks[:, :, 0], blocks[:, :, 1]),))
    outer = ((outward(blocks[:, 7, :], blocks[:, 6, :]),), (outward(blocks[:, :, 7], blocks[:, :, 6]),))
    return inner, outer, (blocks.mean(axis=(1, 2)),)


def canvas_with(first: Run, outer: tuple) -> Canvas:
    canvas = Canvas(outer)
    canvas.place(first.trusted, first.trusted, [0.0])
    return canvas


def place_and_split(blocks: np.ndarray, runs: list[Run], final: int | None = None,
                    searched: list | None = None) -> tuple[list[Run], list[int], Canvas]:
    """What SCA does with one segment's runs: the first placed as decoded, the later ones
    searched and the shifts chosen (the last run held at ``final``), then the unfit ones cut. Returns the runs, their shifts and the
    canvas left; ``searched`` collects how many runs each search took."""
    inner, outer, means = edges_of(blocks)
    canvas = canvas_with(runs[0], outer)
    before = canvas.snapshot(slice(0, N))

    def search(rs: list[Run], start: int = 0):
        if searched is not None:
            searched.append(len(rs))
        return search_runs(rs, 0, N, COLS, inner, [1.0], canvas, (np.zeros(1),), False, ShiftOptions(), means,
                           start)

    def path(c: np.ndarray, b: np.ndarray) -> list[int]:
        return held_path(c, b, final, 0.05, True)

    later = runs[1:]
    c, d, b = search(later)
    seg = SegmentSearch(canvas=canvas, before=before, first=0, count=N, cols=COLS, absolute=False,
                        units=np.ones(1), window=ShiftOptions().window, search=search, path=path)
    later, found = split_unfit(later, (c, d, b, path(c, b)), 1.0, (inner[1], outer[1]), RunOptions(), seg)
    return later, list(found[3]), canvas


def fresh_canvas(blocks: np.ndarray, first: Run, later: list[Run]) -> Canvas:
    """The canvas one search of ``later`` leaves."""
    inner, outer, means = edges_of(blocks)
    fresh = canvas_with(first, outer)
    search_runs(later, 0, N, COLS, inner, [1.0], fresh, (np.zeros(1),), False, ShiftOptions(), means)
    return fresh


def same_canvas(a: Canvas, b: Canvas) -> bool:
    return np.array_equal(a.known, b.known) and np.array_equal(a.bottom[0], b.bottom[0]) and \
        np.array_equal(a.right[0], b.right[0])


def runs_of(*bounds: int) -> list[Run]:
    return [Run(a, b, np.arange(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]


def shift_at(runs: list[Run], shifts: list[int], mcu: int) -> int:
    (s,) = [s for r, s in zip(runs, shifts) if mcu in r.trusted]
    return s


def test_a_run_with_a_silent_break_mid_row_is_cut_and_both_pieces_placed() -> None:
    """Garbage one MCU long in the middle of a run's first row moved the DC by 60 levels and
    everything after it one place late: one shift and one DC fit neither piece against the row
    above, so the run fits nowhere."""
    for seed in range(4):
        blocks = decode_with_break(seed, 3 * COLS + 12, 60.0)
        later, shifts, _ = place_and_split(blocks, runs_of(0, 3 * COLS, 5 * COLS, N))
        assert len(later) == 3, seed
        assert shift_at(later, shifts, 3 * COLS + 5) == 0
        assert shift_at(later, shifts, 3 * COLS + 20) == -1 and shift_at(later, shifts, 4 * COLS) == -1
        assert shift_at(later, shifts, 8 * COLS) == -1  # the run below follows the tail, not the misfit
        assert 3 * COLS + 12 not in np.concatenate([r.trusted for r in later])  # the garbage is left out


def test_runs_that_fit_are_left_whole() -> None:
    for seed in range(4):
        later, shifts, _ = place_and_split(decode_with_break(seed, None, 0.0), runs_of(0, 3 * COLS, 7 * COLS, N))
        assert [(r.first, r.end) for r in later] == [(3 * COLS, 7 * COLS), (7 * COLS, N)]
        assert shifts == [0, 0]


def test_the_canvas_ends_as_a_fresh_search_of_the_runs_kept_leaves_it() -> None:
    """Trials put back, the search again from the cut, the last run held to the segment's end:
    the canvas is what one search of the runs kept leaves (later segments and steps read it)."""
    for seed in range(4):
        blocks = decode_with_break(seed, 3 * COLS + 12, 60.0)
        runs = runs_of(0, 3 * COLS, 5 * COLS, 8 * COLS, N)
        for final in (None, 0, -1, -2):
            later, _, canvas = place_and_split(blocks, runs, final)
            assert len(later) >= len(runs), (seed, final)  # cut at least once
            assert same_canvas(canvas, fresh_canvas(blocks, runs[0], later)), (seed, final)


def test_runs_searched_alike_after_the_cut_are_put_back_not_searched() -> None:
    """A break that only moved the DC, then many short runs: once the runs after the cut land as
    before with their DCs moved alike and read nothing else that changed, the rest are put
    back as they were, and the canvas is still what a full search leaves."""
    stopped = 0
    for seed in range(4):
        b = picture(seed).reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(N, 8, 8)
        noise = np.random.default_rng(seed).uniform(0, 255, (1, 8, 8))
        at = 3 * COLS + 12
        blocks = np.concatenate([b[:at], noise, b[at + 1:] + 60.0])
        runs = runs_of(0, 3 * COLS, 5 * COLS, *range(5 * COLS + 12, N, 12), N)
        searched: list[int] = []
        later, _, canvas = place_and_split(blocks, runs, searched=searched)
        assert len(later) == len(runs), seed
        assert same_canvas(canvas, fresh_canvas(blocks, runs[0], later)), seed
        after_cut = len(runs) - 1  # the pieces and the runs after them
        stopped += searched[-1] < after_cut and sum(searched[1:]) < after_cut + 2 * 3
    assert stopped >= 2
