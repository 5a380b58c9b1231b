"""SCA's place for a progressive file: what its scans lost, as a damage mask.

A progressive file's blocks arrive in bands, and the robust decoder keeps, for every block, what
each scan gave it (:mod:`acir_core.jpeg.progressive`). A block without its DC has no picture: it
is what the mask holds and the fill replaces. A block that missed only later AC bands shows the
coarse picture the earlier scans gave, which no thumbnail improves on: it stays, counted in the
record. An error a DC scan decoded silently scrambles every later MCU's tone with no failure:
with a thumbnail, the MCUs from where the photo parts from it are masked too.
"""
from __future__ import annotations

import time

import numpy as np

from acir_core.jpeg.decoder import DecodeResult
from acir_core.jpeg.progressive import band_damage
from acir_core.sca.result import SCAResult
from acir_core.thumbregister import area_reduce


SCRAMBLE_RATIO = 3.0  # a DC scan scrambled from an MCU on: the photo that much further from the thumbnail
SCRAMBLE_LEVELS = 6.0  # and this many levels more (median per MCU)


def scrambled_tail(result: DecodeResult, thumbnail: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """MCUs (``shape``, the frame's MCU grid) from where the photo parts from the thumbnail to the
    end: an error a DC scan decoded silently puts later values into the wrong predictor, and
    every MCU after it shows a wrong tone, with no failure to mark it. Where: the change point of
    the per-MCU luma distance to the framed thumbnail, taken when the distance after it stands
    ``SCRAMBLE_RATIO`` times and ``SCRAMBLE_LEVELS`` above the distance before."""
    rows, cols = shape
    out = np.zeros(shape, bool)
    if rows * cols < 4 * cols or thumbnail is None:
        return out
    luma = np.array([0.299, 0.587, 0.114])
    photo = area_reduce(result.rgb, cols, rows) @ luma
    thumb = area_reduce(thumbnail, cols, rows) @ luma
    e = np.abs(photo - thumb).ravel()
    tail = np.concatenate([np.cumsum((e - e.mean())[::-1])[::-1], [0.0]])
    x = int(np.argmax(tail[cols: e.size - cols])) + cols
    before, after = float(np.median(e[:x])), float(np.median(e[x:]))
    if after >= SCRAMBLE_RATIO * before + SCRAMBLE_LEVELS:
        out.ravel()[x:] = True
    return out


def progressive_sca(result: DecodeResult, thumbnail: np.ndarray | None = None) -> SCAResult:
    """The decode as it is, with the MCUs that lost their DC as the mask (frame MCU grid); with a
    thumbnail (framed to the photo) also those after a DC scan's silent error
    (:func:`scrambled_tail`)."""
    t0 = time.perf_counter()
    frame = result.frame
    grid = band_damage(result).dc_lost
    if thumbnail is not None:
        grid = grid | scrambled_tail(result, thumbnail, grid.shape)
    ch, cw = (8, 8) if len(frame.components) == 1 else (8 * frame.max_v, 8 * frame.max_h)
    mask = np.repeat(np.repeat(grid, ch, 0), cw, 1)[: frame.height, : frame.width]
    return SCAResult(rgb=result.rgb, mask=mask, mcu_mask=grid, segments=(), coefficients=result.coefficients,
                     method="progressive", timings={"total": time.perf_counter() - t0}, doubtful=None)
