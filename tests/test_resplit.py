"""Runs that hold a silent break, and stretches of runs locked in off, found once all are placed."""
from __future__ import annotations

import numpy as np

from acir_core.sca.dcfit import Placement
from acir_core.sca.options import RunOptions
from acir_core.sca.rechain import realign
from acir_core.sca.resplit import _Borders, regroup, resplit
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
    """The run after the next resync was placed right; the one with the silent gain kept the
    shift of its head."""
    decoded = with_garbage_at(blocks_of(picture()), 60)
    placements = [placement(0, 20, 0, anchored=True), placement(20, 100, 0), placement(100, N, -1)]
    assert resplit(placements, _Borders(edges_of(decoded), COLS, N), RunOptions()) == 1
    assert shift_of(placements, 30) == 0 and shift_of(placements, 55) == 0  # the head stays
    for mcu in (70, 90, 110, N - 1):
        assert shift_of(placements, mcu) == -1  # the tail goes back where it belongs
    assert 60 not in np.concatenate([p.run.trusted for p in placements])  # the garbage is left out
    assert [p.anchored for p in placements].count(True) == 1
    assert min(p.run.trusted.size for p in placements) >= 8


def test_a_head_placed_with_the_wrong_shift_moves_and_the_tail_stays() -> None:
    """The search followed the longer tail: the head before the garbage sits one MCU early."""
    decoded = with_garbage_at(blocks_of(picture(5)), 50)
    placements = [placement(0, 20, 0, anchored=True), placement(20, N, -1)]
    assert resplit(placements, _Borders(edges_of(decoded), COLS, N), RunOptions()) == 1
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


def interval(first: int, end: int, shift: int, segment: tuple[int, int], anchored: bool = False) -> Placement:
    run = Run(first=first, end=end, trusted=np.arange(first, end))
    return Placement(run=run, shift=shift, dc=(0,), cost=1.0, anchored=anchored, first=segment[0], count=segment[1])


def test_an_interval_keeps_its_first_mcus_and_its_end_and_no_piece_leaves_it() -> None:
    """Restart intervals of two rows: the decoder places each one's first run where the marker
    says and its last run ends where the next marker begins; SCA moves neither, however the
    borders look, and nothing moves across a marker."""
    decoded = with_garbage_at(blocks_of(picture(4)), 40)  # an interval whose MCUs all come late
    segments = [(k * 2 * COLS, 2 * COLS) for k in range(ROWS // 2)]
    placements = [interval(f, f + c, 0, (f, c), anchored=True) for f, c in segments]
    before = [(p.run.first, p.run.end, p.shift) for p in placements]
    realign(placements, edges_of(decoded), COLS, N, RunOptions())
    assert [(p.run.first, p.run.end, p.shift) for p in placements] == before
    # a middle run of an interval may move, but not out of it
    placements = [interval(0, 32, 0, (0, 32), anchored=True), interval(32, 40, 0, (32, 32), anchored=True),
                  interval(40, 56, 3, (32, 32)), interval(56, 64, 0, (32, 32))] + \
        [interval(f, f + 32, 0, (f, 32), anchored=True) for f in range(64, N, 32)]
    realign(placements, edges_of(blocks_of(picture(4))), COLS, N, RunOptions())
    for p in placements:
        t = p.run.trusted + p.shift
        assert t.min() >= p.first and t.max() < p.first + p.count


def test_tables_kept_between_passes_equal_fresh_ones() -> None:
    decoded = with_garbage_at(with_garbage_at(blocks_of(picture(9)), 70), 30, seed=1)
    placements = [placement(0, 20, 0, anchored=True), placement(20, 64, 0), placement(64, 100, -1),
                  placement(100, N, -2)]
    borders = _Borders(edges_of(decoded), COLS, N)
    resplit(placements, borders, RunOptions())
    borders.start(placements)
    fresh = _Borders(edges_of(decoded), COLS, N)
    fresh.start(placements)
    for pl in placements:
        kept, new = borders.table(pl), fresh.table(pl)
        assert np.array_equal(kept[0], new[0], equal_nan=True) and np.array_equal(kept[1], new[1])


def test_borders_with_garbage_say_nothing_of_a_runs_place() -> None:
    """A run one MCU off under a row part of which is garbage: those borders step by 40 or 70
    levels at every shift tried, by turns, and their sums hid the clear gain of the others
    (12 levels where the run lies, 3 one MCU on) until they were left out."""
    from acir_core.sca.resplit import RESPLIT_DELTAS, _best_move, mute_unjoined
    cols, size, garbage = 40, 40, 12
    m = np.arange(100, 100 + size)
    pl = Placement(run=Run(first=100, end=100 + size, trusted=m), shift=0, dc=(0,), cost=1.0, anchored=False,
                   first=0, count=1000)
    shifts = np.array((0,) + RESPLIT_DELTAS)
    table = np.full((shifts.size, 2, size), np.nan)  # top side only: nothing placed below
    table[:, 0, :] = 12.0
    table[shifts == 1, 0, :] = 3.0  # one MCU on, it joins the row above
    q, d = np.meshgrid(np.arange(garbage), np.arange(shifts.size))
    table[:, 0, :garbage] = 55.0 + 15.0 * (-1.0) ** (q + d)  # garbage above its first MCUs
    who = np.full(table.shape, -1, np.int64)
    who[:, 0, :] = 0  # the run above
    assert _best_move(pl, table, who, 1, cols, RunOptions()) is None
    move = _best_move(pl, mute_unjoined(table), who, 1, cols, RunOptions())
    assert move is not None and move[1:3] == (0, True) and RESPLIT_DELTAS[move[3]] == 1  # the whole run, +1


def test_only_borders_that_join_nowhere_are_left_out() -> None:
    """A border is left out only where its best join over the shifts is both many times the
    run's median best and many levels: in flat content every textured border is many times the
    median and still tells shifts apart; in texture a border a few levels above the rest does."""
    from acir_core.sca.resplit import mute_unjoined
    rng = np.random.default_rng(0)
    flat = rng.uniform(0.2, 0.4, (9, 2, 40))  # shifts, sides, MCUs
    flat[:, 0, 5] = np.linspace(4.0, 6.0, 9)  # texture: joins best at one shift
    flat[:, 1, 7] = rng.uniform(40, 70, 9)  # garbage beside: joins nowhere
    flat[:, 1, 9] = np.nan  # nothing placed there
    out = mute_unjoined(flat)
    assert np.isnan(out[:, 1, 7]).all() and np.array_equal(out[:, 0, 5], flat[:, 0, 5])
    assert np.count_nonzero(np.isnan(out)) == 18
    rough = rng.uniform(2.5, 3.5, (9, 2, 40))  # texture everywhere: median best about 2.5
    rough[:, 0, 3] = np.linspace(10.0, 12.0, 9)  # a stronger edge: best 10, under 5× the median
    rough[:, 0, 4] = np.linspace(40.0, 42.0, 9)
    out = mute_unjoined(rough)
    assert np.array_equal(out[:, 0, 3], rough[:, 0, 3]) and np.isnan(out[:, 0, 4]).all()
    assert np.count_nonzero(np.isnan(out)) == 9
    assert np.isnan(mute_unjoined(np.full((9, 2, 4), np.nan))).all()


def with_chain(blocks: np.ndarray, gain: int, loss: int, seed: int = 0) -> np.ndarray:
    """The decode of a stream whose garbage read as one MCU more than it held at MCU ``gain``
    and as one less at ``loss``: the MCUs between are decoded one place late."""
    rng = np.random.default_rng(seed)
    return np.concatenate([blocks[:gain], rng.uniform(0, 255, (1, 8, 8)), blocks[gain : loss - 1],
                           rng.uniform(0, 255, (1, 8, 8)), blocks[loss + 1 :]])


def test_a_chain_of_pieces_locked_in_off_across_runs_moves_as_one() -> None:
    """A run's tail and the whole next run sit one MCU late (a gain in the first, a loss where
    the second ends). The tail fits the run below it where it is, and that run the tail, so
    neither moves alone, and moving the runs whole would take the first run's head along; the
    stretch from the gain to the loss joins the rows above and below better one place back."""
    for seed in range(4):
        for gain, loss in ((44, 104), (58, 104), (50, 120)):
            decoded = with_chain(blocks_of(picture(seed)), gain, loss, seed)

            def runs() -> list[Placement]:
                return [placement(0, 24, 0, anchored=True), placement(24, 80, 0), placement(80, loss, 0),
                        placement(loss + 1, N, 0)]
            probes = (30, gain + 4, 70, 90, loss + 5)
            old = runs()
            borders = _Borders(edges_of(decoded), COLS, N)
            resplit(old, borders, RunOptions())
            regroup(old, borders)
            assert [shift_of(old, k) for k in probes[1:4]] != [-1, -1, -1], (seed, gain)
            new = runs()
            assert realign(new, edges_of(decoded), COLS, N, RunOptions()) >= 1
            assert [shift_of(new, k) for k in probes] == [0, -1, -1, -1, 0], (seed, gain, loss)
            assert gain not in np.concatenate([p.run.trusted for p in new])  # the garbage is left out
            assert [p.anchored for p in new].count(True) == 1
            kept = runs()
            realign(kept, edges_of(decoded), COLS, N, RunOptions(), chains=False)
            assert [shift_of(kept, k) for k in probes[1:4]] != [-1, -1, -1]


def test_a_chain_in_an_interval_decoded_as_written_stays() -> None:
    decoded = with_chain(blocks_of(picture(2)), 50, 104)
    placements = [placement(0, 24, 0, anchored=True), placement(24, 80, 0), placement(80, 104, 0),
                  placement(105, N, 0)]
    assert realign(placements, edges_of(decoded), COLS, N, RunOptions(), frozenset({0})) == 0
    assert [p.shift for p in placements] == [0, 0, 0, 0]
    judged = [placement(0, 24, 0, anchored=True), placement(24, 80, 0), placement(80, 104, 0), placement(105, N, 0)]
    assert realign(judged, edges_of(decoded), COLS, N, RunOptions()) >= 1  # the same runs, not decoded as written


WIDE_ROWS, WIDE_COLS = 6, 32  # rows long enough for content placed right between two stacked pieces


def wide_blocks(seed: int) -> np.ndarray:
    y, x = np.mgrid[0 : 8 * WIDE_ROWS, 0 : 8 * WIDE_COLS].astype(float)
    rng = np.random.default_rng(seed)
    img = 120 + 40 * np.sin(x / 5.0 + rng.uniform(0, 6)) + 25 * np.cos(y / 7.0 + x / 11.0) + rng.normal(0, 1, x.shape)
    return img.reshape(WIDE_ROWS, 8, WIDE_COLS, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)


def with_gains_and_losses(blocks: np.ndarray, gains: set[int], losses: set[int], seed: int) -> np.ndarray:
    """A decode whose garbage read as one MCU more than it held at ``gains`` and as one less at
    ``losses``."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    src = 0
    while len(out) < len(blocks):
        if len(out) in gains | losses:
            src += 2 if len(out) in losses else 0
            out.append(rng.uniform(0, 255, (8, 8)))
            continue
        out.append(blocks[src])
        src += 1
    return np.array(out)


def test_two_stacked_pieces_locked_in_off_move_together(monkeypatch) -> None:
    """A piece of a row one MCU late, and under it, decoded after content placed right, another
    one as late: each fits the other where it is as well as its rows outside say move, so
    neither moves alone, and no span of the decode holds both without the content between."""
    import acir_core.sca.rechain as rechain_module

    n = WIDE_ROWS * WIDE_COLS
    for seed in range(3):
        for start in (36, 44):
            g1, l1 = start - 1, start + 12
            g2, l2 = g1 + WIDE_COLS, l1 + WIDE_COLS
            decoded = with_gains_and_losses(wide_blocks(seed), {g1, g2}, {l1, l2}, seed)
            edges = ((decoded[:, 0, :],), (decoded[:, :, 0],)), ((decoded[:, 7, :],), (decoded[:, :, 7],))

            def runs() -> list[Placement]:
                spans = [(0, g1), (g1 + 1, l1), (l1 + 1, g2), (g2 + 1, l2), (l2 + 1, n)]
                return [Placement(run=Run(first=a, end=b, trusted=np.arange(a, b)), shift=0, dc=(0,), cost=1.0,
                                  anchored=a == 0, first=0, count=n) for a, b in spans]
            probes = (g1 + 6, l1 + 8, g2 + 6, l2 + 5)
            moved = runs()
            assert realign(moved, edges, WIDE_COLS, n, RunOptions()) >= 1
            assert [shift_of(moved, k) for k in probes] == [-1, 0, -1, 0], (seed, start)
            monkeypatch.setattr(rechain_module, "STACKS", False)
            alone = runs()
            assert realign(alone, edges, WIDE_COLS, n, RunOptions()) == 0
            monkeypatch.setattr(rechain_module, "STACKS", True)


def test_window_max_is_the_largest_within_reach_of_each_index() -> None:
    from acir_core.sca.rechain import _window_max

    rng = np.random.default_rng(5)
    for n, lo, hi in ((1, 0, 0), (9, 2, 5), (40, 3, 17), (40, -12, -3), (25, 30, 40), (30, -5, 5)):
        h = rng.normal(0.0, 3.0, n)
        got = _window_max(h, lo, hi)
        for x in range(n):
            a, b = max(x + lo, 0), min(x + hi, n - 1)
            assert got[x] == (h[a:b + 1].max() if a <= b else -np.inf)
