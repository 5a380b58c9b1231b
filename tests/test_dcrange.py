"""The joint DC fit keeps every run's samples inside 0..255 (no thumbnail to stop a drift)."""
from __future__ import annotations

import numpy as np

from acir_core.bitflip import corrupt
from acir_core.jpeg.decoder import decode
from acir_core.metrics import y_psnr
from acir_core.sca.dcfit import RANGE_CHUNK, Placement, _run_bounds, _within_range
from acir_core.sca.options import DCOptions
from acir_core.sca.runs import Run
from conftest import shared_path

UNIT = 0.125  # a DC step of a q95 luma table (q0 = 1), in levels


def placement(n: int) -> Placement:
    run = Run(first=0, end=n, trusted=np.arange(n))
    return Placement(run=run, shift=0, dc=(0,), cost=0.0, anchored=False, first=0, count=n)


def chain(steps: list[float]):
    """Rows of a chain of runs, each measured ``step`` DC steps above the one before it (the
    first against the anchored run, index -1)."""
    n = len(steps)
    plus = np.arange(n, dtype=np.int64)
    minus = np.arange(-1, n - 1, dtype=np.int64)
    return plus, minus, np.asarray(steps, float), np.full(n, 100.0)


def test_a_chain_that_drifts_is_held_where_a_run_would_leave_the_range() -> None:
    rows = chain([80.0, 80.0, 80.0, 80.0])
    free = _within_range(rows, None, 4, DCOptions())
    assert np.allclose(free, [80, 160, 240, 320], atol=0.01)
    lo = np.full(4, -np.inf)
    hi = np.array([np.inf, np.inf, 200.0, np.inf])
    held = _within_range(rows, (lo, hi), 4, DCOptions())
    assert held[2] <= 200.5
    assert held[3] < 300  # the runs after it follow it down


def test_runs_inside_their_bounds_are_left_as_the_fit_puts_them() -> None:
    rows = chain([5.0, -3.0, 2.0])
    bounds = (np.full(3, -50.0), np.full(3, 50.0))
    assert np.allclose(_within_range(rows, bounds, 3, DCOptions()), _within_range(rows, None, 3, DCOptions()))


def test_bounds_come_from_the_run_and_spare_its_two_most_extreme_stretches() -> None:
    n = 6 * RANGE_CHUNK
    top = np.full(n, 200.0)
    top[RANGE_CHUNK + 3] = 275.0  # the run's content, decoded 20 levels too bright
    top[2 * RANGE_CHUNK + 3] = 275.0
    top[3 * RANGE_CHUNK + 3] = 275.0
    bottom = np.full(n, 100.0)
    top[-RANGE_CHUNK:] = 900.0  # garbage before a resync, in two stretches
    bottom[-2 * RANGE_CHUNK:-RANGE_CHUNK] = -600.0
    lo, hi = _run_bounds([placement(n)], (top, bottom), UNIT, 12.0)
    assert lo[0] == np.ceil((275.0 - 267.0) / UNIT)
    assert hi[0] == np.floor((100.0 + 12.0) / UNIT)


def test_short_runs_and_runs_wider_than_the_range_get_no_bounds() -> None:
    short = 3 * RANGE_CHUNK - 1
    lo, hi = _run_bounds([placement(short)], (np.full(short, 400.0), np.full(short, 300.0)), UNIT, 12.0)
    assert np.isneginf(lo[0]) and np.isposinf(hi[0])
    n = 8 * RANGE_CHUNK
    lo, hi = _run_bounds([placement(n)], (np.full(n, 600.0), np.full(n, -400.0)), UNIT, 12.0)
    assert np.isneginf(lo[0]) and np.isposinf(hi[0])


def test_a_camera_photo_without_a_thumbnail_at_1e5_beats_the_standard_decoder() -> None:
    """Canon PowerShot S40 (4 Mpx, no thumbnail) at BER 1e-5, seed 0: 127 flips. Without the
    range its DC drifted 15 levels from the first rows on and over 100 at the bottom (10.3 dB
    against Pillow's 12.2)."""
    from acir_core.imagefile import load_rgb
    from acir_engine.photo import restore_photo

    data = shared_path("datasets", "camera", "Canon_PowerShot_S40__1_.jpg").read_bytes()
    clean = decode(data).rgb
    bad = corrupt(data, ber=1e-5, seed=0).data
    shown = load_rgb(bad).rgb
    res = restore_photo(bad, source="s40", stage="sca", thumbnail=None)
    assert y_psnr(res.image, clean) > y_psnr(shown, clean) + 1.5
