"""The small preview picture that cameras embed in a JPEG's header: read it, write it, imitate it.

Why it matters: the thumbnail lives in the first sector(s) of the file, far from most bit errors,
and it carries the colours and layout of the whole photo. The restoration stages use it to fix
colour casts and fill blocks that cannot be decoded.

Reading never trusts the file: offsets and lengths are checked against the bytes present, and
any problem gives ``None`` plus a logged reason, never an exception or an out-of-bounds read.
"""
from __future__ import annotations

import io
import logging
import struct
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from acir_core.errors import AcirError, InvalidParameter
from acir_core.jpeg.segments import iter_header_segments, parse_layout

log = logging.getLogger(__name__)

THUMBNAIL_MAX_SIDE = 160  # the paper's setting (and what most cameras write)
MAX_THUMBNAIL_PIXELS = 1 << 20  # a "thumbnail" bigger than a megapixel is a lie we do not decode
MAX_PREVIEW_PIXELS = 1 << 22  # previews up to 4 Mpx (2304x1728) are decoded and used
_APP0, _APP1 = 0xE0, 0xE1
_EXIF_ID = b"Exif\x00\x00"
_TAG_COMPRESSION, _TAG_JPEG_OFFSET, _TAG_JPEG_LENGTH = 0x0103, 0x0201, 0x0202
_TAG_SOFTWARE, _TAG_RES_UNIT, _TAG_XRES, _TAG_YRES = 0x0131, 0x0128, 0x011A, 0x011B
_TIFF_SHORT, _TIFF_LONG, _TIFF_ASCII, _TIFF_RATIONAL = 3, 4, 2, 5
_TIFF_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


@dataclass(frozen=True, eq=False, kw_only=True)
class Thumbnail:
    """An embedded thumbnail. ``rgb`` is H×W×3 uint8; ``kind`` says where it came from
    (``exif``, ``jfif``, ``jfxx-jpeg``, ``jfxx-palette``, ``jfxx-rgb``, ``preview``: a larger one in
    the header, ``preview-trailer``: one after the image); ``offset`` is the byte
    offset of the segment holding it; ``jpeg`` the thumbnail's own JPEG bytes when it is one."""

    rgb: np.ndarray = field(repr=False)
    kind: str
    offset: int
    jpeg: bytes | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


class _Skip(Exception):
    """A candidate thumbnail that cannot be used; the message is the logged reason."""


class _Absent(Exception):
    """The segment simply carries no thumbnail (a JFIF header without one): nothing to report."""


# --------------------------------------------------------------------------- reading

def _decode_jpeg_thumbnail(blob: bytes) -> np.ndarray:
    if len(blob) < 4 or blob[:2] != b"\xff\xd8":
        raise _Skip("thumbnail data is not a JPEG (no SOI)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(blob)) as im:
                if im.width * im.height > MAX_THUMBNAIL_PIXELS:
                    raise _Skip(f"thumbnail claims {im.width}x{im.height} pixels, too large to be one")
                im.draft("RGB", im.size)
                return np.asarray(im.convert("RGB"))
    except _Skip:
        raise
    except Exception as exc:  # Pillow raises many types on broken data; all mean "unusable"
        raise _Skip(f"thumbnail JPEG does not decode ({type(exc).__name__}: {exc})") from None


def _rgb_pixels(raw: bytes, width: int, height: int) -> np.ndarray:
    need = 3 * width * height
    if width == 0 or height == 0:
        raise _Skip("thumbnail has zero size")
    if len(raw) < need:
        raise _Skip(f"thumbnail needs {need} bytes of RGB data, segment holds {len(raw)}")
    return np.frombuffer(raw[:need], dtype=np.uint8).reshape(height, width, 3).copy()


def _from_jfif(payload: bytes) -> tuple[np.ndarray, str, bytes | None]:
    # "JFIF\0", version(2), units(1), Xdensity(2), Ydensity(2), Xthumb(1), Ythumb(1), RGB...
    if len(payload) < 14:
        raise _Skip("JFIF segment too short")
    w, h = payload[12], payload[13]
    if w == 0 or h == 0:
        raise _Absent()
    return _rgb_pixels(payload[14:], w, h), "jfif", None


def _from_jfxx(payload: bytes) -> tuple[np.ndarray, str, bytes | None]:
    # "JFXX\0", extension code(1), then per code (JFIF 1.02 §B.2)
    if len(payload) < 6:
        raise _Skip("JFXX segment too short")
    code, body = payload[5], payload[6:]
    if code == 0x10:
        return _decode_jpeg_thumbnail(body), "jfxx-jpeg", bytes(body)
    if len(body) < 2:
        raise _Skip("JFXX thumbnail header too short")
    w, h, pixels = body[0], body[1], body[2:]
    if code == 0x11:
        if w == 0 or h == 0:
            raise _Skip("JFXX palette thumbnail has zero size")
        if len(pixels) < 768 + w * h:
            raise _Skip(f"JFXX palette thumbnail needs {768 + w * h} bytes, segment holds {len(pixels)}")
        palette = np.frombuffer(pixels[:768], dtype=np.uint8).reshape(256, 3)
        index = np.frombuffer(pixels[768 : 768 + w * h], dtype=np.uint8).reshape(h, w)
        return palette[index], "jfxx-palette", None
    if code == 0x13:
        return _rgb_pixels(pixels, w, h), "jfxx-rgb", None
    raise _Skip(f"unknown JFXX extension code 0x{code:02X}")


def _read_ifd(tiff: bytes, offset: int, order: str) -> tuple[dict[int, tuple[int, int, bytes]], int]:
    """Entries of the IFD at ``offset`` as {tag: (type, count, 4-byte value field)} and the next-IFD offset."""
    if offset < 8 or offset + 2 > len(tiff):
        raise _Skip(f"IFD offset {offset} outside the {len(tiff)}-byte EXIF block")
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    end = offset + 2 + 12 * count
    if end + 4 > len(tiff):
        raise _Skip(f"IFD at {offset} with {count} entries runs past the EXIF block")
    entries = {}
    for i in range(count):
        tag, typ, n = struct.unpack_from(order + "HHI", tiff, offset + 2 + 12 * i)
        entries[tag] = (typ, n, tiff[offset + 10 + 12 * i : offset + 14 + 12 * i])
    (next_ifd,) = struct.unpack_from(order + "I", tiff, end)
    return entries, next_ifd


def _ifd_int(entries: dict, tag: int, order: str) -> int | None:
    if tag not in entries:
        return None
    typ, n, raw = entries[tag]
    if n != 1 or typ not in (_TIFF_SHORT, _TIFF_LONG):
        raise _Skip(f"EXIF tag 0x{tag:04X} has type {typ} count {n}, expected one SHORT or LONG")
    return struct.unpack_from(order + ("H" if typ == _TIFF_SHORT else "I"), raw)[0]


def _exif_tiff(payload: bytes) -> tuple[bytes, str]:
    if not payload.startswith(_EXIF_ID):
        raise _Skip("APP1 segment is not EXIF")
    tiff = payload[len(_EXIF_ID):]
    if len(tiff) < 8 or tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        raise _Skip("EXIF block has no valid TIFF header")
    return tiff, "<" if tiff[:2] == b"II" else ">"


def _from_exif(payload: bytes) -> tuple[np.ndarray, str, bytes | None]:
    tiff, order = _exif_tiff(payload)
    (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
    _, ifd1 = _read_ifd(tiff, ifd0, order)
    if ifd1 == 0:
        raise _Skip("EXIF block has no IFD1 (no thumbnail)")
    entries, _ = _read_ifd(tiff, ifd1, order)
    start = _ifd_int(entries, _TAG_JPEG_OFFSET, order)
    length = _ifd_int(entries, _TAG_JPEG_LENGTH, order)
    if start is None or length is None:
        compression = _ifd_int(entries, _TAG_COMPRESSION, order)
        raise _Skip(f"EXIF IFD1 has no JPEG thumbnail (compression={compression})")
    if length == 0 or start + length > len(tiff):
        raise _Skip(f"EXIF thumbnail at {start}+{length} lies outside the {len(tiff)}-byte EXIF block")
    blob = bytes(tiff[start : start + length])
    return _decode_jpeg_thumbnail(blob), "exif", blob


_READERS = {  # (marker, identifier) -> reader; EXIF first: it is what cameras write
    (_APP1, b"Exif\x00"): _from_exif,
    (_APP0, b"JFXX\x00"): _from_jfxx,
    (_APP0, b"JFIF\x00"): _from_jfif,
}
_PREFERENCE = {"exif": 0, "jfxx-jpeg": 1, "jfxx-rgb": 1, "jfxx-palette": 1, "jfif": 2}


def extract_thumbnail(data: bytes, source: str | None = None) -> Thumbnail | None:
    """The best embedded thumbnail in ``data`` (EXIF IFD1, then JFXX, then JFIF), or ``None``.

    Works on damaged files: segments before the first damaged one are still searched.
    """
    name = source or "<bytes>"
    found: list[Thumbnail] = []
    try:
        for seg in iter_header_segments(data, source):
            payload = seg.payload(data)
            reader = _READERS.get((seg.marker, payload[:5]))
            if reader is None:
                continue
            try:
                rgb, kind, blob = reader(payload)
            except _Absent:
                continue
            except (_Skip, struct.error) as why:
                log.info("%s: %s thumbnail at byte %d skipped: %s", name, seg.name, seg.offset, why)
                continue
            found.append(Thumbnail(rgb=rgb, kind=kind, offset=seg.offset, jpeg=blob))
    except AcirError as exc:
        log.info("%s: header walk stopped, thumbnails searched only before it: %s", name, exc.reason)
    if not found:
        log.info("%s: no usable embedded thumbnail", name)
        return None
    return min(found, key=lambda t: _PREFERENCE[t.kind])


def _preview_at(data: bytes, start: int, end: int, main: tuple[int, int], intact) -> Thumbnail | None:
    """A JPEG preview starting at ``start`` (ending before ``end``) if it is smaller than the photo
    (``main``: width, height), has its aspect (either way round) and ``intact`` (a check on its
    bytes) passes; the header is read first, so only a plausible preview is decoded."""
    sos = data.find(b"\xff\xda", start, end)
    eoi = data.find(b"\xff\xd9", sos, end) if sos >= 0 else -1
    if eoi < 0:
        return None
    blob = data[start:eoi + 2]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(blob)) as im:
                w, h = im.size
                if im.format != "JPEG" or w * h > MAX_PREVIEW_PIXELS or w * h * 4 > main[0] * main[1] or min(w, h) < 32:
                    return None
                ratio = (w / h) / (main[0] / main[1])
                if not (0.85 < ratio < 1.18 or 0.85 < ratio * (main[0] / main[1]) ** 2 < 1.18):
                    return None
                if not intact(blob):
                    return None
                rgb = np.asarray(im.convert("RGB"))
    except Exception:  # broken or truncated: not a preview we can use
        return None
    return Thumbnail(rgb=rgb, kind="preview", offset=start, jpeg=None)


def embedded_previews(data: bytes, width: int, height: int, source: str | None = None,
                      scan_start: int | None = None) -> list[Thumbnail]:
    """Larger previews cameras hide in a file: JPEGs inside the header's segments (maker notes,
    Photoshop resources: 256-640 px) and after the main image (MPF second images, phones'
    1280-px previews). Each is used only if our decoder finds it intact (one after the image lies
    in the damaged region; some cameras store a preview cut short). ``scan_start``: where the
    image data starts when the header cannot say (a lost header: what survived of it is searched,
    the EXIF thumbnail included). Never raises."""
    from acir_core.jpeg.decoder import decode  # here: reading a thumbnail needs no decoder kernels

    if scan_start is None:
        try:
            scan_start = parse_layout(data, source).scan_start
        except AcirError:
            return []

    def intact(blob: bytes) -> bool:  # a preview cut short (some cameras store half of one) is no use
        try:
            return decode(blob, "robust").clean
        except AcirError:
            return False

    found = []
    i = data.find(b"\xff\xd8\xff", 1)
    while 0 <= i < scan_start:
        t = _preview_at(data, i, scan_start, (width, height), intact)
        if t is not None:
            found.append(t)
        i = data.find(b"\xff\xd8\xff", i + 3)

    i = data.find(b"\xff\xd8\xff", scan_start)
    tries = 0
    while i >= 0 and tries < 8:  # garbage can fake a start or two; a real file has one or two
        tries += 1
        t = _preview_at(data, i, len(data), (width, height), intact)
        if t is not None:
            found.append(replace(t, kind="preview-trailer"))
        i = data.find(b"\xff\xd8\xff", i + 3)
    return found


TRAILER_STEP_LIMIT = 16.0  # levels a preview after the image may depart row by row from the header's pictures


def best_thumbnail(data: bytes, width: int, height: int, source: str | None = None) -> Thumbnail | None:
    """The most detailed picture of the photo the file carries besides itself: the largest of
    the EXIF/JFIF thumbnail and the previews (:func:`embedded_previews`). A preview stored after
    the image lies in the photo's damaged bytes, where an error its decoder reads silently leaves
    every later block's level off (a phone's 1280-px preview, its lower fifth 60 levels too
    bright, once pulled the photo's lower fifth with it): one whose rows depart from the largest
    picture in the header by more than ``TRAILER_STEP_LIMIT`` levels
    (:func:`acir_core.thumbframe.level_steps`) is left out."""
    from acir_core.thumbframe import level_steps  # the framing helpers; nothing compiled is needed to import

    header = [t for t in [extract_thumbnail(data, source)] if t is not None]
    previews = embedded_previews(data, width, height, source)
    header += [p for p in previews if p.kind != "preview-trailer"]
    reference = max(header, key=lambda t: t.rgb.shape[0] * t.rgb.shape[1]) if header else None
    options = list(header)
    for p in previews:
        if p.kind != "preview-trailer":
            continue
        if reference is not None:
            try:
                step = level_steps(p.rgb, reference.rgb, width / max(height, 1))
            except Exception:  # noqa: BLE001 - a check that cannot be made leaves the preview as it was
                step = 0.0
            if step > TRAILER_STEP_LIMIT:
                log.info("%s: the %dx%d preview after the image is left out: its rows depart %.0f levels from the "
                         "header's %dx%d picture (damaged)", source or "<bytes>", *p.size, step, *reference.size)
                continue
        options.append(p)
    if not options:
        return None
    return max(options, key=lambda t: (t.rgb.shape[0] * t.rgb.shape[1], -t.offset))


# --------------------------------------------------------------------------- making one

def thumbnail_size(width: int, height: int, max_side: int = THUMBNAIL_MAX_SIDE) -> tuple[int, int]:
    """(w, h) with the longer side ``max_side`` and the aspect ratio kept (rounded, at least 1)."""
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def synthetic_thumbnail(rgb: np.ndarray, max_side: int = THUMBNAIL_MAX_SIDE) -> np.ndarray:
    """The paper's thumbnail: bicubic downsampling (Pillow BICUBIC, antialiased) to ``max_side``."""
    if max_side < 1:
        raise InvalidParameter(f"thumbnail side must be at least 1 pixel, got {max_side}")
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb, "RGB")
    return np.asarray(im.resize(thumbnail_size(w, h, max_side), Image.Resampling.BICUBIC))


def camera_thumbnail(rgb: np.ndarray, seed: int = 0) -> bytes:
    """A thumbnail as cameras write them, as JPEG bytes: a fixed 4:3 frame (160×120, or 120×160
    for portrait; now and then 320×240 as some phones) with black bars where the photo's aspect
    differs, a cheaper scaler than Pillow's bicubic, the camera's own tone, saturation and
    sharpening, and its own JPEG quality and subsampling, all drawn from ``seed``. Training and
    judging on these is what makes the restoration hold on real files (issue 22)."""
    rng = np.random.default_rng(seed)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    side = int(rng.choice([160, 160, 160, 160, 320]))
    fw, fh = (side, side * 3 // 4) if w >= h else (side * 3 // 4, side)
    scale = min(fw / w, fh / h)
    cw, ch = max(1, min(fw, round(w * scale))), max(1, min(fh, round(h * scale)))
    method = [Image.Resampling.BILINEAR, Image.Resampling.BOX, Image.Resampling.BICUBIC][int(rng.integers(3))]
    small = np.asarray(Image.fromarray(rgb, "RGB").resize((cw, ch), method), np.float32) / 255.0
    gamma, contrast = rng.uniform(0.85, 1.15), rng.uniform(0.9, 1.12)
    small = np.clip((small ** gamma - 0.5) * contrast + 0.5 + rng.uniform(-0.03, 0.03, 3), 0, 1)
    grey = small.mean(axis=2, keepdims=True)
    small = np.clip(grey + (small - grey) * rng.uniform(0.85, 1.25), 0, 1)
    im = Image.fromarray(np.round(small * 255).astype(np.uint8), "RGB")
    amount = int(rng.integers(0, 120))
    if amount:
        from PIL import ImageFilter

        im = im.filter(ImageFilter.UnsharpMask(radius=float(rng.uniform(0.6, 1.5)), percent=amount, threshold=0))
    frame = Image.new("RGB", (fw, fh), (0, 0, 0))
    frame.paste(im, ((fw - cw) // 2, (fh - ch) // 2))
    quality, subsampling = int(rng.integers(70, 96)), int(rng.choice([1, 2]))
    while True:  # what an EXIF segment holds (64 KiB with the IFDs): cameras lower the quality too
        buf = io.BytesIO()
        frame.save(buf, "JPEG", quality=quality, subsampling=subsampling, optimize=False)
        if buf.tell() <= 60_000 or quality <= 30:
            return buf.getvalue()
        quality -= 10


def _tiff_ifd(entries: list[tuple[int, int, int, bytes]], at: int, next_ifd: int, order: str) -> bytes:
    """Serialise one IFD placed at offset ``at``: entries are (tag, type, count, value bytes);
    values longer than 4 bytes go into a data area right after the IFD."""
    entries = sorted(entries)
    data_at = at + 2 + 12 * len(entries) + 4
    table, extra = bytearray(struct.pack(order + "H", len(entries))), bytearray()
    for tag, typ, count, value in entries:
        if len(value) <= 4:
            field_bytes = value.ljust(4, b"\x00")
        else:
            field_bytes = struct.pack(order + "I", data_at + len(extra))
            extra += value + (b"\x00" if len(value) % 2 else b"")
        table += struct.pack(order + "HHI", tag, typ, count) + field_bytes
    table += struct.pack(order + "I", next_ifd)
    return bytes(table + extra)


def _exif_with_ifd1(existing_tiff: bytes | None, thumb_jpeg: bytes) -> bytes:
    """An EXIF APP1 payload: the existing IFD0 (and what it points to) kept, IFD1 + thumbnail appended."""
    if existing_tiff is None:
        order = "<"
        software = b"acir\x00"
        ifd0 = _tiff_ifd([(_TAG_SOFTWARE, _TIFF_ASCII, len(software), software)], 8, 0, order)
        tiff = bytearray(b"II*\x00" + struct.pack("<I", 8) + ifd0)
        next_ptr_at = 8 + 2 + 12
    else:
        tiff = bytearray(existing_tiff)
        order = "<" if tiff[:2] == b"II" else ">"
        (ifd0_at,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, ifd0_at)
        next_ptr_at = ifd0_at + 2 + 12 * count
    if len(tiff) % 2:
        tiff += b"\x00"
    ifd1_at = len(tiff)
    short = lambda v: struct.pack(order + "H", v)  # noqa: E731
    long_ = lambda v: struct.pack(order + "I", v)  # noqa: E731
    rational = struct.pack(order + "II", 72, 1)
    entries = [
        (_TAG_COMPRESSION, _TIFF_SHORT, 1, short(6)),  # 6 = old-style JPEG: what IFD1 thumbnails use
        (_TAG_XRES, _TIFF_RATIONAL, 1, rational),
        (_TAG_YRES, _TIFF_RATIONAL, 1, rational),
        (_TAG_RES_UNIT, _TIFF_SHORT, 1, short(2)),
        (_TAG_JPEG_OFFSET, _TIFF_LONG, 1, long_(0)),  # patched below, once the IFD size is known
        (_TAG_JPEG_LENGTH, _TIFF_LONG, 1, long_(len(thumb_jpeg))),
    ]
    probe = _tiff_ifd(entries, ifd1_at, 0, order)
    thumb_at = ifd1_at + len(probe)
    entries[4] = (_TAG_JPEG_OFFSET, _TIFF_LONG, 1, long_(thumb_at))
    tiff += _tiff_ifd(entries, ifd1_at, 0, order) + thumb_jpeg
    struct.pack_into(order + "I", tiff, next_ptr_at, ifd1_at)
    return _EXIF_ID + bytes(tiff)


def with_thumbnail(jpeg_bytes: bytes, max_side: int = THUMBNAIL_MAX_SIDE, quality: int = 90,
                   source: str | None = None, thumbnail_jpeg: bytes | None = None) -> bytes:
    """A copy of ``jpeg_bytes`` with an EXIF APP1 holding a baseline-JPEG thumbnail.

    The thumbnail is :func:`synthetic_thumbnail` of the decoded image, or ``thumbnail_jpeg`` as
    given (e.g. :func:`camera_thumbnail`). An existing EXIF block's
    IFD0 (camera metadata) is kept and its old thumbnail replaced; every other byte of the file,
    the entropy-coded scan included, is copied unchanged. The APP1 goes right after SOI, or after
    a JFIF APP0 when there is one (JFIF wants APP0 first).
    """
    segments = list(iter_header_segments(jpeg_bytes, source))
    thumb = None
    if thumbnail_jpeg is None:
        try:
            with Image.open(io.BytesIO(jpeg_bytes)) as im:
                rgb = np.asarray(im.convert("RGB"))
        except Exception as exc:
            raise InvalidParameter(f"cannot decode the image to make a thumbnail ({exc})", source=source) from None
        thumb = Image.fromarray(synthetic_thumbnail(rgb, max_side))
    existing = None
    exif_segments = [s for s in segments if s.marker == _APP1 and s.payload(jpeg_bytes).startswith(_EXIF_ID)]
    if exif_segments:
        try:
            existing = _strip_ifd1(_exif_tiff(exif_segments[0].payload(jpeg_bytes))[0])
        except _Skip as why:  # unreadable camera EXIF: replaced by a fresh block rather than kept broken
            log.info("%s: existing EXIF block dropped: %s", source or "<bytes>", why)
            existing = None
    payload = b""
    for q in (quality, 75, 60, 45):
        if thumbnail_jpeg is not None:
            payload = _exif_with_ifd1(existing, thumbnail_jpeg)
            if len(payload) + 2 <= 0xFFFF:
                break
            raise InvalidParameter("the thumbnail JPEG does not fit a 64 KiB EXIF segment", source=source)
        buf = io.BytesIO()
        thumb.save(buf, "JPEG", quality=q, subsampling=2, optimize=False, progressive=False)
        payload = _exif_with_ifd1(existing, buf.getvalue())
        if len(payload) + 2 <= 0xFFFF:
            break
    else:
        raise InvalidParameter(f"EXIF block with a {max_side}-px thumbnail exceeds the 64 KiB segment limit",
                               source=source)
    insert_at = 2
    if segments and segments[0].marker == _APP0 and segments[0].payload(jpeg_bytes)[:5] == b"JFIF\x00":
        insert_at = segments[0].end
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    out = bytearray(jpeg_bytes[:insert_at]) + app1
    cursor = insert_at
    for seg in exif_segments:  # drop the old EXIF segment(s); keep all other bytes as they are
        out += jpeg_bytes[cursor : seg.offset]
        cursor = seg.end
    out += jpeg_bytes[cursor:]
    return bytes(out)


def _strip_ifd1(tiff: bytes) -> bytes:
    """The TIFF block with IFD0's next-IFD pointer cleared, so an old thumbnail is no longer linked.

    The old IFD1 bytes stay in place: other IFDs may point past them, and cutting blindly could
    break camera metadata we promised to keep.
    """
    order = "<" if tiff[:2] == b"II" else ">"
    out = bytearray(tiff)
    try:
        (ifd0_at,) = struct.unpack_from(order + "I", out, 4)
        (count,) = struct.unpack_from(order + "H", out, ifd0_at)
        struct.pack_into(order + "I", out, ifd0_at + 2 + 12 * count, 0)
    except struct.error:
        raise _Skip("existing EXIF IFD0 is truncated") from None
    return bytes(out)
