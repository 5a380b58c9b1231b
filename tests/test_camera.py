"""Camera photos as users bring them: thumbnails with bars, turned, in the camera's colours;
restart markers by the thousand; the evidence that keeps acir from showing worse than a standard
decoder; and high-quality scans whose DC predictors drift after damage."""
from __future__ import annotations

import io
import tracemalloc

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from acir_core.bitflip import corrupt
from acir_core.imagefile import load_rgb
from acir_core.jpeg.decoder import decode
from acir_core.jpeg.restarts import assign_restarts
from acir_core.metrics import y_psnr
from acir_core.sca.compensate import compensate, resolve_thumbnail
from acir_core.sca.evidence import judge
from acir_core.thumbframe import content_box, fit_tone, frame_thumbnail
from acir_core.thumbnail import synthetic_thumbnail, with_thumbnail
from acir_engine.photo import restore_photo
from tests.conftest import encode_jpeg, photo_like


def _letterboxed(rgb: np.ndarray) -> np.ndarray:
    """A 3:2 photo's 160×120 thumbnail as cameras make it: the picture 160×107 between black bars."""
    inner = np.asarray(Image.fromarray(rgb).resize((160, 107), Image.BICUBIC))
    out = np.zeros((120, 160, 3), np.uint8)
    out[6:113] = inner
    return out


def test_letterbox_bars_are_cropped_and_only_when_dark() -> None:
    rgb = photo_like(960, 640, seed=3)
    thumb = _letterboxed(rgb)
    assert content_box(thumb, 1.5) == (6, 7, 0, 0)
    framed = frame_thumbnail(thumb, 960, 640)
    assert framed.rgb.shape == (107, 160, 3) and framed.crop == (6, 7, 0, 0)
    assert "bars cropped" in framed.describe()
    # a 4:3 thumbnail of a 3:2 photo without bars is squeezed, not cropped
    squeezed = np.asarray(Image.fromarray(rgb).resize((160, 120), Image.BICUBIC))
    assert content_box(squeezed, 1.5) == (0, 0, 0, 0)


def test_bars_wider_than_the_aspect_says_are_cropped_to_the_picture() -> None:
    """Cameras draw a 3:2 picture into 160×120 as 106 or 104 lines (bars of 7 or 8), where the
    aspect gives 106.7: the black lines the rounding leaves are bar, not picture, but a dark
    picture line is kept."""
    rgb = photo_like(960, 640, seed=3)
    for lines, box in ((106, (7, 7, 0, 0)), (104, (8, 8, 0, 0))):
        thumb = np.zeros((120, 160, 3), np.uint8)
        top = (120 - lines) // 2
        thumb[top:top + lines] = np.asarray(Image.fromarray(rgb).resize((160, lines), Image.BICUBIC))
        thumb[top - 1, ::7] = 30  # ringing along the bar's edge
        assert content_box(thumb, 1.5) == box
    dark = _letterboxed(rgb)
    dark[6] = 3  # the picture's own first line is nearly black but for one bright pixel
    dark[6, 80] = 200
    assert content_box(dark, 1.5) == (6, 7, 0, 0)


def test_a_thumbnail_turned_against_the_photo_is_turned_back_the_right_way() -> None:
    rgb = photo_like(480, 640, seed=4)  # portrait photo
    landscape = np.ascontiguousarray(np.rot90(synthetic_thumbnail(rgb), -1))  # camera kept it landscape
    framed = frame_thumbnail(landscape, 480, 640, rgb)
    assert framed.rotation == 90 and framed.rgb.shape[:2] == (160, 120)
    assert np.abs(framed.rgb.astype(int) - synthetic_thumbnail(rgb)).mean() < 1.0
    # the other quarter turn would be chosen for the other direction
    other = np.ascontiguousarray(np.rot90(synthetic_thumbnail(rgb), 1))
    assert frame_thumbnail(other, 480, 640, rgb).rotation == 270


def test_the_cameras_tone_curve_is_learnt_from_trusted_pixels() -> None:
    rgb = photo_like(640, 480, seed=5)
    thumb = synthetic_thumbnail(rgb)
    curved = np.clip(255.0 * (thumb / 255.0) ** 0.7 + 6, 0, 255).astype(np.uint8)  # brighter, lifted
    trusted = np.ones(rgb.shape[:2], bool)
    tone = fit_tone(curved, rgb, trusted)
    assert tone is not None and tone.after < 0.5 * tone.before
    assert np.abs(tone.apply(curved).astype(int) - thumb).mean() < 3.0
    assert fit_tone(curved, rgb, np.zeros_like(trusted)) is None  # nothing trusted: no fit


def test_restart_markers_by_the_ten_thousand_assign_in_linear_memory() -> None:
    n_int = 20_000
    nums = np.arange(1, n_int) % 8 - 1
    nums[nums < 0] = 7
    pos = np.arange(1, n_int, dtype=np.int64) * 100
    # damage: markers 5000-5002 lost, one spurious marker at 12000.5
    keep = np.ones(nums.size, bool)
    keep[5000:5003] = False
    nums_d = np.insert(nums[keep], 11997, 3)
    pos_d = np.insert(pos[keep], 11997, pos[keep][11996] + 50)
    tracemalloc.start()
    got = assign_restarts(nums_d, pos_d, n_int, int(pos[-1] + 100))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    want = np.insert(np.arange(1, n_int)[keep], 11997, -1)
    assert np.array_equal(got, want)
    assert peak < 200 * 2**20  # the old full table held markers × intervals × 3 (~9 GB here)


def test_seams_and_the_thumbnail_tell_a_misplaced_run() -> None:
    rgb = photo_like(512, 256, seed=7)
    thumb = synthetic_thumbnail(rgb)
    good = judge(rgb, (16, 16), thumb)
    bad_rgb = rgb.copy()
    bad_rgb[128:] = np.roll(rgb[128:], 16, axis=1)  # the lower half one MCU to the right
    bad_rgb[128:] = np.clip(bad_rgb[128:].astype(int) + 20, 0, 255)  # and a DC step off
    bad = judge(bad_rgb, (16, 16), thumb)
    assert bad.seams > good.seams and bad.thumbnail > good.thumbnail and bad.score > good.score


def test_black_or_blown_out_mcus_are_not_taken_for_a_decoder_that_gave_up() -> None:
    """A flat MCU is what a decoder repeating its last DC shows, unless it is black or white: a
    dark photo whose shadows clip to 0 a level lower is no more "given up" than the original."""
    rgb = photo_like(256, 128, seed=3)
    dark = rgb.copy()
    dark[:64] = 0  # clipped shadows: flat and black
    grey = rgb.copy()
    grey[:64] = 90  # the same MCUs flat at a mid level: a decode that gave up
    assert judge(dark, (16, 16)).flat == judge(rgb, (16, 16)).flat
    assert judge(grey, (16, 16)).flat >= judge(rgb, (16, 16)).flat + 0.45


@pytest.fixture(scope="module")
def q95_photo() -> bytes:
    rgb = photo_like(1024, 768, seed=11)
    return with_thumbnail(encode_jpeg(rgb, quality=95, subsampling=1))


@pytest.fixture(scope="module")
def q100_extremes() -> bytes:
    """Quality 100 (DC step 1/8 level) with wide near-white and near-black areas, where a drifted
    DC predictor leaves the 8-bit range at once."""
    rgb = photo_like(1024, 768, seed=12).astype(np.int16)
    rgb[:, :512] = 250 + (rgb[:, :512] % 6)
    rgb[:, 512:] = rgb[:, 512:] % 6
    return encode_jpeg(np.clip(rgb, 0, 255).astype(np.uint8), quality=100, subsampling=1)


def test_a_high_quality_scan_is_not_resynced_where_nothing_was_hit(q100_extremes) -> None:
    """After damage the DC predictors are off; at quality 95 a DC step is an eighth of a level,
    so a drifted predictor soon leaves the 8-bit range. That is no reason to resync: the decode
    is in step, and resyncing there loses it."""
    c = corrupt(q100_extremes, ber=1e-5, seed=1)
    result = decode(c.data, "robust")
    clean = decode(q100_extremes, "robust")
    sr = clean.scans[0]
    changed = c.changed_bytes
    idx = np.searchsorted(sr.byte_offsets, changed, side="right") - 1
    hit = set((np.searchsorted(sr.mcu_bit_start, idx[idx >= 0] * 8, side="right") - 1).tolist())
    assert hit
    groups = len([h for h in sorted(hit) if h - 1 not in hit])
    # at most one resync per place hit (before the fix: one per bright or dark patch after it)
    assert len(result.resyncs) <= groups, (len(result.resyncs), groups)


def test_restore_keeps_the_view_the_evidence_supports_and_says_so(q95_photo) -> None:
    """Guided SCA, SCA from the decode alone and the standard decoder's view are all judged; the
    record names the one kept (the lowest score) and every score, and it is no worse than what
    Pillow shows of the damaged file."""
    clean = load_rgb(q95_photo).rgb
    for seed in range(3):
        c = corrupt(q95_photo, ber=5e-6, seed=seed)
        r = restore_photo(c.data)
        if r.status == "clean":
            continue
        ev = r.record["evidence"]
        assert set(ev) == {"sca", "sca-unguided", "standard-decoder"}
        assert r.record["kept"] == min(ev, key=ev.get)
        assert y_psnr(r.image, clean) >= y_psnr(load_rgb(c.data).rgb, clean) - 0.5


def test_restorations_are_judged_on_their_plain_fill(q95_photo) -> None:
    """The fill that carries detail in from beside its holes leaves no seam there; the evidence
    compares restorations on the plain thumbnail fill, whose seams tell made-up content."""
    from acir_core.sca.compensate import judged_view

    c = corrupt(q95_photo, ber=2e-5, seed=1)
    r = decode(c.data, "robust")
    thumb, _ = resolve_thumbnail(c.data, "auto")
    f = compensate(r, thumb)
    assert f.fill == "thumbnail" and f.region.any()
    view = judged_view(f)
    assert np.array_equal(view[~f.region], f.rgb[~f.region]) and not np.array_equal(view, f.rgb)
    assert judge(view, (16, 16), f.thumbnail).seams > judge(f.rgb, (16, 16), f.thumbnail).seams
    plain = compensate(r, thumb, fill="none")
    assert judged_view(plain) is plain.rgb
    # pixels marked only for runs that may lie a place off show what was decoded: a doubt does
    # not make a restoration look better than one without it
    doubt = np.zeros_like(f.region)
    doubt[: f.region.shape[0] // 2] = True
    marked = replace(f, sca=replace(f.sca, unsure=doubt & f.mask))
    view = judged_view(marked)
    kept = doubt & f.region
    assert kept.any() and np.array_equal(view[kept], f.unfilled[kept])
    assert np.array_equal(view[~f.region], f.rgb[~f.region])


def _with_app_preview(jpeg: bytes, preview: bytes) -> bytes:
    """``jpeg`` with ``preview`` stored in an APP9 segment right after SOI (as maker notes do)."""
    assert len(preview) + 2 <= 0xFFFF
    seg = b"\xff\xe9" + (len(preview) + 2).to_bytes(2, "big") + preview
    return jpeg[:2] + seg + jpeg[2:]


def test_the_largest_intact_preview_is_used_and_a_cut_one_is_not() -> None:
    from acir_core.sca.compensate import resolve_thumbnail
    from acir_core.thumbnail import embedded_previews

    rgb = photo_like(1280, 960, seed=21)
    base = with_thumbnail(encode_jpeg(rgb, quality=92))
    small = np.asarray(Image.fromarray(rgb).resize((480, 360), Image.BICUBIC))
    preview = encode_jpeg(small, quality=85)
    data = _with_app_preview(base, preview)
    thumb, origin = resolve_thumbnail(data, "auto")
    assert origin == "embedded-preview-480x360" and thumb.shape == (360, 480, 3)
    assert (480, 360) in [p.size for p in embedded_previews(data, 1280, 960)]
    # a preview cut short (its second half never written) is not used: the EXIF thumbnail is
    sos = preview.find(b"\xff\xda")
    cut = preview[: sos + (len(preview) - sos) // 2] + b"\xff\xd9"
    thumb, origin = resolve_thumbnail(_with_app_preview(base, cut), "auto")
    assert origin == "embedded-exif" and thumb.shape == (120, 160, 3)
    # nor is one of another shape (a 1:1 logo), nor one as large as the photo
    logo = encode_jpeg(np.asarray(Image.fromarray(rgb).resize((300, 300))), quality=85)
    assert (300, 300) not in [p.size for p in embedded_previews(_with_app_preview(base, logo), 1280, 960)]


def test_a_preview_after_the_image_whose_lower_rows_are_off_is_not_used() -> None:
    """A preview stored after the image lies in the photo's damaged bytes; an error its decoder
    reads silently leaves its later rows tens of levels off, and it decodes "clean". Its rows
    against the header's thumbnail give it away."""
    rgb = photo_like(1280, 960, seed=22)
    base = with_thumbnail(encode_jpeg(rgb, quality=92))
    small = np.asarray(Image.fromarray(rgb).resize((640, 480), Image.BICUBIC))
    thumb, origin = resolve_thumbnail(base + encode_jpeg(small, quality=85), "auto")
    assert origin == "embedded-preview-trailer-640x480"
    off = small.astype(np.int16)
    off[330:] += 60  # the DC of every block from some MCU row on
    thumb, origin = resolve_thumbnail(base + encode_jpeg(np.clip(off, 0, 255).astype(np.uint8), quality=85), "auto")
    assert origin == "embedded-exif" and thumb.shape == (120, 160, 3)


def test_edges_tell_which_way_round_a_thumbnail_goes() -> None:
    from acir_core.thumbframe import structure

    rgb = photo_like(640, 480, seed=31)
    thumb = synthetic_thumbnail(rgb)
    assert structure(thumb, rgb) > 0.5 > structure(np.ascontiguousarray(thumb[::-1, ::-1]), rgb)
    dim = (thumb * 0.6).astype(np.uint8)  # another tone: the same edges
    assert structure(dim, rgb) > 0.5


def test_short_restart_intervals_keep_what_decoded_right() -> None:
    """A marker every 4 MCUs (thousands of intervals) and MCUs smaller than a thumbnail pixel:
    damage stays inside the intervals it hit, the mask stays small, and the restoration is no
    worse than what Pillow shows. (The camera set's FujiFilm S5500 is what showed that an MCU near
    an interval's end is no sign of garbage; this synthetic photo does not reproduce that.)"""
    rgb = photo_like(1280, 960, seed=41)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=95, subsampling=1, restart_marker_blocks=4)
    data = with_thumbnail(buf.getvalue(), max_side=80)
    clean = load_rgb(data).rgb
    assert decode(data, "robust").scans[0].restart_interval == 4
    for seed in range(2):
        c = corrupt(data, ber=5e-6, seed=seed)
        r = restore_photo(c.data)
        if r.status == "clean":
            continue
        assert r.mask.mean() < 0.05
        assert y_psnr(r.image, clean) >= y_psnr(load_rgb(c.data).rgb, clean) - 0.5


def test_restart_intervals_no_byte_of_which_changed_come_out_as_decoded() -> None:
    """An interval that decodes as the encoder wrote it (no failure, its bits used up to the fill
    before the next marker) is neither split nor moved nor marked, whatever a small JPEG thumbnail
    seems to say about its level: its coefficients stay exactly the clean file's."""
    rgb = photo_like(1920, 1280, seed=7)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=95, restart_marker_rows=1)
    data = with_thumbnail(buf.getvalue(), max_side=160)
    clean = decode(data, "strict")
    sr = clean.scans[0]
    ri = sr.restart_interval
    for seed in range(3):
        c = corrupt(data, ber=2e-5, seed=seed)
        if not c.changed_bytes.size:
            continue
        # the intervals holding a changed byte, from the clean file's MCU bit positions
        idx = np.searchsorted(sr.byte_offsets, c.changed_bytes, side="right") - 1
        mcu = np.searchsorted(sr.mcu_bit_start, idx[idx >= 0].astype(np.int64) * 8, side="right") - 1
        hit = np.zeros(-(-sr.mcus_expected // ri), bool)
        hit[np.clip(mcu, 0, None) // ri] = True
        # CBC's flipped bit lands one block on; a marker between them spreads the hit to the next
        hit[1:] |= hit[:-1]
        sca = compensate(decode(c.data, "robust"), resolve_thumbnail(c.data, "auto")[0]).sca
        coefs = sca.coefficients
        for k in np.flatnonzero(~hit):
            rows = slice(2 * k, 2 * k + 2)  # 4:2:0: one MCU row is two luma block rows
            assert np.array_equal(coefs[0][rows], clean.coefficients[0][rows]), (seed, k)
            assert np.array_equal(coefs[1][k], clean.coefficients[1][k]), (seed, k)
            assert np.array_equal(coefs[2][k], clean.coefficients[2][k]), (seed, k)
        assert not sca.mcu_mask[~hit].any()


def _decimated(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """A thumbnail as many cameras make it: each pixel averages the photo around its block's
    top-left corner, half a thumbnail pixel up and left of where a box filter centres it."""
    fy, fx = rgb.shape[0] / height, rgb.shape[1] / width
    pad = int(np.ceil(max(fx, fy)))
    padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    box = (pad - fx / 2, pad - fy / 2, pad + rgb.shape[1] - fx / 2, pad + rgb.shape[0] - fy / 2)
    return np.asarray(Image.fromarray(padded).resize((width, height), Image.BOX, box=box))


def test_a_thumbnail_decimated_from_block_corners_is_registered_onto_the_photo() -> None:
    from acir_core.thumbframe import reduce_to
    from acir_core.thumbregister import register
    rgb = photo_like(1280, 960, seed=7)
    thumb = _decimated(rgb, 160, 120)
    reg = register(thumb, rgb, np.ones(rgb.shape[:2], bool))
    assert reg is not None and reg.moved and "registered" in reg.describe()
    assert abs(reg.dx + 0.5) <= 0.13 and abs(reg.dy + 0.5) <= 0.13
    assert reg.after < 0.6 * reg.before
    boxed = reduce_to(rgb, 160, 120)
    assert np.abs(reg.apply(thumb) - boxed).mean() < 0.7 * np.abs(thumb - boxed).mean()
    # from a band of trusted rows at the top (the first run of a damaged scan) it is found too
    band = np.zeros(rgb.shape[:2], bool)
    band[:160] = True
    top = register(thumb, rgb, band)
    assert top is not None and abs(top.dx + 0.5) <= 0.13 and abs(top.dy + 0.5) <= 0.2


def test_a_thumbnail_in_register_is_left_alone_and_too_little_trust_judges_nothing() -> None:
    from acir_core.thumbregister import register
    rgb = photo_like(1280, 960, seed=8)
    boxed = np.asarray(Image.fromarray(rgb).resize((160, 120), Image.BOX))
    reg = register(boxed, rgb, np.ones(rgb.shape[:2], bool))
    assert reg is not None and not reg.moved and reg.describe() == "in register"
    sliver = np.zeros(rgb.shape[:2], bool)
    sliver[:8, :200] = True
    assert register(_decimated(rgb, 160, 120), rgb, sliver) is None


def test_compensate_registers_a_camera_thumbnail_on_the_first_run_of_a_damaged_scan() -> None:
    rgb = photo_like(1280, 960, seed=9)
    data = encode_jpeg(rgb, quality=92)
    thumb = _decimated(rgb, 160, 120)
    flipped = bytearray(data)
    flipped[int(len(data) * 0.6)] ^= 0x10
    result = decode(bytes(flipped), "robust")
    assert not result.clean
    alone = compensate(result, None, fill="none")
    f = compensate(result, thumb, reference=alone)
    assert "registered" in f.thumbnail_note


def test_a_thumbnail_that_fits_as_stored_is_not_turned_by_a_scrambled_decode() -> None:
    rgb = photo_like(640, 480, seed=6)
    rgb[:, :150] //= 8  # dark at both sides: turned, those strips would pass for bars
    rgb[:, -150:] //= 8
    thumb = synthetic_thumbnail(rgb)
    # a decode scrambled so that its edges happen to follow the thumbnail turned and cropped
    turned = np.ascontiguousarray(np.rot90(thumb, 3)[35:125])
    scrambled = np.asarray(Image.fromarray(turned).resize((640, 480), Image.BICUBIC))
    framed = frame_thumbnail(thumb, 640, 480, scrambled)
    assert framed.rotation == 0 and framed.crop == (0, 0, 0, 0)


def test_a_large_preview_is_registered_on_an_exact_area_reduction_and_resampled_without_error() -> None:
    from acir_core.thumbregister import Registration, register
    rgb = photo_like(1600, 1200, seed=10)
    preview = _decimated(rgb, 320, 240)  # larger than REGISTER_SIDE: searched on a reduced copy
    reg = register(preview, rgb, np.ones(rgb.shape[:2], bool))
    assert reg is not None and abs(reg.dx + 0.5) <= 0.2 and abs(reg.dy + 0.5) <= 0.2
    for dx, dy, s in ((-0.75, -0.7, 0.975), (1.5, -1.5, 0.98), (-1.7, 1.7, 1.02)):
        out = Registration(dx=dx, dy=dy, sx=s, sy=s, before=0.0, after=0.0, pixels=0).apply(preview)
        assert out.shape == preview.shape  # the padding reaches as far as the box does


def test_each_axis_is_judged_on_its_own_and_its_scale_only_where_the_trusted_part_spans_it() -> None:
    from acir_core.thumbregister import register
    rgb = photo_like(1280, 960, seed=11)
    thumb = _decimated(rgb, 160, 120)
    strip = np.zeros(rgb.shape[:2], bool)
    strip[:, :320] = True  # a quarter of the width, all of the height
    reg = register(thumb, rgb, strip)
    assert reg is not None and reg.judged == (True, True)
    assert abs(reg.dx + 0.5) <= 0.13 and abs(reg.dy + 0.5) <= 0.13 and reg.sx == 1.0


def _camera_toned(thumb: np.ndarray) -> np.ndarray:
    """A thumbnail as a camera with its own tone curve makes it: shadows crushed, a little cooler."""
    t = 255.0 * (thumb.astype(np.float64) / 255.0) ** 1.5 - 4.0
    t[..., 2] += 5.0
    return np.clip(np.rint(t), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def damaged_toned() -> tuple[np.ndarray, bytes, np.ndarray]:
    rgb = photo_like(1280, 960, seed=11)
    data = bytearray(encode_jpeg(rgb, quality=92))
    for at in (0.35, 0.55, 0.75):
        data[int(len(data) * at)] ^= 0x08
    return rgb, bytes(data), _camera_toned(synthetic_thumbnail(rgb))


def test_the_cameras_tone_curve_is_learnt_from_the_runs_sca_placed(damaged_toned) -> None:
    from acir_core.sca.aware_sca import aware_sca
    from acir_core.sca.runtone import fit_run_tone

    rgb, data, curved = damaged_toned
    result = decode(data, "robust")
    assert not result.clean and len(aware_sca(result, curved).segments) > 2
    truth = synthetic_thumbnail(rgb).astype(int)
    tone = fit_run_tone(curved, result, aware_sca(result, curved))
    assert tone is not None and tone.after < 0.8 * tone.before
    assert np.abs(tone.apply(curved).astype(int) - truth).mean() < 0.4 * np.abs(curved.astype(int) - truth).mean()
    # a thumbnail already in the photo's colours is left as it is
    assert fit_run_tone(synthetic_thumbnail(rgb), result, aware_sca(result, synthetic_thumbnail(rgb))) is None


def test_sca_runs_again_with_the_thumbnail_toned_and_puts_runs_at_their_level(damaged_toned) -> None:
    rgb, data, curved = damaged_toned
    result = decode(data, "robust")
    alone = compensate(result, None, fill="none")
    toned = compensate(result, curved, reference=alone)
    assert "toned on runs" in toned.thumbnail_note
    plain = compensate(result, curved)  # no reference: the thumbnail as the camera made it
    # the DC fit takes the thumbnail's own offset out where the first run measures it, so the
    # thumbnail as made no longer puts runs 17 dB off (21.2 dB before that); toned is still better
    assert y_psnr(rgb, toned.unfilled) > max(y_psnr(rgb, plain.unfilled) + 1.0, 38.0)


def test_which_way_round_is_judged_on_what_sca_trusts() -> None:
    """At BER 1e-5 garbage brings edges of its own that can outvote the photo's; judged on the
    part a reference SCA trusts, the turn is the photo's."""
    from acir_core.thumbframe import structure

    rgb = photo_like(640, 480, seed=32)
    thumb = synthetic_thumbnail(rgb)
    turned = np.ascontiguousarray(thumb[::-1, ::-1])
    garbled = rgb.copy()
    rng = np.random.default_rng(4)
    garbled[:300] = turned.repeat(4, axis=0).repeat(4, axis=1)[:300, :640] ^ rng.integers(0, 8, (300, 640, 3),
                                                                                          dtype=np.uint8)
    trusted = np.zeros(rgb.shape[:2], bool)
    trusted[304:] = True
    assert structure(turned, garbled) > structure(thumb, garbled)  # the garbage votes for the wrong turn
    assert structure(thumb, garbled, trusted) > 0.5 > structure(turned, garbled, trusted)
    assert structure(thumb, garbled, np.zeros_like(trusted)) == structure(thumb, garbled)  # too little: all


def test_rows_wrapped_at_the_wrong_mcu_count_against_a_restoration() -> None:
    """A run one MCU off (what a camera's 160-px thumbnail cannot see at 10 Mpx) puts the MCU
    that ends each row at the start of the next: the first MCU boundary of those rows stands
    out, and the evidence weighs it."""
    rgb = photo_like(640, 480, seed=33)
    rows, cols = 480 // 16, 640 // 16
    tiles = rgb.reshape(rows, 16, cols, 16, 3).transpose(0, 2, 1, 3, 4).reshape(rows * cols, 16, 16, 3)
    start = 10 * cols + 5
    moved = tiles.copy()
    moved[start + 1:] = tiles[start:-1]  # everything after one MCU late
    off = moved.reshape(rows, cols, 16, 16, 3).transpose(0, 2, 1, 3, 4).reshape(480, 640, 3)
    right, wrong = judge(rgb, (16, 16)), judge(off, (16, 16))
    assert right.wrapped < 0.1 and wrong.wrapped > 0.5
    assert wrong.score - right.score > 0.5 * 30.0
