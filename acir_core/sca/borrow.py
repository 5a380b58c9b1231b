"""The guided SCA's levels for the unguided one, where the two placed every run alike.

Without a thumbnail a run's DC comes from its borders alone, which a photo's gradients bias by a
step or so; the guided SCA also weighs the run's level against the thumbnail, measured relative
to the anchored runs, which pins a long run exactly. Where the evidence keeps the unguided result
(its mask and fill) and both SCAs put every run at the same shift and within a level of the same
DC, the runs take the guided DCs: the picture is the same within a level, and exact where the
thumbnail pinned them.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from acir_core.jpeg.decoder import DecodeResult
from acir_core.sca.edges import scan_geometry
from acir_core.sca.result import SCAResult


def placed_alike(a: SCAResult, b: SCAResult, units: list[float], levels: float) -> bool:
    """Whether ``a`` and ``b`` hold the same runs at the same shifts, their DCs within ``levels``."""
    if len(a.segments) != len(b.segments) or not a.segments:
        return False
    for x, y in zip(a.segments, b.segments):
        if (x.scan, x.first_mcu, x.end_mcu, x.shift) != (y.scan, y.first_mcu, y.end_mcu, y.shift):
            return False
        if any(abs(p - q) * u > levels + 1e-9 for p, q, u in zip(x.dc, y.dc, units)):
            return False
    return True


def borrow_levels(unguided: SCAResult, guided: SCAResult, result: DecodeResult,
                  levels: float = 1.0) -> SCAResult | None:
    """``unguided`` with every run's DC taken from ``guided`` (re-rendered; its mask as it was),
    when both placed the runs alike (:func:`placed_alike`) and some DC differs; else None. Only
    single-scan decodes."""
    if len(result.scans) != 1:
        return None
    sr = result.scans[0]
    _, comps = scan_geometry(result, sr)
    units = [float(result.qtables[ci][0]) / 8.0 for ci, _, _ in comps]
    if not placed_alike(unguided, guided, units, levels):
        return None
    rows, cols = sr.mcu_rows, sr.mcu_cols
    n = rows * cols
    owner = np.full(n, -1, np.int64)
    for j, s in enumerate(unguided.segments):  # a later run holds a place two land on, as placed
        owner[max(s.first_mcu + s.shift, 0): min(max(s.end_mcu + s.shift, 0), n)] = j
    delta = np.array([[u - g for u, g in zip(x.dc, y.dc)] for x, y in zip(unguided.segments, guided.segments)],
                     np.int64)
    if not delta.any():
        return None
    coefs = [c.copy() for c in unguided.coefficients]
    held = owner >= 0
    for k, (ci, h, v) in enumerate(comps):
        grid = np.zeros(n, np.int64)
        grid[held] = delta[owner[held], k]
        blocks = np.repeat(np.repeat(grid.reshape(rows, cols), v, axis=0), h, axis=1)
        plane = coefs[ci][: rows * v, : cols * h]
        plane[..., 0] = (plane[..., 0].astype(np.int64) + blocks).astype(plane.dtype)
    segments = tuple(replace(x, dc=y.dc) for x, y in zip(unguided.segments, guided.segments))
    return replace(unguided, coefficients=tuple(coefs), rgb=result.rerender(tuple(coefs)), segments=segments)
