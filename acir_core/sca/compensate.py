"""One route from a robust decode to the compensated, filled photo: SCA, then the fill.

``acir sca``, ``acir restore``, the dataset pipeline and the training data all go through
:func:`compensate`, so the network is trained on exactly what it sees when a user restores a
photo. The fill takes from the up-sampled thumbnail only the damaged MCUs that are blank or
disagree with it (the rest of the mask keeps its decoded content, mostly right); that region is
what the GCA network restores. Without a thumbnail the mask is inpainted, except the pixels it
holds only for runs that may lie a place or two off (``SCAResult.unsure``): their decoded content
beats a guess.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from acir_core.errors import AcirError, InvalidParameter
from acir_core.jpeg.decoder import DecodeResult, decode
from acir_core.jpeg.segments import frame_size
from acir_core.jpeg.tables import scan_cell
from acir_core.sca.aware_sca import aware_sca
from acir_core.sca.fill import (breaking_cells, disagreeing, fill_from_thumbnail, inpaint, thumbnail_spread,
                                upsampled_thumbnail)
from acir_core.sca.marks import pixel_mask
from acir_core.sca.options import AwareOptions
from acir_core.sca.paper import paper_sca
from acir_core.sca.progressive import progressive_sca
from acir_core.sca.result import SCAResult
from acir_core.sca.runtone import fit_run_tone
from acir_core.thumbframe import fit_tone, frame_thumbnail
from acir_core.thumbregister import register
from acir_core.thumbnail import best_thumbnail, extract_thumbnail

METHODS = ("aware", "paper")
FILLS = ("auto", "thumbnail", "inpaint", "none")
FILL_TOLERANCE = 12.0  # levels a damaged cell may lie off the thumbnail and keep its content, at the least
SEAM_LIMIT = 6.0  # times its inner steps a precaution's step to the rows above or below may be, kept
LOOSE_FACTOR = 1.5  # times that tolerance a precaution (``sca.doubtful``) may lie off the thumbnail


@dataclass(frozen=True, kw_only=True, eq=False)
class Compensated:
    """SCA and its fill. ``rgb``: the final photo (H×W×3 uint8); ``mask``: what SCA could not
    verify (H×W bool); ``region``: the part of it the fill replaced (the damaged MCUs that are
    blank or disagree with the thumbnail; all of the mask when inpainted; nothing for fill
    "none"), which the GCA network restores; ``unfilled``: the SCA image before the fill;
    ``thumb_up``: the thumbnail bicubic-up-sampled to the photo (uint8) or None; ``sca``: the
    SCAResult; ``fill``: the fill applied (thumbnail, inpaint or none); ``timings``: seconds of
    "sca", "fill" and "total"; ``thumbnail_note``: how the thumbnail was framed and toned;
    ``thumbnail``: the thumbnail as framed and toned (what the fill and the evidence use)."""

    rgb: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    region: np.ndarray = field(repr=False)
    unfilled: np.ndarray = field(repr=False)
    thumb_up: np.ndarray | None = field(repr=False)
    sca: SCAResult
    fill: str
    timings: dict[str, float]
    thumbnail_note: str = ""
    thumbnail: np.ndarray | None = field(default=None, repr=False)

    @property
    def damaged_fraction(self) -> float:
        return float(self.mask.mean())


def resolve_thumbnail(data: bytes, thumbnail: np.ndarray | str | None,
                      source: str | None = None) -> tuple[np.ndarray | None, str]:
    """``"auto"`` (the most detailed one embedded in ``data``: the EXIF/JFIF thumbnail or a larger
    preview, :func:`acir_core.thumbnail.best_thumbnail`), None, or an array -> (image or None,
    where it came from: ``embedded-<kind>`` (previews with their size), ``given`` or ``none``)."""
    if isinstance(thumbnail, str):
        if thumbnail != "auto":
            raise InvalidParameter(f"thumbnail must be 'auto', None or an image array, got {thumbnail!r}")
        try:
            width, height = frame_size(data, source)
        except AcirError:
            found = extract_thumbnail(data, source)
        else:
            found = best_thumbnail(data, width, height, source)
        if found is None:
            return None, "none"
        size = f"-{found.size[0]}x{found.size[1]}" if found.kind.startswith("preview") else ""
        return found.rgb, f"embedded-{found.kind}{size}"
    return thumbnail, "given" if thumbnail is not None else "none"


def decode_for(data: bytes, method: str = "aware", source: str | None = None) -> DecodeResult:
    """The robust decode ``method`` works on: the paper's SCA goes with the paper's resync rule,
    ours with the lookahead resync."""
    _check_method(method)
    return decode(data, "robust", resync="paper" if method == "paper" else "lookahead", source=source)


def fill_region(result: DecodeResult, sca: SCAResult, thumb_up: np.ndarray) -> np.ndarray:
    """The pixels (H×W bool) the thumbnail fill replaces (``thumb_up``: the thumbnail up-sampled
    to the photo, uint8): the damaged MCUs that are blank or disagree with it, precautions
    (``sca.doubtful``) judged with the loose tolerance, ``LOOSE_FACTOR`` × the damaged MCUs' own
    (:func:`acir_core.sca.fill.disagreeing`). The chosen restoration's precautions that break at
    the rows around them are added after (:func:`fill_breaks`)."""
    cell = scan_cell(result.frame, result.scans[0].components) if result.scans else (16, 16)
    spread = thumbnail_spread(sca.rgb, sca.mask, thumb_up, cell) or 0.0
    tolerance = max(FILL_TOLERANCE, spread)
    return disagreeing(sca.rgb, sca.mask, thumb_up, cell, tolerance=tolerance, loose=sca.doubtful,
                       loose_tolerance=LOOSE_FACTOR * tolerance)


def prepare_thumbnail(thumbnail: np.ndarray, result: DecodeResult,
                      reference: Compensated | None = None) -> tuple[np.ndarray, str]:
    """``thumbnail`` framed to the photo (:func:`acir_core.thumbframe.frame_thumbnail`) and how:
    judged on the decode, or on what ``reference`` (an earlier SCA of the same decode: at BER
    1e-5 the raw decode is too scrambled) trusts, and registered on what that puts in place for certain
    (:func:`anchored`). Its colours are fitted after SCA, on what that trusts."""
    photo = result.rgb if reference is None else reference.unfilled
    framed = frame_thumbnail(thumbnail, result.frame.width, result.frame.height, photo,
                             None if reference is None else ~reference.mask)
    reg = register(framed.rgb, photo, anchored(result, reference)) if reference is not None else None
    if reg is None or not reg.moved:
        return framed.rgb, framed.describe()
    note = ", ".join(n for n in (framed.describe(), reg.describe()) if n != "as stored")
    return reg.apply(framed.rgb), note


def anchored(result: DecodeResult, reference: Compensated) -> np.ndarray:
    """The pixels (H×W bool) ``reference`` (an SCA of ``result``) has where they belong for
    certain: its first run (from the scan's start up to the first break it found) and restart
    intervals decoded as written, less what it masks. Runs further on may sit one MCU off, the
    very error a misplaced thumbnail causes, so they do not judge where the thumbnail sits."""
    height, width = result.frame.height, result.frame.width
    if len(result.scans) != 1:
        return np.zeros((height, width), bool)
    sr = result.scans[0]
    good = np.zeros(sr.mcus_expected, bool)
    first = reference.sca.segments[0] if reference.sca.segments else None
    if first is not None and first.first_mcu == 0 and first.shift == 0:
        good[: first.end_mcu] = True
    if sr.restart_interval:
        sound = sr.sound_segments()
        for start, count in zip(sr.segment_first[sound], sr.segment_count[sound]):
            good[start:start + count] = True
    return ~pixel_mask(result, sr, ~good.reshape(sr.mcu_rows, sr.mcu_cols), 0) & ~reference.mask


def _filled(result: DecodeResult, sca: SCAResult, thumbnail: np.ndarray | None, used: str, note: str,
            fit: bool = True, thumb_up: np.ndarray | None = None):
    """The fill of ``sca``: (rgb, region, thumb_up, thumbnail as toned, note); ``fit``: fit the
    thumbnail's colours to what ``sca`` trusts first; ``thumb_up``: the thumbnail already
    up-sampled (with ``fit`` off)."""
    if thumbnail is not None and thumb_up is None:
        tone = fit_tone(thumbnail, sca.rgb, ~sca.mask) if fit and sca.method != "paper" else None
        if tone is not None:
            thumbnail = tone.apply(thumbnail)
            note = f"{note}, toned ({tone.before:.1f} -> {tone.after:.1f} levels)"
        thumb_up = upsampled_thumbnail(thumbnail, result.frame.width, result.frame.height)
    if used == "thumbnail":
        region = fill_region(result, sca, thumb_up)
        rgb = fill_from_thumbnail(sca.rgb, region, thumb_up)
    elif used == "inpaint":
        region = sca.mask if sca.unsure is None else sca.mask & ~sca.unsure  # decoded content beats a guess
        rgb = inpaint(sca.rgb, region)
    else:
        region, rgb = np.zeros_like(sca.mask), sca.rgb
    return rgb, region, thumb_up, thumbnail, note


def compensate(result: DecodeResult, thumbnail: np.ndarray | None, *, method: str = "aware", fill: str = "auto",
               options: AwareOptions | None = None, guide: bool = True,
               reference: Compensated | None = None) -> Compensated:
    """SCA on ``result`` (decoded as :func:`decode_for` ``method``), then the fill. ``thumbnail``:
    H'×W'×3 uint8 or None, framed to the photo first (:func:`prepare_thumbnail`, with
    ``reference``). ``fill``: "auto" (from the thumbnail when there is one, else inpainting),
    "thumbnail", "inpaint" or "none". The paper's method marks nothing, so nothing is filled.
    ``options``: aware SCA's tunables. ``guide=False``: SCA works without the thumbnail (from the
    decode's continuity alone) and only the fill uses it. ``reference``: an unguided SCA of the
    same decode; with it the thumbnail is registered on what that has in place, and toned on the
    runs the guided SCA placed (:func:`acir_core.sca.runtone.fit_run_tone`; SCA then runs again
    with the toned thumbnail); stretches of runs the guided SCA placed may take its places
    (:func:`acir_core.sca.crosscheck.crosscheck`)."""
    _check_method(method)
    if fill not in FILLS:
        raise InvalidParameter(f"fill must be {', '.join(FILLS)}, got {fill!r}")
    if fill == "thumbnail" and thumbnail is None:
        raise InvalidParameter("fill='thumbnail' needs a thumbnail")
    t0 = time.perf_counter()
    note = ""
    if thumbnail is not None and method != "paper":
        thumbnail, note = prepare_thumbnail(thumbnail, result, reference)
    if result.frame.marker == 0xC2:  # a progressive file: what its scans lost (no runs to place)
        sca = progressive_sca(result, thumbnail if guide and method != "paper" else None)
    else:
        unguided = reference.sca if reference is not None and guide and thumbnail is not None else None
        sca = paper_sca(result) if method == "paper" else aware_sca(result, thumbnail if guide else None,
                                                                    options=options, reference=unguided)
        if reference is not None and method == "aware" and guide and thumbnail is not None:
            # the runs it placed show the camera's tone curve: SCA again with the thumbnail toned
            tone = fit_run_tone(thumbnail, result, sca)
            if tone is not None:
                thumbnail = tone.apply(thumbnail)
                sca = aware_sca(result, thumbnail, options=options, reference=unguided)
                note = ", ".join(n for n in (note, f"toned on runs ({tone.before:.1f} -> {tone.after:.1f} levels)")
                                 if n and n != "as stored")
    t1 = time.perf_counter()
    used = ("thumbnail" if thumbnail is not None else "inpaint") if fill == "auto" else fill
    if method == "paper":
        used = "none"
    rgb, region, thumb_up, thumbnail, note = _filled(result, sca, thumbnail, used, note)
    t2 = time.perf_counter()
    return Compensated(rgb=rgb, mask=sca.mask, region=region, unfilled=sca.rgb, thumb_up=thumb_up, sca=sca, fill=used,
                       timings={"sca": t1 - t0, "fill": t2 - t1, "total": t2 - t0}, thumbnail_note=note,
                       thumbnail=thumbnail)


def judged_view(comp: Compensated) -> np.ndarray:
    """``comp`` as the evidence (:func:`acir_core.sca.evidence.judge`) compares it with other
    restorations of the same photo: its fill without the detail carried in from beside the
    holes. A plain thumbnail fill shows seams where it meets decoded content, and those seams
    are what keeps a result mostly made up from outscoring one decoded nearly everywhere. The
    pixels marked only for runs that may lie a place off (``sca.unsure``) show what was decoded:
    a doubt must not make a restoration look better than the one that has none."""
    if comp.fill != "thumbnail" or comp.thumb_up is None or not comp.region.any():
        return comp.rgb
    region = comp.region if comp.sca.unsure is None else comp.region & ~comp.sca.unsure
    return fill_from_thumbnail(comp.unfilled, region, comp.thumb_up, reach=0.0)


def refill(comp: Compensated, result: DecodeResult, thumbnail: np.ndarray, note: str,
           thumb_up: np.ndarray | None = None) -> Compensated:
    """``comp`` filled (again) from ``thumbnail``, already framed and toned to the photo: for an
    SCA that did not use the thumbnail, once a well-framed one is known. ``thumb_up``: that
    thumbnail up-sampled to the photo, where another restoration has it already."""
    rgb, region, thumb_up, thumbnail, note = _filled(result, comp.sca, thumbnail, "thumbnail", note, fit=False,
                                                     thumb_up=thumb_up)
    return replace(comp, rgb=rgb, region=region, thumb_up=thumb_up, thumbnail=thumbnail, thumbnail_note=note,
                   fill="thumbnail")


def fill_breaks(comp: Compensated, result: DecodeResult) -> Compensated:
    """``comp`` with its precautions that break at the rows around them filled too (what
    :func:`fill_region` adds with ``seams``, found among the precautions alone and filled in one
    more pass; ``comp`` itself where there are none): for the restoration the evidence chose."""
    if comp.fill != "thumbnail" or comp.thumb_up is None or comp.sca.doubtful is None or not comp.sca.doubtful.any():
        return comp
    cell = scan_cell(result.frame, result.scans[0].components) if result.scans else (16, 16)
    extra = breaking_cells(comp.unfilled, comp.mask, comp.region, comp.sca.doubtful, cell, SEAM_LIMIT)
    if not extra.any():
        return comp
    region = comp.region | extra
    return replace(comp, region=region, rgb=fill_from_thumbnail(comp.unfilled, region, comp.thumb_up))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise InvalidParameter(f"SCA method must be one of {', '.join(METHODS)}, got {method!r}")
