"""Progressive JPEG: exact decoding of every scan kind, robust and cut files, through restore."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageFile

from acir_cli.app import main
from acir_core.bitflip import corrupt
from acir_core.damage import apply_damage, parse_damage
from acir_core.errors import AcirError, CorruptJpeg
from acir_core.jpeg.decoder import decode
from acir_core.jpeg.progressive import band_damage
from acir_core.metrics import y_psnr
from acir_core.thumbnail import with_thumbnail
from acir_engine.photo import restore_photo
from conftest import photo_like


def _progressive(rgb: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", progressive=True, **kw)
    return buf.getvalue()


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


CASES = {
    "420-q75": {"quality": 75, "subsampling": 2},
    "422-q90": {"quality": 90, "subsampling": 1},
    "444-q100": {"quality": 100, "subsampling": 0},
    "420-optimized": {"quality": 85, "optimize": True},
    "restart-blocks": {"quality": 92, "restart_marker_blocks": 5},
    "restart-rows": {"quality": 92, "restart_marker_rows": 1},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_clean_progressive_files_equal_libjpeg_turbo_pixel_for_pixel(case):
    data = _progressive(photo_like(331, 215, seed=6), **CASES[case])
    r = decode(data, "strict")
    assert r.frame.marker == 0xC2 and len(r.scans) > 4 and r.clean
    assert np.array_equal(r.rgb, _pillow(data))
    robust = decode(data, "robust")  # where libjpeg's conventions are failures: none breaks them
    assert robust.clean and np.array_equal(robust.rgb, r.rgb)
    assert all(s.conventions[0] == 0 for s in robust.scans) and any(s.conventions[1] for s in robust.scans)


def test_grey_progressive_equals_libjpeg_turbo():
    data = _progressive(photo_like(150, 97, seed=1)[..., 0], quality=88)
    assert np.array_equal(decode(data, "strict").rgb[..., 0], _pillow(data)[..., 0])


def test_every_scan_kind_is_exercised_and_all_bands_arrive():
    r = decode(_progressive(photo_like(128, 96, seed=2), quality=90), "strict")
    kinds = {(sr.band[0] == 0, sr.band[2] > 0) for sr in r.scans}
    assert kinds == {(True, False), (True, True), (False, False), (False, True)}  # DC/AC, first/refinement
    bd = band_damage(r)
    assert not bd.dc_lost.any() and not bd.detail_lost.any()


def test_strict_decoding_names_the_damaged_scan():
    data = _progressive(photo_like(256, 128, seed=3), quality=90)
    bad = corrupt(data, ber=2e-3, seed=4).data
    with pytest.raises(CorruptJpeg, match="progressive scan"):
        decode(bad, "strict")


@pytest.fixture(scope="module")
def clean() -> bytes:
    return with_thumbnail(_progressive(photo_like(640, 480, seed=5), quality=90))


def _pillow_shows(data: bytes, shape, truncated: bool = True) -> np.ndarray:
    """What a standard decoder shows of a damaged file: with ``truncated`` what libjpeg decoded
    before giving up (Pillow's LOAD_TRUNCATED_IMAGES), else Pillow's default, an error (black)."""
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    try:
        out = _pillow(data)
    except Exception:  # noqa: BLE001 - it shows nothing
        out = np.zeros(shape, np.uint8)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    return out if out.shape == shape else np.zeros(shape, np.uint8)


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.75])
def test_a_cut_progressive_file_shows_what_arrived(clean, keep):
    ref = decode(clean, "strict").rgb
    bad = apply_damage(clean, [parse_damage(f"cut:{keep}")]).data
    r = restore_photo(bad, source="cut.jpg")
    assert r.record["status"] == "truncated" and r.record["progressive"]["lost"]
    acir = y_psnr(r.image, ref)
    assert acir >= y_psnr(_pillow_shows(bad, ref.shape, truncated=False), ref) + 10
    assert acir >= y_psnr(_pillow_shows(bad, ref.shape), ref) - 0.5  # libjpeg's own best effort, at least


def test_a_damaged_progressive_file_is_restored_not_skipped(clean, tmp_path):
    ref = decode(clean, "strict").rgb
    bad = corrupt(clean, ber=1e-5, seed=2).data
    (tmp_path / "p.jpg").write_bytes(bad)
    (tmp_path / "intact.jpg").write_bytes(clean)
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "p.jpg"), str(tmp_path / "intact.jpg"), "--out", str(out),
                 "--stage", "sca", "--no-previews"]) == 0
    rec = json.loads((out / "p.jpg.json").read_text())
    assert rec["status"] == "restored" and "progressive" in rec
    assert (out / "intact.jpg.intact.jpg").read_bytes() == clean
    img = np.asarray(Image.open(out / "p.jpg.restored.png").convert("RGB"))
    assert y_psnr(img, ref) > y_psnr(_pillow_shows(bad, ref.shape), ref) + 1  # libjpeg's best effort


def test_blocks_that_never_received_their_low_ac_show_the_slope_of_the_dcs_around_them(clean):
    """A file cut in its first AC scans leaves blocks with a DC alone: shown as they are, flat
    8×8 tiles (libjpeg estimated their lowest AC from the DCs around them and showed 1.3-1.7 dB
    more on two eval photos cut at 25 %). Now those blocks get the slope and bend the DCs imply,
    blocks that received their low AC keep it exactly, an intact file is untouched, and the
    repaired JPEG shows what acir does."""
    from acir_core.jpeg.render import render
    from acir_core.jpeg.rewrite import repaired_jpeg
    from acir_core.jpeg.smoothing import LOW_AC, smoothed

    ref = decode(clean, "strict")
    assert smoothed(ref.frame, ref.coefficients, ref.bands, ref.qtables) is ref.coefficients
    for size, sub in (((200, 136), 2), ((100, 75), 1)):  # MCU grids padded past the picture
        odd = decode(_progressive(photo_like(*size, seed=2), quality=90, subsampling=sub), "strict")
        assert smoothed(odd.frame, odd.coefficients, odd.bands, odd.qtables) is odd.coefficients
    luma = next(s for s in ref.scans if s.band[0] == 1 and s.components == (0,))
    bad = clean[: int(luma.byte_offsets[len(luma.byte_offsets) // 2])]  # cut halfway through it
    r = decode(bad, "robust")
    flat = render(r.frame, r.coefficients, r.qtables)
    lacking = [((b & LOW_AC) != LOW_AC) for b in r.bands]
    assert 0.05 < lacking[0].mean() < 0.95  # the luma band 1-5 cut part way
    px = np.repeat(np.repeat(lacking[0], 8, 0), 8, 1)[:480, :640]

    def err(img):  # luma error on the blocks without their low AC
        return np.square((img.astype(float) - ref.rgb) @ [0.299, 0.587, 0.114])[px].mean()
    assert err(r.rgb) < 0.85 * err(flat)  # 55.3 -> 46.0
    assert y_psnr(r.rgb, ref.rgb) > y_psnr(flat, ref.rgb) + 0.3
    est = smoothed(r.frame, r.coefficients, r.bands, r.qtables)
    for e, c, lack in zip(est, r.coefficients, lacking):
        assert np.array_equal(e[~lack], c[~lack]) and np.array_equal(e[..., 0], c[..., 0])
    assert (est[0][lacking[0]][:, [1, 8, 2]] != 0).mean() > 0.3
    assert y_psnr(r.rgb, ref.rgb) >= y_psnr(_pillow_shows(bad, ref.rgb.shape), ref.rgb)
    out = restore_photo(bad, source="cut.jpg", stage="sca")
    rep = repaired_jpeg(out.coded, out.image, out.region)
    assert np.array_equal(_pillow(rep.data), out.image)


def test_fuzzed_progressive_files_never_crash(clean):
    rng = np.random.default_rng(7)
    for i in range(40):
        data = bytearray(clean)
        kind = i % 4
        if kind == 0:
            for p in rng.integers(2000, len(data), 20):
                data[p] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            data = data[: int(rng.integers(600, len(data)))]
        elif kind == 2:
            p = int(rng.integers(2000, len(data) - 600))
            data[p: p + 512] = rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
        else:
            p = int(rng.integers(2000, len(data) - 600))
            data[p: p + 4096] = bytes(4096)
        try:
            r = decode(bytes(data), "robust")
        except AcirError:
            continue
        assert r.rgb.shape == (480, 640, 3)


@pytest.fixture(scope="module")
def q92() -> bytes:
    return _progressive(photo_like(512, 384, seed=8), quality=92)


def _garble(data: bytes, scan, frac: float) -> tuple[bytes, int]:
    """16 garbled bytes (what one flipped ciphertext bit leaves) at ``frac`` of a scan's data; the
    file offset just past them."""
    off = int(scan.byte_offsets[int(len(scan.byte_offsets) * frac)])
    out = bytearray(data)
    for j in range(off, off + 16):
        v = out[j] ^ ((0x5A + 7 * (j - off)) & 0xFF)
        out[j] = v if v != 0xFF else 0xFE
    return bytes(out), off + 16


def _block_of(scan, offset: int) -> int:
    bit = int(np.searchsorted(scan.byte_offsets, offset)) * 8
    return int(np.searchsorted(scan.mcu_bit_start, bit, side="right")) - 1


@pytest.mark.parametrize("k,frac", [(2, 0.3), (2, 0.5), (6, 0.3), (10, 0.3), (10, 0.5)])
def test_an_error_inside_an_ac_scan_costs_only_the_blocks_near_it(q92, k, frac):
    """An AC band's first scan (2: Y 1-5) resumes and places what follows by where its bits end;
    a refinement (6, 10: Y 1-63) resumes at the block whose history decodes on. Before, the rest
    of the scan was lost (half the picture coarse)."""
    clean = decode(q92, "strict")
    bad, _ = _garble(q92, clean.scans[k - 1], frac)
    r = decode(bad, "robust")
    sr = r.scans[k - 1]
    assert sr.resyncs and sr.resyncs[0].scan == k - 1
    assert (~sr.decoded).mean() < 0.03
    assert y_psnr(r.rgb, clean.rgb) > 38


@pytest.mark.parametrize("frac", [0.3, 0.5])
def test_an_error_decoded_silently_is_found_where_its_band_stops_fitting(q92, frac):
    """Scan 5 (Y 6-63, first) decodes the garbled bytes without a failure and ends out of step
    with its blocks: the change point of the band's energy against what the blocks already hold
    splits it within a block row of the damage (a few blocks on real photos, whose texture the
    bands share more closely), and the tail goes where the bits end."""
    clean = decode(q92, "strict")
    scan = clean.scans[4]
    bad, after = _garble(q92, scan, frac)
    r = decode(bad, "robust")
    sr = r.scans[4]
    silent = [e for e in sr.resyncs if e.reason == "an error decoded without a failure"]
    assert silent and abs(silent[0].mcu - _block_of(scan, after)) <= sr.mcu_cols
    assert y_psnr(r.rgb, clean.rgb) > 38


@pytest.mark.parametrize("by", [3, 24])
def test_a_stretch_of_blocks_out_of_place_stands_out_and_a_band_in_place_does_not(q92, by):
    """The change point behind silent errors: a band in place scores 0 for every shift (shifting
    it only fits worse); a stretch moved by 3 or 24 blocks (several errors read silently; tried
    up to 8 before) is found with its shift, and moving it back puts the band of nearly all its
    blocks where it was (flat blocks, the same either way, leave the stretch's ends loose)."""
    from types import SimpleNamespace

    from acir_core.jpeg.silent import SILENT_REACH, SILENT_SCORE, _band_fit, _change_point, _shift_stretch
    r = decode(q92, "strict")
    frame = r.frame
    rows, cols = r.scans[4].mcu_rows, r.scans[4].mcu_cols
    flat = np.concatenate([c.reshape(-1, 64) for c in r.coefficients]).copy()
    grid = frame.block_grid(0)
    own, fit = _band_fit(flat, 0, grid, rows, cols, 6, 63)
    assert max(_change_point(own, fit, s, own.size)[2] for s in range(-SILENT_REACH, SILENT_REACH + 1) if s) \
        < SILENT_SCORE
    plane = flat[: grid[0] * grid[1]].reshape(grid[0], grid[1], 64)
    zz = np.asarray(__import__("acir_core.jpeg.entropy", fromlist=["_ZZ"])._ZZ[6:64])
    order = plane[:rows, :cols].reshape(-1, 64)
    x1, x2 = 900, 2100
    moved = order.copy()
    moved[x1:x2][:, zz] = order[x1 - by: x2 - by][:, zz]  # block i shows block i - by's band: it belongs by back
    plane[:rows, :cols] = moved.reshape(rows, cols, 64)
    own, fit = _band_fit(flat, 0, grid, rows, cols, 6, 63)
    (a, b, score), shift = max(((_change_point(own, fit, s, own.size), s)
                                for s in range(-SILENT_REACH, SILENT_REACH + 1) if s), key=lambda t: t[0][2])
    assert shift == -by and score >= SILENT_SCORE and a <= x1 + cols and b >= x2 - cols
    _shift_stretch(flat, np.zeros(flat.shape[0], np.uint64), SimpleNamespace(mcu_cols=cols,
                   decoded=np.ones(rows * cols, bool)), 0, grid, 6, 63, a, b, shift)
    back = plane[:rows, :cols].reshape(-1, 64)
    inner = np.arange(x1, x2 - by)
    same = (back[inner][:, zz] == order[inner][:, zz]).all(axis=1)
    textured = np.abs(order[inner][:, zz]).sum(axis=1) > 0
    assert same[textured].mean() > 0.95


@pytest.mark.parametrize("by", [2, 24])
def test_with_the_dcs_in_place_a_low_band_out_of_place_stands_out_by_its_agreement_with_them(q92, by):
    """Where a DC hint puts the DCs in place, the lowest AC band's agreement with what the DCs
    predict says where a stretch of it belongs, sharper than its energy: a band in place scores
    below the threshold for every shift, a stretch moved by 2 or 24 blocks is found with its
    shift and its ends within a block row."""
    from acir_core.jpeg.bandfit import dc_agreement, shift_gain
    from acir_core.jpeg.entropy import _ZZ
    from acir_core.jpeg.silent import SILENT_REACH, SILENT_SCORE, _best_stretch

    r = decode(q92, "strict")
    rows, cols = r.scans[1].mcu_rows, r.scans[1].mcu_cols
    flat = np.concatenate([c.reshape(-1, 64) for c in r.coefficients]).copy()
    grid = r.frame.block_grid(0)
    dc = r.coefficients[0][..., 0].copy()
    ok = np.ones(dc.shape, bool)

    def best():
        parts = dc_agreement(flat, 0, grid, rows, cols, 1, 5, r.qtables[0], dc, ok)
        return max(((_best_stretch(shift_gain(parts, s)), s) for s in range(-SILENT_REACH, SILENT_REACH + 1) if s),
                   key=lambda t: t[0][2])

    assert best()[0][2] < SILENT_SCORE
    plane = flat[: grid[0] * grid[1]].reshape(grid[0], grid[1], 64)
    zz = np.asarray(_ZZ[1:6])
    order = plane[:rows, :cols].reshape(-1, 64).copy()
    x1, x2 = 900, 2100
    moved = order.copy()
    moved[x1:x2][:, zz] = order[x1 - by: x2 - by][:, zz]
    plane[:rows, :cols] = moved.reshape(rows, cols, 64)
    (a, b, score), shift = best()
    assert shift == -by and score >= SILENT_SCORE and abs(a - x1) <= cols and abs(b - x2) <= cols


@pytest.mark.parametrize("fracs", [(0.2, 0.5), (0.4, 0.8)])
def test_a_run_between_two_failures_goes_where_the_dcs_say(q92, fracs):
    """Two errors in scan 2 (Y 1-5, first): the run between them has no anchor in the bits (it
    lost its band before: 28-36 % of the scan). Its lowest AC coefficients follow the DCs around
    each block, which put it back: nearly all the scan decoded, the band exact where the later
    scans refine it, 40 dB and more (35-36 dB before)."""
    from acir_core.jpeg.entropy import _ZZ

    clean = decode(q92, "strict")
    scan = clean.scans[1]
    bad = _garble(_garble(q92, scan, fracs[0])[0], scan, fracs[1])[0]
    r = decode(bad, "robust")
    sr = r.scans[1]
    assert len(sr.resyncs) >= 2 and sr.decoded.mean() > 0.95
    zz = np.asarray(_ZZ[1:6])
    same = (clean.coefficients[0][..., zz] == r.coefficients[0][..., zz]).all(-1)
    assert same.mean() > 0.7
    assert y_psnr(r.rgb, clean.rgb) > 40


def test_a_run_far_off_is_found_near_the_shift_of_the_run_before_it(q92):
    """Each error of an AC first scan adds to how far its runs sit from their blocks: in a 12-Mpx
    camera file at 1e-5 the later runs needed 100 and more, past the ±96 searched around where a
    run was decoded, and lost their band. Searched around the shift of the run placed before it,
    a run 120 blocks off goes back."""
    from acir_core.jpeg.bandfit import PLACE_REACH, PLACE_SCORE, _best_place, _dc_predictions
    from acir_core.jpeg.entropy import _ZZ

    clean = decode(q92, "strict")
    y = clean.coefficients[0]
    rows, cols = y.shape[:2]
    ref = _dc_predictions(y[..., 0], clean.qtables[0], rows, cols)
    ref = ref / np.maximum(ref.std(0), 1e-9)
    truth = np.arange(600, 1800)
    own = y.reshape(-1, 64)[truth][:, np.asarray(_ZZ[1:6])].astype(np.float64)
    own = own / np.maximum(own.std(0), 1e-9)
    blocks = truth - 120  # where the run was decoded
    usable = np.ones(rows * cols, bool)
    assert PLACE_REACH < 120
    far, _ = _best_place(own, ref, blocks, PLACE_REACH, usable)
    assert far != 120
    shift, score = _best_place(own, ref, blocks, PLACE_REACH, usable, center=100)
    assert shift == 120 and score >= PLACE_SCORE


def test_runs_are_placed_only_where_the_dcs_are_in_place(q92):
    """A DC scan's failure leaves every later MCU's DC a few places off, so the DCs there cannot
    place an AC run: only blocks read before the DC scan's first failure count, and none once the
    scan ended out of step (an error decoded silently may sit anywhere)."""
    from types import SimpleNamespace

    from acir_core.jpeg.bandfit import dc_in_place

    clean = decode(q92, "robust")
    frame = clean.frame
    assert dc_in_place(clean.scans, frame, 0).all()
    for frac in (0.1, 0.5):  # out of step at its end: silently only, and after a failure
        assert not dc_in_place(decode(_garble_dc(q92, frac), "robust").scans, frame, 0).any()
    dc = clean.scans[0]
    failed = SimpleNamespace(band=dc.band, components=dc.components, silent_shift=0, mcu_cols=dc.mcu_cols,
                             resyncs=(SimpleNamespace(mcu=5 * dc.mcu_cols + 7),))
    for ci in range(3):
        comp = frame.components[ci]
        ok = dc_in_place([failed], frame, ci)
        assert ok[: 5 * comp.v].all() and not ok[6 * comp.v:].any()
        assert ok[5 * comp.v: 6 * comp.v, : 7 * comp.h].all() and not ok[5 * comp.v: 6 * comp.v, 7 * comp.h:].any()


def test_a_refinement_scan_that_fails_again_and_again_keeps_the_earlier_scans_bits(q92, monkeypatch):
    """From an encoder whose conventions are not known, a refinement scan's resumptions depend on
    each block's history and go wrong more often the more it fails: after ``REFINE_GIVE_UP``
    failures the rest of the scan keeps exactly what the earlier scans gave (as if the file were
    cut before it), never correction bits read out of step."""
    import acir_core.jpeg.decoder as decoder_module
    from acir_core.jpeg.progressive import REFINE_GIVE_UP

    monkeypatch.setattr(decoder_module, "CONVENTION_EVIDENCE", 1 << 40)
    clean = decode(q92, "strict")
    scan = clean.scans[9]
    bad = q92
    for frac in np.linspace(0.02, 0.98, 12):
        bad = _garble(bad, scan, float(frac))[0]
    r = decode(bad, "robust")
    sr = r.scans[9]
    assert len(sr.resyncs) == REFINE_GIVE_UP  # it would resume a sixth time
    tail = np.arange(int(0.9 * sr.decoded.size), sr.decoded.size)
    assert not sr.decoded[tail].any()
    sos = [i for i in range(len(q92) - 1) if q92[i] == 0xFF and q92[i + 1] == 0xDA]
    before = decode(q92[: sos[9]] + b"\xff\xd9", "robust")
    rows, cols = divmod(tail, sr.mcu_cols)
    assert np.array_equal(r.coefficients[0][rows, cols], before.coefficients[0][rows, cols])


def test_undamaged_ac_scans_follow_libjpegs_conventions(q92):
    """libjpeg-turbo (Pillow) sends an end-of-band code only where a run must end and a zero-run
    code only before a coefficient: its undamaged AC scans break neither rule, in thousands of
    places, so the decoder may count on them."""
    from acir_core.jpeg.decoder import CONVENTION_EVIDENCE, _conventional

    r = decode(q92, "robust")
    ac = [s for s in r.scans if s.band[0] > 0]
    assert all(s.conventions[0] == 0 for s in ac)
    assert sum(s.conventions[1] for s in ac) >= 10 * CONVENTION_EVIDENCE
    assert _conventional(list(r.scans))


def test_conventions_count_only_when_undamaged_scans_show_them(q92):
    """Codes against the conventions at every turn in a scan decoded without a failure (an
    encoder with other habits), or too few places checked, and a damaged refinement scan is
    decoded as from any encoder; one break in thousands of places is an error read silently, and
    scans with a failure are no evidence either way."""
    import dataclasses

    from acir_core.jpeg.decoder import CONVENTION_EVIDENCE, CONVENTION_RATE, _conventional

    scans = list(decode(q92, "robust").scans)
    ac = next(i for i, s in enumerate(scans) if s.band[0] > 0)
    places = sum(s.conventions[1] for s in scans)

    def with_breaks(n: int, **kw) -> list:
        out = scans.copy()
        out[ac] = dataclasses.replace(scans[ac], conventions=(n, scans[ac].conventions[1]), **kw)
        return out

    assert _conventional(with_breaks(1))  # one error read without a failure
    assert not _conventional(with_breaks(places // CONVENTION_RATE + 1))
    assert _conventional(with_breaks(places, silent_shift=3))  # a damaged scan says nothing
    few = [dataclasses.replace(s, conventions=(0, min(s.conventions[1], 1))) for s in scans]
    assert sum(s.conventions[1] for s in few) < CONVENTION_EVIDENCE and not _conventional(few)


@pytest.mark.parametrize("k,fracs,most", [(6, (0.3,), 64), (6, tuple(np.linspace(0.02, 0.98, 12)), 600),
                                          (10, tuple(np.linspace(0.02, 0.98, 12)), 600)])
def test_a_refinement_error_is_found_within_blocks_of_it(q92, k, fracs, most):
    """A refinement scan from a libjpeg-style encoder fails at the first code the encoder would
    never send, a few blocks after an error rather than hundreds, and resumes where the bits are:
    every error costs the blocks around it. Before, one error cost 281 of the 3,072 blocks, and
    twelve cost 3,011 (scan 6) or 1,909 (scan 10)."""
    clean = decode(q92, "strict")
    bad = q92
    for frac in fracs:
        bad = _garble(bad, clean.scans[k - 1], float(frac))[0]
    r = decode(bad, "robust")
    assert r.scans[k - 1].resyncs
    differ = np.any(r.coefficients[0] != clean.coefficients[0], axis=-1)
    assert differ.sum() <= most


@pytest.mark.parametrize("k", [6, 10])
def test_a_first_look_skips_the_refinement_searches_and_the_engine_then_decodes_in_full(q92, k):
    """``search_refinements=False``, the engine's first look at a damaged progressive file (all
    its DC hint needs): a refinement scan stops at its first failure, the rest keeping what earlier
    scans gave, and the result says so. The engine then decodes the file in full: its record
    counts the full decode's resumptions and its decode stage shows the full decode."""
    clean = decode(q92, "strict")
    bad = _garble(q92, clean.scans[k - 1], 0.3)[0]
    full = decode(bad, "robust")
    look = decode(bad, "robust", search_refinements=False)
    assert look.deferred and look.scans[k - 1].deferred and not full.deferred
    assert full.scans[k - 1].resyncs and not look.scans[k - 1].resyncs
    assert (~look.scans[k - 1].decoded).mean() > 0.5 > (~full.scans[k - 1].decoded).mean()
    assert all(a.deferred == (i == k - 1) for i, a in enumerate(look.scans))
    assert y_psnr(look.rgb, clean.rgb) > 30
    r = restore_photo(bad, stage="sca")
    assert r.record["resyncs"] == len(full.resyncs)
    assert r.record["missing_fraction"] == full.summary()["missing_fraction"]
    assert np.array_equal(restore_photo(bad, stage="decode").image, full.rgb)


def _garble_dc(data: bytes, frac: float) -> bytes:
    clean = decode(data, "strict")
    return _garble(data, clean.scans[0], frac)[0]


@pytest.mark.parametrize("frac", [0.3, 0.5, 0.7])
def test_a_dc_scan_error_is_placed_and_levelled_against_the_thumbnail(q92, frac):
    """16 garbled bytes in the DC scan: decoded silently or not, every later MCU's DC sits on a
    wrong predictor and may be a few MCUs off. Before, such a file was reported intact (16-25 dB)
    or lost the rest of its DC to the fill (53 dB); now the stretch after the error is placed and
    levelled and only the garbled MCUs are masked."""
    jpeg = with_thumbnail(q92)
    clean = decode(jpeg, "strict")
    r = restore_photo(_garble_dc(jpeg, frac), stage="sca")
    assert r.status == "restored" and r.mask.mean() < 0.05
    assert y_psnr(r.image, clean.rgb) > 55


@pytest.mark.parametrize("frac", [0.3, 0.4, 0.5, 0.6])
def test_a_moved_dc_stretch_keeps_the_refinement_bits_in_place(q92, frac):
    """A DC stretch an error moved is moved back with the first scan's bits only: the DC
    refinement scan reads one bit per block in place, so its bits stay where they were read.
    Moving them along left every second block a unit off."""
    from acir_core.sca.dcsteps import find_dc_steps
    from acir_core.thumbnail import embedded_previews

    jpeg = with_thumbnail(q92)
    clean = decode(jpeg, "strict")
    bad = _garble_dc(jpeg, frac)
    r = decode(bad, "robust")
    steps = find_dc_steps(r, embedded_previews(bad, 512, 384, "")[0].rgb)
    assert steps.found
    trusted = ~steps.untrusted
    for ci in range(3):
        comp = r.frame.components[ci]
        ok = np.repeat(np.repeat(trusted, comp.v, 0), comp.h, 1)
        same = steps.coefficients[ci][..., 0][ok] == clean.coefficients[ci][..., 0][ok]
        assert same.mean() > 0.99


def test_dc_stretches_are_fitted_again_on_all_their_mcus_and_clear_ones_placed():
    """A stretch's shift is searched on the 192 MCUs after its start, where the garbled ones
    sit, and in detailed or dark parts the thumbnail misfits more than the noise measured where
    the photo began: a stretch kept at a wrong shift is fitted again on all its MCUs, and MCUs no
    stretch explained are placed where one shift clearly explains them; the garbled ones among
    them, and parts where every shift fits alike, stay untrusted."""
    from acir_core.sca.dcsteps import _refit

    rng = np.random.default_rng(3)
    n = 4000
    thumb = np.cumsum(rng.normal(0, 6, (n + 16, 3)), axis=0)  # what each MCU shows, textured
    level = np.empty((n, 3))
    truth = np.arange(n)  # the MCU whose DC belongs at each place
    truth[1000:2000] += 3
    truth[2000:] += 6
    inside = truth < n
    level[truth[inside]] = thumb[:n][inside] + rng.normal(0, 2, (int(inside.sum()), 3)) + 40  # offset 40
    level[:1000] = thumb[:1000] + rng.normal(0, 2, (1000, 3))
    level[truth[2000:2005]] = rng.normal(0, 80, (5, 3))  # garbled MCUs where the second error struck
    sigma, bias = np.full(3, 2.0), np.zeros(3)
    source = np.arange(n)
    source[1000:2000] += 1  # kept at a wrong shift
    source[2600:] += 6
    offset = np.zeros((n, 3))
    offset[1000:] = 40
    untrusted = np.zeros(n, bool)
    untrusted[2000:2600] = True
    _refit(level, thumb[:n], sigma, bias, source, offset, untrusted, n)
    assert np.array_equal(source[1000:2000], truth[1000:2000])
    placed = ~untrusted[2000:2600]
    assert untrusted[2000:2005].sum() >= 4 and placed.mean() > 0.9 and np.array_equal(source[2000:2600][placed], truth[2000:2600][placed])
    assert np.abs(offset[2000:2600][placed] - 40).max() < 1


def test_lost_dc_comes_back_from_the_ac_and_the_neighbours():
    """Blocks that kept their AC but lost their DC: each edge with a known neighbour says how far
    apart the two DCs are; with the thumbnail's block means for the low frequencies the DC of a
    wide area comes back within a level or two, where the thumbnail alone is blurred. Known
    blocks keep theirs exactly."""
    from acir_core.sca.dcrecover import recover_dc
    from acir_core.sca.fill import upsampled_thumbnail
    from acir_core.sca.thumbmodel import block_levels
    from acir_core.thumbnail import synthetic_thumbnail

    clean = decode(_progressive(photo_like(512, 384, seed=8), quality=92), "strict")
    unknown = []
    for c in clean.coefficients:
        u = np.zeros(c.shape[:2], bool)
        u[c.shape[0] // 4: 3 * c.shape[0] // 4, c.shape[1] // 8: 5 * c.shape[1] // 8] = True
        unknown.append(u)
    lost = tuple(c.copy() for c in clean.coefficients)
    for c, u in zip(lost, unknown):
        c[..., 0][u] = 0
    up = upsampled_thumbnail(synthetic_thumbnail(clean.rgb), 512, 384)
    levels = block_levels(up, "ycbcr", [u.shape for u in unknown], [(1, 1), (2, 2), (2, 2)])
    got = recover_dc(lost, clean.qtables, unknown, levels)
    for ci in range(3):
        q0 = clean.qtables[ci].reshape(-1)[0]
        err = np.abs(got[ci][..., 0].astype(float) - clean.coefficients[ci][..., 0]) * q0 / 8
        assert np.median(err[unknown[ci]]) < 1.5 and np.array_equal(got[ci][~unknown[ci]],
                                                                       clean.coefficients[ci][~unknown[ci]])
    mask = np.repeat(np.repeat(unknown[0], 8, 0), 8, 1)
    ours = clean.rerender(got)
    assert y_psnr(ours * mask[..., None], clean.rgb * mask[..., None]) > \
        y_psnr(up * mask[..., None], clean.rgb * mask[..., None]) + 8


@pytest.mark.parametrize("dc_frac,fracs", [(0.15, (0.4, 0.7)), (0.35, (0.4, 0.7)), (0.3, (0.45, 0.65))])
def test_ac_runs_are_placed_again_against_the_dc_the_thumbnail_put_right(q92, dc_frac, fracs):
    """An error in the DC scan (read on after a failure, or read silently) leaves later MCUs' DC
    off; two in the Y 1-5 scan leave a run between them that only the DCs can place: before, it
    lost its band (or was placed by DCs that had moved), 43-81 % of the band exact, 37 dB. The
    DC put right against the thumbnail is a second decode's hint: the run goes back, the band is
    exact nearly everywhere."""
    from acir_core.jpeg.entropy import _ZZ
    from acir_core.sca.progressive import dc_hint
    from acir_core.thumbnail import embedded_previews

    jpeg = with_thumbnail(q92)
    clean = decode(jpeg, "strict")
    bad = _garble_dc(jpeg, dc_frac)
    for frac in fracs:
        bad = _garble(bad, clean.scans[1], frac)[0]
    zz = np.asarray(_ZZ[1:6])

    def exact(r):
        return (clean.coefficients[0][..., zz] == r.coefficients[0][..., zz]).all(-1).mean()

    first = decode(bad, "robust")
    assert exact(first) < 0.85
    thumb = embedded_previews(bad, 512, 384, "")[0].rgb
    assert dc_hint(first, thumb) is not None
    assert exact(decode(bad, "robust", dc_hint=dc_hint(first, thumb))) > 0.95
    r = restore_photo(bad, stage="sca")
    assert r.record["progressive"]["dc_hint"] and y_psnr(r.image, clean.rgb) > 45


@pytest.mark.parametrize("frac", [0.1, 0.3, 0.5, 0.7])
def test_without_a_thumbnail_dc_steps_are_found_from_how_the_mcus_join(q92, frac):
    """16 garbled bytes in the DC scan and no thumbnail: every later MCU's DC sits on a wrong
    predictor, a few MCUs off. Before, the MCUs read on after a failure were masked and filled
    without a guide, and a scan that read the error silently was reported intact (13-25 dB). The
    AC, sent apart, still says how each MCU joins the one above: the stretch is placed and
    levelled from that, only the garbled MCUs are masked."""
    clean = decode(q92, "strict")
    r = restore_photo(_garble_dc(q92, frac), stage="sca", thumbnail=None)
    assert r.status == "restored" and r.mask.mean() < 0.1  # a 16-byte garble spans up to 2 of 24 rows
    assert y_psnr(r.image, clean.rgb) > 42


@pytest.mark.parametrize("frac", [0.3, 0.4])
def test_without_a_thumbnail_a_narrow_photo_is_levelled_too(frac):
    """A photo 16 MCUs wide: the MCUs between a break and the window a new stretch is fitted on
    leave no placed row above most of the window, so every fit came out undefined and was taken
    for texture (reported intact at 10 dB, or levelled wrong). The offsets are now read up
    through the garbled MCUs' own AC to the last placed row."""
    jpeg = _progressive(photo_like(256, 192, seed=3), quality=92)
    clean = decode(jpeg, "strict")
    bad = _garble_dc(jpeg, frac)
    r = restore_photo(bad, stage="sca", thumbnail=None)
    assert r.status == "restored"
    assert y_psnr(r.image, clean.rgb) > y_psnr(decode(bad, "robust").rgb, clean.rgb) + 15


def test_continuity_finds_no_dc_step_in_an_intact_file(q92):
    """Without a thumbnail, an intact progressive file must stay intact: no step is found in how
    its MCUs join, and the engine passes it through."""
    from acir_core.sca.dccontinuity import continuity_steps

    assert not continuity_steps(decode(q92, "robust")).found
    assert restore_photo(q92, stage="sca", thumbnail=None).status == "clean"


def test_a_dc_scan_that_ends_out_of_step_says_so(q92):
    """Garbled DC codes that decode without a failure mostly leave the scan's MCUs and bits ending
    apart: the decoder says so (``silent_shift``), an intact scan does not."""
    assert decode(q92, "robust").scans[0].silent_shift == 0
    assert decode(_garble_dc(q92, 0.1), "robust").scans[0].silent_shift != 0


def test_a_dc_step_inside_the_head_has_no_say_in_the_thumbnails_tone():
    """The thumbnail is toned to the photo on the MCUs before the DC scan's first reported error.
    An error read silently before that moved nearly all of them 60 levels: the toned thumbnail
    took that on, and the step was never undone (Galaxy Note 3 and Leica T at 1e-5: 6.5 dB, the
    photo washed out). A step found inside those MCUs has the thumbnail toned again on the MCUs
    before it, and the DCs after it come back exactly."""
    import dataclasses

    from acir_core.sca.dcsteps import find_dc_steps
    from acir_core.thumbnail import synthetic_thumbnail

    clean = decode(_progressive(photo_like(2048, 1024, seed=5), quality=92), "robust")
    camera = np.clip(synthetic_thumbnail(clean.rgb).astype(int) + 4, 0, 255).astype(np.uint8)
    f = clean.frame
    after = np.zeros((f.mcu_rows, f.mcu_cols), bool)
    after.ravel()[300:] = True  # of 8,192 MCUs; the head is the first 2,048
    blocks = np.repeat(np.repeat(after, 2, 0), 2, 1)
    coefs = [c.copy() for c in clean.coefficients]
    coefs[0][..., 0][blocks] += int(round(60 * 8 / clean.qtables[0].reshape(-1)[0] / 2)) * 2
    bad = dataclasses.replace(clean, coefficients=tuple(coefs), rgb=clean.rerender(tuple(coefs)),
                              scans=(dataclasses.replace(clean.scans[0], silent_shift=-1),) + clean.scans[1:])
    steps = find_dc_steps(bad, camera)
    assert 290 <= steps.starts[1] <= 310 and steps.untrusted.mean() < 0.05
    assert (steps.coefficients[0][..., 0][blocks] == clean.coefficients[0][..., 0][blocks]).mean() > 0.95


def test_a_thumbnail_unlike_the_first_mcus_gives_way_to_how_the_mcus_join():
    """A camera's thumbnail can disagree with the photo's first MCUs beyond what a tone explains
    (Canon EOS 1000D at 1e-5: every toned pass moved the very first MCU, 15.5 dB). A DC step 120
    levels down at MCU 900 of a dark photo, its thumbnail's top-left inverted: against the
    thumbnail the first MCUs moved and 56 % of the DCs came out wrong. Where the chosen pass moves
    MCUs well before the MCUs' joins show a first step, the steps from the joins are taken: the
    step is found where it is and every DC comes back."""
    import dataclasses

    from acir_core.sca.dcsteps import find_dc_steps
    from acir_core.thumbnail import synthetic_thumbnail

    clean = decode(_progressive((photo_like(1024, 512, seed=5) * 0.4).astype(np.uint8), quality=92), "robust")
    f = clean.frame
    after = np.zeros((f.mcu_rows, f.mcu_cols), bool)
    after.ravel()[900:] = True  # of 2,048 MCUs
    blocks = np.repeat(np.repeat(after, 2, 0), 2, 1)
    coefs = [c.copy() for c in clean.coefficients]
    coefs[0][..., 0][blocks] += int(round(-120 * 8 / clean.qtables[0].reshape(-1)[0] / 2)) * 2
    bad = dataclasses.replace(clean, coefficients=tuple(coefs), rgb=clean.rerender(tuple(coefs)),
                              scans=(dataclasses.replace(clean.scans[0], silent_shift=-1),) + clean.scans[1:])
    thumb = synthetic_thumbnail(clean.rgb).copy()
    h, w = thumb.shape[:2]
    thumb[: h // 3, : w // 2] = 255 - thumb[: h // 3, : w // 2]
    steps = find_dc_steps(bad, thumb)
    assert 895 <= steps.starts[1] <= 910 and steps.untrusted.mean() < 0.02
    assert (steps.coefficients[0][..., 0] == clean.coefficients[0][..., 0]).mean() > 0.99


def test_a_small_step_among_the_first_mcus_is_still_found_against_a_good_thumbnail():
    """A 6-level DC step at MCU 120 of 768 that the thumbnail shows and the MCUs' joins do not:
    the chosen pass moves MCUs before the 192th, so the joins are asked too, but seeing no step
    they must not overrule it (they did, and the damaged file passed as intact)."""
    import dataclasses

    from acir_core.sca.dcsteps import find_dc_steps
    from acir_core.sca.progressive import silently_scrambled
    from acir_core.thumbnail import synthetic_thumbnail

    clean = decode(_progressive(photo_like(512, 384, seed=5), quality=92), "robust")
    f = clean.frame
    after = np.zeros((f.mcu_rows, f.mcu_cols), bool)
    after.ravel()[120:] = True
    blocks = np.repeat(np.repeat(after, 2, 0), 2, 1)
    coefs = [c.copy() for c in clean.coefficients]
    coefs[0][..., 0][blocks] += int(round(6 * 8 / clean.qtables[0].reshape(-1)[0] / 2)) * 2
    bad = dataclasses.replace(clean, coefficients=tuple(coefs), rgb=clean.rerender(tuple(coefs)),
                              scans=(dataclasses.replace(clean.scans[0], silent_shift=-1),) + clean.scans[1:])
    thumb = synthetic_thumbnail(clean.rgb)
    steps = find_dc_steps(bad, thumb)
    assert steps.found and steps.starts[1] == 120
    assert np.array_equal(steps.coefficients[0][..., 0], clean.coefficients[0][..., 0])
    assert silently_scrambled(bad, thumb) and not silently_scrambled(clean, thumb)


def test_blocks_out_of_the_sample_range_tell_a_wrong_offset():
    """A block's mean lies within the sample range, so a DC left 300 levels off puts most blocks
    outside it and a right one none: what picks among passes toned on different MCUs."""
    from acir_core.sca.dcsteps import _outside
    from acir_core.sca.dcstretch import DCSteps

    clean = decode(_progressive(photo_like(512, 384, seed=8), quality=92), "robust")

    def steps(coefs):
        return DCSteps(starts=(0,), shifts=(0,), offsets=np.zeros((1, 3), np.int64), coefficients=coefs,
                       untrusted=np.zeros((clean.frame.mcu_rows, clean.frame.mcu_cols), bool))
    assert _outside(clean, steps(clean.coefficients)) == 0.0
    off = [c.copy() for c in clean.coefficients]
    off[0][..., 0] -= int(300 * 8 / clean.qtables[0].reshape(-1)[0])
    assert _outside(clean, steps(tuple(off))) > 0.3


def test_a_camera_toned_thumbnail_is_no_dc_step(q92):
    """A camera's thumbnail can be tens of levels brighter in the mid-tones than the photo: that
    is its tone (fitted first), not a DC scan's error, and an intact decode keeps every DC."""
    from acir_core.sca.dcsteps import find_dc_steps
    from acir_core.thumbnail import synthetic_thumbnail

    r = decode(q92, "robust")
    thumb = synthetic_thumbnail(r.rgb).astype(float)
    camera = np.clip(255 * (thumb / 255) ** 0.6 + 8, 0, 255).astype(np.uint8)
    steps = find_dc_steps(r, camera)
    assert not steps.found
    assert all(np.array_equal(a, b) for a, b in zip(steps.coefficients, r.coefficients))
