"""Decoder-aware self-compensation and alignment (design.md §3): the stages put together.

The paper's SCA looks at pixels only and has to guess where segments start. Our decoder knows
every resync's MCU and bit position, restart markers fix exact anchors, and the number of MCUs
in the scan is fixed. So, per scan:

1. each restart interval is cut into runs (:mod:`acir_core.sca.runs`);
2. each later run is placed at the shift and DC that best join it to what is placed
   (:mod:`acir_core.sca.shifts`), then all runs' DC errors are solved jointly
   (:mod:`acir_core.sca.dcfit`);
3. the corrections are applied to the quantised coefficients (shift = move MCUs, DC = integer
   subtraction) and the image re-rendered: where the estimates are right, every pixel outside
   the damage equals the clean decode exactly;
4. with a thumbnail, a last DC check against it (:mod:`acir_core.sca.refine`), and the damage
   mask (:mod:`acir_core.sca.marks`).

Filling the damage is :mod:`acir_core.sca.compensate`'s job.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache

import numpy as np

from acir_core.jpeg.decoder import DecodeResult, ScanResult
from acir_core.jpeg.render import SamplePlanes
from acir_core.jpeg.tables import scan_cell
from acir_core.sca.dcfit import Placement, solve_dc
from acir_core.sca.edges import (Edges, inward, mcu_major, misalignment, outward, roughness, scan_geometry,
                                 thumb_means)
from acir_core.sca.inrange import runs_into_range
from acir_core.sca.joinstep import join_steps
from acir_core.sca.marks import mask_holes, outliers_of_run, pixel_mask, spread
from acir_core.sca.overshoot import grid_overshooting
from acir_core.sca.options import AwareOptions, RunOptions
from acir_core.sca.plateau import exact_levels, pin_plateau
from acir_core.sca.recheck import recheck
from acir_core.sca.refine import RefineContext, thumbnail_refine
from acir_core.sca.rejoin import rejoin
from acir_core.sca.rechain import realign
from acir_core.sca.restep import restep
from acir_core.sca.rewrap import held, rewrap
from acir_core.sca.unsure import unsure_runs
from acir_core.sca.result import SCAResult, SegmentFix
from acir_core.sca.crosscheck import crosscheck, reference_positions
from acir_core.sca.runs import (Run, edge_step, owes_break, resyncs_in_order, runs_of_segment, split_first_row,
                                split_out_of_range, split_owed, split_pulse, split_silent, split_step, top_steps,
                                unsettled)
from acir_core.sca.shifts import INF, Canvas, held_path, pin_end, search_runs
from acir_core.sca.unfit import SegmentSearch, split_unfit
from acir_core.sca.vouch import cleared, position_maps, vouched

CONFIRM_PAIRS = 8  # MCU pairs across a row the edges need to confirm a silent break
FORCED_SPLITS = 4  # silent breaks a segment's end may force into its runs
FORCED_ROWS = 3  # rows a run must span for a forced shift to split it
FORCED_RATIO = 2.0  # times its best cost a run's forced shift must cost to hold a silent break
FORCED_LEVELS = 0.5  # ... and levels more
FORCED_PULSE = RunOptions(pulse_min=0.0, pulse_sigma=0.0, max_depth=0)  # one cut, at the peak


def sound_split(run: Run, offsets: np.ndarray, where: tuple[int, int, int], run_edges: tuple[tuple, tuple],
                units: list[float], canvas: Canvas, thumb_cols: tuple, mcu_means: tuple,
                opts: AwareOptions) -> list[Run]:
    """The one silent break a sound restart segment may hold (see
    :meth:`~acir_core.jpeg.decoder.ScanResult.sound_segments`): a flipped magnitude bit of a DC
    difference keeps every code boundary and moves one component's level from there to the
    segment's end. The thumbnail says where (:func:`split_silent`, one split at most); the edges
    to what is placed around the later piece must then show a step of ``split_jump`` levels or
    more on their own, or the segment stays whole: a camera's thumbnail steps against the photo
    wherever its tone curve bends. ``where``: the segment's first MCU, its MCU count and the
    scan's MCU columns."""
    pieces = split_silent(run, offsets, units, _one_cut(opts.runs))
    if len(pieces) < 2:
        return [run]
    f, cnt, cols = where
    before = canvas.snapshot(slice(f, f + cnt))  # the trial places inside the segment, and leaves nothing
    canvas.place(pieces[0].trusted, pieces[0].trusted, [0.0] * len(units))
    costs, dcs, bases = search_runs(pieces[1:], f, cnt, cols, run_edges, units, canvas, thumb_cols, False,
                                    opts.shifts, mcu_means)
    canvas.restore(before)
    j = -int(bases[0])
    if not 0 <= j < costs.shape[1] or costs[0, j] >= INF:
        return [run]
    step = np.abs(dcs[0, j]) * np.asarray(units) / np.maximum(np.asarray(units), 1.0)
    return pieces if float(step.max()) >= opts.runs.split_jump else [run]


@lru_cache(maxsize=8)
def _one_cut(opts: RunOptions) -> RunOptions:
    """``opts`` with one split at most (made once, not per segment)."""
    return replace(opts, max_depth=0)


def split_held(later: list[Run], found: tuple, misalign: np.ndarray, cols: int, opts: AwareOptions,
               again) -> tuple[list[Run], tuple]:
    """Where a segment's path holds a long run at a shift its own edges reject (its cost there
    ``FORCED_RATIO`` times its best, and ``FORCED_LEVELS`` more; the run ``FORCED_ROWS`` rows or more),
    the run holds a silent loss or gain of MCUs too faint to split it by itself, which the
    segment's end forces on it: it is cut where the misalignment peaks and the segment searched
    again (``again``: the runs' costs, DCs, bases and path), up to ``FORCED_SPLITS`` times.
    ``found``: the first search's (costs, DCs, bases, path). Returns the runs and the last search."""
    for _ in range(FORCED_SPLITS):
        costs, _, bases, path = found
        worst, worst_ratio = -1, FORCED_RATIO
        for r, (run, s) in enumerate(zip(later, path)):
            j = s - int(bases[r])
            best = float(costs[r].min())
            if run.trusted.size < FORCED_ROWS * cols or not 0 <= j < costs.shape[1] or best >= INF:
                continue
            ratio = float(costs[r, j]) / max(best, 1e-9)
            if ratio > worst_ratio and float(costs[r, j]) - best >= FORCED_LEVELS:
                worst, worst_ratio = r, ratio
        if worst < 0:
            break
        pieces = split_pulse(later[worst], misalign, cols, FORCED_PULSE, per_mcu_noise=True)
        if len(pieces) < 2:
            break
        later = later[:worst] + pieces + later[worst + 1:]
        found = again(later)
    return later, found


def confirmer(inner_top: tuple, outer_bottom: tuple, units: list[float], cols: int,
              opts: RunOptions) -> Callable[[Run, int], bool]:
    """Whether the decode's own edges show the step the thumbnail sees at a silent break
    (:func:`~acir_core.sca.runs.split_silent`'s ``confirm``): where they cannot measure it (a
    break in a run's first row), the thumbnail decides."""
    def confirm(run: Run, cut_mcu: int) -> bool:
        step = edge_step(run, cut_mcu, inner_top, outer_bottom, units, cols, opts.skip_mcus, CONFIRM_PAIRS)
        return step is None or step >= opts.split_jump
    return confirm


def place_runs(sr: ScanResult, edges: list[Edges], run_edges: tuple[tuple, tuple], units: list[float],
               thumb: np.ndarray | None, canvas: Canvas, opts: AwareOptions,
               sound: np.ndarray, steps: np.ndarray, extremes: tuple | None = None) -> tuple[list[Placement], float]:
    """Every run of every restart interval of the scan placed: run 0 of an interval as decoded,
    the later ones by the shift search and the dynamic programme over their shifts, on
    ``canvas``. ``run_edges``: per component every MCU's top and left edges extrapolated
    (:func:`acir_core.sca.edges.inward`); ``units``: levels per DC step; ``thumb``: the
    thumbnail's mean per MCU and component (or None); ``sound``: per restart segment, decoded as
    written (:meth:`~acir_core.jpeg.decoder.ScanResult.sound_segments`); ``steps``:
    :func:`~acir_core.sca.runs.top_steps` of the decode; ``extremes``: per component
    :meth:`~acir_core.sca.edges.Edges.extremes` (read without a thumbnail). Returns the placements and the reference
    continuity cost (mean edge step inside content decoded right, in levels)."""
    cols = sr.mcu_cols
    mcu_means = tuple(e.mean for e in edges)
    # offsets of each decoded MCU from the thumbnail at the same index: steps mark silent damage
    offsets = (np.stack(mcu_means, axis=1) - thumb) if thumb is not None else None
    # the thumbnail's mean at each MCU position per component (a placeholder without one)
    thumb_cols = tuple(np.ascontiguousarray(thumb[:, k]) if thumb is not None else np.zeros(1)
                       for k in range(len(edges)))
    rough = roughness(edges, cols)
    misalign = misalignment(edges, cols, rough)
    ref_costs = []  # continuity inside content decoded right, to judge confidence by
    placements: list[Placement] = []
    order = resyncs_in_order(sr)
    for f, cnt, extra, pad, whole in zip(sr.segment_first.tolist(), sr.segment_count.tolist(),
                                         sr.segment_extra.tolist(), sr.segment_pad.tolist(), sound.tolist()):
        runs, final_shift = runs_of_segment(sr, f, cnt, extra, opts.runs, order)
        if not runs:
            continue
        if whole:
            if thumb is not None:
                runs = sound_split(runs[0], offsets, (f, cnt, cols), run_edges, units, canvas, thumb_cols,
                                   mcu_means, opts) + runs[1:]
        else:
            if f == 0 and thumb is None and extremes is not None:  # nothing above the first row nor a
                # thumbnail: a break there shows only where it leaves the range
                runs = split_out_of_range(runs[0], run_edges[1][0], canvas.outer[1][0], extremes[0], cols,
                                          opts.runs) + runs[1:]
            runs = [piece for run in runs for piece in split_pulse(run, rough, cols, opts.runs)]
            runs = [piece for run in runs for piece in split_pulse(run, misalign, cols, opts.runs,
                                                                   per_mcu_noise=True)]
            if thumb is not None:
                confirm = confirmer(run_edges[0], canvas.outer[0], units, cols, opts.runs)
                runs = [piece for run in runs for piece in split_silent(run, offsets, units, opts.runs,
                                                                        confirm=confirm)]
                if f == 0 and runs:  # nothing above the scan's first row to show a break in it
                    runs = split_first_row(runs[0], run_edges[1][0], canvas.outer[1][0], offsets, units, cols,
                                           opts.runs) + runs[1:]
        if not (whole and sr.head and not sr.resyncs):  # a lost start's scan that met no failure:
            # its one segment holds no damage, an edge along an MCU row there is the picture's
            runs = [piece for run in runs for piece in split_step(run, steps, cols, opts.runs, offsets)]
        owed = owes_break(sr, f, cnt, extra, final_shift) and len(runs) == 1 and not whole
        if owed:  # a silent break is in its one run: find where
            runs = split_owed(runs[0], offsets, units, opts.runs)
        first = runs[0]
        t0 = first.trusted
        canvas.place(t0, t0, [0.0] * len(edges))
        if t0.size > cols:
            inner = t0[np.isin(t0 - cols, t0)]
            if inner.size:
                ref_costs.append(np.mean([np.mean(np.abs(e.top[inner] - e.bottom[inner - cols])) for e in edges]))
        chosen = [(first, 0, (0,) * len(edges), 0.0)]
        later = [r for r in runs[1:] if r.trusted.size >= opts.shifts.min_run]
        # a lost or repeated stretch moves the rest of the segment by more than one search window
        # reaches from run to run (not a cut: its MCUs are missing at the end, not inside)
        last = f + cnt >= sr.mcus_expected
        wide = opts.shifts.window < abs(final_shift) <= opts.shifts.wide_window and \
            0 < len(later) <= opts.shifts.wide_runs and not (last and sr.cut)
        # the search places inside the segment; searched again if wide, or if a run may be split
        again_possible = wide or opts.shifts.unfit or any(r.trusted.size >= FORCED_ROWS * cols for r in later)
        before = canvas.snapshot(slice(f, f + cnt)) if later and again_possible else None
        # the last run decoded up to the fill bits the encoder ended the segment with: it ends
        # where the segment does, whatever its borders say (a hole a row or more long leaves
        # it none with placed content at its true place)
        pinned = pad >= 0 and bool(later) and later[-1] is runs[-1] and not (last and sr.cut)
        if later:  # most intervals of a file with restart markers hold one run
            penalty = opts.shifts.jump_penalty * (np.median(ref_costs) if ref_costs else 1.0)

            def path_of(c: np.ndarray, b: np.ndarray) -> list[int]:
                return held_path(c, b, final_shift, penalty, pinned)
            costs, dcs, bases = search_runs(later, f, cnt, cols, run_edges, units, canvas, thumb_cols,
                                            thumb is not None, opts.shifts, mcu_means)
            path = path_of(costs, bases)
            if wide and path[-1] != final_shift:  # search again with the end's shift in reach
                canvas.restore(before)
                wide = replace(opts.shifts, window=abs(final_shift) + opts.shifts.window)
                costs, dcs, bases = search_runs(later, f, cnt, cols, run_edges, units, canvas, thumb_cols,
                                                thumb is not None, wide, mcu_means)
                path = path_of(costs, bases)
            elif before is not None:
                def search(runs: list[Run], start: int = 0):
                    return search_runs(runs, f, cnt, cols, run_edges, units, canvas, thumb_cols, thumb is not None,
                                       opts.shifts, mcu_means, start)

                def again(runs: list[Run]):  # the segment's later runs searched afresh
                    canvas.restore(before)
                    c, d, b = search(runs)
                    return c, d, b, path_of(c, b)
                found = (costs, dcs, bases, path)
                if any(r.trusted.size >= FORCED_ROWS * cols for r in later):
                    later, found = split_held(later, found, misalign, cols, opts, again)
                if opts.shifts.unfit:
                    seg = SegmentSearch(canvas=canvas, before=before, first=f, count=cnt, cols=cols,
                                        absolute=thumb is not None, units=np.asarray(units),
                                        window=opts.shifts.window, search=search, path=path_of)
                    later, found = split_unfit(later, found, float(np.median(ref_costs)) if ref_costs else 1.0,
                                               (run_edges[1], canvas.outer[1]), opts.runs, seg)
                costs, dcs, bases, path = found
            if pinned:
                costs = costs.copy()
                pin_end(costs, bases, final_shift)
            for r, (run, s) in enumerate(zip(later, path)):
                j = s - int(bases[r])
                if 0 <= j < costs.shape[1] and costs[r, j] < INF:
                    chosen.append((run, s, tuple(dcs[r, j].tolist()), float(costs[r, j])))
                else:
                    chosen.append((run, s, (0,) * len(edges), float(INF)))
        if owed and chosen[-1][1] != final_shift:  # the search did not put the rest where it belongs
            run, sft, dc, cost = chosen[-1]
            chosen[-1] = (replace(run, settled=run.end), sft, dc, cost)
        placements += [Placement(run=run, shift=sft, dc=dc, cost=cost, anchored=k == 0, first=f, count=cnt)
                       for k, (run, sft, dc, cost) in enumerate(chosen)]
    return placements, float(np.median(ref_costs)) if ref_costs else 8.0


_EDGES: dict[tuple[int, int], tuple] = {}  # (id of the decode, scan): what _edges_of found, in shared_edges
_SHARED: set[int] = set()  # decodes (by id) whose edges SCA keeps between calls, while in shared_edges


@contextmanager
def shared_edges(result: DecodeResult):
    """While in this block, every SCA of ``result`` (a single-scan decode) computes what placing
    reads of its MCUs once: the unguided SCA, the guided one and the guided one again with a
    toned thumbnail read the same decode. Dropped on leaving (~12 bytes per pixel)."""
    _SHARED.add(id(result))
    try:
        yield
    finally:
        _SHARED.discard(id(result))
        for si in range(len(result.scans)):
            _EDGES.pop((id(result), si), None)


def _edges_of(result: DecodeResult, si: int, mcus: list[np.ndarray], qts: list) -> tuple:
    """What placing reads of the MCUs of scan ``si`` of ``result`` as decoded: their ``Edges``,
    and per component tuples of arrays (what the compiled search and placing take) of their
    bottom and right edges extrapolated outwards and their top and left edges inwards; kept for
    the next SCA of a single-scan decode inside :func:`shared_edges`."""
    key = (id(result), si)
    share = len(result.scans) == 1 and id(result) in _SHARED
    if share and key in _EDGES:  # the decode is alive (shared_edges holds it), so its id is its own
        return _EDGES[key]
    edges = [Edges.of(m, q) for m, q in zip(mcus, qts)]
    outer = (tuple(outward(e.bottom, e.bottom2) for e in edges), tuple(outward(e.right, e.right2) for e in edges))
    inner = (tuple(inward(e.top, e.top2) for e in edges), tuple(inward(e.left, e.left2) for e in edges))
    found = (edges, outer, inner)
    if share:
        _EDGES[key] = found
    return found


def _in_span(pl: Placement) -> np.ndarray:
    """The decoded MCUs of a placed run that land inside the positions its interval may claim."""
    t = pl.run.trusted + pl.shift
    return pl.run.trusted[(t >= pl.first) & (t < pl.first + pl.count)]


def _mcu_view(grid: np.ndarray, rows: int, cols: int, v: int, h: int) -> np.ndarray:
    """The (rows, v, cols, h, 64) view of a component's block grid (rows*v × cols*h blocks used
    of it): writing into it writes the grid, with no MCU-major copy to transpose back."""
    view = grid[: rows * v, : cols * h].reshape(rows, v, cols, h, 64)
    if not np.shares_memory(view, grid):  # splitting axes never copies; if it ever did, writes would be lost
        raise RuntimeError("coefficient grid view is a copy")
    return view


def compensate_scan(si: int, result: DecodeResult, sr: ScanResult, coefs: list[np.ndarray],
                    thumbnail: np.ndarray | None, opts: AwareOptions, hint: np.ndarray | None = None
                    ) -> tuple[list[SegmentFix], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Put back the runs of scan ``si``, correcting ``coefs`` in place. Returns its fixes, the
    damaged MCUs, the index into the fixes of the trusted run at each MCU (-1: damage), the
    MCUs marked only as a precaution and those of them in runs that may sit a place or two off
    (:func:`acir_core.sca.unsure.unsure_runs`) (rows × cols each). ``hint``: per decoded MCU, where
    another SCA of the same decode put it (:func:`acir_core.sca.crosscheck.crosscheck`)."""
    _, comps = scan_geometry(result, sr)
    rows, cols = sr.mcu_rows, sr.mcu_cols
    n = rows * cols
    mcus = [mcu_major(coefs[ci], rows, cols, v, h) for ci, h, v in comps]
    qts = [result.qtables[ci] for ci, _, _ in comps]
    edges, outer, run_edges = _edges_of(result, si, mcus, qts)
    units = [float(q[0]) / 8.0 for q in qts]
    grain = np.maximum(np.asarray(units), 1.0)  # the finest level step a thumbnail can judge
    # an MCU that spans less than a thumbnail pixel either way is detail to the thumbnail, so its
    # mean standing out says little, except next to where a run was cut (garbage is there)
    reach = n
    bounds: set[int] = set()  # where restart intervals begin and the scan ends
    if thumbnail is not None:
        cell = scan_cell(result.frame, sr.components)
        seen = min(cell[0] * thumbnail.shape[0] / result.frame.height, cell[1] * thumbnail.shape[1] / result.frame.width)
        if seen < 1.0:
            reach = opts.mask.outlier_reach
            bounds = set(sr.segment_first.tolist()) | {n}
    thumb = thumb_means(thumbnail, result, sr, comps) if thumbnail is not None else None
    canvas = Canvas(outer)
    whole = sr.sound_segments()
    steps = top_steps(run_edges[0], canvas.outer[0], cols)  # what splitting reads, before and after the search
    extremes = tuple(e.extremes() for e in edges) if thumb is None or opts.dc.range_thumb else None
    placements, ref = place_runs(sr, edges, run_edges, units, thumb, canvas, opts, whole, steps, extremes)
    sound = set(sr.segment_first[whole].tolist())
    mcu_means = tuple(e.mean for e in edges)
    solved, bias = solve_dc(placements, run_edges, canvas.outer, mcu_means, units, thumb, cols, n, opts.dc, extremes)
    if opts.shifts.recheck and recheck(placements, solved, (run_edges, canvas.outer), units, cols, n):
        solved, bias = solve_dc(placements, run_edges, canvas.outer, mcu_means, units, thumb, cols, n, opts.dc, extremes)
    held_sound, chains = frozenset(sound), opts.shifts.rechain
    if opts.shifts.resplit and realign(placements, (run_edges, canvas.outer), cols, n, opts.runs, held_sound, chains):
        solved, bias = solve_dc(placements, run_edges, canvas.outer, mcu_means, units, thumb, cols, n, opts.dc, extremes)
    if opts.shifts.rewrap and rewrap(placements, (run_edges, canvas.outer), cols, held(placements, sound)):
        if opts.shifts.resplit:  # runs that joined the moved ones where they were now fit them moved
            realign(placements, (run_edges, canvas.outer), cols, n, opts.runs, held_sound, chains)
        solved, bias = solve_dc(placements, run_edges, canvas.outer, mcu_means, units, thumb, cols, n, opts.dc, extremes)
    if opts.shifts.crosscheck and hint is not None and \
            crosscheck(placements, hint, (run_edges, canvas.outer), cols, held(placements, sound),
                       opts.runs):
        if opts.shifts.resplit:
            realign(placements, (run_edges, canvas.outer), cols, n, opts.runs, held_sound, chains)
        solved, bias = solve_dc(placements, run_edges, canvas.outer, mcu_means, units, thumb, cols, n, opts.dc, extremes)
    stacked = np.stack(mcu_means, axis=1)  # per MCU and component: what restep and join_steps read
    means = stacked if thumb is not None else None
    if thumb is not None and opts.runs.restep and restep(placements, steps, cols, opts.runs, means, thumb, sound,
                                                         units=units, confirm=confirmer(run_edges[0], canvas.outer[0],
                                                                                        units, cols, opts.runs)):
        solved, bias = solve_dc(placements, run_edges, canvas.outer, mcu_means, units, thumb, cols, n, opts.dc, extremes)
    if opts.runs.joinstep and join_steps(placements, solved, (run_edges, canvas.outer), units, cols, n, opts.runs,
                                         sound, stacked):
        solved, bias = solve_dc(placements, run_edges, canvas.outer, mcu_means, units, thumb, cols, n, opts.dc, extremes)
    loose = np.zeros(n, bool)  # decoded MCUs where a silent break was taken back: precautions
    if opts.runs.rejoin_levels >= 0:
        placements, solved, loose = rejoin(placements, solved, sr, units, opts.runs.rejoin_levels,
                                           (opts.runs.lead_mcus, opts.runs.settle_mcus))
    mk = opts.mask
    late = unsettled(sr, n, opts.runs)
    # a lost start's first run has an estimated DC; a scan without luma first has no plateau to read
    clipped = exact_levels([pl.run.trusted for pl in placements if pl.anchored], mcus[0], float(qts[0][0])) \
        if opts.dc.plateau and result.frame.color != "rgb" and comps[0][0] == 0 and not sr.head else set()
    owner = np.full(n, -1, np.int64)  # index into this scan's fixes of the trusted run at each position
    placed = np.zeros(n, bool)
    trusted_pos = np.zeros(n, bool)
    doubted = np.zeros(n, bool)  # trusted enough to fit and judge by, but not shown as sure
    unsure_fixes: list[int] = []  # the fixes of runs that may lie a place or two off
    fixes: list[SegmentFix] = []
    moves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per run: decoded MCUs, their places, DCs
    sure = np.array([pl.cost <= max(mk.confidence_factor * ref, ref + mk.confidence_margin) for pl in placements],
                    bool)
    sure |= vouched(placements, solved, run_edges[0], canvas.outer[0], units, cols, n, sure)
    unsure = unsure_runs(placements, (run_edges, canvas.outer), cols, held(placements, sound)) \
        if mk.unsure and len(result.scans) == 1 \
        else np.zeros(len(placements), bool)
    if thumb is None:  # a thumbnail's DC fit knows better
        ranged = runs_into_range(mcu_means, [_in_span(pl) for pl in placements], list(solved), units, mk)
    for i, (pl, dcs, confident, aside) in enumerate(zip(placements, solved, sure.tolist(), unsure.tolist())):
        run, sft, cost, f, cnt = pl.run, pl.shift, pl.cost, pl.first, pl.count
        near_outlier = np.zeros(0, np.int64)
        m = _in_span(pl)
        t = m + sft
        if means is not None and m.size:
            # what the thumbnail says of the result: a run whose level still disagrees is not
            # trusted, and neither is any MCU that stands out from it (silent damage inside a run)
            dev = means[m] - np.asarray(dcs)[None, :] * np.asarray(units)[None, :] - thumb[t] - bias[None, :]
            if f in sound:  # no garbage in it (the level is still checked: a flipped DC bit)
                eligible = np.zeros(m.size, bool)
            elif reach >= n:
                eligible = np.ones(m.size, bool)
            else:  # near a cut, not near a restart marker (garbage is where decoding went wrong)
                eligible = (((m - run.first) < reach) & (run.first not in bounds)) | \
                    (((run.end - 1 - m) < reach) & (run.end not in bounds)) | loose[m]
            level, outlier, near = outliers_of_run(dev, float(mk.outlier_sigma), float(mk.outlier_levels),
                                                   int(mk.garble_before), int(mk.garble_after), eligible)
            # the scan's first run is decoded from a zero predictor where the scan begins: its
            # level is right by construction, and one off the thumbnail's shows the camera's
            # tone, not damage (an interval's first run may be one a lost marker misplaced)
            if not (pl.anchored and f == 0) and np.any(np.abs(level) > mk.level_tolerance * grain) and \
                    m.size >= opts.runs.min_split:
                confident = False
            near_outlier = t[near]
            keep = ~outlier
            m, t = m[keep], t[keep]
        if m.size and thumb is None:
            dcs = ranged[i]
        if clipped and m.size and not pl.anchored:
            dcs = (pin_plateau(mcus[0], m, dcs[0], float(qts[0][0]), clipped), *dcs[1:])
        moves.append((m, t, dcs))
        placed[t] = True
        if confident:
            trusted_pos[t] = True
            owner[t] = len(fixes)
            doubted[t[late[m] | loose[m] | (m < run.settled) | (m >= run.tail)]] = True
            doubted[near_outlier] = True
            if aside:
                unsure_fixes.append(len(fixes))
        fixes.append(SegmentFix(scan=si, first_mcu=run.first, end_mcu=run.end, shift=int(sft),
                                dc=tuple(int(d) for d in dcs), cost=float(cost), confident=bool(confident)))
    # written straight into the coefficient grids (``mcus`` holds the decode): MCU t's block
    # (a, b) of a component sits at grid[t // cols, a, t % cols, b]
    grids = [_mcu_view(coefs[ci], rows, cols, v, h) for ci, h, v in comps]
    if moves:  # every run's blocks to their places at once (a later run's win where two land)
        src = np.concatenate([mv[0] for mv in moves])
        dst = np.concatenate([mv[1] for mv in moves])
        sizes = [mv[0].size for mv in moves]
        for k in range(len(comps)):
            blk = mcus[k][src]
            dc = np.repeat(np.array([mv[2][k] for mv in moves], np.int64), sizes).astype(np.int16)
            blk[..., 0] -= dc[:, None, None]
            grids[k][dst // cols, :, dst % cols, :] = blk
        del blk
    if mk.clear and moves and doubted.any():  # precautions whose borders show them right are lifted
        run_at, dec_at = position_maps([(mv[0], mv[1]) for mv in moves], n)
        dc_at = np.asarray([mv[2] for mv in moves], np.float64).reshape(len(moves), -1)[np.maximum(run_at, 0)]
        doubted &= ~cleared(doubted & trusted_pos, trusted_pos, dec_at, dc_at, run_at, run_edges, canvas.outer,
                            units, cols)
    # the unsure runs' MCUs are precautions, added once the others are cleared as without them;
    # those no other rule doubts are kept as decoded where the mask is inpainted
    in_unsure = np.isin(owner, unsure_fixes) if unsure_fixes else np.zeros(n, bool)
    aside_pos = in_unsure & ~doubted
    doubted |= in_unsure
    if mk.overshoot >= 0 and moves:  # garbage no picture gives, decoded without a failure
        trusted_pos &= ~overshoots(grids, qts, trusted_pos, cols, mk.overshoot)
    # damaged positions: a neutral block whose DC follows the thumbnail (or mid-grey)
    damaged = ~trusted_pos
    unplaced = np.flatnonzero(~placed)
    for k, q in enumerate(qts):
        grids[k][unplaced // cols, :, unplaced % cols, :] = 0
        if thumb is not None:
            dc = np.rint((thumb[unplaced, k] + bias[k] - 128.0) * 8.0 / float(q[0])).astype(np.int16)
            grids[k][unplaced // cols, :, unplaced % cols, :, 0] = dc[:, None, None]
    owner[damaged] = -1
    doubted &= ~damaged
    return fixes, damaged.reshape(rows, cols), owner.reshape(rows, cols), doubted.reshape(rows, cols), \
        (aside_pos & ~damaged).reshape(rows, cols)


def aware_sca(result: DecodeResult, thumbnail: np.ndarray | None = None, *,
              options: AwareOptions | None = None, reference: SCAResult | None = None) -> SCAResult:
    """Undo DC drift and block shifts using the decoder's records and mark the damage; nothing
    is filled (damaged MCUs are neutral blocks, their DC following the thumbnail when there is
    one). ``thumbnail``: H'×W'×3 uint8 (embedded or synthetic) or None; it helps place runs and
    judge them. ``reference``: an SCA of the same decode without the thumbnail, whose places
    stretches of runs may take (:func:`acir_core.sca.crosscheck.crosscheck`)."""
    opts = options or AwareOptions()
    t0 = time.perf_counter()
    frame = result.frame
    coefs = [c.copy() for c in result.coefficients]
    fixes: list[SegmentFix] = []
    marked = []  # per scan, the MCUs of its grid the mask covers (made pixels once, at the end)
    first_grid = doubt = unsure = None
    owners = []
    for si, sr in enumerate(result.scans):
        hint = None if reference is None else reference_positions(reference.segments, sr.mcu_rows * sr.mcu_cols, si)
        f, grid, owner, doubted, aside = compensate_scan(si, result, sr, coefs, thumbnail, opts, hint)
        owners.append((len(fixes), owner))
        fixes += f
        marked.append(grid | doubted)
        if first_grid is None:
            first_grid, doubt, unsure = grid, doubted, aside
    use_thumb = thumbnail is not None and len(result.scans) == 1
    planes = SamplePlanes.empty(tuple(coefs)) if use_thumb else None  # the refinement renders rows again
    rgb = result.rerender(tuple(coefs), planes)
    if use_thumb and opts.refine is not None:
        # compare like with like: our result downsampled exactly as the thumbnail was made
        ctx = RefineContext(result=result, scan=result.scans[0], coefs=coefs, owner=owners[0][1], fixes=fixes,
                            thumbnail=thumbnail, rgb=rgb, samples=planes)
        refined = thumbnail_refine(ctx, opts.refine, opts.mask)
        if refined is not None:
            fixes, rgb = refined.fixes, refined.rgb
            first_grid = first_grid | refined.damaged
            doubt = (doubt | refined.doubted) & ~first_grid
            unsure = unsure & ~refined.doubted
    plain = None  # the first scan's marks as they would be without the unsure runs
    if first_grid is not None:
        if unsure is not None and (unsure & doubt).any():  # (none but in a single scan)
            plain = first_grid | _with_holes(first_grid, doubt & ~unsure, fixes, opts.mask.hole_mcus)
        doubt = _with_holes(first_grid, doubt, fixes, opts.mask.hole_mcus)
        first_grid = first_grid | doubt
        marked[0] = first_grid  # the first scan's damage with every precaution added since
    # MCUs to pixels and the growth distribute over the union: once per scan, not per source
    mask = np.zeros((frame.height, frame.width), bool)
    for sr, grid in zip(result.scans, marked):
        mask |= pixel_mask(result, sr, grid, dilate=opts.mask.dilate)
    if len(result.scans) != 1:
        doubt = None  # one cell grid judges the fill: only a single scan's precautions are sure
    unsure_px = None if plain is None else mask & ~pixel_mask(result, result.scans[0], plain, dilate=opts.mask.dilate)
    total = time.perf_counter() - t0
    return SCAResult(rgb=rgb, mask=mask, mcu_mask=first_grid, segments=tuple(fixes), coefficients=tuple(coefs),
                     method="aware", timings={"total": total}, doubtful=doubt, unsure=unsure_px)


def overshoots(grids: list[np.ndarray], qts: list[np.ndarray], trusted: np.ndarray, cols: int,
               reach: int) -> np.ndarray:
    """The ``trusted`` positions (per MCU of the scan) holding a block of some component whose
    samples pass 0..255 (:func:`acir_core.sca.overshoot.overshooting`) or within ``reach`` places
    of one: garbage that decoded in step runs on for a few MCUs around the one that shows it.
    ``grids``: per component the coefficients as placed (MCU rows, v, MCU cols, h, 64)."""
    wild = np.zeros(trusted.size, bool)
    if not trusted.any():
        return wild
    for grid, qt in zip(grids, qts):
        wild |= grid_overshooting(grid, qt).reshape(-1)[: trusted.size]
    wild &= trusted
    return spread(wild, reach, reach) & trusted if wild.any() else wild


def _with_holes(damage: np.ndarray, doubt: np.ndarray, fixes: list[SegmentFix], hole_mcus: int) -> np.ndarray:
    """``doubt`` (rows × cols) with the holes of up to ``hole_mcus`` unmarked MCUs between marked
    ones of a fix added (:func:`acir_core.sca.marks.mask_holes`)."""
    holes = mask_holes((damage | doubt).reshape(-1), fixes, 0, hole_mcus).reshape(damage.shape)
    return doubt | holes if holes.any() else doubt
