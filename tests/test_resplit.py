"""Runs that hold a silent break, and stretches of runs locked in off, found once all are placed."""
from __future__ import annotations

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.options import RunOptions
from acir_core.sca.resplit import _Borders, realign, regroup, resplit
from acir_core.sca.runs import Run

ROWS, COLS = 8, 16  # MCUs of 8×8 samples, one component
N = ROWS * COLS


def picture(seed: int = 3) -> np.ndarray:
    """A smooth picture with texture along rows and columns, so a run an MCU off shows at its borders."""
    y, x = np.mgrid[0 : 8 * ROWS, 0 : 8 * COLS].astype(float)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6)
    return 120 + 40 * np.sin(x / 5.0 + phase) + 25 * np.cos(y / 7.0 + x / 11.0) + rng.normal(0, 1, x.shape)


def blocks_of(img: np.ndarray) -> np.ndarray:
    return img.reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(N, 8, 8)


def edges_of(blocks: np.ndarray) -> tuple:
    """(inner, outer) as SCA passes them: per decoded MCU its top / left sample lines and its
    bottom / right ones."""
    return ((blocks[:, 0, :],), (blocks[:, :, 0],)), ((blocks[:, 7, :],), (blocks[:, :, 7],))


def with_garbage_at(blocks: np.ndarray, g: int, seed: int = 0) -> np.ndarray:
    """The decode of a stream whose garbage read as one MCU more than it held, at MCU ``g``:
    every MCU after it is decoded one place late."""
    noise = np.random.default_rng(seed).uniform(0, 255, (1, 8, 8))
    return np.concatenate([blocks[:g], noise, blocks[g:-1]])


def placement(first: int, end: int, shift: int, anchored: bool = False) -> Placement:
    run = Run(first=first, end=end, trusted=np.arange(first, end))
    return Placement(run=run, shift=shift, dc=(0,), cost=1.0, anchored=anchored, first=0, count=N)


def shift_of(placements: list[Placement], mcu: int) -> int:
    (pl,) = [p for p in placements if mcu in p.run.trusted]
    return pl.shift


def test_a_tail_decoded_one_mcu_late_is_cut_off_and_moved_back() -> None:
    decoded = with_garbage_at(blocks_of(picture()), 60)
    placements = [placement(0, 20, 0, anchored=True), placement(20, N, 0)]
    assert resplit(placements, _Borders(edges_of(decoded), COLS, N), RunOptions()) >= 1
    assert shift_of(placements, 30) == 0 and shift_of(placements, 55) == 0  # the head stays
    for mcu in (70, 100, N - 1):
        assert shift_of(placements, mcu) == -1  # the tail goes back where it belongs
    assert 60 not in np.concatenate([p.run.trusted for p in placements])  # the garbage is left out
    assert [p.anchored for p in placements].count(True) == 1


def test_a_head_placed_with_the_wrong_shift_moves_and_the_tail_stays() -> None:
    """The search followed the longer tail: the head before the garbage sits one MCU early."""
    decoded = with_garbage_at(blocks_of(picture(5)), 50)
    placements = [placement(0, 20, 0, anchored=True), placement(20, N, -1)]
    assert resplit(placements, _Borders(edges_of(decoded), COLS, N), RunOptions()) >= 1
    assert shift_of(placements, 30) == 0 and shift_of(placements, 45) == 0
    assert shift_of(placements, 80) == -1 and shift_of(placements, N - 1) == -1


def test_runs_placed_right_are_left_alone() -> None:
    for seed in range(6):
        decoded = blocks_of(picture(seed))
        placements = [placement(0, 20, 0, anchored=True), placement(20, 45, 0), placement(45, 90, 0),
                      placement(90, N, 0)]
        before = [(p.run.first, p.shift) for p in placements]
        assert realign(placements, edges_of(decoded), COLS, N, RunOptions()) == 0, seed
        assert [(p.run.first, p.shift) for p in placements] == before


def test_a_stretch_of_runs_locked_in_one_mcu_off_moves_as_one() -> None:
    """Three rows of short runs all one MCU late: each fits the others where it is (they are
    off alike), so none moves alone; together they fit the rows above and below aside."""
    decoded = blocks_of(picture(7))
    group = [(40, 52), (52, 64), (64, 76), (76, 88)]
    placements = [placement(0, 40, 0, anchored=True)] + [placement(a, b, 1) for a, b in group] + \
        [placement(89, N, 0)]
    alone = [placement(0, 40, 0, anchored=True)] + [placement(a, b, 1) for a, b in group] + [placement(89, N, 0)]
    resplit(alone, _Borders(edges_of(decoded), COLS, N), RunOptions())
    assert any(p.shift == 1 for p in alone)  # one run at a time, the stretch stays off
    assert regroup(placements, _Borders(edges_of(decoded), COLS, N)) == len(group)
    assert [p.shift for p in placements] == [0] * len(placements)
