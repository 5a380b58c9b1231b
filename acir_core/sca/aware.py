"""Decoder-aware self-compensation and alignment (design.md §3).

The paper's SCA looks at pixels only and has to guess where segments start. Our decoder knows:
every resync is recorded with its MCU and bit position, restart markers fix exact anchors, and
the number of MCUs in the scan is fixed. So:

1. Each restart segment is split into *runs* at the resync events. Run 0 of a segment is right
   as decoded. Every later run is (a) shifted by an unknown whole number of MCUs (the garbled bits
   decoded as more or fewer MCUs than they held) and (b) carries one constant DC error per
   component (DC is coded as differences). Nothing else is wrong with it.
2. For each run and each candidate shift in a window, the DC error per component is the robust
   (median) offset that joins the run's first row of MCUs to the already-placed content above
   (and, when a thumbnail is available, the offset between the run's MCU means and the
   thumbnail's); the cost is what remains. A dynamic programme over the runs picks the shifts
   under the constraint that the segment ends where the data says (missing MCUs at its end mean
   MCUs were lost; MCUs still decodable after its last one mean MCUs were gained).
3. Corrections are applied to the quantised coefficients (shift = move MCUs, DC = integer
   subtraction) and the image re-rendered: where the estimates are right, every pixel outside the
   damage equals the clean decode exactly.
4. The damage mask: MCUs decoded from bits around each failure (a window before the failure, where
   the garbage began, and after it, where CBC's garbled block and flipped bit end), the MCU decoded
   at each resume point, runs too short or not confidently placed, and positions no run covers;
   with a thumbnail that is our downsample, what it contradicts and, as precautions, where
   unflagged garbage is likely or the thumbnail cannot check (the MCUs decoded around what it
   rejects, the MCU rows beside damage it sees poorly, unseen MCUs near damage: see
   :func:`_thumbnail_refine`). Outside the mask the eval photos at 1e-5 are the clean decode
   exactly (README, Quality).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from PIL import Image

from acir_core.errors import InvalidParameter
from acir_core.jpeg.decoder import DecodeResult, ScanResult
from acir_core.jpeg.render import SamplePlanes, rows_redone
from acir_core.jpeg.tables import scan_cell
from acir_core.sca.envelope import cholesky_envelope, envelope_start, solve_envelope
from acir_core.sca.fill import dilate as dilate_mask
from acir_core.sca.fill import disagreeing, fill_disagreeing, inpaint, upsample_thumbnail
from acir_core.sca.median import BUCKETS, bucket_median, median
from acir_core.sca.thumbdc import Downsample, jfif_planes, solve_offsets

_DCT = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)]
                 for u in range(8)], dtype=np.float32)
_INF = np.float64(1e18)


@dataclass(frozen=True)
class SegmentFix:
    """How one run of decoded MCUs was put back: decoded MCUs ``[first_mcu, end_mcu)`` of ``scan``
    belong at index + ``shift``; ``dc`` (quantised units, per scan component) was subtracted from
    their DC. ``cost``: mean boundary/thumbnail residual in sample levels; ``confident``: the run's
    pixels are trusted (otherwise they are in the damage mask)."""

    scan: int
    first_mcu: int
    end_mcu: int
    shift: int
    dc: tuple[int, ...]
    cost: float
    confident: bool


@dataclass(frozen=True, eq=False)
class SCAResult:
    """Compensated image (H×W×3 uint8), damage mask (H×W bool, True = not trusted), the per-MCU
    damage grid of the first scan, what was done per run, corrected coefficients, and timings (s).
    ``doubtful``: the part of ``mcu_mask`` marked only as a precaution (content placed in a
    confident run, but next to garbage or unseen by the thumbnail: mostly right), or None."""

    rgb: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    mcu_mask: np.ndarray = field(repr=False)
    segments: tuple[SegmentFix, ...]
    coefficients: tuple[np.ndarray, ...] = field(repr=False)
    method: str
    fill: str
    timings: dict[str, float]
    doubtful: np.ndarray | None = field(default=None, repr=False)

    @property
    def damaged_fraction(self) -> float:
        return float(self.mask.mean())


@dataclass(frozen=True)
class AwareOptions:
    """Tuning: shift search window (MCUs) around the previous run's shift, bits before/after each
    failure whose MCUs are damaged, MCUs after each resume point left out (``skip_mcus``) and then
    placed but marked damaged (``settle_mcus``), MCUs before those walked back from a failure
    placed but marked (``lead_mcus``: garbage can decode for longer; train photos at 1e-5, 0 to 3
    of them: files exact 18 / 20 / 21 / 22 of 43, mask 12.7 / 13.0 / 13.4 / 13.9 %), gaps of
    up to ``hole_mcus`` unmarked MCUs between marked ones of a fix marked too (2 / 4 / 6 with the
    rule beside damage of :func:`_thumbnail_refine`: 53 / 54 / 56 of 56 train files exact at 1e-5,
    0.3 % more of the image marked from 2 to 6; the last misses were stretches of 3 to 6 MCUs
    between marked ones, one of them garbled), MCUs decoded before
    / after garbage the thumbnail rejects marked (``garble_before`` / ``garble_after``; train
    photos at 1e-5, 2 / 3 / 4 / 6 before: files exact 36 / 38 / 39 / 39 of 43 and 34 / 34 / 36 / 36
    of 41, mask 15.1 / 15.3 / 15.6 / 16.2 % and 20.1 / 20.4 / 20.8 / 21.5 %; 1 after instead of 2:
    37 and 32 exact), the shortest run worth placing, and the confidence limit."""

    window: int = 16
    refine: int = 5
    back_bits: int = 256
    forward_bits: int = 320
    back_mcus: int = 3
    skip_mcus: int = 1
    settle_mcus: int = 7
    lead_mcus: int = 2
    hole_mcus: int = 6
    garble_before: int = 4
    garble_after: int = 2
    min_split: int = 24
    pulse_min: float = 2.0
    pulse_sigma: float = 6.0
    level_tolerance: float = 5.0
    outlier_sigma: float = 8.0
    outlier_levels: float = 24.0
    min_run: int = 3
    thumb_weight: float = 1.0
    confidence_factor: float = 2.5


# --------------------------------------------------------------------------- geometry

def _scan_geometry(result: DecodeResult, sr: ScanResult):
    frame = result.frame
    inter = len(sr.components) > 1
    comps = []
    for ci in sr.components:
        c = frame.components[ci]
        h, v = (c.h, c.v) if inter else (1, 1)
        comps.append((ci, h, v))
    return inter, comps


def _mcu_cell(result: DecodeResult, sr: ScanResult) -> tuple[int, int]:
    """Pixels (height, width) one MCU of this scan covers."""
    return scan_cell(result.frame, sr.components)


def _mcu_major(coefs: np.ndarray, rows: int, cols: int, v: int, h: int) -> np.ndarray:
    """(rows*v, cols*h, 64) block grid -> (rows*cols, v, h, 64) MCU-major copy."""
    a = coefs[: rows * v, : cols * h].reshape(rows, v, cols, h, 64)
    return a.transpose(0, 2, 1, 3, 4).reshape(rows * cols, v, h, 64).copy()


def _grid(mcus: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`_mcu_major`."""
    n, v, h, _ = mcus.shape
    return mcus.reshape(rows, cols, v, h, 64).transpose(0, 2, 1, 3, 4).reshape(rows * v, cols * h, 64)


@dataclass(frozen=True)
class _Edges:
    """What placing runs reads of one component's MCUs (float samples, level-shifted, unclipped):
    per decoded MCU its two top and two bottom sample rows (N, width), its two left and two right
    columns (N, height), and its mean. Only the MCU's border is ever compared, so the interior is
    never computed."""

    top: np.ndarray
    top2: np.ndarray
    bottom: np.ndarray
    bottom2: np.ndarray
    left: np.ndarray
    left2: np.ndarray
    right: np.ndarray
    right2: np.ndarray
    mean: np.ndarray

    @classmethod
    def of(cls, mcus: np.ndarray, qt: np.ndarray) -> "_Edges":
        return cls(*_edge_lines(mcus, np.asarray(qt, np.float64).reshape(64), _DCT.astype(np.float64)))


@njit(cache=True)
def _edge_lines(mcus: np.ndarray, qt: np.ndarray, dct: np.ndarray):
    """The border lines and means of every MCU (N, v, h, 64 coefficients) by the float IDCT,
    computed for those lines alone: a sample row y of a block is Σ_w (Σ_u D[u,y]·X[u,w])·D[w,x],
    a column the same the other way, so a line costs two 8×8 passes instead of the block's
    whole transform, and coefficient rows and columns past the last nonzero one are skipped
    (their terms are exact zeros: the sums are the same). A block's mean is its DC·q/8."""
    n, v, h, _ = mcus.shape
    top = np.empty((n, 8 * h))
    top2 = np.empty((n, 8 * h))
    bottom = np.empty((n, 8 * h))
    bottom2 = np.empty((n, 8 * h))
    left = np.empty((n, 8 * v))
    left2 = np.empty((n, 8 * v))
    right = np.empty((n, 8 * v))
    right2 = np.empty((n, 8 * v))
    mean = np.full(n, 128.0)
    x = np.empty((8, 8))
    part = np.empty(8)
    for i in range(n):
        for a in range(v):
            for b in range(h):
                blk = mcus[i, a, b]
                last_u, last_w = -1, -1  # the last nonzero coefficient row and column
                for u in range(8):
                    for w in range(8):
                        x[u, w] = blk[u * 8 + w] * qt[u * 8 + w]
                        if x[u, w] != 0.0:
                            last_u = u
                            last_w = max(last_w, w)
                mean[i] += x[0, 0] / 8.0 / (v * h)
                for y in range(8):  # sample rows: 0, 1 of a top block, 7, 6 of a bottom one
                    if not ((a == 0 and y < 2) or (a == v - 1 and y > 5)):
                        continue
                    for w in range(last_w + 1):
                        s = 0.0
                        for u in range(last_u + 1):
                            s += dct[u, y] * x[u, w]
                        part[w] = s
                    line = top if y == 0 else top2 if y == 1 else bottom if y == 7 else bottom2
                    for c in range(8):
                        s = 128.0
                        for w in range(last_w + 1):
                            s += part[w] * dct[w, c]
                        line[i, b * 8 + c] = s
                for c in range(8):  # sample columns: 0, 1 of a left block, 7, 6 of a right one
                    if not ((b == 0 and c < 2) or (b == h - 1 and c > 5)):
                        continue
                    for u in range(last_u + 1):
                        s = 0.0
                        for w in range(last_w + 1):
                            s += x[u, w] * dct[w, c]
                        part[u] = s
                    line = left if c == 0 else left2 if c == 1 else right if c == 7 else right2
                    for y in range(8):
                        s = 128.0
                        for u in range(last_u + 1):
                            s += dct[u, y] * part[u]
                        line[i, a * 8 + y] = s
    return top, top2, bottom, bottom2, left, left2, right, right2, mean


def _thumb_means(thumb: np.ndarray, result: DecodeResult, sr: ScanResult, comps) -> np.ndarray:
    """Per MCU and scan component, the thumbnail's value there in the frame's colour space: the
    thumbnail converted (JFIF equations), then resampled to the MCU grid of the component."""
    frame = result.frame
    planes = [p.astype(np.float32) for p in jfif_planes(thumb, frame.color)]
    out = np.zeros((sr.mcu_rows * sr.mcu_cols, len(comps)), np.float64)
    for k, (ci, h, v) in enumerate(comps):
        c = frame.components[ci]
        ph = 8 * (frame.max_v // c.v) * v  # pixels per MCU
        pw = 8 * (frame.max_h // c.h) * h
        # the image area the MCU grid covers, in thumbnail pixels: the last MCUs overhang the image,
        # so the thumbnail is extended by repeating its edge (Pillow refuses a box past the image)
        th, tw = thumb.shape[:2]
        bw, bh = sr.mcu_cols * pw * tw / frame.width, sr.mcu_rows * ph * th / frame.height
        arr = planes[min(ci, len(planes) - 1)]
        extra = (max(int(np.ceil(bh - th - 1e-6)), 0), max(int(np.ceil(bw - tw - 1e-6)), 0))
        if any(extra):
            arr = np.pad(arr, ((0, extra[0]), (0, extra[1])), mode="edge")
        box = (0.0, 0.0, min(bw, arr.shape[1]), min(bh, arr.shape[0]))
        plane = Image.fromarray(np.ascontiguousarray(arr), "F")
        grid = plane.resize((sr.mcu_cols, sr.mcu_rows), Image.Resampling.BICUBIC, box=box)
        out[:, k] = np.asarray(grid).reshape(-1)
    return out


# --------------------------------------------------------------------------- runs

@dataclass
class _Run:
    first: int
    end: int
    trusted: np.ndarray  # decoded MCU indices placed if the run is
    settled: int = -1  # decoded MCUs before this one start the run after a silent break: not sure
    tail: int = 1 << 62  # decoded MCUs from this one on end the run before a silent break: not sure


def _runs_of_segment(sr: ScanResult, f: int, cnt: int, extra: int,
                     opts: AwareOptions) -> tuple[list[_Run], int]:
    """The runs of one restart segment (MCUs between resyncs, damaged ones left out) and the
    shift its last run must end at."""
    decoded = sr.decoded[f : f + cnt]
    n_dec = int(np.argmin(decoded)) if not decoded.all() else cnt
    events = sorted((e for e in sr.resyncs if f <= e.mcu < f + n_dec), key=lambda e: e.mcu)
    starts = sr.mcu_bit_start
    ends = np.empty(n_dec, np.int64)
    ends[:-1] = starts[f + 1 : f + n_dec] if n_dec > 1 else np.zeros(0, np.int64)
    if n_dec:
        ends[-1] = starts[f + n_dec - 1] + 1
    hurt = sr.suspect[f : f + n_dec].astype(bool)  # per decoded MCU of the segment
    seg_starts = starts[f : f + n_dec]
    # decoding only goes forward, so the MCUs whose bits overlap a window are one stretch, found
    # by bisection (a scan of the segment per event cost ~2 ms a photo at 1e-4)
    ordered = n_dec < 2 or bool(np.all(np.diff(seg_starts) >= 0) and np.all(np.diff(ends) >= 0))
    for e in events:
        hurt[max(0, e.mcu - opts.back_mcus - f): min(n_dec, e.mcu + 1 + opts.skip_mcus - f)] = True
        lo, hi = e.fail_bit - opts.back_bits, e.fail_bit + opts.forward_bits
        if ordered:
            hurt[np.searchsorted(ends, lo, side="right"):np.searchsorted(seg_starts, hi, side="left")] = True
        else:
            hurt |= (seg_starts < hi) & (ends > lo)
    bounds = [f] + [e.mcu for e in events] + [f + n_dec]
    runs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = np.arange(a, b)
        runs.append(_Run(a, b, idx[~hurt[a - f: b - f]]))
    final_shift = -extra if n_dec == cnt else cnt - n_dec
    return runs, final_shift


def _unsettled(sr: ScanResult, n: int, opts: AwareOptions) -> np.ndarray:
    """Decoded MCUs (bool per index) that follow a resume point by ``skip_mcus`` + 1 to
    ``skip_mcus`` + ``settle_mcus``: the resync takes the first bit from which many MCUs decode,
    and a start a few bits early decodes a wrong block or two before its Huffman codes fall into
    step with the true ones (train photos: the 2nd to 6th MCU after the resume point, mostly one
    block's AC wrong, were 40 % of the MCUs still missed at 1e-6 and 8 % at 1e-5; with the other
    precautions in place, the 7th and 8th kept two of 41 files at 1e-5 from being exact for 0.85 %
    more of the image marked). Mostly right, so they are placed (the fill keeps what agrees with
    the thumbnail), but not trusted. The same holds after a silent break a run is split at
    (``_Run.settled``)."""
    out = np.zeros(n, bool)
    for e in sr.resyncs:
        first = e.mcu + 1 + opts.skip_mcus
        out[min(first, n): min(first + opts.settle_mcus, n)] = True
        # and before the MCUs walked back from the failure: garbage can decode for longer
        seg = int(sr.segment_first[max(np.searchsorted(sr.segment_first, e.mcu, side="right") - 1, 0)])
        out[max(e.mcu - opts.back_mcus - opts.lead_mcus, seg): max(e.mcu - opts.back_mcus, seg)] = True
    return out


@njit(cache=True)
def _step_scan(z: np.ndarray, min_split: int):
    """The likeliest single step in a run's offsets ``z`` (N, K): per split point p (at least
    ``min_split`` from either end), the difference of the means after and before (values clipped
    to 6 robust spreads of their median), in standard errors, largest over components. Returns
    the best p, its score, and its largest jump (DC units)."""
    n, k_n = z.shape
    med = np.empty(k_n)
    mad = np.empty(k_n)
    cs = np.zeros((n + 1, k_n))
    for k in range(k_n):
        col = z[:, k].copy()
        med[k] = np.median(col)
        mad[k] = np.median(np.abs(col - med[k])) + 0.25
        lo, hi = med[k] - 6 * mad[k], med[k] + 6 * mad[k]
        for i in range(n):
            cs[i + 1, k] = cs[i, k] + min(max(col[i], lo), hi)
    best_p, best, best_jump = min_split, -1.0, 0.0
    for p in range(min_split, n - min_split + 1):
        se = np.sqrt(p * (n - p) / n)
        score, top = -1.0, 0.0
        for k in range(k_n):
            jump = abs((cs[n, k] - cs[p, k]) / (n - p) - cs[p, k] / p)
            score = max(score, jump / mad[k] * se)
            top = max(top, jump)
        if score > best:
            best_p, best, best_jump = p, score, top
    return best_p, best, best_jump


def _split_at(run: _Run, cut: int, cut_mcu: int, opts: AwareOptions) -> tuple[_Run, _Run]:
    """``run`` split at a silent break at its ``cut``-th trusted MCU (decoded index ``cut_mcu``):
    the MCUs just before and after it are left out as around a failure, and the next few on
    either side are kept but marked (``lead_mcus``, ``settle_mcus``)."""
    m = run.trusted
    a = _Run(run.first, cut_mcu, m[: max(cut - opts.back_mcus, 0)], run.settled,
             int(m[max(cut - opts.back_mcus - opts.lead_mcus, 0)]))
    b = _Run(cut_mcu, run.end, m[cut + opts.skip_mcus + 1 :], cut_mcu + 1 + opts.skip_mcus + opts.settle_mcus,
             run.tail)
    return a, b


def _split_silent(run: _Run, offsets: np.ndarray | None, units: list[float], opts: AwareOptions,
                  depth: int = 0) -> list[_Run]:
    """Split a run where its DC offset against the thumbnail steps: a damaged stretch that decoded
    without any failure (Huffman codes self-synchronise) still changes the DC predictors."""
    m = run.trusted
    if offsets is None or m.size < 2 * opts.min_split or depth > 12:
        return [run]
    z = offsets[m] / np.asarray(units)[None, :]  # per trusted MCU, per component, in DC units
    cut, score, jump = _step_scan(z, opts.min_split)
    if score < 12.0 or jump < 1.5:
        return [run]
    a, b = _split_at(run, cut, int(m[cut]), opts)
    return _split_silent(a, offsets, units, opts, depth + 1) + _split_silent(b, offsets, units, opts, depth + 1)


def _split_pulse(run: _Run, rough: np.ndarray, cols: int, opts: AwareOptions, depth: int = 0,
                 per_mcu_noise: bool = False) -> list[_Run]:
    """Split a run at a silent break found from continuity alone: after a break at MCU p, the MCUs
    p..p+cols-1 sit under content decoded before it (other DC, maybe other shift), so the boundary
    roughness to the MCU above rises for exactly one row's worth of MCUs. Also run on
    :func:`_misalignment` (``per_mcu_noise``: the row mean's noise from the MCUs' spread), which
    shows a silent loss or gain of one MCU in texture: missed, such a break left the rest of the
    run one MCU off, and every later run was then placed to match it, down to the image's end
    (a train photo at 1e-5: 6971 MCUs wrong outside the mask)."""
    m = run.trusted
    if m.size < 3 * cols or depth > 12:
        return [run]
    lo = np.searchsorted(m, run.first + cols)
    idx = m[lo:]
    if idx.size < 2 * cols:
        return [run]
    r = rough[idx]
    cs = np.concatenate([[0.0], np.cumsum(r)])
    win = (cs[cols:] - cs[:-cols]) / cols  # mean roughness of the row starting at each position
    base = np.median(r)
    if per_mcu_noise:  # a row's mean as noisy as independent MCUs make it: in a short run the
        # pulse itself fills much of the windows, whose own spread then hides it
        spread = 1.4826 * np.median(np.abs(r - base)) / np.sqrt(cols) + 1e-6
    else:
        spread = np.median(np.abs(win - np.median(win))) + 1e-6
    k = int(np.argmax(win))
    excess = win[k] - base
    if excess < opts.pulse_min or excess < opts.pulse_sigma * spread:
        return [run]
    cut_mcu = int(idx[k])
    cut = int(np.searchsorted(m, cut_mcu))
    a, b = _split_at(run, cut, cut_mcu, opts)
    return (_split_pulse(a, rough, cols, opts, depth + 1, per_mcu_noise)
            + _split_pulse(b, rough, cols, opts, depth + 1, per_mcu_noise))


def _roughness(edges: list[_Edges], cols: int, lag: int = 0) -> np.ndarray:
    """Per decoded MCU: mean absolute step across its top edge to the MCU decoded one row earlier
    (``lag`` MCUs later than that: where it belongs if an MCU was lost or gained in between)."""
    n = edges[0].mean.size
    out = np.zeros(n)
    lo = cols + max(-lag, 0)
    hi = n - max(lag, 0)
    if hi <= lo:  # a single MCU row: nothing above
        return out
    for e in edges:
        out[lo:hi] += np.mean(np.abs(e.top[lo:hi] - e.bottom[lo - cols + lag : hi - cols + lag]), axis=1)
    return out / len(edges)


def _misalignment(edges: list[_Edges], cols: int, rough: np.ndarray | None = None) -> np.ndarray:
    """Per decoded MCU: how much better its top edge joins the MCU one place left or right of the
    one decoded a row earlier than that MCU itself. After a silent loss or gain of one MCU the
    next row's worth of MCUs join their true neighbours there, so this rises for one row; in
    texture the plain roughness (:func:`_roughness`, ``rough`` when already computed) is too
    noisy to show such a break."""
    r0 = _roughness(edges, cols) if rough is None else rough
    best = np.minimum(_roughness(edges, cols, -1), _roughness(edges, cols, 1))
    out = r0 - best
    out[: cols + 1] = 0.0
    out[-1] = 0.0
    return out


# --------------------------------------------------------------------------- the estimator

def _inward(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A block's edge samples extrapolated half a pixel out across the edge from its two nearest
    lines. The step across an edge is one side's :func:`_inward` minus the other's
    :func:`_outward`: a linear gradient across the edge, common in skies and walls, then adds no
    bias to the DC estimate."""
    return first - 0.5 * (second - first)


def _outward(last: np.ndarray, before: np.ndarray) -> np.ndarray:
    """The neighbour's side of :func:`_inward`: its last line extrapolated half a pixel on."""
    return last + 0.5 * (last - before)


class _Canvas:
    """The placed content at its true MCU positions, for judging where the next run fits: per
    component only what the edge steps read, each placed MCU's bottom and right edges
    extrapolated half a pixel outwards (:func:`_outward`) plus the DC correction it was placed
    with. ``outer``: those edges of every decoded MCU, uncorrected."""

    def __init__(self, outer: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]):
        self.outer = outer  # tuples of arrays: what the compiled placing and search take
        self.bottom = tuple(np.zeros_like(e) for e in outer[0])
        self.right = tuple(np.zeros_like(e) for e in outer[1])
        self.known = np.zeros(outer[0][0].shape[0], bool)

    def place(self, true_pos: np.ndarray, dec_idx: np.ndarray, offsets: list[float]) -> None:
        _place(self.bottom, self.right, self.outer[0], self.outer[1], self.known, true_pos, dec_idx,
               np.asarray(offsets, np.float64))


@njit(cache=True)
def _place(bottoms, rights, outer_bottoms, outer_rights, known, true_pos, dec_idx, offsets) -> None:
    """:meth:`_Canvas.place` for every component in one compiled call (~200 runs a photo at 1e-4)."""
    for k in range(offsets.size):
        off = offsets[k]
        for q in range(true_pos.size):
            t, i = true_pos[q], dec_idx[q]
            for x in range(bottoms[k].shape[1]):
                bottoms[k][t, x] = outer_bottoms[k][i, x] + off
            for x in range(rights[k].shape[1]):
                rights[k][t, x] = outer_rights[k][i, x] + off
    for q in range(true_pos.size):
        known[true_pos[q]] = True


@njit(cache=True)
def _edge_terms(inner, outer, known, m, use, s, f, cnt, offset, row_start_ok, cols, w, vals, wts, n):
    """Append the steps across one edge (above: ``offset`` = cols; left: 1) of each probed MCU at
    shift ``s`` whose neighbour there is placed: the MCU's extrapolated edge (``inner``, per
    decoded MCU) minus the neighbour's (``outer``, per position). Returns the new count."""
    for q in range(use.size):
        i = m[use[q]]
        t = i + s
        nb = t - offset
        if t < f or t >= f + cnt or nb < 0 or not known[nb] or (row_start_ok and t % cols == 0):
            continue
        for x in range(inner.shape[1]):
            vals[n] = inner[i, x] - outer[nb, x]
            wts[n] = w
            n += 1
    return n


@njit(cache=True)
def _shift_costs(top: np.ndarray, left: np.ndarray, bottom: np.ndarray, right: np.ndarray, known: np.ndarray,
                 m: np.ndarray, shifts: np.ndarray, f: int, cnt: int, cols: int, use_a: np.ndarray,
                 use_l: np.ndarray, use_t: np.ndarray, means: np.ndarray, thumb: np.ndarray,
                 thumb_weight: float, unit: float):
    """One component's part of :func:`_evaluate_shifts`, per shift: the steps across the edges to placed
    content above and left (each side extrapolated half a pixel, :func:`_inward`: ``top`` and
    ``left`` per decoded MCU, the canvas's ``bottom`` and ``right`` per position) and the
    offsets of MCU means from the thumbnail; their median gives the DC, the best of it and its two
    neighbours by weighted mean absolute residual gives the cost. Returns (cost, dc, measured)."""
    n_s = shifts.size
    tw, th = top.shape[1], left.shape[1]
    cap = use_a.size * tw + use_l.size * th + use_t.size
    vals = np.empty(cap)
    wts = np.empty(cap)
    bucket = np.empty(cap, np.int64)
    work = np.empty(cap)
    counts = np.zeros(BUCKETS, np.int64)  # bucket_median leaves it all zero
    cost = np.full(n_s, 1e18)
    dc = np.zeros(n_s, np.int64)
    has = np.zeros(n_s, np.bool_)
    wa = 1.0 / max(use_a.size * tw, 1)
    wl = 1.0 / max(use_l.size * th, 1)
    wt = thumb_weight / max(use_t.size, 1)
    for si in range(n_s):
        s = shifts[si]
        n = 0
        n = _edge_terms(top, bottom, known, m, use_a, s, f, cnt, cols, False, cols, wa, vals, wts, n)
        n = _edge_terms(left, right, known, m, use_l, s, f, cnt, 1, True, cols, wl, vals, wts, n)
        for q in range(use_t.size):
            i = m[use_t[q]]
            t = i + s
            if t < f or t >= f + cnt:
                continue
            vals[n] = means[i] - thumb[min(max(t, 0), thumb.size - 1)]
            wts[n] = wt
            n += 1
        if n == 0:
            continue
        med = bucket_median(vals, n, 0.5 * unit, counts, bucket, work) / unit
        base = np.int64(np.rint(med))
        wsum = 0.0
        lo_acc, mid_acc, hi_acc = 0.0, 0.0, 0.0
        c_lo, c_mid, c_hi = (base - 1) * unit, base * unit, (base + 1) * unit
        for j in range(n):
            wj = wts[j]
            wsum += wj
            lo_acc += abs(vals[j] - c_lo) * wj
            mid_acc += abs(vals[j] - c_mid) * wj
            hi_acc += abs(vals[j] - c_hi) * wj
        wsum = max(wsum, 1e-12)
        best, best_dc = 1e18, base
        for delta, acc in ((-1, lo_acc), (0, mid_acc), (1, hi_acc)):
            acc /= wsum
            if acc < best:
                best, best_dc = acc, base + delta
        cost[si] = best
        dc[si] = best_dc
        has[si] = True
    return cost, dc, has


@njit(cache=True)
def _with_neighbour(m: np.ndarray, shifts: np.ndarray, f: int, cnt: int, cols: int, known: np.ndarray,
                    offset: int, limit: int) -> np.ndarray:
    """Indices into ``m`` (at most ``limit``, in order) of the MCUs that, at some shift, land in
    the segment with a placed neighbour ``offset`` places before (above: cols; left: 1, not
    across a row start)."""
    out = np.empty(min(limit, m.size), np.int64)
    last = known.size - 1  # the last placed position: MCUs beyond it (+ the widest shift) have none
    while last >= 0 and not known[last]:
        last -= 1
    lowest = shifts.min() if shifts.size else 0
    n = 0
    for q in range(m.size):
        if n == limit or m[q] + lowest - offset > last:
            break
        for s in shifts:
            t = m[q] + s
            nb = t - offset
            if t < f or t >= f + cnt or nb < 0 or not known[nb] or (offset == 1 and t % cols == 0):
                continue
            out[n] = q
            n += 1
            break
    return out[:n]


def _search_runs(runs: list[_Run], f: int, cnt: int, cols: int, inner: tuple[tuple, tuple], units,
                 canvas: _Canvas, thumb: tuple, use_thumb: bool, opts: AwareOptions, means: tuple
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place ``runs`` (the later runs of one restart segment) one after another, each at its best
    shift within ``opts.window`` of the one before, and return every run's costs (R, S) over its
    shifts ``bases[r] + 0..S-1``, with the best integer DC per shift and component (R, S, K):
    the residual after removing the DC offset, as mean absolute sample difference across the
    boundary to the placed content above/left and to the thumbnail (:func:`_shift_costs`).
    ``inner``: per component, every decoded MCU's top and left edges extrapolated
    (:func:`_inward`); ``thumb``: per component, the thumbnail's mean at each MCU position
    (contiguous; read only with ``use_thumb``). One compiled call per segment: at 1e-4 a photo
    has ~200 runs, and the Python around each run's search had cost a tenth of the search."""
    trusted = np.concatenate([r.trusted for r in runs]).astype(np.int64) if runs else np.zeros(0, np.int64)
    starts = np.cumsum([0] + [r.trusted.size for r in runs]).astype(np.int64)
    return _search_segment(inner[0], inner[1], canvas.bottom, canvas.right, canvas.outer[0], canvas.outer[1],
                           canvas.known, trusted, starts, f, cnt, cols, int(opts.window), int(opts.refine),
                           thumb, use_thumb, means, float(opts.thumb_weight), np.asarray(units, np.float64))


@njit(cache=True)
def _lowest(costs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` lowest costs, lowest first, the lower index first among equals (a
    stable argsort's first ``k``; NumPy's default sort leaves the order of ties unspecified)."""
    taken = np.zeros(costs.size, np.bool_)
    out = np.empty(min(k, costs.size), np.int64)
    for q in range(out.size):
        best, arg = np.inf, -1
        for j in range(costs.size):
            if not taken[j] and (arg < 0 or costs[j] < best):
                best, arg = costs[j], j
        taken[arg] = True
        out[q] = arg
    return out


@njit(cache=True)
def _search_segment(tops, lefts, bottoms, rights, outer_bottoms, outer_rights, known, trusted, starts, f, cnt,
                    cols, window, refine, thumbs, use_thumb, means, thumb_weight, units):
    """:func:`_search_runs`, compiled: per run, a coarse pass over every shift on a quarter of the
    samples, then the best ``refine`` in full; the run is placed on the canvas at the lowest
    cost (the first among equals) with its DC. A run that no shift can judge keeps the shift
    before it, at cost ``_INF`` / 2 (finite: the programme may still pass through it)."""
    n_runs, span, n_k = starts.size - 1, 2 * window + 1, units.size
    costs = np.full((n_runs, span), _INF)
    dcs = np.zeros((n_runs, span, n_k), np.int64)
    bases = np.empty(n_runs, np.int64)
    offsets = np.empty(n_k)
    prev = 0
    for r in range(n_runs):
        m = trusted[starts[r]: starts[r + 1]]
        base = prev - window
        bases[r] = base
        if m.size:
            cand = np.arange(base, base + span)
            c, d = _evaluate_shifts(tops, lefts, bottoms, rights, known, m, cand, f, cnt, cols, 4, thumbs,
                                    use_thumb, means, thumb_weight, units)
            top = _lowest(c, refine)
            c_top, d_top = _evaluate_shifts(tops, lefts, bottoms, rights, known, m, cand[top], f, cnt, cols, 1,
                                            thumbs, use_thumb, means, thumb_weight, units)
            for q in range(top.size):
                c[top[q]] = c_top[q]
                d[top[q]] = d_top[q]
            costs[r] = c
            dcs[r] = d
        arg = -1
        for j in range(span):
            if costs[r, j] < _INF and (arg < 0 or costs[r, j] < costs[r, arg]):
                arg = j
        if arg < 0:
            arg = window
            costs[r, arg] = _INF / 2
        best = base + arg
        n_in = 0
        for q in range(m.size):
            if f <= m[q] + best < f + cnt:
                n_in += 1
        pos = np.empty(n_in, np.int64)
        dec = np.empty(n_in, np.int64)
        n_in = 0
        for q in range(m.size):
            if f <= m[q] + best < f + cnt:
                pos[n_in] = m[q] + best
                dec[n_in] = m[q]
                n_in += 1
        for k in range(n_k):
            offsets[k] = -dcs[r, arg, k] * units[k]
        _place(bottoms, rights, outer_bottoms, outer_rights, known, pos, dec, offsets)
        prev = best
    return costs, dcs, bases


@njit(cache=True)
def _evaluate_shifts(tops, lefts, bottoms, rights, known, m, sh, f, cnt, cols, stride, thumbs, use_thumb, means,
                     thumb_weight, units):
    """Costs (S,) of placing the run of decoded MCUs ``m`` at each shift ``sh``, and the best
    integer DC per shift and component (S, K), probing every ``stride``-th MCU with a placed
    neighbour (see :func:`_search_runs`). All components in one call: a run is costed ~400 times
    per photo at 1e-4, and per-component calls and array juggling around :func:`_shift_costs`
    had cost half as much again as the costs themselves."""
    n_s, n_k = sh.size, units.size
    # probe the first 2 rows' worth of MCUs that have a placed neighbour for some shift
    use_a = _with_neighbour(m, sh, f, cnt, cols, known, cols, 2 * cols)[::stride]
    use_l = _with_neighbour(m, sh, f, cnt, cols, known, 1, cols)[::stride]
    if use_thumb:
        use_t = np.arange(0, m.size, max(1, m.size // (512 // stride)))
    else:
        use_t = np.zeros(0, np.int64)
    total = np.zeros(n_s)
    weight = np.zeros(n_s)
    dcs = np.zeros((n_s, n_k), np.int64)
    for k in range(n_k):
        cost, dc, has = _shift_costs(tops[k], lefts[k], bottoms[k], rights[k], known, m, sh, f, cnt, cols,
                                     use_a, use_l, use_t, means[k], thumbs[k], thumb_weight, units[k])
        for i in range(n_s):
            if has[i]:
                total[i] += cost[i]
                weight[i] += 1.0
            dcs[i, k] = dc[i]
    costs = np.empty(n_s)
    for i in range(n_s):
        costs[i] = total[i] / max(weight[i], 1.0) if weight[i] > 0 else _INF
    return costs, dcs


def _viterbi(costs: np.ndarray, bases: np.ndarray, start: int, final: int | None, penalty: float) -> list[int]:
    """Shifts per run minimising total cost + penalty·|jumps|, ending at ``final`` when given.
    ``costs`` (R, S): run r's cost at shift ``bases[r]`` + j, ``_INF`` where not costed."""
    if not costs.shape[0]:
        return []
    run, col = np.nonzero(costs < _INF)
    keys = np.concatenate([bases[run] + col, [start] + ([final] if final is not None else [])])
    lo, hi = int(keys.min()), int(keys.max())
    local = np.full((costs.shape[0], hi - lo + 1), _INF)
    local[run, bases[run] + col - lo] = costs[run, col]
    prev, back = _viterbi_pass(local, start - lo, penalty)
    if final is not None and lo <= final <= hi and prev[final - lo] < _INF:
        end = final - lo
    else:
        end = int(np.argmin(prev))
    path = [end]
    for arg in back[:0:-1]:
        path.append(int(arg[path[-1]]))
    return [int(p + lo) for p in path[::-1]]


@njit(cache=True)
def _viterbi_pass(local: np.ndarray, start: int, penalty: float):
    """The forward pass of :func:`_viterbi` over shifts ``0..span-1``: per run and shift the best
    predecessor (the lowest-index one among equals, as ``np.argmin``) and the final totals. A
    state more than ``penalty`` × span above the best can win nowhere (the best one reaches every
    shift for less), so each step reads just the few states a run was costed at, not every pair
    of shifts (uncosted ones sit at ``_INF``); the margin keeps float rounding from deciding."""
    n_r, span = local.shape
    prev = np.full(span, _INF)
    prev[start] = 0.0
    back = np.zeros((n_r, span), np.int64)
    live = np.empty(span, np.int64)
    reach = penalty * span
    for r in range(n_r):
        bound = (prev.min() + reach) * (1.0 + 1e-9) + 1e-9
        n_live = 0
        for j in range(span):
            if prev[j] <= bound:
                live[n_live] = j
                n_live += 1
        nxt = np.empty(span)
        for s in range(span):
            best, arg = np.inf, live[0]
            for q in range(n_live):
                j = live[q]
                v = prev[j] + penalty * abs(s - j)
                if v < best:
                    best, arg = v, j
            back[r, s] = arg
            nxt[s] = best + local[r, s]
        prev = nxt
    return prev, back


@njit(cache=True)
def _group_median_mad(keys: np.ndarray, vals: np.ndarray):
    """Per run of equal ``keys`` (sorted), the median and median absolute deviation of the rows
    of ``vals`` (each row one boundary pair's samples) and the number of samples."""
    n, width = vals.shape
    starts = [0]
    for i in range(1, n):
        if keys[i] != keys[i - 1]:
            starts.append(i)
    g = len(starts)
    out_k = np.empty(g, np.int64)
    med = np.empty(g)
    mad = np.empty(g)
    size = np.empty(g, np.int64)
    for q in range(g):
        a = starts[q]
        b = starts[q + 1] if q + 1 < g else n
        flat = vals[a:b].ravel()
        m = median(flat, 0.5)
        out_k[q], med[q], mad[q], size[q] = keys[a], m, median(np.abs(flat - m), 0.25), flat.size
    return out_k, med, mad, size


@njit(cache=True)
def _median_and_spread(dev: np.ndarray):
    """Per column of ``dev`` (N, K): its median and the median absolute deviation from it."""
    k_n = dev.shape[1]
    med = np.empty(k_n)
    mad = np.empty(k_n)
    for k in range(k_n):
        col = dev[:, k].copy()
        med[k] = median(col, 0.5)
        mad[k] = median(np.abs(col - med[k]), 0.25)
    return med, mad


@njit(cache=True)
def _outliers_of_run(dev: np.ndarray, sigmas: float, levels: float, before: int, after: int):
    """What the thumbnail says of a placed run, from ``dev`` (N, K: each MCU's mean minus the
    thumbnail's): its level per component (median), the MCUs that stand out from it (``sigmas``
    spreads + 1 and ``levels`` away in some component: silent damage inside the run), and the
    MCUs up to ``before`` decoded before and ``after`` after each of those, not standing out
    themselves: garbage that decoded silently starts up to four MCUs before what the thumbnail
    sees and ends an MCU or two after it, MCUs with wrong AC but a right mean (its DC error
    grows as it goes; train photos at 1e-5: most of the isolated misses left)."""
    level, spread = _median_and_spread(dev)
    n, k_n = dev.shape
    outlier = np.zeros(n, np.bool_)
    for i in range(n):
        for k in range(k_n):
            d = abs(dev[i, k] - level[k])
            if d > sigmas * (spread[k] + 1.0) and d > levels:
                outlier[i] = True
    near = np.zeros(n, np.bool_)
    for i in range(n):
        if outlier[i]:
            for j in range(max(0, i - before), min(n, i + after + 1)):
                near[j] = True
    for i in range(n):
        near[i] = near[i] and not outlier[i]
    return level, outlier, near


def _reweighted_differences(plus: np.ndarray, minus: np.ndarray, b: np.ndarray, wts: np.ndarray, n: int,
                            rounds: int = 4, scale: float = 1.5) -> np.ndarray:
    """The unknowns x (n,) of measurements x[plus] - x[minus] ≈ b (an index of -1 is a known 0),
    weighted ``wts``, by iteratively reweighted least squares (Cauchy, ``scale``) so that one bad
    boundary does not pull the rest. Each row has two entries at most, so the normal equations
    are summed entry by entry: the dense design matrix made a 200-run image (1e-4) spend more
    time multiplying zeros than in the rest of the fit."""
    x = np.zeros(n + 1)  # x[n]: the known 0 that index -1 reads
    p, m = np.where(plus < 0, n, plus), np.where(minus < 0, n, minus)
    for it in range(rounds):
        w = wts if it == 0 else wts / (1.0 + (np.abs(x[p] - x[m] - b) / scale) ** 2)
        mat, rhs = _difference_normals(p, m, w, b, n)
        # runs meet runs a row or so away in decode order: the matrix is nearly banded
        first = envelope_start(mat)
        low, ok = cholesky_envelope(mat, first)
        x[:n] = solve_envelope(low, first, rhs) if ok else np.linalg.solve(mat, rhs)
    return x[:n]


@njit(cache=True)
def _difference_normals(p: np.ndarray, m: np.ndarray, w: np.ndarray, b: np.ndarray, n: int):
    """The normal equations of :func:`_reweighted_differences` (index n: the known 0), each of
    their four parts summed in row order and then combined as ``np.bincount`` of each would, with
    the 1e-9 ridge that keeps a run no measurement reaches at 0."""
    size = n + 1
    same_p = np.zeros(size)  # Σ w over rows by their plus index (the diagonal from x[plus])
    same_m = np.zeros(size)
    cross = np.zeros((size, size))  # Σ w over rows by (plus, minus); by (minus, plus) is its transpose
    rhs_p = np.zeros(size)
    rhs_m = np.zeros(size)
    for r in range(p.size):
        same_p[p[r]] += w[r]
        same_m[m[r]] += w[r]
        cross[p[r], m[r]] += w[r]
        rhs_p[p[r]] += w[r] * b[r]
        rhs_m[m[r]] += w[r] * b[r]
    mat = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            diag = same_p[i] + same_m[i] if i == j else 0.0
            mat[i, j] = diag - cross[i, j] - cross[j, i] + (1e-9 if i == j else 0.0)
    return mat, rhs_p[:n] - rhs_m[:n]


def _solve_dc(placements: list[tuple], inner: tuple[tuple, tuple], outer: tuple[tuple, tuple], mcu_means, units,
              thumb: np.ndarray | None, cols: int, n: int) -> np.ndarray:
    """DC errors of all runs at once, per component: weighted least squares over the relative
    offsets measured across every boundary between two runs and the absolute offsets against the
    thumbnail, with the first run of each restart segment fixed at 0. Solving jointly keeps one
    poorly measured boundary from passing its error down the rest of the image. ``inner`` and
    ``outer``: per component the extrapolated top/left and bottom/right edges of every decoded MCU
    (:func:`_inward`, :func:`_outward`), as the shift search uses them."""
    p = len(placements)
    k_n = len(units)
    # every run's MCUs where they land (inside their segment), run by run
    sizes = np.array([pl[0].trusted.size for pl in placements], np.int64)
    run_of = np.repeat(np.arange(p, dtype=np.int64), sizes)
    dec_all = (np.concatenate([pl[0].trusted for pl in placements]).astype(np.int64) if p
               else np.zeros(0, np.int64))
    at = dec_all + np.repeat(np.array([pl[1] for pl in placements], np.int64), sizes)
    seg_f = np.repeat(np.array([pl[5] for pl in placements], np.int64), sizes)
    seg_n = np.repeat(np.array([pl[6] for pl in placements], np.int64), sizes)
    ok = (at >= seg_f) & (at < seg_f + seg_n)
    run_of, dec_all, at = run_of[ok], dec_all[ok], at[ok]
    owner = np.full(n, -1, np.int64)
    dec = np.zeros(n, np.int64)
    _, from_end = np.unique(at[::-1], return_index=True)
    last = at.size - 1 - from_end  # where two runs land on one place, the later one holds it
    owner[at[last]] = run_of[last]
    dec[at[last]] = dec_all[last]
    result = np.zeros((p, k_n), np.int64)
    anchored = np.array([bool(pl[4]) for pl in placements], bool)
    t_all = np.arange(n)
    pairs = []
    for nb, side in ((t_all - cols, 0), (np.where(t_all % cols != 0, t_all - 1, -1), 1)):  # above, left
        ok = (nb >= 0) & (owner >= 0)
        ok[ok] &= owner[nb[ok]] >= 0
        ok[ok] &= owner[nb[ok]] != owner[ok]
        t, nb = t_all[ok], nb[ok]
        key = owner[t] * p + owner[nb]
        order = np.argsort(key, kind="stable")
        pairs.append((t[order], nb[order], key[order], side))
    for k, (means, unit) in enumerate(zip(mcu_means, units)):
        plus, minus, rhs, wts = [], [], [], []
        for t, nb, key, side in pairs:
            if t.size == 0:
                continue
            d = inner[side][k][dec[t]] - outer[side][k][dec[nb]]
            keys, meds, mads, counts = _group_median_mad(key, d / unit)
            plus.append(keys // p)
            minus.append(keys % p)
            rhs.append(meds)
            wts.append(counts / (1.57 * mads * mads + 0.05))
        if thumb is not None and run_of.size:  # each run's MCUs against the thumbnail where they land
            vals = (means[dec_all] - thumb[at, k]) / unit
            keys, meds, mads, counts = _group_median_mad(run_of, vals[:, None])
            plus.append(keys)
            minus.append(np.full(keys.size, -1, np.int64))
            rhs.append(meds)
            wts.append(counts / (1.57 * mads * mads + 0.05))
        free = np.flatnonzero(~anchored)
        if not free.size or not plus:
            result[:, k] = [int(round(pl[2][k])) for pl in placements]
            continue
        col = np.full(p + 1, -1, np.int64)  # column of each run's unknown; -1: anchored (and index -1)
        col[free] = np.arange(free.size)
        sol = _reweighted_differences(col[np.concatenate(plus)], col[np.concatenate(minus)], np.concatenate(rhs),
                                      np.concatenate(wts), free.size)
        result[free, k] = np.rint(sol).astype(np.int64)
    return result


def _compensate_scan(si: int, result: DecodeResult, sr: ScanResult, coefs: list[np.ndarray],
                     thumbnail: np.ndarray | None, opts: AwareOptions
                     ) -> tuple[list[SegmentFix], np.ndarray, np.ndarray, np.ndarray]:
    inter, comps = _scan_geometry(result, sr)
    rows, cols = sr.mcu_rows, sr.mcu_cols
    n = rows * cols
    mcus = [_mcu_major(coefs[ci], rows, cols, v, h) for ci, h, v in comps]
    qts = [result.qtables[ci] for ci, _, _ in comps]
    edges = [_Edges.of(m, q) for m, q in zip(mcus, qts)]
    mcu_means = tuple(e.mean for e in edges)
    units = [float(q[0]) / 8.0 for q in qts]
    thumb = _thumb_means(thumbnail, result, sr, comps) if thumbnail is not None else None
    # per component tuples of arrays: what the compiled search and placing take
    run_edges = (tuple(_inward(e.top, e.top2) for e in edges), tuple(_inward(e.left, e.left2) for e in edges))
    canvas = _Canvas((tuple(_outward(e.bottom, e.bottom2) for e in edges),
                      tuple(_outward(e.right, e.right2) for e in edges)))
    # offsets of each decoded MCU from the thumbnail at the same index: steps mark silent damage
    offsets = (np.stack(mcu_means, axis=1) - thumb) if thumb is not None else None
    # the thumbnail's mean at each MCU position per component (a placeholder without one)
    thumb_cols = tuple(np.ascontiguousarray(thumb[:, k]) if thumb is not None else np.zeros(1)
                       for k in range(len(edges)))
    rough = _roughness(edges, cols)
    misalign = _misalignment(edges, cols, rough)
    out = [np.zeros_like(m) for m in mcus]
    owner = np.full(n, -1, np.int64)  # index into this scan's fixes of the trusted run at each position
    placed = np.zeros(n, bool)
    trusted_pos = np.zeros(n, bool)
    fixes: list[SegmentFix] = []
    # reference continuity inside correct content, to judge confidence
    ref_costs = []
    placements: list[tuple] = []
    unsettled = _unsettled(sr, n, opts)
    doubted = np.zeros(n, bool)  # trusted enough to fit and judge by, but not shown as sure
    for f, cnt, extra in zip(sr.segment_first.tolist(), sr.segment_count.tolist(), sr.segment_extra.tolist()):
        runs, final_shift = _runs_of_segment(sr, f, cnt, extra, opts)
        if not runs:
            continue
        runs = [piece for run in runs for piece in _split_pulse(run, rough, cols, opts)]
        runs = [piece for run in runs for piece in _split_pulse(run, misalign, cols, opts, per_mcu_noise=True)]
        if thumb is not None:
            runs = [piece for run in runs for piece in _split_silent(run, offsets, units, opts)]
        first = runs[0]
        t0 = first.trusted
        canvas.place(t0, t0, [0.0] * len(edges))
        if t0.size > cols:
            inner = t0[np.isin(t0 - cols, t0)]
            if inner.size:
                ref_costs.append(np.mean([np.mean(np.abs(e.top[inner] - e.bottom[inner - cols])) for e in edges]))
        chosen = [(first, 0, (0,) * len(edges), 0.0)]
        later = [r for r in runs[1:] if r.trusted.size >= opts.min_run]
        costs, dcs, bases = _search_runs(later, f, cnt, cols, run_edges, units, canvas, thumb_cols, thumb is not None,
                                         opts, mcu_means)
        penalty = 0.05 * (np.median(ref_costs) if ref_costs else 1.0)
        path = _viterbi(costs, bases, 0, final_shift, penalty)
        for r, (run, s) in enumerate(zip(later, path)):
            j = s - int(bases[r])
            if 0 <= j < costs.shape[1] and costs[r, j] < _INF:
                chosen.append((run, s, tuple(dcs[r, j].tolist()), float(costs[r, j])))
            else:
                chosen.append((run, s, (0,) * len(edges), float(_INF)))
        placements += [(run, sft, dcs, cost, k == 0, f, cnt) for k, (run, sft, dcs, cost) in enumerate(chosen)]
    ref = float(np.median(ref_costs)) if ref_costs else 8.0
    solved = _solve_dc(placements, run_edges, canvas.outer, mcu_means, units, thumb, cols, n)
    means = np.stack(mcu_means, axis=1) if thumb is not None else None
    moves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per run: decoded MCUs, their places, DCs
    for (run, sft, _, cost, _, f, cnt), dcs in zip(placements, solved):
        confident = cost <= max(opts.confidence_factor * ref, ref + 6.0)
        near_outlier = np.zeros(0, np.int64)
        m = run.trusted
        t = m + sft
        ok = (t >= f) & (t < f + cnt)
        m, t = m[ok], t[ok]
        if means is not None and m.size:
            # what the thumbnail says of the result: a run whose level still disagrees is not
            # trusted, and neither is any MCU that stands out from it (silent damage inside a run)
            dev = means[m] - np.asarray(dcs)[None, :] * np.asarray(units)[None, :] - thumb[t]
            level, outlier, near = _outliers_of_run(dev, float(opts.outlier_sigma), float(opts.outlier_levels),
                                                    opts.garble_before, opts.garble_after)
            if np.any(np.abs(level) > opts.level_tolerance * np.asarray(units)) and m.size >= opts.min_split:
                confident = False
            near_outlier = t[near]
            keep = ~outlier
            m, t = m[keep], t[keep]
        moves.append((m, t, dcs))
        placed[t] = True
        if confident:
            trusted_pos[t] = True
            owner[t] = len(fixes)
            doubted[t[unsettled[m] | (m < run.settled) | (m >= run.tail)]] = True
            doubted[near_outlier] = True
        fixes.append(SegmentFix(si, run.first, run.end, int(sft), tuple(int(d) for d in dcs), float(cost),
                                bool(confident)))
    if moves:  # every run's blocks to their places at once (a later run's win where two land)
        src = np.concatenate([mv[0] for mv in moves])
        dst = np.concatenate([mv[1] for mv in moves])
        sizes = [mv[0].size for mv in moves]
        for k in range(len(comps)):
            blk = mcus[k][src]
            dc = np.repeat(np.array([mv[2][k] for mv in moves], np.int64), sizes).astype(np.int16)
            blk[..., 0] -= dc[:, None, None]
            out[k][dst] = blk
    # damaged positions: a neutral block whose DC follows the thumbnail (or mid-grey)
    damaged = ~trusted_pos
    if thumb is not None:
        for k, q in enumerate(qts):
            dc = np.rint((thumb[:, k] - 128.0) * 8.0 / float(q[0])).astype(np.int16)
            unplaced = ~placed
            out[k][unplaced] = 0
            out[k][unplaced, :, :, 0] = dc[unplaced, None, None]
    for k, (ci, h, v) in enumerate(comps):
        grid = _grid(out[k], rows, cols)
        coefs[ci][: rows * v, : cols * h] = grid
    owner[damaged] = -1
    return fixes, damaged.reshape(rows, cols), owner.reshape(rows, cols), (doubted & ~damaged).reshape(rows, cols)


def _spread(flag: np.ndarray, before: int, after: int, link: np.ndarray | None = None) -> np.ndarray:
    """``flag`` (1-D) grown by up to ``before`` places back and ``after`` places on, stepping only
    across links (``link[i]``: places i and i + 1 are connected; None: all are)."""
    back = flag.copy()
    on = flag.copy()
    join = np.ones(max(flag.size - 1, 0), bool) if link is None else link
    for _ in range(before):
        back[:-1] |= back[1:] & join
    for _ in range(after):
        on[1:] |= on[:-1] & join
    return back | on


def _with_decode_neighbours(flag: np.ndarray, var: np.ndarray, run: np.ndarray, before: int = 1,
                            after: int = 1) -> np.ndarray:
    """``flag`` (flat MCU positions) grown by the ``before`` MCUs decoded just before and the
    ``after`` just after each flagged one in the same run (one shift, so decode order is position
    order): garbage that decoded without a failure spans a CBC block of 128 bits, which often
    straddles two MCUs while the thumbnail sees only the one it changed most, and a garbled
    stretch begins with MCUs whose AC is wrong but whose mean is still right (the DC error of
    silent garbage grows as it goes)."""
    if not flag.any():
        return flag.copy()
    run_at = np.where(var >= 0, run[np.maximum(var, 0)], -1)
    return _spread(flag, before, after, (run_at[1:] == run_at[:-1]) & (run_at[1:] >= 0))


def _mask_holes(mask: np.ndarray, fixes: list[SegmentFix], scan: int, width: int) -> np.ndarray:
    """Unmasked stretches of at most ``width`` MCUs with marked MCUs on both sides in decode
    order, all within one confident fix (flat positions). Garbage that decoded silently is seldom
    sound for one MCU in its middle: such an MCU was merely not flagged (train photos at 1e-5)."""
    n = mask.size
    fid = np.full(n, -1, np.int64)
    for j, fx in enumerate(fixes):
        if fx.scan == scan and fx.confident:
            fid[max(fx.first_mcu + fx.shift, 0):max(fx.end_mcu + fx.shift, 0)] = j
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(mask, idx, -1))
    nxt = np.minimum.accumulate(np.where(mask, idx, n)[::-1])[::-1]
    ok = ~mask & (prev >= 0) & (nxt < n) & (nxt - prev - 1 <= width) & (fid >= 0)
    return ok & (fid[np.maximum(prev, 0)] == fid) & (fid[np.minimum(nxt, n - 1)] == fid)


def _above_or_below(flag: np.ndarray) -> np.ndarray:
    """MCUs (rows × cols) with a flagged MCU directly above or below."""
    out = np.zeros_like(flag)
    out[1:] |= flag[:-1]
    out[:-1] |= flag[1:]
    return out


def _unseen_edges(damaged: np.ndarray, blind: np.ndarray, reach: int) -> np.ndarray:
    """MCUs (flat positions, decode order within a run) of ``blind`` within ``reach`` positions
    of ``damaged``, through blind ones only: where garbage begins and ends is known only to an MCU
    or two, so next to damage an MCU the thumbnail cannot check is not shown as sure (train
    photos at 1e-5: 43 % of the MCUs still missed were such, 4.6 % of the sound trusted ones)."""
    out = np.zeros_like(damaged)
    edge = damaged.copy()
    for _ in range(reach):
        step = np.zeros_like(edge)
        step[1:] |= edge[:-1]
        step[:-1] |= edge[1:]
        edge = step & blind & ~damaged & ~out
        out |= edge
    return out


def _short_fixes(fixes: list[SegmentFix], firsts: set, n: int, thumb_px_per_mcu: float,
                 short_span: float) -> np.ndarray:
    """MCUs (flat positions) placed by confident fixes that span fewer than ``short_span``
    thumbnail pixels in decode order, unless a restart anchors their DC. The thumbnail's filter
    blends such a stretch with what lies above and below it, so a fit that looks tight can still
    be a step off: on train photos at 1e-5, stretches under 32 MCUs (40 thumbnail pixels at 2048
    wide) were 1.4 % of the image and held two thirds of the MCUs still missed. The longer such a
    stretch, the more pixels average the fit's noise down; at 64 pixels (51 MCUs) instead of 40,
    with every other precaution in place, 81 instead of 79 of 84 train files at 1e-5 were exact
    outside the mask (misses 78 -> 6 MCUs) and 19 instead of 18 of 20 with restart markers (a set
    not looked at while choosing), for 2.1-2.6 % more of the image marked and 0.02-0.03 dB less
    after the fill (48 / 56 pixels: 79 / 80 files)."""
    out = np.zeros(n, bool)
    for fx in fixes:
        if fx.confident and fx.first_mcu not in firsts and \
                (fx.end_mcu - fx.first_mcu) * thumb_px_per_mcu < short_span:
            out[max(fx.first_mcu + fx.shift, 0):max(fx.end_mcu + fx.shift, 0)] = True
    return out


def _marks_of_round(fit, var: np.ndarray, run: np.ndarray, bad_chunk: np.ndarray, loose_chunk: np.ndarray,
                    mixed_chunk: np.ndarray, reversed_ids: np.ndarray | None, rows: int, cols: int, *,
                    garble_before: int, garble_after: int, blind: float, blind_reach: int,
                    beside_cover: float, mixed_nb: bool) -> tuple[np.ndarray, np.ndarray]:
    """The MCUs (flat) one thumbnail fit finds damaged, and those it marks as a precaution, as
    :func:`_thumbnail_refine` describes: its chunk verdicts, what the thumbnail contradicts
    (``fit.standouts()``) and the precautions around them."""
    standouts = fit.standouts().reshape(-1) & (var >= 0)
    damaged = np.isin(var, np.flatnonzero(bad_chunk & ~loose_chunk)) | standouts
    doubted = np.isin(var, np.flatnonzero(loose_chunk)) | _with_decode_neighbours(
        damaged, var, run, garble_before, garble_after)
    coverage = fit.coverage()
    doubted |= _unseen_edges(damaged | doubted | (var < 0), coverage.reshape(-1) < blind, blind_reach)
    if beside_cover > 0:  # an MCU row beside damage is judged from few pixels: not shown as sure
        beside = _above_or_below((damaged | doubted | (var < 0)).reshape(rows, cols))
        doubted |= (beside & (coverage < beside_cover)).reshape(-1) & (var >= 0)
    if mixed_nb:  # the fused tie shares a mixed chunk's pull with its neighbours in the run
        nb = _spread(mixed_chunk, 1, 1, run[1:] == run[:-1])
        doubted |= np.isin(var, np.flatnonzero(nb & ~bad_chunk))
    if reversed_ids is not None:
        doubted |= np.isin(var, np.flatnonzero(reversed_ids))
    doubted &= ~damaged
    return damaged, doubted


def _thumbnail_refine(result: DecodeResult, sr: ScanResult, coefs: list[np.ndarray], owner: np.ndarray,
                      fixes: list[SegmentFix], thumbnail: np.ndarray, rgb: np.ndarray, samples: SamplePlanes, *,
                      max_stderr: float = 0.2, mixed: float = 0.25, exact_sigma: float = 0.5,
                      rounds: int = 6, big_offset: float = 4.0, big_z: float = 50.0,
                      unfixed_z: float = 4.0, unseen: float = 0.2, blurred: float = 0.3, blind: float = 0.002,
                      blind_reach: int = 6, short_span: float = 64.0, split_reach: int = 3,
                      garble_before: int = 4, garble_after: int = 2, mixed_nb: bool = True,
                      reversal: bool = True, beside_cover: float = 0.5
                      ) -> tuple[list[SegmentFix], np.ndarray, np.ndarray, np.ndarray] | None:
    """Last DC check against the thumbnail (:mod:`acir_core.sca.thumbdc`): the remaining offset of
    every chunk of every run, fitted at once through the thumbnail's resampling filter. A chunk
    moves by the whole quantiser steps its offset rounds to when the fit pins it to
    ``max_stderr`` steps, or when it is at least ``big_offset`` steps off and ``big_z`` standard
    errors from 0 (clipping makes such a fit loose; moved, the next round sees it better); a chunk
    confidently between two steps (``mixed``) holds content at two offsets (a silent break inside
    it) and becomes damage, as do a chunk likely off that the fit cannot pin (``unfixed_z``
    standard errors, too loose to move), a chunk the thumbnail cannot pin to ``unseen`` steps at
    all (at 0.3, most runs left one step off on train photos at 1e-5 passed), MCUs the
    thumbnail contradicts, the MCUs decoded beside what it found damaged (as a precaution), and
    MCUs it cannot see at all
    (``blind`` coverage, :meth:`ThumbnailDC.coverage`) within ``blind_reach`` MCUs of damage in
    decode order (6, was 2: a stretch of nine MCUs a chroma step off in blown highlights, whose
    clipped pixels the fit cannot use, between two marked ones; train photos with restart markers
    at 1e-5: 38 to 39 of 40 files exact for 0.2 % more of the image marked), the stretches of
    confident fixes (after the moves split them) that span fewer than ``short_span`` thumbnail
    pixels unless a restart anchors them
    (:func:`_short_fixes`), with ``mixed_nb`` the chunks beside a mixed one in its run (the fused
    tie shares its pull), and with ``reversal`` a chunk moved one way and then back in a later
    round (a fit pulled by garbage it had not yet found: train photos at 1e-5, both rules
    together took 39 to 41 of 43 files exact for 0.4 % more of the image marked), and the MCUs
    directly above or below damage or a precaution that the thumbnail sees less than
    ``beside_cover`` of (:meth:`ThumbnailDC.coverage`): a thumbnail pixel's footprint is four to
    five MCU rows tall and those that reach damage are left out of the fit, so the MCU rows
    beside damage are judged from few pixels, and a stretch there a step off (21 MCUs one level
    off under a damaged row, a train photo at 1e-5) or still garbled passed unseen (train photos
    at 1e-5, with up to 6-MCU holes filled: 89 to 96 of 96 files exact for 4.3 % more of the
    image marked and the filled result 0.01 dB higher; 1e-4: 9 to 12 of 20 exact, 81.5 to 84.5 %
    marked; 1e-6: all 20 exact either way, 3.6 to 4.8 % marked).
    Up to ``rounds`` fits, each on the image re-rendered with the last one's steps, while some
    chunk moved by two steps or more: pixels that clip at 0 or 255 make a large offset look
    smaller than it is, so such a fit can stop short.
    Only a thumbnail that reproduces our downsampled result to ``exact_sigma`` levels (robust
    spread of the fit's residual) has a say: the paper's bicubic thumbnail does (~0.05), while an
    EXIF thumbnail stored as a q90 4:2:0 JPEG (2.5-4.5 levels on train photos) pulled chunks off
    whole steps and flagged sound MCUs on train photos, so with such a one nothing changes.
    A run whose chunks moved differently is split into one fix per stretch. Returns the new fixes,
    the MCUs found damaged, those marked only as a precaution (unseen chunks and blind edges,
    the decode-order neighbours of damage, short stretches), and the re-rendered image (``rgb`` itself,
    re-rendered in place, its blocks' samples kept in ``samples`` between rounds), or None when
    nothing changed."""
    frame = result.frame
    _, comps = _scan_geometry(result, sr)
    cell = _mcu_cell(result, sr)
    firsts = set(sr.segment_first.tolist())
    anchored = np.array([j for j, fx in enumerate(fixes) if fx.first_mcu in firsts], np.int64)
    rows, cols = owner.shape
    units = np.array([float(result.qtables[ci][0]) / 8.0 for ci, _, _ in comps])
    px_per_mcu = cell[1] * thumbnail.shape[1] / frame.width  # thumbnail pixels an MCU spans
    damaged = np.zeros(rows * cols, bool)
    doubted = np.zeros(rows * cols, bool)
    total = None
    chunks = None
    reversed_ids = None
    judged = None
    small = Downsample(rgb, thumbnail.shape[1], thumbnail.shape[0])
    for _ in range(rounds):
        fit = solve_offsets(rgb, thumbnail, owner, anchored, cell, frame.color, down=small.image,
                            stop_sigma=exact_sigma)
        if fit is None:
            break
        chunks = fit.chunks
        var = chunks.var.reshape(-1)
        planes = [min(ci, fit.offset.shape[1] - 1) for ci, _, _ in comps]
        est = fit.offset[:, planes] / units
        err = fit.stderr[:, planes] / units
        if np.any(fit.sigma[planes] >= exact_sigma):
            break  # a thumbnail that is not our downsample (JPEG-compressed, another tone): no say
        # a large offset is moved when its direction and size are sure even if its last step is
        # not: clipped pixels make the fit of a far-off chunk short and loose, and left alone its
        # residual bleeds into its neighbours' estimates
        far = (np.abs(est) >= big_offset) & (np.abs(est) >= big_z * err)
        sure = ((np.abs(est) >= 0.5) & (err <= max_stderr)) | far
        steps = np.where(sure, np.rint(est), 0).astype(np.int64)
        frac = np.abs(est - np.rint(est))
        bad_chunk = np.any((frac > mixed) & (err <= max_stderr / 2), axis=1)
        mixed_chunk = bad_chunk.copy()
        # likely off by a step or more, but too loosely fitted to say by how much: not fixed, so damage
        bad_chunk |= np.any(~sure & (np.abs(est) >= 0.6) & (np.abs(est) >= unfixed_z * err), axis=1)
        # a chunk the thumbnail hardly sees (its pixels clipped or their footprints on damage, so its
        # offset comes from the prior and its neighbours) keeps whatever DC the boundary fit gave
        # it: next to damage that is off by a step or two often enough that it is not trusted
        # a fit loose by a fifth to a third of a step is still right far more often than not:
        # shown as damage, but the fill keeps it unless it clearly disagrees
        unseen_chunk = np.any(err > unseen, axis=1) & ~chunks.fixed
        loose_chunk = unseen_chunk & np.all(err <= blurred, axis=1) & ~bad_chunk
        bad_chunk |= unseen_chunk
        if reversal and total is not None:  # moved one way, then back: the fit was pulled
            flip = np.any(steps * total < 0, axis=1)
            reversed_ids = flip if reversed_ids is None else reversed_ids | flip
        # the damage is judged on the latest image (what only looked wrong before a move is not
        # damage), so only the last round that judged counts: its findings are kept and the
        # marks made from them once, after the rounds (at 1e-4, ~3 rounds a photo)
        judged = (fit, var, chunks.run, bad_chunk, loose_chunk, mixed_chunk, reversed_ids)
        total = steps if total is None else total + steps
        if not steps.any():
            break
        again = np.abs(steps).max() >= 2  # only large moves can have been shortened by clipping
        pos = np.flatnonzero(var >= 0)
        pos = pos[np.any(steps[var[pos]] != 0, axis=1)]
        mr, mc = pos // cols, pos % cols
        for k, (ci, h, v) in enumerate(comps):
            add = steps[var[pos], k].astype(coefs[ci].dtype)
            for dy in range(v):
                for dx in range(h):
                    coefs[ci][mr * v + dy, mc * h + dx, 0] += add
        # only the MCU rows that moved are rendered again (in the frame's MCU rows of 8·max_v pixels)
        frame_row = np.unique(mr * cell[0] // (8 * frame.max_v))
        changed = np.zeros(-(-frame.height // (8 * frame.max_v)), bool)
        changed[frame_row[frame_row < changed.size]] = True
        rgb = result.rerender_rows(tuple(coefs), rgb, changed, in_place=True, planes=samples)
        small.update(rgb, rows_redone(frame, changed))
        if not again:
            break
    if judged is not None:
        damaged, doubted = _marks_of_round(*judged, rows, cols, garble_before=garble_before,
                                           garble_after=garble_after, blind=blind, blind_reach=blind_reach,
                                           beside_cover=beside_cover, mixed_nb=mixed_nb)
    if total is None or (not total.any() and not damaged.any() and not doubted.any()):
        short = _short_fixes(fixes, firsts, rows * cols, px_per_mcu, short_span)
        if chunks is None or not short.any():
            return None
        return fixes, damaged.reshape(rows, cols), short.reshape(rows, cols), rgb
    var = chunks.var.reshape(-1)
    pos = np.flatnonzero(var >= 0)
    chunk_first = np.full(chunks.run.size, var.size, np.int64)
    np.minimum.at(chunk_first, var[pos], pos)  # each chunk's first MCU position
    new_fixes: list[SegmentFix] = []
    for j, fix in enumerate(fixes):
        ids = np.flatnonzero(chunks.run == j)
        if ids.size == 0:
            new_fixes.append(fix)
            continue
        # chunks in decode order; a new fix wherever the step changes
        starts = chunk_first[ids] - fix.shift
        order = np.argsort(starts)
        ids, starts = ids[order], starts[order]
        first = fix.first_mcu
        for q, i in enumerate(ids):
            last = q + 1 == ids.size
            if not last and np.array_equal(total[ids[q + 1]], total[i]):
                continue
            end = fix.end_mcu if last else int(starts[q + 1])
            dc = tuple(int(d - s) for d, s in zip(fix.dc, total[i]))
            new_fixes.append(SegmentFix(fix.scan, first, end, fix.shift, dc, fix.cost, fix.confident))
            if not last:  # a silent break the fit found only to a chunk: its garbage is near
                lo = max(end + fix.shift - split_reach, 0)
                doubted[lo:max(end + fix.shift + split_reach, 0)] = True
            first = end
    doubted |= _short_fixes(new_fixes, firsts, rows * cols, px_per_mcu, short_span)
    doubted &= ~damaged & (var >= 0)
    return new_fixes, damaged.reshape(rows, cols), doubted.reshape(rows, cols), rgb


def pixel_mask(result: DecodeResult, sr: ScanResult, mcu_damage: np.ndarray, dilate: int) -> np.ndarray:
    """MCU damage as pixels, grown by ``dilate`` px: fancy upsampling spreads chroma one pixel across."""
    frame = result.frame
    ph, pw = _mcu_cell(result, sr)
    m = np.repeat(np.repeat(mcu_damage, ph, axis=0), pw, axis=1)[: frame.height, : frame.width]
    if m.shape != (frame.height, frame.width):
        m = np.pad(m, ((0, frame.height - m.shape[0]), (0, frame.width - m.shape[1])))
    return dilate_mask(m, dilate) if dilate and m.any() else m


def _fill(result: DecodeResult, rgb: np.ndarray, mask: np.ndarray, thumbnail: np.ndarray,
          thumb_up: np.ndarray | None = None, loose: np.ndarray | None = None) -> np.ndarray:
    cell = _mcu_cell(result, result.scans[0]) if result.scans else (16, 16)
    if thumb_up is None:
        thumb_up = upsample_thumbnail(thumbnail, result.frame.width, result.frame.height)
    return fill_disagreeing(rgb, mask, thumb_up, cell, loose=loose)


def fill_region(result: DecodeResult, sca: SCAResult, thumb_up: np.ndarray) -> np.ndarray:
    """The pixels (H×W bool) :func:`fill_damage` takes from the thumbnail (``thumb_up``: it
    upsampled to the photo): the damaged MCUs that are blank or disagree with it. What the GCA
    network restores; the rest of the mask keeps its decoded content."""
    cell = _mcu_cell(result, result.scans[0]) if result.scans else (16, 16)
    return disagreeing(sca.rgb, sca.mask, thumb_up, cell, loose=sca.doubtful)


def fill_damage(result: DecodeResult, sca: SCAResult, thumbnail: np.ndarray,
                thumb_up: np.ndarray | None = None) -> np.ndarray:
    """What ``aware_sca(..., fill="thumbnail")`` shows, from a result made with ``fill="none"``
    (callers that keep both): damaged MCUs that are blank or disagree with the thumbnail are
    filled from it (:func:`acir_core.sca.fill.fill_disagreeing`). ``thumb_up``: the thumbnail
    already upsampled to the photo, when the caller has it."""
    return _fill(result, sca.rgb, sca.mask, thumbnail, thumb_up, loose=sca.doubtful)


def aware_sca(result: DecodeResult, thumbnail: np.ndarray | None = None, *, fill: str = "auto",
              options: AwareOptions | None = None) -> SCAResult:
    """Undo DC drift and block shifts using the decoder's records, mark and fill the damage.

    ``thumbnail``: H'×W'×3 uint8 (embedded or synthetic) or None; it helps place runs and, with
    ``fill="auto"`` or ``"thumbnail"``, fills the damage. ``fill="inpaint"`` fills from neighbours,
    ``"none"`` leaves damaged MCUs as rendered (neutral blocks).
    """
    if fill not in ("auto", "thumbnail", "inpaint", "none"):
        raise InvalidParameter(f"fill must be auto, thumbnail, inpaint or none, got {fill!r}")
    if fill == "thumbnail" and thumbnail is None:
        raise InvalidParameter("fill='thumbnail' needs a thumbnail")
    opts = options or AwareOptions()
    t0 = time.perf_counter()
    frame = result.frame
    coefs = [c.copy() for c in result.coefficients]
    fixes: list[SegmentFix] = []
    marked = []  # per scan, the MCUs of its grid the mask covers (made pixels once, at the end)
    first_grid = doubt = None
    owners = []
    for si, sr in enumerate(result.scans):
        f, grid, owner, doubted = _compensate_scan(si, result, sr, coefs, thumbnail, opts)
        owners.append((len(fixes), owner))
        fixes += f
        marked.append(grid | doubted)
        if first_grid is None:
            first_grid, doubt = grid, doubted
    use_thumb = thumbnail is not None and len(result.scans) == 1
    planes = SamplePlanes.empty(tuple(coefs)) if use_thumb else None  # the refinement renders rows again
    rgb = result.rerender(tuple(coefs), planes)
    if use_thumb:
        # compare like with like: our result downsampled exactly as the thumbnail was made
        refined = _thumbnail_refine(result, result.scans[0], coefs, owners[0][1], fixes, thumbnail, rgb, planes,
                                    garble_before=opts.garble_before, garble_after=opts.garble_after)
        if refined is not None:
            fixes, more, more_doubt, rgb = refined
            first_grid = first_grid | more
            doubt = (doubt | more_doubt) & ~first_grid
    if first_grid is not None:
        holes = _mask_holes((first_grid | doubt).reshape(-1), fixes, 0, opts.hole_mcus).reshape(first_grid.shape)
        if holes.any():
            doubt = doubt | holes
        first_grid = first_grid | doubt
        marked[0] = first_grid  # the first scan's damage with every precaution added since
    # MCUs to pixels and the 2-px growth distribute over the union: once per scan, not per source
    mask = np.zeros((frame.height, frame.width), bool)
    for sr, grid in zip(result.scans, marked):
        mask |= pixel_mask(result, sr, grid, dilate=2)
    if len(result.scans) != 1:
        doubt = None  # one cell grid judges the fill: only a single scan's precautions are sure
    t1 = time.perf_counter()
    t2 = t1
    used = fill
    if fill == "auto":
        used = "thumbnail" if thumbnail is not None else "inpaint"
    if used == "thumbnail":
        rgb = _fill(result, rgb, mask, thumbnail, loose=doubt)
    elif used == "inpaint":
        rgb = inpaint(rgb, mask)
    t3 = time.perf_counter()
    timings = {"estimate": t1 - t0, "render": t2 - t1, "fill": t3 - t2, "total": t3 - t0}
    return SCAResult(rgb, mask, first_grid, tuple(fixes), tuple(coefs), "aware", used, timings, doubt)
