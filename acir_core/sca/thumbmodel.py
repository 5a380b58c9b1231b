"""How a thumbnail is made from our image, as a linear map: Pillow's antialiased bicubic resize.

A thumbnail pixel is a fixed weighted sum of the photo's pixels, so summing Pillow's weights
(a = -0.5, support scaled by the reduction) over each MCU's pixels gives the share of every MCU in
every thumbnail pixel: the design matrix of the DC fit (:mod:`acir_core.sca.thumbdc`), built per
MCU rather than per pixel. :class:`Downsample` reproduces Pillow's resize exactly, so the fit
compares like with like.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

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


JFIF_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
"""RGB -> YCbCr (JFIF), less the chroma offsets :data:`JFIF_OFFSETS`."""
JFIF_OFFSETS = np.array([0.0, 128.0, 128.0])


def jfif_planes(rgb: np.ndarray, color: str) -> list[np.ndarray]:
    """RGB -> the frame's colour space (JFIF YCbCr, plain RGB, or grey), float."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    if color == "rgb":
        return [r, g, b]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    if color == "grey":
        return [y]
    return [y, -0.168736 * r - 0.331264 * g + 0.5 * b + 128, 0.5 * r - 0.418688 * g - 0.081312 * b + 128]


@njit(cache=True)
def _cell_sums(rgb: np.ndarray, rows: int, cols: int, ch: int, cw: int) -> np.ndarray:
    """Per cell of a rows × cols grid of ch × cw pixels, the sum of each channel, the picture's
    last row and column repeated to cover the grid."""
    h, w = rgb.shape[0], rgb.shape[1]
    out = np.zeros((rows, cols, 3))
    for y in range(rows * ch):
        yy = min(y, h - 1)
        r = y // ch
        for x in range(cols * cw):
            xx = min(x, w - 1)
            c = x // cw
            for k in range(3):
                out[r, c, k] += rgb[yy, xx, k]
    return out


def block_levels(rgb: np.ndarray, color: str, grids: list[tuple[int, int]],
                 scales: list[tuple[int, int]]) -> list[np.ndarray]:
    """Each component's mean sample level per block of a full-size RGB picture (e.g. the thumbnail
    up-sampled) in the frame's colour space: a block of a component sampled ``(sy, sx)`` times
    coarser covers 8·sy × 8·sx pixels; the edges are extended to cover the grid. The colour
    transform is affine, so it is taken of the block means rather than of every pixel."""
    rgb = np.ascontiguousarray(rgb)
    planes: dict[tuple[int, int, int, int], list[np.ndarray]] = {}  # components on one grid share a pass
    out = []
    for ci, ((rows, cols), (sy, sx)) in enumerate(zip(grids, scales)):
        key = (rows, cols, sy, sx)
        if key not in planes:
            planes[key] = jfif_planes(_cell_sums(rgb, rows, cols, 8 * sy, 8 * sx) / float(64 * sy * sx), color)
        out.append(planes[key][ci])
    return out


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


def weight_support(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample (row of ``weights``), the [lo, hi) span of its nonzero weights."""
    nz = weights != 0
    lo = np.argmax(nz, axis=1)
    hi = weights.shape[1] - np.argmax(nz[:, ::-1], axis=1)
    return lo.astype(np.int64), np.maximum(hi, lo).astype(np.int64)


@njit(cache=True)
def footprints(ry: np.ndarray, rx: np.ndarray, rlo, rhi, clo, chi, var: np.ndarray, use: np.ndarray,
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
