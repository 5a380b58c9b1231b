"""Silent DC steps inside runs, the edges' own offset, and the thumbnail's own level in the DC fit."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from acir_core.jpeg.decoder import decode
from acir_core.sca.aware_sca import aware_sca
from acir_core.sca.dcfit import Placement, solve_dc
from acir_core.sca.edges import inward, outward
from acir_core.sca.options import DCOptions, RunOptions
from acir_core.sca.runs import Run, owes_break, split_owed, split_silent, split_step
from acir_core.thumbnail import synthetic_thumbnail
from conftest import encode_jpeg, photo_like
from jpeg_writer import encode

ROWS, COLS = 10, 32


def _steps(step_at: int | None, levels: float, seed: int = 0) -> np.ndarray:
    """Per MCU the signed step to the MCU a row up: content's noise, and ``levels`` for the row
    of MCUs after a silent break at ``step_at``."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, 1.5, (ROWS * COLS, 1))
    s[:COLS] = 0.0
    if step_at is not None:
        s[step_at:step_at + COLS] += levels
    return s


def test_a_dc_step_inside_a_run_is_cut_where_it_begins() -> None:
    run = Run(first=0, end=ROWS * COLS, trusted=np.arange(ROWS * COLS))
    pieces = split_step(run, _steps(150, 3.0), COLS, RunOptions())
    assert len(pieces) == 2
    # found within the MCUs a split leaves out either side anyway
    assert pieces[0].end == pieces[1].first and abs(pieces[1].first - 150) <= RunOptions().skip_mcus + 1
    near_start = split_step(run, _steps(5, 3.0), COLS, RunOptions())  # 5 pairs below it: too few
    assert len(near_start) == 1


def test_content_alone_and_a_step_under_the_least_levels_do_not_cut() -> None:
    run = Run(first=0, end=ROWS * COLS, trusted=np.arange(ROWS * COLS))
    assert len(split_step(run, _steps(None, 0.0), COLS, RunOptions())) == 1
    assert len(split_step(run, _steps(150, 1.0, seed=1), COLS, RunOptions())) == 1
    assert len(split_step(run, _steps(150, 3.0), COLS, RunOptions(step_sigma=0.0))) == 1


def _offsets(step_at: int | None, jump: float, n: int = 200, seed: int = 3) -> np.ndarray:
    """Per MCU its mean minus the thumbnail's, in DC steps: a camera thumbnail's noise (6 steps)
    and ``jump`` more from ``step_at`` on."""
    z = np.random.default_rng(seed).normal(0.0, 6.0, (n, 1))
    if step_at is not None:
        z[step_at:] += jump
    return z


def test_an_interval_that_owes_a_break_is_cut_where_its_offsets_step() -> None:
    """A restart interval's one run decoded an MCU more than the interval holds: the break is
    known to be in it, so a step the thumbnail alone would not split at (9 standard errors, 30
    MCUs in) places the cut; a plain run keeps it whole."""
    run = Run(first=0, end=200, trusted=np.arange(200))
    z = _offsets(30, 8.0)
    assert len(split_silent(run, z, [1.0], RunOptions())) == 1
    pieces = split_owed(run, z, [1.0], RunOptions())
    assert len(pieces) == 2 and abs(pieces[1].first - 30) <= 3
    assert pieces[0].trusted.max() < pieces[1].trusted.min()


def test_an_owed_break_not_found_leaves_the_run_whole_and_every_mcu_a_precaution() -> None:
    """Noise alone, a step under the least jump, no thumbnail, or an interval of 4 MCUs: no cut,
    but the break is in the run somewhere, so none of its MCUs is shown as sure."""
    run = Run(first=0, end=200, trusted=np.arange(200))
    short = Run(first=8, end=12, trusted=np.arange(8, 12))
    for r, z in ((run, _offsets(None, 0.0)), (run, _offsets(100, 8.0) * 0.1), (run, None),
                 (short, _offsets(None, 0.0, n=20))):
        pieces = split_owed(r, z, [1.0], RunOptions())
        assert len(pieces) == 1 and pieces[0].trusted.tolist() == r.trusted.tolist()
        assert pieces[0].settled == r.end  # every MCU before it is a precaution


def _two_runs(bias: float, first_size: int):
    """Edges of a smooth picture of 8×8 MCUs decoded in place, every inner line ``bias`` levels
    up (an offset the edges of a photo's content show everywhere), in two runs."""
    y, x = np.mgrid[0 : 8 * ROWS, 0 : 8 * COLS].astype(float)
    img = 100 + 30 * np.sin(x / 9.0) + 0.8 * y + np.random.default_rng(2).normal(0, 0.5, x.shape)
    b = img.reshape(ROWS, 8, COLS, 8).transpose(0, 2, 1, 3).reshape(ROWS * COLS, 8, 8)
    inner = ((inward(b[:, 0, :], b[:, 1, :]) + bias,), (inward(b[:, :, 0], b[:, :, 1]) + bias,))
    outer = ((outward(b[:, 7, :], b[:, 6, :]),), (outward(b[:, :, 7], b[:, :, 6]),))
    blocks = b
    means = (blocks.mean(axis=(1, 2)),)
    n = ROWS * COLS
    placements = [Placement(run=Run(first=a, end=b, trusted=np.arange(a, b)), shift=0, dc=(0,), cost=1.0,
                            anchored=a == 0, first=0, count=n) for a, b in ((0, first_size), (first_size, n))]
    return placements, inner, outer, means, n


def test_the_edges_own_offset_inside_runs_is_taken_off_every_boundary() -> None:
    placements, inner, outer, means, n = _two_runs(0.5, 160)
    unit = 0.125  # quality 95+: a DC step is 1/8 of a level, the edges' offset 4 of them
    dcs, _ = solve_dc(placements, inner, outer, means, [unit], None, COLS, n, DCOptions())
    assert dcs[1, 0] == 0
    plain, _ = solve_dc(placements, inner, outer, means, [unit], None, COLS, n, DCOptions(link_bias=False))
    assert abs(int(plain[1, 0])) >= 3


def test_with_its_offset_fitted_a_thumbnail_off_the_photo_as_a_whole_moves_no_run() -> None:
    placements, inner, outer, means, n = _two_runs(0.0, 20)  # the anchored run: 20 of 320 MCUs
    thumb = (means[0] - 6.0)[:, None]  # a camera's thumbnail 6 levels darker everywhere
    dcs, bias = solve_dc(placements, inner, outer, means, [0.125], thumb, COLS, n, DCOptions(thumb_bias=2.0))
    assert dcs[1, 0] == 0
    assert abs(bias[0] - 6.0) < 0.5
    pulled, none = solve_dc(placements, inner, outer, means, [0.125], thumb, COLS, n, DCOptions())
    assert int(pulled[1, 0]) > 8 and none[0] == 0.0  # by default the thumbnail's level is the photo's


def test_sca_undoes_a_silent_dc_step_without_a_thumbnail() -> None:
    """A flipped DC bit that decodes without a failure: every Y block from an MCU on sits 40 steps
    up. SCA finds it from the edges alone and puts the blocks back exactly."""
    clean = decode(encode_jpeg(photo_like(512, 256, seed=4), quality=95))
    stepped = decode(encode_jpeg(photo_like(512, 256, seed=4), quality=95))
    sr = stepped.scans[0]
    cols = sr.mcu_cols
    at = 3 * cols + 11
    y = stepped.coefficients[0]
    mcu = (np.arange(y.shape[0])[:, None] // 2) * cols + np.arange(y.shape[1])[None, :] // 2
    y[..., 0] += np.where(mcu >= at, 40, 0).astype(y.dtype)
    out = aware_sca(stepped, None)
    fixed = out.coefficients[0][..., 0]
    far = mcu >= at + cols + 8  # clear of the MCUs a split leaves out
    assert np.array_equal(fixed[far], clean.coefficients[0][..., 0][far])
    assert np.array_equal(fixed[mcu < at - 4], clean.coefficients[0][..., 0][mcu < at - 4])


def _gained_file(gained):
    """A greyscale photo with a restart marker every MCU row (32 MCUs) and, where ``gained`` says,
    one block too many inside row 5's interval (:func:`jpeg_writer.encode`)."""
    grey = photo_like(256, 128, seed=6)[..., 1]
    return grey, decode(encode(grey, quality=92, restart_interval=32, gained=gained), "robust")


def test_an_interval_that_decoded_an_mcu_too_many_puts_it_back_where_it_steps(monkeypatch) -> None:
    """A silent gain 10 MCUs into row 5: the interval decodes 33 MCUs for 32, every one after the
    gain an MCU late and 40 DC steps off. With the thumbnail, the cut is found where the DC steps
    and the rest of the row is held to the interval's end: from past the garbage to the MCU the
    gain pushed off the end, the row is the clean one again. Left whole (the test before this
    rule), the row's tail sits an MCU late."""
    grey, clean = _gained_file(None)
    _, hit = _gained_file((5 * 32 + 10, 40))
    sr = hit.scans[0]
    assert sr.segment_extra[5] == 1 and not sr.resyncs
    thumb = synthetic_thumbnail(np.repeat(clean.rgb[..., :1], 3, axis=2), 64)
    out = aware_sca(hit, thumb)
    tail = [f for f in out.segments if f.first_mcu <= 5 * 32 + 20 < f.end_mcu]
    assert tail and tail[0].shift == -1
    tail = np.s_[5 * 8:6 * 8, 12 * 8:31 * 8, 0]
    yc = clean.rgb[tail].astype(int)
    assert np.abs(out.rgb[tail].astype(int) - yc).max() <= 2
    import acir_core.sca.aware_sca as sca_module
    monkeypatch.setattr(sca_module, "split_owed", lambda run, *a, **k: [run])
    whole = aware_sca(hit, thumb)
    assert (np.abs(whole.rgb[tail].astype(int) - yc) > 12).mean() > 0.1


def test_without_a_thumbnail_an_interval_owing_a_break_is_not_shown_as_sure(monkeypatch) -> None:
    """No thumbnail to find the cut by: row 5's MCUs are precautions (``doubtful``, per MCU), the
    rows away from it are not; before the rule, the row was shown as sure."""
    _, hit = _gained_file((5 * 32 + 10, 40))
    cells = aware_sca(hit, None).doubtful
    assert cells[5, 12:31].mean() > 0.5
    assert not cells[:4].any() and not cells[7:].any()
    import acir_core.sca.aware_sca as sca_module
    monkeypatch.setattr(sca_module, "owes_break", lambda *a, **k: False)
    assert not aware_sca(hit, None).doubtful[5].any()


def test_a_damaged_marker_s_extra_mcus_owe_no_break() -> None:
    """An interval that decoded the next one's data as extra MCUs (its marker damaged, so the next
    interval was not found) owes no break; nor does a scan without markers."""
    _, hit = _gained_file(None)
    sr = hit.scans[0]
    assert owes_break(sr, 5 * 32, 32, 1, -1)
    decoded = sr.decoded.copy()
    sr.decoded[6 * 32:7 * 32] = False
    assert not owes_break(sr, 5 * 32, 32, 1, -1)
    sr.decoded[:] = decoded
    assert not owes_break(sr, 5 * 32, 32, 1, 2)  # the interval's end is the junk's, not the gain's
    assert not owes_break(replace(sr, restart_interval=0), 5 * 32, 32, 1, -1)
