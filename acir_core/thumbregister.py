"""Where a camera's thumbnail sits on the photo, to a fraction of a thumbnail pixel.

Cameras decimate their thumbnails from a block's corner rather than its centre, so a framed
thumbnail can sit up to a pixel up and left of where a box filter of the photo would put it, and
some cover a slightly larger or smaller area. At 12 Mpx half a thumbnail pixel is one MCU: SCA
guided by such a thumbnail places every run one MCU off. :func:`register` measures the offset and
scale per axis on pixels known to be in place; :meth:`Registration.apply` resamples the thumbnail
onto the photo's grid. Algorithm notes: docs/sca.md ("camera thumbnails").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from acir_core.thumbframe import luma, reduce_to, trusted_fraction


SHIFTS = np.arange(-1.5, 1.5001, 0.25)  # thumbnail pixels: cameras decimate from a block's corner
SCALES = (0.98, 0.99, 1.0, 1.01, 1.02)  # a preview made from a slightly larger or smaller area
FINE_SHIFTS = np.arange(-0.1875, 0.1876, 0.0625)
FINE_SCALES = (-0.0075, -0.005, -0.0025, 0.0, 0.0025, 0.005, 0.0075)
FINE = 4  # the photo is reduced to this many samples per thumbnail pixel for the search
FINE_SAMPLES = 768  # ... at most this many along the longer side (large previews get fewer)
REGISTER_SIDE = 256  # larger previews are registered on a copy reduced to this (their offsets scaled)
MAX_JUDGED = 6000  # thumbnail pixels the search judges by (a regular subset of the trusted ones)
MIN_REGISTER = 160  # trusted thumbnail pixels needed to judge the registration
MIN_ROWS = 6  # ... and rows (columns) of them to judge the offset across them
SPAN_FOR_SCALE = 0.6  # share of an axis the trusted pixels must span to judge its scale
REGISTER_GAIN = 0.85  # residual after / before under which the registration is applied
TELLS = 1.05  # half a pixel off the best offset must fit this much worse for the axis to be judged
REACH = 2  # thumbnail pixels a candidate footprint may reach beyond the identity one


@dataclass(frozen=True, kw_only=True, eq=False)
class Registration:
    """Where a camera's thumbnail sits on the photo: its pixel ``j`` (per axis) is the photo's
    footprint ``[(j - c)·s + c + d, (j + 1 - c)·s + c + d)`` in thumbnail pixels (``c`` the
    centre), with ``dx``, ``dy``, ``sx``, ``sy``. ``before``/``after``: mean absolute luma
    residual (levels, after a quadratic tone fit) on ``pixels`` trusted thumbnail pixels;
    ``judged``: per axis (x, y), whether they could tell its offset (an axis not judged keeps 0)."""

    dx: float
    dy: float
    sx: float
    sy: float
    before: float
    after: float
    pixels: int
    judged: tuple[bool, bool] = (True, True)  # (x, y): axes the trusted pixels spanned enough to judge

    @property
    def moved(self) -> bool:
        return (self.dx, self.dy, self.sx, self.sy) != (0.0, 0.0, 1.0, 1.0)

    def describe(self) -> str:
        if not self.moved:
            return "in register"
        return (f"registered {self.dx:+.2f}/{self.dy:+.2f} px at scale {self.sx:.3f}/{self.sy:.3f} "
                f"({self.before:.1f} -> {self.after:.1f} levels)")

    def apply(self, thumb: np.ndarray) -> np.ndarray:
        """``thumb`` resampled (bicubic) so that its pixel ``j`` is the photo's footprint ``[j, j+1)``."""
        h, w = thumb.shape[:2]
        cx, cy = w / 2.0, h / 2.0
        box = [(0.0 - cx - self.dx) / self.sx + cx, (0.0 - cy - self.dy) / self.sy + cy,
               (w - cx - self.dx) / self.sx + cx, (h - cy - self.dy) / self.sy + cy]
        # Pillow wants the box inside the image: pad by as much as it reaches out, edge repeated
        pad = 2 + int(math.ceil(max(-box[0], -box[1], box[2] - w, box[3] - h, 0.0)))
        padded = np.pad(thumb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        im = Image.fromarray(np.ascontiguousarray(padded))
        return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC, box=tuple(b + pad for b in box)))


def _boxes(cum: np.ndarray, n: int, s: float, d: float, fine: float) -> np.ndarray:
    """Box averages along the last axis of the samples whose running sums are ``cum`` (``...×(m+1)``,
    ``m = n·fine``): entry ``j`` averages ``[(j - c)·s + c + d, (j + 1 - c)·s + c + d)`` thumbnail
    pixels (``c = n/2``), clipped to the frame; exact for samples constant over their width."""
    m = cum.shape[-1] - 1
    c = n / 2.0
    j = np.arange(n, dtype=np.float64)
    lo = np.clip(((j - c) * s + c + d) * fine, 0, m - 1e-3)
    hi = np.clip(((j + 1 - c) * s + c + d) * fine, lo + 1e-3, m)

    def at(x: np.ndarray) -> np.ndarray:
        i = np.minimum(x.astype(np.int64), m - 1)
        f = (x - i).astype(np.float32)
        return cum[..., i] * (1 - f) + cum[..., i + 1] * f

    return (at(hi) - at(lo)) / (hi - lo).astype(np.float32)


def area_reduce(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` (H×W×C) reduced to width×height by exact area averages (float64): Pillow's box
    filter gives a source pixel to one output pixel whole or by halves at ratios like 1.25."""
    h, w = rgb.shape[:2]
    a = rgb.astype(np.float64)
    rows = _boxes(_running(np.moveaxis(a, 1, -1)), width, 1.0, 0.0, w / width)  # H×C×width
    cols = _boxes(_running(np.moveaxis(rows, 0, -1)), height, 1.0, 0.0, h / height)  # C×width×height
    return np.ascontiguousarray(np.transpose(cols, (2, 1, 0)))


def _running(a: np.ndarray) -> np.ndarray:
    """Running sums along the last axis with a leading zero (float64 for exact differences)."""
    out = np.zeros(a.shape[:-1] + (a.shape[-1] + 1,), np.float64)
    np.cumsum(a, axis=-1, out=out[..., 1:])
    return out


def _tone_residual(pred: np.ndarray, target: np.ndarray, keep: float = 0.8) -> float:
    """Mean absolute residual of ``target`` after a quadratic fit on ``pred``, fitted and judged on
    the ``keep`` share that fits best (a few misplaced pixels among the trusted do not decide)."""
    a = np.stack([np.ones_like(pred), pred, pred * pred / 255.0], axis=1).astype(np.float64)
    t = target.astype(np.float64)
    use = slice(None)
    cut = max(int(t.size * keep) - 1, 0)
    for _ in range(2):
        au = a[use]
        coef = np.linalg.solve(au.T @ au + 1e-6 * np.eye(3), au.T @ t[use])
        res = np.abs(a @ coef - t)
        use = res <= np.partition(res, cut)[cut]
    return float(res[use].mean())


def register(thumb: np.ndarray, photo: np.ndarray, trusted: np.ndarray) -> Registration | None:
    """Find where ``thumb`` (framed) sits on ``photo`` (H×W×3) by the pixels ``trusted`` (H×W
    bool) covers: the sub-pixel offset and scale per axis that best explain the thumbnail's luma
    from the photo's, searched coarse then fine, one axis at a time (the footprints are separable).
    An axis is judged only where the trusted pixels span ``MIN_ROWS`` of it and half a pixel
    either way from the best offset along it fits ``TELLS`` worse (a band of sky cannot tell);
    its scale only where they span ``SPAN_FOR_SCALE`` of it. None when no axis can be judged; the identity (``moved`` false)
    when no registration improves the fit by a clear margin (``REGISTER_GAIN``)."""
    h, w = thumb.shape[:2]
    if h < 16 or w < 16:
        return None
    if max(h, w) > REGISTER_SIDE:
        rw, rh = max(1, round(w * REGISTER_SIDE / max(h, w))), max(1, round(h * REGISTER_SIDE / max(h, w)))
        small = area_reduce(thumb, rw, rh).round().clip(0, 255).astype(np.uint8)
        found = register(small, photo, trusted)
        return None if found is None else replace(found, dx=found.dx * w / rw, dy=found.dy * h / rh)
    k = max(1, min(FINE, FINE_SAMPLES // max(h, w)))
    pf = luma(reduce_to(photo, w * k, h * k)).astype(np.float64)
    tf = trusted_fraction(trusted, w * k, h * k).astype(np.float64)

    def sample(a: np.ndarray, sx: float, dx: float, sy: float, dy: float) -> np.ndarray:
        rows = _boxes(_running(a), w, sx, dx, k)  # (h·k)×w
        return _boxes(_running(rows.T), h, sy, dy, k).T

    # judged only where every footprint a candidate can reach is trusted (a band's last rows would
    # otherwise favour offsets that look into the trusted part)
    cover = sample(tf, 1.0, 0.0, 1.0, 0.0) > 0.99
    sel = np.zeros((h, w), bool)
    sel[REACH:-REACH, REACH:-REACH] = True
    for dy in range(-REACH, REACH + 1):
        for dx in range(-REACH, REACH + 1):
            sel[REACH:-REACH, REACH:-REACH] &= cover[REACH + dy:h - REACH + dy, REACH + dx:w - REACH + dx]
    n = int(sel.sum())
    if n < MIN_REGISTER:
        return None
    if n > MAX_JUDGED:
        keep = np.zeros(n, bool)
        keep[:: -(-n // MAX_JUDGED)] = True
        sel[sel] = keep
    q = luma(thumb)[sel]
    rows, cols = np.flatnonzero(sel.any(axis=1)), np.flatnonzero(sel.any(axis=0))
    before = _tone_residual(sample(pf, 1.0, 0.0, 1.0, 0.0)[sel], q)
    judged = {"x": cols.size >= MIN_ROWS, "y": rows.size >= MIN_ROWS}
    scaled = {"x": np.ptp(cols) >= SPAN_FOR_SCALE * w, "y": np.ptp(rows) >= SPAN_FOR_SCALE * h}
    p = {"sx": 1.0, "dx": 0.0, "sy": 1.0, "dy": 0.0}
    best = before
    for scales, shifts, relative in ((SCALES, SHIFTS, False), (SCALES, SHIFTS, False),
                                     (FINE_SCALES, FINE_SHIFTS, True)):
        for axis in ("x", "y"):
            if not judged[axis]:
                continue
            s0, d0 = (p["s" + axis], p["d" + axis]) if relative else (0.0, 0.0)
            tried = scales if scaled[axis] else (0.0,) if relative else (1.0,)
            if axis == "x":  # the other axis reduced once, this one per candidate
                cum = _running(_boxes(_running(pf.T), h, p["sy"], p["dy"], k).T)
                grid = [(s0 + s, d0 + d, _tone_residual(_boxes(cum, w, s0 + s, d0 + d, k)[sel], q))
                        for s in tried for d in shifts]
            else:
                cum = _running(_boxes(_running(pf), w, p["sx"], p["dx"], k).T)
                grid = [(s0 + s, d0 + d, _tone_residual(_boxes(cum, h, s0 + s, d0 + d, k).T[sel], q))
                        for s in tried for d in shifts]
            s_best, d_best, c_best = min(grid, key=lambda g: (g[2], abs(g[1]), abs(g[0] - 1.0)))
            if c_best < best:
                best, p["s" + axis], p["d" + axis] = c_best, float(s_best), float(d_best)
    for axis in ("x", "y"):  # judged only where half a pixel either way is clearly worse
        if judged[axis]:
            worse = []
            for e in (-0.5, 0.5):
                t = dict(p, **{"d" + axis: p["d" + axis] + e})
                worse.append(_tone_residual(sample(pf, t["sx"], t["dx"], t["sy"], t["dy"])[sel], q))
            if min(worse) < TELLS * best:
                judged[axis] = False
        if not judged[axis]:
            p["s" + axis], p["d" + axis] = 1.0, 0.0
    if not (judged["x"] or judged["y"]):
        return None
    best = _tone_residual(sample(pf, p["sx"], p["dx"], p["sy"], p["dy"])[sel], q)
    axes = (judged["x"], judged["y"])
    if best > REGISTER_GAIN * before:
        return Registration(dx=0.0, dy=0.0, sx=1.0, sy=1.0, before=before, after=before, pixels=n, judged=axes)
    return Registration(dx=p["dx"], dy=p["dy"], sx=p["sx"], sy=p["sy"], before=before, after=best, pixels=n,
                        judged=axes)
