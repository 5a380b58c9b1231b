"""Headers grafted from a donor: decode a JPEG whose first sectors were zeroed, lost or garbled.

A photo's header (quantisation and Huffman tables, frame size, restart interval) is a few hundred
bytes at its start; lose them and every byte of image data is unreadable, though all of it is
there. Two things bring it back. What survives of the header is salvaged: camera files carry
tens of KiB of EXIF before the tables, so a few lost sectors often leave the tables and the SOS
intact (:func:`salvage`). What did not survive comes from a donor: a photo of the same camera
(:class:`Donor`), whose tables are tried in turn, the best decode kept (:func:`graft`). Finding
what survived is :mod:`acir_core.jpeg.salvage`; the DC constant, :mod:`acir_core.jpeg.dc_anchor`.

When the scan's own start was lost too, the surviving data begins inside some MCU. The robust
decoder finds where it falls into step; the data runs intact to the EOI, so counting the MCUs
from there to the end tells which MCU that is. Everything after it decodes bit-exact; without
restart markers its DC values are known only up to one constant per component (the predictor
at the lost start), anchored on the photo's own darkest and brightest blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acir_core.errors import AcirError, BadInput, HeaderLost
from acir_core.jpeg.dc_anchor import anchor_dc
from acir_core.jpeg.decoder import DecodeResult, HeadStart, decode
from acir_core.jpeg.fdct import DCT
from acir_core.jpeg.salvage import TABLE_MARKERS, Salvaged, camera_of, header_lost, salvage, scan_end
from acir_core.jpeg.segments import parse_layout
from acir_core.jpeg.tables import Tables, apply_segment, scan_cell
from acir_core.sca.evidence import judge

MAX_DONORS = 8  # donors decoded per photo, best ranked first
MIN_TAIL_MCUS = 16  # a sync point must be followed by this many MCUs that decode to the end
__all__ = ["Donor", "Grafted", "HeaderLost", "anchor_dc", "donor_of", "graft", "header_lost", "salvage"]


@dataclass(frozen=True, kw_only=True)
class Donor:
    """A photo whose header lends its tables: the DQT/DHT/SOF/DRI segments (raw, in order), its
    first SOS segment, frame size and sampling, and the camera (EXIF make and model, or "")."""

    source: str
    segments: tuple[bytes, ...] = field(repr=False)
    sos: bytes = field(repr=False)
    width: int
    height: int
    sampling: tuple[tuple[int, int], ...]
    camera: str = ""


def _tables_of(segments: list[bytes]) -> Tables:
    t = Tables()
    for seg in segments:
        buf = b"\xff\xd8" + seg
        for s in parse_layout(buf + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00").segments[:-1]:
            apply_segment(s, buf, t)
    return t


def donor_of(data: bytes, source: str = "") -> Donor:
    """The donor a readable baseline photo makes; ``BadInput`` if its header is unreadable or
    not sequential Huffman (its tables could not decode a baseline scan)."""
    layout = parse_layout(data, source)
    segs = [bytes(data[s.offset: s.end]) for s in layout.segments if s.marker in TABLE_MARKERS]
    try:
        t = _tables_of(segs)
    except AcirError as exc:
        raise BadInput(f"cannot lend its header: {exc.reason}", source=source) from None
    if t.frame is None:
        raise BadInput("cannot lend its header: no baseline frame header (SOF0/SOF1)", source=source)
    sos = layout.segments[-1]
    return Donor(source=source, segments=tuple(segs), sos=bytes(data[sos.offset: sos.end]), width=t.frame.width,
                 height=t.frame.height, sampling=tuple((c.h, c.v) for c in t.frame.components),
                 camera=camera_of(data))


def _slots(segments: list[bytes]) -> set[tuple[str, int]]:
    """What table segments define: ("DQT", slot), ("DHT", class*4+slot), ("SOF", 0), ("DRI", 0)."""
    out = set()
    for seg in segments:
        m, p = seg[1], seg[4:]
        if m == 0xDB:
            i = 0
            while i < len(p):
                out.add(("DQT", p[i] & 15))
                i += 1 + (128 if p[i] >> 4 else 64)
        elif m == 0xC4:
            i = 0
            while i + 17 <= len(p):
                out.add(("DHT", (p[i] >> 4) * 4 + (p[i] & 15)))
                i += 17 + sum(p[i + 1: i + 17])
        elif m in (0xC0, 0xC1):
            out.add(("SOF", 0))
        elif m == 0xDD:
            out.add(("DRI", 0))
    return out


def _header(own: tuple[bytes, ...], donor: Donor | None, sos: bytes | None,
            extras: tuple[bytes, ...] = ()) -> tuple[bytes, tuple[str, ...]]:
    """SOI, the surviving table segments, the donor's for every slot they lack, and an SOS
    (the surviving one, else the donor's). Returns the bytes and what came from the donor."""
    segs = list(own)
    taken: list[str] = []
    if donor is not None:
        have = _slots(segs)
        for seg in donor.segments:
            need = _slots([seg]) - have
            if need:
                segs.insert(0, seg) if seg[1] == 0xDB else segs.append(seg)
                taken += sorted({k for k, _ in need})
                have |= need
        if sos is None:
            sos = donor.sos
            taken.append("SOS")
    # SOF after the DQTs and before the DHTs keeps every decoder's expectations simple
    order = {0xDB: 0, 0xC0: 1, 0xC1: 1, 0xDD: 2, 0xC4: 3}
    segs.sort(key=lambda s: order.get(s[1], 4))
    return b"\xff\xd8" + b"".join(extras) + b"".join(segs) + (sos or b""), tuple(dict.fromkeys(taken))


@dataclass(frozen=True, kw_only=True, eq=False)
class Grafted:
    """A lost header put back. ``data``: a JPEG the decoder reads (SOI, tables, SOS, the
    surviving scan data); ``result``: its decode (DC anchored where the scan's start was lost);
    ``head``: where the surviving scan data falls into step (None when the SOS survived);
    ``donor``: the donor's source ("" when the photo's own segments sufficed); ``taken``: what
    came from it; ``record``: all of it, JSON-able, with every donor tried and its score."""

    data: bytes = field(repr=False)
    result: DecodeResult = field(repr=False)
    head: HeadStart | None
    donor: str
    taken: tuple[str, ...]
    record: dict


def _head_of(result: DecodeResult) -> HeadStart | None:
    """Where a scan decoded from a lost start fell into step: after its last resync (or from
    the start if none), counting its MCUs to the end gives the first one's place."""
    sr = result.scans[0]
    total = sr.mcu_rows * sr.mcu_cols
    done = np.flatnonzero(sr.decoded)
    if done.size == 0:
        return None
    last = int(done[-1])
    if sr.resyncs:
        ev = sr.resyncs[-1]
        first = ev.mcu + (1 if ev.block_phase else 0)  # a resync may resume inside an MCU: from the next
        if first > last or sr.mcu_bit_start[first] < 0:
            return None
        bit = int(sr.mcu_bit_start[first])
    else:
        bit, first = 0, 0
    tail = last + 1 - first + int(sr.segment_extra[-1])  # junk before the scan may have decoded as MCUs
    if tail < MIN_TAIL_MCUS or tail > total:
        return None
    return HeadStart(bit=int(bit), mcu=int(total - tail))


def _in_step(header: bytes, scan: bytes, head: HeadStart, source: str) -> HeadStart:
    """The first MCU from ``head`` at which decodes started a few bits apart agree: Huffman
    codes fall into step by themselves, so the MCUs decoded before that are garbage that
    happened to decode. Looked for in the first ``STEP_WINDOW`` bytes of the data."""
    trial = header + scan[:STEP_WINDOW] + b"\xff\xd9"
    starts = []
    for off in STEP_OFFSETS:
        try:
            r = decode(trial, "robust", source=source, head=HeadStart(bit=head.bit + off, mcu=0))
        except AcirError:
            return head
        b = r.scans[0].mcu_bit_start
        starts.append(b[b >= 0])
    common = starts[0]
    for other in starts[1:]:
        common = np.intersect1d(common, other)
    if common.size == 0:
        return head
    skip = int(np.searchsorted(starts[0], common[0]))
    return HeadStart(bit=int(common[0]), mcu=head.mcu + skip)


STEP_WINDOW = 1 << 15
STEP_OFFSETS = (0, 1, 5, 11)
GARBAGE_WINDOW = 64  # MCUs after the surviving start checked for blocks no photo holds
GARBAGE_MARGIN = 48  # levels outside 0..255 a real block never reaches, ringing and anchoring error included


def _past_garbage(result: DecodeResult, head: HeadStart) -> HeadStart:
    """Decodes that agree can still be a block or a component out of phase for a few MCUs
    before falling into it; once the DC is anchored such MCUs hold blocks no photo holds
    (samples far outside 0..255). The start moves past the last of those near it."""
    sr = result.scans[0]
    frame = result.frame
    if len(sr.components) != len(frame.components):
        return head
    first = np.flatnonzero(sr.decoded)
    if first.size == 0:
        return head
    m0 = int(first[0])
    m1 = min(m0 + GARBAGE_WINDOW, sr.mcu_rows * sr.mcu_cols)
    idx = np.arange(m0, m1)
    rows, cols = idx // sr.mcu_cols, idx % sr.mcu_cols
    bad = np.zeros(idx.size, bool)
    for ci, comp in enumerate(frame.components):
        v, h = (comp.v, comp.h) if len(frame.components) > 1 else (1, 1)
        q = np.asarray(result.qtables[ci], np.float32).reshape(64)
        for dy in range(v):
            for dx in range(h):
                blk = result.coefficients[ci][rows * v + dy, cols * h + dx].astype(np.float32) * q
                smp = DCT.T.astype(np.float32) @ blk.reshape(-1, 8, 8) @ DCT.astype(np.float32)
                bad |= (smp.max(axis=(1, 2)) > 127 + GARBAGE_MARGIN) | (smp.min(axis=(1, 2)) < -128 - GARBAGE_MARGIN)
    if not bad.any():
        return head
    nxt = m0 + int(np.flatnonzero(bad)[-1]) + 1
    if nxt >= sr.mcu_rows * sr.mcu_cols or sr.mcu_bit_start[nxt] < 0:
        return head
    return HeadStart(bit=int(sr.mcu_bit_start[nxt]), mcu=nxt)


def _try(data: bytes, header: bytes, scan_start: int, sos_survived: bool, source: str):
    """Decode one candidate graft: (result, head, grafted bytes, DC anchor notes), or None when
    it does not decode."""
    grafted = header + data[scan_start: len(data) if sos_survived else scan_end(data, scan_start)]
    try:
        first = decode(grafted, "robust", source=source)
    except AcirError:
        return None
    if not first.scans:
        return None
    if sos_survived:
        return first, None, grafted, {}
    if first.scans[0].restart_interval:
        head = HeadStart(bit=0, mcu=0)  # whole intervals after the first surviving marker, numbered from the end
        try:
            placed = decode(grafted, "robust", source=source, head=head)
        except AcirError:
            return None
        return (placed, head, grafted, {}) if placed.scans[0].decoded.any() else None
    head = _head_of(first)
    if head is None:
        return None
    head = _in_step(header, data[scan_start:], head, source)
    try:
        placed, head = _ends_at_eoi(grafted, head, source)
        placed, notes = anchor_dc(placed, skip=GARBAGE_WINDOW)
        later = _past_garbage(placed, head)
        if later != head:
            head = later
            placed, notes = anchor_dc(decode(grafted, "robust", source=source, head=head))
    except AcirError:
        return None
    if not placed.scans[0].decoded.any():
        return None
    return placed, head, grafted, notes


def _ends_well(result: DecodeResult) -> bool:
    sr = result.scans[0]
    return bool(sr.decoded[-1]) and int(sr.segment_extra[0]) == 0 and int(sr.segment_pad[0]) >= 0


def _ends_at_eoi(grafted: bytes, head: HeadStart, source: str) -> tuple[DecodeResult, HeadStart]:
    """The decode from ``head``, checked: its last MCU must end in the fill before the EOI. If
    not, the count was thrown by MCUs decoded out of step; the neighbouring places are tried."""
    placed = decode(grafted, "robust", source=source, head=head)
    if _ends_well(placed):
        return placed, head
    for d in (1, -1, 2, -2):
        other = HeadStart(bit=head.bit, mcu=head.mcu + d)
        if other.mcu < 0:
            continue
        trial = decode(grafted, "robust", source=source, head=other)
        if _ends_well(trial):
            return trial, other
    return placed, head


def _score(result: DecodeResult, head: HeadStart | None) -> float:
    """Lower is better: resyncs and suspect MCUs after the surviving start (a wrong donor's
    tables fail again and again), then how broken the picture looks at MCU seams."""
    sr = result.scans[0]
    failures = len(sr.resyncs) + int(sr.suspect[sr.decoded].sum())
    cell = scan_cell(result.frame, sr.components)
    return 1000.0 * failures + judge(result.rgb, cell).score


def _ranked(donors, salvaged: Salvaged) -> list[Donor]:
    """Donors worth decoding, best first: same camera, then the same frame size and sampling as
    what survived, at most ``MAX_DONORS``."""
    try:
        own = _tables_of(list(salvaged.segments)).frame if salvaged.segments else None
    except AcirError:  # what survived does not parse: rank by camera alone
        own = None

    def key(d: Donor):
        same_cam = bool(salvaged.camera) and d.camera == salvaged.camera
        same_frame = own is not None and (own.width, own.height) == (d.width, d.height)
        same_sampling = own is not None and tuple((c.h, c.v) for c in own.components) == d.sampling
        return (not same_cam, not same_frame, not same_sampling, d.source)

    return sorted(donors, key=key)[:MAX_DONORS]


def graft(data: bytes, donors=(), source: str = "", why: str = "JPEG header lost") -> Grafted:
    """Put a lost or damaged header back: the photo's own surviving segments where they
    suffice, else each donor's tables in turn (:func:`_ranked`), the decode with the fewest
    failures and cleanest seams kept. Raises :class:`HeaderLost` (its reason starting with
    ``why``) when nothing decodes."""
    sal = salvage(data)
    cands: list[tuple[str, bytes, tuple[str, ...]]] = []
    own_header, _ = _header(sal.segments, None, sal.sos, sal.extras)
    if sal.sos is not None and {"SOF"} <= {k for k, _ in _slots(list(sal.segments))}:
        cands.append(("", own_header, ()))
    for d in _ranked(donors, sal):
        header, taken = _header(sal.segments, d, sal.sos, sal.extras)
        if taken:
            cands.append((d.source, header, taken))
    start = sal.scan_start if sal.scan_start is not None else sal.damage_end
    tried, best = [], None
    for name, header, taken in cands:
        got = _try(data, header, start, sal.scan_start is not None, source)
        if got is None:
            tried.append({"donor": name or "own segments", "decodes": False})
            continue
        result, head, grafted, notes = got
        score = _score(result, head)
        tried.append({"donor": name or "own segments", "decodes": True, "score": round(score, 2)})
        if best is None or score < best[0]:
            best = (score, name, taken, result, head, grafted, notes)
        if not name and score < 1000.0:
            break  # the photo's own header decodes without a failure: no donor needed
    if best is None:
        what = "no donor fits" if donors else "no donor"
        survived = ", ".join(sal.names) or "nothing"
        raise HeaderLost(f"{why} ({survived} survived after byte {sal.damage_end}) and {what}: "
                         "give --reference FILE|DIR with a photo from the same camera, or restore it together "
                         "with intact photos from that camera", source=source)
    _, name, taken, result, head, grafted, notes = best
    rec = {"salvaged": list(sal.names), "damage_end": sal.damage_end, "scan_start": start,
           "donor": name or "none (own segments)", "from_donor": list(taken), "tried": tried}
    if head is not None:
        sr = result.scans[0]
        rec["lost_mcus"] = int((~sr.decoded).sum())
        rec["head_bit"] = head.bit
        if notes:
            rec["dc_anchor"] = notes
    return Grafted(data=grafted, result=result, head=head, donor=name, taken=taken, record=rec)
