"""Pixels from quantised coefficients: IDCT, upsampling and colour conversion as libjpeg-turbo.

Its own module (and function) so that SCA can edit coefficients (shift blocks, correct DC) and
re-render exactly what a decoder would have shown for those coefficients.
"""
from __future__ import annotations

import numpy as np

from acir_core.jpeg.color import CB_B, CB_G, CR_G, CR_R, ycc_to_rgb
from acir_core.jpeg.idct import RANGE_LIMIT, idct_islow_plane
from acir_core.jpeg.tables import Frame
from acir_core.jpeg.upsample import upsample


def component_plane(coefs: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """One component's samples (block rows*8, block cols*8) from its (rows, cols, 64) coefficients."""
    rows, cols = coefs.shape[:2]
    out = np.empty((rows * 8, cols * 8), np.uint8)
    flat = np.ascontiguousarray(coefs.reshape(rows * cols, 64), dtype=np.int16)
    idct_islow_plane(flat, np.ascontiguousarray(qt, dtype=np.int64), rows, cols, RANGE_LIMIT, out)
    return out


def render(frame: Frame, coefficients: tuple[np.ndarray, ...], qtables: tuple[np.ndarray, ...]) -> np.ndarray:
    """H×W×3 uint8 RGB from per-component coefficient grids (natural order) and their quantisers.

    Greyscale frames give three equal channels, as Pillow's ``convert("RGB")`` of an "L" image.
    """
    planes = []
    for ci, (coefs, qt) in enumerate(zip(coefficients, qtables)):
        comp = frame.components[ci]
        plane = component_plane(coefs, qt)
        cw, ch = frame.comp_size(ci)
        planes.append(upsample(plane, cw, ch, frame.max_h // comp.h, frame.max_v // comp.v, frame.width,
                               frame.height))
    if len(planes) == 1:
        return np.repeat(planes[0][:, :, None], 3, axis=2)
    if frame.color == "rgb":
        return np.ascontiguousarray(np.stack(planes, axis=-1))
    out = np.empty((frame.height, frame.width, 3), np.uint8)
    ycc_to_rgb(planes[0], planes[1], planes[2], CR_R, CB_B, CR_G, CB_G, out)
    return out
