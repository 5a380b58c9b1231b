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

from dataclasses import dataclass, field

import numpy as np
from numba import njit
from PIL import Image

from acir_core.bands import over_rows

BAR_LEVEL = 48.0  # mean luma under which a strip the aspect says is a bar counts as one
BAR_LINE = 8.0  # mean luma under which a line beside a bar counts as bar too ...
BAR_RING = 64.0  # ... if none of it is brighter than this (JPEG ringing along the bar's edge)
BAR_GROW = 2  # lines a bar may grow by past what the aspect gives (the camera rounded the other way)
MIN_TRUSTED = 64  # thumbnail pixels of trusted photo needed to fit a tone map
STRUCTURE_PIXELS = 1000  # thumbnail pixels of trusted photo that judge a turn on their own
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
    if rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3:
        rgb = np.ascontiguousarray(rgb)
        out = np.empty(rgb.shape[:2], np.float32)
        over_rows(lambda a, b: _luma_u8(rgb[a:b], out[a:b]), rgb.shape[0], min_rows=64)
        return out
    a = rgb.astype(np.float32)
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


@njit(cache=True, nogil=True)
def _luma_u8(rgb: np.ndarray, out: np.ndarray) -> None:
    h, w = rgb.shape[0], rgb.shape[1]
    for i in range(h):
        for j in range(w):
            out[i, j] = (np.float32(0.299) * np.float32(rgb[i, j, 0]) + np.float32(0.587) * np.float32(rgb[i, j, 1])
                         + np.float32(0.114) * np.float32(rgb[i, j, 2]))


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
        return _grown(y, box)
    return 0, 0, 0, 0


def _grown(y: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``box`` with each bar grown over up to ``BAR_GROW`` more lines that are black (ringing aside):
    a camera that letterboxes 3:2 into 160×120 draws 106 lines where the aspect says 106.7, so
    rounding leaves a black line in the picture, which then stands for a whole MCU row."""
    t, b, l, r = box
    h, w = y.shape
    if t or b:
        while t < box[0] + BAR_GROW and t < h // 4 and _black(y[t]):
            t += 1
        while b < box[1] + BAR_GROW and b < h // 4 and _black(y[h - 1 - b]):
            b += 1
    else:
        while l < box[2] + BAR_GROW and l < w // 4 and _black(y[:, l]):
            l += 1
        while r < box[3] + BAR_GROW and r < w // 4 and _black(y[:, w - 1 - r]):
            r += 1
    return t, b, l, r


def _black(line: np.ndarray) -> bool:
    return float(line.mean()) < BAR_LINE and float(line.max()) < BAR_RING


def _crop(thumb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    t, b, l, r = box
    h, w = thumb.shape[:2]
    return thumb[t:h - b, l:w - r]


def reduce_to(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` reduced to width×height with Pillow's box filter (float32): the photo as a
    thumbnail sees it (an area average where the ratio is large; see :func:`area_reduce`)."""
    im = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(im.resize((width, height), Image.BOX), dtype=np.float32)


def trusted_fraction(trusted: np.ndarray, width: int, height: int) -> np.ndarray:
    """Share of each thumbnail pixel's footprint that ``trusted`` (H×W bool) covers."""
    im = Image.fromarray(trusted.astype(np.uint8) * 255)
    return np.asarray(im.resize((width, height), Image.BOX), dtype=np.float32) / 255.0


STEP_ROWS = 3  # rows (at the reference's size) a departure must span to count


def level_steps(picture: np.ndarray, reference: np.ndarray, aspect: float) -> float:
    """How far (levels) the rows of ``picture`` (an embedded preview) depart in level from the
    rest of it, judged against ``reference`` (a smaller picture of the same photo, such as the
    header's thumbnail; both H×W×3 uint8, bars cropped to the photo's ``aspect``): per JFIF
    component, the reference is fitted as a straight line of the reduced preview (robustly), and
    the range of the residual's row medians (over ``STEP_ROWS`` rows) is taken, the largest over
    components. A preview stored after the image lies in the photo's damaged bytes, and an error
    its decoder reads silently shifts the DC of every block after it: its lower part comes out
    tens of levels off. Two renderings of one photo differ in tone, sharpness and colour, but
    not row by row. 0.0 where the two cannot be compared (turned either way round, or tiny)."""
    a = _crop(picture, content_box(picture, aspect))
    b = _crop(reference, content_box(reference, aspect))
    (ha, wa), (hb, wb) = a.shape[:2], b.shape[:2]
    if (ha > wa) != (hb > wb) or hb < 4 * STEP_ROWS or wb < 8 or ha < hb or wa < wb:
        return 0.0
    small = reduce_to(a, wb, hb).astype(np.float64)
    ref = b.astype(np.float64)
    worst = 0.0
    for k in range(3):
        x = small @ _JFIF[k]
        y = ref @ _JFIF[k]
        keep = np.ones(x.shape, bool)
        for _ in range(3):  # a line through the rows that agree: the damaged ones have no say
            # a flat preview gives no slope: then the reference is it plus an offset
            coef = np.polyfit(x[keep], y[keep], 1) if np.ptp(x[keep]) > 1e-6 else \
                np.array([1.0, float(np.mean(y[keep] - x[keep]))])
            r = y - np.polyval(coef, x)
            spread = 1.4826 * float(np.median(np.abs(r[keep]))) + 1.0
            keep = np.abs(r) < 3.0 * spread
            if keep.sum() < x.size // 4:
                break
        rows = np.median(r, axis=1)
        runs = np.convolve(rows, np.ones(STEP_ROWS) / STEP_ROWS, mode="valid")
        worst = max(worst, float(runs.max() - runs.min()))
    return worst


_JFIF = (np.array([0.299, 0.587, 0.114]), np.array([-0.168736, -0.331264, 0.5]), np.array([0.5, -0.418688, -0.081312]))


def _edges(y: np.ndarray) -> np.ndarray:
    gy = np.zeros_like(y)
    gx = np.zeros_like(y)
    gy[1:-1] = y[2:] - y[:-2]
    gx[:, 1:-1] = y[:, 2:] - y[:, :-2]
    return np.hypot(gy, gx)[1:-1, 1:-1]


def structure(thumb: np.ndarray, photo: np.ndarray, trusted: np.ndarray | None = None) -> float:
    """Correlation of the edge strength of ``thumb`` and of ``photo`` reduced to its size: high
    when both show the same scene the same way round, whatever their levels and colours.
    ``trusted`` (H×W bool): only the thumbnail pixels whose footprint it covers count, when they
    are enough to judge by (garbage has edges of its own, and at BER 1e-5 they outnumber the
    photo's)."""
    h, w = thumb.shape[:2]
    a = _edges(luma(thumb)).ravel()
    b = _edges(luma(reduce_to(photo, w, h).astype(np.uint8))).ravel()
    if trusted is not None:
        keep = (trusted_fraction(trusted, w, h)[1:-1, 1:-1] > 0.99).ravel()
        if keep.sum() >= STRUCTURE_PIXELS:
            a, b = a[keep], b[keep]
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else 0.0


def frame_thumbnail(thumb: np.ndarray, width: int, height: int, photo: np.ndarray | None = None,
                    trusted: np.ndarray | None = None) -> FramedThumbnail:
    """Crop ``thumb``'s bars and turn it to the photo's (``width``×``height``) orientation. With
    ``photo`` (a decode of it, H×W×3), a quarter turn's direction is judged by which turn's edges
    match the photo's (:func:`structure`, on the part ``trusted`` covers when given); without,
    a turn is taken only when the aspect demands it, counter-clockwise. A thumbnail that fits as stored without bars is only ever turned to
    another fit without bars (a square photo): a scrambled decode's edges once chose a turn that
    cropped dark strips of the picture as if they were bars."""
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
        # it fits as stored without bars: a turn that has to crop "bars" would crop a picture
        shaped = [c for c in shaped if c[1] == (0, 0, 0, 0)]
    if photo is not None and len(shaped) > 1:
        # which way round: the edges of the whole decode, damage and all, tell it better than a
        # strip of trusted rows (runs out of place or off in level keep most of their edges)
        rot, box, framed, _ = max(shaped, key=lambda c: structure(c[2], photo, trusted))
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

