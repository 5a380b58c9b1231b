"""Runs whose row wraps or borders favour a place aside, too weakly to move them: precautions."""
from __future__ import annotations

import numpy as np

import acir_core.sca.aware_sca as aware
from acir_core.jpeg.decoder import decode
from acir_core.sca.compensate import compensate
from acir_core.sca.options import AwareOptions, MaskOptions
from acir_core.sca.rewrap import held, rewrap
from acir_core.sca.unsure import unsure_runs
from tests.test_rewrap import COLS, N, ROWS, blocks_of, edges_of, placed
from tests.test_sca import damage, photo  # noqa: F401  (photo: the module's fixture)


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


def test_a_short_run_one_early_is_unsure_by_its_borders():
    off = placed([(0, 99, 0), (100, 110, -1), (110, 288, 0)])
    assert unsure_runs(off, edges_of(columns_of()), COLS, held(off, set())).tolist() == [False, True, False]


def test_a_run_vouched_for_only_by_an_unsure_one_is_unsure():
    """Two short runs off together: each one's borders with the other say nothing, those with the
    runs in place around them do, once the other is known unsure."""
    pls = placed([(0, 123, 0), (124, 136, -1), (137, 166, -1), (167, 284, 1)])
    assert unsure_runs(pls, edges_of(columns_of()), COLS, held(pls, set())).tolist() == [False, True, True, False]


def test_the_order_of_the_runs_does_not_matter():
    pls = placed([(0, 65, 0), (68, 73, 0), (76, 79, 0), (82, 190, 0), (193, 215, 0), (218, 248, -1), (251, 284, 0)])
    edges = edges_of(columns_of())
    forward = unsure_runs(pls, edges, COLS, held(pls, set()))
    backward = unsure_runs(pls[::-1], edges, COLS, held(pls, set())[::-1])[::-1]
    assert forward.tolist() == backward.tolist() and forward[5] and not forward[6]


def test_a_run_longer_than_two_rows_is_left_to_the_moves():
    """Its wraps say it is an MCU off, but a run that long was judged by ``rewrap`` already."""
    edges = edges_of(blocks_of(120.0))
    short = placed([(0, 30, 0), (30, 70, 1), (71, 230, 0)])  # 40 MCUs: under two rows of 24
    assert unsure_runs(short, edges, COLS, held(short, set())).tolist() == [False, True, False]
    long = placed([(0, 30, 0), (30, 140, 1), (141, 230, 0)])  # 110 MCUs
    assert unsure_runs(long, edges, COLS, held(long, set())).tolist() == [False, False, False]


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


def test_unsure_runs_are_precautions_kept_out_of_inpainting(photo, monkeypatch):  # noqa: F811
    """In ``aware_sca`` an unsure run's MCUs become precautions; without a thumbnail the pixels
    the mask holds only for them keep what was decoded, the rest of the mask is inpainted."""
    r = decode(damage(photo, 1))
    assert aware.aware_sca(r, None, options=AwareOptions(mask=MaskOptions(unsure=False))).unsure is None
    monkeypatch.setattr(aware, "unsure_runs", lambda pls, edges, cols, fixed: ~fixed)  # every run that may move
    seen = []
    real = aware.compensate_scan
    monkeypatch.setattr(aware, "compensate_scan", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    s = aware.aware_sca(r, None)
    _, damaged, _, doubted, aside = seen[0]
    assert aside.any() and not (aside & ~s.doubtful).any() and not (aside & damaged).any()
    assert s.unsure is not None and s.unsure.any() and not (s.unsure & ~s.mask).any()
    c = compensate(r, None)
    assert c.fill == "inpaint" and np.array_equal(c.region, c.mask & ~c.sca.unsure)
    assert np.array_equal(c.rgb[c.sca.unsure], c.unfilled[c.sca.unsure])  # kept as decoded
    assert not np.array_equal(c.rgb[c.region], c.unfilled[c.region])  # the rest inpainted


def random_columns(seed: int = 0) -> np.ndarray:
    """Like :func:`columns_of`, with columns that never repeat: a run off by any number of MCUs
    meets the rows above and below out of step, and nearer its place no better."""
    rng = np.random.default_rng(seed)
    profile = np.convolve(rng.normal(0, 40, 8 * COLS + 4), np.ones(5) / 5, mode="valid")[: 8 * COLS]
    img = 110 + profile[None, :] + rng.normal(0, 0.5, (8 * ROWS, 8 * COLS))
    return img.reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(N, 8, 8)


def test_a_short_run_far_off_is_unsure_by_its_borders():
    """A run the search put several MCUs off (its true place within the search window, beyond
    the moves' reach) is doubted; the same run in place is not."""
    for seed, shift in ((0, -7), (1, 5), (2, 9), (3, -12)):
        edges = edges_of(random_columns(seed))
        off = placed([(0, 100, 0), (100, 112, shift), (113, 288, 0)])
        assert unsure_runs(off, edges, COLS, held(off, set())).tolist() == [False, True, False], shift
        right = placed([(0, 100, 0), (100, 112, 0), (113, 288, 0)])
        assert not unsure_runs(right, edges, COLS, held(right, set())).any()


def test_a_place_far_aside_must_be_clearly_better():
    """Places an MCU or two aside doubt a run on a fifth of a level; the many further aside, where
    one is better by chance more often, need a level."""
    from acir_core.sca.unsure import UNSURE_DELTAS, UNSURE_WIDE, _borders_aside

    places = 1 + len(UNSURE_DELTAS) + len(UNSURE_WIDE)
    who = np.ones((places, 2, 20), np.int64)
    other = np.ones((places, 2, 20), bool)
    unsure = np.zeros(2, bool)
    for where, less, doubted in ((1, 0.3, True), (1 + len(UNSURE_DELTAS), 0.5, False),
                                 (1 + len(UNSURE_DELTAS), 1.5, True), (places - 1, 1.5, True)):
        costs = np.full((places, 2, 20), 10.0)
        costs[where] -= less
        assert _borders_aside(costs, who, other, unsure) == doubted, (where, less)
