"""Runs: the stretches of MCUs between resyncs, which SCA puts back one by one.

Each restart interval is cut into runs at the decoder's resync events; MCUs decoded from bits
around each failure are left out, and the first few after a resume point are placed but not
trusted. A run is cut again at a *silent* break (damage that decoded without any failure but
changed the DC predictors or the MCU count): where its offset against the thumbnail steps, or
where the roughness across MCU-row boundaries rises for exactly one row's worth of MCUs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from acir_core.jpeg.decoder import ScanResult
from acir_core.sca.median import median
from acir_core.sca.options import RunOptions


@dataclass
class Run:
    """A run of decoded MCUs ``[first, end)`` of a scan and those of them placed if it is."""

    first: int
    end: int
    trusted: np.ndarray  # decoded MCU indices placed if the run is
    settled: int = -1  # decoded MCUs before this one start the run after a silent break: not sure
    tail: int = 1 << 62  # decoded MCUs from this one on end the run before a silent break: not sure
    probe_from: int = -1  # decoded MCUs before this one do not judge where the run belongs
    probe_to: int = 1 << 62  # nor do those from this one on

    def probes(self) -> np.ndarray:
        """The trusted MCUs that judge the run's shift: all but those next to a silent break,
        whose garbage reaches an unknown way past where the break was found."""
        m = self.trusted
        if self.probe_from < 0 and self.probe_to >= 1 << 62:
            return m
        return m[(m >= self.probe_from) & (m < self.probe_to)]


def resyncs_in_order(sr: ScanResult) -> tuple[np.ndarray, list]:
    """The scan's resync events in MCU order and their MCUs, for :func:`runs_of_segment` to
    take each segment's by bisection (a restart interval every few MCUs makes tens of thousands
    of segments)."""
    events = sorted(sr.resyncs, key=lambda e: e.mcu)
    return np.array([e.mcu for e in events], np.int64), events


def runs_of_segment(sr: ScanResult, f: int, cnt: int, extra: int, opts: RunOptions,
                    order: tuple[np.ndarray, list] | None = None) -> tuple[list[Run], int]:
    """The runs of one restart segment (MCUs between resyncs, damaged ones left out) and the
    shift its last run must end at. ``order``: :func:`resyncs_in_order` of ``sr``, made once
    for all its segments."""
    decoded = sr.decoded[f : f + cnt]
    n_dec = int(np.argmin(decoded)) if not decoded.all() else cnt
    at, ordered_events = order if order is not None else resyncs_in_order(sr)
    events = ordered_events[int(np.searchsorted(at, f)):int(np.searchsorted(at, f + n_dec))]
    hurt = sr.suspect[f : f + n_dec].astype(bool)  # per decoded MCU of the segment
    starts = sr.mcu_bit_start
    seg_starts = starts[f : f + n_dec]
    if events or len(sr.zero_runs):
        ends = np.empty(n_dec, np.int64)
        ends[:-1] = starts[f + 1 : f + n_dec] if n_dec > 1 else np.zeros(0, np.int64)
        if n_dec:
            ends[-1] = starts[f + n_dec - 1] + 1
    # decoding only goes forward, so the MCUs whose bits overlap a window are one stretch, found
    # by bisection rather than a scan of the segment per event
    ordered = not events or n_dec < 2 or bool(np.all(np.diff(seg_starts) >= 0) and np.all(np.diff(ends) >= 0))
    for e in events:
        hurt[max(0, e.mcu - opts.back_mcus - f): min(n_dec, e.mcu + 1 + opts.skip_mcus - f)] = True
        lo, hi = e.fail_bit - opts.back_bits, e.fail_bit + opts.forward_bits
        if ordered:
            hurt[np.searchsorted(ends, lo, side="right"):np.searchsorted(seg_starts, hi, side="left")] = True
        else:
            hurt |= (seg_starts < hi) & (ends > lo)
    cuts = [e.mcu for e in events]
    for lo, hi in sr.zero_runs.tolist():  # a zero-filled stretch: everything decoded from it is garbage
        after = seg_starts >= hi
        inside = (seg_starts < hi) & (ends > lo - opts.back_bits)
        if not n_dec or hi <= seg_starts[0] or not (seg_starts >= lo).any():
            continue  # before the segment, or past its last MCU (zeros padding a file after the image)
        first = int(np.argmax(after)) if after.any() else n_dec
        hurt |= inside
        hurt[first: first + opts.skip_mcus] = True
        if 0 < first < n_dec:
            cuts.append(f + first)
    bounds = [f] + sorted(set(cuts)) + [f + n_dec]
    runs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = np.arange(a, b)
        runs.append(Run(a, b, idx[~hurt[a - f: b - f]]))
    final_shift = -extra if n_dec == cnt else cnt - n_dec
    if f + cnt == sr.mcus_expected and not sr.cut:
        runs, final_shift = _without_junk(runs, final_shift, f + cnt, opts)
    return runs, final_shift


def _without_junk(runs: list[Run], final_shift: int, end: int, opts: RunOptions) -> tuple[list[Run], int]:
    """The scan's last runs without those decoded past the photo's data. Some cameras leave data
    after the entropy-coded image inside the scan (a file padded to a fixed size); a decoder that
    lost MCUs in a hole reads them from it, failing every few MCUs, up to the MCU count. The runs
    after the scan's last long one (``junk_after`` MCUs or more) go when there are
    ``junk_runs`` or more and half of them or more hold no MCU to place (damage decodes on between
    its failures, junk hardly does); the run before them ends where the data did, and the MCUs it
    falls short by are the hole's."""
    sizes = np.array([r.trusted.size for r in runs], np.int64)
    long_ones = np.flatnonzero(sizes >= opts.junk_after)
    if not long_ones.size:
        return runs, final_shift
    tail = sizes[long_ones[-1] + 1:]
    if tail.size < opts.junk_runs or 2 * int((tail == 0).sum()) < tail.size:
        return runs, final_shift
    kept = runs[: long_ones[-1] + 1]
    return kept, end - kept[-1].end


def unsettled(sr: ScanResult, n: int, opts: RunOptions) -> np.ndarray:
    """Decoded MCUs (bool per index) that follow a resume point by ``skip_mcus`` + 1 to
    ``skip_mcus`` + ``settle_mcus``: the resync takes the first bit from which many MCUs decode,
    and a start a few bits early decodes a wrong block or two before its Huffman codes fall into
    step with the true ones (mostly one block's AC wrong). Mostly right, so they are placed (the fill keeps what agrees with
    the thumbnail), but not trusted. The same holds after a silent break a run is split at
    (``Run.settled``)."""
    out = np.zeros(n, bool)
    for e in sr.resyncs:
        first = e.mcu + 1 + opts.skip_mcus
        out[min(first, n): min(first + opts.settle_mcus, n)] = True
        # and before the MCUs walked back from the failure: garbage can decode for longer
        seg = int(sr.segment_first[max(np.searchsorted(sr.segment_first, e.mcu, side="right") - 1, 0)])
        out[max(e.mcu - opts.back_mcus - opts.lead_mcus, seg): max(e.mcu - opts.back_mcus, seg)] = True
    return out


@njit(cache=True)
def _clipped_sums(z: np.ndarray):
    """Per component of ``z`` (N, K): running sums of the values clipped to 6 robust spreads of
    their median (N + 1, K), and that spread."""
    n, k_n = z.shape
    mad = np.empty(k_n)
    cs = np.zeros((n + 1, k_n))
    for k in range(k_n):
        col = z[:, k].copy()
        med = median(col, 0.5)
        mad[k] = median(np.abs(col - med), 0.25) + 0.25
        lo, hi = med - 6 * mad[k], med + 6 * mad[k]
        for i in range(n):
            cs[i + 1, k] = cs[i, k] + min(max(col[i], lo), hi)
    return cs, mad


@njit(cache=True)
def _step_at(cs: np.ndarray, mad: np.ndarray, p: int) -> tuple[float, float]:
    """The step at ``p`` of :func:`_clipped_sums`: in standard errors (largest over components)
    and its largest jump."""
    n, k_n = cs.shape[0] - 1, cs.shape[1]
    se = np.sqrt(p * (n - p) / n)
    score, top = -1.0, 0.0
    for k in range(k_n):
        jump = abs((cs[n, k] - cs[p, k]) / (n - p) - cs[p, k] / p)
        score = max(score, jump / mad[k] * se)
        top = max(top, jump)
    return score, top


@njit(cache=True)
def step_scan(z: np.ndarray, min_split: int):
    """The likeliest single step in a run's offsets ``z`` (N, K): per split point p (at least
    ``min_split`` from either end), the difference of the means after and before (values clipped
    to 6 robust spreads of their median), in standard errors, largest over components. Returns
    the best p, its score, and its largest jump (DC units)."""
    cs, mad = _clipped_sums(z)
    n = z.shape[0]
    best_p, best, best_jump = min_split, -1.0, 0.0
    for p in range(min_split, n - min_split + 1):
        score, top = _step_at(cs, mad, p)
        if score > best:
            best_p, best, best_jump = p, score, top
    return best_p, best, best_jump


@njit(cache=True)
def step_here(z: np.ndarray, p: int) -> tuple[float, float]:
    """:func:`step_scan`'s score and jump for a step at ``p`` alone."""
    cs, mad = _clipped_sums(z)
    return _step_at(cs, mad, p)


def split_at(run: Run, cut: int, cut_mcu: int, opts: RunOptions) -> tuple[Run, Run]:
    """``run`` split at a silent break at its ``cut``-th trusted MCU (decoded index ``cut_mcu``):
    the MCUs just before and after it are left out as around a failure, and the next few on
    either side are kept but marked (``lead_mcus``, ``settle_mcus``)."""
    m = run.trusted
    a = Run(run.first, cut_mcu, m[: max(cut - opts.back_mcus, 0)], run.settled,
             int(m[max(cut - opts.back_mcus - opts.lead_mcus, 0)]), run.probe_from,
             cut_mcu - opts.back_mcus - opts.silent_margin)
    b = Run(cut_mcu, run.end, m[cut + opts.skip_mcus + 1 :],
            max(run.settled, cut_mcu + 1 + opts.skip_mcus + opts.settle_mcus),  # a run all precautions stays so
            run.tail, cut_mcu + 1 + opts.skip_mcus + opts.silent_margin, run.probe_to)
    return a, b


def _offset_step(m: np.ndarray, offsets: np.ndarray, units: list[float], least: int) -> tuple[int, float, float]:
    """:func:`step_scan` of the trusted MCUs ``m``'s offsets from the thumbnail, per component in
    DC steps or levels if coarser: a step finer than a level (quality 90+) is noise to a
    thumbnail."""
    return step_scan(offsets[m] / np.maximum(np.asarray(units), 1.0)[None, :], least)


def split_silent(run: Run, offsets: np.ndarray | None, units: list[float], opts: RunOptions,
                  depth: int = 0, confirm=None) -> list[Run]:
    """Split a run where its DC offset against the thumbnail steps: a damaged stretch that decoded
    without any failure (Huffman codes self-synchronise) still changes the DC predictors.
    ``confirm(run, cut_mcu)``: whether the decode's own edges show the step there (a camera's or
    a JPEG thumbnail steps against the photo where the photo has none); None: the thumbnail
    alone decides."""
    m = run.trusted
    if offsets is None or m.size < 2 * opts.min_split or depth > opts.max_depth:
        return [run]
    cut, score, jump = _offset_step(m, offsets, units, opts.min_split)
    if score < opts.split_score or jump < opts.split_jump:
        return [run]
    if confirm is not None and not confirm(run, int(m[cut])):
        return [run]
    a, b = split_at(run, cut, int(m[cut]), opts)
    return (split_silent(a, offsets, units, opts, depth + 1, confirm)
            + split_silent(b, offsets, units, opts, depth + 1, confirm))


FIRST_ROW_PIECE = 8  # trusted MCUs either side of a break in the scan's first row
FIRST_ROW_RATIO = 6.0  # times the run's median step across its MCU joins the break's must be ...
FIRST_ROW_LEVELS = 8.0  # ... and this many levels above it
FIRST_ROW_SCORE = 2.0  # standard errors the thumbnail's step there must reach
FIRST_ROW_SHIFTS = (-2, -1, 1, 2)  # MCUs aside the tail's rows may wrap
FIRST_ROW_WRAP = 2.0  # times its joins where they wrap as it lies its joins there must break ...
FIRST_ROW_WRAP_LEVELS = 1.5  # ... and this many levels more (flat rows wrap anywhere)
FIRST_ROW_SLACK = 12.0  # levels past 0..255 a sample may reach (ringing), as the DC fit's range
FIRST_ROW_JUMP = 32.0  # levels a join in the first row steps by, to be a break without a thumbnail ...
FIRST_ROW_OUT = 0.03  # ... where this share of the MCUs after it pass the range (a clean decode: none) ...
FIRST_ROW_OUT_MCUS = 16  # ... and this many at least ...
FIRST_ROW_IN = 0.02  # ... and at most this share of those before it


def first_row_joins(lefts: np.ndarray, rights: np.ndarray, mcus: np.ndarray) -> np.ndarray:
    """Per decoded MCU of ``mcus``: how far its left edge (extrapolated in, ``lefts``) and the
    right edge of the MCU decoded just before it (extrapolated out, ``rights``) differ in shape:
    the mean absolute deviation of the steps across the join from their mean (a DC step there
    says nothing)."""
    d = lefts[mcus] - rights[mcus - 1]
    return np.abs(d - d.mean(axis=1, keepdims=True)).mean(axis=1)


def split_out_of_range(run: Run, lefts: np.ndarray, rights: np.ndarray, extremes: tuple[np.ndarray, np.ndarray],
                       cols: int, opts: RunOptions) -> list[Run]:
    """Without a thumbnail, the scan's first run cut where its first row steps out of 0..255: at
    the join of MCUs decoded one after the other with the largest level step (``lefts`` /
    ``rights``, the luma edges; ``FIRST_ROW_JUMP`` at least) past which ``FIRST_ROW_OUT`` of the
    run's MCUs (``FIRST_ROW_OUT_MCUS`` at least) hold a sample beyond the range, on the side the
    step goes, by more than ringing reaches (``extremes``: per MCU the brightest and darkest luma
    sample on its border), and before which at most ``FIRST_ROW_IN`` do. An encoder saw no such
    samples: a silent break there changed the DC predictor of all that follows, and with
    nothing above the row no other rule sees it."""
    m = run.trusted
    if run.first != 0 or m.size < 2 * FIRST_ROW_PIECE:
        return [run]
    q = np.arange(FIRST_ROW_PIECE, m.size - FIRST_ROW_PIECE + 1)
    q = q[(m[q] == m[q - 1] + 1) & (m[q] < cols) & (m[q] % cols != 0)]
    if not q.size:
        return [run]
    step = (lefts[m[q]] - rights[m[q] - 1]).mean(axis=1)
    top, bottom = extremes
    high, low = top[m] > 255.0 + FIRST_ROW_SLACK, bottom[m] < -FIRST_ROW_SLACK
    for k in np.argsort(-np.abs(step), kind="stable"):  # the largest step first; an edge may be larger
        if abs(step[k]) < FIRST_ROW_JUMP:
            break
        out = high if step[k] > 0 else low
        cut = int(q[k])
        after = out[cut:]
        if after.mean() >= FIRST_ROW_OUT and after.sum() >= FIRST_ROW_OUT_MCUS and out[:cut].mean() <= FIRST_ROW_IN:
            return list(split_at(run, cut, int(m[cut]), opts))
    return [run]


def split_first_row(run: Run, lefts: np.ndarray, rights: np.ndarray, offsets: np.ndarray | None,
                    units: list[float], cols: int, opts: RunOptions) -> list[Run]:
    """The scan's first run cut at a silent break in its first row that gained or lost MCUs:
    nothing lies above that row, so no rule that reads the rows around a break sees it, and the
    run is never held against the thumbnail; the rest of the run sits off, its DC predictor
    changed, and the runs decoded after it follow it. The break is the join between MCUs
    decoded one after the other (in one image row) whose shapes differ most (``first_row_joins`` of
    the luma edges ``lefts`` / ``rights``), at least ``FIRST_ROW_RATIO`` times and
    ``FIRST_ROW_LEVELS`` above the run's median join, ``FIRST_ROW_PIECE`` trusted MCUs from
    either end, where the thumbnail's level (``offsets`` as :func:`split_silent`) steps too, by
    ``FIRST_ROW_SCORE`` standard errors and ``split_jump``; and the tail's own row wraps must
    show it off: its joins where its rows would wrap an MCU or two aside (``FIRST_ROW_SHIFTS``)
    break ``FIRST_ROW_WRAP`` times (and ``FIRST_ROW_WRAP_LEVELS`` levels) more than where they
    wrap as it lies. The edges are of the scan's first component (luma in a colour photo's
    interleaved scan). Without a thumbnail, see :func:`split_out_of_range`."""
    m = run.trusted
    if run.first != 0 or offsets is None or m.size < 4 * FIRST_ROW_PIECE:
        return [run]
    q = np.arange(1, m.size)
    q = q[m[q] == m[q - 1] + 1]  # joins of MCUs decoded one after the other
    if q.size < 2 * FIRST_ROW_PIECE:
        return [run]
    steps = first_row_joins(lefts, rights, m[q])
    inside = (m[q] % cols != 0) & (q >= FIRST_ROW_PIECE) & (q <= m.size - FIRST_ROW_PIECE) & (m[q] < cols)
    if not inside.any():
        return [run]
    base = float(np.median(steps[m[q] % cols != 0]))
    k = int(np.argmax(np.where(inside, steps, -np.inf)))
    if steps[k] < FIRST_ROW_RATIO * base or steps[k] < base + FIRST_ROW_LEVELS:
        return [run]
    cut = int(q[k])
    tail = m[q] > m[cut] + opts.skip_mcus + 1

    def wraps(d: int) -> float:
        at = tail & ((m[q] + d) % cols == 0)
        return float(steps[at].mean()) if at.any() else np.nan

    here = wraps(0)
    aside = max((wraps(d) for d in FIRST_ROW_SHIFTS), key=lambda v: -np.inf if np.isnan(v) else v)
    if np.isnan(here) or np.isnan(aside) or aside < FIRST_ROW_WRAP * here or aside < here + FIRST_ROW_WRAP_LEVELS:
        return [run]
    score, jump = step_here(offsets[m] / np.maximum(np.asarray(units), 1.0)[None, :], cut)
    if score < FIRST_ROW_SCORE or jump < opts.split_jump:
        return [run]
    return list(split_at(run, cut, int(m[cut]), opts))


OWED_SCORE = 4.0  # standard errors the DC step of a break an interval owes must reach (where, is the question)
OWED_PIECE = 8  # trusted MCUs either side of the cut (a few fewer once those around the break are left out)


def owes_break(sr: ScanResult, first: int, count: int, extra: int, final_shift: int) -> bool:
    """Whether the restart interval at ``first`` (``count`` MCUs) owes a silent gain: it decoded
    ``extra`` > 0 MCUs more than it holds, the rest of its MCUs are to end at its end, and the next
    interval was found (a damaged marker makes an interval decode the next one's data as extra)."""
    nxt = first + count
    return sr.restart_interval > 0 and extra > 0 and final_shift == -extra and \
        (nxt >= sr.mcus_expected or bool(sr.decoded[nxt]))


def split_owed(run: Run, offsets: np.ndarray | None, units: list[float], opts: RunOptions) -> list[Run]:
    """Split the one run of a restart interval that decoded more MCUs than it holds and failed
    nowhere: a silent break inside the run gained them, and past it the MCUs belong that many
    places earlier (the search aims the piece after the cut at the interval's end). That a break
    is there is known, so its DC step against the thumbnail (``offsets``, as :func:`split_silent`)
    needs less to be believed: ``OWED_SCORE`` standard errors and ``split_jump`` DC steps,
    ``OWED_PIECE`` trusted MCUs either side. Not found: the run whole, every MCU a precaution."""
    m = run.trusted
    unsure = [replace(run, settled=run.end)]  # the break is in it, somewhere: every MCU a precaution
    if offsets is None or m.size < 2 * OWED_PIECE:
        return unsure
    cut, score, jump = _offset_step(m, offsets, units, OWED_PIECE)
    if score < OWED_SCORE or jump < opts.split_jump:
        return unsure
    return list(split_at(run, cut, int(m[cut]), opts))


def edge_step(run: Run, cut_mcu: int, inner_top: tuple, outer_bottom: tuple, units: list[float], cols: int,
              skip: int, least: int) -> float | None:
    """The DC step the decode's own edges show at a silent break inside ``run`` at decoded MCU
    ``cut_mcu``, in DC steps (or levels if coarser; the largest over components): the median step
    from the MCUs of the row after it to the ones decoded a row earlier, before it, in the same
    run. None where fewer than ``least`` such pairs exist (a break in the first row of a run)."""
    m = run.trusted
    lo, hi = cut_mcu + skip + 1, min(cut_mcu + cols, run.end)
    after = m[(m >= lo) & (m < hi)]
    above = after - cols
    keep = (above >= run.first) & (above < cut_mcu) & np.isin(above, m)
    after, above = after[keep], above[keep]
    if after.size < least:
        return None
    steps = [float(np.median((inner_top[k][after] - outer_bottom[k][above]).mean(axis=1))) / max(units[k], 1.0)
             for k in range(len(units))]
    return max(abs(x) for x in steps)


def top_steps(inner_top: tuple, outer_bottom: tuple, cols: int) -> np.ndarray:
    """Per decoded MCU and component, the signed mean step (levels) across its top edge to the MCU
    decoded a row earlier (0 in the first row): inside a run that is its true neighbour, so the
    step is content's alone unless the DC predictors changed in between."""
    n = inner_top[0].shape[0]
    out = np.zeros((n, len(inner_top)))
    if n > cols:
        for k in range(len(inner_top)):
            out[cols:, k] = (inner_top[k][cols:] - outer_bottom[k][:-cols]).mean(axis=1)
    return out


STEP_TRIES = 4  # places a run's DC step is looked for, best scoring first


def _uniform_step(win: np.ndarray, spread: np.ndarray, opts: RunOptions) -> bool:
    """Whether the steps of a row of MCU pairs (``win``, levels per component) show one constant
    added to all of them: a changed DC predictor moves every MCU alike, flat or textured, so the
    pairs keep the spread (interquartile, ``spread``) they have elsewhere in the run; the edge of
    something the photo shows along an MCU row steps in some of them only, and by varying amounts."""
    med = np.median(win, axis=0)
    iqr = np.subtract(*np.percentile(win, [75, 25], axis=0))
    big = np.abs(med) >= opts.step_levels
    return bool(np.any(big & (iqr <= opts.step_spread * spread + 0.5)))


def _thumbnail_sees(run: Run, cut_mcu: int, step: np.ndarray, offsets: np.ndarray, cols: int,
                    opts: RunOptions) -> bool:
    """Whether the run's offsets against the thumbnail step with the edges at ``cut_mcu`` (a row of
    MCUs either side, medians): a break moves the photo and not its thumbnail, the edge of
    something the photo shows along an MCU row is in the thumbnail too. Too few MCUs either side
    to tell: the edges decide."""
    m = run.trusted
    before = m[(m >= cut_mcu - cols) & (m < cut_mcu - opts.back_mcus)]
    after = m[(m > cut_mcu + opts.skip_mcus) & (m < cut_mcu + cols)]
    if min(before.size, after.size) < opts.step_pairs:
        return True
    seen = np.median(offsets[after], axis=0) - np.median(offsets[before], axis=0)
    big = np.abs(step) >= opts.step_levels
    return bool(np.all(seen[big] * step[big] >= 0.25 * step[big] ** 2))


@njit(cache=True)
def step_scores(e: np.ndarray, meas: np.ndarray, cols: int, pairs: int) -> np.ndarray:
    """:func:`split_step`'s score of a cut before each MCU ``1..span-1`` of a run: the signed mean
    step ``e`` (span × components) over the measured pairs (``meas``) of the row from the cut on,
    each step clipped to 6 robust sigmas, in standard errors, the largest over components (0
    with fewer than ``pairs`` pairs). Compiled: a photo holds hundreds of runs."""
    span, n_k = e.shape
    nv = 0
    for i in range(span):
        nv += meas[i]
    sig = np.empty(n_k)
    col = np.empty(nv)
    for k in range(n_k):
        q = 0
        for i in range(span):
            if meas[i]:
                col[q] = e[i, k]
                q += 1
        mid = np.median(col)
        sig[k] = 1.4826 * np.median(np.abs(col - mid)) + 0.1
    cs = np.zeros((span + 1, n_k))
    cc = np.zeros(span + 1, np.int64)
    for i in range(span):
        cc[i + 1] = cc[i] + meas[i]
        for k in range(n_k):
            v = min(max(e[i, k], -6 * sig[k]), 6 * sig[k]) if meas[i] else 0.0
            cs[i + 1, k] = cs[i, k] + v
    score = np.zeros(span - 1)
    for j in range(1, span):
        hi = min(j + cols, span)
        lo = min(max(j, cols), hi)
        cnt = cc[hi] - cc[lo]
        if cnt < max(pairs, 1):
            continue
        best = 0.0
        for k in range(n_k):
            best = max(best, abs((cs[hi, k] - cs[lo, k]) / cnt) / sig[k])
        score[j - 1] = best * np.sqrt(cnt)
    return score


def split_step(run: Run, steps: np.ndarray, cols: int, opts: RunOptions, offsets: np.ndarray | None = None,
               depth: int = 0) -> list[Run]:
    """Split a run where its own edges show a DC step: damage that decoded without a failure and
    kept every block in place (Huffman codes fall back in step) still changes the DC predictors,
    so from there on a component sits off by a constant. The MCUs of the row after such a break
    step against those above them by that constant, and nowhere else; it is found without a
    thumbnail, and where a camera's thumbnail, steeper or flatter in tone, hides it. ``steps``:
    :func:`top_steps`. A cut is taken where the signed step over the row of pairs it spans
    reaches ``step_sigma`` standard errors and ``step_levels`` levels (median). ``offsets``: per
    MCU its mean minus the thumbnail's (None without one), which must step alike."""
    m = run.trusted
    if opts.step_sigma <= 0 or depth > opts.max_depth or m.size < cols + opts.step_pairs:
        return [run]
    first, span = run.first, run.end - run.first
    member = np.zeros(span, bool)
    member[m - first] = True
    meas = np.zeros(span, bool)
    meas[cols:] = member[cols:] & member[:-cols]
    if meas.sum() < opts.step_pairs:
        return [run]
    e = np.ascontiguousarray(steps[first:run.end])
    score = step_scores(e, meas, cols, opts.step_pairs)
    j = np.arange(1, span)  # a cut before MCU first + j: the pairs from it to a row on span it
    lo, hi = np.maximum(j, cols), np.minimum(j + cols, span)
    vals = e[meas]
    spread = None  # the pairs' spread elsewhere, once a cut scores
    for _ in range(STEP_TRIES):  # content's own edges along an MCU row can score too: the next best
        best = int(np.argmax(score))
        if score[best] < opts.step_sigma:
            return [run]
        if spread is None:
            spread = np.subtract(*np.percentile(vals, [75, 25], axis=0))
        win = e[lo[best]:hi[best]][meas[lo[best]:hi[best]]]
        if _uniform_step(win, spread, opts) and (
                offsets is None or _thumbnail_sees(run, first + int(j[best]), np.median(win, axis=0), offsets, cols,
                                                   opts)):
            break
        score[max(best - cols, 0):best + cols] = 0.0
    else:
        return [run]
    cut_mcu = first + int(j[best])
    cut = int(np.searchsorted(m, cut_mcu))
    if cut < 1 or cut >= m.size - 1:
        return [run]
    a, b = split_at(run, cut, cut_mcu, opts)
    return split_step(a, steps, cols, opts, offsets, depth + 1) + split_step(b, steps, cols, opts, offsets, depth + 1)


def split_pulse(run: Run, rough: np.ndarray, cols: int, opts: RunOptions, depth: int = 0,
                per_mcu_noise: bool = False) -> list[Run]:
    """Split a run at a silent break found from continuity alone: after a break at MCU p, the MCUs
    p..p+cols-1 sit under content decoded before it (other DC, maybe other shift), so the boundary
    roughness to the MCU above rises for exactly one row's worth of MCUs. Also run on
    :func:`acir_core.sca.edges.misalignment` (``per_mcu_noise``: the row mean's noise from the
    MCUs' spread), which shows a silent loss or gain of one MCU in texture: missed, such a break
    leaves the rest of the run one MCU off, and every later run is then placed to match it, down
    to the image's end."""
    m = run.trusted
    if m.size < 3 * cols or depth > opts.max_depth:
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
    a, b = split_at(run, cut, cut_mcu, opts)
    return (split_pulse(a, rough, cols, opts, depth + 1, per_mcu_noise)
            + split_pulse(b, rough, cols, opts, depth + 1, per_mcu_noise))