"""Where a run of a progressive AC band belongs: the runs an AC first scan decodes between two
failures have no anchor (only the run after the last failure is placed, by where the bits end).
The lowest AC coefficients of a block follow the DCs around it (a gradient across the block, its
curvature and twist), so a run whose band holds them is put where they agree with the DCs best,
when that place stands out and the DCs there are in place (docs/decoder.md, progressive files).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from acir_core.jpeg.entropy import _ZZ
from acir_core.jpeg.progressive import band_bits
from acir_core.jpeg.tables import Frame, Scan

PLACE_REACH = 96  # blocks a run between two failures is searched around where it was decoded
PLACE_LEAST = 16  # blocks a run needs to be placed
PLACE_SCORE = 4.0  # standard errors by which its best place must beat every other
PLACE_INSIDE = 0.9  # share of a run a place must put on blocks whose DC is in place


@dataclass(frozen=True, kw_only=True)
class DCHint:
    """The DC of every block as a first decode and the thumbnail put it right, for a second
    decode whose AC first scans place their runs against it (the DC scans themselves read on
    after a failure and leave later MCUs a few places off, on a wrong predictor). Per component
    (its block grid): ``dc`` in quantisation steps, ``in_place`` where that DC can be trusted;
    ``untrusted``: the frame's MCUs (rows × cols) whose DC was lost or could not be placed, which
    SCA of the second decode keeps as its mask rather than place the same DC a second time."""

    dc: tuple[np.ndarray, ...]
    in_place: tuple[np.ndarray, ...]
    untrusted: np.ndarray | None = None


def _dc_predictions(dc_plane: np.ndarray, qt: np.ndarray, mcu_rows: int, mcu_cols: int) -> np.ndarray:
    """Per block (scan order), the five lowest AC coefficients (zig-zag 1..5, quantised units)
    that the DCs (``dc_plane``, quantisation steps) of its 3×3 neighbourhood imply for a smooth
    picture (the prediction libjpeg's block smoothing makes)."""
    dc = np.pad(dc_plane[:mcu_rows, :mcu_cols].astype(np.float64), 1, mode="edge") * float(qt[0])
    c = dc[1:-1, 1:-1]
    up, down, left, right = dc[:-2, 1:-1], dc[2:, 1:-1], dc[1:-1, :-2], dc[1:-1, 2:]
    nw, ne, sw, se = dc[:-2, :-2], dc[:-2, 2:], dc[2:, :-2], dc[2:, 2:]
    pred = np.stack([36 * (left - right), 36 * (up - down), 9 * (up + down - 2 * c), 5 * (nw - ne - sw + se),
                     9 * (left + right - 2 * c)], -1) / 128.0
    return (pred / qt[np.asarray(_ZZ[1:6])].astype(np.float64)).reshape(-1, 5)


def _best_place(own: np.ndarray, ref: np.ndarray, blocks: np.ndarray, reach: int,
               usable: np.ndarray, center: int = 0) -> tuple[int, float]:
    """The shift (within ±``reach`` of ``center``) at which the coefficients ``own`` of blocks
    ``blocks`` agree best with ``ref`` (per block of the scan × coefficient, agreement = their
    product summed), counting only places ``usable``, and by how many standard errors it beats
    every other shift (a shift needs ``PLACE_INSIDE`` of the run on usable places)."""
    shift, score = _place_scores(np.ascontiguousarray(own, np.float64), np.ascontiguousarray(ref, np.float64),
                                 np.ascontiguousarray(blocks, np.int64) + center, reach,
                                 np.ascontiguousarray(usable, np.bool_), PLACE_INSIDE)
    return int(shift) + center, float(score)


@njit(cache=True)
def _place_scores(own: np.ndarray, ref: np.ndarray, blocks: np.ndarray, reach: int, usable: np.ndarray,
                  least: float) -> tuple[int, float]:
    """:func:`_best_place`'s shift and score: per shift the agreement of each block on a usable
    place; the best mean among the shifts with ``least`` of the run usable, and the smallest
    t-statistic of its gain over any other such shift."""
    nb, nk = own.shape
    ns = 2 * reach + 1
    n = ref.shape[0]
    g = np.zeros((nb, ns))
    inside = np.zeros((nb, ns), np.bool_)
    for b in range(nb):
        for si in range(ns):
            p = blocks[b] + si - reach
            if 0 <= p < n and usable[p]:
                inside[b, si] = True
                t = 0.0
                for c in range(nk):
                    t += own[b, c] * ref[p, c]
                g[b, si] = t
    ok = np.zeros(ns, np.bool_)
    best, k = -np.inf, -1
    for si in range(ns):
        cnt, tot = 0, 0.0
        for b in range(nb):
            if inside[b, si]:
                cnt += 1
                tot += g[b, si]
        ok[si] = cnt / nb >= least
        if ok[si]:
            mean = tot / max(cnt, 1)
            if mean > best:
                best, k = mean, si
    if k < 0:
        return 0, 0.0
    score = np.inf
    gain = np.empty(nb)
    for j in range(ns):
        if not ok[j] or j == k:
            continue
        m = 0
        for b in range(nb):
            if inside[b, j] and inside[b, k]:
                gain[m] = g[b, k] - g[b, j]
                m += 1
        if m == 0:
            continue
        mean = gain[:m].mean()
        var = 0.0
        for i in range(m):
            var += (gain[i] - mean) ** 2
        sd = np.sqrt(var / m)
        score = min(score, mean / sd * np.sqrt(m) if sd > 0 else 0.0)
    return k - reach, score if np.isfinite(score) else 0.0


def dc_agreement(coef_flat: np.ndarray, base: int, grid: tuple[int, int], mcu_rows: int, mcu_cols: int,
                 ss: int, se: int, qt: np.ndarray, dc_plane: np.ndarray,
                 dc_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per block of a single-component scan (its order): the band's lowest AC coefficients
    (zig-zag 1-5, scaled to unit spread), what the DCs ``dc_plane`` predict for them, and whether
    its DC is in place (``dc_ok``); None for a band without them. :func:`shift_gain` compares
    them: a sharper witness of where a band sits than its energy."""
    low = [k for k in range(1, 6) if ss <= k <= se]
    if not low:
        return None
    rows, bw = grid
    plane = coef_flat[base: base + rows * bw].reshape(rows, bw, 64)
    own = plane[:mcu_rows, :mcu_cols][..., np.asarray(_ZZ[1:6])[[k - 1 for k in low]]].reshape(-1, len(low))
    own = own / np.maximum(own.std(0), 1e-9)
    ref = _dc_predictions(dc_plane, qt, mcu_rows, mcu_cols)[:, [k - 1 for k in low]]
    return own, ref / np.maximum(ref.std(0), 1e-9), dc_ok[:mcu_rows, :mcu_cols].ravel()


def shift_gain(parts: tuple[np.ndarray, np.ndarray, np.ndarray], shift: int) -> np.ndarray:
    """Per block: how much better its band agrees with what the DCs ``shift`` blocks on predict
    than with what they predict at the block itself (0 where either DC is not in place);
    ``parts`` from :func:`dc_agreement`."""
    own, ref, ok = parts
    n = own.shape[0]
    moved = np.clip(np.arange(n) + shift, 0, n - 1)
    gain = (own * ref[moved]).sum(-1) - (own * ref).sum(-1)
    return np.where(ok & ok[moved], gain, 0.0)


def dc_in_place(scans, frame: Frame, ci: int) -> np.ndarray:
    """Per block of component ``ci`` (its block grid): whether its DC was read before any failure
    of the DC first scans that hold it (a DC scan reads on after a failure, and every later MCU
    may sit a few places off); none when a DC scan ended out of step, which an error decoded
    silently before the first failure can leave as well as reading on after it (tried: trusting
    the blocks before the failure there placed runs wrongly on two eval photos)."""
    rows, bw = frame.block_grid(ci)
    ok = np.ones((rows, bw), bool)
    comp = frame.components[ci]
    by, bx = np.mgrid[:rows, :bw]
    for sr in scans:
        if sr.band[0] != 0 or sr.band[2] != 0 or ci not in sr.components:
            continue
        if sr.silent_shift:
            return np.zeros((rows, bw), bool)
        if sr.resyncs:
            mcu = (by // comp.v) * sr.mcu_cols + bx // comp.h if len(sr.components) > 1 else by * sr.mcu_cols + bx
            ok &= mcu < min(e.mcu for e in sr.resyncs)
    return ok


def place_runs(sr, scan: Scan, frame: Frame, coef_flat: np.ndarray, known: np.ndarray, base: int,
               qt: np.ndarray, dc_ok: np.ndarray, dc_plane: np.ndarray | None = None) -> int:
    """The runs an AC first scan decoded between two failures (left where decoded) go where their
    lowest AC coefficients agree with what the DCs around each block predict, where that place
    clearly stands out and its DCs are in place (``dc_ok``, per block of the component); the
    others lose the band. ``sr`` is the scan's :class:`~acir_core.jpeg.decoder.ScanResult`,
    ``qt`` the component's quantisation table (natural order), ``dc_plane`` the DCs to place
    against (:class:`DCHint`; default: the ones decoded so far). Returns the runs placed."""
    ev = sr.resyncs
    if len(ev) < 2:
        return 0
    rows, bw = frame.block_grid(scan.components[0].index)
    cols = sr.mcu_cols
    n = sr.mcu_rows * cols
    plane = coef_flat[base: base + rows * bw].reshape(rows, bw, 64)
    kplane = known[base: base + rows * bw].reshape(rows, bw)
    zz = np.asarray(_ZZ[scan.ss: scan.se + 1])
    band = np.uint64(band_bits(scan.ss, scan.se))
    low = [k for k in range(1, 6) if scan.ss <= k <= scan.se]
    limit = ev[-1].mcu + min(ev[-1].shift, 0)  # the last run, placed by where its bits end
    runs = []
    for e, nxt in zip(ev[:-1], ev[1:]):
        a, b = e.mcu, min(nxt.mcu, limit)
        if b <= a:
            continue
        if low:
            blocks = a + np.flatnonzero(sr.decoded[a:b])
            runs.append((blocks, plane[blocks // cols, blocks % cols][:, zz].copy()))
        span = np.arange(a, b)
        plane[(span // cols)[:, None], (span % cols)[:, None], zz[None, :]] = 0
        kplane[span // cols, span % cols] &= ~band
        sr.decoded[a:b] = False
    if not runs:
        return 0
    ref = _dc_predictions(plane[..., 0] if dc_plane is None else dc_plane, qt, sr.mcu_rows, cols)[:, [k - 1 for k in low]]
    ref = ref / np.maximum(ref.std(0), 1e-9)
    usable = dc_ok[:sr.mcu_rows, :cols].ravel()
    placed = 0
    shifts: dict[int, int] = {}  # first block of each run placed -> its shift
    for blocks, vals in sorted(runs, key=lambda t: -t[0].size):
        if blocks.size < PLACE_LEAST:
            continue
        own = vals[:, [k - scan.ss for k in low]].astype(np.float64)
        own = own / np.maximum(own.std(0), 1e-9)
        shift, score = _best_place(own, ref, blocks, PLACE_REACH, usable)
        before = max((a for a in shifts if a < blocks[0]), default=None) if score < PLACE_SCORE else None
        if before is not None and shifts[before]:
            # errors add up: a run sits near the shift of the run placed before it (searched
            # together with its own place, so the best must beat every shift of both)
            near = shifts[before]
            lo, hi = min(-PLACE_REACH, near - PLACE_REACH), max(PLACE_REACH, near + PLACE_REACH)
            shift, score = _best_place(own, ref, blocks, (hi - lo + 1) // 2, usable, (lo + hi) // 2)
        if score < PLACE_SCORE:
            continue
        shifts[int(blocks[0])] = shift
        dst = blocks + shift
        free = (dst >= 0) & (dst < n)
        free[free] = (kplane[dst[free] // cols, dst[free] % cols] & band) == 0
        r, c = dst[free] // cols, dst[free] % cols
        plane[r[:, None], c[:, None], zz[None, :]] = vals[free]
        kplane[r, c] |= band
        sr.decoded[dst[free]] = True
        placed += 1
    return placed
