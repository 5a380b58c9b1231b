"""Where the blocks of a progressive AC band belong, judged at the block borders.

Garbled bits that an AC first scan reads as valid codes move every later block of the band by a
few places, and a scan often holds several such errors with no failure to mark them. Within a
block, the band's steps at the border mostly cancel the steps that the DC and the lower bands
make there: an edge that crosses the border is drawn by every band together. So the product of
the two steps, summed over a border, is clearly negative where the band is in place and near zero
where the band came from another block. A Viterbi path of shifts, one per block, that changes
rarely and makes the borders agree best says where each stretch belongs (docs/decoder.md,
progressive files).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.entropy import _ZZ

REALIGN_REACH = 64  # blocks a stretch of the band may sit away from where it was decoded
REALIGN_PENALTY = 16.0  # cost of a change of shift, in blocks whose borders agree fully
REALIGN_FLOOR = 16.0  # squared steps (levels) added to each side of a correlation: faint borders say less
REALIGN_EXCURSION = 256  # blocks a stretch must hold to leave the shift around it and come back to it
REALIGN_MARGIN = 8  # blocks each side of a change of shift that lose the band (read from garbled bits)


def _edge_basis(qt: np.ndarray) -> np.ndarray:
    """(64, 32): a block's dequantised coefficients (natural order) to its border pixels: the
    left and right columns, then the top and bottom rows, 8 pixels each (the IDCT, linear)."""
    c = np.full(8, 1.0)
    c[0] = np.sqrt(0.5)
    x = np.arange(8)
    cos = np.cos((2 * x[:, None] + 1) * x[None, :] * np.pi / 16) * c[None, :]  # [pixel, frequency]
    basis = 0.25 * np.einsum("xu,yv->yxvu", cos, cos).reshape(8, 8, 64)  # pixel (y, x) per coefficient v*8+u
    edges = np.concatenate([basis[:, 0], basis[:, 7], basis[0, :], basis[7, :]])  # (32, 64)
    return (edges * qt.reshape(1, 64).astype(np.float64)).T


def realign_band(sr, ss: int, se: int, coef_flat: np.ndarray, known: np.ndarray, base: int,
                 grid: tuple[int, int], qt: np.ndarray, dc_ok: np.ndarray,
                 dc_plane: np.ndarray | None = None) -> int:
    """Move the stretches of a single-component AC band ss..se that sit out of place to where
    their borders agree with the rest of each block (``dc_plane``: the DCs to take, default the
    decoded ones; ``dc_ok``: blocks whose DC is in place, the only ones that judge). The blocks
    around each change of shift, and those no stretch reaches, lose the band. ``sr`` is the
    scan's :class:`~acir_core.jpeg.decoder.ScanResult` (its ``decoded`` follows). Returns the
    changes of shift made."""
    rows, bw = grid
    h, w = sr.mcu_rows, sr.mcu_cols
    ok = np.ascontiguousarray(dc_ok[:h, :w].ravel(), np.bool_)
    if not ok.any():
        return 0
    plane = coef_flat[base: base + rows * bw].reshape(rows, bw, 64)
    kplane = known[base: base + rows * bw].reshape(rows, bw)
    zz = np.asarray(_ZZ[ss: se + 1])
    in_band = np.zeros(64, bool)
    in_band[zz] = True
    blocks = plane[:h, :w].reshape(-1, 64).astype(np.float32)
    low = np.where(in_band, 0.0, blocks).astype(np.float32)
    if dc_plane is not None:
        low[:, 0] = dc_plane[:h, :w].ravel()
    edges = _edge_basis(qt).astype(np.float32)
    low_e = (low @ edges).reshape(-1, 4, 8)
    band_e = (np.where(in_band, blocks, 0.0).astype(np.float32) @ edges).reshape(-1, 4, 8)
    placed_end = bool(sr.decoded[-1])
    path = _viterbi(low_e, band_e, w, ok, REALIGN_REACH, REALIGN_PENALTY, placed_end)
    if placed_end:
        _trust_the_end(path, ok, dc_ok, w)
    _no_short_excursions(path)
    if not path.any():
        return 0
    n = h * w
    src = np.arange(n) - path
    has = (src >= 0) & (src < n)
    lose = ~has
    changes = np.flatnonzero(np.diff(path)) + 1
    for c in changes:
        lo = max(0, c - REALIGN_MARGIN)
        hi = min(n, c + REALIGN_MARGIN + abs(int(path[c] - path[c - 1])))
        lose[lo:hi] = True
    take = np.where(has, src, 0)
    flat = plane[:h, :w].reshape(-1, 64)  # a copy when the grid is wider than the scan
    kflat = kplane[:h, :w].ravel()
    band = np.uint64(sum(1 << k for k in range(ss, se + 1)))
    vals = flat[take][:, zz]
    bits = kflat[take] & band
    dec = sr.decoded[take]
    vals[lose] = 0
    bits[lose] = 0
    flat[:, zz] = vals
    kflat = (kflat & ~band) | bits
    plane[:h, :w] = flat.reshape(h, w, 64)
    kplane[:h, :w] = kflat.reshape(h, w)
    sr.decoded[:] = dec & ~lose
    return int(changes.size)


def _no_short_excursions(path: np.ndarray) -> None:
    """A short stretch whose shift differs from the same shift on both sides would need two
    errors close together that undo each other; a periodic texture (windows, tiles, fences)
    fits a place a period away about as well. Such stretches keep the shift around them."""
    while True:
        changes = np.flatnonzero(np.diff(path)) + 1
        bounds = np.concatenate([[0], changes, [path.size]])
        for i in range(1, bounds.size - 2):
            a, b = bounds[i], bounds[i + 1]
            if b - a < REALIGN_EXCURSION and path[a - 1] == path[b]:
                path[a:b] = path[b]
                break
        else:
            return


def _trust_the_end(path: np.ndarray, ok: np.ndarray, dc_ok: np.ndarray, w: int) -> None:
    """The scan's last blocks are placed by where its bits end. Where no DC in place judges the
    blocks before them, they keep that place. A stretch out of place right up to them would need
    a second error right there to come back: it is the DCs there that sit off, not the band; the
    stretch stays where it is and its DCs judge no later band (``dc_ok`` cleared)."""
    changes = np.flatnonzero(np.diff(path)) + 1
    if not changes.size or path.size - changes[-1] > 2 * REALIGN_MARGIN or path[changes[-1] - 1] == 0:
        return
    start, end = (changes[-2] if changes.size > 1 else 0), changes[-1]
    j = end
    while j > start and not ok[j - 1]:
        j -= 1
    if j == start:
        return
    if j < end:
        path[j:end] = 0
        return
    blocks = np.arange(start, end)
    dc_ok[blocks // w, blocks % w] = False
    path[start:end] = 0


@njit(cache=True)
def _border_cost(low_e, band_e, w, ok, p, q, n):
    """How well block ``p``'s band, taken from block ``q``, cancels the steps the rest of ``p``
    makes at its right and bottom borders (the neighbours' bands taken from beside ``q``): the
    correlation of the two steps, -1 where they cancel, 0 where the band says nothing."""
    cross, ll, bb = 0.0, 0.0, 0.0
    if q < 0 or q >= n:
        return 0.0
    if p % w + 1 < w and q + 1 < n and ok[p] and ok[p + 1]:
        for y in range(8):
            a = low_e[p, 1, y] - low_e[p + 1, 0, y]
            b = band_e[q, 1, y] - band_e[q + 1, 0, y]
            cross += a * b
            ll += a * a
            bb += b * b
    if p + w < n and q + w < n and ok[p] and ok[p + w]:
        for x in range(8):
            a = low_e[p, 3, x] - low_e[p + w, 2, x]
            b = band_e[q, 3, x] - band_e[q + w, 2, x]
            cross += a * b
            ll += a * a
            bb += b * b
    if ll <= 0.0 or bb <= 0.0:
        return 0.0
    return cross / np.sqrt((ll + REALIGN_FLOOR) * (bb + REALIGN_FLOOR))


@njit(cache=True)
def _viterbi(low_e, band_e, w, ok, reach, penalty, placed_end):
    """Per block, the shift (block p holds the band decoded at p - shift) of the path over
    -reach..reach that starts in place (and ends there: ``placed_end``, the last blocks placed by
    where the scan's bits end), pays ``penalty`` per change and makes the border costs least."""
    n = low_e.shape[0]
    k_n = 2 * reach + 1
    cost = np.full(k_n, 1e300)
    cost[reach] = 0.0
    new = np.empty(k_n)
    stay = np.zeros((n, k_n), np.bool_)
    judges = np.zeros(n, np.bool_)
    for p in range(n):
        if ok[p]:
            for y in range(8):
                if (p % w + 1 < w and ok[p + 1] and low_e[p, 1, y] != low_e[p + 1, 0, y]) or \
                        (p + w < n and ok[p + w] and low_e[p, 3, y] != low_e[p + w, 2, y]):
                    judges[p] = True
                    break
    best_at = np.zeros(n, np.int64)  # the best state before block i, where a change comes from
    for p in range(n):
        bk = np.argmin(cost)
        bv = cost[bk]
        best_at[p] = bk
        if not judges[p]:  # no border of this block says anything: every path stays as it is
            stay[p, :] = True
            continue
        for k in range(k_n):
            c = _border_cost(low_e, band_e, w, ok, p, p - (k - reach), n)
            if cost[k] <= bv + penalty:
                new[k] = cost[k] + c
                stay[p, k] = True
            else:
                new[k] = bv + penalty + c
        cost[:] = new
    path = np.zeros(n, np.int64)
    k = reach if placed_end else np.argmin(cost)
    for p in range(n - 1, -1, -1):
        path[p] = k - reach
        if not stay[p, k]:
            k = best_at[p]
    return path
