"""The AC bands of a progressive file as its bits alone place them: a witness to where its DCs
belong.

A damaged AC first scan places what it read before its first error and after its last one by
its bits (the scan's start and where its bits end); the runs between are placed later against
the DCs, and so follow any DC that sits a few MCUs off. Kept apart, the bits-placed bands say
from the picture's own edges where each stretch of DCs goes
(:func:`acir_core.sca.dcplace.place_by_edges`, docs/decoder.md, progressive files).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from acir_core.jpeg.entropy import _ZZ
from acir_core.jpeg.progressive import SILENT_BACK, band_bits

if TYPE_CHECKING:
    from acir_core.jpeg.decoder import ScanResult


@dataclass(kw_only=True, eq=False)
class BandWitness:
    """Per block of every component (the decoder's flat block order): the AC first-scan values
    its bits placed (``coefficients``, natural order, DC left 0) and which coefficients those are
    (``bands``, one bit per zig-zag index, as the decoder's ``known``)."""

    coefficients: np.ndarray = field(repr=False)
    bands: np.ndarray = field(repr=False)

    @classmethod
    def empty(cls, n_blocks: int) -> "BandWitness":
        return cls(coefficients=np.zeros((n_blocks, 64), np.int16), bands=np.zeros(n_blocks, np.uint64))

    def keep(self, sr: "ScanResult", ss: int, se: int, coef_flat: np.ndarray, base: int, bw: int, *,
             middle: bool) -> None:
        """Take the band ss..se of the decoded blocks of a single-component AC first scan
        (``sr``, its :class:`~acir_core.jpeg.decoder.ScanResult`, blocks at ``base`` in rows of
        ``bw``) from ``coef_flat``; ``middle`` false leaves out what lies between its first error
        and the start of its last run, where the bits' end put it (``SILENT_BACK`` blocks either
        side), which the bits do not place."""
        ok = sr.decoded.copy()
        ev = sr.resyncs
        if ev and not middle:
            ok[max(ev[0].mcu - SILENT_BACK, 0): max(ev[-1].mcu + ev[-1].shift + SILENT_BACK, 0)] = False
        m = np.flatnonzero(ok)
        idx = base + (m // sr.mcu_cols) * bw + m % sr.mcu_cols
        zz = np.asarray(_ZZ[ss: se + 1])
        self.coefficients[idx[:, None], zz[None, :]] = coef_flat[idx[:, None], zz[None, :]]
        self.bands[idx] |= np.uint64(band_bits(ss, se))

    def planes(self, bases: list[int], grids: list[tuple[int, int]]) -> tuple[tuple[np.ndarray, ...],
                                                                              tuple[np.ndarray, ...]]:
        """Per component (its block grid): the witnessed coefficients and their band bits."""
        return (tuple(self.coefficients[b: b + r * c].reshape(r, c, 64) for b, (r, c) in zip(bases, grids)),
                tuple(self.bands[b: b + r * c].reshape(r, c) for b, (r, c) in zip(bases, grids)))
