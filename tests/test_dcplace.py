"""DC stretches of a progressive file placed to the MCU by the edges its bits-placed AC bands draw."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from acir_core.jpeg.bandfit import DCHint
from acir_core.jpeg.decoder import decode
from acir_core.jpeg.entropy import _ZZ
from acir_core.sca.dcplace import edge_misfits, place_by_edges
from acir_core.sca.dcstretch import DCSteps, dc_grid, moved_coefficients
from acir_core.sca.progressive import progressive_sca
from conftest import photo_like


def _progressive(rgb: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", progressive=True, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def q92() -> bytes:
    return _progressive(photo_like(512, 384, seed=8), quality=92)


def _garble(data: bytes, scan, frac: float) -> bytes:
    """16 garbled bytes (one flipped ciphertext bit) at ``frac`` of a scan's data."""
    off = int(scan.byte_offsets[int(len(scan.byte_offsets) * frac)])
    out = bytearray(data)
    for j in range(off, off + 16):
        v = out[j] ^ ((0x5A + 7 * (j - off)) & 0xFF)
        out[j] = v if v != 0xFF else 0xFE
    return bytes(out)


def _first_scan_values(coefs: np.ndarray, ss: int, se: int, al: int) -> np.ndarray:
    """A band's values as its first scan gave them (the refinements' bits taken off)."""
    v = coefs[..., np.asarray(_ZZ[ss: se + 1])].astype(np.int32)
    return (np.sign(v) * (np.abs(v) >> al)) << al


def test_an_undamaged_file_witnesses_every_first_scan_band_as_read(q92):
    """The witness holds each AC first scan's values, not what the refinements added after."""
    r = decode(q92, "robust")
    assert r.witness is not None
    for sr in r.scans:
        ss, se, ah, al = sr.band
        if ss == 0 or ah:
            continue
        ci = sr.components[0]
        rows, cols = sr.mcu_rows, sr.mcu_cols
        got = r.witness[ci][:rows, :cols][..., np.asarray(_ZZ[ss: se + 1])]
        assert np.array_equal(got, _first_scan_values(r.coefficients[ci][:rows, :cols], ss, se, al))
        bit = np.uint64(1 << ss)
        assert ((r.witness_bands[ci][:rows, :cols] & bit) != 0).all()
    assert decode(q92, "strict").witness is None


def test_the_runs_between_two_failures_are_no_witness(q92):
    """Two failures in Y 1-5: what lies between them is placed against the DCs later, so the
    witness leaves it out; the head and the run the bits' end places stay."""
    clean = decode(q92, "strict")
    scan = clean.scans[1]
    bad = _garble(_garble(q92, scan, 0.3), scan, 0.7)
    r = decode(bad, "robust")
    sr = r.scans[1]
    fails = [e.mcu for e in sr.resyncs if e.reason != "an error decoded without a failure"]
    assert len(fails) >= 2
    seen = ((r.witness_bands[0][:sr.mcu_rows, :sr.mcu_cols] & np.uint64(2)) != 0).ravel()
    head = np.arange(min(int(np.argmin(sr.decoded)), fails[0] - 8))
    last = sr.resyncs[-1]  # the last run starts where the end of the bits put it
    assert head.size > fails[0] // 2 and seen[head].all() and not seen[fails[0]: last.mcu + last.shift].any()
    assert seen[-sr.mcu_cols:].mean() > 0.9
    got = r.witness[0][:sr.mcu_rows, :sr.mcu_cols].reshape(-1, 64)[head]
    want = _first_scan_values(clean.coefficients[0][:sr.mcu_rows, :sr.mcu_cols], 1, 5, 2).reshape(-1, 5)[head]
    assert np.array_equal(got[:, np.asarray(_ZZ[1:6])], want)


def _steps_with_stretch_off(r, lo: int, hi: int, by: int, luma_off: float = 0.0, by_joins: bool = False) -> DCSteps:
    """DC steps as a thumbnail could leave them: MCUs lo..hi take their DC from ``by`` MCUs on
    (and ``luma_off`` levels off the luma's), the 4 MCUs either side garbled (untrusted)."""
    rows, cols = dc_grid(r)
    source = np.arange(rows * cols)
    source[lo:hi] += by
    offset = np.zeros((rows * cols, 3))
    offset[lo:hi, 0] = luma_off
    untrusted = np.zeros(rows * cols, bool)
    untrusted[lo - 4: lo] = untrusted[hi: hi + 4] = True
    scales = np.array([float(q.reshape(-1)[0]) / 8 for q in r.qtables])
    unit = 1 << next(s.band[3] for s in r.scans if s.band[0] == 0)
    coefs = moved_coefficients(r, source, offset, untrusted, scales, unit, cols)
    return DCSteps(starts=(0, lo), shifts=(0, by), offsets=np.zeros((2, 3), np.int64), coefficients=coefs,
                   untrusted=untrusted.reshape(rows, cols), source=source, offset=offset, scales=scales, unit=unit,
                   by_joins=by_joins)


@pytest.mark.parametrize("by", [-2, 1, 3])
def test_a_stretch_a_few_mcus_off_goes_back_where_its_steps_follow_the_edges(q92, by):
    """A thumbnail places a stretch to within a few MCUs; the AC bands' edges place it exactly,
    and leave the stretches in place where they are."""
    r = decode(q92, "robust")
    steps = _steps_with_stretch_off(r, 300, 600, by)
    before = steps.source.copy()
    placed = place_by_edges(r, steps)
    assert np.array_equal(steps.source, before)  # the caller's steps stay as they were
    assert np.array_equal(placed.source[300:600], np.arange(300, 600))
    trusted = ~steps.untrusted
    for ci in range(3):
        comp = r.frame.components[ci]
        ok = np.repeat(np.repeat(trusted, comp.v, 0), comp.h, 1)
        assert np.array_equal(placed.coefficients[ci][..., 0][ok], r.coefficients[ci][..., 0][ok])


@pytest.fixture(scope="module")
def smooth() -> bytes:
    """A photo with the noise of a real one's smooth parts rather than photo_like's grain."""
    im = Image.fromarray(photo_like(512, 384, seed=8)).filter(ImageFilter.GaussianBlur(3))
    return _progressive(np.asarray(im), quality=92)


@pytest.mark.parametrize("levels", [-3.0, 4.5])
def test_a_stretch_moved_back_is_levelled_again_where_it_joins_the_rows_above(smooth, levels):
    """Placed at the wrong shift by how the MCUs join (no thumbnail), a stretch's level was
    fitted to the wrong neighbours: moved back, it is levelled again by how its DCs step into the
    rows above against the edges there. A thumbnail's level holds at any shift near: kept."""
    r = decode(smooth, "robust")
    steps = _steps_with_stretch_off(r, 300, 600, 2, levels, by_joins=True)
    placed = place_by_edges(r, steps)
    assert np.array_equal(placed.source[300:600], np.arange(300, 600))
    assert np.allclose(placed.offset[300:600, 0], 0)
    ok = np.repeat(np.repeat(~steps.untrusted, 2, 0), 2, 1)
    assert np.array_equal(placed.coefficients[0][..., 0][ok], r.coefficients[0][..., 0][ok])
    kept = place_by_edges(r, dataclasses.replace(steps, by_joins=False))
    assert np.allclose(kept.offset[300:600, 0], levels)


def test_without_a_witness_or_out_of_reach_nothing_moves(q92):
    """No witnessed AC (a first look without bands), or a stretch further off than the reach:
    the steps stay as they were found."""
    r = decode(q92, "robust")
    steps = _steps_with_stretch_off(r, 300, 600, 2)
    bare = dataclasses.replace(r, witness_bands=tuple(np.zeros_like(b) for b in r.witness_bands))
    assert place_by_edges(bare, steps) is steps
    assert place_by_edges(dataclasses.replace(r, witness=None), steps) is steps
    far = _steps_with_stretch_off(r, 300, 600, 9)
    assert np.array_equal(place_by_edges(r, far).source, far.source)


def test_a_flat_picture_gives_no_place():
    """A flat picture draws no edge: nothing witnesses, and a stretch keeps the place it was given."""
    flat = np.full((384, 512, 3), (120, 90, 60), np.uint8)
    r = decode(_progressive(flat, quality=92), "robust")
    steps = _steps_with_stretch_off(r, 300, 600, 2)
    assert np.array_equal(place_by_edges(r, steps).source, steps.source)


def test_one_components_bands_out_of_place_move_nothing(q92):
    """An error a chroma AC scan read silently leaves its witnessed band a few MCUs off: it says
    the DCs belong there, and with the luma's bands not witnessed and few of the other chroma's,
    it outweighs them; but those few say the DCs are in place, and a move needs two components
    behind it and none against. Where both chroma bands are moved, the stretch moves, cut where
    the Cb witness ends: the rest, which only the Cr's edges see, stays."""
    r = decode(q92, "robust")
    steps = _steps_with_stretch_off(r, 300, 600, 0)
    cr = r.witness[2].copy()
    cr.reshape(-1, 64)[302:602] = r.witness[2].reshape(-1, 64)[300:600]
    cb_seen = np.zeros_like(r.witness_bands[1])
    cb_seen.reshape(-1)[300:330] = r.witness_bands[1].reshape(-1)[300:330]
    moved = dataclasses.replace(r, witness=(r.witness[0], r.witness[1], cr),
                                witness_bands=(np.zeros_like(r.witness_bands[0]), cb_seen, r.witness_bands[2]))
    assert np.array_equal(place_by_edges(moved, steps).source, steps.source)
    cb = r.witness[1].copy()  # both chroma bands say so: the stretch moves
    cb.reshape(-1, 64)[302:602] = r.witness[1].reshape(-1, 64)[300:600]
    cb_seen.reshape(-1)[302:332] = r.witness_bands[1].reshape(-1)[300:330]
    both = dataclasses.replace(moved, witness=(r.witness[0], cb, cr))
    placed = place_by_edges(both, steps).source
    assert np.array_equal(placed[310:440], np.arange(310, 440) - 2)
    assert np.array_equal(placed[460:590], np.arange(460, 590))  # only Cr sees it: one component


def _hint_of(steps: DCSteps) -> DCHint:
    """The DC of ``steps`` as a first decode would hand it to the second (every block in place
    but those of its untrusted MCUs)."""
    grid = steps.untrusted
    in_place = tuple(~np.repeat(np.repeat(grid, 2, 0), 2, 1) if ci == 0 else ~grid for ci in range(3))
    return DCHint(dc=tuple(c[..., 0].copy() for c in steps.coefficients), in_place=in_place, untrusted=grid)


def test_sca_keeps_the_dc_the_ac_was_placed_against_where_the_edges_back_it(q92):
    """A second decode places its AC against the DC a first one put right (``dc_hint``); SCA
    finds the DC steps again on it and keeps whichever of the two the picture's edges fit
    better: the hint over a stretch left off, the decode's own DC over a hint that is off."""
    r = decode(q92, "robust")
    good = _steps_with_stretch_off(r, 300, 600, 0)
    bad = _steps_with_stretch_off(r, 300, 600, 2, 6.0)
    trusted = ~good.untrusted
    ok = [np.repeat(np.repeat(trusted, 2, 0), 2, 1), trusted, trusted]
    ours, theirs = edge_misfits(r, (good.coefficients, bad.coefficients), good.untrusted)
    assert ours < theirs
    off = dataclasses.replace(r, coefficients=bad.coefficients, dc_hint=_hint_of(good))
    kept = progressive_sca(off)
    assert np.array_equal(kept.mcu_mask, good.untrusted)  # the hint's mask: its DC was taken
    for ci in range(3):
        assert np.array_equal(kept.coefficients[ci][..., 0][ok[ci]], r.coefficients[ci][..., 0][ok[ci]])
    mistaken = progressive_sca(dataclasses.replace(r, dc_hint=_hint_of(bad)))
    for ci in range(3):
        assert np.array_equal(mistaken.coefficients[ci][..., 0][ok[ci]], r.coefficients[ci][..., 0][ok[ci]])


def _read_late(r, *at: int):
    """``r`` with every MCU's DC from each of ``at`` on one place later per MCU read twice there;
    and the number of MCUs."""
    rows, cols = dc_grid(r)
    n = rows * cols
    scales = np.array([float(q.reshape(-1)[0]) / 8 for q in r.qtables])
    late = np.arange(n)
    for m in at:
        late[m:] -= 1
    unit = 1 << next(s.band[3] for s in r.scans if s.band[0] == 0)
    coefs = moved_coefficients(r, late, np.zeros((n, 3)), np.zeros(n, bool), scales, unit, cols)
    return dataclasses.replace(r, coefficients=coefs), n


def test_the_last_stretch_moves_on_past_the_scans_end(q92):
    """An MCU read twice puts every later MCU's DC one place late, up to the scan's end: moved
    back, the last MCU's DC lies past the end and it is left untrusted, not the move refused."""
    bad, n = _read_late(decode(q92, "robust"), 300)
    steps = _steps_with_stretch_off(bad, 300, n, 0)
    placed = place_by_edges(bad, steps)
    assert np.array_equal(placed.source[300:n - 1], np.arange(301, n))
    assert placed.untrusted.ravel()[n - 1] and not placed.untrusted.ravel()[300:n - 1].any()
    assert not steps.untrusted.ravel()[n - 1]  # the caller's steps stay as they were


def test_a_stretch_holding_a_step_nobody_found_is_cut_where_its_pieces_belong(q92):
    """Two MCUs read twice, the second unseen: the DCs after the first sit one place late, after
    the second two; the stretch, found as one, is cut where its pieces fit the edges at
    different shifts, and each goes back by its own."""
    bad, n = _read_late(decode(q92, "robust"), 300, 520)
    placed = place_by_edges(bad, _steps_with_stretch_off(bad, 300, n, 0))
    assert np.array_equal(placed.source[310:510], np.arange(311, 511))
    assert np.array_equal(placed.source[530:n - 2], np.arange(532, n))
