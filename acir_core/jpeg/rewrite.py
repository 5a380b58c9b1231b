"""The repaired JPEG: the photo's own header and coefficients, written back as a standard file.

Users want their JPEG back (photo libraries read its EXIF dates, GPS and thumbnail), not a
re-encode. So the file keeps the original APPn and COM segments byte for byte, the frame and
quantisation tables as decoded, and every block's coefficients as acir decoded and corrected
them; only the MCUs acir made up (the filled region) are transformed from the restored pixels
and quantised with the file's own tables. One interleaved baseline scan with optimised Huffman
tables carries it all, with the photo's restart interval. A standard decoder shows exactly
what acir renders from those coefficients.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from acir_core.jpeg.encoder import AC_LIMIT, DC_LIMIT, HuffmanSpec, encode_scan
from acir_core.jpeg.fdct import mcu_coefficients
from acir_core.jpeg.samplerange import samples_past_range
from acir_core.jpeg.segments import parse_layout
from acir_core.jpeg.tables import ZIGZAG, Frame

KEPT_MARKERS = frozenset(range(0xE0, 0xF0)) | {0xFE}  # APPn (EXIF, ICC, XMP, MPF, JFIF, Adobe) and COM
SAMPLE_MARGIN = 128  # levels a real block's samples may overshoot 0..255 (quantisation ringing)


@dataclass(frozen=True, kw_only=True, eq=False)
class CodedImage:
    """What a repaired JPEG is written from: the header segments kept as they are (raw bytes),
    the frame, the quantisation table of each component (natural order), the restart interval
    (MCUs, 0 for none) and the coefficient planes (as :class:`DecodeResult` holds them)."""

    header: bytes = field(repr=False)
    frame: Frame
    qtables: tuple[np.ndarray, ...] = field(repr=False)
    restart_interval: int
    coefficients: tuple[np.ndarray, ...] = field(repr=False)


@dataclass(frozen=True, kw_only=True, eq=False)
class RepairedJpeg:
    """The file's bytes; MCUs made up (transformed from restored pixels) of all MCUs, of which
    ``out_of_range_mcus`` held blocks no 8-bit image can produce (garbage decoded from damaged
    bits, which decoders render differently); blocks whose values were clamped into the
    baseline range (none when written through :func:`repaired_jpeg`)."""

    data: bytes = field(repr=False)
    made_up_mcus: int
    out_of_range_mcus: int
    mcus: int
    clamped_blocks: int

    def to_record(self) -> dict:
        return {"bytes": len(self.data), "made_up_mcus": self.made_up_mcus, "out_of_range_mcus": self.out_of_range_mcus,
                "mcus": self.mcus, "clamped_blocks": self.clamped_blocks, "huffman": "optimised"}


def kept_header(data: bytes) -> bytes:
    """The APPn and COM segments of ``data``'s header, in their order, byte for byte."""
    layout = parse_layout(data)
    return b"".join(data[s.offset: s.end] for s in layout.segments if s.marker in KEPT_MARKERS)


def coded_image(data: bytes, frame: Frame, qtables: tuple[np.ndarray, ...], restart_intervals: tuple[int, ...],
                coefficients: tuple[np.ndarray, ...]) -> CodedImage:
    """A :class:`CodedImage` of a decoded photo: its header from ``data``; the restart interval
    kept when the photo is one scan over all components (another layout's interval counts
    other MCUs)."""
    restart = restart_intervals[0] if len(restart_intervals) == 1 else 0
    return CodedImage(header=kept_header(data), frame=frame, qtables=tuple(qtables), restart_interval=restart,
                      coefficients=tuple(coefficients))


def made_up_grid(frame: Frame, region: np.ndarray) -> np.ndarray:
    """(MCU rows, MCU cols) bool: the MCUs (8×8 blocks for a grey photo) any pixel of ``region`` touches."""
    ch, cw = (8, 8) if len(frame.components) == 1 else (8 * frame.max_v, 8 * frame.max_h)
    rows, cols = -(-frame.height // ch), -(-frame.width // cw)
    pad = np.zeros((rows * ch, cols * cw), bool)
    pad[: region.shape[0], : region.shape[1]] = region
    return pad.reshape(rows, ch, cols, cw).any(axis=(1, 3))


def out_of_range(frame: Frame, qtables: tuple[np.ndarray, ...], coefficients: tuple[np.ndarray, ...]) -> np.ndarray:
    """(MCU rows, MCU cols) bool: MCUs holding a block whose samples overshoot 0..255 by more than
    ``SAMPLE_MARGIN`` levels, or with values a baseline stream cannot carry. No photo gives such
    a block; decoders' inverse DCTs (libjpeg-turbo's SIMD ones in 16-bit lanes) disagree on it,
    so it is made up rather than written."""
    rows, cols = made_up_grid(frame, np.zeros((0, 0), bool)).shape
    grid = np.zeros((rows, cols), bool)
    for ci, coefs in enumerate(coefficients):
        v, h = (1, 1) if len(frame.components) == 1 else (frame.components[ci].v, frame.components[ci].h)
        flat = coefs.reshape(-1, 64)
        bad = samples_past_range(coefs[:, None, :, None], qtables[ci], SAMPLE_MARGIN).reshape(-1)
        bad |= (flat[:, 0] < DC_LIMIT[0]) | (flat[:, 0] > DC_LIMIT[1]) | \
            (np.abs(flat[:, 1:].astype(np.int32)).max(axis=1) > AC_LIMIT)
        by, bx = np.nonzero(bad.reshape(coefs.shape[:2]))
        grid[np.minimum(by // v, rows - 1), np.minimum(bx // h, cols - 1)] = True
    return grid


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _dqt(slots: list[np.ndarray]) -> bytes:
    out = b""
    for slot, table in enumerate(slots):
        zz = np.asarray(table, np.int64).reshape(64)[ZIGZAG]
        if zz.max() > 255:
            out += _segment(0xDB, bytes([0x10 | slot]) + zz.astype(">u2").tobytes())
        else:
            out += _segment(0xDB, bytes([slot]) + zz.astype(np.uint8).tobytes())
    return out


def _dht(cls: int, slot: int, spec: HuffmanSpec) -> bytes:
    return _segment(0xC4, bytes([(cls << 4) | slot]) + bytes(spec.counts) + spec.symbols)


def write_jpeg(frame: Frame, qtables: tuple[np.ndarray, ...], coefficients: tuple[np.ndarray, ...], *,
               header: bytes = b"", restart_interval: int = 0) -> tuple[bytes, int]:
    """A baseline JPEG of these coefficient planes: SOI, ``header`` (APPn/COM segments), DQT,
    SOF, DRI, DHT, one SOS over all components, the scan, EOI. Returns the bytes and the number
    of blocks clamped into the baseline range."""
    slots: list[np.ndarray] = []
    tq = []
    for q in qtables:
        q = np.asarray(q).reshape(64)
        k = next((i for i, s in enumerate(slots) if np.array_equal(s, q)), None)
        if k is None:
            slots.append(q)
            k = len(slots) - 1
        tq.append(k)
    scan = encode_scan(frame, coefficients, restart_interval)
    sof = struct.pack(">BHHB", 8, frame.height, frame.width, len(frame.components)) + b"".join(
        bytes([c.id, (c.h << 4) | c.v, tq[i]]) for i, c in enumerate(frame.components))
    marker = frame.marker if frame.marker in (0xC0, 0xC1) else 0xC0
    if any(np.asarray(s).max() > 255 for s in slots):
        marker = 0xC1  # 16-bit quantisation tables are extended sequential
    dht = b"".join(_dht(0, s, t) for s, t in enumerate(scan.dc)) + b"".join(_dht(1, s, t) for s, t in enumerate(scan.ac))
    sos = bytes([len(frame.components)]) + b"".join(
        bytes([c.id, (scan.slots[i] << 4) | scan.slots[i]]) for i, c in enumerate(frame.components)) + b"\x00\x3f\x00"
    dri = _segment(0xDD, struct.pack(">H", restart_interval)) if restart_interval else b""
    data = (b"\xff\xd8" + header + _dqt(slots) + _segment(marker, sof) + dri + dht + _segment(0xDA, sos)
            + scan.data + b"\xff\xd9")
    return data, scan.clamped_blocks


def repaired_jpeg(coded: CodedImage, rgb: np.ndarray, region: np.ndarray) -> RepairedJpeg:
    """The repaired file: ``coded``'s coefficients, except the MCUs ``region`` (H×W bool, the
    pixels acir made up) touches and those :func:`out_of_range`, which are transformed from
    ``rgb`` (the restored photo)."""
    frame = coded.frame
    wild = out_of_range(frame, coded.qtables, coded.coefficients)
    grid = made_up_grid(frame, region) | wild
    mcus = np.argwhere(grid)
    coefs = [c.copy() for c in coded.coefficients]
    if len(mcus):
        made = mcu_coefficients(rgb, frame, coded.qtables, mcus)
        for ci, comp in enumerate(frame.components):
            v, h = (1, 1) if len(frame.components) == 1 else (comp.v, comp.h)
            for dy in range(v):
                for dx in range(h):
                    coefs[ci][mcus[:, 0] * v + dy, mcus[:, 1] * h + dx] = made[ci][:, dy, dx]
    data, clamped = write_jpeg(frame, coded.qtables, tuple(coefs), header=coded.header,
                               restart_interval=coded.restart_interval)
    return RepairedJpeg(data=data, made_up_mcus=int(len(mcus)), out_of_range_mcus=int(wild.sum()), mcus=int(grid.size),
                        clamped_blocks=clamped)
