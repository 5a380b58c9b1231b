"""JPEG header segments turned into decoder tables: frame, quantisation, Huffman, scans, restarts.

One small parser per segment type, dispatched through a table (as Pillow's JpegImagePlugin does).
Everything is validated here, so the numba kernels downstream can index without checks: a bad
header gives ``CorruptHeader`` (with the offset) or ``UnsupportedJpeg`` (naming the variant).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from acir_core.errors import CorruptHeader, ImageTooLarge, UnsupportedJpeg
from acir_core.jpeg.segments import Segment

DEFAULT_MAX_PIXELS = 200_000_000

# zigzag index -> natural (row-major) index, ITU T.81 Figure A.6
ZIGZAG = np.array([
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
    21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60,
    61, 54, 47, 55, 62, 63], dtype=np.int32)

_UNSUPPORTED_SOF = {
    0xC3: "lossless JPEG (SOF3)",
    0xC5: "differential sequential JPEG (SOF5)",
    0xC6: "differential progressive JPEG (SOF6)",
    0xC7: "differential lossless JPEG (SOF7)",
    0xC9: "arithmetic-coded JPEG (SOF9)",
    0xCA: "arithmetic-coded progressive JPEG (SOF10)",
    0xCB: "arithmetic-coded lossless JPEG (SOF11)",
    0xCD: "arithmetic-coded differential JPEG (SOF13)",
    0xCE: "arithmetic-coded differential progressive JPEG (SOF14)",
    0xCF: "arithmetic-coded differential lossless JPEG (SOF15)",
}
_PILLOW_HINT = ("acir's robust decoder handles baseline, extended sequential and progressive Huffman JPEG only; "
                "a clean file of this kind still opens with the standard decoder (Pillow)")


@dataclass(frozen=True)
class Component:
    """A colour component of the frame: id, sampling factors (h, v) and quantisation table slot."""

    id: int
    h: int
    v: int
    tq: int


@dataclass(frozen=True)
class Frame:
    """The SOF header. ``color`` is ``grey``, ``ycbcr`` or ``rgb`` (how libjpeg would interpret it)."""

    marker: int
    precision: int
    height: int
    width: int
    components: tuple[Component, ...]
    color: str = "ycbcr"

    @property
    def max_h(self) -> int:
        return max(c.h for c in self.components)

    @property
    def max_v(self) -> int:
        return max(c.v for c in self.components)

    @property
    def mcu_cols(self) -> int:
        return -(-self.width // (8 * self.max_h))

    @property
    def mcu_rows(self) -> int:
        return -(-self.height // (8 * self.max_v))

    def comp_size(self, ci: int) -> tuple[int, int]:
        """(width, height) in samples of component ``ci`` (libjpeg's downsampled_width/height)."""
        c = self.components[ci]
        return -(-self.width * c.h // self.max_h), -(-self.height * c.v // self.max_v)

    def block_grid(self, ci: int) -> tuple[int, int]:
        """(block rows, block cols) allocated for component ``ci``: whole MCUs of the interleaved layout."""
        c = self.components[ci]
        if len(self.components) == 1:  # a lone component is never interleaved: MCU = one block
            w, h = self.comp_size(ci)
            return -(-h // 8), -(-w // 8)
        return self.mcu_rows * c.v, self.mcu_cols * c.h


@dataclass(frozen=True)
class ScanComponent:
    index: int  # into Frame.components
    td: int
    ta: int


@dataclass(frozen=True)
class Scan:
    """One SOS: its components and where its entropy-coded data starts in the file; for a
    progressive frame, its spectral band ``ss``..``se`` and bit positions ``ah``/``al``."""

    components: tuple[ScanComponent, ...]
    data_start: int
    restart_interval: int
    header_offset: int
    ss: int = 0
    se: int = 63
    ah: int = 0
    al: int = 0

    @property
    def kind(self) -> int:
        """0 DC first, 1 DC refinement, 2 AC first, 3 AC refinement (a progressive scan)."""
        return (0 if self.ss == 0 else 2) + (1 if self.ah else 0)


@dataclass(frozen=True, eq=False)
class HuffmanTable:
    """A decoding table. ``lookup`` maps every 16-bit window to ``(length << 8) | symbol``, or -1
    where no code of the table starts with those bits (a decoding failure)."""

    cls: int
    slot: int
    counts: tuple[int, ...]
    symbols: bytes
    lookup: np.ndarray = field(repr=False)


# the IJG (libjpeg) standard luminance quantiser, natural order: what its quality setting scales
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                      92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)


def ijg_quality(qtable: np.ndarray) -> float:
    """The IJG quality (1-100) whose scaled standard table a luminance quantiser (64 values,
    natural order) is nearest, by the median ratio: cameras use their own tables, so this says
    what a libjpeg quality setting would be, not what the camera was set to."""
    scale = float(np.median(np.asarray(qtable, np.float64).reshape(-1)[:64] / _IJG_LUMA)) * 100.0
    if scale <= 0:
        return 100.0
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(min(max(quality, 1.0), 100.0))


def build_huffman_lookup(counts: tuple[int, ...], symbols: bytes, where: str, offset: int) -> np.ndarray:
    """Canonical Huffman codes (T.81 Annex C) expanded into a 65536-entry window table (read-only:
    the same table recurs in every scan of a progressive file and in every file of a camera)."""
    try:
        return _lookup(counts, symbols)
    except _Overflow:
        raise CorruptHeader(f"{where}: Huffman code lengths overflow the code space", offset=offset) from None


class _Overflow(Exception):
    pass


@functools.lru_cache(maxsize=64)
def _lookup(counts: tuple[int, ...], symbols: bytes) -> np.ndarray:
    lookup = np.full(1 << 16, -1, dtype=np.int32)
    code, k = 0, 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            if code >= 1 << length:
                raise _Overflow
            lo = code << (16 - length)
            hi = (code + 1) << (16 - length)
            lookup[lo:hi] = (length << 8) | symbols[k]
            code += 1
            k += 1
        code <<= 1
    lookup.flags.writeable = False
    return lookup


@dataclass
class Tables:
    """Decoder state accumulated while walking segments: tables can change between scans."""

    qt: dict[int, np.ndarray] = field(default_factory=dict)  # slot -> natural-order int32[64]
    huff: dict[tuple[int, int], HuffmanTable] = field(default_factory=dict)  # (class, slot)
    restart_interval: int = 0
    frame: Frame | None = None
    jfif: bool = False
    adobe_transform: int | None = None


def _dqt(seg: Segment, payload: bytes, t: Tables) -> None:
    pos = 0
    while pos < len(payload):
        pq, tq = payload[pos] >> 4, payload[pos] & 15
        if pq > 1 or tq > 3:
            raise CorruptHeader(f"DQT: bad precision/slot byte 0x{payload[pos]:02X}", offset=seg.offset)
        n = 64 * (pq + 1)
        if pos + 1 + n > len(payload):
            raise CorruptHeader("DQT: table runs past the segment", offset=seg.offset)
        raw = np.frombuffer(payload[pos + 1 : pos + 1 + n], dtype=">u2" if pq else np.uint8).astype(np.int32)
        natural = np.zeros(64, np.int32)
        natural[ZIGZAG] = raw
        if np.any(natural == 0):
            raise CorruptHeader(f"DQT: table {tq} has a zero quantiser", offset=seg.offset)
        t.qt[tq] = natural
        pos += 1 + n


def _dht(seg: Segment, payload: bytes, t: Tables) -> None:
    pos = 0
    while pos < len(payload):
        if pos + 17 > len(payload):
            raise CorruptHeader("DHT: table header runs past the segment", offset=seg.offset)
        tc, th = payload[pos] >> 4, payload[pos] & 15
        if tc > 1 or th > 3:
            raise CorruptHeader(f"DHT: bad class/slot byte 0x{payload[pos]:02X}", offset=seg.offset)
        counts = tuple(payload[pos + 1 : pos + 17])
        total = sum(counts)
        if total > 256 or pos + 17 + total > len(payload):
            raise CorruptHeader(f"DHT: table with {total} symbols does not fit", offset=seg.offset)
        symbols = bytes(payload[pos + 17 : pos + 17 + total])
        lookup = build_huffman_lookup(counts, symbols, "DHT", seg.offset)
        t.huff[(tc, th)] = HuffmanTable(tc, th, counts, symbols, lookup)
        pos += 17 + total


def _dri(seg: Segment, payload: bytes, t: Tables) -> None:
    if len(payload) < 2:
        raise CorruptHeader("DRI: segment too short", offset=seg.offset)
    t.restart_interval = (payload[0] << 8) | payload[1]


def _app0(seg: Segment, payload: bytes, t: Tables) -> None:
    if payload[:5] == b"JFIF\x00":
        t.jfif = True


def _app14(seg: Segment, payload: bytes, t: Tables) -> None:
    if payload[:5] == b"Adobe" and len(payload) >= 12:
        t.adobe_transform = payload[11]


def _sof(seg: Segment, payload: bytes, t: Tables, max_pixels: int) -> None:
    if seg.marker in _UNSUPPORTED_SOF:
        raise UnsupportedJpeg(f"{_UNSUPPORTED_SOF[seg.marker]} is not supported: {_PILLOW_HINT}", offset=seg.offset)
    if t.frame is not None:
        raise CorruptHeader("a second SOF marker", offset=seg.offset)
    if len(payload) < 6:
        raise CorruptHeader("SOF: segment too short", offset=seg.offset)
    precision, height, width, nc = payload[0], (payload[1] << 8) | payload[2], (payload[3] << 8) | payload[4], payload[5]
    if precision != 8:
        raise UnsupportedJpeg(f"{precision}-bit samples are not supported (8-bit only): {_PILLOW_HINT}",
                              offset=seg.offset)
    if len(payload) < 6 + 3 * nc:
        raise CorruptHeader(f"SOF: {nc} components do not fit the segment", offset=seg.offset)
    if nc == 4:
        raise UnsupportedJpeg(f"4-component (CMYK/YCCK) JPEG is not supported: {_PILLOW_HINT}", offset=seg.offset)
    if nc not in (1, 3):
        raise UnsupportedJpeg(f"{nc}-component JPEG is not supported (1 or 3 components)", offset=seg.offset)
    if height == 0:
        raise UnsupportedJpeg("height defined by a DNL marker is not supported", offset=seg.offset)
    if width == 0:
        raise CorruptHeader("SOF: image width is 0", offset=seg.offset)
    if width * height > max_pixels:
        raise ImageTooLarge(f"{width}x{height} pixels exceeds the limit of {max_pixels:,}", offset=seg.offset)
    comps = []
    for i in range(nc):
        cid, hv, tq = payload[6 + 3 * i], payload[7 + 3 * i], payload[8 + 3 * i]
        h, v = hv >> 4, hv & 15
        if not (1 <= h <= 4 and 1 <= v <= 4) or tq > 3:
            raise CorruptHeader(f"SOF: component {cid} has sampling {h}x{v} / table {tq}", offset=seg.offset)
        if any(c.id == cid for c in comps):
            raise CorruptHeader(f"SOF: component id {cid} appears twice", offset=seg.offset)
        comps.append(Component(cid, h, v, tq))
    max_h, max_v = max(c.h for c in comps), max(c.v for c in comps)
    for c in comps:
        if max_h % c.h or max_v % c.v:
            raise UnsupportedJpeg(f"fractional sampling ratio {c.h}x{c.v} vs {max_h}x{max_v} is not supported",
                                  offset=seg.offset)
    t.frame = Frame(seg.marker, precision, height, width, tuple(comps))


def _sos(seg: Segment, payload: bytes, t: Tables) -> Scan:
    frame = t.frame
    if frame is None:
        raise CorruptHeader("SOS before SOF", offset=seg.offset)
    ns = payload[0] if payload else 0
    if not 1 <= ns <= 4 or len(payload) < 1 + 2 * ns + 3:
        raise CorruptHeader(f"SOS: {ns} components do not fit the segment", offset=seg.offset)
    ss, se, ahal = payload[1 + 2 * ns], payload[2 + 2 * ns], payload[3 + 2 * ns]
    ah, al = ahal >> 4, ahal & 15
    progressive = frame.marker == 0xC2
    if progressive:
        if (ss == 0 and se != 0) or (ss > 0 and (se < ss or se > 63 or ns != 1)) or al > 13 or (ah and ah != al + 1):
            raise CorruptHeader(f"SOS: progressive band {ss}-{se} with bits {ah}/{al} over {ns} components "
                                "is not a valid scan", offset=seg.offset)
    elif ss != 0 or se != 63 or ahal != 0:
        raise CorruptHeader(f"SOS: spectral selection {ss}-{se}/{ahal:02X} is not sequential", offset=seg.offset)
    comps = []
    for i in range(ns):
        cs, tables = payload[1 + 2 * i], payload[2 + 2 * i]
        idx = next((k for k, c in enumerate(frame.components) if c.id == cs), None)
        if idx is None:
            raise CorruptHeader(f"SOS: component id {cs} is not in the frame", offset=seg.offset)
        td, ta = tables >> 4, tables & 15
        needed = ((0, td), (1, ta)) if not progressive else ((0, td),) if ss == 0 and ah == 0 else \
            ((1, ta),) if ss > 0 else ()
        for cls, slot in needed:
            if (cls, slot) not in t.huff:
                raise CorruptHeader(f"SOS: {'DC' if cls == 0 else 'AC'} Huffman table {slot} is missing",
                                    offset=seg.offset)
        if frame.components[idx].tq not in t.qt:
            raise CorruptHeader(f"quantisation table {frame.components[idx].tq} is missing", offset=seg.offset)
        comps.append(ScanComponent(idx, td, ta))
    if ns > 1 and sum(frame.components[c.index].h * frame.components[c.index].v for c in comps) > 10:
        raise CorruptHeader("SOS: more than 10 blocks per MCU", offset=seg.offset)
    return Scan(tuple(comps), seg.end, t.restart_interval, seg.offset, ss, se, ah, al)


SEGMENT_PARSERS = {0xDB: _dqt, 0xC4: _dht, 0xDD: _dri, 0xE0: _app0, 0xEE: _app14}


def apply_segment(seg: Segment, data: bytes, t: Tables, max_pixels: int = DEFAULT_MAX_PIXELS) -> Scan | None:
    """Update ``t`` with one header segment; returns the Scan for an SOS."""
    payload = seg.payload(data)
    if seg.marker in (0xC0, 0xC1, 0xC2) or seg.marker in _UNSUPPORTED_SOF:
        _sof(seg, payload, t, max_pixels)
        return None
    if seg.marker == 0xDA:
        return _sos(seg, payload, t)
    if seg.marker == 0xCC:
        raise UnsupportedJpeg(f"arithmetic coding conditioning (DAC): {_PILLOW_HINT}", offset=seg.offset)
    parser = SEGMENT_PARSERS.get(seg.marker)
    if parser is not None:
        parser(seg, payload, t)
    return None


def color_space(frame: Frame, t: Tables) -> str:
    """How libjpeg interprets the components (jdapimin.c default_decompress_parms)."""
    if len(frame.components) == 1:
        return "grey"
    if t.jfif:
        return "ycbcr"
    if t.adobe_transform is not None:
        return "rgb" if t.adobe_transform == 0 else "ycbcr"
    ids = tuple(c.id for c in frame.components)
    if ids == (ord("R"), ord("G"), ord("B")):
        return "rgb"
    return "ycbcr"


def first_scan_cell(data: bytes, source: str | None = None) -> tuple[int, int]:
    """Pixels (height, width) one MCU of the file's first scan covers, from its header alone: the
    cell SCA marks damage in (an interleaved scan's MCU, or one block of a single component
    scaled to the frame). For callers that have an image and its mask but not the decode."""
    from acir_core.jpeg.segments import iter_header_segments

    t = Tables()
    scan = None
    for seg in iter_header_segments(data, source):
        scan = apply_segment(seg, data, t)
    if t.frame is None or scan is None:
        raise CorruptHeader("no frame or scan header", source=source)
    return scan_cell(t.frame, [c.index for c in scan.components])


def scan_cell(frame: Frame, components) -> tuple[int, int]:
    """Pixels (height, width) one MCU of a scan of these frame ``components`` (indices) covers:
    an interleaved scan's MCU, or one block of a single component scaled to the frame."""
    if len(components) > 1:
        return 8 * frame.max_v, 8 * frame.max_h
    c = frame.components[components[0]]
    return 8 * (frame.max_v // c.v), 8 * (frame.max_h // c.h)
