"""Decoder-aware SCA's former home, kept for callers not yet moved to the new modules.

The algorithm now lives in :mod:`acir_core.sca.aware_sca` (orchestration) and the stage
modules it names; SCA followed by the fill is :func:`acir_core.sca.compensate.compensate`.
"""
from __future__ import annotations

# compatibility: removed once callers use compensate
from dataclasses import replace

import numpy as np

from acir_core.jpeg.decoder import DecodeResult
from acir_core.sca.compensate import compensate, fill_region
from acir_core.sca.fill import fill_from_thumbnail, upsample_thumbnail
from acir_core.sca.marks import pixel_mask
from acir_core.sca.options import AwareOptions
from acir_core.sca.result import SCAResult, SegmentFix

__all__ = ["AwareOptions", "SCAResult", "SegmentFix", "aware_sca", "fill_damage", "fill_region", "pixel_mask"]


def aware_sca(result: DecodeResult, thumbnail: np.ndarray | None = None, *, fill: str = "auto",
              options: AwareOptions | None = None) -> SCAResult:
    """:func:`compensate` as an SCAResult whose ``rgb`` is the filled image."""
    c = compensate(result, thumbnail, fill=fill, options=options)
    return c.sca if c.fill == "none" else replace(c.sca, rgb=c.rgb)


def fill_damage(result: DecodeResult, sca: SCAResult, thumbnail: np.ndarray,
                thumb_up: np.ndarray | None = None) -> np.ndarray:
    """The thumbnail fill of an unfilled SCAResult (``thumb_up``: the float32 up-sampled
    thumbnail, when the caller has it): what ``compensate(..., fill="thumbnail").rgb`` is."""
    if thumb_up is None:
        thumb_up = upsample_thumbnail(thumbnail, result.frame.width, result.frame.height)
    return fill_from_thumbnail(sca.rgb, fill_region(result, sca, thumb_up), thumb_up)
