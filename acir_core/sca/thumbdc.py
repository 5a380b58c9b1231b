"""Exact DC offsets of runs from the thumbnail, by a linear model of how thumbnails are made.

A run whose DC is off by δ quantiser steps shows every one of its pixels off by δ·q/8 levels. A
thumbnail pixel is a fixed weighted sum of the photo's pixels (the resampling filter), so the
difference between the thumbnail and our result downsampled *with the same filter* is, pixel by
pixel, Σ_j w_pj·δ_j: the share of run j in that pixel's filter footprint times run j's error.
Runs at 1e-5 span one or two MCU rows while a 160-px thumbnail's bicubic footprint is five MCUs
tall, so almost no thumbnail pixel sees a single run; solving for all runs at once uses every
pixel anyway and pins each run's offset to a fraction of a level, which rounding turns exact.

The weights are Pillow's (antialiased bicubic, a = -0.5, support scaled by the reduction), summed
over each MCU's pixels, so the design matrix is built per MCU rather than per pixel. A global
offset and gain absorb a camera thumbnail's different tone; pixels whose footprint reaches
damaged MCUs or clipped values are left out, and an iteratively reweighted fit ignores the rest
of what the model does not explain (silent damage inside a run).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from numba import njit

from acir_core.sca.envelope import cholesky_envelope, envelope_start, inverse_diagonal, solve_envelope
from acir_core.sca.fill import window_reduce
from acir_core.sca.median import median
from acir_core.sca.resize import reduce_columns, reduce_rows


def _bicubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@lru_cache(maxsize=16)
def resample_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of Pillow's antialiased bicubic resize along one axis: each output
    sample's filter, stretched by the reduction factor and normalised to sum 1, as Pillow's
    ``precompute_coeffs`` does (its support window included)."""
    scale = n_in / n_out
    fscale = max(scale, 1.0)
    support = 2.0 * fscale
    out = np.zeros((n_out, n_in))
    for o in range(n_out):
        center = (o + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        x = np.arange(lo, hi)
        w = _bicubic((x - center + 0.5) / fscale)
        total = w.sum()
        out[o, lo:hi] = w / total if total != 0 else w
    out.flags.writeable = False  # cached: shared by every caller
    return out


@lru_cache(maxsize=16)
def cell_weights(n_in: int, n_out: int, cell: int, n_cells: int) -> np.ndarray:
    """(n_out, n_cells): the resampling weights summed over each run of ``cell`` input samples
    (an MCU's rows or columns); cells past the image edge get the weight of the samples they have.
    Cached (every refinement round of every photo of one size asks again), so read-only."""
    w = resample_weights(n_in, n_out)
    pad = n_cells * cell - n_in
    if pad > 0:
        w = np.pad(w, ((0, 0), (0, pad)))
    out = w[:, : n_cells * cell].reshape(n_out, n_cells, cell).sum(axis=2)
    out.flags.writeable = False
    return out


def jfif_planes(rgb: np.ndarray, color: str) -> list[np.ndarray]:
    """RGB -> the frame's colour space (JFIF YCbCr, plain RGB, or grey), float."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    if color == "rgb":
        return [r, g, b]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    if color == "grey":
        return [y]
    return [y, -0.168736 * r - 0.331264 * g + 0.5 * b + 128, 0.5 * r - 0.418688 * g - 0.081312 * b + 128]


class Downsample:
    """Our image reduced to the thumbnail's size exactly as Pillow's bicubic resize makes it, kept
    up to date band by band. The reduction runs in two passes, along rows and then along columns
    (:mod:`acir_core.sca.resize`); the row pass works on each row alone, so after a change in a
    few rows only those rows' pass is redone and the cheap column pass run again."""

    def __init__(self, rgb: np.ndarray, width: int, height: int):
        self.size = (width, height)
        self._rows = reduce_rows(rgb, width)

    def update(self, rgb: np.ndarray, rows: np.ndarray) -> None:
        """``rgb`` now differs from the last image only in the pixel rows flagged in ``rows``."""
        flags = np.concatenate([[False], rows, [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(flags))
        for a, b in zip(edges[::2], edges[1::2]):
            reduce_rows(rgb, self.size[0], self._rows, int(a), int(b))

    @property
    def image(self) -> np.ndarray:
        """(height, width, 3) uint8: what ``Image.resize(size, BICUBIC)`` gives for the image."""
        return reduce_columns(self._rows, self.size[1])


@njit(cache=True)
def _footprints(ry: np.ndarray, rx: np.ndarray, rlo, rhi, clo, chi, var: np.ndarray, use: np.ndarray,
                tone: np.ndarray, n_var: int, width: int):
    """Sparse rows of the design matrix: for each used thumbnail pixel, the variables (chunks)
    under its filter footprint with their summed weights, then the bias and gain columns."""
    th, tw = use.shape
    n_use = 0
    for a in range(th):
        for b in range(tw):
            if use[a, b]:
                n_use += 1
    idx = np.full((n_use, width), -1, np.int64)
    val = np.zeros((n_use, width))
    p = 0
    for a in range(th):
        for b in range(tw):
            if not use[a, b]:
                continue
            k = 0
            for r in range(rlo[a], rhi[a]):
                wr = ry[a, r]
                for c in range(clo[b], chi[b]):
                    v = var[r, c]
                    if v < 0:
                        continue
                    wv = wr * rx[b, c]
                    q = 0
                    while q < k and idx[p, q] != v:
                        q += 1
                    if q == k:
                        idx[p, k] = v
                        k += 1
                    val[p, q] += wv
            idx[p, k] = n_var
            val[p, k] = 1.0
            idx[p, k + 1] = n_var + 1
            val[p, k + 1] = tone[a, b]
            p += 1
    return idx, val


@njit(cache=True)
def _ascending(idx: np.ndarray, val: np.ndarray):
    """The sparse rows with each row's entries in ascending variable order (padding last), so
    that the lower triangle of AᵀWA is each entry times those before it."""
    idx_s = idx.copy()
    val_s = val.copy()
    for p in range(idx.shape[0]):
        k = 0
        while k < idx.shape[1] and idx[p, k] >= 0:
            k += 1
        for a in range(1, k):  # insertion sort: a row has a few dozen entries at most
            i, v = idx_s[p, a], val_s[p, a]
            b = a - 1
            while b >= 0 and idx_s[p, b] > i:
                idx_s[p, b + 1] = idx_s[p, b]
                val_s[p, b + 1] = val_s[p, b]
                b -= 1
            idx_s[p, b + 1] = i
            val_s[p, b + 1] = v
    return idx_s, val_s


@njit(cache=True)
def _normal(idx: np.ndarray, val: np.ndarray, w: np.ndarray, r: np.ndarray, n: int):
    """Weighted normal equations AᵀWA (lower triangle only: the solver reads no more), AᵀWr
    of the sparse rows, given in ascending order (:func:`_ascending`)."""
    mat = np.zeros((n, n))
    rhs = np.zeros(n)
    for p in range(idx.shape[0]):
        wp = w[p]
        for q in range(idx.shape[1]):
            i = idx[p, q]
            if i < 0:
                break
            wi = wp * val[p, q]
            rhs[i] += wi * r[p]
            for s in range(q + 1):
                mat[i, idx[p, s]] += wi * val[p, s]
    return mat, rhs


@njit(cache=True)
def _robust_sigma(err: np.ndarray) -> float:
    """1.4826 · median |err|: the residual's spread, robust to the outliers IRLS discounts."""
    return 1.4826 * median(np.abs(err), 0.25)  # np.median's value, without compiling np.median


@njit(cache=True)
def _predict(idx: np.ndarray, val: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.zeros(idx.shape[0])
    for p in range(idx.shape[0]):
        acc = 0.0
        for q in range(idx.shape[1]):
            i = idx[p, q]
            if i < 0:
                break
            acc += val[p, q] * x[i]
        out[p] = acc
    return out


@njit(cache=True)
def _irls_system(idx_s, val_s, wts, resid, n_var, sigma, x, left, right, fuse, pin, bias_prior, gain_prior):
    """One IRLS step of :func:`solve_offsets` up to its solve, in one compiled call (~60 steps a
    photo at 1e-4, each a dozen array operations in Python before): the normal equations in
    units of the residual spread ``sigma``, the fused penalty between neighbouring chunks
    linearised at ``x``, the priors, and the envelope Cholesky factor. Every entry gets the
    same additions in the same order as the array form did, so the fit is the same to the bit.
    Returns (lower triangle, rhs, envelope, factor, ok, solution when ok)."""
    n = n_var + 2
    mat, rhs = _normal(idx_s, val_s, wts, resid, n)
    s2 = sigma * sigma
    for i in range(n):
        rhs[i] /= s2
        for j in range(i + 1):
            mat[i, j] /= s2
    lam = np.empty(left.size)
    for q in range(left.size):
        d = x[left[q]] - x[right[q]]
        lam[q] = fuse / np.sqrt(d * d + 0.01)
    for q in range(left.size):
        mat[left[q], left[q]] += lam[q]
    for q in range(left.size):
        mat[right[q], right[q]] += lam[q]
    for q in range(left.size):
        mat[right[q], left[q]] += -lam[q]  # lower triangle: right > left
    for i in range(n_var):
        mat[i, i] += pin[i]
    mat[n - 2, n - 2] += bias_prior
    mat[n - 1, n - 1] += gain_prior
    first = envelope_start(mat)
    low, ok = cholesky_envelope(mat, first)
    solved = solve_envelope(low, first, rhs) if ok else rhs
    return mat, rhs, first, low, ok, solved


@njit(cache=True)
def _irls_weights(idx, val, x, resid, anneal):
    """The rest of an IRLS step: residual, its robust spread (+0.05 levels) and the Cauchy
    weights at a scale of 3σ but not below ``anneal``."""
    err = resid - _predict(idx, val, x)
    sigma = _robust_sigma(err) + 0.05
    scale = max(3.0 * sigma, anneal)
    wts = np.empty(err.size)
    for p in range(err.size):
        e = err[p] / scale
        wts[p] = 1.0 / (1.0 + e * e)
    return err, sigma, wts


def _symmetric(lower: np.ndarray) -> np.ndarray:
    return np.tril(lower) + np.tril(lower, -1).T


def _support(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nz = weights != 0
    lo = np.argmax(nz, axis=1)
    hi = weights.shape[1] - np.argmax(nz[:, ::-1], axis=1)
    return lo.astype(np.int64), np.maximum(hi, lo).astype(np.int64)


@dataclass(frozen=True)
class Chunks:
    """The fit's variables: each trusted run cut into pieces of consecutive MCUs. ``var``: per
    MCU (rows × cols) its chunk (-1: damaged); ``run``: each chunk's run; ``fixed``: chunks pinned
    at 0 (the start of a restart interval, right by construction)."""

    var: np.ndarray
    run: np.ndarray
    fixed: np.ndarray

    @classmethod
    def of(cls, owner: np.ndarray, anchored: np.ndarray, size: int) -> "Chunks":
        flat = owner.reshape(-1)
        var = np.full(flat.size, -1, np.int64)
        pos = np.flatnonzero(flat >= 0)
        if pos.size == 0:
            return cls(var.reshape(owner.shape), np.zeros(0, np.int64), np.zeros(0, bool))
        order = pos[np.argsort(flat[pos], kind="stable")]  # by run, then position
        run_of = flat[order]
        starts = np.flatnonzero(np.r_[True, run_of[1:] != run_of[:-1]])
        sizes = np.diff(np.r_[starts, order.size])
        pieces = np.maximum(1, np.rint(sizes / size).astype(np.int64))
        # np.array_split's pieces: the first (size % pieces) one sample longer
        base, extra = sizes // pieces, sizes % pieces
        group = np.repeat(np.arange(starts.size), sizes)
        r = np.arange(order.size) - starts[group]
        long_end = extra[group] * (base[group] + 1)
        piece = np.where(r < long_end, r // (base[group] + 1),
                         extra[group] + (r - long_end) // np.maximum(base[group], 1))
        first_id = np.r_[0, np.cumsum(pieces)[:-1]]
        var[order] = first_id[group] + piece
        runs = np.repeat(run_of[starts], pieces)
        fixed = np.zeros(runs.size, bool)
        fixed[first_id] = np.isin(run_of[starts], np.asarray(anchored))
        return cls(var.reshape(owner.shape), runs.astype(np.int64), fixed)


@dataclass(frozen=True)
class ThumbnailDC:
    """Per chunk (see :class:`Chunks`) and component: the offset the thumbnail says the chunk still
    has (levels; add it to the chunk) and its standard error (levels); how many thumbnail pixels
    the fit used; the thumbnail's tone against ours (bias, gain) per component."""

    chunks: Chunks
    offset: np.ndarray
    stderr: np.ndarray
    pixels: int
    bias: np.ndarray
    gain: np.ndarray
    residual: np.ndarray  # (K, th, tw) what the fit leaves unexplained, 0 where unused
    use: np.ndarray  # (th, tw) pixels the fit used
    sigma: np.ndarray  # (K,) robust spread of the residual
    ry: np.ndarray  # (th, rows) MCU-row weights
    rx: np.ndarray  # (tw, cols) MCU-column weights

    @cached_property
    def _used_weight(self) -> np.ndarray:
        """Per MCU: the squared footprint weight on pixels the fit used."""
        return (self.ry ** 2).T @ self.use.astype(np.float64) @ (self.rx ** 2)

    def coverage(self) -> np.ndarray:
        """Per MCU (rows × cols): the share of its footprint's squared weight on pixels the fit
        used (0: the thumbnail says nothing of it, all its pixels clipped or next to damage)."""
        full = (self.ry ** 2).sum(axis=0)[:, None] * (self.rx ** 2).sum(axis=0)[None, :]
        return self._used_weight / np.maximum(full, 1e-300)

    def standouts(self, min_z: float = 6.0, min_levels: float = 1.0, coverage: float = 0.5,
                  passes: int = 4, edge_coverage: float = 0.002, edge_levels: float = 5.0,
                  edge_z: float = 8.0) -> np.ndarray:
        """MCUs (rows × cols bool) whose content the thumbnail contradicts (an MCU garbled without
        any decoding failure). Matching pursuit on what the fit leaves unexplained: per MCU the
        least-squares level offset under its footprint; the MCUs that are local maxima, ``min_z``
        standard errors and ``min_levels`` levels away from 0 in some component are flagged, their
        part is taken out of the residual (so their neighbours are judged on what is left), and
        again, ``passes`` times. MCUs whose footprint the fit used less than ``coverage`` of (next
        to damage, where garbled MCUs are most likely) are judged from the few pixels there are, from
        ``edge_coverage`` on, and need ``edge_z`` and ``edge_levels``. One level is enough where
        the footprint is seen: a silent break inside a chunk leaves its halves a step either side
        of the chunk's fitted offset (train photos at 1e-5, going from 2 levels to 1: 12 % fewer
        MCUs missed for 0.3 % more of the image marked)."""
        u = self.use.astype(np.float64)
        den = self._used_weight
        cover = self.coverage()
        ok = cover > coverage
        edge = (cover > edge_coverage) & ~ok
        resid = self.residual.copy()
        flag = np.zeros(den.shape, bool)
        safe = np.maximum(den, 1e-9)
        for _ in range(passes):
            ds = np.stack([self.ry.T @ resid[k] @ self.rx / safe for k in range(resid.shape[0])])
            zs = np.abs(ds) * np.sqrt(safe)[None] / self.sigma[:, None, None]
            cand = ~flag & ((ok & np.any((zs > min_z) & (np.abs(ds) > min_levels), axis=0))
                            | (edge & np.any((zs > edge_z) & (np.abs(ds) > edge_levels), axis=0)))
            if not cand.any():
                break
            score = np.where(cand, zs.max(axis=0), 0.0)
            peak = cand & (score >= window_reduce(score, 1, np.maximum))
            flag |= peak
            r, c = np.nonzero(peak)
            for k in range(resid.shape[0]):
                # remove each peak's fitted offset from the residual it explains
                resid[k] -= (self.ry[:, r] * ds[k, r, c][None, :]) @ self.rx[:, c].T * u
        return flag


def solve_offsets(rgb: np.ndarray, thumbnail: np.ndarray, owner: np.ndarray, anchored: np.ndarray,
                  cell: tuple[int, int], color: str, *, down: np.ndarray | None = None,
                  chunk: int = 24, damage_limit: float = 0.01,
                  fuse: float = 2.0, iterations: int = 6, anneal: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5),
                  tone_prior: tuple[float, float] = (1.0, 0.05),
                  unanchored_tone_prior: tuple[float, float] = (0.05, 0.002), min_anchor_pixels: int = 24,
                  stop_sigma: float | None = None) -> ThumbnailDC | None:
    """Fit the remaining DC offset of every chunk of every trusted run, per component.

    ``owner``: per MCU (rows × cols) the run index (≥ 0) of trusted content, -1 for damage;
    ``anchored``: runs starting a restart interval (their first chunk is pinned at 0); ``cell``:
    MCU size in pixels (height, width). Neighbouring chunks of one run are tied by an L1 (fused)
    penalty of ``fuse`` per level, so a run stays one offset unless the thumbnail shows a step
    (silent damage that changed the DC predictors mid-run). The thumbnail's tone against ours is a
    bias and a gain with prior spreads ``tone_prior`` (levels, ratio): the anchored runs measure
    them, but only where at least ``min_anchor_pixels`` used thumbnail pixels lie mostly on them;
    otherwise nothing in the fit tells a tone shift from an offset shared by every chunk, and a
    bias would take up such an offset at the cost of one prior instead of one per chunk (a train
    photo at 1e-5 whose first run the coarse check distrusted: every later run stayed a step
    off, 82 % of the image), so the tone is held at ``unanchored_tone_prior``.
    The robust (Cauchy) weights are annealed: their scale starts at ``anneal`` levels and falls to
    3σ, so that structured residuals (runs of opposite offsets one MCU row apart, which the
    thumbnail's low-pass nearly cancels) are explained by offsets before they can be taken for
    outliers and discounted. ``down``: ``rgb`` already reduced to the thumbnail's size by
    :class:`Downsample`, when the caller keeps one. Returns None when nothing can be fitted, or
    as soon as a component's robust residual spread reaches ``stop_sigma`` levels (a thumbnail
    that is not our downsample: the caller ignores such a fit, so the other components are not
    fitted).
    """
    h, w = rgb.shape[:2]
    th, tw = thumbnail.shape[:2]
    rows, cols = owner.shape
    if not (owner >= 0).any() or th < 2 or tw < 2:
        return None
    chunks = Chunks.of(owner, anchored, chunk)
    n_var = chunks.run.size
    ry = cell_weights(h, th, cell[0], rows)
    rx = cell_weights(w, tw, cell[1], cols)
    if down is None:
        down = Downsample(rgb, tw, th).image
    thumb = np.asarray(thumbnail, np.uint8)
    reach = np.abs(ry) @ (owner < 0).astype(np.float64) @ np.abs(rx).T  # damaged share of each footprint
    use = (reach < damage_limit) & np.all((down > 2) & (down < 253) & (thumb > 2) & (thumb < 253), axis=2)
    if use.sum() < 8:
        return None
    on_anchor = np.abs(ry) @ np.isin(chunks.var, np.flatnonzero(chunks.fixed)).astype(np.float64) @ np.abs(rx).T
    tone = tone_prior if int((use & (on_anchor > 0.5)).sum()) >= min_anchor_pixels else unanchored_tone_prior
    rlo, rhi = _support(ry)
    clo, chi = _support(rx)
    width = int((rhi - rlo).max() * (chi - clo).max()) + 2
    ours_planes = jfif_planes(down, color)
    ref_planes = jfif_planes(thumb, color)
    k_n = len(ours_planes)
    # consecutive chunks of one run, for the fused penalty
    same = np.flatnonzero(chunks.run[1:] == chunks.run[:-1])
    left, right = same, same + 1
    pin = np.where(chunks.fixed, 1e6, 1.0)  # prior: a chunk is right (levels⁻²), the boundary fit made most so
    offset = np.zeros((n_var, k_n))
    stderr = np.zeros((n_var, k_n))
    residual = np.zeros((k_n, th, tw))
    sigmas = np.zeros(k_n)
    bias, gain = np.zeros(k_n), np.zeros(k_n)
    idx, val = _footprints(ry, rx, rlo, rhi, clo, chi, chunks.var, use, np.zeros((th, tw)), n_var, width)
    tone_at = np.argmax(idx == n_var + 1, axis=1)  # the gain column's slot in each row
    rows_at = np.arange(idx.shape[0])
    # the rows in ascending order once: only the gain column's values change per component, and
    # as the highest variable it sorts last in every row
    idx_s, val_s = _ascending(idx, val)
    tone_at_s = np.argmax(idx_s == n_var + 1, axis=1)
    for k in range(k_n):
        gain_col = ((ours_planes[k] - 128.0) / 128.0)[use]
        val[rows_at, tone_at] = gain_col
        val_s[rows_at, tone_at_s] = gain_col
        resid = (ref_planes[k] - ours_planes[k])[use]
        wts = np.ones(resid.size)
        x = np.zeros(n_var + 2)
        sigma = 1.0
        for it in range(iterations):  # IRLS: Cauchy on the data, L1 between neighbouring chunks
            mat, rhs, first, low, ok, solved = _irls_system(idx_s, val_s, wts, resid, n_var, sigma, x, left, right,
                                                            float(fuse), pin, 1.0 / tone[0] ** 2, 1.0 / tone[1] ** 2)
            x = solved if ok else np.linalg.solve(_symmetric(mat), rhs)
            err, sigma, wts = _irls_weights(idx, val, x, resid, anneal[it] if it < len(anneal) else 0.0)
        var_x = inverse_diagonal(low, first) if ok else np.diag(np.linalg.inv(_symmetric(mat)))
        offset[:, k] = x[:n_var]
        stderr[:, k] = np.sqrt(np.maximum(var_x[:n_var], 0.0))
        bias[k], gain[k] = x[-2], x[-1]
        residual[k][use] = err
        sigmas[k] = sigma
        if stop_sigma is not None and sigma >= stop_sigma:
            return None
    return ThumbnailDC(chunks, offset, stderr, int(use.sum()), bias, gain, residual, use, sigmas, ry, rx)
