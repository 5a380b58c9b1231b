"""Progressive AC bands out of place: found by where their border steps cancel the rest."""
from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from acir_core.jpeg.decoder import decode
from acir_core.jpeg.entropy import _ZZ
from acir_core.jpeg.realign import (REALIGN_EXCURSION, REALIGN_MARGIN, REALIGN_WITNESS, _edge_basis,
                                    _no_short_excursions, _steps, _trust_the_end, _witness, realign_band)
from conftest import photo_like


def _busy(width: int, height: int, seed: int) -> np.ndarray:
    """A photo-like image whose detail is edges, as in photos (the noise of
    :func:`conftest.photo_like` has no edges for the borders to judge by)."""
    rng = np.random.default_rng(seed)
    im = Image.fromarray(photo_like(width, height, seed=seed))
    draw = ImageDraw.Draw(im)
    for _ in range(400):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(4, 60), y0 + rng.integers(4, 60)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.line)([x0, y0, x1, y1], fill=colour, width=2)
    return np.asarray(im.filter(ImageFilter.GaussianBlur(0.7)))


@pytest.fixture(scope="module")
def clean():
    buf = io.BytesIO()
    Image.fromarray(_busy(520, 384, seed=8)).save(buf, "JPEG", progressive=True, quality=92)  # 65 of 66 columns
    return decode(buf.getvalue(), "strict")


def _y_blocks(r):
    """The luma planes as one flat coefficient array, its grid and the scan's MCU layout."""
    flat = np.concatenate([c.reshape(-1, 64) for c in r.coefficients]).copy()
    grid = r.frame.block_grid(0)
    rows, cols = -(-r.frame.comp_size(0)[1] // 8), -(-r.frame.comp_size(0)[0] // 8)
    return flat, grid, rows, cols


def _realign(r, flat, grid, rows, cols, ss, se):
    sr = SimpleNamespace(mcu_rows=rows, mcu_cols=cols, decoded=np.ones(rows * cols, bool))
    known = np.full(flat.shape[0], np.uint64(2 ** 64 - 1))
    ok = np.ones(grid, bool)
    moves = realign_band(sr, ss, se, flat, known, 0, grid, r.qtables[0], ok, r.coefficients[0][..., 0])
    return moves, sr, known, ok


@pytest.mark.parametrize("ss,se", [(1, 5), (6, 63)])
def test_a_band_in_place_is_left_as_it_is(clean, ss, se):
    """No change of shift pays for itself where every block's band is its own."""
    flat, grid, rows, cols = _y_blocks(clean)
    before = flat.copy()
    moves, sr, _, ok = _realign(clean, flat, grid, rows, cols, ss, se)
    assert moves == 0 and np.array_equal(flat, before) and sr.decoded.all() and ok.all()


@pytest.mark.parametrize("ss,se", [(1, 5), (6, 63)])
def test_stretches_moved_by_errors_read_silently_go_back_where_they_belong(clean, ss, se):
    """Three errors read silently (the band from block 500 sits 3 late, from 1400 five early,
    from 2300 back in step, as the bits place the scan's end): every stretch goes back, its
    blocks' band equal to the clean one away from the changes, which lose the band."""
    flat, grid, rows, cols = _y_blocks(clean)
    plane = flat[: grid[0] * grid[1]].reshape(grid[0], grid[1], 64)
    zz = np.asarray(_ZZ[ss: se + 1])
    order = plane[:rows, :cols].reshape(-1, 64).copy()
    shifts = np.zeros(rows * cols, int)
    shifts[500:1400], shifts[1400:2300] = 3, -5  # block p shows the band of block p - shift
    src = np.clip(np.arange(rows * cols) - shifts, 0, rows * cols - 1)
    moved = order.copy()
    moved[:, zz] = order[src][:, zz]
    plane[:rows, :cols] = moved.reshape(rows, cols, 64)
    moves, sr, known, _ = _realign(clean, flat, grid, rows, cols, ss, se)
    back = plane[:rows, :cols].reshape(-1, 64)
    assert moves == 3
    away = np.ones(rows * cols, bool)
    for c in (500, 1400, 2300):
        away[c - 2 * REALIGN_MARGIN: c + 2 * REALIGN_MARGIN] = False
    textured = np.abs(order[:, zz]).sum(axis=1) > 0
    same = (back[:, zz] == order[:, zz]).all(axis=1)
    assert same[away & textured].mean() > 0.98
    lost = ~sr.decoded
    assert 3 * 2 * REALIGN_MARGIN <= lost.sum() < 6 * (2 * REALIGN_MARGIN + 5) and not (back[lost][:, zz]).any()
    band = np.uint64(sum(1 << k for k in range(ss, se + 1)))
    assert ((known[: grid[0] * grid[1]].reshape(grid)[:rows, :cols].ravel()[lost] & band) == 0).all()


def test_a_short_stretch_that_leaves_the_shift_around_it_and_comes_back_keeps_it():
    """Two errors close together that undo each other are far less likely than a periodic
    texture that fits a period away: such a stretch keeps the shift around it; a long one, or
    one between two different shifts, stays."""
    path = np.zeros(5000, np.int64)
    path[1000:1000 + REALIGN_EXCURSION - 1] = 23
    path[2000:2000 + REALIGN_EXCURSION] = 4
    path[1500:1550], path[1550:1600] = -48, 45  # a detour through two shifts
    path[3000:3100] = -2
    path[3100:] = -7
    _no_short_excursions(path, REALIGN_EXCURSION)
    assert not path[1000:2000].any()
    assert (path[2000:2000 + REALIGN_EXCURSION] == 4).all()
    assert (path[3000:3100] == -2).all() and (path[3100:] == -7).all()


def test_the_blocks_the_bits_place_at_the_end_keep_their_place():
    """A stretch out of place right up to the scan's end, where its bits place it: the DCs sit
    off there, not the band (left in place, its DCs judge no later band); where the blocks
    before the end do not judge, the return to the end's place comes where they begin."""
    w = 100
    ok = np.ones(5000, bool)
    dc_ok = np.ones((50, w), bool)
    path = np.zeros(5000, np.int64)
    path[3000:4998] = 12
    _trust_the_end(path, ok, dc_ok, w)
    assert not path.any() and not dc_ok.ravel()[3000:4998].any() and dc_ok.ravel()[:3000].all()
    path[2000:4998] = -1
    judged = ok.copy()
    judged[3000:] = False
    dc_ok[:] = True
    _trust_the_end(path, judged, dc_ok, w)
    assert (path[2000:3000] == -1).all() and not path[3000:].any() and dc_ok.all()


def test_without_a_witness_nothing_is_moved():
    """A pattern that repeats every two blocks fits a band two blocks aside as well as its own:
    the borders are no witness there, and a stretch out of place stays rather than be guessed."""
    stripe = _busy(16, 384, seed=3)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.tile(stripe, (1, 32, 1)))).save(buf, "JPEG", progressive=True,
                                                                          quality=92)
    r = decode(buf.getvalue(), "strict")
    flat, grid, rows, cols = _y_blocks(r)
    plane = flat[: grid[0] * grid[1]].reshape(grid[0], grid[1], 64)
    zz = np.asarray(_ZZ[6:64])
    order = plane[:rows, :cols].reshape(-1, 64).copy()
    moved = order.copy()
    moved[500:1400][:, zz] = order[497:1397][:, zz]
    plane[:rows, :cols] = moved.reshape(rows, cols, 64)
    before = flat.copy()
    blocks = plane[:rows, :cols].reshape(-1, 64).astype(np.float32)
    edges = _edge_basis(r.qtables[0]).astype(np.float32)
    in_band = np.zeros(64, bool)
    in_band[zz] = True
    everywhere = np.ones(rows * cols, bool)
    steps = _steps((np.where(in_band, 0, blocks) @ edges).reshape(-1, 4, 8), cols, everywhere, True) + \
        _steps((np.where(in_band, blocks, 0) @ edges).reshape(-1, 4, 8), cols, everywhere, False)
    assert _witness(*steps) < REALIGN_WITNESS
    moves, sr, _, _ = _realign(r, flat, grid, rows, cols, 6, 63)
    assert moves == 0 and np.array_equal(flat, before) and sr.decoded.all()


def test_a_scan_that_reads_three_errors_silently_decodes_nearly_whole():
    """Three 16-byte garbles in the Y 6-63 first scan, read without a failure: the energy fit
    splits the scan once, and the border placement puts the other stretches back (40.0 dB
    without it), so the refinements read the right history."""
    from acir_core.metrics import y_psnr

    buf = io.BytesIO()
    Image.fromarray(_busy(1024, 768, seed=5)).save(buf, "JPEG", progressive=True, quality=92)
    clean = decode(buf.getvalue(), "strict")
    scan = clean.scans[4]
    assert scan.band == (6, 63, 0, 2)
    out = bytearray(buf.getvalue())
    for frac in (0.2, 0.5, 0.8):
        off = int(scan.byte_offsets[int(len(scan.byte_offsets) * frac)])
        for j in range(off, off + 16):
            v = out[j] ^ ((0x5A + 7 * (j - off)) & 0xFF)
            out[j] = v if v != 0xFF else 0xFE
    r = decode(bytes(out), "robust")
    assert all(e.reason == "an error decoded without a failure" for e in r.scans[4].resyncs)
    assert y_psnr(r.rgb, clean.rgb) > 46
