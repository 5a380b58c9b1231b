"""A camera thumbnail's colours fitted to the photo before SCA, on runs whose level is unknown.

Cameras make their thumbnails with their own tone curve and colour. SCA sets each run's DC so
that the run agrees with the thumbnail, so a thumbnail ten levels darker in the shadows than the
photo puts every run placed there ten levels too dark, and a run placed right looks wrong where
the thumbnail's colour is off. At BER 1e-5 the part of the photo known in level (the first run,
restart intervals decoded as written) is too small to fit colours on, but every run the guided
SCA placed shows the mapping up to a constant of its own: fitted with one free offset per run,
the runs give the mapping's shape and the part known in level gives its offset.
Algorithm notes: docs/sca.md ("camera thumbnails").
"""
from __future__ import annotations

import numpy as np
from numba import njit

from acir_core.jpeg.decoder import DecodeResult
from acir_core.sca.edges import grid_means, scan_geometry
from acir_core.sca.result import SCAResult
from acir_core.sca.thumbmodel import JFIF_OFFSETS, JFIF_YCC
from acir_core.thumbframe import ToneMap

MIN_RUN = 16  # placed MCUs a run needs to say something of the mapping's shape
MIN_ANCHORED = 64  # MCUs known in level needed to fit the mapping's offset
MIN_MCUS = 1000  # MCUs of such runs needed for a fit
FIRST_GARBLE = 8  # MCUs before the decoder's suspects at the first failure that may be garbage too
TONE_GAIN = 0.9  # summed residual after / before under which the mapping is applied
RIDGE = 1.0  # pull towards the identity, per 100 MCUs fitted
ROUNDS = 4  # rounds of Cauchy reweighting (garbage near where runs were cut)


def _features(thumb: np.ndarray, result: DecodeResult, comps) -> list[np.ndarray]:
    """Per scan component, the thumbnail's tone features (1, R, G, B, R², G², B², values in
    [0, 1]) resampled to its MCU grid (N×7): the mapping is linear in them, so resampling them is
    resampling what any mapping makes of the thumbnail."""
    x = thumb.astype(np.float64) / 255.0
    planes = [np.ones(x.shape[:2])] + [x[..., c] for c in range(3)] + [x[..., c] ** 2 for c in range(3)]
    sr = result.scans[0]
    done: dict[tuple[int, int], np.ndarray] = {}  # per MCU size in pixels: in an interleaved scan, one
    out = []
    for ci, h, v in comps:
        c = result.frame.components[ci]
        size = (8 * (result.frame.max_v // c.v) * v, 8 * (result.frame.max_h // c.h) * h)
        if size not in done:
            done[size] = np.stack([grid_means(p, result, sr, ci, h, v) for p in planes], axis=1)
        out.append(done[size])
    return out


def _runs(sca: SCAResult, result: DecodeResult, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per MCU position: its label (0 where the level is known: the first run, from the scan's
    start in place, and restart intervals decoded as written and left whole; k > 0 for the k-th
    run ``sca`` placed and trusted that is long enough to fit on; -1 else) and the decoded MCU
    there. A run is labelled only inside its restart interval, where it was placed."""
    sr = result.scans[0]
    labels = np.full(n, -1, np.int64)
    src = np.arange(n, dtype=np.int64)
    seg_of = np.searchsorted(sr.segment_first, np.array([s.first_mcu for s in sca.segments], np.int64),
                             side="right") - 1
    for k, (s, g) in enumerate(zip(sca.segments, seg_of), start=1):
        if s.scan != 0 or not s.confident or g < 0:
            continue
        lo, hi = int(sr.segment_first[g]), int(sr.segment_first[g]) + int(sr.segment_count[g])
        a, b = max(s.first_mcu + s.shift, lo, 0), min(s.end_mcu + s.shift, hi, n)
        if b - a >= MIN_RUN:
            labels[a:b] = k
            src[a:b] = np.arange(a, b) - s.shift
    labels[sca.mcu_mask.reshape(-1)[:n]] = -1  # garbage, silent damage
    first = sca.segments[0] if sca.segments else None
    if first is not None and first.first_mcu == 0 and first.shift == 0:
        # decoded before any error, so exact in level, except what the decoder suspects at the
        # first failure and a few MCUs before that (SCA's mask is no guide here: it also marks a
        # first run whose level disagrees with the very thumbnail this fits)
        end = min(first.end_mcu, n)
        suspect = np.flatnonzero(sr.suspect[:end])
        end = max(min(end, int(suspect[0]) if suspect.size else end) - FIRST_GARBLE, 0)
        labels[:end] = 0
        src[:end] = np.arange(end)
    if sr.restart_interval:
        whole = {(s.first_mcu, s.end_mcu) for s in sca.segments if s.scan == 0 and s.shift == 0 and not any(s.dc)}
        sound = sr.sound_segments()
        for start, count in zip(sr.segment_first[sound].tolist(), sr.segment_count[sound].tolist()):
            if (start, start + count) in whole:  # split at a silent DC step: its pieces keep free offsets
                labels[start:start + count] = 0
                src[start:start + count] = np.arange(start, start + count)
    return labels, src


def _demeaned(a: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a`` (N×…) less its weighted mean over each free run (label > 0); rows of label 0 (level
    known) are kept as they are."""
    flat = np.ascontiguousarray(a.reshape(a.shape[0], -1), np.float64)
    return _demeaned_flat(flat, np.ascontiguousarray(labels, np.int64), np.ascontiguousarray(w, np.float64)
                          ).reshape(a.shape)


@njit(cache=True)
def _demeaned_flat(flat: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`_demeaned` of an N×J array: weighted sums per label in row order, one pass."""
    n, nj = flat.shape
    size = labels.max() + 1 if n else 1
    wsum = np.zeros(size)
    means = np.zeros((size, nj))
    for i in range(n):
        wsum[labels[i]] += w[i]
        for j in range(nj):
            means[labels[i], j] += w[i] * flat[i, j]
    for k in range(size):
        d = max(wsum[k], 1e-12)
        for j in range(nj):
            means[k, j] = 0.0 if k == 0 else means[k, j] / d
    out = np.empty_like(flat)
    for i in range(n):
        for j in range(nj):
            out[i, j] = flat[i, j] - means[labels[i], j]
    return out


def _fit(feats: np.ndarray, y: np.ndarray, labels: np.ndarray, identity: np.ndarray) -> tuple[np.ndarray, float, float]:
    """One output channel: coefficients (7), median absolute residual before (identity) and after,
    all with each free run's own offset taken out."""
    n = y.size
    reg = RIDGE * n / 100.0 * np.eye(7)
    reg[0, 0] *= 0.01  # an offset is cheap where the level is known; without it the identity's stays
    w = np.ones(n)
    coef = identity.copy()
    both = np.column_stack([feats, y])
    for _ in range(ROUNDS):
        d = _demeaned(both, labels, w)
        fd, yd = d[:, :-1], d[:, -1]
        coef = np.linalg.solve(fd.T @ (fd * w[:, None]) + reg, fd.T @ (yd * w) + reg @ identity)
        res = np.abs(yd - fd @ coef)
        scale = max(float(np.median(res)) * 1.5, 1.0)
        w = 1.0 / (1.0 + (res / scale) ** 2)
    if int((labels == 0).sum()) < MIN_ANCHORED:  # no level known: keep the thumbnail's own
        coef[0] += float(np.mean(feats @ identity) - np.mean(feats @ coef))
    d = _demeaned(both, labels, w)
    fd, yd = d[:, :-1], d[:, -1]
    return coef, float(np.median(np.abs(yd - fd @ identity))), float(np.median(np.abs(yd - fd @ coef)))


def fit_run_tone(thumb: np.ndarray, result: DecodeResult, sca: SCAResult) -> ToneMap | None:
    """How ``thumb`` (framed and registered to the photo) maps to the photo's colours, fitted on the
    runs ``sca`` (an SCA of ``result``, guided by ``thumb``) placed and trusted, each with a free
    offset (the DC SCA gave it followed the thumbnail), and on the part whose level is known. None
    for anything but a single-scan YCbCr photo, too few MCUs to fit on, or a mapping that does not
    cut the residual by ``TONE_GAIN``. ``before``/``after``: the median absolute luma residual
    (levels)."""
    if result.frame.color != "ycbcr" or len(result.scans) != 1 or sca.mcu_mask is None:
        return None
    sr = result.scans[0]
    _, comps = scan_geometry(result, sr)
    if len(comps) != 3:
        return None
    n = sr.mcu_rows * sr.mcu_cols
    labels, src = _runs(sca, result, n)
    use = labels >= 0
    if int(use.sum()) < MIN_MCUS:
        return None
    feats = _features(thumb, result, comps)
    coefs, before, after = [], [], []
    for k, (ci, h, v) in enumerate(comps):
        dc = np.ascontiguousarray(result.coefficients[ci][: sr.mcu_rows * v, : sr.mcu_cols * h, 0])
        dc = dc.reshape(sr.mcu_rows, v, sr.mcu_cols, h).transpose(0, 2, 1, 3).reshape(n, -1)  # MCU-major
        y = dc[src].mean(axis=1) * float(result.qtables[ci][0]) / 8.0 + 128.0  # as decoded
        identity = np.concatenate([[JFIF_OFFSETS[k]], 255.0 * JFIF_YCC[k], np.zeros(3)])
        c, b, a = _fit(feats[k][use], y[use], labels[use], identity)
        coefs.append(c)
        before.append(b)
        after.append(a)
    if sum(after) > TONE_GAIN * sum(before):
        return None
    inv = np.linalg.inv(JFIF_YCC)
    ycc = np.stack(coefs)  # 3×7: YCbCr from the thumbnail's RGB features
    rgb = inv @ ycc
    rgb[:, 0] -= inv @ JFIF_OFFSETS
    return ToneMap(coef=rgb, before=before[0], after=after[0], pixels=int(use.sum()))
