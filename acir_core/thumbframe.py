"""Put a camera's thumbnail onto the photo's frame, and into the photo's colours.

Cameras do not write the thumbnail SCA and the fill would like (a bicubic of the photo): a 3:2
sensor's 160×120 thumbnail carries black bars above and below, some cameras store the photo
turned a quarter but the thumbnail not, and every camera renders it through its own tone curve
and colour. :func:`frame_thumbnail` crops the bars and turns the thumbnail to match the photo,
judged by the edges of a decode of it; :func:`fit_tone` learns the
thumbnail-to-photo colour mapping from the pixels SCA trusts, so the fill takes the photo's
colours, not the camera's preview rendering. Algorithm notes: docs/sca.md ("camera thumbnails").
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

BAR_LEVEL = 48.0  # mean luma under which a strip the aspect says is a bar counts as one
MIN_TRUSTED = 64  # thumbnail pixels of trusted photo needed to fit a tone map
ROTATIONS = (0, 90, 270)  # a camera turns its preview a quarter if at all, never upside down


@dataclass(frozen=True, kw_only=True, eq=False)
class FramedThumbnail:
    """``rgb``: the thumbnail in the photo's orientation with its bars cropped (uint8);
    ``crop``: (top, bottom, left, right) rows/columns removed; ``rotation``: degrees turned
    counter-clockwise."""

    rgb: np.ndarray = field(repr=False)
    crop: tuple[int, int, int, int]
    rotation: int

    def describe(self) -> str:
        parts = []
        if any(self.crop):
            parts.append("bars cropped " + "/".join(str(c) for c in self.crop))
        if self.rotation:
            parts.append(f"turned {self.rotation}°")
        return ", ".join(parts) or "as stored"


def luma(rgb: np.ndarray) -> np.ndarray:
    """Luma (BT.601 weights, 0-255 scale) as float32: what the thumbnail checks compare."""
    a = rgb.astype(np.float32)
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def _turn(rgb: np.ndarray, rotation: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(rgb, rotation // 90))


def content_box(thumb: np.ndarray, aspect: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) bars to remove so that what is left has ``aspect`` (w/h),
    when those strips are dark (letterbox or pillarbox); (0, 0, 0, 0) otherwise."""
    h, w = thumb.shape[:2]
    if h < 8 or w < 8:
        return 0, 0, 0, 0
    y = luma(thumb)
    if w / h < aspect * 0.97:  # too tall: bars above and below
        keep = int(round(w / aspect))
        if keep >= h or keep < h // 2:
            return 0, 0, 0, 0
        top = (h - keep) // 2
        bottom = h - keep - top
        strips = [y[:top], y[h - bottom:]]
        box = (top, bottom, 0, 0)
    elif w / h > aspect * 1.03:  # too wide: bars left and right
        keep = int(round(h * aspect))
        if keep >= w or keep < w // 2:
            return 0, 0, 0, 0
        left = (w - keep) // 2
        right = w - keep - left
        strips = [y[:, :left], y[:, w - right:]]
        box = (0, 0, left, right)
    else:
        return 0, 0, 0, 0
    if all(s.size == 0 or float(s.mean()) < BAR_LEVEL for s in strips):
        return box
    return 0, 0, 0, 0


def _crop(thumb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    t, b, l, r = box
    h, w = thumb.shape[:2]
    return thumb[t:h - b, l:w - r]


def reduce_to(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` area-averaged to width×height (float32): the photo as a thumbnail sees it."""
    im = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(im.resize((width, height), Image.BOX), dtype=np.float32)


def trusted_fraction(trusted: np.ndarray, width: int, height: int) -> np.ndarray:
    """Share of each thumbnail pixel's footprint that ``trusted`` (H×W bool) covers."""
    im = Image.fromarray(trusted.astype(np.uint8) * 255)
    return np.asarray(im.resize((width, height), Image.BOX), dtype=np.float32) / 255.0


def _edges(y: np.ndarray) -> np.ndarray:
    gy = np.zeros_like(y)
    gx = np.zeros_like(y)
    gy[1:-1] = y[2:] - y[:-2]
    gx[:, 1:-1] = y[:, 2:] - y[:, :-2]
    return np.hypot(gy, gx)[1:-1, 1:-1]


def structure(thumb: np.ndarray, photo: np.ndarray) -> float:
    """Correlation of the edge strength of ``thumb`` and of ``photo`` reduced to its size: high
    when both show the same scene the same way round, whatever their levels and colours."""
    h, w = thumb.shape[:2]
    a = _edges(luma(thumb)).ravel()
    b = _edges(luma(reduce_to(photo, w, h).astype(np.uint8))).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else 0.0


def frame_thumbnail(thumb: np.ndarray, width: int, height: int, photo: np.ndarray | None = None
                    ) -> FramedThumbnail:
    """Crop ``thumb``'s bars and turn it to the photo's (``width``×``height``) orientation. With
    ``photo`` (a decode of it, H×W×3), a quarter turn's direction is judged by which turn's edges
    match the photo's (:func:`structure`); without, a turn is taken only when the aspect demands
    it, counter-clockwise."""
    aspect = width / max(height, 1)
    candidates = []
    for rot in ROTATIONS:
        turned = _turn(thumb, rot)
        box = content_box(turned, aspect)
        framed = _crop(turned, box)
        fh, fw = framed.shape[:2]
        candidates.append((rot, box, framed, abs(np.log((fw / fh) / aspect))))
    best_fit = min(c[3] for c in candidates)
    shaped = [c for c in candidates if c[3] <= best_fit + 0.05]
    if candidates[0][3] <= 0.05 and candidates[0][1] == (0, 0, 0, 0):
        shaped = candidates[:1]  # it fits as stored, bars and all: a turn would have to crop a picture
    if photo is not None and len(shaped) > 1:
        # which way round: the edges of the whole decode, damage and all, tell it better than a
        # strip of trusted rows (runs out of place or off in level keep most of their edges)
        rot, box, framed, _ = max(shaped, key=lambda c: structure(c[2], photo))
    else:
        rot, box, framed, _ = min(shaped, key=lambda c: ROTATIONS.index(c[0]))  # as stored, or a quarter turn
    return FramedThumbnail(rgb=np.ascontiguousarray(framed), crop=box, rotation=rot)


def _features(rgb: np.ndarray) -> np.ndarray:
    x = rgb.reshape(-1, 3).astype(np.float64) / 255.0
    return np.concatenate([np.ones((x.shape[0], 1)), x, x * x], axis=1)


@dataclass(frozen=True, kw_only=True, eq=False)
class ToneMap:
    """A thumbnail-to-photo colour mapping: per output channel, an affine-plus-square function of
    the thumbnail's R, G, B (``coef``: 3×7, from thumbnail values in [0, 1] to levels).
    ``residual``: median absolute luma error (levels) on the pixels it was fitted on, before and
    after."""

    coef: np.ndarray = field(repr=False)
    before: float
    after: float
    pixels: int

    def apply(self, thumb: np.ndarray) -> np.ndarray:
        out = _features(thumb) @ self.coef.T
        return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(thumb.shape)


def fit_tone(thumb: np.ndarray, photo: np.ndarray, trusted: np.ndarray, *, ridge: float = 1.0,
             rounds: int = 4) -> ToneMap | None:
    """Fit how ``thumb`` (framed: same scene and orientation as ``photo``) maps to the photo's
    colours on the thumbnail pixels whose footprint ``trusted`` covers, robustly (a few rounds
    of Cauchy reweighting) and pulled towards the identity by ``ridge`` (so a sliver of sky does
    not decide the mapping of a whole scene). None when too few pixels are trusted or the fit
    does not improve the agreement."""
    th, tw = thumb.shape[:2]
    cover = trusted_fraction(trusted, tw, th).reshape(-1) > 0.99
    n = int(cover.sum())
    if n < MIN_TRUSTED:
        return None
    small = reduce_to(photo, tw, th).reshape(-1, 3)[cover].astype(np.float64)
    feats = _features(thumb)[cover]
    identity = np.zeros((3, 7))
    identity[:, 1:4] = 255.0 * np.eye(3)
    w = np.ones(n)
    coef = identity.copy()
    reg = ridge * n / 100.0 * np.eye(7)
    reg[0, 0] *= 0.01  # an offset is cheap; curvature and cross terms must earn their place
    for _ in range(rounds):
        a = feats.T @ (feats * w[:, None]) + reg
        b = feats.T @ (small * w[:, None]) + reg @ identity.T
        coef = np.linalg.solve(a, b).T
        res = np.abs(small - feats @ coef.T).max(axis=1)
        scale = max(float(np.median(res)) * 1.5, 1.0)
        w = 1.0 / (1.0 + (res / scale) ** 2)
    luma_w = np.array([0.299, 0.587, 0.114])
    before = float(np.median(np.abs((small - feats @ identity.T) @ luma_w)))
    after = float(np.median(np.abs((small - feats @ coef.T) @ luma_w)))
    if after >= before:
        return None
    return ToneMap(coef=coef, before=before, after=after, pixels=n)


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
        pad = 4
        padded = np.pad(thumb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        cx, cy = w / 2.0, h / 2.0
        box = ((0.0 - cx - self.dx) / self.sx + cx + pad, (0.0 - cy - self.dy) / self.sy + cy + pad,
               (w - cx - self.dx) / self.sx + cx + pad, (h - cy - self.dy) / self.sy + cy + pad)
        im = Image.fromarray(np.ascontiguousarray(padded))
        return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC, box=box))


def _boxes(cum: np.ndarray, n: int, s: float, d: float, fine: int) -> np.ndarray:
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
    Cameras decimate from a block's corner rather than its centre (half a thumbnail pixel is one
    MCU at 12 Mpx), which puts every run the thumbnail guides one MCU off. None when too little is
    trusted to judge (too few pixels, or too little texture to tell half a pixel); the identity
    (``moved`` false) when no registration improves the fit by a clear margin."""
    h, w = thumb.shape[:2]
    if h < 16 or w < 16:
        return None
    if max(h, w) > REGISTER_SIDE:
        rw, rh = max(1, round(w * REGISTER_SIDE / max(h, w))), max(1, round(h * REGISTER_SIDE / max(h, w)))
        small = register(reduce_to(thumb, rw, rh).round().astype(np.uint8), photo, trusted)
        return None if small is None else replace(small, dx=small.dx * w / rw, dy=small.dy * h / rh)
    k = max(1, min(FINE, FINE_SAMPLES // max(h, w)))
    pf = luma(reduce_to(photo, w * k, h * k)).astype(np.float64)
    tf = trusted_fraction(trusted, w * k, h * k).astype(np.float64)

    def sample(a: np.ndarray, sx: float, dx: float, sy: float, dy: float) -> np.ndarray:
        rows = _boxes(_running(a), w, sx, dx, k)  # (h·k)×w
        return _boxes(_running(rows.T), h, sy, dy, k).T

    inner = np.zeros((h, w), bool)
    inner[2:-2, 2:-2] = True
    sel = inner & (sample(tf, 1.0, 0.0, 1.0, 0.0) > 0.99)
    n = int(sel.sum())
    if n < MIN_REGISTER:
        return None
    if n > MAX_JUDGED:
        keep = np.zeros(n, bool)
        keep[:: -(-n // MAX_JUDGED)] = True
        sel[sel] = keep
    q = luma(thumb)[sel]
    rows, cols = np.flatnonzero(sel.any(axis=1)), np.flatnonzero(sel.any(axis=0))
    judged = {"x": cols.size >= MIN_ROWS, "y": rows.size >= MIN_ROWS}
    scaled = {"x": np.ptp(cols) >= SPAN_FOR_SCALE * w, "y": np.ptp(rows) >= SPAN_FOR_SCALE * h}
    p = {"sx": 1.0, "dx": 0.0, "sy": 1.0, "dy": 0.0}
    before = _tone_residual(sample(pf, 1.0, 0.0, 1.0, 0.0)[sel], q)
    best = before
    for scales, shifts, relative in ((SCALES, SHIFTS, False), (SCALES, SHIFTS, False),
                                     (FINE_SCALES, FINE_SHIFTS, True)):
        for axis in ("x", "y"):
            if not judged[axis]:
                continue
            s0, d0 = (p["s" + axis], p["d" + axis]) if relative else (0.0, 0.0)
            scales = scales if scaled[axis] else (0.0,) if relative else (1.0,)
            if axis == "x":  # the other axis reduced once, this one per candidate
                cum = _running(_boxes(_running(pf.T), h, p["sy"], p["dy"], k).T)
                grid = [(s0 + s, d0 + d, _tone_residual(_boxes(cum, w, s0 + s, d0 + d, k)[sel], q))
                        for s in scales for d in shifts]
            else:
                cum = _running(_boxes(_running(pf), w, p["sx"], p["dx"], k).T)
                grid = [(s0 + s, d0 + d, _tone_residual(_boxes(cum, h, s0 + s, d0 + d, k).T[sel], q))
                        for s in scales for d in shifts]
            s_best, d_best, c_best = min(grid, key=lambda g: (g[2], abs(g[1]), abs(g[0] - 1.0)))
            if c_best < best:
                best, p["s" + axis], p["d" + axis] = c_best, s_best, d_best
    if best > REGISTER_GAIN * before:
        # where it is already, if these pixels would have shown the usual camera offset (a band of
        # sky cannot tell)
        off = _tone_residual(sample(pf, 1.0, -0.5 * judged["x"], 1.0, -0.5 * judged["y"])[sel], q)
        if off * REGISTER_GAIN < before:
            return None
        return Registration(dx=0.0, dy=0.0, sx=1.0, sy=1.0, before=before, after=before, pixels=n,
                            judged=(judged["x"], judged["y"]))
    return Registration(dx=p["dx"], dy=p["dy"], sx=p["sx"], sy=p["sy"], before=before, after=best, pixels=n,
                        judged=(judged["x"], judged["y"]))
