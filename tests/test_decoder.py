"""The robust decoder: exact on clean files, to the end on damaged ones, clear about the rest."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from acir_core.bitflip import corrupt
from acir_core.errors import CorruptHeader, CorruptJpeg, ImageTooLarge, UnsupportedJpeg
from acir_core.jpeg.decoder import decode
from acir_core.jpeg.segments import parse_layout
from conftest import encode_jpeg, photo_like, shared_path
from jpeg_writer import encode


def pillow_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def assert_matches_libjpeg(data: bytes) -> None:
    ours = decode(data, "strict")
    ref = pillow_rgb(data)
    assert ours.rgb.shape == ref.shape
    diff = np.abs(ours.rgb.astype(int) - ref.astype(int))
    assert diff.max() == 0, f"max |diff| {diff.max()}, identical {np.mean(diff == 0):.6f}"
    robust = decode(data, "robust")
    assert robust.clean and np.array_equal(robust.rgb, ours.rgb), "robust mode must not touch a clean file"


SIZES = [(256, 128), (1, 1), (17, 9), (4095, 3), (37, 61), (8, 8), (16, 16)]


@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["444", "422", "420"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_decoder_matches_libjpeg_on_pillow_layouts(subsampling, size) -> None:
    assert_matches_libjpeg(encode_jpeg(photo_like(*size, seed=sum(size)), subsampling=subsampling))


@pytest.mark.parametrize("restart", [dict(restart_marker_blocks=1), dict(restart_marker_blocks=5),
                                     dict(restart_marker_rows=1), dict(restart_marker_rows=3)], ids=str)
@pytest.mark.parametrize("subsampling", [0, 2], ids=["444", "420"])
def test_decoder_matches_libjpeg_with_restart_markers(restart, subsampling) -> None:
    data = encode_jpeg(photo_like(203, 97, seed=3), subsampling=subsampling, **restart)
    assert_matches_libjpeg(data)
    assert decode(data).restart_intervals[0] > 0


@pytest.mark.parametrize("size", [(64, 48), (1, 1), (13, 200)], ids=str)
def test_decoder_matches_libjpeg_on_greyscale(size) -> None:
    buf = io.BytesIO()
    Image.fromarray(photo_like(*size, seed=4)[..., 1]).save(buf, "JPEG", quality=80)
    assert_matches_libjpeg(buf.getvalue())


LAYOUTS = {
    "440": ((1, 2), (1, 1), (1, 1)),
    "411": ((4, 1), (1, 1), (1, 1)),
    "422-vertical-chroma": ((2, 2), (2, 1), (1, 2)),
    "444-all-1x2": ((1, 2), (1, 2), (1, 2)),
    "410": ((4, 2), (1, 1), (1, 1)),
}


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
@pytest.mark.parametrize("size", [(67, 45), (1, 1), (17, 9), (3, 40)], ids=str)
@pytest.mark.parametrize("variant", ["single-scan", "restart-2", "multi-scan"])
def test_decoder_matches_libjpeg_on_every_sampling_layout(layout, size, variant) -> None:
    kw = {"restart-2": dict(restart_interval=2), "multi-scan": dict(separate_scans=True)}.get(variant, {})
    assert_matches_libjpeg(encode(photo_like(*size, seed=5), LAYOUTS[layout], **kw))


def test_decoder_matches_libjpeg_on_rgb_and_odd_greyscale_files() -> None:
    im = photo_like(50, 30, seed=6)
    assert_matches_libjpeg(encode(im, ((1, 1),) * 3, color="rgb"))  # Adobe transform 0
    assert_matches_libjpeg(encode(im, ((1, 1),) * 3, color="rgb", component_ids=(82, 71, 66)))
    assert_matches_libjpeg(encode(im[..., 0], ((2, 2),)))  # greyscale with 2x2 sampling: one block per MCU


@settings(max_examples=25, deadline=None)
@given(w=st.integers(1, 90), h=st.integers(1, 90), q=st.integers(5, 100), ss=st.sampled_from([0, 1, 2]),
       rst=st.integers(0, 4), seed=st.integers(0, 1000))
def test_decoder_equals_libjpeg_for_any_small_image(w, h, q, ss, rst, seed) -> None:
    kw = dict(restart_marker_blocks=rst) if rst else {}
    assert_matches_libjpeg(encode_jpeg(photo_like(w, h, seed=seed), quality=q, subsampling=ss, **kw))


def test_decoder_matches_libjpeg_on_real_photos() -> None:
    folder = shared_path("datasets", "eval")
    for path in sorted(folder.glob("*.jpg"))[:3]:
        data = path.read_bytes()
        assert_matches_libjpeg(data)
        buf = io.BytesIO()
        Image.open(path).save(buf, "JPEG", quality=75)  # the paper's re-encoding
        assert_matches_libjpeg(buf.getvalue())


# --------------------------------------------------------------------------- damaged files

@pytest.fixture(scope="module")
def damaged(big_photo_jpeg):
    c = corrupt(big_photo_jpeg, ber=1e-4, seed=2)
    return big_photo_jpeg, c


def test_strict_mode_stops_at_the_first_damaged_code_with_bit_and_mcu(damaged) -> None:
    _, c = damaged
    with pytest.raises(CorruptJpeg) as info:
        decode(c.data, "strict", source="photo.jpg")
    err = info.value
    assert err.bit_offset is not None and err.mcu is not None and err.offset >= c.region_start
    assert str(err).startswith("photo.jpg: ") and ("MCU" in str(err) or "marker" in str(err))


@pytest.mark.parametrize("resync", ["lookahead", "paper"])
def test_robust_mode_decodes_a_damaged_file_to_the_end(damaged, resync) -> None:
    clean_bytes, c = damaged
    clean = decode(clean_bytes, "strict")
    r = decode(c.data, "robust", resync=resync)
    assert r.rgb.shape == clean.rgb.shape
    assert len(r.resyncs) > 0 and r.mcus_expected == clean.mcus_expected
    assert r.mcus_decoded > 0.9 * r.mcus_expected
    first = min(x.mcu for x in r.resyncs)
    assert r.suspect.sum() >= len(r.resyncs)
    # everything before the first damaged MCU row is exact
    rows = first // clean.scans[0].mcu_cols
    assert np.array_equal(r.rgb[: 16 * max(rows - 1, 0)], clean.rgb[: 16 * max(rows - 1, 0)])
    for e in r.resyncs:
        assert e.bits_skipped >= 1 and 0 <= e.resume_bit < r.scans[0].n_bits
        assert r.scans[0].mcu_bit_start[e.mcu] == e.resume_bit and r.suspect[e.mcu]
        assert len(e.dc_predictors) == 3


def test_lookahead_resync_keeps_more_mcus_in_sync_than_the_papers(big_photo_jpeg) -> None:
    clean = decode(big_photo_jpeg, "strict").scans[0]
    true_starts = set((clean.byte_offsets[clean.mcu_bit_start // 8] * 8 + clean.mcu_bit_start % 8).tolist())

    def in_sync(r) -> float:
        s = r.scans[0]
        b = s.mcu_bit_start
        fb = s.byte_offsets[np.clip(b // 8, 0, s.byte_offsets.size - 1)] * 8 + b % 8
        return float(np.mean([x in true_starts and ok for x, ok in zip(fb.tolist(), s.decoded)]))

    paper, ours = [], []
    for seed in range(6):
        data = corrupt(big_photo_jpeg, ber=1e-4, seed=seed).data
        paper.append(in_sync(decode(data, resync="paper")))
        ours.append(in_sync(decode(data, resync="lookahead")))
    assert np.mean(ours) > np.mean(paper)


def test_restart_markers_resynchronise_exactly(photo_rgb) -> None:
    data = encode_jpeg(photo_like(256, 128, seed=8), restart_marker_rows=1)
    clean = decode(data, "strict")
    layout = parse_layout(data)
    rst = [i for i in range(layout.scan_start, len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    broken = bytearray(data)
    for i in range(rst[2] + 20, rst[2] + 36):  # garble 16 bytes inside the 4th MCU row's interval
        broken[i] ^= 0x5A
    r = decode(bytes(broken), "robust")
    # coefficients, not pixels: fancy upsampling lets chroma bleed one pixel row across MCU rows
    y, cy = r.coefficients[0], clean.coefficients[0]
    assert not np.array_equal(y[6:8], cy[6:8])  # MCU row 3 (Y block rows 6-7) is damaged
    assert np.array_equal(y[8:], cy[8:]) and np.array_equal(y[:6], cy[:6])  # every other interval exact
    for c in (1, 2):
        assert np.array_equal(r.coefficients[c][4:], clean.coefficients[c][4:])


def test_out_of_sequence_restart_marker_jumps_to_the_mcu_it_implies() -> None:
    data = encode_jpeg(photo_like(128, 64, seed=9), restart_marker_rows=1)
    layout = parse_layout(data)
    rst = [i for i in range(layout.scan_start, len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    broken = bytearray(data)
    broken[rst[0] + 1] = 0x00  # RST0 destroyed: the next marker (RST1) says MCU row 2 starts
    clean = decode(data, "strict")
    r = decode(bytes(broken), "robust")
    assert np.array_equal(r.coefficients[0][4:], clean.coefficients[0][4:])  # MCU rows 2.. exact
    assert r.scans[0].decoded.reshape(4, -1)[1].sum() == 0  # row 1's marker was lost: its MCUs are missing
    with pytest.raises(CorruptJpeg):
        decode(bytes(broken), "strict")


def test_a_spurious_marker_ahead_of_its_place_does_not_push_later_intervals_down() -> None:
    """Garbage that forms RST7 inside interval 2, and interval 4's own marker garbled away. Taken
    marker by marker, RST7 would start interval 8 and every later marker would land 8 intervals
    too far (the last ones past the end, dropped); assigned all at once, each real marker keeps
    its interval."""
    from acir_core.jpeg.restarts import assign_restarts

    data = encode_jpeg(photo_like(256, 320, seed=10), restart_marker_rows=1)  # 20 MCU rows
    layout = parse_layout(data)
    rst = [i for i in range(layout.scan_start, len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    assert len(rst) == 19
    broken = bytearray(data)
    broken[rst[3] + 1] = 0x00  # the marker that starts interval 4 is lost
    mid = (rst[1] + rst[2]) // 2  # in interval 2: a garbled stretch that happens to hold FF D7
    broken[mid : mid + 2] = b"\xff\xd7"
    clean = decode(data, "strict")
    r = decode(bytes(broken), "robust")
    y, cy = r.coefficients[0], clean.coefficients[0]
    assert np.array_equal(y[10:], cy[10:])  # intervals 5-19 (Y block rows 10-39) exactly in place
    assert np.array_equal(y[:4], cy[:4])
    # the assignment itself: intact, and with a lost marker and a spurious one
    assert assign_restarts(np.arange(19) % 8, np.arange(1, 20) * 100, 20, 2000).tolist() == list(range(1, 20))
    nums = [0, 1, 7, 2, 4, 5, 6, 7, 0]  # intervals 1, 2, spurious, 3, (4 lost), 5, 6, 7, 8, 9
    pos = [100, 200, 250, 300, 500, 600, 700, 800, 900]
    assert assign_restarts(np.array(nums), np.array(pos), 10, 1000).tolist() == [1, 2, -1, 3, 5, 6, 7, 8, 9]


def test_missing_mcus_at_the_end_are_mid_grey_and_flagged(big_photo_jpeg) -> None:
    cut = big_photo_jpeg[: len(big_photo_jpeg) * 6 // 10]
    r = decode(cut, "robust")
    assert 0.2 < r.missing.mean() < 0.6
    assert r.missing[-1] and not r.missing[0]
    assert np.all(r.rgb[-8:] == 128)
    with pytest.raises(CorruptJpeg, match="ended early"):
        decode(cut, "strict")


def test_a_fake_eoi_inside_the_scan_does_not_end_it(big_photo_jpeg) -> None:
    layout = parse_layout(big_photo_jpeg)
    mid = (layout.scan_start + len(big_photo_jpeg)) // 2
    broken = big_photo_jpeg[:mid] + b"\xff\xd9" + big_photo_jpeg[mid + 2 :]
    r = decode(broken, "robust")
    assert r.missing.mean() < 0.01 and r.scans[0].damaged_markers.size >= 1
    clean = decode(big_photo_jpeg)
    tail_ac = r.coefficients[0][-4:, :, 1:]  # AC survive DC drift: the data after the fake EOI was decoded
    assert np.mean(np.all(tail_ac == clean.coefficients[0][-4:, :, 1:], axis=2)) > 0.3


def test_rendering_edited_coefficients_changes_only_that_block(photo_jpeg) -> None:
    r = decode(photo_jpeg)
    assert np.array_equal(r.rerender(), r.rgb)
    y = r.coefficients[0].copy()
    y[4, 10, 0] += 20
    out = r.rerender((y,) + r.coefficients[1:])
    changed = np.argwhere(np.any(out != r.rgb, axis=2))
    assert changed.size and changed[:, 0].min() >= 32 and changed[:, 0].max() < 40
    assert changed[:, 1].min() >= 80 and changed[:, 1].max() < 88


@pytest.mark.parametrize("layout", [((2, 2), (1, 1), (1, 1)), ((2, 1), (1, 1), (1, 1)), ((1, 2), (1, 1), (1, 1)),
                                    ((4, 1), (1, 1), (1, 1)), ((1, 1), (1, 1), (1, 1)), ((2, 2),), "separate"],
                         ids=str)
def test_first_scan_cell_from_the_header_is_the_cell_sca_marks(layout) -> None:
    from acir_core.jpeg.tables import first_scan_cell
    from acir_core.jpeg.tables import scan_cell

    im = photo_like(70, 44, seed=3)
    if layout == "separate":
        data = encode(im, ((2, 2), (1, 1), (1, 1)), separate_scans=True)
    else:
        data = encode(im[..., 0] if len(layout) == 1 else im, layout)
    r = decode(data)
    assert first_scan_cell(data) == scan_cell(r.frame, r.scans[0].components)


def test_colour_conversion_equals_libjpegs_tables_for_every_input() -> None:
    """All 2^24 (Y, Cb, Cr) against jdcolor.c's build_ycc_rgb_table, written out here as libjpeg
    does: the conversion computes the table entries inline and must not round any one otherwise."""
    from acir_core.jpeg.color import ycc_to_rgb

    def fix(x: float) -> int:
        return int(x * 65536 + 0.5)

    x = np.arange(256, dtype=np.int64) - 128
    cr_r, cb_b = (fix(1.402) * x + 32768) >> 16, (fix(1.772) * x + 32768) >> 16
    cr_g, cb_g = -fix(0.71414) * x, -fix(0.34414) * x + 32768
    cbcr = np.arange(65536)
    cb, cr = (cbcr >> 8).astype(np.uint8), (cbcr & 255).astype(np.uint8)
    y = np.broadcast_to(np.arange(256, dtype=np.uint8), (65536, 256))
    ours = np.empty((65536, 256, 3), np.uint8)
    ycc_to_rgb(np.ascontiguousarray(y), np.repeat(cb[:, None], 256, 1), np.repeat(cr[:, None], 256, 1), ours)
    yy = y.astype(np.int64)
    ref = (yy + cr_r[cr][:, None], yy + ((cb_g[cb] + cr_g[cr]) >> 16)[:, None], yy + cb_b[cb][:, None])
    for c in range(3):
        assert np.array_equal(ours[..., c], np.clip(ref[c], 0, 255)), "RGB"[c]


@pytest.mark.parametrize("layout", ["420", "422", "444", "grey", "grey-2x2", "rgb"] + list(LAYOUTS), ids=str)
@pytest.mark.parametrize("size", [(67, 45), (40, 16), (9, 70)], ids=str)
def test_rendering_only_the_changed_mcu_rows_equals_a_full_render(layout, size) -> None:
    """Rows changed at the top, the bottom, alone and in stretches: the bands (with their context
    rows for upsampling) give exactly the pixels of a whole new render."""
    from acir_core.jpeg.render import SamplePlanes, render, render_rows, rows_redone

    im = photo_like(*size, seed=8)
    pil = {"420": 2, "422": 1, "444": 0}
    if layout in pil:
        data = encode_jpeg(im, subsampling=pil[layout])
    elif layout.startswith("grey"):
        data = encode(im[..., 0], ((2, 2),) if layout == "grey-2x2" else ((1, 1),))
    elif layout == "rgb":
        data = encode(im, ((1, 1),) * 3, color="rgb")
    else:
        data = encode(im, LAYOUTS[layout])
    r = decode(data)
    frame = r.frame
    n_rows = -(-frame.height // (8 * frame.max_v))
    rng = np.random.default_rng(size[0])
    kept = SamplePlanes.empty(r.coefficients)  # blocks' samples kept across all the renders below
    assert np.array_equal(render(frame, r.coefficients, r.qtables, kept), r.rgb)
    patterns = [np.arange(n_rows) == 0, np.arange(n_rows) == n_rows - 1, np.arange(n_rows) % 3 == 1,
                rng.random(n_rows) < 0.5, np.ones(n_rows, bool)]
    for changed in patterns:
        coefs = [c.copy() for c in r.coefficients]
        for ci, c in enumerate(coefs):
            v = frame.components[ci].v if len(coefs) > 1 else frame.max_v
            for row in np.flatnonzero(changed):
                c[row * v: (row + 1) * v, :, 0] += np.int16(rng.integers(-40, 40))
                c[row * v: (row + 1) * v, :, 1] += np.int16(rng.integers(-9, 9))
        full = render(frame, tuple(coefs), r.qtables)
        assert np.array_equal(render_rows(frame, tuple(coefs), r.qtables, r.rgb, changed), full)
        mine = r.rgb.copy()
        assert render_rows(frame, tuple(coefs), r.qtables, mine, changed, in_place=True) is mine
        assert np.array_equal(mine, full)
        # reusing the samples of unchanged blocks (each pattern edits the original coefficients
        # afresh, so blocks change and change back) gives the same pixels
        assert np.array_equal(render_rows(frame, tuple(coefs), r.qtables, r.rgb, changed, planes=kept), full)
        moved = np.any(full != r.rgb, axis=(1, 2))  # every pixel row that changed is reported
        assert not (moved & ~rows_redone(frame, changed)).any()


# --------------------------------------------------------------------------- refused input

def _patched(data: bytes, marker: int, offset_in_payload: int, value: bytes) -> bytes:
    seg = next(s for s in parse_layout(data).segments if s.marker == marker)
    at = seg.payload_start + offset_in_payload
    return data[:at] + value + data[at + len(value):]


def test_unsupported_variants_name_themselves(photo_rgb, photo_jpeg) -> None:
    arith = bytearray(photo_jpeg)
    sof = next(s for s in parse_layout(photo_jpeg).segments if s.marker == 0xC0)
    arith[sof.offset + 1] = 0xC9
    with pytest.raises(UnsupportedJpeg, match="arithmetic"):
        decode(bytes(arith))
    with pytest.raises(UnsupportedJpeg, match="12-bit"):
        decode(_patched(photo_jpeg, 0xC0, 0, b"\x0c"))
    cmyk = io.BytesIO()
    Image.fromarray(photo_rgb).convert("CMYK").save(cmyk, "JPEG")
    with pytest.raises(UnsupportedJpeg, match="CMYK"):
        decode(cmyk.getvalue())


def test_absurd_dimensions_hit_the_pixel_limit(photo_jpeg) -> None:
    huge = _patched(photo_jpeg, 0xC0, 1, struct.pack(">HH", 65535, 65535))
    with pytest.raises(ImageTooLarge, match="exceeds the limit"):
        decode(huge, source="bomb.jpg")
    with pytest.raises(ImageTooLarge):
        decode(photo_jpeg, max_pixels=1000)


def test_damaged_headers_give_corrupt_header_with_offset(photo_jpeg) -> None:
    dht = next(s for s in parse_layout(photo_jpeg).segments if s.marker == 0xC4)
    too_many = bytearray(photo_jpeg)
    too_many[dht.payload_start + 1 : dht.payload_start + 17] = bytes([255] * 16)
    with pytest.raises(CorruptHeader, match="DHT") as info:
        decode(bytes(too_many))
    assert info.value.offset == dht.offset
    no_dht = photo_jpeg[: dht.offset] + photo_jpeg[dht.end :]
    with pytest.raises(CorruptHeader, match="Huffman table .* missing"):
        decode(no_dht)
    dqt = next(s for s in parse_layout(photo_jpeg).segments if s.marker == 0xDB)
    with pytest.raises(CorruptHeader, match="quantisation table .* missing"):
        decode(photo_jpeg[: dqt.offset] + photo_jpeg[dqt.end :])
    sof = next(s for s in parse_layout(photo_jpeg).segments if s.marker == 0xC0)
    with pytest.raises(CorruptHeader, match="SOS before SOF|no SOF"):
        decode(photo_jpeg[: sof.offset] + photo_jpeg[sof.end :])


def test_fuzzed_files_never_crash_the_decoder_with_bounds_checks_on(tmp_path) -> None:
    """Thousands of mutated files in a fresh process compiled with numba bounds checking: an
    out-of-bounds access would raise IndexError there instead of reading past a buffer."""
    from conftest import run_fuzzer

    run_fuzzer("fuzz_decoder.py", 4000, 7, tmp_path)
