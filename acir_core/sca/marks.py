"""Mask rules: which MCUs are damage, and which are marked only as a precaution.

SCA marks what it could not verify: MCUs it could not place or placed with little confidence,
what the thumbnail contradicts, and, as precautions, content that is mostly right but sits where
unflagged garbage is likely (beside what the thumbnail rejects, in gaps between marked MCUs, on
short stretches the thumbnail blends with their neighbours, next to damage the thumbnail cannot
see). Positions are flat MCU indices (row-major, which is decode order within a run).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.decoder import DecodeResult, ScanResult
from acir_core.jpeg.tables import scan_cell
from acir_core.sca.fill import dilate as dilate_mask
from acir_core.sca.median import median
from acir_core.sca.result import SegmentFix


def pixel_mask(result: DecodeResult, sr: ScanResult, mcu_damage: np.ndarray, dilate: int) -> np.ndarray:
    """MCU damage (rows × cols of the scan) as pixels (H×W bool), grown by ``dilate`` px."""
    frame = result.frame
    ph, pw = scan_cell(frame, sr.components)
    m = np.repeat(np.repeat(mcu_damage, ph, axis=0), pw, axis=1)[: frame.height, : frame.width]
    if m.shape != (frame.height, frame.width):
        m = np.pad(m, ((0, frame.height - m.shape[0]), (0, frame.width - m.shape[1])))
    return dilate_mask(m, dilate) if dilate and m.any() else m


@njit(cache=True)
def median_and_spread(dev: np.ndarray):
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
def outliers_of_run(dev: np.ndarray, sigmas: float, levels: float, before: int, after: int, eligible: np.ndarray):
    """What the thumbnail says of a placed run, from ``dev`` (N, K: each MCU's mean minus the
    thumbnail's): its level per component (median), the MCUs that stand out from it (``sigmas``
    spreads + 1 and ``levels`` away in some component: silent damage inside the run), and the
    MCUs up to ``before`` decoded before and ``after`` after each of those, not standing out
    themselves: garbage that decoded silently starts up to four MCUs before what the thumbnail
    sees and ends an MCU or two after it, MCUs with wrong AC but a right mean (its DC error
    grows as it goes). Only ``eligible`` MCUs can stand out: near where the run was cut."""
    level, spread = median_and_spread(dev)
    n, k_n = dev.shape
    outlier = np.zeros(n, np.bool_)
    for i in range(n):
        if not eligible[i]:
            continue
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


def spread(flag: np.ndarray, before: int, after: int, link: np.ndarray | None = None) -> np.ndarray:
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


def with_decode_neighbours(flag: np.ndarray, var: np.ndarray, run: np.ndarray, before: int,
                           after: int) -> np.ndarray:
    """``flag`` (flat MCU positions) grown by the ``before`` MCUs decoded just before and the
    ``after`` just after each flagged one in the same run (one shift, so decode order is position
    order): garbage that decoded without a failure spans a CBC block of 128 bits, which often
    straddles two MCUs while the thumbnail sees only the one it changed most, and a garbled
    stretch begins with MCUs whose AC is wrong but whose mean is still right (the DC error of
    silent garbage grows as it goes)."""
    if not flag.any():
        return flag.copy()
    run_at = np.where(var >= 0, run[np.maximum(var, 0)], -1)
    return spread(flag, before, after, (run_at[1:] == run_at[:-1]) & (run_at[1:] >= 0))


def mask_holes(mask: np.ndarray, fixes: list[SegmentFix], scan: int, width: int) -> np.ndarray:
    """Unmasked stretches of at most ``width`` MCUs with marked MCUs on both sides in decode
    order, all within one confident fix (flat positions). Garbage that decoded silently is seldom
    sound for one MCU in its middle: such an MCU was merely not flagged."""
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


def above_or_below(flag: np.ndarray) -> np.ndarray:
    """MCUs (rows × cols) with a flagged MCU directly above or below."""
    out = np.zeros_like(flag)
    out[1:] |= flag[:-1]
    out[:-1] |= flag[1:]
    return out


def unseen_edges(damaged: np.ndarray, blind: np.ndarray, reach: int) -> np.ndarray:
    """MCUs (flat positions, decode order within a run) of ``blind`` within ``reach`` positions
    of ``damaged``, through blind ones only: where garbage begins and ends is known only to an MCU
    or two, so next to damage an MCU the thumbnail cannot check is not shown as sure."""
    out = np.zeros_like(damaged)
    edge = damaged.copy()
    for _ in range(reach):
        step = np.zeros_like(edge)
        step[1:] |= edge[:-1]
        step[:-1] |= edge[1:]
        edge = step & blind & ~damaged & ~out
        out |= edge
    return out


def short_fixes(fixes: list[SegmentFix], firsts: set, n: int, thumb_px_per_mcu: float,
                short_span: float) -> np.ndarray:
    """MCUs (flat positions) placed by confident fixes that span fewer than ``short_span``
    thumbnail pixels in decode order, unless a restart anchors their DC. The thumbnail's filter
    blends such a stretch with what lies above and below it, so a fit that looks tight can still
    be a step off; the longer the stretch, the more pixels average the fit's noise down."""
    out = np.zeros(n, bool)
    for fx in fixes:
        if fx.confident and fx.first_mcu not in firsts and \
                (fx.end_mcu - fx.first_mcu) * thumb_px_per_mcu < short_span:
            out[max(fx.first_mcu + fx.shift, 0):max(fx.end_mcu + fx.shift, 0)] = True
    return out