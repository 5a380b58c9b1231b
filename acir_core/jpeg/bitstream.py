"""The entropy-coded bytes of a scan as a clean bit stream, and where the scan ends.

Within a scan, 0xFF is followed by 0x00 (a stuffed data byte) or by RST0-7 (a restart marker).
On damaged data anything else can follow: such a pair is kept as two data bytes, since the scan
only really ends where the file's structure says (the next scan's header chain, an EOI that padding
or another JPEG follows, or the last EOI).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numba import njit

from acir_core.errors import AcirError
from acir_core.jpeg.segments import iter_header_segments

PAD_BYTES = 8  # zero bytes after the data so the kernels may peek past the end


@njit(cache=True)
def _destuff(data, start, end, keep_rst, buf, src, rst_pos, rst_num, rst_off, bad_off):
    n = 0
    nr = 0
    nbad = 0
    i = start
    while i < end:
        b = data[i]
        if b == 0xFF and i + 1 < end:
            nxt = data[i + 1]
            if nxt == 0x00:
                buf[n] = 0xFF
                src[n] = i
                n += 1
                i += 2
                continue
            if 0xD0 <= nxt <= 0xD7 and not keep_rst:
                rst_pos[nr] = n
                rst_num[nr] = nxt - 0xD0
                rst_off[nr] = i
                nr += 1
                i += 2
                continue
            bad_off[nbad] = i  # not stuffing, not a restart: damage (or fill); kept as data
            nbad += 1
        buf[n] = b
        src[n] = i
        n += 1
        i += 1
    return n, nr, nbad


@dataclass(frozen=True, eq=False)
class ScanBits:
    """``buf``: destuffed bytes (+ zero padding); ``nbits``: bits of real data; ``src``: file offset
    of each destuffed byte; restart markers as (destuffed byte position, number 0-7, file offset);
    ``bad_markers``: file offsets of 0xFF pairs that are neither stuffing nor RST (damage)."""

    buf: np.ndarray
    nbits: int
    src: np.ndarray
    rst_pos: np.ndarray
    rst_num: np.ndarray
    rst_off: np.ndarray
    bad_markers: np.ndarray
    start: int
    end: int


def destuff(data: np.ndarray, start: int, end: int, restarts: bool = True) -> ScanBits:
    """Destuff ``data[start:end]``; with ``restarts=False`` (no DRI) an RST pair is damage, kept as data."""
    size = max(end - start, 0)
    buf = np.zeros(size + PAD_BYTES, np.uint8)
    src = np.zeros(size, np.int64)
    n_ff = int(np.count_nonzero(data[start:end] == 0xFF)) + 1  # every marker starts with one
    rst_pos = np.zeros(n_ff, np.int64)
    rst_num = np.zeros(n_ff, np.int64)
    rst_off = np.zeros(n_ff, np.int64)
    bad = np.zeros(n_ff, np.int64)
    n, nr, nbad = _destuff(data, start, end, not restarts, buf, src, rst_pos, rst_num, rst_off, bad)
    return ScanBits(buf, 8 * n, src[:n], rst_pos[:nr], rst_num[:nr], rst_off[:nr], bad[:nbad], start, end)


_NEXT_SEGMENT = re.compile(rb"\xff[\xc4\xdb\xdd\xda\xfe\xe0-\xef]")


def find_scan_end(data: bytes, start: int, accept=None) -> tuple[int, bool]:
    """Where the entropy-coded data starting at ``start`` ends, and whether another scan follows.

    With ``accept`` (a callable taking the offset and the segment chain, returning whether that
    chain is a real next scan), another scan follows only if, from some 0xFF, a chain of
    well-formed segments leads to an SOS that ``accept`` approves; a random 0xFF pair in damaged
    data practically never does. Otherwise (or with ``accept=None``: no further scan is possible)
    the scan runs to an EOI that padding or another JPEG follows (:func:`_appended_image`), else
    to the last EOI, or to the end of the file when there is none (truncated file).
    """
    for m in _NEXT_SEGMENT.finditer(data, start) if accept is not None else ():
        p = m.start()
        try:
            segs = list(iter_header_segments(data, at=p))
        except AcirError:
            continue
        if segs and segs[-1].marker == 0xDA and accept(p, segs):
            return p, True
    appended = _appended_image(data, start)
    if appended is not None:
        return appended, False
    eoi = data.rfind(b"\xff\xd9", start)
    return (eoi if eoi >= 0 else len(data)), False


_APPENDED = re.compile(rb"\xff\xd9[\x00\xff]*\xff\xd8\xff")
_PADDED = re.compile(rb"\xff\xd9\x00{32}")


def _appended_image(data: bytes, start: int) -> int | None:
    """The EOI after ``start`` that padding or another JPEG follows, if any: 32 zero bytes or
    more (a file padded to a fixed size), or an SOI (after zeros or fill bytes) that opens a
    well-formed header. Entropy-coded data holds 0xFF 0xD9 only where damage made it, and zeros
    only where a read failed, so either one there is the photo's end; cameras store previews and
    padding after it, inside what the last EOI would take for the scan, and read as scan data
    they held the MCUs a hole lost (docs/decoder.md)."""
    padded = _PADDED.search(data, start)
    for m in _APPENDED.finditer(data, start, padded.start() if padded else len(data)):
        soi = m.end() - 3
        try:
            segs = list(iter_header_segments(data, at=soi + 2))
        except AcirError:
            continue
        if len(segs) >= 2:
            return m.start()
    return padded.start() if padded else None
