"""The DC constant a scan decoded from a lost start leaves unknown, anchored on the photo itself.

Without restart markers every DC is a difference from the one before, so a scan whose start was
lost comes back right up to one constant per component (the predictor at the lost start). A
photo's blocks lie within 0..255: nearly every photo has shadows, many clip their highlights or
shadows in flat plateaus, and shadows are grey. :func:`anchor_dc` uses that.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from acir_core.jpeg.decoder import DecodeResult
from acir_core.jpeg.fdct import DCT

PIN_PLATEAU = 8  # flat blocks at the extreme DC that make a clipped plateau
PIN_TOLERANCE = 12.0  # levels a pin may differ from the darkest-blocks estimate (its error's 90th percentile)


def _luma_constant(blocks: np.ndarray, q: np.ndarray) -> tuple[float, str]:
    """DC units to add to every luma block: the darkest blocks (the 0.01 % quantile) go to 0,
    where nearly every photo has its shadows; a clipped plateau (flat blocks at exactly the DC
    of 255s or of 0s) near that estimate pins it exactly (a bright sky is a plateau too, but
    far from it)."""
    q0 = float(q[0])
    step = q0 / 8.0  # levels per DC unit
    s = (DCT.T.astype(np.float32) @ (blocks * q).reshape(-1, 8, 8) @ DCT.astype(np.float32)).reshape(-1, 64)
    lo = float(np.quantile(-128.0 - s.min(axis=1), 0.9999)) / step  # the darkest blocks at 0
    dc = blocks[:, 0]
    flat = np.abs(blocks[:, 1:]).sum(axis=1) <= 1
    pins = []
    if flat.sum() >= PIN_PLATEAU:
        tol = PIN_TOLERANCE / step
        for value, end, why in ((dc[flat].max(), round(1016 / q0), "clipped highlights"),
                                (dc[flat].min(), round(-1024 / q0), "clipped shadows")):
            d = end - value
            if np.sum(flat & (dc == value)) >= PIN_PLATEAU and abs(d - lo) <= tol:
                pins.append((d, why))
    if len(pins) == 2 and abs(pins[0][0] - pins[1][0]) > PIN_TOLERANCE / step:
        pins = []
    if pins:
        return float(np.mean([d for d, _ in pins])), " and ".join(w for _, w in pins)
    return lo, "darkest blocks at black"


def anchor_dc(result: DecodeResult, skip: int = 0) -> tuple[DecodeResult, dict]:
    """Set the one unknown DC constant per component of a scan decoded from a lost start
    (see :func:`_luma_constant`); colour is set so that the darkest 1 % of MCUs are neutral
    (shadows are grey in nearly every photo); the first ``skip`` decoded MCUs (perhaps not yet
    in step) are left out of the statistics. Interleaved YCbCr scans only; others are left."""
    sr = result.scans[0]
    frame = result.frame
    if len(sr.components) != len(frame.components) or frame.color == "rgb":
        return result, {}
    coefs = [c.copy() for c in result.coefficients]
    live = sr.decoded.reshape(sr.mcu_rows, sr.mcu_cols)
    if not live.any():
        return result, {}

    def layout(ci: int) -> tuple[int, int]:
        comp = frame.components[ci]
        return (comp.v, comp.h) if len(frame.components) > 1 else (1, 1)

    def per_mcu(ci: int) -> np.ndarray:  # (live MCUs, blocks per MCU, 64) of component ci
        v, h = layout(ci)
        g = coefs[ci][: sr.mcu_rows * v, : sr.mcu_cols * h]
        g = g.reshape(sr.mcu_rows, v, sr.mcu_cols, h, 64).transpose(0, 2, 1, 3, 4)
        return g[live].reshape(-1, v * h, 64)

    def shift(ci: int, d: int) -> None:
        v, h = layout(ci)
        m = np.zeros(coefs[ci].shape[:2], bool)
        m[: sr.mcu_rows * v, : sr.mcu_cols * h] = np.repeat(np.repeat(live, v, axis=0), h, axis=1)
        coefs[ci][m, 0] = np.clip(coefs[ci][m, 0].astype(np.int32) + d, -32768, 32767).astype(np.int16)

    order = np.cumsum(live.reshape(-1))[live.reshape(-1)]  # 1.. over live MCUs in scan order
    use = order > skip if order.size > 4 * skip else np.ones(order.size, bool)
    notes = {}
    y = per_mcu(0)[use]
    d, why = _luma_constant(y.reshape(-1, 64).astype(np.float32),
                            np.asarray(result.qtables[0], np.float32).reshape(64))
    shift(0, int(round(d)))
    notes[str(frame.components[0].id)] = {"dc": int(round(d)), "by": why}
    if len(frame.components) == 3:
        y_level = y[:, :, 0].astype(np.float64).mean(axis=1)
        dark = np.argsort(y_level, kind="stable")[: max(1, y_level.size // 100)]
        for ci in (1, 2):
            c = per_mcu(ci)[use][:, :, 0].astype(np.float64).mean(axis=1)
            d = int(round(-float(np.median(c[dark]))))
            shift(ci, d)
            notes[str(frame.components[ci].id)] = {"dc": d, "by": "darkest MCUs neutral"}
    rgb = result.rerender(tuple(coefs))
    return replace(result, coefficients=tuple(coefs), rgb=rgb), notes
