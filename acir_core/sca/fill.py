"""Filling damaged pixels: from the thumbnail with a seamless edge, or by inpainting without one.

Both are normalised convolutions built from box blurs (cumulative sums, so the cost does not
grow with the blur radius): a field known on some pixels is spread smoothly over the others.

* With a thumbnail: damaged pixels take the bicubic-upsampled thumbnail plus a smooth correction
  that makes it meet the exact pixels around the hole (the correction is the difference between
  the image and the upsampled thumbnail on a ring outside the hole, spread inwards). The thumbnail
  brings the content; the correction removes the seam.
* Without one: push-pull inpainting (a pyramid of normalised convolutions, coarse levels filling
  what fine levels cannot reach), our own numpy equivalent of diffusion inpainting.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from PIL import Image

from acir_core.bands import over_rows
from acir_core.sca.resize import bicubic_resize
from acir_core.sca.thumbmodel import JFIF_YCC


def box_blur(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Mean over a window of 2r+1 along ``axis`` (edges: window clipped), via cumulative sums
    (float64, compiled: the fills blur a few cell grids many times per photo)."""
    if r <= 0:
        return a
    a = np.asarray(a, np.float64)
    if not a.size:
        return a.copy()
    shape = a.shape
    mid = a.reshape((int(np.prod(shape[:axis], dtype=np.int64)), shape[axis], -1))
    return _box_mid(np.ascontiguousarray(mid), int(r)).reshape(shape)


@njit(cache=True)
def _box_mid(a: np.ndarray, r: int) -> np.ndarray:
    """:func:`box_blur` along the middle axis of a 3-d array: the running sums from 0 and each
    window's difference of them over its clipped length, line by line (a whole line of the last
    axis at a time where it is longer than 1)."""
    n0, n, n2 = a.shape
    out = np.empty_like(a)
    c = np.zeros((n + 1, n2))
    for i0 in range(n0):
        if n2 == 1:
            for i in range(n):
                c[i + 1, 0] = c[i, 0] + a[i0, i, 0]
            for i in range(n):
                lo, hi = max(i - r, 0), min(i + r + 1, n)
                out[i0, i, 0] = (c[hi, 0] - c[lo, 0]) / (hi - lo)
            continue
        for i in range(n):
            for i2 in range(n2):
                c[i + 1, i2] = c[i, i2] + a[i0, i, i2]
        for i in range(n):
            lo, hi = max(i - r, 0), min(i + r + 1, n)
            d = hi - lo
            for i2 in range(n2):
                out[i0, i, i2] = (c[hi, i2] - c[lo, i2]) / d
    return out


def smooth(a: np.ndarray, r: int, passes: int = 3) -> np.ndarray:
    """Approximately Gaussian blur (three box passes per axis) of an H×W or H×W×C array."""
    out = a.astype(np.float64)
    for _ in range(passes):
        out = box_blur(box_blur(out, r, 0), r, 1)
    return out


def upsampled_thumbnail(thumb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic upsampling of the thumbnail to the photo's size (uint8 RGB; what the GCA network
    sees): Pillow's, exactly (:mod:`acir_core.sca.resize`, faster than Pillow's own)."""
    rgb = np.asarray(thumb, np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    return bicubic_resize(rgb, width, height)


def window_reduce(a: np.ndarray, r: int, fn) -> np.ndarray:
    """``fn`` (a binary ufunc such as np.maximum) over each (2r+1)² square window, separably, by
    shifted copies: dilation, or the min/max filters SCA uses on its MCU grids."""
    out = a.copy()
    for axis in (0, 1):
        src = out.copy()
        n = src.shape[axis]
        for d in range(1, min(r, n - 1) + 1):
            lo = [slice(None)] * 2
            hi = [slice(None)] * 2
            lo[axis], hi[axis] = slice(0, n - d), slice(d, n)
            out[tuple(lo)] = fn(out[tuple(lo)], src[tuple(hi)])
            out[tuple(hi)] = fn(out[tuple(hi)], src[tuple(lo)])
    return out


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1)² square: sliding counts for small ``r``, running sums (time
    independent of ``r``) for the large ones inpainting a big hole needs."""
    if r <= 8:  # along rows, then along columns, in bands on the cores (acir_core.bands)
        mask = np.ascontiguousarray(mask, np.bool_)
        h, w = mask.shape
        rows, out = np.empty((h, w), np.bool_), np.empty((h, w), np.bool_)
        over_rows(lambda a, b: _dilate_rows(mask[a:b], r, rows[a:b]), h, min_rows=64)
        over_rows(lambda a, b: _dilate_columns(rows, r, out, a, b), h, min_rows=64)
        return out
    out = mask
    for axis in (0, 1):
        n = out.shape[axis]
        c = np.cumsum(out, axis=axis, dtype=np.int32)
        idx = np.arange(n)
        hi = np.take(c, np.minimum(idx + r, n - 1), axis=axis)
        shape = [1, 1]
        shape[axis] = n
        lo = np.take(c, np.maximum(idx - r - 1, 0), axis=axis) * (idx - r - 1 >= 0).reshape(shape)
        out = (hi - lo) > 0
    return out


@njit(cache=True)
def _dilate_row(mask: np.ndarray, i: int, r: int, out: np.ndarray) -> None:
    """out[i] = row ``i`` of ``mask`` dilated along itself by ``r`` (a sliding count)."""
    w = mask.shape[1]
    count = 0
    for j in range(min(r, w)):
        count += mask[i, j]
    for j in range(w):
        if j + r < w:
            count += mask[i, j + r]
        if j - r - 1 >= 0:
            count -= mask[i, j - r - 1]
        out[i, j] = count > 0


@njit(cache=True, nogil=True)
def _dilate_rows(mask: np.ndarray, r: int, out: np.ndarray) -> None:
    """Every row of ``mask`` dilated along itself by ``r`` into ``out``."""
    for i in range(mask.shape[0]):
        _dilate_row(mask, i, r, out)


@njit(cache=True, nogil=True)
def _dilate_columns(rows: np.ndarray, r: int, out: np.ndarray, lo: int, hi: int) -> None:
    """Rows ``lo:hi`` of every column of ``rows`` dilated along itself by ``r`` into ``out``,
    counting the set pixels in a window sliding down (no full-size temporaries)."""
    h, w = rows.shape
    counts = np.zeros(w, np.int32)
    for i in range(max(lo - r, 0), min(lo + r, h - 1) + 1):  # the window of row lo
        for j in range(w):
            counts[j] += rows[i, j]
    for i in range(lo, hi):
        for j in range(w):
            out[i, j] = counts[j] > 0
        if i + 1 + r < h:  # slide to row i + 1
            for j in range(w):
                counts[j] += rows[i + 1 + r, j]
        if i - r >= 0:
            for j in range(w):
                counts[j] -= rows[i - r, j]


def ring(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels outside ``mask`` within ``width`` pixels of it."""
    return dilate(mask, width) & ~mask


@njit(cache=True)
def _hole_and_ring(mask: np.ndarray, r: int):
    """(ys, xs) of the pixels in ``mask`` and of those outside it within ``r`` (a square: what
    :func:`ring` gives), both in row-major order, reading only the rows near the mask: a fill
    touches a few bands of a 12-24 Mpx photo, and full-size boolean planes cost more than it."""
    h, w = mask.shape
    hit = np.zeros(h, np.bool_)
    n_hole = 0
    for i in range(h):
        for j in range(w):
            if mask[i, j]:
                n_hole += 1
                hit[i] = True
    wide = np.zeros((h, w), np.bool_)  # each hit row dilated along itself
    for i in range(h):
        if hit[i]:
            _dilate_row(mask, i, r, wide)
    hy, hx = np.empty(n_hole, np.int64), np.empty(n_hole, np.int64)
    k = 0
    for i in range(h):
        if hit[i]:
            for j in range(w):
                if mask[i, j]:
                    hy[k], hx[k] = i, j
                    k += 1
    near = np.zeros(w, np.bool_)
    ry, rx = np.empty(0, np.int64), np.empty(0, np.int64)
    for sweep in range(2):  # count, then fill
        k = 0
        for i in range(h):
            lo, hi = max(i - r, 0), min(i + r, h - 1)
            any_hit = False
            for a in range(lo, hi + 1):
                if hit[a]:
                    any_hit = True
                    break
            if not any_hit:
                continue
            near[:] = False
            for a in range(lo, hi + 1):
                if hit[a]:
                    for j in range(w):
                        if wide[a, j]:
                            near[j] = True
            for j in range(w):
                if near[j] and not mask[i, j]:
                    if sweep == 1:
                        ry[k], rx[k] = i, j
                    k += 1
        if sweep == 0:
            ry, rx = np.empty(k, np.int64), np.empty(k, np.int64)
    return hy, hx, ry, rx


def _resize_float(a: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(a, np.float32), "F").resize(
        (width, height), Image.Resampling.BILINEAR))


def smooth_field(values: np.ndarray, known: np.ndarray, cell: int = 8, radius: int = 2) -> np.ndarray:
    """Normalised convolution at 1/``cell`` resolution, bilinearly upsampled: a smooth H×W×C field
    that matches ``values`` where ``known``. Cheap because the correction it carries is smooth."""
    h, w = known.shape
    hc, wc = -(-h // cell), -(-w // cell)
    pad = ((0, hc * cell - h), (0, wc * cell - w))
    k = np.pad(known.astype(np.float32), pad).reshape(hc, cell, wc, cell).sum(axis=(1, 3))
    out = np.empty(values.shape, np.float32)
    den = smooth(k, radius)
    for c in range(values.shape[2]):
        v = np.pad(values[..., c] * known, pad).reshape(hc, cell, wc, cell).sum(axis=(1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            field = np.where(den > 1e-9, smooth(v, radius) / den, 0.0)
        out[..., c] = _resize_float(field, wc * cell, hc * cell)[:h, :w]
    return out


def _cell_field(values: np.ndarray, ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int], cell: int = 8,
                radius: int = 2) -> np.ndarray:
    """:func:`smooth_field` at cell resolution, (rows, cols, C) float64, for values known at a few
    pixels (``ys``, ``xs``): cell sums by counting, nothing full-size."""
    hc, wc = -(-shape[0] // cell), -(-shape[1] // cell)
    flat = (ys // cell) * wc + xs // cell
    den = smooth(np.bincount(flat, minlength=hc * wc).astype(np.float64).reshape(hc, wc), radius)
    field = np.empty((hc, wc, values.shape[1]))
    for c in range(values.shape[1]):
        num = np.bincount(flat, weights=values[:, c], minlength=hc * wc).reshape(hc, wc)
        with np.errstate(invalid="ignore", divide="ignore"):
            field[..., c] = np.where(den > 1e-9, smooth(num, radius) / den, 0.0)
    return field


@njit(cache=True)
def _field_at(field: np.ndarray, y: int, x: int, c: int, cell: int) -> float:
    """The cell field read bilinearly at pixel (y, x) (cell centres as samples, edges clamped)."""
    hc, wc = field.shape[0], field.shape[1]
    fy = min(max((y + 0.5) / cell - 0.5, 0.0), hc - 1.0)
    fx = min(max((x + 0.5) / cell - 0.5, 0.0), wc - 1.0)
    y0, x0 = int(np.floor(fy)), int(np.floor(fx))
    y1, x1 = min(y0 + 1, hc - 1), min(x0 + 1, wc - 1)
    wy, wx = fy - y0, fx - x0
    return (field[y0, x0, c] * (1 - wx) + field[y0, x1, c] * wx) * (1 - wy) \
        + (field[y1, x0, c] * (1 - wx) + field[y1, x1, c] * wx) * wy


@njit(cache=True)
def _detail_at(out: np.ndarray, base: np.ndarray, field: np.ndarray, y: int, x: int, c: int, cell: int) -> float:
    """What the photo has at (y, x) beyond the thumbnail and the correction: the detail a fill
    carries in."""
    return float(out[y, x, c]) - float(base[y, x, c]) - _field_at(field, y, x, c, cell)


@njit(cache=True)
def _paint(out: np.ndarray, ys: np.ndarray, xs: np.ndarray, base: np.ndarray, field: np.ndarray, cell: int,
           hole: np.ndarray, reach: float) -> None:
    """out[y, x] = base[y, x] + the cell field there + the detail carried in from the nearest
    pixel outside ``hole`` above, below, left and right (:func:`_detail_at` there, weighted
    exp(-distance / ``reach``), up to 6 × ``reach`` away), rounded and clipped to 0..255, at
    each listed pixel (``ys``, ``xs``: the hole's pixels in row-major order). ``out`` holds the
    photo outside the hole. Columns are swept down and up once, rows read run by run."""
    h, w = hole.shape
    n_c = field.shape[2]
    n = ys.size
    add = np.zeros((n, n_c), np.float32)
    total = np.zeros(n, np.float32)  # the weights each pixel took
    far = int(np.ceil(6.0 * reach)) if reach > 0 else 0
    if far > 0:
        weight = np.exp(-np.arange(far + 1) / reach)
        row_start = np.zeros(h + 1, np.int64)
        for p in range(n):
            row_start[ys[p] + 1] += 1
        for y in range(h):
            row_start[y + 1] += row_start[y]
        near = np.full(w, -1, np.int64)
        near_val = np.zeros((w, n_c))
        known = np.zeros(w, np.bool_)  # near_val holds the detail at near[x]
        for sweep in range(2):  # down (the known pixel above), then up (below)
            near[:] = -1
            for i in range(h):
                y = i if sweep == 0 else h - 1 - i
                for p in range(row_start[y], row_start[y + 1]):
                    x = xs[p]
                    if near[x] >= 0 and abs(y - near[x]) <= far:
                        if not known[x]:
                            for c in range(n_c):
                                near_val[x, c] = _detail_at(out, base, field, near[x], x, c, cell)
                            known[x] = True
                        wgt = weight[abs(y - near[x])]
                        total[p] += wgt
                        for c in range(n_c):
                            add[p, c] += wgt * near_val[x, c]
                for x in range(w):
                    if not hole[y, x]:
                        near[x] = y
                        known[x] = False
        side_val = np.zeros(n_c)
        p = 0
        while p < n:  # runs along rows: the known pixels left and right of each
            q = p
            while q + 1 < n and ys[q + 1] == ys[p] and xs[q + 1] == xs[q] + 1:
                q += 1
            y = ys[p]
            for side in (xs[p] - 1, xs[q] + 1):
                if 0 <= side < w:
                    for c in range(n_c):
                        side_val[c] = _detail_at(out, base, field, y, side, c, cell)
                    for k in range(p, q + 1):
                        d = abs(xs[k] - side)
                        if d <= far:
                            total[k] += weight[d]
                            for c in range(n_c):
                                add[k, c] += weight[d] * side_val[c]
            p = q + 1
    for p in range(n):
        y, x = ys[p], xs[p]
        scale = 1.0 / total[p] if total[p] > 1.0 else 1.0  # near several sides: their weighted mean
        for c in range(n_c):
            off = np.float32(_field_at(field, y, x, c, cell) + scale * add[p, c])
            v = np.rint(np.float32(base[y, x, c]) + off)
            out[y, x, c] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))


DETAIL_REACH = 4.0  # pixels: the detail beside a hole fades into it as exp(-distance / this)


def fill_from_thumbnail(rgb: np.ndarray, mask: np.ndarray, thumb_up: np.ndarray, ring_px: int = 3,
                        reach: float = DETAIL_REACH) -> np.ndarray:
    """Replace ``mask`` pixels with the upsampled thumbnail, corrected to meet the pixels around,
    and the detail of the nearest pixel outside the hole above, below, left and right of each
    (what the photo has there beyond the thumbnail and the correction) carried in, fading over
    ``reach`` pixels (0: none; where the weights sum past 1, their weighted mean). A damaged
    stretch is a band one or two MCUs tall: an edge that crosses it and the texture beside it
    continue a few pixels in, which a thumbnail 12-30× smaller cannot show."""
    if not mask.any():
        return rgb.copy()
    my, mx, ey, ex = _hole_and_ring(np.ascontiguousarray(mask, np.bool_), int(ring_px))
    diff = rgb[ey, ex].astype(np.float32) - thumb_up[ey, ex]
    field = _cell_field(diff, ey, ex, mask.shape)
    out = rgb.copy()
    _paint(out, my, mx, np.ascontiguousarray(thumb_up), field, 8, np.ascontiguousarray(mask), float(reach))
    return out


AGREE_SHARE = 0.99  # the share of trusted cells whose distance to the thumbnail sets how far a damaged one may lie
AGREE_CELLS = 256  # trusted cells needed to measure it


def thumbnail_spread(rgb: np.ndarray, mask: np.ndarray, thumb_up: np.ndarray, cell: tuple[int, int]) -> float | None:
    """How far the luma means of the cells SCA trusts (no pixel in ``mask``) lie from the
    up-sampled thumbnail's: the ``AGREE_SHARE`` quantile, in levels; None with fewer than
    ``AGREE_CELLS`` of them. A thumbnail made from the photo itself lies within ~12 levels of
    every cell; a camera's own (its tone curve, sharpening, 20× smaller) 15-45 levels of one
    cell in a hundred, and a damaged cell that far off it is as likely right as not."""
    ch, cw = cell
    rows, cols = mask.shape[0] // ch, mask.shape[1] // cw
    if not rows or not cols:
        return None
    rgb, thumb_up, mask = (np.ascontiguousarray(a) for a in (rgb, thumb_up, mask))
    apart = np.concatenate(over_rows(lambda a, b: _trusted_apart(rgb[a * ch: b * ch], thumb_up[a * ch: b * ch],
                                                                 mask[a * ch: b * ch], ch, cw, b - a, cols),
                                     rows, min_rows=4))
    if apart.size < AGREE_CELLS:
        return None
    return float(np.quantile(apart, AGREE_SHARE))


@njit(cache=True, nogil=True)
def _trusted_apart(rgb: np.ndarray, ref: np.ndarray, mask: np.ndarray, ch: int, cw: int, rows: int,
                   cols: int) -> np.ndarray:
    """Per whole ``ch`` × ``cw`` cell with no pixel in ``mask`` (row-major): how far its JFIF
    luma mean in ``rgb`` lies from that in ``ref``; cells the mask touches are not read."""
    m = JFIF_YCC
    out = np.empty(rows * cols)
    n = 0
    for r in range(rows):
        for c in range(cols):
            hit = False
            for y in range(r * ch, r * ch + ch):
                for x in range(c * cw, c * cw + cw):
                    if mask[y, x]:
                        hit = True
                        break
                if hit:
                    break
            if hit:
                continue
            a, b = 0.0, 0.0
            for y in range(r * ch, r * ch + ch):
                for x in range(c * cw, c * cw + cw):
                    a += m[0, 0] * rgb[y, x, 0] + m[0, 1] * rgb[y, x, 1] + m[0, 2] * rgb[y, x, 2]
                    b += m[0, 0] * ref[y, x, 0] + m[0, 1] * ref[y, x, 1] + m[0, 2] * ref[y, x, 2]
            out[n] = abs(a / (ch * cw) - b / (ch * cw))
            n += 1
    return out[:n]


def disagreeing(rgb: np.ndarray, mask: np.ndarray, thumb_up: np.ndarray, cell: tuple[int, int] = (16, 16),
                tolerance: float = 12.0, flat: float = 1.0, loose: np.ndarray | None = None,
                loose_tolerance: float = 24.0) -> np.ndarray:
    """The damaged pixels (H×W bool, within ``mask``) that :func:`fill_disagreeing` replaces: those
    of the cells (MCUs) that hold nothing decoded (a flat neutral block: luma variance at most
    ``flat``) or whose mean is more than ``tolerance`` levels off the upsampled thumbnail's in
    some JFIF component. The mask marks what SCA could not verify, which is mostly content that is
    right; the thumbnail, 12.8× smaller, is a worse guess than decoded content that agrees with
    it. ``loose``: cells (rows × cols bool) marked only as a precaution (placed in a confident
    run, but next to garbage or unseen by the thumbnail), judged with ``loose_tolerance``: such a
    cell is right far more often than one SCA found wrong or could not place. These pixels are
    also what the GCA network restores: it was trained to turn thumbnail-filled damage into
    detail, and the decoded content the fill keeps is better left exact."""
    if not mask.any():
        return np.zeros_like(mask)
    h, w = mask.shape
    ch, cw = cell
    rows, cols = -(-h // ch), -(-w // cw)
    hit = cells_hit(np.ascontiguousarray(mask, np.bool_), ch, cw)  # only cells with damage are judged
    r, c = np.nonzero(hit)
    grid = np.zeros((rows, cols), bool)
    tol = np.full(r.size, float(tolerance))
    if loose is not None:
        lr, lc = min(loose.shape[0], rows), min(loose.shape[1], cols)
        soft = np.zeros((rows, cols), bool)
        soft[:lr, :lc] = loose[:lr, :lc]
        tol[soft[r, c]] = loose_tolerance
    grid[r, c] = _judge_cells(rgb, np.ascontiguousarray(thumb_up), r, c, ch, cw, tol, flat)
    return within_cells(np.ascontiguousarray(mask, np.bool_), grid, ch, cw)


@njit(cache=True)
def cells_hit(mask: np.ndarray, ch: int, cw: int) -> np.ndarray:
    """Per ``ch`` × ``cw`` cell (rows × cols, the last ones overhanging the image), whether any of
    its pixels is in ``mask``."""
    h, w = mask.shape
    rows, cols = -(-h // ch), -(-w // cw)
    out = np.zeros((rows, cols), np.bool_)
    for y in range(h):
        r = y // ch
        for x in range(w):
            if mask[y, x]:
                out[r, x // cw] = True
    return out


@njit(cache=True)
def within_cells(mask: np.ndarray, grid: np.ndarray, ch: int, cw: int) -> np.ndarray:
    """``mask`` where its cell in ``grid`` (rows × cols of ``ch`` × ``cw`` cells) is set."""
    h, w = mask.shape
    out = np.zeros((h, w), np.bool_)
    for y in range(h):
        r = y // ch
        for x in range(w):
            out[y, x] = mask[y, x] and grid[r, x // cw]
    return out


def fill_disagreeing(rgb: np.ndarray, mask: np.ndarray, thumb_up: np.ndarray, cell: tuple[int, int] = (16, 16),
                     tolerance: float = 12.0, flat: float = 1.0, loose: np.ndarray | None = None,
                     loose_tolerance: float = 24.0) -> np.ndarray:
    """:func:`fill_from_thumbnail` for only the damaged pixels :func:`disagreeing` picks (the
    cells that are blank or disagree with the thumbnail); the rest of the mask keeps its decoded
    content."""
    return fill_from_thumbnail(rgb, disagreeing(rgb, mask, thumb_up, cell, tolerance, flat, loose, loose_tolerance),
                               thumb_up)


@njit(cache=True)
def _judge_cells(rgb: np.ndarray, ref: np.ndarray, rows: np.ndarray, cols: np.ndarray, ch: int, cw: int,
                 tolerance: np.ndarray, flat: float) -> np.ndarray:
    """Per listed cell: blank (luma variance ≤ ``flat``) or its mean more than ``tolerance`` (per cell) off
    ``ref``'s in some JFIF component (the means of a linear map are the map of the means). Cells
    overhanging the image repeat its edge pixels."""
    h, w = rgb.shape[:2]
    m = JFIF_YCC
    out = np.zeros(rows.size, np.bool_)
    luma = np.empty(ch * cw)
    for q in range(rows.size):
        d = np.zeros(3)
        k = 0
        for dy in range(ch):
            y = min(rows[q] * ch + dy, h - 1)
            for dx in range(cw):
                x = min(cols[q] * cw + dx, w - 1)
                for i in range(3):
                    d[i] += float(rgb[y, x, i]) - float(ref[y, x, i])
                luma[k] = m[0, 0] * rgb[y, x, 0] + m[0, 1] * rgb[y, x, 1] + m[0, 2] * rgb[y, x, 2]
                k += 1
        n = ch * cw
        for j in range(3):
            if abs((m[j, 0] * d[0] + m[j, 1] * d[1] + m[j, 2] * d[2]) / n) > tolerance[q]:
                out[q] = True
        mean = luma.mean()
        var = 0.0
        for i in range(n):
            var += (luma[i] - mean) ** 2
        if var / n <= flat:
            out[q] = True
    return out


def breaking_cells(rgb: np.ndarray, mask: np.ndarray, region: np.ndarray, loose: np.ndarray,
                   cell: tuple[int, int], limit: float) -> np.ndarray:
    """The pixels (H×W bool) of the precautions (``loose``: cells, rows × cols) in ``mask`` and
    not yet in ``region`` whose luma step to the rows of cells above or below is over ``limit``
    × their inner steps (:func:`_seam_ratio`)."""
    h, w = mask.shape
    ch, cw = cell
    rows, cols = -(-h // ch), -(-w // cw)
    hit = cells_hit(mask & ~region, ch, cw)
    soft = np.zeros((rows, cols), bool)
    lr, lc = min(loose.shape[0], rows), min(loose.shape[1], cols)
    soft[:lr, :lc] = loose[:lr, :lc]
    r, c = np.nonzero(hit & soft)
    grid = np.zeros((rows, cols), bool)
    if r.size:
        grid[r, c] = _seam_ratio(rgb, r, c, ch, cw) > limit
    return within_cells(np.ascontiguousarray(mask, np.bool_), grid, ch, cw)


@njit(cache=True)
def _seam_ratio(rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray, ch: int, cw: int) -> np.ndarray:
    """Per listed cell: the mean luma step across its top or its bottom edge (the larger) over
    1 + the mean step between neighbouring pixels inside it. Content the decoder read out of
    step at a run's end, or a stretch placed off, breaks at the rows above and below while its
    level (all the fill's agreement test sees) can still match; content in place continues."""
    h, w = rgb.shape[:2]
    m = JFIF_YCC
    out = np.zeros(rows.size)
    for q in range(rows.size):
        y0, x0 = rows[q] * ch, cols[q] * cw
        y1, x1 = min(y0 + ch, h), min(x0 + cw, w)
        if y1 - y0 < 2 or x1 - x0 < 2:
            continue
        inner, n_in = 0.0, 0
        for y in range(y0, y1):
            for x in range(x0, x1):
                v = m[0, 0] * rgb[y, x, 0] + m[0, 1] * rgb[y, x, 1] + m[0, 2] * rgb[y, x, 2]
                if x + 1 < x1:
                    inner += abs(m[0, 0] * rgb[y, x + 1, 0] + m[0, 1] * rgb[y, x + 1, 1] + m[0, 2] * rgb[y, x + 1, 2] - v)
                    n_in += 1
                if y + 1 < y1:
                    inner += abs(m[0, 0] * rgb[y + 1, x, 0] + m[0, 1] * rgb[y + 1, x, 1] + m[0, 2] * rgb[y + 1, x, 2] - v)
                    n_in += 1
        worst = 0.0
        for ya, yb in ((y0 - 1, y0), (y1 - 1, y1)):
            if ya < 0 or yb >= h:
                continue
            step = 0.0
            for x in range(x0, x1):
                step += abs(m[0, 0] * (float(rgb[yb, x, 0]) - rgb[ya, x, 0]) + m[0, 1] * (float(rgb[yb, x, 1]) - rgb[ya, x, 1])
                            + m[0, 2] * (float(rgb[yb, x, 2]) - rgb[ya, x, 2]))
            worst = max(worst, step / (x1 - x0))
        out[q] = worst / (1.0 + inner / max(n_in, 1))
    return out


def inpaint(rgb: np.ndarray, mask: np.ndarray, reach: float = DETAIL_REACH) -> np.ndarray:
    """Fill ``mask`` from the surrounding pixels (push-pull normalised convolution over a pyramid of
    cell sizes: each level fills what the finer ones could not reach), with the detail beside the
    hole carried in as :func:`fill_from_thumbnail` does (what the photo has there beyond the
    finest level's smooth estimate)."""
    if not mask.any():
        return rgb.copy()
    known = ~mask
    values = rgb.astype(np.float32)
    estimate = np.zeros_like(values)
    have = np.zeros(mask.shape, bool)
    cell = 2
    while True:
        field = smooth_field(values, known, cell=cell, radius=1)
        support = dilate(known, 2 * cell)
        take = support & ~have
        estimate[take] = field[take]
        have |= support
        if have.all() or cell > max(mask.shape):
            break
        cell *= 2
    out = rgb.copy()
    ys, xs = np.nonzero(mask)
    _paint(out, ys, xs, estimate, np.zeros((1, 1, 3)), 8, np.ascontiguousarray(mask), float(reach))
    return out
