"""Walk a JPEG's header segments up to the first scan.

Everything that needs to know where things are in a JPEG file (bit errors only after the header,
thumbnails in APP0/APP1, the decoder's tables) starts here. The walker trusts nothing: every
length is checked against the bytes that are really there, and a damaged header gives an
:class:`~acir_core.errors.AcirError` with the offset, never an IndexError.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from acir_core.errors import BadInput, CorruptHeader, NotJpeg, TruncatedJpeg

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
RST0, RST7 = 0xD0, 0xD7
TEM = 0x01

# Marker byte -> name, as in ITU T.81 Table B.1. A table, not an if/elif chain.
MARKER_NAMES: dict[int, str] = {
    0xC0: "SOF0", 0xC1: "SOF1", 0xC2: "SOF2", 0xC3: "SOF3", 0xC4: "DHT", 0xC5: "SOF5", 0xC6: "SOF6",
    0xC7: "SOF7", 0xC8: "JPG", 0xC9: "SOF9", 0xCA: "SOF10", 0xCB: "SOF11", 0xCC: "DAC", 0xCD: "SOF13",
    0xCE: "SOF14", 0xCF: "SOF15", 0xD8: "SOI", 0xD9: "EOI", 0xDA: "SOS", 0xDB: "DQT", 0xDC: "DNL",
    0xDD: "DRI", 0xDE: "DHP", 0xDF: "EXP", 0xFE: "COM", 0x01: "TEM",
    **{0xD0 + i: f"RST{i}" for i in range(8)},
    **{0xE0 + i: f"APP{i}" for i in range(16)},
}
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def marker_name(marker: int) -> str:
    return MARKER_NAMES.get(marker, f"0xFF{marker:02X}")


@dataclass(frozen=True)
class Segment:
    """One marker segment. ``offset`` is the byte offset of its 0xFF; ``length`` is the value of
    the two length bytes (which count themselves), so the payload is ``length - 2`` bytes."""

    marker: int
    offset: int
    length: int

    @property
    def name(self) -> str:
        return marker_name(self.marker)

    @property
    def payload_start(self) -> int:
        return self.offset + 4

    @property
    def end(self) -> int:
        return self.offset + 2 + self.length

    def payload(self, data: bytes) -> bytes:
        return bytes(data[self.payload_start : self.end])


@dataclass(frozen=True)
class JpegLayout:
    """Where a JPEG's parts are: header segments, the first byte of entropy-coded data, the last EOI."""

    segments: tuple[Segment, ...]
    scan_start: int
    eoi_offset: int | None
    size: int

    def find(self, marker: int) -> list[Segment]:
        return [s for s in self.segments if s.marker == marker]

    @property
    def frame(self) -> Segment | None:
        for s in self.segments:
            if s.marker in SOF_MARKERS:
                return s
        return None


def _missing_header(data: bytes) -> str:
    """Why a file without SOI is refused: a JPEG whose first sectors were zeroed or lost (it still
    ends in EOI, or holds a JPEG header further in) is told apart from a file that is no JPEG."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    if zeros and data[zeros: zeros + 2] == b"\xff\xd8":
        return f"the JPEG starts at byte {zeros}, after zero bytes (the file is intact after them: strip them)"
    if zeros >= 512 and (data.rstrip(b"\x00").endswith(b"\xff\xd9") or b"\xff\xd8\xff" in data[zeros:]):
        return (f"JPEG header lost: the first {zeros} bytes are zeros (a failed read, zero-filled) and the "
                "image data after them has no header; restoring it needs a donor header from the same camera")
    if data[-2:] == b"\xff\xd9" or data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return ("JPEG header lost: no SOI marker at the start but the data ends in EOI (the first sectors "
                "were lost, or a carved fragment); restoring it needs a donor header from the same camera")
    return "not a JPEG file (no SOI marker 0xFFD8 at the start)"


def iter_header_segments(data: bytes, source: str | None = None, *, at: int | None = None) -> Iterator[Segment]:
    """Yield header segments from SOI up to and including the first SOS, checking each one.

    A generator, so that lenient readers (thumbnail extraction on a damaged file) can keep the
    segments before the first damaged one. Raises ``BadInput`` (empty), ``NotJpeg`` (no SOI),
    ``TruncatedJpeg`` (ends before the scan) or ``CorruptHeader`` (impossible lengths, stray
    markers), each naming ``source`` and the byte offset. ``at``: start at that offset, as if
    an SOI came just before it (the segments between two scans), without copying the rest.
    """
    n = len(data)
    if n == 0:
        raise BadInput("empty file", source=source)
    if at is None:
        if n < 2 or data[0] != 0xFF or data[1] != SOI:
            raise NotJpeg(_missing_header(data), source=source, offset=0)
        at = 2
    pos = at
    while True:
        if pos >= n:
            raise TruncatedJpeg("file ends inside the JPEG header, before the image data (no SOS)",
                                source=source, offset=n)
        if data[pos] != 0xFF:
            raise CorruptHeader(f"expected a marker, found byte 0x{data[pos]:02X}", source=source, offset=pos)
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker are legal (T.81 B.1.1.2)
            pos += 1
        if pos >= n:
            raise TruncatedJpeg("file ends inside the JPEG header", source=source, offset=n)
        marker = data[pos]
        marker_at = pos - 1
        pos += 1
        if marker == EOI:
            raise TruncatedJpeg("EOI marker before any image data (no SOS)", source=source, offset=marker_at)
        if marker in (SOI, TEM, 0x00) or RST0 <= marker <= RST7:
            raise CorruptHeader(f"marker {marker_name(marker)} is not allowed in the header",
                                source=source, offset=marker_at)
        if pos + 2 > n:
            raise TruncatedJpeg(f"file ends inside the length of segment {marker_name(marker)}",
                                source=source, offset=marker_at)
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2:
            raise CorruptHeader(f"segment {marker_name(marker)} has an impossible length {length}",
                                source=source, offset=marker_at)
        seg = Segment(marker, marker_at, length)
        if seg.end > n:
            raise TruncatedJpeg(f"segment {seg.name} of {length} bytes runs past the end of the file ({n} bytes)",
                                source=source, offset=marker_at)
        yield seg
        if marker == SOS:
            return
        pos = seg.end


def parse_layout(data: bytes, source: str | None = None) -> JpegLayout:
    """Parse the header of ``data`` up to and including the first SOS segment (errors as
    :func:`iter_header_segments`), and find the last EOI after it."""
    segments = tuple(iter_header_segments(data, source))
    scan_start = segments[-1].end
    eoi = data.rfind(b"\xff\xd9", scan_start)
    return JpegLayout(segments, scan_start, eoi if eoi >= 0 else None, len(data))


def frame_size(data: bytes, source: str | None = None) -> tuple[int, int]:
    """(width, height) that the photo's SOF declares, read without decoding; raises
    ``BadInput`` for a file whose header is unreadable or has no frame header."""
    frame = parse_layout(data, source).frame
    if frame is None:
        raise BadInput("no frame header (SOF) before the image data", source=source)
    p = frame.payload(data)
    if len(p) < 6:
        raise BadInput("frame header (SOF) too short", source=source, offset=frame.offset)
    return (p[3] << 8) | p[4], (p[1] << 8) | p[2]
