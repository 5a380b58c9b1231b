"""Which restart interval each RST marker of a damaged scan starts.

RST markers carry only their number mod 8. In a damaged scan some markers are garbled away and
garbage can form spurious ones, so the marker after a gap is ambiguous by multiples of 8
intervals. Taking, marker by marker, the first interval whose number fits is not safe: one
spurious marker ahead of its place pushes every later marker 8 intervals down, until the last
ones fall past the end and are dropped (a train photo at 1e-5 with a marker every MCU row: rows
16-63 showed rows 8-55, and the mask could not tell). All markers are therefore assigned at once:
the assignment with the fewest markers taken for spurious and intervals taken for lost, with the
data between markers weighed against the typical interval's length to break ties.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_INF = 1e300
LONG_MARGIN = 4.0  # a long gap is taken only from a marker's slots this close to its best
LONG_SLOTS = 8  # ... and from at most this many of them


@njit(cache=True)
def _length_cost(nbytes: float, intervals: int, typical: float, weight: float) -> float:
    return weight * abs(np.log((nbytes + 1.0) / (intervals * typical + 1.0)))


@njit(cache=True)
def _slot_base(num: int, centre: int, band: int) -> int:
    """The lowest interval >= 1 and >= ``centre`` - ``band`` whose number a marker ``num`` fits."""
    lo = max(1, centre - band)
    want = (num + 1) % 8
    return lo + (want - lo % 8) % 8


@njit(cache=True)
def _assign(nums, pos, n_int, total, typical, miss, skip, weight, max_skip, max_gap, band, sound, sound_cost):
    # marker m can start only interval j = base[m] + 8 k (its number fits), k < slots, a band of
    # 2 * band intervals around m + 1 (where it sits with as many markers lost as spurious):
    # memory and time linear in the markers
    m_n = nums.size
    slots = (2 * band) // 8 + 1
    # markers a sound stretch borders are real: taking one for spurious costs sound_cost more
    held = np.zeros(m_n + 1, np.float64)
    for m in range(m_n):
        held[m + 1] = held[m] + (sound_cost if sound[m] or sound[m + 1] else 0.0)
    base = np.empty(m_n, np.int64)
    for m in range(m_n):
        base[m] = _slot_base(nums[m], m + 1, band)
    cost = np.full((m_n, slots), _INF)
    row_best = np.full(m_n, _INF)
    good = np.zeros((m_n, LONG_SLOTS), np.int64)  # per marker, its slots a long gap may start from
    good_n = np.zeros(m_n, np.int64)
    prev_m = np.full((m_n, slots), -2, np.int64)  # -1: the scan's start
    prev_k = np.zeros((m_n, slots), np.int64)
    for m in range(m_n):
        for k in range(slots):
            j = base[m] + 8 * k
            if j >= n_int:
                break
            # from the scan's start (interval 0 at byte 0), skipping every marker before
            best = skip * m + held[m] + miss * (j - 1) + _length_cost(float(pos[m]), j, typical, weight)
            if m == 0 and j > 1 and sound[0]:
                best += sound_cost
            bm, bk = -1, 0
            for mp in range(max(0, m - max_skip - 1), m):
                gap_bytes = float(pos[m] - pos[mp])
                # a lost or zeroed stretch of the scan lies between two markers that survived it:
                # from the marker just before, any number of intervals may be lost, from the
                # slots of that marker a path may well go through (long ones from the others
                # cannot win: every 8 intervals lost or markers taken for spurious cost more)
                lo_j = max(1, j - max_gap)
                # the slots of marker mp whose interval lies in [lo_j, j)
                k0 = max(0, (lo_j - base[mp] + 7) // 8)
                k1 = min(slots - 1, (j - 1 - base[mp]) // 8) if j - 1 >= base[mp] else -1
                n_short = k1 - k0 + 1 if k1 >= k0 else 0
                n_long = good_n[mp] if mp == m - 1 else 0
                for q in range(n_short + n_long):
                    if q < n_short:
                        kp = k0 + q
                    else:
                        kp = good[mp, q - n_short]
                        if kp >= k0:
                            continue  # within max_gap: done above
                    c0 = cost[mp, kp]
                    if c0 >= _INF:
                        continue
                    jp = base[mp] + 8 * kp
                    if jp >= j:
                        continue
                    c = (c0 + skip * (m - mp - 1) + held[m] - held[mp + 1] + miss * (j - jp - 1)
                         + _length_cost(gap_bytes, j - jp, typical, weight))
                    if mp == m - 1 and j - jp > 1 and sound[m]:
                        c += sound_cost
                    if c < best:
                        best, bm, bk = c, mp, kp
            cost[m, k] = best
            prev_m[m, k] = bm
            prev_k[m, k] = bk
            row_best[m] = min(row_best[m], best)
        n_good = 0
        for k in range(slots):
            if cost[m, k] <= row_best[m] + LONG_MARGIN and n_good < good.shape[1]:
                good[m, n_good] = k
                n_good += 1
        good_n[m] = n_good
    # the end: markers after the last one taken are spurious, intervals after it lost
    best = skip * m_n + held[m_n] + miss * (n_int - 1) + _length_cost(float(total), n_int, typical, weight)
    bm, bk = -1, 0
    for m in range(m_n):
        for k in range(slots):
            j = base[m] + 8 * k
            if j >= n_int:
                break
            if cost[m, k] >= _INF:
                continue
            c = (cost[m, k] + skip * (m_n - 1 - m) + held[m_n] - held[m + 1] + miss * (n_int - 1 - j)
                 + _length_cost(float(total - pos[m]), n_int - j, typical, weight))
            if m == m_n - 1 and j < n_int - 1 and sound[m_n]:
                c += sound_cost
            if c < best:
                best, bm, bk = c, m, k
    out = np.full(m_n, -1, np.int64)
    while bm >= 0:
        out[bm] = base[bm] + 8 * bk
        bm, bk = prev_m[bm, bk], prev_k[bm, bk]
    return out


def assign_restarts(nums: np.ndarray, pos: np.ndarray, n_intervals: int, total_bytes: int, *,
                    miss: float = 1.0, skip: float = 1.0, length_weight: float = 0.5, max_skip: int = 8,
                    max_gap: int = 32, band: int = 512, sound: np.ndarray | None = None,
                    sound_cost: float = 50.0) -> np.ndarray:
    """Per marker (numbers 0-7 ``nums`` at byte positions ``pos`` in the scan's destuffed data,
    ``total_bytes`` long, ``n_intervals`` intervals in all): the interval it starts (1 ..
    ``n_intervals`` - 1) or -1 for a spurious marker. Costs: ``miss`` per interval whose marker
    is lost, ``skip`` per marker taken for spurious, ``length_weight`` × |log(bytes / expected)|
    per stretch between markers (expected: the median length of the stretches between markers
    in sequence, times the intervals it spans). An intact scan costs nothing: every marker in
    sequence. Marker m is assigned within ``band`` intervals of m + 1 (more markers lost than
    spurious, in all, than that is beyond it), so memory and time grow linearly with the markers.
    Between two markers in a row any number of intervals may be lost (a lost or zeroed stretch of
    the scan), elsewhere up to ``max_gap``. ``sound`` (one per stretch: before marker 0, between
    markers m - 1 and m, after the last), when given, says which stretches decoded as exactly one
    interval ending in fill bits: intervals taken for lost there, or a marker next to one taken
    for spurious, cost ``sound_cost`` more, since a stretch the damage left alone can hide
    neither."""
    nums = np.asarray(nums, np.int64)
    pos = np.asarray(pos, np.int64)
    if nums.size == 0 or n_intervals < 2:
        return np.full(nums.size, -1, np.int64)
    expected = np.arange(1, nums.size + 1) % 8
    if nums.size == n_intervals - 1 and np.array_equal((nums + 1) % 8, expected):
        return np.arange(1, nums.size + 1, dtype=np.int64)  # intact: every marker in its place
    edges = np.r_[0, pos]
    steps = np.diff(edges)
    in_seq = np.r_[nums[0] == 0, (nums[1:] - nums[:-1]) % 8 == 1]
    typical = float(np.median(steps[in_seq])) if in_seq.any() else total_bytes / n_intervals
    sound = np.zeros(nums.size + 1, np.bool_) if sound is None else np.asarray(sound, np.bool_)
    return _assign(nums, pos, int(n_intervals), int(total_bytes), max(typical, 1.0), float(miss), float(skip),
                   float(length_weight), int(max_skip), int(max_gap), int(band), sound, float(sound_cost))
