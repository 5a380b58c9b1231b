"""Exact DC offsets of runs from the thumbnail: an iteratively reweighted least-squares fit.

A run whose DC is off by δ quantiser steps shows every one of its pixels off by δ·q/8 levels, so
the thumbnail minus our result downsampled with the same filter (:mod:`acir_core.sca.thumbmodel`)
is, pixel by pixel, Σ_j w_pj·δ_j over the runs j in that pixel's footprint. Footprints span
several MCU rows, so all runs are solved at once; that pins each offset to a fraction of a level,
which rounding turns exact. A global bias and gain absorb a camera thumbnail's different tone;
pixels reaching damage or clipped values are left out, and robust weights
(:mod:`acir_core.sca.thumbirls`) ignore the rest the model does not explain (silent damage).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from acir_core.sca.envelope import inverse_diagonal
from acir_core.sca.fill import window_reduce
from acir_core.sca.thumbirls import ascending, irls_system, irls_weights, symmetric
from acir_core.sca.thumbmodel import Downsample, cell_weights, footprints, jfif_planes, weight_support


@dataclass(frozen=True)
class Chunks:
    """The fit's variables: each trusted run cut into pieces of consecutive MCUs. ``var``: per
    MCU (rows × cols) its chunk (-1: damaged); ``run``: each chunk's run; ``fixed``: chunks pinned
    at 0 (the start of a restart interval, right by construction; every chunk of a run in a sound
    restart segment, :meth:`acir_core.jpeg.decoder.ScanResult.sound_segments`)."""

    var: np.ndarray
    run: np.ndarray
    fixed: np.ndarray

    @classmethod
    def of(cls, owner: np.ndarray, anchored: np.ndarray, size: int, pinned: np.ndarray | None = None) -> "Chunks":
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
        if pinned is not None:
            fixed |= np.isin(runs, np.asarray(pinned))
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
        of the chunk's fitted offset."""
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
                  stop_sigma: float | None = None, max_chunks: int = 4000,
                  pinned: np.ndarray | None = None) -> ThumbnailDC | None:
    """Fit the remaining DC offset of every chunk of every trusted run, per component.

    ``owner``: per MCU (rows × cols) the run index (≥ 0) of trusted content, -1 for damage;
    ``anchored``: runs starting a restart interval (their first chunk is pinned at 0); ``pinned``:
    runs pinned at 0 all through (sound restart segments); ``cell``:
    MCU size in pixels (height, width). Neighbouring chunks of one run are tied by an L1 (fused)
    penalty of ``fuse`` per level, so a run stays one offset unless the thumbnail shows a step
    (silent damage that changed the DC predictors mid-run). The thumbnail's tone against ours is a
    bias and a gain with prior spreads ``tone_prior`` (levels, ratio): the anchored runs measure
    them, but only where at least ``min_anchor_pixels`` used thumbnail pixels lie mostly on them;
    otherwise nothing in the fit tells a tone shift from an offset shared by every chunk, and a
    bias would take up such an offset at the cost of one prior instead of one per chunk (every
    run after a distrusted first one would stay a step off), so the tone is held at
    ``unanchored_tone_prior``.
    The robust (Cauchy) weights are annealed: their scale starts at ``anneal`` levels and falls to
    3σ, so that structured residuals (runs of opposite offsets one MCU row apart, which the
    thumbnail's low-pass nearly cancels) are explained by offsets before they can be taken for
    outliers and discounted. ``down``: ``rgb`` already reduced to the thumbnail's size by
    :class:`Downsample`, when the caller keeps one. Returns None when nothing can be fitted, or
    as soon as a component's robust residual spread reaches ``stop_sigma`` levels (a thumbnail
    that is not our downsample: the caller ignores such a fit, so the other components are not
    fitted). More than ``max_chunks`` chunks (restart markers every few MCUs: each interval is a
    run) are not fitted either: the normal matrix is dense, and such runs are anchored already.
    """
    h, w = rgb.shape[:2]
    th, tw = thumbnail.shape[:2]
    rows, cols = owner.shape
    if not (owner >= 0).any() or th < 2 or tw < 2:
        return None
    chunks = Chunks.of(owner, anchored, chunk, pinned)
    n_var = chunks.run.size
    if n_var > max_chunks:
        return None
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
    rlo, rhi = weight_support(ry)
    clo, chi = weight_support(rx)
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
    idx, val = footprints(ry, rx, rlo, rhi, clo, chi, chunks.var, use, np.zeros((th, tw)), n_var, width)
    tone_at = np.argmax(idx == n_var + 1, axis=1)  # the gain column's slot in each row
    rows_at = np.arange(idx.shape[0])
    # the rows in ascending order once: only the gain column's values change per component, and
    # as the highest variable it sorts last in every row
    idx_s, val_s = ascending(idx, val)
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
            mat, rhs, first, low, ok, solved = irls_system(idx_s, val_s, wts, resid, n_var, sigma, x, left, right,
                                                            float(fuse), pin, 1.0 / tone[0] ** 2, 1.0 / tone[1] ** 2)
            x = solved if ok else np.linalg.solve(symmetric(mat), rhs)
            err, sigma, wts = irls_weights(idx, val, x, resid, anneal[it] if it < len(anneal) else 0.0)
        var_x = inverse_diagonal(low, first) if ok else np.diag(np.linalg.inv(symmetric(mat)))
        offset[:, k] = x[:n_var]
        stderr[:, k] = np.sqrt(np.maximum(var_x[:n_var], 0.0))
        bias[k], gain[k] = x[-2], x[-1]
        residual[k][use] = err
        sigmas[k] = sigma
        if stop_sigma is not None and sigma >= stop_sigma:
            return None
    return ThumbnailDC(chunks, offset, stderr, int(use.sum()), bias, gain, residual, use, sigmas, ry, rx)
