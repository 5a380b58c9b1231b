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
from acir_core.sca.aware import AwareOptions, aware_sca, fill_region, pixel_mask
from acir_core.sca.fill import fill_from_thumbnail, inpaint, upsampled_thumbnail
from acir_core.sca.pipeline import resolve_thumbnail

STAGES = ("decode", "sca", "gca")


@dataclass(frozen=True, eq=False)
class Restoration:
    """``status``: "clean" (the file decodes as an intact one: pass it through untouched) or
    "restored". ``rgb`` is the best image this module makes (SCA + fill, or the robust decode for
    stage "decode"); ``mask`` what SCA could not verify; ``sca`` the network's input (the filled
    photo) and ``region`` the pixels it restores (those the fill took from the thumbnail);
    ``aware`` the SCA before the fill; ``thumb_up`` the thumbnail up-sampled to the photo (None
    without one)."""

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
    region: np.ndarray | None = field(default=None, repr=False)

    @property
    def damaged_fraction(self) -> float:
        return float(self.mask.mean())


@dataclass(frozen=True, eq=False)
class Filled:
    """Aware SCA and its fill. ``rgb``: the filled photo; ``mask``: what SCA could not verify;
    ``region``: the part of it the fill took from the thumbnail (the damaged MCUs that are blank or
    disagree with it; all of the mask where it was inpainted), which is what the GCA network
    restores; ``aware``: SCA before the fill; ``thumb_up``: the up-sampled thumbnail (uint8) or
    None; ``sca``: the SCAResult."""

    rgb: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    region: np.ndarray = field(repr=False)
    aware: np.ndarray = field(repr=False)
    thumb_up: np.ndarray | None = field(repr=False)
    sca: object = field(repr=False)


def sca_with_fill(result: DecodeResult, thumb: np.ndarray | None, options: AwareOptions | None = None) -> Filled:
    """Aware SCA, then the fill: the damaged MCUs that are blank or disagree with the up-sampled
    thumbnail are taken from it (the rest keep their decoded content), or, without a thumbnail,
    every damaged pixel is inpainted."""
    a = aware_sca(result, thumb, fill="none", options=options)
    if thumb is None:
        return Filled(inpaint(a.rgb, a.mask), a.mask, a.mask, a.rgb, None, a)
    thumb_up = upsampled_thumbnail(thumb, result.frame.width, result.frame.height)
    thumb_f = thumb_up.astype(np.float32)
    region = fill_region(result, a, thumb_f)
    return Filled(fill_from_thumbnail(a.rgb, region, thumb_f), a.mask, region, a.rgb, thumb_up, a)


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
    f = sca_with_fill(result, thumb, options)
    timings["sca"] = time.perf_counter() - t1
    fixed = sum(1 for s in f.sca.segments if s.shift or any(s.dc))
    rec.update(status="restored", stage="sca", damaged_fraction=float(f.mask.mean()),
               filled_fraction=float(f.region.mean()), runs=len(f.sca.segments), runs_fixed=fixed,
               thumbnail=origin, fill="thumbnail" if thumb is not None else "inpaint", timings=timings)
    return Restoration(source, "restored", "sca", f.rgb, f.mask, f.rgb, f.aware, f.thumb_up, origin, rec, f.region)
