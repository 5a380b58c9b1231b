"""The paper's self-compensation and alignment (Sec. 3.2), as the baseline to beat.

It sees pixels only. Following the paper (and the behaviour of its published code):

1. The decoded image is taken as the paper's decoder leaves it: floating point, not clipped to
   [0, 255], chroma replicated to full size, padded to whole MCUs.
2. Segment detection. Rows: ``ED_h`` (the RMS step between pixel rows h-1 and h) is computed for
   every row; candidate segment rows are MCU boundaries where ED changes abruptly (the change of
   ED exceeds its mean). Columns: for a candidate row h, the segment point's column v maximises
   the coherence ``CED_{h,v} = |ED_{h+16,v} - ED_{h,v}|`` of Eq. 3-4 (an MCU is 16 pixels here,
   the paper's 8 being its block size).
3. Normalisation: every segment (the MCUs between consecutive segment points in raster order) has
   its per-channel mean subtracted, values are clipped to [-150, 150] and each channel is min-max
   normalised to [0, 255] over the whole image.
4. Block alignment: row by row, the MCU stream is shifted by up to 5 MCUs either way so that the
   row's top pixel row matches the previous row's bottom one best (least ED).
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from acir_core.jpeg.decoder import DecodeResult
from acir_core.sca.edges import DCT
from acir_core.sca.result import SCAResult

MAX_ALIGN_SHIFT = 5


def paper_decoder_image(result: DecodeResult) -> np.ndarray:
    """The image as the paper's decoder produced it: float RGB, unclipped, box-upsampled chroma,
    padded to whole MCUs (the paper's float IDCT and JFIF colour matrix)."""
    frame = result.frame
    planes = []
    hmax, vmax = frame.max_h, frame.max_v
    for ci, coefs in enumerate(result.coefficients):
        c = frame.components[ci]
        rows, cols = coefs.shape[:2]
        x = (coefs.astype(np.float32) * result.qtables[ci].astype(np.float32)).reshape(rows, cols, 8, 8)
        px = np.einsum("ux,rcuw,wy->rcxy", DCT, x, DCT, optimize=True) + 128.0
        plane = px.transpose(0, 2, 1, 3).reshape(rows * 8, cols * 8)
        plane = np.repeat(np.repeat(plane, vmax // c.v, axis=0), hmax // c.h, axis=1)
        planes.append(plane)
    h = min(p.shape[0] for p in planes)
    w = min(p.shape[1] for p in planes)
    planes = [p[:h, :w] for p in planes]
    if len(planes) == 1:
        return np.repeat(planes[0][..., None], 3, axis=2)
    if frame.color == "rgb":
        return np.stack(planes, axis=-1)
    y, cb, cr = planes[0], planes[1] - 128.0, planes[2] - 128.0
    return np.stack([y + 1.402 * cr, y - 0.34414 * cb - 0.71414 * cr, y + 1.772 * cb], axis=-1)


_BAND = 32  # pixel rows per pass of _row_steps: its temporaries (1.5 MB at 2K) stay in cache


def _row_steps(img: np.ndarray) -> np.ndarray:
    """ED_h for h = 1..H-1: RMS difference between pixel rows h and h-1 (over width and channels).
    Band by band: the same sums as over the whole image at once, without two image-sized
    temporaries streamed through memory (which two workers on one machine contend for)."""
    out = np.empty(img.shape[0] - 1)
    for a in range(0, img.shape[0] - 1, _BAND):
        b = min(a + _BAND, img.shape[0] - 1)
        d = img[a + 1 : b + 1] - img[a:b]
        out[a:b] = np.sum(d * d, axis=(1, 2))
    return np.sqrt(out) / img.shape[1]


def _segment_points(img: np.ndarray, mcu_h: int, mcu_w: int) -> list[int]:
    """Linear MCU indices where a new segment starts (always including 0)."""
    height, width = img.shape[:2]
    cols = width // mcu_w
    ed = _row_steps(img)  # ed[h-1] is the step into row h
    change = np.abs(np.diff(ed))
    rows = [h for h in range(mcu_h, height - mcu_h, mcu_h) if change[h - 1] > change.mean()]
    starts = {0}
    for h in rows:
        lower, upper = img[h], img[h - 1]
        lower2, upper2 = img[h + mcu_h] if h + mcu_h < height else img[h], img[h + mcu_h - 1]
        d1 = np.sum((lower - upper) ** 2, axis=1)  # per column, step at row h
        d2 = np.sum((lower2 - upper2) ** 2, axis=1)  # per column, step one MCU row lower
        below = min(h + 2 * mcu_h, height - 1)
        d3 = np.sum((img[below] - img[below - 1]) ** 2, axis=1)  # step two MCU rows lower
        c1, c2, c3 = (np.concatenate([[0.0], np.cumsum(d)]) for d in (d1, d2, d3))
        v = np.arange(0, width, mcu_w)
        # Eq. 4: right of v the step at h, left of v the step one MCU row lower; and one row down
        ed_hv = np.sqrt((c1[width] - c1[v]) + c2[v]) / width
        ed_next = np.sqrt((c2[width] - c2[v]) + c3[v]) / width
        best_v = int(v[int(np.argmax(np.abs(ed_next - ed_hv)))])  # Eq. 3: CED is largest at the point
        starts.add((h // mcu_h) * cols + best_v // mcu_w)
    return sorted(starts)


def _normalise(img: np.ndarray, starts: list[int], mcu_h: int, mcu_w: int) -> np.ndarray:
    rows, cols = img.shape[0] // mcu_h, img.shape[1] // mcu_w
    # per-MCU channel sums once, then each segment's mean from them: one pass over the pixels
    # instead of one strided reduction per segment (hundreds per image)
    sums = img.reshape(rows, mcu_h, -1).sum(axis=1).reshape(rows, cols, mcu_w, 3).sum(axis=2).reshape(-1, 3)
    bounds = np.asarray(starts + [rows * cols])
    seg_sum = np.add.reduceat(sums, bounds[:-1], axis=0)
    seg_mean = seg_sum / (np.diff(bounds) * (mcu_h * mcu_w))[:, None]
    per_mcu = np.repeat(seg_mean, np.diff(bounds), axis=0).reshape(rows, cols, 3)
    out = np.empty_like(img)
    lo, hi = _subtract_clip(img, per_mcu, mcu_h, mcu_w, out)
    _stretch(out, lo, np.maximum(hi - lo, 1e-9))
    return out


@njit(cache=True)
def _subtract_clip(img, per_mcu, mcu_h, mcu_w, out):
    """out = clip(img - its segment's mean, ±150), and each channel's min and max of out: one
    pass over the image instead of numpy's five."""
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for y in range(img.shape[0]):
        r = y // mcu_h
        for x in range(img.shape[1]):
            c = x // mcu_w
            for k in range(3):
                v = min(max(img[y, x, k] - per_mcu[r, c, k], -150.0), 150.0)
                out[y, x, k] = v
                lo[k] = min(lo[k], v)
                hi[k] = max(hi[k], v)
    return lo, hi


@njit(cache=True)
def _stretch(out, lo, span):
    """Min-max normalise each channel to [0, 255] in place: (v - lo) / span · 255."""
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            for k in range(3):
                out[y, x, k] = (out[y, x, k] - lo[k]) / span[k] * 255.0


@njit(cache=True)
def place_mcus(img, source, cols, mh, mw, out):
    """out (H×W×3 uint8) = each MCU position's source MCU of ``img`` (raster index, -1: black),
    rounded (half to even) and clipped to 0..255, as far as out reaches."""
    for p in range(source.size):
        r, c = p // cols, p % cols
        s = source[p]
        if s < 0 or r * mh >= out.shape[0] or c * mw >= out.shape[1]:
            continue
        sy, sx = (s // cols) * mh, (s % cols) * mw
        for dy in range(min(mh, out.shape[0] - r * mh)):
            for dx in range(min(mw, out.shape[1] - c * mw)):
                for k in range(3):
                    v = np.rint(img[sy + dy, sx + dx, k])
                    out[r * mh + dy, c * mw + dx, k] = np.uint8(min(max(v, 0.0), 255.0))


def align(img: np.ndarray, mcu_h: int, mcu_w: int) -> np.ndarray:
    """Per MCU position (rows·cols), the index in the MCU stream (raster order of ``img``) of the
    MCU placed there, -1 for none: the stream re-aligned row by row (module docstring, 4). Only
    each MCU's top and bottom pixel rows are compared, so only those are gathered; the pixels
    move once, in :func:`place_mcus`."""
    rows, cols = img.shape[0] // mcu_h, img.shape[1] // mcu_w
    n = rows * cols
    width = cols * mcu_w
    # each MCU's top and bottom pixel row, in stream order
    tops = np.ascontiguousarray(img[0 : rows * mcu_h : mcu_h, :width]).reshape(n, mcu_w, 3)
    bottoms = np.ascontiguousarray(img[mcu_h - 1 : rows * mcu_h : mcu_h, :width]).reshape(n, mcu_w, 3)
    source = np.full(n, -1, np.int64)
    source[:cols] = np.arange(cols)
    offset = 0  # stream index of the MCU placed at position r*cols
    for r in range(1, rows):
        placed = source[(r - 1) * cols : r * cols]
        prev_bottom = np.where((placed >= 0)[:, None, None], bottoms[np.maximum(placed, 0)], 0.0)
        best_k, best_ed = 0, np.inf
        for k in range(-MAX_ALIGN_SHIFT, MAX_ALIGN_SHIFT + 1):
            start = r * cols + offset - k
            if start < 0 or start + cols > n:
                continue
            ed = float(np.sqrt(np.sum((tops[start : start + cols] - prev_bottom) ** 2)))
            if ed < best_ed:
                best_k, best_ed = k, ed
        offset -= best_k
        start = r * cols + offset
        first, end = max(start, 0), max(min(start + cols, n), 0)
        if end > first:
            source[r * cols : r * cols + end - first] = np.arange(first, end)
    return source


def paper_sca(result: DecodeResult) -> SCAResult:
    """The paper's SCA on a robust decode (module docstring); mask empty (it marks nothing)."""
    t0 = time.perf_counter()
    frame = result.frame
    mcu_h, mcu_w = 8 * frame.max_v, 8 * frame.max_h
    img = paper_decoder_image(result).astype(np.float64)
    img = img[: (img.shape[0] // mcu_h) * mcu_h, : (img.shape[1] // mcu_w) * mcu_w]
    for _ in range(2):  # the published code runs segment normalisation twice
        img = _normalise(img, _segment_points(img, mcu_h, mcu_w), mcu_h, mcu_w)
    source = align(img, mcu_h, mcu_w)
    rgb = np.zeros((frame.height, frame.width, 3), np.uint8)
    h, w = min(frame.height, img.shape[0]), min(frame.width, img.shape[1])
    place_mcus(img, source, img.shape[1] // mcu_w, mcu_h, mcu_w, rgb[:h, :w])
    elapsed = time.perf_counter() - t0
    mask = np.zeros((frame.height, frame.width), bool)
    return SCAResult(rgb=rgb, mask=mask, mcu_mask=np.zeros((1, 1), bool), segments=(),
                     coefficients=result.coefficients, method="paper", timings={"total": elapsed})
