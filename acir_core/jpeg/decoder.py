"""The robust JPEG decoder: decode every bit that is there, exactly, and say what went wrong where.

``decode(data, mode="strict")`` behaves like a careful standard decoder: the first damaged code
raises :class:`~acir_core.errors.CorruptJpeg` with its bit offset and MCU. ``mode="robust"``
decodes to the end: at each failure it resynchronises (see :mod:`acir_core.jpeg.entropy`), at
restart markers it jumps to the MCU the marker implies, and it records every event so that SCA
can undo the damage. Pixels come from :func:`acir_core.jpeg.render.render`, bit-exact with
libjpeg-turbo (islow IDCT, fancy upsampling) on clean files.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from acir_core.errors import AcirError, CorruptHeader, CorruptJpeg, InvalidParameter
from acir_core.jpeg import entropy
from acir_core.jpeg.bandfit import DCHint, dc_in_place
from acir_core.jpeg.progressive import AC_FIRST, decode_progressive_scan
from acir_core.jpeg.bitstream import ScanBits, destuff, find_scan_end
from acir_core.jpeg.render import SamplePlanes, render, render_rows
from acir_core.jpeg.restarts import assign_restarts
from acir_core.jpeg.silent import place_silent
from acir_core.jpeg.witness import BandWitness
from acir_core.jpeg.segments import iter_header_segments
from acir_core.jpeg.tables import DEFAULT_MAX_PIXELS, Frame, Scan, Tables, apply_segment, color_space

MODES = ("robust", "strict")
ZERO_RUN_BYTES = 32  # zero bytes in a row that only a zero-filled read leaves in scan data
CUT_REACH_BITS = 4096  # failures this close to where a cut file's data ends are the cut's
MAX_PROGRESSIVE_RESYNCS = 4096  # per scan: the record keeps this many
CONVENTION_EVIDENCE = 64  # places checked in undamaged AC scans before libjpeg's conventions count
CONVENTION_RATE = 1000  # ... with at most one break in this many
PROGRESSIVE_MARGIN = 2  # MCUs after a resynchronisation inside a scan, decoded but not trusted
REFINE_LOOKAHEAD = 256  # blocks a refinement scan must decode in a row from a resynchronisation
REFINE_SPAN = 256  # blocks after the failure's doubtful ones where a refinement scan may resume
REFINE_WINDOW = 512  # bits after the failure where it may resume
REFINE_BACK = 1024  # blocks before them: a refinement scan out of step may run that far ahead
NO_RUNS = np.zeros((0, 2), np.int64)
NO_RUNS.setflags(write=False)
RESYNC_METHODS = {"lookahead": entropy.RESYNC_LOOKAHEAD, "paper": entropy.RESYNC_PAPER}


@dataclass(frozen=True, kw_only=True)
class HeadStart:
    """Where the first scan's surviving data starts when its beginning was lost (a header grafted
    from a donor): decoding starts at destuffed ``bit`` with MCU ``mcu``; the MCUs before it are
    missing. With restart markers only whole intervals are kept, numbered back from the scan's
    end (its markers after ``bit``), and ``mcu`` is not used."""

    bit: int
    mcu: int


@dataclass(frozen=True, kw_only=True)
class Resync:
    """One resynchronisation. Bits count in the scan's destuffed stream (``ScanResult.byte_offsets``
    maps byte ``bit // 8`` back to the file). ``block_phase`` > 0: decoding resumed inside the MCU
    at that block (the earlier blocks of the MCU are missing)."""

    scan: int
    mcu: int
    fail_bit: int
    resume_bit: int
    bits_skipped: int
    block_phase: int
    reason: str
    dc_predictors: tuple[int, ...]
    shift: int = 0  # progressive AC scans: MCUs the run after it was moved by (its segment's last run)


@dataclass(frozen=True, eq=False, kw_only=True)
class ScanResult:
    """What the decoder saw in one scan (baseline files from cameras have exactly one)."""

    components: tuple[int, ...]
    mcu_cols: int
    mcu_rows: int
    mcu_bit_start: np.ndarray = field(repr=False)  # int64 per MCU, -1 where missing
    decoded: np.ndarray = field(repr=False)  # bool per MCU
    suspect: np.ndarray = field(repr=False)  # bool per MCU
    resyncs: tuple[Resync, ...]
    restart_interval: int
    byte_offsets: np.ndarray = field(repr=False)  # file offset of each destuffed byte
    n_bits: int
    trailing_bits: int  # undecoded bits left after the last MCU
    cut: bool  # the file ended inside this scan's data (no marker closed it): MCUs missing at the end are cut off
    zero_runs: np.ndarray = field(repr=False)  # (k, 2) destuffed bit ranges of zero-filled stretches
    damaged_markers: np.ndarray = field(repr=False)  # file offsets of 0xFF pairs that are damage
    segment_first: np.ndarray = field(repr=False)  # first MCU of each restart segment
    segment_count: np.ndarray = field(repr=False)  # MCUs the segment should hold
    segment_extra: np.ndarray = field(repr=False)  # MCUs still decodable after the segment's last one
    segment_pad: np.ndarray = field(repr=False)  # fill bits after the segment's last MCU, -1: not fill
    head: bool = False  # decoded from a lost start (HeadStart): its one segment is judged like an interval
    band: tuple[int, int, int, int] | None = None  # a progressive scan's (Ss, Se, Ah, Al); None: sequential
    silent_shift: int = 0  # a progressive scan that ended out of step with no failure: its blocks' net shift (DC: its sign)
    conventions: tuple[int, int] = (0, 0)  # a progressive AC scan: codes a libjpeg-style encoder never sends, places checked
    deferred: bool = False  # a progressive refinement scan that stopped at a failure without looking for where it resumes

    def sound_segments(self) -> np.ndarray:
        """Per restart segment: decoded as the encoder wrote it, every MCU without a failure and its
        bits used up to the fill before the next marker. Damage that still gets there must keep
        every code boundary and the MCU count (a flipped magnitude bit), so SCA trusts such a
        segment's content and looks only for one DC step in it. So is the segment a cut file ends
        in when its only failures come within ``CUT_REACH_BITS`` of the end (the last MCU, cut in
        two, and the resync's tries on what is left): what arrived decoded as written. A scan
        decoded from a lost start is judged the same way without markers: it ends at the EOI."""
        ended = False
        if self.cut and self.segment_first.size:
            ends = [e for e in self.resyncs if e.mcu >= self.segment_first[-1]]
            ended = bool(ends) and all(e.fail_bit >= self.n_bits - CUT_REACH_BITS for e in ends)
        if self.restart_interval == 0 and not self.head:
            ok = np.zeros(self.segment_first.size, bool)
        else:
            ok = (self.segment_pad >= 0) & (self.segment_extra == 0)
            lost = np.concatenate([[0], np.cumsum(~self.decoded)])
            end = np.minimum(self.segment_first + self.segment_count, self.decoded.size)
            ok &= lost[end] == lost[np.minimum(self.segment_first, end)]
            if self.resyncs:
                hit = np.searchsorted(self.segment_first, [e.mcu for e in self.resyncs], side="right") - 1
                ok[hit[hit >= 0]] = False
        if ok.size:
            ok[-1] |= ended
        return ok

    @property
    def mcus_expected(self) -> int:
        return self.mcu_cols * self.mcu_rows

    @property
    def mcus_decoded(self) -> int:
        return int(self.decoded.sum())

    def file_offset(self, bit: int) -> int:
        """File byte offset holding destuffed bit ``bit`` of this scan."""
        i = min(max(bit // 8, 0), self.byte_offsets.size - 1)
        return int(self.byte_offsets[i]) if self.byte_offsets.size else -1


@dataclass(frozen=True, eq=False, kw_only=True)
class DecodeResult:
    """A decoded JPEG. ``rgb`` is H×W×3 uint8; ``coefficients[c]`` is component c's quantised
    DCT coefficients, (block rows, block cols, 64) int16 in natural (row-major) order; ``qtables[c]``
    its quantiser (64,) in natural order. Per-MCU arrays and resyncs are per scan in ``scans``; the
    properties below merge them (one scan: exactly that scan's)."""

    rgb: np.ndarray = field(repr=False)
    frame: Frame
    coefficients: tuple[np.ndarray, ...] = field(repr=False)
    qtables: tuple[np.ndarray, ...] = field(repr=False)
    scans: tuple[ScanResult, ...]
    mode: str
    resync_method: str
    bands: tuple[np.ndarray, ...] | None = field(default=None, repr=False)  # progressive: per block, coefficients known
    # robust progressive: the AC first-scan values its bits placed, and their bands (BandWitness)
    witness: tuple[np.ndarray, ...] | None = field(default=None, repr=False)
    witness_bands: tuple[np.ndarray, ...] | None = field(default=None, repr=False)
    dc_hint: DCHint | None = field(default=None, repr=False)  # the DC its AC first scans were placed against

    @property
    def deferred(self) -> bool:
        """Whether a refinement scan stopped at a failure without looking for where it resumes
        (``decode(..., search_refinements=False)``): not the decode to keep."""
        return any(s.deferred for s in self.scans)

    @property
    def resyncs(self) -> tuple[Resync, ...]:
        return tuple(r for s in self.scans for r in s.resyncs)

    @property
    def mcus_expected(self) -> int:
        return sum(s.mcus_expected for s in self.scans)

    @property
    def mcus_decoded(self) -> int:
        return sum(s.mcus_decoded for s in self.scans)

    @property
    def mcu_bit_start(self) -> np.ndarray:
        return np.concatenate([s.mcu_bit_start for s in self.scans])

    @property
    def suspect(self) -> np.ndarray:
        return np.concatenate([s.suspect for s in self.scans])

    @property
    def missing(self) -> np.ndarray:
        return ~np.concatenate([s.decoded for s in self.scans])

    @property
    def restart_intervals(self) -> tuple[int, ...]:
        return tuple(s.restart_interval for s in self.scans)

    @property
    def bits_skipped(self) -> int:
        return sum(r.bits_skipped for r in self.resyncs)

    @property
    def clean(self) -> bool:
        """No resync, nothing missing, no damaged marker, and no whole MCU still decodable after the
        last one (a stretch written twice decodes without a failure and ends early; fill or padding
        bytes before EOI are not MCUs): the file decoded as an intact one would."""
        return not self.resyncs and self.mcus_decoded == self.mcus_expected and not any(
            s.damaged_markers.size or s.segment_extra.any() for s in self.scans)

    def summary(self) -> dict:
        """Numbers a person (or a JSON report) wants first."""
        n = max(self.mcus_expected, 1)
        return {
            "width": self.frame.width, "height": self.frame.height,
            "components": len(self.frame.components),
            "sampling": "x".join(f"{c.h}{c.v}" for c in self.frame.components),
            "mode": self.mode, "resync": self.resync_method,
            "resyncs": len(self.resyncs), "bits_skipped": self.bits_skipped,
            "mcus_expected": self.mcus_expected, "mcus_decoded": self.mcus_decoded,
            "suspect_fraction": float(self.suspect.sum()) / n,
            "missing_fraction": float(self.missing.sum()) / n,
            "restart_intervals": list(self.restart_intervals),
            "damaged_markers": int(sum(s.damaged_markers.size for s in self.scans)),
        }

    def rerender(self, coefficients: tuple[np.ndarray, ...] | None = None,
                 planes: SamplePlanes | None = None) -> np.ndarray:
        """Pixels for (possibly edited) coefficients, exactly as a decoder would show them;
        ``planes`` (:class:`SamplePlanes`) keeps the blocks' samples for later renders."""
        return render(self.frame, self.coefficients if coefficients is None else coefficients, self.qtables, planes,
                      self.bands)

    def rerender_rows(self, coefficients: tuple[np.ndarray, ...], rgb: np.ndarray, changed: np.ndarray, *,
                      in_place: bool = False, planes: SamplePlanes | None = None) -> np.ndarray:
        """:meth:`rerender` of ``coefficients`` when they differ from those ``rgb`` shows only in
        the MCU rows (of 8·max_v pixel rows) flagged in ``changed``: only those are redone (into
        ``rgb`` itself with ``in_place``), and with ``planes`` only their blocks that changed
        since the last render through the same planes are transformed again."""
        return render_rows(self.frame, coefficients, self.qtables, rgb, changed, in_place=in_place, planes=planes,
                           bands=self.bands)


# --------------------------------------------------------------------------- one scan

def _head_segments(ri: int, bits: ScanBits, n_mcus: int, head: HeadStart):
    """Segments of a scan whose start was lost: one from ``head`` to the end, or the restart
    intervals whose markers lie after it, counted back from the last (the end is intact)."""
    if ri == 0:
        return (np.array([head.bit], np.int64), np.array([bits.nbits], np.int64), np.array([head.mcu], np.int64),
                np.array([max(n_mcus - head.mcu, 0)], np.int64))
    pos = bits.rst_pos.astype(np.int64)
    keep = 8 * pos >= head.bit
    pos = pos[keep]
    n_int = -(-n_mcus // ri)
    first = n_int - pos.size
    if first < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    firsts = (first + np.arange(pos.size, dtype=np.int64)) * ri
    starts = 8 * pos
    ends = np.append(starts[1:], bits.nbits)
    return starts, ends, firsts, np.minimum(ri, n_mcus - firsts)


def _segments(scan: Scan, bits: ScanBits, n_mcus: int, strict: bool, source: str | None,
              head: HeadStart | None = None, sound: np.ndarray | None = None):
    """Restart segments: (start bit, end bit, first MCU, MCU count) of each. ``sound``: per
    stretch between markers, decoded as one whole interval (see :func:`assign_restarts`)."""
    ri = scan.restart_interval
    if head is not None:
        return _head_segments(ri, bits, n_mcus, head)
    if ri == 0:
        return np.array([0]), np.array([bits.nbits]), np.array([0]), np.array([n_mcus])
    starts, firsts = [0], [0]
    n_int = -(-n_mcus // ri)
    if strict:
        k = 0
        for pos, num, off in zip(bits.rst_pos.tolist(), bits.rst_num.tolist(), bits.rst_off.tolist()):
            # RSTn ends interval j with j % 8 == n and starts interval j + 1
            nxt = k + 1 + ((num - k) % 8)
            if nxt != k + 1:
                raise CorruptJpeg(f"restart marker RST{num} out of sequence (expected RST{k % 8})",
                                  source=source, offset=off, bit_offset=8 * pos, mcu=(k + 1) * ri)
            if nxt >= n_int:
                raise CorruptJpeg(f"restart marker RST{num} after the last MCU", source=source, offset=off,
                                  bit_offset=8 * pos, mcu=nxt * ri)
            k = nxt
        interval = np.arange(1, bits.rst_num.size + 1, dtype=np.int64)
    else:
        interval = assign_restarts(bits.rst_num.astype(np.int64), bits.rst_pos.astype(np.int64), n_int,
                                   int(bits.nbits // 8), sound=sound)
    for pos, j in zip(bits.rst_pos.tolist(), interval.tolist()):
        if j < 0:
            continue  # a spurious marker in damaged data: the interval goes on through it
        starts.append(8 * pos)
        firsts.append(j * ri)
    ends = starts[1:] + [bits.nbits]
    counts = [min(ri, n_mcus - f) for f in firsts]
    return (np.array(starts, np.int64), np.array(ends, np.int64), np.array(firsts, np.int64),
            np.array(counts, np.int64))


def _luts(tables: Tables, opts: dict) -> np.ndarray:
    """The Huffman lookup of every table slot (2 MiB), kept for the decode's next scan with only
    the slots a DHT replaced rewritten: a progressive file has ten scans or more, each after its
    own DHT, and a small one decodes in milliseconds."""
    had, lut = opts.get("lut_memo") or ({}, np.full((8, 1 << 16), -1, np.int32))
    for (cls, slot), tbl in tables.huff.items():
        if had.get((cls, slot)) is not tbl:
            lut[cls * 4 + slot] = tbl.lookup
    for cls, slot in set(had) - set(tables.huff):
        lut[cls * 4 + slot] = -1
    opts["lut_memo"] = (dict(tables.huff), lut)  # holds the tables, so an identity compares them
    return lut


def _scan_layout(frame: Frame, scan: Scan):
    """(interleaved, MCU cols, MCU rows, per block of an MCU its component (index in the scan),
    row and column in the component's MCU, the scan's components): an interleaved scan's MCU
    holds v×h blocks of each component; a lone component's MCU is one block of its own grid."""
    interleaved = len(scan.components) > 1
    if interleaved:
        mcu_cols, mcu_rows = frame.mcu_cols, frame.mcu_rows
    else:
        cw, ch = frame.comp_size(scan.components[0].index)
        mcu_cols, mcu_rows = -(-cw // 8), -(-ch // 8)
    blk_comp, blk_dy, blk_dx = [], [], []
    for local, sc in enumerate(scan.components):
        comp = frame.components[sc.index]
        h, v = (comp.h, comp.v) if interleaved else (1, 1)
        for dy in range(v):
            for dx in range(h):
                blk_comp.append(local)
                blk_dy.append(dy)
                blk_dx.append(dx)
    comps = [frame.components[sc.index] for sc in scan.components]
    return interleaved, mcu_cols, mcu_rows, blk_comp, blk_dy, blk_dx, comps


NO_SPLICES = np.zeros(0, np.int64)


def _sound_stretches(sr: ScanResult, bits: ScanBits, starts: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    """Per stretch between restart markers (before the first, between m - 1 and m, after the
    last): decoded as one whole interval ending in fill bits. A stretch's decode does not depend
    on which interval it was taken for, so one decode tells the assignment which stretches the
    damage left alone; one a zero-filled stretch was taken out of is not (what is left of two
    intervals can decode as one)."""
    marker_bit = 8 * bits.rst_pos.astype(np.int64)
    m_n = marker_bit.size
    sound = np.zeros(m_n + 1, bool)
    ok = sr.sound_segments()
    at = np.searchsorted(marker_bit, starts)  # the marker a segment starts at (0 for the scan's start)
    first = np.where(starts == 0, -1, at)
    nxt = np.append(first[1:], m_n)  # the next segment's marker, m_n: the scan's end
    single = nxt == first + 1
    sound[(first + 1)[single & ok]] = True
    if zeros.size:
        sound[np.searchsorted(marker_bit, zeros[:, 0], side="right")] = False
    return sound


def _against(segs: tuple, sound: np.ndarray, bits: ScanBits, scan: Scan, n_mcus: int) -> bool:
    """Whether the markers' assignment ``segs`` takes intervals for lost inside a ``sound``
    stretch or a marker next to one for spurious. Knowing which stretches are sound only adds
    costs to assignments that do, so one that does not stays the best and is not redone."""
    ri = scan.restart_interval
    marker_bit = 8 * bits.rst_pos.astype(np.int64)
    interval = np.full(marker_bit.size, -1, np.int64)
    interval[np.searchsorted(marker_bit, segs[0][1:])] = segs[2][1:] // ri
    ext = np.concatenate([[0], interval, [-(-n_mcus // ri)]])
    left, right = ext[:-1], ext[1:]
    ok = (left >= 0) & (right >= 0) & (right - left == 1)
    return bool(np.any(sound & ~ok))


def _decode_scan(si: int, data_arr: np.ndarray, data: bytes, scan: Scan, end: int, frame: Frame, tables: Tables,
                 coef_flat: np.ndarray, bases: list[int], robust: bool, resync: str, opts: dict,
                 source: str | None, head: HeadStart | None = None) -> ScanResult:
    interleaved, mcu_cols, mcu_rows, blk_comp, blk_dy, blk_dx, comps = _scan_layout(frame, scan)
    n_mcus = mcu_cols * mcu_rows
    bits = destuff(data_arr, scan.data_start, end, restarts=scan.restart_interval > 0)
    marker_bit = None
    if not robust and bits.bad_markers.size:
        # like libjpeg, a strict decoder sees the data end at an unexpected marker
        marker_bit = 8 * int(np.searchsorted(bits.src, bits.bad_markers[0]))
        bits = dataclasses.replace(bits, nbits=marker_bit)
    zeros = zero_runs(bits.buf, bits.nbits) if _zeros_not_flat(scan, tables) else NO_RUNS
    if robust and zeros.size:
        bits, zeros = _without_zero_runs(bits, zeros)
    def run(seg_start, seg_end, seg_first, seg_count) -> ScanResult:
        mcu_bit_start = np.full(n_mcus, -1, np.int64)
        decoded = np.zeros(n_mcus, np.uint8)
        suspect = np.zeros(n_mcus, np.uint8)
        resyncs = np.zeros((n_mcus + 16, 6), np.int64)
        resync_pred = np.zeros((n_mcus + 16, len(comps)), np.int64)
        status = np.zeros(5, np.int64)
        seg_extra = np.zeros(seg_start.size, np.int64)
        seg_pad = np.full(seg_start.size, -1, np.int64)
        entropy.decode_scan(
            bits.buf, seg_start, seg_end, seg_first, seg_count, mcu_cols, interleaved,
            np.array(blk_comp, np.int64), np.array(blk_dy, np.int64), np.array(blk_dx, np.int64),
            np.array([c.h for c in comps], np.int64), np.array([c.v for c in comps], np.int64),
            np.array([bases[sc.index] for sc in scan.components], np.int64),
            np.array([frame.block_grid(sc.index)[1] for sc in scan.components], np.int64),
            np.array([sc.td for sc in scan.components], np.int64),
            np.array([4 + sc.ta for sc in scan.components], np.int64),
            _luts(tables, opts), np.stack([tables.qt[c.tq] for c in comps]).astype(np.int64),
            robust, RESYNC_METHODS[resync], opts["lookback_bits"], opts["window_bits"], opts["lookahead"],
            opts["max_candidates"], np.ascontiguousarray(zeros[:, 0]) if robust else NO_SPLICES, coef_flat,
            mcu_bit_start, decoded, suspect, resyncs, resync_pred, seg_extra, seg_pad,
            status)
        if status[1]:
            bit = int(status[3])
            off = int(bits.src[min(bit // 8, bits.src.size - 1)]) if bits.src.size else scan.data_start
            what = entropy.ERROR_NAMES[int(status[1])]
            if marker_bit is not None and bit >= marker_bit - 16:
                off = int(bits.bad_markers[0])
                what = f"unexpected marker 0xFF{data[off + 1]:02X} inside the entropy-coded data"
            raise CorruptJpeg(f"{what} in MCU {int(status[2])} at bit {bit} of the scan", source=source, offset=off,
                              bit_offset=bit, mcu=int(status[2]))
        events = tuple(
            Resync(scan=si, mcu=int(r[0]), fail_bit=int(r[1]), resume_bit=int(r[2]), bits_skipped=int(r[3]),
                   block_phase=int(r[4]), reason=entropy.ERROR_NAMES[int(r[5])],
                   dc_predictors=tuple(int(p) for p in resync_pred[i]))
            for i, r in enumerate(resyncs[: int(status[0])]))
        return ScanResult(components=tuple(sc.index for sc in scan.components), mcu_cols=mcu_cols, mcu_rows=mcu_rows,
                          mcu_bit_start=mcu_bit_start, decoded=decoded.astype(bool), suspect=suspect.astype(bool),
                          resyncs=events, restart_interval=scan.restart_interval, byte_offsets=bits.src,
                          n_bits=bits.nbits, trailing_bits=int(status[4]), cut=end + 1 >= len(data) or data[end] != 0xFF,
                          damaged_markers=bits.bad_markers,
                          zero_runs=zeros,
                          segment_first=seg_first, segment_count=seg_count, segment_extra=seg_extra,
                          segment_pad=seg_pad, head=head is not None)

    segs = _segments(scan, bits, n_mcus, not robust, source, head)
    sr = run(*segs)
    if robust and head is None and scan.restart_interval and bits.rst_num.size:
        sound = _sound_stretches(sr, bits, segs[0], zeros)
        again = _segments(scan, bits, n_mcus, False, source, None, sound) \
            if _against(segs, sound, bits, scan, n_mcus) else segs
        if not all(np.array_equal(x, y) for x, y in zip(segs, again)):
            for sc in scan.components:  # what the first assignment put in wrong places goes
                rows, bw = frame.block_grid(sc.index)
                coef_flat[bases[sc.index]: bases[sc.index] + rows * bw] = 0
            sr = run(*again)
    return sr


def _placed_after(scan: Scan, robust: bool) -> bool:
    """Whether a progressive scan's blocks are placed after decoding (silent errors, runs between
    two failures: :func:`acir_core.jpeg.silent.place_silent`): an AC band's first scan of one
    component without restart markers, decoded robustly."""
    return robust and scan.kind == AC_FIRST and len(scan.components) == 1 and not scan.restart_interval


def _decode_progressive(si: int, data_arr: np.ndarray, data: bytes, scan: Scan, end: int, frame: Frame,
                        tables: Tables, coef_flat: np.ndarray, known: np.ndarray, doubt: np.ndarray, bases: list[int],
                        robust: bool, opts: dict, source: str | None, split: int = -1,
                        soft: bool = False) -> ScanResult:
    """One scan of a progressive frame (:mod:`acir_core.jpeg.progressive`): its band goes into the
    shared coefficient planes; restart intervals are taken in the order their markers come.
    ``split``: the MCU where an error decoded silently ends (found by :func:`acir_core.jpeg.silent.place_silent`);
    ``soft``: the file's encoder is known to follow libjpeg's conventions (:func:`_conventional`)."""
    interleaved, mcu_cols, mcu_rows, blk_comp, blk_dy, blk_dx, comps = _scan_layout(frame, scan)
    n_mcus = mcu_cols * mcu_rows
    bits = destuff(data_arr, scan.data_start, end, restarts=scan.restart_interval > 0)
    ri = scan.restart_interval
    if ri:
        n_int = -(-n_mcus // ri)
        starts = np.concatenate([[0], 8 * bits.rst_pos[: n_int - 1]]).astype(np.int64)
        firsts = np.arange(starts.size, dtype=np.int64) * ri
        counts = np.minimum(ri, n_mcus - firsts)
    else:
        starts, firsts, counts = np.array([0], np.int64), np.array([0], np.int64), np.array([n_mcus], np.int64)
    decoded = np.zeros(n_mcus, np.uint8)
    keep_middle = _placed_after(scan, robust)
    starts_bit = np.full(n_mcus, -1, np.int64)
    events = np.zeros((MAX_PROGRESSIVE_RESYNCS, 5), np.int64)
    err = np.zeros(6, np.int64)
    cut = end + 1 >= len(data) or data[end] != 0xFF
    seg_cut = np.zeros(starts.size, np.bool_)
    seg_cut[-1] = cut
    decode_progressive_scan(
        bits.buf, bits.nbits, starts, firsts, counts, n_mcus, mcu_cols, interleaved,
        np.array(blk_comp, np.int64), np.array(blk_dy, np.int64), np.array(blk_dx, np.int64),
        np.array([c.h for c in comps], np.int64), np.array([c.v for c in comps], np.int64),
        np.array([bases[sc.index] for sc in scan.components], np.int64),
        np.array([frame.block_grid(sc.index)[1] for sc in scan.components], np.int64),
        np.array([-(-frame.comp_size(sc.index)[0] // 8) for sc in scan.components], np.int64),
        np.array([sc.td for sc in scan.components], np.int64),
        np.array([4 + sc.ta for sc in scan.components], np.int64),
        _luts(tables, opts), scan.kind, scan.ss, scan.se, scan.al, robust, seg_cut, opts["lookback_bits"],
        opts["window_bits"], opts["lookahead"], PROGRESSIVE_MARGIN, REFINE_LOOKAHEAD, REFINE_SPAN,
        REFINE_BACK, REFINE_WINDOW, split, keep_middle, soft, opts.get("search", True), coef_flat,
        coef_flat.copy() if robust and scan.kind == 3 else coef_flat[:0], known, doubt, decoded, starts_bit, events,
        err)
    if robust and scan.kind == 3 and not interleaved:  # blocks whose refinement was lost: later ones cannot read them
        ci = scan.components[0].index
        rows, bw = frame.block_grid(ci)
        doubt[bases[ci]: bases[ci] + rows * bw].reshape(rows, bw)[:mcu_rows, :mcu_cols] |= \
            ~decoded.astype(bool).reshape(mcu_rows, mcu_cols)
    if err[0] and not robust:
        bit = int(err[1])
        off = int(bits.src[min(bit // 8, bits.src.size - 1)]) if bits.src.size else scan.data_start
        raise CorruptJpeg(f"{entropy.ERROR_NAMES[int(err[0])]} in MCU {int(err[2])} of progressive scan {si + 1} "
                          f"(band {scan.ss}-{scan.se}, bits {scan.ah}/{scan.al})", source=source, offset=off,
                          bit_offset=bit, mcu=int(err[2]))
    resyncs = tuple(Resync(scan=si, mcu=int(e[0]), fail_bit=int(e[1]), resume_bit=int(e[2]),
                           bits_skipped=int(e[2] - e[1]), block_phase=0, reason=entropy.ERROR_NAMES[int(e[4])],
                           dc_predictors=(), shift=int(e[3])) for e in events[: min(int(err[0]), len(events))]) \
        if robust else ()
    dec = decoded.astype(bool)
    return ScanResult(components=tuple(sc.index for sc in scan.components), mcu_cols=mcu_cols, mcu_rows=mcu_rows,
                      mcu_bit_start=starts_bit, decoded=dec, suspect=np.zeros(n_mcus, bool),
                      resyncs=resyncs, restart_interval=ri, byte_offsets=bits.src, n_bits=bits.nbits, trailing_bits=0,
                      cut=cut, damaged_markers=bits.bad_markers, zero_runs=NO_RUNS, segment_first=firsts,
                      segment_count=counts,
                      segment_extra=np.zeros(firsts.size, np.int64), segment_pad=np.zeros(firsts.size, np.int64),
                      band=(scan.ss, scan.se, scan.ah, scan.al), silent_shift=int(err[1]) if robust else 0,
                      conventions=(int(err[3]), int(err[4])), deferred=bool(err[5]))


def _conventional(scans: list[ScanResult]) -> bool:
    """Whether the AC scans decoded without a failure so far show an encoder that follows libjpeg's
    conventions (an end-of-band code only where a run must end, a zero-run code only before a
    coefficient) often enough to count on: at least ``CONVENTION_EVIDENCE`` places checked, and
    at most one break in ``CONVENTION_RATE`` (an error such a scan read without failing breaks
    them once or twice; an encoder with other habits, at every turn). Then a damaged refinement
    scan's codes that break them are failures, found blocks after an error rather than thousands
    (docs/decoder.md)."""
    clean = [s.conventions for s in scans if s.band is not None and s.band[0] > 0 and not s.resyncs
             and not s.silent_shift and not s.cut and not s.deferred]
    breaks, places = sum(v for v, _ in clean), sum(o for _, o in clean)
    return places >= CONVENTION_EVIDENCE and breaks * CONVENTION_RATE <= places  # a break or two: damage read silently


def _zeros_not_flat(scan: Scan, tables: Tables) -> bool:
    """Whether zero bits cannot be a photo's flat MCUs under this scan's tables: true unless, for
    every component of the scan, the all-zero DC code is category 0 and the all-zero AC code is
    end-of-block (optimised tables, as mozjpeg or Pillow's ``optimize`` make them, code flat
    areas so; the standard tables do for chroma but not for luma)."""
    for sc in scan.components:
        dc, ac = tables.huff.get((0, sc.td)), tables.huff.get((1, sc.ta))
        if dc is None or ac is None:
            return False
        dc0, ac0 = int(dc.lookup[0]), int(ac.lookup[0])
        if not (dc0 >= 0 and ac0 >= 0 and dc0 & 0xFF == 0 and ac0 & 0xFF == 0):
            return True
    return False


def _without_zero_runs(bits: ScanBits, runs: np.ndarray) -> tuple[ScanBits, np.ndarray]:
    """``bits`` with its zero-filled stretches (``runs``, bit ranges on whole bytes) taken out,
    and where each was, as empty bit ranges in what is left. Zeros decode as valid blocks, often
    many to a sector, so a decoder reading through them could reach the scan's last MCU inside
    them and never read the photo data after; taken out, the stretch is a lost one: the decoder
    fails where it was and resyncs on the data that follows (docs/decoder.md)."""
    keep = np.ones(bits.nbits // 8, bool)
    for lo, hi in runs.tolist():
        keep[lo // 8: hi // 8] = False
    gone = np.concatenate([[0], np.cumsum(~keep)])  # destuffed bytes removed before each position
    pad = bits.buf[bits.nbits // 8:]
    buf = np.concatenate([bits.buf[: bits.nbits // 8][keep], pad])
    rst_pos = bits.rst_pos - gone[np.minimum(bits.rst_pos, keep.size)]
    at = np.array([[lo - 8 * gone[lo // 8]] * 2 for lo, _ in runs.tolist()], np.int64).reshape(-1, 2)
    return dataclasses.replace(bits, buf=buf, nbits=8 * int(keep.sum()) + bits.nbits % 8,
                               src=bits.src[: keep.size][keep], rst_pos=rst_pos), at


def zero_runs(buf: np.ndarray, nbits: int, min_bytes: int = ZERO_RUN_BYTES) -> np.ndarray:
    """Bit ranges (k, 2) of the stretches of at least ``min_bytes`` zero bytes in a scan's
    destuffed data. Where zeros are not flat blocks under the scan's tables (the standard tables:
    they decode as blocks whose 63 AC coefficients are all -1), photo data does not hold such a
    stretch, yet it decodes without a failure: a read that failed and was zero-filled (ddrescue)
    is found here, not by the decoder."""
    data = buf[: nbits // 8]
    if data.size < min_bytes:
        return np.zeros((0, 2), np.int64)
    edges = np.diff(np.concatenate([[0], (data == 0).view(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = ends - starts >= min_bytes
    return np.stack([8 * starts[keep], 8 * ends[keep]], axis=1).astype(np.int64)


# --------------------------------------------------------------------------- the file

def _segments_at(data: bytes, offset: int) -> list:
    """The header segments starting at ``offset`` up to the next SOS, with file offsets."""
    return list(iter_header_segments(data, at=offset))


def _next_scan_check(data: bytes, tables: Tables, covered: set[int], progressive: bool = False):
    """A find_scan_end ``accept``: the chain must apply cleanly and open a scan of new components
    (any components in a progressive frame, whose scans each add a band)."""
    def accept(offset: int, _segs) -> bool:
        trial = dataclasses.replace(tables, qt=dict(tables.qt), huff=dict(tables.huff))
        try:
            scan = None
            for seg in _segments_at(data, offset):
                scan = apply_segment(seg, data, trial)
        except AcirError:
            return False
        return scan is not None and (progressive or not ({sc.index for sc in scan.components} & covered))
    return accept


def decode(data: bytes, mode: str = "robust", *, resync: str = "lookahead", max_pixels: int = DEFAULT_MAX_PIXELS,
           source: str | None = None, lookback_bits: int = 256, window_bits: int = 8192, lookahead: int = 32,
           max_candidates: int = 64, head: HeadStart | None = None, dc_hint: DCHint | None = None,
           search_refinements: bool = True) -> DecodeResult:
    """Decode a baseline/extended sequential Huffman JPEG (see the module docstring).

    ``resync`` (robust mode): ``lookahead`` (default) or ``paper``. ``lookback_bits``: MCUs that
    start within this many bits before a detected failure are flagged suspect. ``window_bits``,
    ``lookahead``, ``max_candidates`` bound the lookahead search (bits searched after the
    failure, MCUs decoded ahead per candidate, candidates scored). ``head``: the first scan's
    beginning was lost; its data starts there (:class:`HeadStart`, robust mode). ``dc_hint``: a
    progressive file's DC as a first decode and its thumbnail put right; AC first scans place the
    runs they read between two failures against it (robust mode). ``search_refinements`` false:
    a first look at a damaged progressive file (its DC and AC first scans, for ``dc_hint``), whose
    AC refinement scans stop at their first failure rather than search where they resume, the
    costliest part of its decode (:attr:`DecodeResult.deferred` says whether one did).
    """
    if mode not in MODES:
        raise InvalidParameter(f"decode mode must be one of {', '.join(MODES)}, got {mode!r}")
    if resync not in RESYNC_METHODS:
        raise InvalidParameter(f"resync must be one of {', '.join(RESYNC_METHODS)}, got {resync!r}")
    robust = mode == "robust"
    opts = {"lookback_bits": lookback_bits, "window_bits": window_bits, "lookahead": lookahead,
            "max_candidates": max_candidates, "search": search_refinements}
    data = bytes(data)
    data_arr = np.frombuffer(data, np.uint8)
    tables = Tables()
    try:
        scan = None
        for seg in iter_header_segments(data, source):
            scan = apply_segment(seg, data, tables, max_pixels)
        if tables.frame is None:
            raise CorruptHeader("no SOF (frame header) before the scan")
        frame = dataclasses.replace(tables.frame, color=color_space(tables.frame, tables))
        grids = [frame.block_grid(ci) for ci in range(len(frame.components))]
        sizes = [r * c for r, c in grids]
        bases = list(np.cumsum([0] + sizes[:-1]))
        coef_flat = np.zeros((sum(sizes), 64), np.int16)
        known = np.zeros(sum(sizes), np.uint64)  # per block: the coefficients whose history it has
        doubt = np.zeros(sum(sizes), np.uint8)  # per block: a refinement of it was lost (later ones cannot read it)
        scans = []
        witness = BandWitness.empty(sum(sizes)) if robust and frame.marker == 0xC2 else None
        trusted: dict[int, np.ndarray] = {}  # per component, blocks whose DC is in place (realign narrows it)
        covered: set[int] = set()
        while scan is not None:
            covered |= {sc.index for sc in scan.components}
            # sequential JPEG codes each component in exactly one scan: once all are covered, no
            # further scan can follow and damaged data cannot fake one
            progressive = frame.marker == 0xC2
            accept = None if len(covered) == len(frame.components) and not progressive else \
                _next_scan_check(data, tables, covered, progressive)
            end, more = find_scan_end(data, scan.data_start, accept)
            if progressive:
                soft = robust and scan.kind == 3 and _conventional(scans)
                sr = _decode_progressive(len(scans), data_arr, data, scan, end, frame, tables, coef_flat, known,
                                         doubt, bases, robust, opts, source, soft=soft)
                if _placed_after(scan, robust) and (sr.silent_shift or sr.resyncs):
                    si = len(scans)
                    ci = scan.components[0].index
                    if ci not in trusted:
                        trusted[ci] = dc_in_place(scans, frame, ci) if dc_hint is None else dc_hint.in_place[ci].copy()
                    ok = trusted[ci]
                    sr = place_silent(sr, scan, frame, coef_flat, known, bases[ci], tables.qt[frame.components[ci].tq],
                                      ok, lambda split: _decode_progressive(
                                          si, data_arr, data, scan, end, frame, tables, coef_flat, known, doubt,
                                          bases, True, opts, source, split, soft),
                                      None if dc_hint is None else dc_hint.dc[ci], witness)
                elif witness is not None and scan.kind == AC_FIRST:
                    ci = scan.components[0].index
                    witness.keep(sr, scan.ss, scan.se, coef_flat, bases[ci], grids[ci][1], middle=True)
                scans.append(sr)
            else:
                scans.append(_decode_scan(len(scans), data_arr, data, scan, end, frame, tables, coef_flat, bases,
                                          robust, resync, opts, source, head if not scans else None))
            scan = None
            if more:
                for seg in _segments_at(data, end):
                    scan = apply_segment(seg, data, tables, max_pixels)
    except AcirError as exc:
        if exc.source is None and source is not None:
            raise exc.with_source(source) from None
        raise
    coefficients = tuple(coef_flat[b : b + r * c].reshape(r, c, 64) for b, (r, c) in zip(bases, grids))
    qtables = tuple(tables.qt[c.tq].copy() for c in frame.components)
    bands = tuple(known[b: b + r * c].reshape(r, c) for b, (r, c) in zip(bases, grids)) \
        if frame.marker == 0xC2 else None
    rgb = render(frame, coefficients, qtables, bands=bands)
    seen = witness.planes(bases, grids) if witness is not None else (None, None)
    return DecodeResult(rgb=rgb, frame=frame, coefficients=coefficients, qtables=qtables, scans=tuple(scans),
                        mode=mode, resync_method=resync, bands=bands, witness=seen[0], witness_bands=seen[1],
                        dc_hint=dc_hint)
