"""Pixels from quantised coefficients: IDCT, upsampling and colour conversion as libjpeg-turbo.

Its own module (and function) so that SCA can edit coefficients (shift blocks, correct DC) and
re-render exactly what a decoder would have shown for those coefficients.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acir_core.bands import over_rows
from acir_core.jpeg.color import ycc_to_rgb
from acir_core.jpeg.idct import RANGE_LIMIT, idct_changed_blocks, idct_islow_plane
from acir_core.jpeg.smoothing import smoothed
from acir_core.jpeg.tables import Frame
from acir_core.jpeg.upsample import upsample


def component_plane(coefs: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """One component's samples (block rows*8, block cols*8) from its (rows, cols, 64) coefficients."""
    rows, cols = coefs.shape[:2]
    out = np.empty((rows * 8, cols * 8), np.uint8)
    flat = np.ascontiguousarray(coefs.reshape(rows * cols, 64), dtype=np.int16)
    qt = np.ascontiguousarray(qt, dtype=np.int64)

    def band(lo: int, hi: int) -> None:
        idct_islow_plane(flat[lo * cols: hi * cols], qt, hi - lo, cols, RANGE_LIMIT, out[8 * lo: 8 * hi])

    over_rows(band, rows, min_rows=4)
    return out


@dataclass
class SamplePlanes:
    """Per component the samples (block rows·8, block cols·8) of every block rendered so far and
    the coefficients they show, kept between renders of one image: SCA's DC fixes change a few
    chunks of the rows it renders again, and the inverse DCT of the blocks that did not change
    (most of those rows) need not be repeated. The last rendered coefficients of a
    block are compared with the new ones, so a caller needs no record of what it edited."""

    samples: list[np.ndarray]
    kept: list[np.ndarray]  # (block rows, block cols, 64) int16: what samples show where valid
    valid: list[np.ndarray]  # (block rows, block cols) bool

    @classmethod
    def empty(cls, coefficients: tuple[np.ndarray, ...]) -> "SamplePlanes":
        """Planes for coefficient grids of these shapes, with no block rendered yet."""
        return cls([np.empty((c.shape[0] * 8, c.shape[1] * 8), np.uint8) for c in coefficients],
                   [np.empty(c.shape, np.int16) for c in coefficients],
                   [np.zeros(c.shape[:2], bool) for c in coefficients])

    def rows(self, ci: int, coefs: np.ndarray, qt: np.ndarray, b0: int, b1: int) -> np.ndarray:
        """Component ``ci``'s samples of block rows [b0, b1) for ``coefs`` (its whole grid), after
        transforming the blocks there that changed."""
        grid = np.ascontiguousarray(coefs[b0:b1], dtype=np.int16)
        # blocks compare as 16 uint64 words: views made here, where they are free, not in the kernel
        words, kept = grid.view(np.uint64), self.kept[ci][b0:b1].view(np.uint64)
        valid, samples = self.valid[ci][b0:b1], self.samples[ci][8 * b0: 8 * b1]
        qt = np.ascontiguousarray(qt, dtype=np.int64).reshape(64)

        def band(lo: int, hi: int) -> None:
            idct_changed_blocks(grid[lo:hi], words[lo:hi], kept[lo:hi], valid[lo:hi], qt, RANGE_LIMIT,
                                samples[8 * lo: 8 * hi])

        over_rows(band, b1 - b0, min_rows=4)
        return samples


def render(frame: Frame, coefficients: tuple[np.ndarray, ...], qtables: tuple[np.ndarray, ...],
           planes: SamplePlanes | None = None, bands: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """H×W×3 uint8 RGB from per-component coefficient grids (natural order) and their quantisers.

    Greyscale frames give three equal channels, as Pillow's ``convert("RGB")`` of an "L" image.
    ``planes``: samples kept from earlier renders of the same image (:class:`SamplePlanes`), which
    this one reuses where the coefficients are the same and updates elsewhere. ``bands``: a
    progressive frame's per-block masks of the coefficients received; blocks that never received
    their lowest AC show it estimated from the DCs around them (:func:`acir_core.jpeg.smoothing.smoothed`).
    """
    coefficients = smoothed(frame, coefficients, bands, qtables)
    return _render_band(frame, coefficients, qtables, 0, -(-frame.height // (8 * frame.max_v)), planes)


def _vertical_context(frame: Frame) -> int:
    """MCU rows a changed row reaches across: 1 where chroma is upsampled vertically."""
    return int(len(frame.components) > 1 and any(frame.max_v // c.v > 1 for c in frame.components))


def _stretches(flags: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) of every run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _merged(stretches: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Stretches closer than ``gap`` + 1 rows joined into one: their context rows would overlap,
    and rendering the unchanged rows between them once costs less than the context twice (after
    a thumbnail fit the changed MCU rows often lie only a row or two apart). Rows in between
    render to what they already show, the image being the render of the same coefficients there."""
    out: list[tuple[int, int]] = []
    for a, b in stretches:
        if out and a - out[-1][1] <= gap:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _changed_mcu_rows(frame: Frame, changed: np.ndarray) -> np.ndarray:
    n_rows = -(-frame.height // (8 * frame.max_v))
    out = np.zeros(n_rows, bool)
    out[: min(n_rows, changed.size)] = changed[:n_rows]
    return out


def rows_redone(frame: Frame, changed: np.ndarray) -> np.ndarray:
    """The pixel rows (H,) :func:`render_rows` rewrites for these changed MCU rows: theirs and,
    where chroma is upsampled vertically (its filter reads one sample row across), the one pixel
    row on either side of each stretch that the change reaches."""
    cell, ctx = 8 * frame.max_v, _vertical_context(frame)
    out = np.zeros(frame.height, bool)
    for a, b in _stretches(_changed_mcu_rows(frame, changed)):
        out[max(a * cell - ctx, 0): b * cell + ctx] = True
    return out


def render_rows(frame: Frame, coefficients: tuple[np.ndarray, ...], qtables: tuple[np.ndarray, ...],
                rgb: np.ndarray, changed: np.ndarray, *, in_place: bool = False,
                planes: SamplePlanes | None = None, bands: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """``rgb`` (the render of other coefficients) with the MCU rows flagged in ``changed`` (one
    per 8·max_v pixel rows) rendered again from ``coefficients``: what :func:`render` gives when
    only those rows' coefficients differ. SCA's last DC steps touch a few rows, and a whole render
    costs as much as the rest of a refinement round. Where chroma is upsampled vertically, the
    filter reads one sample row across MCU rows: each stretch is rendered with one MCU row of
    context on either side, and the pixel row next to it on either side is rewritten too.
    ``in_place``: write into ``rgb`` itself (a caller that owns it saves a whole-image copy);
    ``planes``, ``bands``: as for :func:`render` (where low AC is estimated, from the DCs of the
    rows around: the rows next to a changed one are rendered again too)."""
    out = rgb if in_place else rgb.copy()
    cell = 8 * frame.max_v
    n_rows = -(-frame.height // cell)
    ctx = _vertical_context(frame)
    rows = _changed_mcu_rows(frame, changed)
    estimated = smoothed(frame, coefficients, bands, qtables)
    if estimated is not coefficients:
        coefficients = estimated
        rows = rows | np.concatenate([rows[1:], [False]]) | np.concatenate([[False], rows[:-1]])
    for a, b in _merged(_stretches(rows), 2 * ctx):
        lo, hi = max(a - ctx, 0), min(b + ctx, n_rows)
        band = _render_band(frame, coefficients, qtables, lo, hi, planes)
        y0, y1 = max(a * cell - ctx, 0), min(b * cell + ctx, frame.height)
        out[y0:y1] = band[y0 - lo * cell: y1 - lo * cell]
    return out


def _render_band(frame: Frame, coefficients: tuple[np.ndarray, ...], qtables: tuple[np.ndarray, ...],
                 lo: int, hi: int, kept: SamplePlanes | None = None) -> np.ndarray:
    """Pixel rows of MCU rows [lo, hi) (clipped to the image), rendered as if they were the whole
    image: right except in the first and last MCU row where those are not the image's own."""
    cell = 8 * frame.max_v
    y0, y1 = lo * cell, min(hi * cell, frame.height)
    planes = []
    for ci, (coefs, qt) in enumerate(zip(coefficients, qtables)):
        comp = frame.components[ci]
        cw, ch = frame.comp_size(ci)
        b0, b1 = lo * comp.v, min(hi * comp.v, coefs.shape[0])  # block rows of the band
        plane = component_plane(coefs[b0:b1], qt) if kept is None else kept.rows(ci, coefs, qt, b0, b1)
        band_h = max(min(ch - 8 * b0, plane.shape[0]), 1)
        planes.append(upsample(plane, cw, band_h, frame.max_h // comp.h, frame.max_v // comp.v, frame.width,
                               y1 - y0))
    if len(planes) == 1:
        return np.repeat(planes[0][:, :, None], 3, axis=2)
    if frame.color == "rgb":
        return np.ascontiguousarray(np.stack(planes, axis=-1))
    out = np.empty((y1 - y0, frame.width, 3), np.uint8)
    y, cb, cr = planes
    over_rows(lambda a, b: ycc_to_rgb(y[a:b], cb[a:b], cr[a:b], out[a:b]), y1 - y0)
    return out
