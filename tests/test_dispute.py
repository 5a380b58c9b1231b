"""Disputed MCUs: where the two SCAs put different content and the kept one's local evidence is
no better, the MCUs are marked and keep what was decoded."""
from __future__ import annotations

import numpy as np
import pytest

from acir_core.bitflip import corrupt
from acir_core.sca.dispute import (DISPUTE_LEVELS, LocalEvidence, _around_labels, _box3, _label8, cells_to_pixels,
                                   disputed, local_evidence)
from acir_core.thumbframe import luma
from acir_core.thumbnail import with_thumbnail
from acir_engine.photo import restore_photo
from conftest import encode_jpeg, photo_like

CELL = (16, 16)


def _smooth(h: int = 160, w: int = 256) -> np.ndarray:
    """A smooth gradient photo: no seams at MCU boundaries."""
    yy, xx = np.mgrid[0:h, 0:w]
    g = 40 + 0.5 * xx + 0.3 * yy
    return np.clip(np.stack([g, g * 0.9 + 10, g * 0.8 + 20], axis=2), 0, 255).astype(np.uint8)


def _moved(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` with a 3×3-MCU patch taken from two MCUs to the left: a run placed two MCUs off."""
    out = rgb.copy()
    out[48:96, 96:144] = rgb[48:96, 64:112]
    return out


def test_label8_joins_diagonal_neighbours_and_keeps_apart_the_rest() -> None:
    m = np.zeros((5, 6), bool)
    m[0, 0] = m[1, 1] = True  # diagonal: one area
    m[3, 4] = m[4, 4] = m[4, 5] = True
    m[0, 5] = True
    labels, n = _label8(m)
    assert n == 3
    assert labels[0, 0] == labels[1, 1] != 0
    assert labels[3, 4] == labels[4, 4] == labels[4, 5] != labels[0, 0]
    assert labels[0, 5] not in (0, labels[0, 0], labels[3, 4])
    assert (labels[~m] == 0).all()


def test_an_area_is_judged_over_its_cells_and_the_ring_around_them_each_counted_once() -> None:
    labels = np.zeros((6, 6), np.int64)
    labels[2, 2] = labels[2, 3] = 1  # two cells: the ring cells above and below both touch both
    labels[0, 0] = 2
    values = np.arange(36, dtype=np.float64).reshape(6, 6)
    sums = _around_labels(labels, 2, values)
    assert sums[1] == values[1:4, 1:5].sum()
    assert sums[2] == values[0:2, 0:2].sum()
    assert _around_labels(labels, 2, np.ones((6, 6)))[1] == 12


def test_box3_sums_each_neighbourhood() -> None:
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    p = np.pad(a, 1)
    want = np.array([[p[r:r + 3, c:c + 3].sum() for c in range(4)] for r in range(3)])
    assert np.array_equal(_box3(a), want)


def test_a_patch_the_kept_result_misplaced_is_marked_and_not_one_it_placed_right() -> None:
    right = _smooth()
    wrong = _moved(right)
    ty = luma(right)
    ev_right, ev_wrong = local_evidence(right, CELL, ty), local_evidence(wrong, CELL, ty)
    assert ev_wrong.seams.sum() > ev_right.seams.sum()
    marked = disputed(wrong, right, ev_wrong, ev_right, CELL)
    assert marked[3:6, 6:9].all() and marked.sum() <= 25
    assert not disputed(right, wrong, ev_right, ev_wrong, CELL).any()


def test_a_partial_cell_is_disputed_by_the_share_of_its_own_pixels() -> None:
    a = _smooth(37, 45)
    b = a.copy()
    b[33:35, 33:35] = 255 - b[33:35, 33:35]  # 4 of the 5x13 pixels of the corner cell: over 5 %
    tie = LocalEvidence(seams=np.zeros((3, 3)), thumbnail=np.zeros((3, 3)))
    marked = disputed(a, b, tie, tie, CELL)
    assert marked[2, 2] and marked.sum() == 1


def test_a_result_clearly_nearer_the_thumbnail_is_not_marked_for_its_seams() -> None:
    a = _smooth(48, 48)
    b = 255 - a
    def ev(seams: float, thumb: float) -> LocalEvidence:
        return LocalEvidence(seams=np.full((3, 3), seams), thumbnail=np.full((3, 3), thumb))
    assert not disputed(a, b, ev(10.0, 1.0), ev(5.0, 10.0), CELL).any()  # worse seams, much nearer
    assert disputed(a, b, ev(10.0, 7.0), ev(5.0, 10.0), CELL).all()  # worse seams, not clearly nearer
    assert not disputed(a, b, ev(4.0, 7.0), ev(5.0, 10.0), CELL).any()  # better seams


def test_content_alike_within_the_levels_is_not_disputed() -> None:
    a = _smooth()
    b = np.clip(a.astype(np.int16) + int(DISPUTE_LEVELS) - 2, 0, 255).astype(np.uint8)
    ev = LocalEvidence(seams=np.zeros((10, 16)), thumbnail=np.zeros((10, 16)))
    assert not disputed(a, b, ev, ev, CELL).any()


def test_cells_become_pixels_cropped_to_the_photo() -> None:
    cells = np.zeros((2, 3), bool)
    cells[1, 2] = True
    px = cells_to_pixels(cells, (16, 8), (20, 20))
    assert px.shape == (20, 20)
    assert px[16:, 16:].all() and px.sum() == 4 * 4


@pytest.mark.parametrize("seed", [1, 4])
def test_disputed_mcus_join_the_mask_and_keep_what_was_decoded(monkeypatch, seed) -> None:
    """The engine's image is the same with and without the dispute; only the mask grows, by the
    pixels the record reports."""
    import acir_engine.photo as photo
    data = corrupt(with_thumbnail(encode_jpeg(photo_like(256, 192, seed=7), quality=90)), ber=2e-4, seed=seed).data
    with_dispute = restore_photo(data, source="t.jpg", stage="sca", thumbnail="auto")
    monkeypatch.setattr(photo, "disputed", lambda kept, other, kept_ev, other_ev, cell: np.zeros(
        (-(-kept.shape[0] // cell[0]), -(-kept.shape[1] // cell[1])), bool))
    without = restore_photo(data, source="t.jpg", stage="sca", thumbnail="auto")
    for name in ("image", "region", "unfilled"):
        assert np.array_equal(getattr(with_dispute, name), getattr(without, name)), name
    assert (with_dispute.mask >= without.mask).all()
    added = with_dispute.mask & ~without.mask
    assert added.any() and with_dispute.record["disputed_fraction"] == pytest.approx(added.mean())
    assert without.record["disputed_fraction"] == 0.0


def _reference_evidence(rgb: np.ndarray, cell: tuple[int, int], ty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell seams and thumbnail distance, pixel pair by pixel pair."""
    y = luma(rgb).astype(np.float64)
    h, w = y.shape
    ch, cw = cell
    seams = np.zeros((-(-h // ch), -(-w // cw)))
    thumb = np.zeros_like(seams)
    for i in range(h):
        for j in range(w):
            thumb[i // ch, j // cw] += y[i, j] - ty[i, j]
            if j % cw == 0 and 2 <= j < w - 1:
                e = abs(y[i, j] - y[i, j - 1]) - 0.5 * (abs(y[i, j - 1] - y[i, j - 2]) + abs(y[i, j + 1] - y[i, j]))
                seams[i // ch, j // cw] += max(e, 0.0)
            if i % ch == 0 and 2 <= i < h - 1:
                e = abs(y[i, j] - y[i - 1, j]) - 0.5 * (abs(y[i - 1, j] - y[i - 2, j]) + abs(y[i + 1, j] - y[i, j]))
                seams[i // ch, j // cw] += max(e, 0.0)
    return seams, np.abs(thumb)


@pytest.mark.parametrize("cell,shape", [((16, 16), (37, 45)), ((8, 16), (37, 45)), ((8, 8), (37, 45)),
                                        ((16, 16), (33, 49)), ((8, 8), (33, 49)),
                                        ((16, 16), (301, 40))])  # the last in bands of cell rows
def test_local_evidence_counts_every_boundary_pair_once_partial_cells_included(cell, shape, monkeypatch) -> None:
    monkeypatch.setenv("ACIR_THREADS", "3")
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ty = luma(rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    ev = local_evidence(rgb, cell, ty)
    seams, thumb = _reference_evidence(rgb, cell, ty)
    assert np.allclose(ev.seams, seams, atol=1e-3) and np.allclose(ev.thumbnail, thumb, atol=1e-2)
    assert not local_evidence(rgb, cell, None).thumbnail.any()


def test_without_a_second_sca_nothing_is_disputed() -> None:
    data = corrupt(encode_jpeg(photo_like(256, 192, seed=7), quality=90), ber=2e-4, seed=1).data
    r = restore_photo(data, source="t.jpg", stage="sca", thumbnail="auto")  # no thumbnail: one SCA
    assert r.status == "restored" and "disputed_fraction" not in r.record


def test_a_thumbnail_luma_of_another_size_is_refused() -> None:
    from acir_core.errors import InvalidParameter
    with pytest.raises(InvalidParameter, match="up-sample"):
        local_evidence(_smooth(), CELL, np.zeros((10, 10), np.float32))


def test_the_kept_results_evidence_is_taken_again_once_it_borrowed_levels(monkeypatch) -> None:
    """The unguided result that took the guided SCA's DC per run is judged as it is shown."""
    import acir_engine.photo as photo
    calls = []
    real = photo.local_evidence

    def spy(rgb, cell, thumb_y, **kw):
        calls.append(rgb.copy())
        return real(rgb, cell, thumb_y, **kw)

    def brighter(unguided, guided, result):
        from dataclasses import replace
        rgb = np.clip(unguided.rgb.astype(np.int16) + 3, 0, 255).astype(np.uint8)
        return replace(unguided, rgb=rgb)

    monkeypatch.setattr(photo, "local_evidence", spy)
    monkeypatch.setattr(photo, "borrow_levels", brighter)
    data = corrupt(with_thumbnail(encode_jpeg(photo_like(256, 192, seed=7), quality=90)), ber=2e-4, seed=1).data
    r = restore_photo(data, source="t.jpg", stage="sca", thumbnail="auto")
    assert r.record["kept"] == "sca-unguided" and r.record["levels"] == "guided"
    assert len(calls) == 3 and not np.array_equal(calls[2], calls[1])
    assert "disputed_fraction" in r.record
