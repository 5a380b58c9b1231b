"""Embedded thumbnails: every format cameras write, and every way a header can lie."""
from __future__ import annotations

import io
import logging
import re
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import ExifTags, Image

from acir_core.errors import InvalidParameter
from acir_core.jpeg.segments import parse_layout
from acir_core.metrics import psnr
from acir_core.thumbnail import (camera_thumbnail, extract_thumbnail, synthetic_thumbnail, thumbnail_size,
                                 with_thumbnail)
from conftest import encode_jpeg, photo_like


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def insert_after_soi(jpeg: bytes, *segments: bytes) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def exif_payload(order: str, thumb: bytes, *, offset_fix: int = 0, length_fix: int = 0) -> bytes:
    """A minimal EXIF block: IFD0 with one entry, IFD1 pointing at ``thumb`` (optionally lying)."""
    o = "<" if order == "II" else ">"
    head = (b"II*\x00" if order == "II" else b"MM\x00*") + struct.pack(o + "I", 8)
    ifd0 = struct.pack(o + "H", 1) + struct.pack(o + "HHIHH", 0x0112, 3, 1, 1, 0) + struct.pack(o + "I", 26)
    ifd1_len = 2 + 12 * 2 + 4
    thumb_at = 26 + ifd1_len
    ifd1 = (struct.pack(o + "H", 2) + struct.pack(o + "HHII", 0x0201, 4, 1, thumb_at + offset_fix)
            + struct.pack(o + "HHII", 0x0202, 4, 1, len(thumb) + length_fix) + struct.pack(o + "I", 0))
    return b"Exif\x00\x00" + head + ifd0 + ifd1 + thumb


@pytest.fixture(scope="module")
def small_thumb_jpeg() -> bytes:
    return encode_jpeg(photo_like(64, 48, seed=9), quality=90)


def test_embedded_thumbnail_round_trips_at_the_papers_160_px(photo_jpeg, photo_rgb) -> None:
    out = with_thumbnail(photo_jpeg)
    t = extract_thumbnail(out, "x.jpg")
    assert t is not None and t.kind == "exif" and t.size == (160, 80)
    assert psnr(t.rgb, synthetic_thumbnail(np.asarray(Image.open(io.BytesIO(photo_jpeg)).convert("RGB")))) > 30


def test_embedding_keeps_the_image_data_byte_for_byte(photo_jpeg) -> None:
    out = with_thumbnail(photo_jpeg)
    old, new = parse_layout(photo_jpeg), parse_layout(out)
    assert out[new.scan_start:] == photo_jpeg[old.scan_start:]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))), np.asarray(Image.open(io.BytesIO(photo_jpeg))))
    assert new.segments[0].name == "APP0" and new.segments[1].name == "APP1"  # JFIF stays first


def test_pillow_reads_our_exif_thumbnail(photo_jpeg) -> None:
    out = with_thumbnail(photo_jpeg, max_side=100)
    exif = Image.open(io.BytesIO(out)).getexif()
    ifd1 = exif.get_ifd(ExifTags.IFD.IFD1)
    assert ifd1[0x0103] == 6 and ifd1[0x0202] > 0
    tiff = out[parse_layout(out).segments[1].payload_start + 6:]
    blob = tiff[ifd1[0x0201] : ifd1[0x0201] + ifd1[0x0202]]
    assert Image.open(io.BytesIO(blob)).size == (100, 50)


def test_existing_camera_exif_is_kept_and_its_thumbnail_replaced(photo_rgb) -> None:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "ACME", "Model 7"
    buf = io.BytesIO()
    Image.fromarray(photo_rgb).save(buf, "JPEG", quality=75, exif=exif)
    once = with_thumbnail(buf.getvalue(), max_side=64)
    twice = with_thumbnail(once, max_side=120)
    kept = Image.open(io.BytesIO(twice)).getexif()
    assert kept[0x010F] == "ACME" and kept[0x0110] == "Model 7"
    assert extract_thumbnail(twice).size == (120, 60)
    assert sum(1 for s in parse_layout(twice).segments if s.name == "APP1") == 1


@pytest.mark.parametrize("order", ["II", "MM"])
def test_exif_thumbnail_in_both_byte_orders(photo_jpeg, small_thumb_jpeg, order) -> None:
    data = insert_after_soi(photo_jpeg, segment(0xE1, exif_payload(order, small_thumb_jpeg)))
    t = extract_thumbnail(data)
    assert t is not None and t.kind == "exif" and t.size == (64, 48) and t.jpeg == small_thumb_jpeg


def test_jfif_rgb_thumbnail_pixels_are_exact(photo_jpeg) -> None:
    pixels = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(3, 4, 3)
    app0 = b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01" + bytes([4, 3]) + pixels.tobytes()
    data = photo_jpeg[:2] + segment(0xE0, app0) + photo_jpeg[2 + 2 + 16:]  # replace Pillow's APP0
    t = extract_thumbnail(data)
    assert t.kind == "jfif" and np.array_equal(t.rgb, pixels)


def test_jfxx_thumbnails_jpeg_palette_and_rgb(photo_jpeg, small_thumb_jpeg) -> None:
    t = extract_thumbnail(insert_after_soi(photo_jpeg, segment(0xE0, b"JFXX\x00\x10" + small_thumb_jpeg)))
    assert t.kind == "jfxx-jpeg" and t.size == (64, 48)
    palette = np.zeros((256, 3), np.uint8)
    palette[1], palette[2] = (255, 0, 0), (0, 0, 255)
    index = np.array([[1, 2, 1], [2, 1, 2]], np.uint8)
    t = extract_thumbnail(insert_after_soi(photo_jpeg, segment(0xE0, b"JFXX\x00\x11" + bytes([3, 2])
                                                               + palette.tobytes() + index.tobytes())))
    assert t.kind == "jfxx-palette" and np.array_equal(t.rgb, palette[index])
    rgb = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    t = extract_thumbnail(insert_after_soi(photo_jpeg, segment(0xE0, b"JFXX\x00\x13\x02\x02" + rgb.tobytes())))
    assert t.kind == "jfxx-rgb" and np.array_equal(t.rgb, rgb)


def test_exif_is_preferred_over_jfif(photo_jpeg, small_thumb_jpeg) -> None:
    data = with_thumbnail(insert_after_soi(photo_jpeg, segment(0xE0, b"JFXX\x00\x13\x01\x01abc")))
    assert extract_thumbnail(data).kind == "exif"


@pytest.mark.parametrize("offset_fix,length_fix,reason", [
    (10_000, 0, "outside"), (0, 10_000, "outside"), (-40, 0, "does not decode|not a JPEG"),
])
def test_lying_exif_offsets_give_none_and_a_logged_reason(photo_jpeg, small_thumb_jpeg, caplog, offset_fix,
                                                          length_fix, reason) -> None:
    data = insert_after_soi(photo_jpeg, segment(0xE1, exif_payload("II", small_thumb_jpeg, offset_fix=offset_fix,
                                                                    length_fix=length_fix)))
    with caplog.at_level(logging.INFO, logger="acir_core.thumbnail"):
        t = extract_thumbnail(data, "liar.jpg")
    assert t is None or t.kind == "jfif"
    assert any("liar.jpg" in r.getMessage() for r in caplog.records)
    assert any(re.search(reason, r.getMessage()) for r in caplog.records)


def test_truncated_thumbnail_data_gives_none(photo_jpeg, small_thumb_jpeg) -> None:
    cut = small_thumb_jpeg[: len(small_thumb_jpeg) // 3]
    assert extract_thumbnail(insert_after_soi(photo_jpeg, segment(0xE1, exif_payload("MM", cut)))) is None
    short_rgb = segment(0xE0, b"JFXX\x00\x13\x10\x10" + bytes(20))
    assert extract_thumbnail(insert_after_soi(photo_jpeg, short_rgb)) is None


def test_thumbnail_before_a_damaged_segment_is_still_found(photo_jpeg) -> None:
    good = with_thumbnail(photo_jpeg)
    layout = parse_layout(good)
    dqt = layout.find(0xDB)[0]
    broken = bytearray(good)
    broken[dqt.offset + 2 : dqt.offset + 4] = b"\xff\xf0"  # DQT now claims 65520 bytes
    assert extract_thumbnail(bytes(broken)).kind == "exif"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=12),
       cut=st.integers(0, 10_000))
def test_random_damage_to_the_header_never_raises(photo_jpeg, edits, cut) -> None:
    data = bytearray(with_thumbnail(photo_jpeg))
    header_end = parse_layout(bytes(data)).scan_start
    for pos, val in edits:
        data[pos % header_end] = val
    result = extract_thumbnail(bytes(data[: max(2, cut % len(data))]))
    assert result is None or (result.rgb.ndim == 3 and result.rgb.dtype == np.uint8)


def test_synthetic_thumbnail_size_follows_the_longer_side() -> None:
    assert thumbnail_size(2048, 1024) == (160, 80)
    assert thumbnail_size(1024, 2048) == (80, 160)
    assert thumbnail_size(4000, 3) == (160, 1)
    assert synthetic_thumbnail(np.zeros((1024, 2048, 3), np.uint8)).shape == (80, 160, 3)


def test_camera_thumbnail_is_a_letterboxed_4_3_jpeg_that_frames_back(photo_rgb) -> None:
    """A 2:1 photo gets black bars top and bottom in a 4:3 frame, and the engine's framing finds
    the picture inside them again; the same seed gives the same bytes, another seed another look."""
    from acir_core.thumbframe import content_box

    wide = np.concatenate([photo_rgb, photo_rgb[:, ::-1]], axis=1)  # twice as wide as high
    blobs = {camera_thumbnail(wide, seed) for seed in range(6)}
    assert len(blobs) == 6 and camera_thumbnail(wide, 3) == camera_thumbnail(wide, 3)
    for blob in blobs:
        im = Image.open(io.BytesIO(blob))
        assert im.format == "JPEG" and im.width * 3 == im.height * 4 and len(blob) <= 60_000
        thumb = np.asarray(im.convert("RGB"))
        top, bottom, left, right = content_box(thumb, 2.0)
        assert left == right == 0 and abs(top - im.height // 6) <= 2 and abs(bottom - im.height // 6) <= 2
    tall = np.ascontiguousarray(wide.transpose(1, 0, 2))
    assert Image.open(io.BytesIO(camera_thumbnail(tall, 0))).size in ((120, 160), (240, 320))


def test_given_thumbnail_jpeg_is_embedded_as_it_is(photo_jpeg, photo_rgb) -> None:
    blob = camera_thumbnail(photo_rgb, 5)
    out = with_thumbnail(photo_jpeg, thumbnail_jpeg=blob)
    found = extract_thumbnail(out)
    assert found is not None and found.jpeg == blob
    with pytest.raises(InvalidParameter, match="64 KiB"):
        with_thumbnail(photo_jpeg, thumbnail_jpeg=b"\xff\xd8" + bytes(70_000))
