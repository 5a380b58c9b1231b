"""Restore one damaged photo up to the stages that need no network: robust decode, aware SCA and
the thumbnail fill (or inpainting without a thumbnail). The GCA stage (torch) lives in
``training.infer`` and takes :attr:`Restoration.sca`, ``mask`` and ``thumb_up`` from here.

Why one function for the CLI, the Beam pipeline and the training data: so that what the network
is trained on is exactly what it sees when a user restores a photo."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from acir_core.errors import InvalidParameter
from acir_core.jpeg.decoder import DecodeResult, decode
from acir_core.sca.aware import AwareOptions, aware_sca, fill_damage, pixel_mask
from acir_core.sca.fill import fill_from_thumbnail, inpaint, upsample_thumbnail
from acir_core.sca.pipeline import resolve_thumbnail

STAGES = ("decode", "sca", "gca")


@dataclass(frozen=True, eq=False)
class Restoration:
    """``status``: "clean" (the file decodes as an intact one: pass it through untouched) or
    "restored". ``rgb`` is the best image this module makes (SCA + fill, or the robust decode for
    stage "decode"); ``sca`` the network's input (every damaged pixel filled, as it was trained);
    ``aware`` the SCA before the fill;
    ``thumb_up`` the thumbnail up-sampled to the photo (None without one)."""

    source: str
    status: str
    stage: str
    rgb: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    sca: np.ndarray | None = field(default=None, repr=False)
    aware: np.ndarray | None = field(default=None, repr=False)
    thumb_up: np.ndarray | None = field(default=None, repr=False)
    thumbnail_source: str = "none"
    record: dict = field(default_factory=dict)

    @property
    def damaged_fraction(self) -> float:
        return float(self.mask.mean())


def thumbnail_fill(aware: np.ndarray, mask: np.ndarray, thumb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``mask`` of the aware-SCA image from the bicubic-up-sampled thumbnail. Returns the
    filled image and the up-sampled thumbnail (uint8, what the network sees)."""
    h, w = mask.shape
    thumb_f = upsample_thumbnail(thumb, w, h)
    return fill_from_thumbnail(aware, mask, thumb_f), np.clip(np.rint(thumb_f), 0, 255).astype(np.uint8)


def sca_with_fill(result: DecodeResult, thumb: np.ndarray | None,
                  options: AwareOptions | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, object]:
    """Aware SCA, then the fill: from the up-sampled thumbnail when there is one, else inpainting.
    Returns (filled, mask, aware before fill, thumb_up uint8 or None, the SCAResult)."""
    a = aware_sca(result, thumb, fill="none", options=options)
    if thumb is None:
        return inpaint(a.rgb, a.mask), a.mask, a.rgb, None, a
    filled, thumb_up = thumbnail_fill(a.rgb, a.mask, thumb)
    return filled, a.mask, a.rgb, thumb_up, a


def restore_photo(data: bytes, source: str = "", stage: str = "sca", thumbnail="auto",
                  options: AwareOptions | None = None) -> Restoration:
    """Decode ``data`` robustly; if it is intact say so, else compensate it up to ``stage``
    ("gca" prepares everything the network needs; the caller runs it). Raises the decoder's
    errors (``NotJpeg``, ``UnsupportedJpeg``, ...) for files it cannot handle at all."""
    if stage not in STAGES:
        raise InvalidParameter(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    t0 = time.perf_counter()
    result = decode(data, "robust", source=source)
    t1 = time.perf_counter()
    summary = result.summary()
    rec = {"source": source, "width": result.frame.width, "height": result.frame.height,
           "resyncs": summary["resyncs"], "bits_skipped": summary["bits_skipped"],
           "suspect_fraction": summary["suspect_fraction"], "missing_fraction": summary["missing_fraction"]}
    timings = {"decode": t1 - t0}
    if result.clean:
        mask = np.zeros((result.frame.height, result.frame.width), bool)
        rec.update(status="clean", stage="none", damaged_fraction=0.0, runs=0, runs_fixed=0, thumbnail="unused",
                   timings=timings)
        return Restoration(source, "clean", "none", result.rgb, mask, record=rec)
    if stage == "decode":
        grid = result.scans[0].suspect | ~result.scans[0].decoded
        grid = grid.reshape(result.scans[0].mcu_rows, result.scans[0].mcu_cols)
        mask = pixel_mask(result, result.scans[0], grid, 0)
        rec.update(status="restored", stage="decode", damaged_fraction=float(mask.mean()), runs=0, runs_fixed=0,
                   thumbnail="unused", timings=timings)
        return Restoration(source, "restored", "decode", result.rgb, mask, record=rec)
    thumb, origin = resolve_thumbnail(data, thumbnail, source)
    filled, mask, aware, thumb_up, a = sca_with_fill(result, thumb, options)
    timings["sca"] = time.perf_counter() - t1
    fixed = sum(1 for s in a.segments if s.shift or any(s.dc))
    rec.update(status="restored", stage="sca", damaged_fraction=float(mask.mean()), runs=len(a.segments),
               runs_fixed=fixed, thumbnail=origin, fill="thumbnail" if thumb is not None else "inpaint",
               timings=timings)
    # what the photo shows keeps damaged MCUs that agree with the thumbnail; the network, trained
    # on the full fill, is given that (``sca``)
    # (thumb_up is the upsampled thumbnail, integer-valued already: no second upsampling)
    shown = fill_damage(result, a, thumb, thumb_up.astype(np.float32)) if thumb is not None else filled
    return Restoration(source, "restored", "sca", shown, mask, filled, aware, thumb_up, origin, rec)
