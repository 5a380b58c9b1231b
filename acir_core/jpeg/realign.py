"""Where the blocks of a progressive AC band belong, judged at the block borders.

Garbled bits that an AC first scan reads as valid codes move every later block of the band by a
few places, and a scan often holds several such errors with no failure to mark them. Within a
block, the band's steps at the border mostly cancel the steps of the DC and the lower bands (an
edge across the border is drawn by every band together), so the two correlate clearly negatively
where the band is in place. A Viterbi path of shifts, one per block, changing rarely, says where
each stretch belongs, once the borders show they can witness it (docs/decoder.md, progressive
files).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.entropy import _ZZ
from acir_core.jpeg.fdct import DCT
from acir_core.jpeg.progressive import band_bits

REALIGN_REACH = 64  # blocks a stretch of the band may sit away from where it was decoded
REALIGN_FLOOR = 16.0  # squared steps (levels) added to each side of a correlation: faint borders say less
REALIGN_WITNESS = 0.03  # how much better the band must fit its blocks than a block or two aside, on average
REALIGN_PENALTY = 16.0  # cost of a change of shift (a block's cost is at most 1) at a typical witness
REALIGN_TYPICAL = 0.25  # a witness below this makes a change cost as much more, and a move earn FIT
REALIGN_FIT = 0.65  # share of a weak witness a stretch moved must gain per block that judges
REALIGN_EXCURSION = 256  # blocks (or a block row, if more) a detour from a shift back to it must last
REALIGN_MARGIN = 8  # blocks each side of a change of shift that lose the band (read from garbled bits)


def _edge_basis(qt: np.ndarray) -> np.ndarray:
    """(64, 32): a block's dequantised coefficients (natural order) to its border pixels: the
    left and right columns, then the top and bottom rows, 8 pixels each (the IDCT, linear)."""
    basis = np.einsum("vy,ux->yxvu", DCT, DCT).reshape(8, 8, 64)  # pixel (y, x) per coefficient v*8+u
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
    changes of shift made. ``dc_ok`` itself is narrowed where a stretch says its DCs are off."""
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
    edges = _edge_basis(qt).astype(np.float32)
    blocks = plane[:h, :w].reshape(-1, 64).astype(np.float32)
    own = blocks * in_band
    blocks[:, in_band] = 0.0
    if dc_plane is not None:
        blocks[:, 0] = dc_plane[:h, :w].ravel()
    rest = _steps((blocks @ edges).reshape(-1, 4, 8), w, ok, True)
    del blocks
    read = np.ascontiguousarray(sr.decoded[: h * w], np.bool_)  # blocks that hold the band
    steps = rest + _steps((own @ edges).reshape(-1, 4, 8), w, read, False)
    del own
    witness = _witness(*steps)
    if witness < REALIGN_WITNESS:
        return 0
    placed_end = bool(sr.decoded[-1])
    penalty = REALIGN_PENALTY * max(1.0, REALIGN_TYPICAL / witness)
    path = _viterbi(*steps, REALIGN_REACH, penalty, placed_end)
    _no_short_excursions(path, max(REALIGN_EXCURSION, w))
    if witness < REALIGN_TYPICAL:
        _keep_clear_gains(path, *steps, REALIGN_FIT * witness)
    if placed_end:
        _trust_the_end(path, ok, dc_ok, w)
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
    band = np.uint64(band_bits(ss, se))
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
    return int(changes.size) + int(path[0] != 0)


def _no_short_excursions(path: np.ndarray, least: int) -> None:
    """A detour (one stretch or several) shorter than ``least`` blocks that leaves a shift and
    comes back to it would need errors close together that undo each other; a periodic texture
    (windows, tiles, fences) fits a place a period away about as well. Such detours keep the
    shift around them."""
    changes = np.flatnonzero(np.diff(path)) + 1
    i = 0
    while i < changes.size:
        a = changes[i]
        before = path[a - 1]
        j = i + 1
        while j < changes.size and changes[j] - a < least and path[changes[j]] != before:
            j += 1
        if j < changes.size and changes[j] - a < least:
            path[a: changes[j]] = before
            i = j + 1
        else:
            i += 1


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
    if j < end:  # no DC there judges: the blocks up to the end keep the place the bits give
        path[j:end] = 0
        return
    blocks = np.arange(start, end)
    dc_ok[blocks // w, blocks % w] = False
    path[start:end] = 0


def _steps(edges: np.ndarray, w: int, ok: np.ndarray, row_ends: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block (scan order) of border pixels ``edges`` (n, 4, 8): the steps to its right and
    lower neighbours (n, 2, 8), their squared sums (n, 2) and whether each is there (n, 2), both
    blocks ``ok``. ``row_ends``: a row's last block has no right neighbour (the rest of a block
    in the picture); else whatever follows it in the scan is (the band read at a block)."""
    n = edges.shape[0]
    step = np.zeros((n, 2, 8), np.float32)
    has = np.zeros((n, 2), bool)
    step[:-1, 0] = edges[:-1, 1] - edges[1:, 0]
    step[:-w, 1] = edges[:-w, 3] - edges[w:, 2]
    has[:-1, 0] = ok[:-1] & ok[1:]
    has[:-w, 1] = ok[:-w] & ok[w:]
    if row_ends:
        has[:, 0] &= np.arange(n) % w + 1 < w
    step[~has] = 0
    return step, (step.astype(np.float64) ** 2).sum(-1), has


@njit(cache=True)
def _border_cost(rest, rest_sq, rest_has, band, band_sq, band_has, p, q):
    """How well block ``p``'s band, taken from block ``q``, cancels the steps the rest of ``p``
    makes at its right and bottom borders (the neighbours' bands taken from beside ``q``): the
    correlation of the two steps, -1 where they cancel, 0 where the band says nothing."""
    if q < 0 or q >= band.shape[0]:
        return 0.0
    cross, ll, bb = 0.0, 0.0, 0.0
    for j in range(2):
        if rest_has[p, j] and band_has[q, j]:
            for x in range(8):
                cross += rest[p, j, x] * band[q, j, x]
            ll += rest_sq[p, j]
            bb += band_sq[q, j]
    if ll <= 0.0 or bb <= 0.0:
        return 0.0
    return cross / np.sqrt((ll + REALIGN_FLOOR) * (bb + REALIGN_FLOOR))


@njit(cache=True)
def _keep_clear_gains(path, rest, rest_sq, rest_has, band, band_sq, band_has, least):
    """Stretches whose move gains less than ``least`` per block that judges (a band moved
    back where it belongs gains about the witness) stay where decoded: over tens of thousands
    of blocks a shift that fits a little better by chance wins the path."""
    n = path.size
    a = 0
    while a < n:
        b = a
        while b < n and path[b] == path[a]:
            b += 1
        s = path[a]
        if s != 0:
            gain, m = 0.0, 0
            for p in range(a, b):
                c0 = _border_cost(rest, rest_sq, rest_has, band, band_sq, band_has, p, p)
                cs = _border_cost(rest, rest_sq, rest_has, band, band_sq, band_has, p, p - s)
                if c0 != 0.0 or cs != 0.0:
                    gain += c0 - cs
                    m += 1
            if m == 0 or gain < least * m:
                path[a:b] = 0
        a = b


@njit(cache=True)
def _witness(rest, rest_sq, rest_has, band, band_sq, band_has):
    """How much better, on average over the blocks whose borders judge, the band cancels the
    rest of its blocks at the one shift within ±2 where it does so best (where decoded, or where
    most of it belongs) than a block or two aside from there. A photo whose bands do not behave
    so (a pattern that repeats every two blocks) gives no witness."""
    n = rest.shape[0]
    sums = np.zeros(9)
    m = 0
    costs = np.empty(9)
    for p in range(n):
        for i in range(9):
            costs[i] = _border_cost(rest, rest_sq, rest_has, band, band_sq, band_has, p, p - (i - 4))
        if costs[4] == 0.0 and costs[5] == 0.0:
            continue
        m += 1
        sums += costs
    if m == 0:
        return 0.0
    at = 2 + np.argmin(sums[2:7])
    best = np.inf
    for i in range(at - 2, at + 3):
        if i != at:
            best = min(best, sums[i])
    return (best - sums[at]) / m


@njit(cache=True)
def _viterbi(rest, rest_sq, rest_has, band, band_sq, band_has, reach, penalty, placed_end):
    """Per block, the shift (block p holds the band decoded at p - shift) of the path over
    -reach..reach that starts in place (and ends there: ``placed_end``, the last blocks placed by
    where the scan's bits end), pays ``penalty`` per change and makes the border costs least."""
    n = rest.shape[0]
    k_n = 2 * reach + 1
    cost = np.full(k_n, 1e300)
    cost[reach] = 0.0
    new = np.empty(k_n)
    stay = np.zeros((n, k_n), np.bool_)
    judges = (rest_sq[:, 0] > 0) | (rest_sq[:, 1] > 0)  # the rest steps at a border in place
    best_at = np.zeros(n, np.int64)  # the best state before block i, where a change comes from
    for p in range(n):
        bk = np.argmin(cost)
        bv = cost[bk]
        best_at[p] = bk
        if not judges[p]:  # no border of this block says anything: every path stays as it is
            stay[p, :] = True
            continue
        for k in range(k_n):
            c = _border_cost(rest, rest_sq, rest_has, band, band_sq, band_has, p, p - (k - reach))
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
