"""SCA's place for a progressive file: what its scans lost, as a damage mask.

A progressive file's blocks arrive in bands, and the robust decoder keeps, for every block, what
each scan gave it (:mod:`acir_core.jpeg.progressive`). A block without its DC has no picture: it
is what the mask holds and the fill replaces. A block that missed only later AC bands shows the
coarse picture the earlier scans gave, which no thumbnail improves on: it stays, counted in the
record. Block shifts and DC drift within a scan are not searched for (yet): an error costs the
rest of its restart interval in that scan's band.
"""
from __future__ import annotations

import time

import numpy as np

from acir_core.jpeg.decoder import DecodeResult
from acir_core.jpeg.progressive import band_damage
from acir_core.sca.result import SCAResult


def progressive_sca(result: DecodeResult) -> SCAResult:
    """The decode as it is, with the MCUs that lost their DC as the mask (frame MCU grid)."""
    t0 = time.perf_counter()
    frame = result.frame
    grid = band_damage(result).dc_lost
    ch, cw = (8, 8) if len(frame.components) == 1 else (8 * frame.max_v, 8 * frame.max_h)
    mask = np.repeat(np.repeat(grid, ch, 0), cw, 1)[: frame.height, : frame.width]
    return SCAResult(rgb=result.rgb, mask=mask, mcu_mask=grid, segments=(), coefficients=result.coefficients,
                     method="progressive", timings={"total": time.perf_counter() - t0}, doubtful=None)
