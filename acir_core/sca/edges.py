"""What placing runs reads of each MCU: its border lines, its mean, and where it sits.

Runs are judged by how their MCUs' edges join the content above and to the left, so only the two
outermost sample rows and columns of every MCU are computed (float IDCT, level-shifted,
unclipped), and MCUs are handled in decode order: a scan's block grid is reshaped MCU-major.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from PIL import Image

from acir_core.bands import over_rows
from acir_core.jpeg.decoder import DecodeResult, ScanResult
from acir_core.sca.thumbmodel import jfif_planes

DCT = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)]
                for u in range(8)], dtype=np.float32)
"""The 8-point DCT-II basis, DCT[u, x] (orthonormal), as float32 values."""


def scan_geometry(result: DecodeResult, sr: ScanResult):
    """Whether the scan is interleaved, and per scan component (frame index, blocks per MCU across,
    down): a non-interleaved scan's MCU is one block."""
    frame = result.frame
    inter = len(sr.components) > 1
    comps = []
    for ci in sr.components:
        c = frame.components[ci]
        h, v = (c.h, c.v) if inter else (1, 1)
        comps.append((ci, h, v))
    return inter, comps


def mcu_major(coefs: np.ndarray, rows: int, cols: int, v: int, h: int) -> np.ndarray:
    """(rows*v, cols*h, 64) block grid -> (rows*cols, v, h, 64) MCU-major copy."""
    a = coefs[: rows * v, : cols * h].reshape(rows, v, cols, h, 64)
    return a.transpose(0, 2, 1, 3, 4).reshape(rows * cols, v, h, 64).copy()


def mcu_grid(mcus: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`mcu_major`."""
    n, v, h, _ = mcus.shape
    return mcus.reshape(rows, cols, v, h, 64).transpose(0, 2, 1, 3, 4).reshape(rows * v, cols * h, 64)


@dataclass(frozen=True)
class Edges:
    """What placing runs reads of one component's MCUs (float samples, level-shifted, unclipped):
    per decoded MCU its two top and two bottom sample rows (N, width), its two left and two right
    columns (N, height), and its mean. Only the MCU's border is ever compared, so the interior is
    never computed."""

    top: np.ndarray
    top2: np.ndarray
    bottom: np.ndarray
    bottom2: np.ndarray
    left: np.ndarray
    left2: np.ndarray
    right: np.ndarray
    right2: np.ndarray
    mean: np.ndarray

    def extremes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per MCU the highest and the lowest sample on its border (its outer lines)."""
        return _extremes(self.top, self.bottom, self.left, self.right)

    @classmethod
    def of(cls, mcus: np.ndarray, qt: np.ndarray) -> "Edges":
        return cls(*edge_lines(mcus, np.asarray(qt, np.float64).reshape(64), DCT.astype(np.float64)))


def edge_lines(mcus: np.ndarray, qt: np.ndarray, dct: np.ndarray) -> tuple[np.ndarray, ...]:
    """(top, top2, bottom, bottom2, left, left2, right, right2, mean) of every MCU (N, v, h, 64
    coefficients): :func:`_edge_lines_into` over bands of MCUs on the cores (:mod:`acir_core.bands`)."""
    n, v, h, _ = mcus.shape
    rows = [np.empty((n, 8 * h)) for _ in range(4)]
    cols = [np.empty((n, 8 * v)) for _ in range(4)]
    mean = np.empty(n)
    lines = rows + cols
    over_rows(lambda a, b: _edge_lines_into(mcus[a:b], qt, dct, *(x[a:b] for x in lines), mean[a:b]), n,
              min_rows=256)
    return (*lines, mean)


@njit(cache=True)
def _extremes(top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray):
    """:meth:`Edges.extremes`, one pass over each MCU's four lines."""
    n = top.shape[0]
    hi, lo = np.empty(n), np.empty(n)
    for i in range(n):
        a, b = top[i, 0], top[i, 0]
        for line in (top, bottom, left, right):
            for j in range(line.shape[1]):
                a = max(a, line[i, j])
                b = min(b, line[i, j])
        hi[i], lo[i] = a, b
    return hi, lo


@njit(cache=True, nogil=True)
def _edge_lines_into(mcus, qt, dct, top, top2, bottom, bottom2, left, left2, right, right2, mean) -> None:
    """The border lines and means of every MCU (N, v, h, 64 coefficients) by the float IDCT,
    computed for those lines alone: a sample row y of a block is Σ_w (Σ_u D[u,y]·X[u,w])·D[w,x],
    a column the same the other way, so a line costs two 8×8 passes instead of the block's
    whole transform, and coefficient rows and columns past the last nonzero one are skipped
    (their terms are exact zeros: the sums are the same). A block's mean is its DC·q/8."""
    n, v, h, _ = mcus.shape
    mean[:] = 128.0
    x = np.empty((8, 8))
    part = np.empty(8)
    for i in range(n):
        for a in range(v):
            for b in range(h):
                blk = mcus[i, a, b]
                last_u, last_w = -1, -1  # the last nonzero coefficient row and column
                for u in range(8):
                    for w in range(8):
                        x[u, w] = blk[u * 8 + w] * qt[u * 8 + w]
                        if x[u, w] != 0.0:
                            last_u = u
                            last_w = max(last_w, w)
                mean[i] += x[0, 0] / 8.0 / (v * h)
                for y in range(8):  # sample rows: 0, 1 of a top block, 7, 6 of a bottom one
                    if not ((a == 0 and y < 2) or (a == v - 1 and y > 5)):
                        continue
                    for w in range(last_w + 1):
                        s = 0.0
                        for u in range(last_u + 1):
                            s += dct[u, y] * x[u, w]
                        part[w] = s
                    line = top if y == 0 else top2 if y == 1 else bottom if y == 7 else bottom2
                    for c in range(8):
                        s = 128.0
                        for w in range(last_w + 1):
                            s += part[w] * dct[w, c]
                        line[i, b * 8 + c] = s
                for c in range(8):  # sample columns: 0, 1 of a left block, 7, 6 of a right one
                    if not ((b == 0 and c < 2) or (b == h - 1 and c > 5)):
                        continue
                    for u in range(last_u + 1):
                        s = 0.0
                        for w in range(last_w + 1):
                            s += x[u, w] * dct[w, c]
                        part[u] = s
                    line = left if c == 0 else left2 if c == 1 else right if c == 7 else right2
                    for y in range(8):
                        s = 128.0
                        for u in range(last_u + 1):
                            s += dct[u, y] * part[u]
                        line[i, a * 8 + y] = s


def thumb_means(thumb: np.ndarray, result: DecodeResult, sr: ScanResult, comps) -> np.ndarray:
    """Per MCU and scan component, the thumbnail's value there in the frame's colour space: the
    thumbnail converted (JFIF equations), then resampled to the MCU grid of the component."""
    planes = [p.astype(np.float32) for p in jfif_planes(thumb, result.frame.color)]
    out = np.zeros((sr.mcu_rows * sr.mcu_cols, len(comps)), np.float64)
    for k, (ci, h, v) in enumerate(comps):
        out[:, k] = grid_means(planes[min(ci, len(planes) - 1)], result, sr, ci, h, v)
    return out


def grid_means(plane: np.ndarray, result: DecodeResult, sr: ScanResult, ci: int, h: int, v: int) -> np.ndarray:
    """``plane`` (a thumbnail-sized float array) resampled (bicubic) to the MCU grid of frame
    component ``ci`` (``h``×``v`` blocks per MCU in the scan), one value per MCU in decode order."""
    frame = result.frame
    c = frame.components[ci]
    ph = 8 * (frame.max_v // c.v) * v  # pixels per MCU
    pw = 8 * (frame.max_h // c.h) * h
    # the image area the MCU grid covers, in thumbnail pixels: the last MCUs overhang the image,
    # so the thumbnail is extended by repeating its edge (Pillow refuses a box past the image)
    th, tw = plane.shape[:2]
    bw, bh = sr.mcu_cols * pw * tw / frame.width, sr.mcu_rows * ph * th / frame.height
    arr = plane.astype(np.float32)
    extra = (max(int(np.ceil(bh - th - 1e-6)), 0), max(int(np.ceil(bw - tw - 1e-6)), 0))
    if any(extra):
        arr = np.pad(arr, ((0, extra[0]), (0, extra[1])), mode="edge")
    box = (0.0, 0.0, min(bw, arr.shape[1]), min(bh, arr.shape[0]))
    grid = Image.fromarray(np.ascontiguousarray(arr), "F").resize((sr.mcu_cols, sr.mcu_rows),
                                                                   Image.Resampling.BICUBIC, box=box)
    return np.asarray(grid, np.float64).reshape(-1)


def roughness(edges: list[Edges], cols: int, lag: int = 0) -> np.ndarray:
    """Per decoded MCU: mean absolute step across its top edge to the MCU decoded one row earlier
    (``lag`` MCUs later than that: where it belongs if an MCU was lost or gained in between)."""
    n = edges[0].mean.size
    out = np.zeros(n)
    lo = cols + max(-lag, 0)
    hi = n - max(lag, 0)
    if hi <= lo:  # a single MCU row: nothing above
        return out
    for e in edges:
        out[lo:hi] += np.mean(np.abs(e.top[lo:hi] - e.bottom[lo - cols + lag : hi - cols + lag]), axis=1)
    return out / len(edges)


def misalignment(edges: list[Edges], cols: int, rough: np.ndarray | None = None) -> np.ndarray:
    """Per decoded MCU: how much better its top edge joins the MCU one place left or right of the
    one decoded a row earlier than that MCU itself. After a silent loss or gain of one MCU the
    next row's worth of MCUs join their true neighbours there, so this rises for one row; in
    texture the plain roughness (:func:`roughness`, ``rough`` when already computed) is too
    noisy to show such a break."""
    r0 = roughness(edges, cols) if rough is None else rough
    best = np.minimum(roughness(edges, cols, -1), roughness(edges, cols, 1))
    out = r0 - best
    out[: cols + 1] = 0.0
    out[-1] = 0.0
    return out




def inward(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A block's edge samples extrapolated half a pixel out across the edge from its two nearest
    lines. The step across an edge is one side's :func:`inward` minus the other's
    :func:`outward`: a linear gradient across the edge, common in skies and walls, then adds no
    bias to the DC estimate."""
    return first - 0.5 * (second - first)


def outward(last: np.ndarray, before: np.ndarray) -> np.ndarray:
    """The neighbour's side of :func:`inward`: its last line extrapolated half a pixel on."""
    return last + 0.5 * (last - before)
