"""The repaired JPEG: the photo's header and corrected coefficients written back as a standard file."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from acir_cli.app import main
from acir_core.bitflip import corrupt
from acir_core.jpeg.decoder import decode
from acir_core.jpeg.encoder import HuffmanSpec, optimal_table
from acir_core.jpeg.rewrite import coded_image, made_up_grid, out_of_range, repaired_jpeg, write_jpeg
from acir_core.jpeg.segments import parse_layout
from acir_core.thumbnail import with_thumbnail
from acir_engine.photo import restore_photo
from conftest import encode_jpeg, photo_like
from jpeg_writer import encode


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _rewrite(data: bytes, region: np.ndarray | None = None):
    r = decode(data, "robust")
    coded = coded_image(data, r.frame, r.qtables, r.restart_intervals, r.coefficients)
    return r, repaired_jpeg(coded, r.rgb, np.zeros(r.rgb.shape[:2], bool) if region is None else region)


LAYOUTS = {
    "420": lambda rgb: encode_jpeg(rgb, quality=90, subsampling=2),
    "422": lambda rgb: encode_jpeg(rgb, quality=75, subsampling=1),
    "444-q100": lambda rgb: encode_jpeg(rgb, quality=100, subsampling=0),
    "411-restarts": lambda rgb: encode(rgb, sampling=((4, 1), (1, 1), (1, 1)), restart_interval=3),
    "440-separate-scans": lambda rgb: encode(rgb, sampling=((1, 2), (1, 1), (1, 1)), separate_scans=True),
    "grey-restarts": lambda rgb: encode(rgb[..., 1], restart_interval=5),
    "rgb-adobe": lambda rgb: encode(rgb, sampling=((1, 1), (1, 1), (1, 1)), color="rgb"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_repaired_jpeg_of_an_intact_photo_decodes_pixel_identical(layout):
    data = LAYOUTS[layout](photo_like(203, 117, seed=4))
    r, rep = _rewrite(data)
    assert rep.made_up_mcus == 0 and rep.clamped_blocks == 0
    assert np.array_equal(_pillow(rep.data), _pillow(data))
    again = decode(rep.data, "strict")
    for a, b in zip(again.coefficients, r.coefficients):
        assert np.array_equal(a, b)


def test_repaired_jpeg_keeps_the_restart_interval_and_the_header_segments():
    data = with_thumbnail(encode_jpeg(photo_like(256, 128, seed=2), quality=92, restart_marker_blocks=4))
    r, rep = _rewrite(data)
    assert decode(rep.data, "strict").restart_intervals == r.restart_intervals and r.restart_intervals[0] > 0
    kept = lambda d: [d[s.offset: s.end] for s in parse_layout(d).segments if 0xE0 <= s.marker <= 0xEF]  # noqa: E731
    assert kept(rep.data) == kept(data) and len(kept(data)) >= 2  # JFIF and the EXIF with its thumbnail


def test_made_up_mcus_are_transformed_from_the_restored_pixels():
    rgb = photo_like(160, 96, seed=7)
    data = encode_jpeg(rgb, quality=95, subsampling=2)
    region = np.zeros((96, 160), bool)
    region[20:50, 33:90] = True
    r, rep = _rewrite(data, region)
    grid = made_up_grid(r.frame, region)
    assert rep.made_up_mcus == int(grid.sum()) == 3 * 4
    target = np.full_like(r.rgb, (30, 140, 220))  # what the "fill" made
    r2 = decode(repaired_jpeg(coded_image(data, r.frame, r.qtables, r.restart_intervals, r.coefficients),
                              target, region).data, "strict")
    assert np.abs(r2.rgb[region].astype(int) - target[region]).max() <= 3
    y = r2.coefficients[0].reshape(grid.shape[0], 2, grid.shape[1], 2, 64).transpose(0, 2, 1, 3, 4)
    y0 = r.coefficients[0].reshape(grid.shape[0], 2, grid.shape[1], 2, 64).transpose(0, 2, 1, 3, 4)
    assert np.array_equal(y[~grid], y0[~grid]) and not np.array_equal(y[grid], y0[grid])


def test_values_a_baseline_stream_cannot_carry_are_clamped_and_counted():
    data = encode_jpeg(photo_like(64, 64, seed=1), quality=80, subsampling=0)
    r = decode(data, "strict")
    coefs = [c.copy() for c in r.coefficients]
    coefs[0][1, 1, 5] = 4000
    coefs[1][0, 0, 0] = -3000
    out, clamped = write_jpeg(r.frame, r.qtables, tuple(coefs))
    back = decode(out, "strict").coefficients
    assert clamped == 2 and back[0][1, 1, 5] == 1023 and back[1][0, 0, 0] == -1024


def test_blocks_no_photo_can_produce_are_made_up_so_every_decoder_agrees():
    data = encode_jpeg(photo_like(64, 64, seed=1), quality=80, subsampling=0)
    r = decode(data, "strict")
    coefs = [c.copy() for c in r.coefficients]
    coefs[0][1, 1, 5] = 4000  # garbage from damaged bits: samples far outside 0..255
    coefs[1][6, 2, 0] = -3000
    coded = coded_image(data, r.frame, r.qtables, r.restart_intervals, tuple(coefs))
    shown = r.rerender(tuple(coefs))
    rep = repaired_jpeg(coded, shown, np.zeros((64, 64), bool))
    assert rep.out_of_range_mcus == rep.made_up_mcus == 2 and rep.clamped_blocks == 0
    assert np.array_equal(_pillow(rep.data), decode(rep.data, "strict").rgb)
    back = decode(rep.data, "strict").coefficients
    assert np.array_equal(back[0][0], r.coefficients[0][0]) and back[0][1, 1, 5] != 4000


def _kraft(spec: HuffmanSpec) -> float:
    return sum(n * 2.0 ** -(i + 1) for i, n in enumerate(spec.counts))


@pytest.mark.parametrize("kind", ["fibonacci", "one", "flat"])
def test_optimal_tables_stay_within_16_bits_and_leave_the_all_ones_code_free(kind):
    freq = np.zeros(256, np.int64)
    if kind == "fibonacci":  # the frequencies that make the deepest Huffman tree: lengths must be folded
        a, b = 1, 1
        for s in range(40):
            freq[s] = a
            a, b = b, a + b
    elif kind == "one":
        freq[7] = 5
    else:
        freq[:] = 3
    spec = optimal_table(freq)
    assert len(spec.counts) == 16 and sum(spec.counts) == len(spec.symbols) == int((freq > 0).sum())
    assert _kraft(spec) < 1.0  # a code space is left over: no code is all ones
    code, size = spec.codes()
    assert size[freq > 0].min() >= 1 and size.max() <= 16


@pytest.fixture(scope="module")
def damaged():
    clean = with_thumbnail(encode_jpeg(photo_like(512, 256, seed=21)))
    return clean, corrupt(clean, ber=3e-4, seed=1).data


def test_repaired_jpeg_of_a_restored_photo_holds_the_corrected_coefficients(damaged):
    _, bad = damaged
    r = restore_photo(bad, source="bad.jpg", stage="sca")
    assert r.status == "restored" and r.region.any()
    rep = repaired_jpeg(r.coded, r.image, r.region)
    out = decode(rep.data, "strict")
    assert np.array_equal(_pillow(rep.data), out.rgb)  # a standard decoder shows what acir renders
    grid = made_up_grid(out.frame, r.region) | out_of_range(out.frame, out.qtables, r.coded.coefficients)
    assert 0 < rep.made_up_mcus == int(grid.sum()) < grid.size
    for ci, comp in enumerate(out.frame.components):
        got = out.coefficients[ci].reshape(grid.shape[0], comp.v, grid.shape[1], comp.h, 64)
        want = r.coded.coefficients[ci].reshape(got.shape)
        keep = ~grid[:, None, :, None]
        assert np.array_equal(np.where(keep[..., None], got, 0), np.where(keep[..., None], want, 0))
    diff = np.abs(out.rgb[r.region].astype(int) - r.image[r.region]).mean()
    assert diff < 4  # the made-up MCUs show the restored pixels, through the file's own quantisers


def test_cli_format_jpeg_writes_the_repaired_jpeg(damaged, tmp_path):
    clean, bad = damaged
    (tmp_path / "bad.jpg").write_bytes(bad)
    out = tmp_path / "out"
    main(["restore", str(tmp_path / "bad.jpg"), "--out", str(out), "--stage", "sca", "--format", "jpeg",
          "--no-previews"])
    rec = json.loads((out / "bad.jpg.json").read_text())
    assert rec["jpeg"]["huffman"] == "optimised" and 0 < rec["jpeg"]["made_up_mcus"] < rec["jpeg"]["mcus"]
    written = (out / "bad.jpg.restored.jpg").read_bytes()
    assert decode(written, "strict").clean
    exif = lambda d: [d[s.offset: s.end] for s in parse_layout(d).segments if s.marker == 0xE1]  # noqa: E731
    assert exif(written) == exif(clean)  # the EXIF (and its thumbnail) byte for byte
