"""Pixels back to quantised coefficients, for the MCUs of a repaired JPEG that acir made up.

The inverse of :mod:`acir_core.jpeg.render` for whole MCUs of an RGB image: JFIF colour
conversion (or none for RGB and grey files), box down-sampling of the chroma components to
their sampling factors (as libjpeg's encoder does), the orthonormal 8×8 DCT-II (which is
T.81's FDCT, A.3.3) and rounding to the file's own quantisation steps. Done in float64 over
batches of MCUs; only made-up MCUs come here, so no integer-exact encoder path is needed.
"""
from __future__ import annotations

import numpy as np

from acir_core.jpeg.tables import Frame

_U = np.arange(8)
DCT = np.sqrt(2 / 8) * np.cos((2 * _U[None, :] + 1) * _U[:, None] * np.pi / 16)
DCT[0] /= np.sqrt(2)
BATCH_MCUS = 4096

_YCC = np.array([[0.299, 0.587, 0.114],
                 [-0.168735892, -0.331264108, 0.5],
                 [0.5, -0.418687589, -0.081312411]])


def colour_planes(tiles: np.ndarray, color: str) -> np.ndarray:
    """(k, h, w, 3) uint8 RGB tiles -> (k, h, w, n) float samples in the frame's colour space."""
    t = tiles.astype(np.float64)
    if color == "rgb":
        return t
    ycc = t @ _YCC.T
    if color == "grey":
        return ycc[..., :1]
    ycc[..., 1:] += 128.0
    return ycc


def forward_dct(blocks: np.ndarray) -> np.ndarray:
    """(..., 8, 8) samples (level-shifted) -> (..., 64) coefficients in natural order."""
    out = DCT @ blocks @ DCT.T
    return out.reshape(out.shape[:-2] + (64,))


def mcu_coefficients(rgb: np.ndarray, frame: Frame, qtables: tuple[np.ndarray, ...],
                     mcus: np.ndarray) -> list[np.ndarray]:
    """Quantised coefficients of the listed MCUs (``mcus``: (k, 2) rows of (mcu row, mcu col))
    of ``rgb`` as this frame codes them: per component (k, v, h, 64) int16. Pixels beyond the
    image's edge repeat its last row and column, as encoders pad."""
    comps = frame.components
    single = len(comps) == 1
    ch, cw = (8, 8) if single else (8 * frame.max_v, 8 * frame.max_h)
    rows = -(-frame.height // ch)
    cols = -(-frame.width // cw)
    padded = np.pad(rgb, ((0, rows * ch - rgb.shape[0]), (0, cols * cw - rgb.shape[1]), (0, 0)), mode="edge")
    tiles_of = padded.reshape(rows, ch, cols, cw, 3).transpose(0, 2, 1, 3, 4)
    out = [np.empty((len(mcus), 1 if single else c.v, 1 if single else c.h, 64), np.int16) for c in comps]
    for b0 in range(0, len(mcus), BATCH_MCUS):
        sel = mcus[b0: b0 + BATCH_MCUS]
        planes = colour_planes(tiles_of[sel[:, 0], sel[:, 1]], frame.color)
        for ci, comp in enumerate(comps):
            v, h = (1, 1) if single else (comp.v, comp.h)
            fy, fx = ch // (8 * v), cw // (8 * h)
            s = planes[..., ci].reshape(len(sel), 8 * v, fy, 8 * h, fx).mean(axis=(2, 4)) - 128.0
            blocks = s.reshape(len(sel), v, 8, h, 8).transpose(0, 1, 3, 2, 4)
            q = np.asarray(qtables[ci], np.float64).reshape(64)
            coef = np.rint(forward_dct(blocks) / q)
            out[ci][b0: b0 + len(sel)] = np.clip(coef, -32768, 32767).astype(np.int16)
    return out
