"""A silent break in the scan's first row (acir_core.sca.runs.split_first_row): nothing lies above
that row, so the join the garbage left between two MCUs decoded one after the other and the
thumbnail's level are what show it."""
from __future__ import annotations

import numpy as np

import acir_core.sca.aware_sca as aware
from acir_core.jpeg.decoder import decode
from acir_core.sca.options import RunOptions
from acir_core.sca.runs import Run, first_row_joins, split_first_row, split_out_of_range
from acir_core.thumbnail import synthetic_thumbnail
from conftest import encode_jpeg, photo_like
from jpeg_writer import encode as write_jpeg

COLS = 100
N = 260
OPTS = RunOptions()


def _edges(break_at: int | None, gained: int = 1, seed: int = 0):
    """Left and right edges (N, 16) of MCUs whose joins continue within a level where their
    true places are neighbours in a row, but for a garbled join before ``break_at``, after which
    every MCU belongs ``gained`` places earlier (rows wrap there)."""
    rng = np.random.default_rng(seed)
    shape = rng.normal(0, 20, (N, 16))
    lefts = shape + rng.normal(0, 1.0, (N, 16))
    rights = np.roll(shape, -1, axis=0) + rng.normal(0, 1.0, (N, 16))  # right of i meets left of i + 1
    late = np.arange(N) >= (N if break_at is None else break_at)
    true = np.arange(N) - np.where(late, gained, 0)
    wrap = true % COLS == 0
    lefts[wrap] = rng.normal(0, 20, (int(wrap.sum()), 16))  # a row's first MCU does not continue the last
    if break_at is not None:
        lefts[break_at] = rng.normal(0, 40, 16)
    return lefts, rights


def _offsets(step_at: int | None, levels: float = 12.0, seed: int = 1):
    """Per MCU and component the decode's level minus the thumbnail's: noise, stepping at ``step_at``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4.0, (N, 3))
    if step_at is not None:
        z[step_at:, 0] -= levels
    return z


def test_a_break_in_the_first_row_is_cut_where_the_join_breaks_and_the_level_steps() -> None:
    run = Run(first=0, end=N, trusted=np.arange(N))
    head, tail = split_first_row(run, *_edges(40), _offsets(40), [1.0, 1.0, 1.0], COLS, OPTS)
    assert head.end == 40 and tail.first == 40
    assert head.trusted[-1] < 40 - OPTS.back_mcus + 1 and tail.trusted[0] == 40 + OPTS.skip_mcus + 1
    assert first_row_joins(*_edges(40), np.array([40]))[0] > 10 * np.median(first_row_joins(*_edges(40), np.arange(1, N)))


def test_no_cut_where_the_tail_wraps_its_rows_where_it_lies() -> None:
    """A join garbled without a gain or loss (an edge, or a DC break alone) leaves the tail's
    rows wrapping where it lies: cut, it would only lose the level the scan's start gives it."""
    run = Run(first=0, end=N, trusted=np.arange(N))
    assert split_first_row(run, *_edges(40, gained=0), _offsets(40), [1.0, 1.0, 1.0], COLS, OPTS) == [run]
    assert len(split_first_row(run, *_edges(40, gained=-1), _offsets(40), [1.0] * 3, COLS, OPTS)) == 2  # a loss
    short = Run(first=0, end=90, trusted=np.arange(90))  # no row wrap in the tail: nothing shows it
    assert split_first_row(short, *_edges(40), _offsets(40)[:90], [1.0] * 3, COLS, OPTS) == [short]


def test_no_cut_without_a_thumbnail_or_where_its_level_holds() -> None:
    """Without a thumbnail a tail in the first row has nothing to place it by (a camera set file
    went 1.4 -> 14.8 % wrong outside the mask when it was cut), and a join alone may be an edge."""
    run = Run(first=0, end=N, trusted=np.arange(N))
    assert split_first_row(run, *_edges(40), None, [1.0] * 3, COLS, OPTS) == [run]
    assert split_first_row(run, *_edges(40), _offsets(None), [1.0] * 3, COLS, OPTS) == [run]
    assert split_first_row(run, *_edges(40), _offsets(40, levels=0.5), [1.0] * 3, COLS, OPTS) == [run]


def test_no_cut_past_the_first_row_near_the_ends_or_in_a_later_run() -> None:
    run = Run(first=0, end=N, trusted=np.arange(N))
    assert split_first_row(run, *_edges(140), _offsets(140), [1.0] * 3, COLS, OPTS) == [run]  # row 1: rows see it
    assert split_first_row(run, *_edges(4), _offsets(4), [1.0] * 3, COLS, OPTS) == [run]  # a head of 4
    later = Run(first=5, end=N, trusted=np.arange(5, N))
    assert split_first_row(later, *_edges(40), _offsets(40), [1.0] * 3, COLS, OPTS) == [later]
    assert split_first_row(run, *_edges(None), _offsets(40), [1.0] * 3, COLS, OPTS) == [run]  # joins all sound


def test_only_the_guided_sca_cuts_the_scan_s_first_run_in_its_first_row(monkeypatch) -> None:
    calls, ranged = [], []
    real, real_range = aware.split_first_row, aware.split_out_of_range

    def spy(run, lefts, rights, offsets, units, cols, opts):
        calls.append((run.first, offsets is not None))
        return real(run, lefts, rights, offsets, units, cols, opts)

    def spy_range(run, *args):
        ranged.append(run.first)
        return real_range(run, *args)

    monkeypatch.setattr(aware, "split_first_row", spy)
    monkeypatch.setattr(aware, "split_out_of_range", spy_range)
    rgb = photo_like(128, 96, seed=5)
    data = bytearray(encode_jpeg(rgb, quality=90))
    data[len(data) // 2] ^= 0x10
    result = decode(bytes(data), "robust")
    aware.aware_sca(result, None)
    assert calls == [] and ranged == [0]  # without a thumbnail, only the range can show it
    ranged.clear()
    aware.aware_sca(result, synthetic_thumbnail(rgb))
    assert calls and all(first == 0 and guided for first, guided in calls)
    assert ranged == []


def _ranged(top_from: int | None, levels: float = 120.0, seed: int = 2):
    """Per MCU the brightest and darkest border sample of content between 20 and 200 levels, all
    of it ``levels`` brighter from ``top_from`` on (a silent break's DC step)."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(20, 120, N)
    top, bottom = low + rng.uniform(10, 80, N), low
    if top_from is not None:
        top[top_from:] += levels
        bottom[top_from:] += levels
    return top, bottom


def _stepped(at: int, levels: float):
    """Left and right edges (N, 16) that continue within a level, but for a join stepping by
    ``levels`` before MCU ``at``."""
    lefts, rights = _edges(None)
    lefts[at:] += levels
    rights[at - 1:] += levels
    rights[at - 1] -= levels  # the MCU before the join keeps its level
    return lefts, rights


def test_without_a_thumbnail_the_first_run_is_cut_where_its_first_row_steps_out_of_range() -> None:
    run = Run(first=0, end=N, trusted=np.arange(N))
    head, tail = split_out_of_range(run, *_stepped(40, 120.0), _ranged(40), COLS, OPTS)
    assert head.end == 40 and tail.first == 40
    assert tail.trusted[0] == 40 + OPTS.skip_mcus + 1
    dark = _ranged(40, levels=-150.0)  # below 0 just as well
    assert len(split_out_of_range(run, *_stepped(40, -150.0), dark, COLS, OPTS)) == 2


def test_no_range_cut_where_the_tail_stays_in_range_or_the_join_is_small() -> None:
    run = Run(first=0, end=N, trusted=np.arange(N))
    assert split_out_of_range(run, *_stepped(40, 120.0), _ranged(None), COLS, OPTS) == [run]  # an edge
    assert split_out_of_range(run, *_stepped(40, 120.0), _ranged(40, levels=20.0), COLS, OPTS) == [run]
    assert split_out_of_range(run, *_stepped(40, 10.0), _ranged(40), COLS, OPTS) == [run]  # joins by little
    assert split_out_of_range(run, *_stepped(40, -120.0), _ranged(40), COLS, OPTS) == [run]  # steps the other way
    out_early = _ranged(20)  # the head already out of range: that step is not this join's
    assert split_out_of_range(run, *_stepped(40, 120.0), out_early, COLS, OPTS) == [run]


def test_a_larger_edge_the_other_way_does_not_hide_the_break() -> None:
    run = Run(first=0, end=N, trusted=np.arange(N))
    lefts, rights = _stepped(40, 120.0)
    lefts[20:] -= 150.0  # a picture edge 150 levels down at MCU 20, the break 120 up at 40
    rights[19:] -= 150.0
    rights[19] += 150.0
    head, tail = split_out_of_range(run, lefts, rights, _ranged(40), COLS, OPTS)
    assert head.end == 40 and tail.first == 40


def test_no_range_cut_past_the_first_row_or_in_a_later_run() -> None:
    run = Run(first=0, end=N, trusted=np.arange(N))
    assert split_out_of_range(run, *_stepped(140, 120.0), _ranged(140), COLS, OPTS) == [run]
    later = Run(first=5, end=N, trusted=np.arange(5, N))
    assert split_out_of_range(later, *_stepped(40, 120.0), _ranged(40), COLS, OPTS) == [later]


def test_a_silent_gain_in_the_first_row_is_put_back_without_a_thumbnail() -> None:
    """A greyscale photo whose scan gains a block in its first row with a DC difference that
    takes everything after it 110 levels brighter, and fails near its end: without a thumbnail
    the rest of the scan is put back a block earlier and that much darker."""
    grey = photo_like(256, 128, seed=3).mean(axis=2).astype(np.uint8)
    clean = write_jpeg(grey, quality=90)
    q0 = int(decode(clean, "robust").qtables[0][0])
    step = int(round(110 * 8 / q0))
    data = bytearray(write_jpeg(grey, quality=90, gained=(12, step)))
    data[len(data) - 200] ^= 0x80  # a failure in the last row: the scan is not one sound segment
    result = decode(bytes(data), "robust")
    assert result.scans[0].resyncs
    sca = aware.aware_sca(result, None)
    tail = [s for s in sca.segments if s.first_mcu <= 40 < s.end_mcu][0]
    assert tail.shift == -1 and abs(tail.dc[0] - step) <= 8  # from a dozen blocks' borders: 3 levels
    truth = decode(clean, "robust").rgb[16:64].astype(float)
    assert np.abs(sca.rgb[16:64].astype(float) - truth).mean() < 4.0  # rows below it in place and level


def test_no_cut_where_the_thumbnail_is_too_noisy_or_the_join_breaks_by_little() -> None:
    run = Run(first=0, end=N, trusted=np.arange(N))
    noisy = np.zeros((N, 3))
    noisy[:, 0] = np.random.default_rng(0).normal(0, 200.0, N)
    noisy[40:, 0] -= 12.0  # a step of 3.6 levels there, 0.16 standard errors: lost in the noise
    assert split_first_row(run, *_edges(40), noisy, [1.0] * 3, COLS, OPTS) == [run]
    lefts, rights = _edges(40)
    faint = lefts.copy()
    faint[40] = rights[39] + np.linspace(-5, 5, 16)  # 2.5 levels: twice the median join, not 6 times
    assert split_first_row(run, faint, rights, _offsets(40), [1.0] * 3, COLS, OPTS) == [run]
    faint[40] = rights[39] + np.linspace(-60, 60, 16)  # the same join breaking by 30 levels: cut
    assert len(split_first_row(run, faint, rights, _offsets(40), [1.0] * 3, COLS, OPTS)) == 2
