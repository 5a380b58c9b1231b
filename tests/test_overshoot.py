"""Blocks past 0..255 (acir_core.sca.overshoot): garbage that decoded in step shows itself where
its samples leave the range no encoder was given; clean blocks, ringing and all, never do."""
from __future__ import annotations

import numpy as np

import acir_core.sca.aware_sca as aware
from acir_core.jpeg.decoder import decode
from acir_core.sca.edges import DCT
from acir_core.sca.options import AwareOptions, MaskOptions
from acir_core.sca.overshoot import overshoot_margin, overshooting
from conftest import encode_jpeg, photo_like

FINE = np.full(64, 2, np.int64)  # a quality-95-like table


def _coefficients(pixels: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """Quantised coefficients (64,) of an 8×8 block of samples."""
    c = DCT @ (pixels.astype(np.float64) - 128.0) @ DCT.T
    return np.rint(c.reshape(64) / qt).astype(np.int16)


def test_clean_blocks_at_the_clip_are_not_flagged_and_garbage_is() -> None:
    edge = np.zeros((8, 8))
    edge[:, 4:] = 255.0  # black against white: the sharpest a picture gets, with ringing
    noise = np.random.default_rng(0).integers(0, 256, (8, 8))
    clean = np.stack([_coefficients(edge, FINE), _coefficients(noise, FINE),
                      _coefficients(np.full((8, 8), 255.0), FINE)])
    assert not overshooting(clean[:, None, :], FINE).any()
    garbage = clean.copy()
    garbage[0, 0] += 160  # a DC 40 levels up on a block holding white: past the range
    garbage[1, 9] = -60  # one AC coefficient of -120 (dequantised): samples up to 29 levels off
    garbage[2, 0] += 300  # white pushed 75 levels up
    assert overshooting(garbage[:, None, :], FINE).all()


def test_a_unit_is_flagged_by_any_of_its_blocks() -> None:
    blocks = np.zeros((3, 4, 64), np.int16)
    blocks[1, 3, 0] = 600  # one of four blocks at 278 levels: 23 past white
    assert overshooting(blocks, FINE).tolist() == [False, True, False]


def test_the_margin_grows_with_a_coarser_table() -> None:
    coarse = np.full(64, 40, np.int64)
    assert overshoot_margin(FINE) < 14.0 < 20.0 < overshoot_margin(coarse)
    medium = np.full(64, 12, np.int64)  # margin 17.2 levels
    flat = np.zeros((2, 1, 64), np.int16)  # a flat block 16 (15.5) levels past white under each table
    flat[0, 0, 0] = (255 + 16 - 128) * 8 // 2
    flat[1, 0, 0] = (255 + 16 - 128) * 8 // 12
    assert overshooting(flat[:1], FINE)[0] and not overshooting(flat[1:], medium)[0]


def test_clean_photos_have_no_block_past_the_range() -> None:
    for seed, quality in ((1, 95), (2, 75), (3, 50)):
        result = decode(encode_jpeg(photo_like(128, 96, seed=seed), quality=quality), "robust")
        for coefs, qt in zip(result.coefficients, result.qtables):
            assert not overshooting(coefs.reshape(-1, 1, 64), qt).any()


def test_overshoots_marks_the_position_and_its_neighbours_in_place_order() -> None:
    rows, cols = 2, 6
    grids = [np.zeros((rows, 1, cols, 1, 64), np.int16)]
    grids[0][0, 0, 4, 0, 0] = 700  # position 4
    trusted = np.ones(rows * cols, bool)
    trusted[3] = False  # damaged already: stays out
    wild = aware.overshoots(grids, [FINE], trusted, cols, 1)
    assert np.flatnonzero(wild).tolist() == [4, 5]
    assert np.flatnonzero(aware.overshoots(grids, [FINE], np.ones(rows * cols, bool), cols, 0)).tolist() == [4]


def test_sca_leaves_clean_runs_alone_and_can_be_told_not_to_look(monkeypatch) -> None:
    rgb = photo_like(128, 96, seed=5)
    data = bytearray(encode_jpeg(rgb, quality=90))
    data[len(data) // 2] ^= 0x10
    result = decode(bytes(data), "robust")
    calls = []
    real = aware.overshoots

    def spy(*args):
        out = real(*args)
        calls.append(int(out.sum()))
        return out

    monkeypatch.setattr(aware, "overshoots", spy)
    aware.aware_sca(result, None)
    assert calls == [0]  # the trusted runs of a clean photo hold nothing past the range
    aware.aware_sca(result, None, options=AwareOptions(mask=MaskOptions(overshoot=-1)))
    assert calls == [0]


def test_nothing_trusted_or_no_blocks_is_nothing_flagged() -> None:
    grids = [np.zeros((2, 1, 6, 1, 64), np.int16)]
    assert not aware.overshoots(grids, [FINE], np.zeros(12, bool), 6, 1).any()
    assert overshooting(np.zeros((0, 4, 64), np.int16), FINE).shape == (0,)


def test_an_int16_extreme_is_still_seen() -> None:
    block = np.zeros((1, 1, 64), np.int16)
    block[0, 0, 5] = -32768  # abs() of it in int16 is itself: the bound must not go negative
    assert overshooting(block, FINE)[0]
