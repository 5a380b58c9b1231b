"""What survives of a JPEG whose first bytes were lost: its header segments and its scan.

Camera files carry tens of KiB of EXIF (maker notes, a thumbnail) before the tables, so losing a
few sectors often leaves DQT, DHT, SOF and the SOS whole. Finding them means telling the photo's
own SOS from an embedded thumbnail's, a maker-note preview's and a preview stored after the photo
(some cameras disguise its SOI), and telling entropy-coded data from other bytes: in scan data
every 0xFF is followed by 0x00 or a restart marker. :mod:`acir_core.graft` builds on this.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

TABLE_MARKERS = frozenset({0xDB, 0xC4, 0xC0, 0xC1, 0xDD})  # DQT, DHT, SOF0, SOF1, DRI
CHAIN_MARKERS = TABLE_MARKERS | frozenset(range(0xE0, 0xF0)) | {0xFE, 0xC2}
HEADER_SEARCH = 1 << 20  # bytes after the damage searched for surviving header segments
PREVIEW_STEP = 1 << 13  # windows in which scan data before a candidate SOS is measured
MAIN_SCAN_SHARE = 0.2  # the photo's scan runs over at least this share of the bytes after its SOS
SCAN_WINDOW = 1 << 16  # bytes checked for the scan-data signature


def camera_of(data: bytes) -> str:
    """EXIF make and model of ``data`` (a JPEG, or an APP1 segment wrapped in SOI/EOI), or ""."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
        return " ".join(str(exif.get(t, "")).strip("\x00 ") for t in (0x010F, 0x0110)).strip()
    except Exception:  # noqa: BLE001 - no or broken EXIF: camera unknown
        return ""


@dataclass(frozen=True, kw_only=True)
class Salvaged:
    """What survives of a damaged header. ``damage_end``: first byte after the leading zeros;
    ``segments``: table segments (DQT/DHT/SOF/DRI, raw) that chain to ``sos``, the scan's SOS
    segment, whose data starts at ``scan_start`` (both None when the SOS did not survive);
    ``names``: the surviving segments' names in order; ``extras``: the surviving APPn and COM
    segments (EXIF, ICC), kept in the grafted file."""

    damage_end: int
    segments: tuple[bytes, ...] = field(repr=False)
    extras: tuple[bytes, ...] = field(default=(), repr=False)
    sos: bytes | None = field(repr=False)
    scan_start: int | None
    names: tuple[str, ...]
    camera: str = ""


def _valid_sos(data: bytes, p: int) -> bool:
    if p + 4 > len(data):
        return False
    length = (data[p + 2] << 8) | data[p + 3]
    ns = data[p + 4] if p + 4 < len(data) else 0
    if ns not in (1, 3) or length != 6 + 2 * ns or p + 2 + length > len(data):
        return False
    tail = data[p + 5 + 2 * ns: p + 8 + 2 * ns]
    return tail == b"\x00\x3f\x00"


def _chain_from(data: bytes, q: int, target: int) -> list[int] | None:
    """Segment offsets walking from ``q`` by their lengths that land exactly on ``target``."""
    out = []
    while q < target:
        if data[q] != 0xFF or data[q + 1] not in CHAIN_MARKERS or q + 4 > target:
            return None
        out.append(q)
        q += 2 + ((data[q + 2] << 8) | data[q + 3])
    return out if q == target else None


def _after_an_image(data: bytes, damage_end: int, p: int, own: int) -> bool:
    """Is the SOS at ``p`` (whose scan runs ``own`` bytes) another image's, one that follows the
    photo's scan data (a preview or second image after its EOI)? Then scan data longer than its
    own ends in an EOI before it. A preview inside the header (maker notes) is the other way round:
    the photo's scan after it is the longer."""
    eoi = data.rfind(b"\xff\xd9", damage_end, p)
    run, step = 0, PREVIEW_STEP
    while eoi >= 0 and run <= own:
        lo = eoi - run - step
        if lo < damage_end or not looks_like_scan(data[lo: lo + step], 0):
            break
        run += step
    return run > own


def salvage(data: bytes) -> Salvaged:
    """Find the scan's SOS among the surviving bytes (the valid SOS whose data runs longest and
    over at least ``MAIN_SCAN_SHARE`` of what follows it: an embedded thumbnail's scan ends
    long before the file does) and the longest chain of header segments leading to it."""
    damage_end = len(data) - len(data.lstrip(b"\x00"))
    stop = min(len(data), damage_end + HEADER_SEARCH)
    best, best_len = None, 0
    p = data.find(b"\xff\xda", damage_end, stop)
    while p >= 0:
        if _valid_sos(data, p):
            start = p + 2 + ((data[p + 2] << 8) | data[p + 3])
            eoi = data.find(b"\xff\xd9", start)
            n = (eoi if eoi >= 0 else len(data)) - start
            if n > best_len and n >= MAIN_SCAN_SHARE * (len(data) - start) and not _after_an_image(data, damage_end,
                                                                                                  p, n):
                best, best_len = p, n
        p = data.find(b"\xff\xda", p + 2, stop)
    if best is None:
        return Salvaged(damage_end=damage_end, segments=(), sos=None, scan_start=None, names=())
    chain: list[int] = []
    q = data.find(b"\xff", damage_end, best)
    while 0 <= q < best:
        found = _chain_from(data, q, best)
        if found is not None:
            chain = found
            break
        q = data.find(b"\xff", q + 1, best)
    segs = [(data[q + 1], bytes(data[q: q + 2 + ((data[q + 2] << 8) | data[q + 3])])) for q in chain]
    names = tuple(_NAMES.get(m, f"APP{m - 0xE0}" if 0xE0 <= m <= 0xEF else "COM") for m, _ in segs)
    camera = ""
    for m, seg in segs:
        if m == 0xE1 and seg[4:10] == b"Exif\x00\x00":
            camera = camera_of(b"\xff\xd8" + seg + b"\xff\xd9")
    sos_len = (data[best + 2] << 8) | data[best + 3]
    return Salvaged(damage_end=damage_end, segments=tuple(s for m, s in segs if m in TABLE_MARKERS),
                    extras=tuple(s for m, s in segs if m not in TABLE_MARKERS and m != 0xC2),
                    sos=bytes(data[best: best + 2 + sos_len]), scan_start=best + 2 + sos_len, names=names + ("SOS",),
                    camera=camera)


_NAMES = {0xDB: "DQT", 0xC4: "DHT", 0xC0: "SOF0", 0xC1: "SOF1", 0xC2: "SOF2", 0xDD: "DRI", 0xFE: "COM"}


def looks_like_scan(data: bytes, start: int) -> bool:
    """Entropy-coded JPEG data has a signature: every 0xFF byte is followed by 0x00 (stuffing)
    or a restart marker; in other data one in 256 is. Checked where what survived starts and in
    its middle (cameras that write fixed-size files pad after the image)."""
    for at in (start, start + (len(data) - start) // 2):
        chunk = data[at: at + SCAN_WINDOW]
        eoi = chunk.find(b"\xff\xd9")
        window = np.frombuffer(chunk[: eoi if eoi >= 0 else len(chunk)], np.uint8)
        ff = np.flatnonzero(window[:-1] == 0xFF)
        if ff.size < 8:
            continue
        nxt = window[ff + 1]
        if float(np.mean((nxt == 0) | ((nxt >= 0xD0) & (nxt <= 0xD7)))) >= 0.9:
            return True
    return False


def header_lost(data: bytes) -> bool:
    """Does ``data`` look like a JPEG whose header was lost or damaged, rather than no JPEG: it
    ends in EOI (trailing zeros aside), holds a valid SOS segment after any leading zeros, or
    what survived reads like entropy-coded data (cameras leave other bytes after the EOI)."""
    if data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return True
    sal = salvage(data)
    return sal.sos is not None or looks_like_scan(data, sal.damage_end)




def scan_end(data: bytes, start: int) -> int:
    """Where the surviving scan ends: the first EOI after ``start`` past which the bytes no longer
    read like scan data (cameras leave previews or padding after the image; a bit error can
    fake an EOI inside it)."""
    eoi = data.find(b"\xff\xd9", start)
    while eoi >= 0:
        after = data[eoi + 2: eoi + 2 + SCAN_WINDOW]
        if (len(after) < 64 or not after[:16].strip(b"\x00\xff") or after[1:3] == b"\xd8\xff"
                or not looks_like_scan(after, 0)):
            return eoi + 2  # the end, padding, or another image (a preview, its SOI perhaps disguised) next
        eoi = data.find(b"\xff\xd9", eoi + 2)
    return len(data)
