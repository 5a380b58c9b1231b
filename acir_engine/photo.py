"""Restore one photo from its bytes: robust decode, then aware SCA and the fill, ready for the
network: what ``acir restore`` and the Beam pipeline run for each photo. Its SCA + fill is
``acir_core.sca.compensate``, which the dataset rows and the training examples call too, so the
network is trained on exactly what it later sees.

Before anything is decoded, the photo's memory need is estimated from its header and a photo
over the budget is refused with a clear reason instead of taking the run down."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from acir_core.damage import undo_repeats, undo_text_mode
from acir_core.errors import AcirError, CorruptHeader, ImageTooLarge, InvalidParameter, NotJpeg
from acir_core.graft import Grafted, graft, header_lost
from acir_core.imagefile import load_rgb
from acir_core.jpeg.decoder import DecodeResult, decode
from acir_core.jpeg.rewrite import CodedImage, coded_image
from acir_core.jpeg.segments import frame_size
from acir_core.jpeg.smoothing import smoothed
from acir_core.jpeg.tables import DEFAULT_MAX_PIXELS, ijg_quality, scan_cell
from acir_core.sca.aware_sca import shared_edges
from acir_core.sca.borrow import borrow_levels
from acir_core.sca.dispute import cells_to_pixels, disputed, local_evidence
from acir_core.sca.compensate import Compensated, compensate, fill_breaks, judged_view, refill, resolve_thumbnail
from acir_core.sca.evidence import judge
from acir_core.jpeg.progressive import band_damage
from acir_core.sca.marks import pixel_mask
from acir_core.sca.options import AwareOptions
from acir_core.sca.progressive import dc_hint, silently_scrambled
from acir_core.thumbframe import luma
from acir_core.thumbnail import embedded_previews
from acir_engine.network import RESTORE_STAGES

SCA_CANDIDATES = ("sca", "sca-unguided")  # the two SCAs whose disagreement :mod:`acir_core.sca.dispute` judges
BYTES_PER_PIXEL = {"decode": 34, "sca": 94, "gca": 144}  # peak working memory per pixel, with margin


@dataclass(frozen=True, eq=False, kw_only=True)
class PhotoResult:
    """One photo after the network-free stages. ``status``: "clean" (decodes as an intact file:
    pass it through untouched) or "restored". ``image``: the best image made here (SCA + fill, or
    the robust decode for stage "decode"), which is also the network's input; ``mask``: what SCA
    could not verify; ``region``: the pixels the network restores; ``thumb_up``: the thumbnail
    up-sampled to the photo (None without one); ``unfilled``: the SCA image before the fill
    (stage sca); ``record``: what was found and done (JSON-able)."""

    source: str
    status: str
    stage: str
    image: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    region: np.ndarray | None = field(default=None, repr=False)
    thumb_up: np.ndarray | None = field(default=None, repr=False)
    thumbnail_source: str = "none"
    unfilled: np.ndarray | None = field(default=None, repr=False)
    coded: CodedImage | None = field(default=None, repr=False)
    record: dict = field(default_factory=dict)

    @property
    def damaged_fraction(self) -> float:
        return float(self.mask.mean())


def header_size(data: bytes, source: str = "") -> tuple[int, int]:
    """(width, height) that the photo's SOF declares, read without decoding; raises the header
    parser's ``BadInput`` errors for a file whose header is unreadable."""
    return frame_size(data, source)


def check_budget(data: bytes, *, stage: str, source: str = "", max_pixels: int = DEFAULT_MAX_PIXELS,
                 memory_budget: int = 0) -> int:
    """Refuse, before decoding, a photo whose declared size is over ``max_pixels`` or whose
    estimated working memory (``BYTES_PER_PIXEL`` of ``stage``) is over ``memory_budget`` bytes
    (0: no budget). Returns the estimate in bytes."""
    width, height = header_size(data, source)
    pixels = width * height
    if pixels > max_pixels:
        raise ImageTooLarge(f"{width}x{height} pixels exceeds the limit of {max_pixels}", source=source)
    need = pixels * BYTES_PER_PIXEL.get(stage, BYTES_PER_PIXEL["gca"])
    if memory_budget and need > memory_budget:
        raise ImageTooLarge(f"{width}x{height} would need ~{need / 2**30:.1f} GiB at stage {stage}, over the "
                            f"memory budget of {memory_budget / 2**30:.1f} GiB (raise --memory-budget)",
                            source=source)
    return need


def _end_of_image(result: DecodeResult, data: bytes, source: str) -> int | None:
    """Where an intact image ends when only what follows it looks damaged (two files joined, or
    leftovers after EOI): every MCU decoded without a resync, and the first EOI after the last
    MCU closes a prefix that decodes as an intact file. The prefix's length, else None."""
    if result.resyncs or result.mcus_decoded != result.mcus_expected or len(result.scans) != 1:
        return None
    sr = result.scans[0]
    if sr.suspect.any():
        return None
    last = sr.file_offset(max(sr.n_bits - sr.trailing_bits - 1, 0))
    eoi = data.find(b"\xff\xd9", max(last - 1, 0))
    if eoi < 0 or eoi + 2 >= len(data):
        return None
    try:
        prefix = decode(data[: eoi + 2], "robust", source=source)
    except AcirError:
        return None
    return eoi + 2 if prefix.clean else None


def _after_clean(result: DecodeResult, data: bytes) -> int | None:
    """Where an intact image ends when another file or a camera's padding follows its EOI (the
    decoder ends the scan there, before the file's last EOI): the EOI's end, else None."""
    sr = result.scans[-1]
    if not sr.byte_offsets.size:
        return None
    eoi = data.find(b"\xff\xd9", int(sr.byte_offsets[-1]) + 1)
    return eoi + 2 if 0 <= eoi < data.rfind(b"\xff\xd9") else None


def _standard_view(result: DecodeResult, data: bytes, source: str, like: Compensated) -> Compensated | None:
    """What a standard decoder (libjpeg-turbo through Pillow) shows, as a candidate result: its
    damage is what the robust decode found suspect or missing. None when it shows nothing."""
    try:
        rgb = load_rgb(data, source).rgb
    except AcirError:
        return None
    if rgb.shape != like.rgb.shape:
        return None
    sr = result.scans[0]
    mask = pixel_mask(result, sr, (sr.suspect | ~sr.decoded).reshape(sr.mcu_rows, sr.mcu_cols), 0)
    return replace(like, rgb=rgb, mask=mask, region=mask, unfilled=rgb, fill="none",
                   sca=replace(like.sca, coefficients=result.coefficients))


def kept_candidate(scores: dict[str, float]) -> str:
    """The candidate the evidence supports best (lowest score), the first listed among equals."""
    return min(scores, key=scores.get)


def _best_supported(result: DecodeResult, data: bytes, thumb: np.ndarray | None, options: AwareOptions | None,
                    source: str) -> tuple[Compensated, str, dict, bool, float | None]:
    """SCA from the decode alone, SCA guided by the thumbnail (framed and toned on what the first
    trusts), and the standard decoder's view: the one the evidence
    (:func:`acir_core.sca.evidence.judge`: seams at MCU boundaries, untextured MCUs, distance to
    the thumbnail) supports best, its name, every score, whether it took the guided SCA's levels,
    and the share of the photo it marks where the other SCA differs and the evidence there cannot
    tell them apart (:mod:`acir_core.sca.dispute`; None unless an SCA is kept beside the other). The unguided SCA does not mark the
    blocks past 0..255 (:mod:`acir_core.sca.overshoot`): filled in the judged view, the garbage
    of runs it placed wrong made it look better than the guided SCA."""
    if thumb is None or len(result.scans) != 1:
        f = compensate(result, thumb, options=options)
        candidates = {"sca": f}
    else:
        with shared_edges(result):  # the SCAs below read the same decode
            opts = options or AwareOptions()
            plain = replace(opts, mask=replace(opts.mask, overshoot=-1))
            alone = compensate(result, None, options=plain, fill="none")  # filled once framed
            f = compensate(result, thumb, options=options, reference=alone)
        alone = refill(alone, result, f.thumbnail, f.thumbnail_note, thumb_up=f.thumb_up)
        candidates = {"sca": f, "sca-unguided": alone}
    if len(result.scans) == 1:
        std = _standard_view(result, data, source, f)
        if std is not None:
            candidates["standard-decoder"] = std
    cell = scan_cell(result.frame, result.scans[0].components) if result.scans else (16, 16)
    scores, local = {}, {}
    both = "sca-unguided" in candidates
    thumb_y = luma(f.thumb_up) if both and f.thumb_up is not None else None
    for name, c in candidates.items():
        view = judged_view(c)
        y = luma(view)  # read by both judgements
        scores[name] = judge(view, cell, f.thumbnail, y=y).score
        if both and name in SCA_CANDIDATES:
            local[name] = local_evidence(view, cell, thumb_y, y=y)
        del view, y
    kept = kept_candidate(scores)
    chosen, borrowed = candidates[kept], False
    if kept == "sca-unguided":  # placed alike: the levels the thumbnail pinned (acir_core.sca.borrow)
        levelled = borrow_levels(chosen.sca, f.sca, result)
        if levelled is not None:
            chosen = refill(replace(chosen, sca=levelled, unfilled=levelled.rgb, rgb=levelled.rgb), result,
                            f.thumbnail, f.thumbnail_note, thumb_up=f.thumb_up)
            borrowed = True
            local[kept] = local_evidence(judged_view(chosen), cell, thumb_y)  # its levels changed
    del thumb_y
    chosen = fill_breaks(chosen, result)  # judged with them, right content at an edge along an MCU row lost
    share = None
    if kept in local and len(local) == 2:  # where the other SCA differs and the evidence there cannot tell
        other = next(name for name in local if name != kept)
        cells = disputed(chosen.unfilled, candidates[other].unfilled, local[kept], local[other], cell)
        added = cells_to_pixels(cells, cell, chosen.mask.shape) & ~chosen.mask
        share = float(added.mean())
        if share:
            chosen = replace(chosen, mask=chosen.mask | added)
        del added
    return chosen, kept, {k: round(v, 3) for k, v in scores.items()}, borrowed, share


def _decode_or_graft(data: bytes, donors, stage: str, source: str, max_pixels: int,
                     memory_budget: int, search: bool) -> tuple[DecodeResult, Grafted | None]:
    """The robust decode of ``data``; for a file whose header is lost or unreadable, the decode
    of its surviving data under a header put back (:func:`acir_core.graft.graft`: its own
    surviving segments, else a donor's; ``donors`` a sequence or a callable giving one).
    ``search``: :func:`~acir_core.jpeg.decoder.decode`'s ``search_refinements``."""
    try:
        check_budget(data, stage=stage, source=source, max_pixels=max_pixels, memory_budget=memory_budget)
        return decode(data, "robust", source=source, max_pixels=max_pixels,
                      search_refinements=search), None
    except (NotJpeg, CorruptHeader) as exc:
        if not header_lost(data):
            raise
        why = "JPEG header lost" if isinstance(exc, NotJpeg) else f"JPEG header damaged ({exc.reason})"
        g = graft(data, donors() if callable(donors) else donors, source=source, why=why)
    check_budget(g.data, stage=stage, source=source, max_pixels=max_pixels, memory_budget=memory_budget)
    return g.result, g


def _without_repeats(data: bytes, result: DecodeResult, source: str, max_pixels: int):
    """``data`` and its decode with every stretch written twice taken out
    (:func:`acir_core.damage.undo_repeats`), and where each was, when that decodes as an intact
    file or cleaner (fewer resyncs, missing MCUs and MCUs left over after the last): periodic
    data (a flat area's codes) can look like a copy, and taking it out would lose MCUs."""
    before = None
    if result.clean:  # only inside what was decoded: bytes after the last MCU are not the photo's
        before = max(sr.file_offset(sr.n_bits - sr.trailing_bits) for sr in result.scans)
    undone = undo_repeats(data, before=before, source=source)
    if undone is None:
        return data, result, None
    if result.deferred:  # compared in full: a first look loses a refinement scan's rest at a failure
        result = decode(data, "robust", source=source, max_pixels=max_pixels)
    again = decode(undone[0], "robust", source=source, max_pixels=max_pixels)

    def hurt(r: DecodeResult) -> int:
        return len(r.resyncs) + int(r.missing.sum()) + sum(int(s.segment_extra.sum()) for s in r.scans)
    if again.clean or hurt(again) < hurt(result):
        return undone[0], again, undone[1]
    return data, result, None


def _thumbnail_of(data: bytes, grafted: Grafted | None, result: DecodeResult, thumbnail, source: str):
    """The thumbnail to use: for a grafted file, a JPEG that survived in what is left of the
    header (searched in the damaged bytes, before the scan data)."""
    if grafted is None or not isinstance(thumbnail, str):
        return resolve_thumbnail(data, thumbnail, source)
    found = embedded_previews(data, result.frame.width, result.frame.height, source,
                              scan_start=grafted.record["scan_start"])
    if not found:
        return None, "none"
    best = max(found, key=lambda t: t.rgb.shape[0] * t.rgb.shape[1])
    return best.rgb, f"embedded-surviving-{best.rgb.shape[1]}x{best.rgb.shape[0]}"


def _decode_fields(result: DecodeResult) -> dict:
    """The record's fields that say what the decode met."""
    summary = result.summary()
    return {k: summary[k] for k in ("resyncs", "bits_skipped", "suspect_fraction", "missing_fraction")}


def _shown(result: DecodeResult, coefficients: tuple[np.ndarray, ...] | None = None) -> tuple[np.ndarray, ...]:
    """The coefficients as the renders show them: a progressive frame's blocks that never received
    their lowest AC with it estimated (:func:`acir_core.jpeg.smoothing.smoothed`), so that the
    repaired JPEG shows what acir does."""
    return smoothed(result.frame, result.coefficients if coefficients is None else coefficients, result.bands,
                    result.qtables)


def restore_photo(data: bytes, *, source: str = "", stage: str = "sca", thumbnail="auto",
                  options: AwareOptions | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                  memory_budget: int = 0, donors=()) -> PhotoResult:
    """Decode ``data`` robustly; if it is intact say so, else compensate it up to ``stage``
    ("gca" prepares everything the network needs; the caller runs it). ``thumbnail``: "auto"
    (the embedded one), None, or an RGB array. ``donors``: :class:`~acir_core.graft.Donor` s (or
    a callable giving them, called only when needed) whose tables may stand in for a lost
    header. Raises the decoder's errors (``NotJpeg``, ``UnsupportedJpeg``, ``ImageTooLarge``,
    ``HeaderLost``, ...) for files it cannot handle at all."""
    if stage not in RESTORE_STAGES:
        raise InvalidParameter(f"stage must be one of {', '.join(RESTORE_STAGES)}, got {stage!r}")
    undone = undo_text_mode(data)
    if undone is not None:  # every LF has a CR before it: a text-mode transfer, taken back first
        data = undone[0]
    t0 = time.perf_counter()
    # past the decode stage a damaged progressive file is first looked at without its refinements'
    # searches, and decoded in full once its DC hint is known
    search = stage == "decode"
    result, grafted = _decode_or_graft(data, donors, stage, source, max_pixels, memory_budget, search)
    repeats = None
    if grafted is None:  # a copy can decode without a failure where markers restart it
        data, result, repeats = _without_repeats(data, result, source, max_pixels)
    t1 = time.perf_counter()
    rec = {"width": result.frame.width, "height": result.frame.height, **_decode_fields(result),
           "quality": round(ijg_quality(result.qtables[0]), 1)}
    timings = {"decode": t1 - t0}
    if undone is not None:
        rec["text_mode_undone"] = undone[1]
    if repeats is not None:
        rec["repeats_removed"] = [{"offset": o, "length": n} for o, n in repeats]
    original = data
    if grafted is not None:
        rec["header"] = grafted.record
        data = grafted.data
    end = None if grafted is not None else _after_clean(result, data) if result.clean else \
        _end_of_image(result, data, source)
    if end is not None:
        rec["note"] = f"{len(data) - end} bytes after the image's end (another file or leftovers), kept as they are"
    found = None  # the thumbnail, looked for once
    if result.clean and result.frame.marker == 0xC2:
        found = _thumbnail_of(original, grafted, result, thumbnail, source)
    scrambled = found is not None and silently_scrambled(result, found[0])
    if (result.clean and not scrambled) or end is not None:
        mask = np.zeros((result.frame.height, result.frame.width), bool)
        # the file itself is damaged (text mode, a header put back): restored, not passed through
        status = "clean" if undone is None and grafted is None and repeats is None else "restored"
        rec.update(status=status, stage="none", damaged_fraction=0.0, runs=0, runs_fixed=0, thumbnail="unused",
                   timings=timings)
        coded = None if status == "clean" else coded_image(data, result.frame, result.qtables,
                                                            result.restart_intervals, _shown(result))
        return PhotoResult(source=source, status=status, stage="none", image=result.rgb, mask=mask, coded=coded,
                           record=rec)
    thumb = origin = hint = None
    if stage != "decode":
        thumb, origin = found or _thumbnail_of(original, grafted, result, thumbnail, source)
        hint = dc_hint(result, thumb) if grafted is None else None
        if hint is not None or result.deferred:  # with the AC first scans placed against the DC put right
            result = decode(data, "robust", source=source, max_pixels=max_pixels, dc_hint=hint)
            t1 = time.perf_counter()
            timings["decode"] = t1 - t0
            rec.update(_decode_fields(result))
    if result.frame.marker == 0xC2:
        bd = band_damage(result)
        rec["progressive"] = {"scans": len(result.scans), "coarse_fraction": float(bd.detail_lost.mean()),
                              "lost": [s for s in bd.scans if s["mcus_lost"]]}
        if scrambled:
            rec["progressive"]["dc_scrambled"] = True  # decoded without a failure, parts from the thumbnail
        if hint is not None:
            rec["progressive"]["dc_hint"] = True  # decoded again, the AC placed against the DC put right
    if stage == "decode":
        sr = result.scans[0]
        grid = (sr.suspect | ~sr.decoded).reshape(sr.mcu_rows, sr.mcu_cols)
        mask = pixel_mask(result, sr, grid, 0)
        rec.update(status="restored", stage="decode", damaged_fraction=float(mask.mean()), runs=0, runs_fixed=0,
                   thumbnail="unused", timings=timings)
        coded = coded_image(data, result.frame, result.qtables, result.restart_intervals, _shown(result))
        return PhotoResult(source=source, status="restored", stage="decode", image=result.rgb, mask=mask,
                           region=mask, coded=coded, record=rec)
    f, kept, evidence, borrowed, disputed_share = _best_supported(result, data, thumb, options, source)
    timings["sca"] = time.perf_counter() - t1
    fixed = sum(1 for s in f.sca.segments if s.shift or any(s.dc))
    rec.update(status="restored", stage="sca", damaged_fraction=float(f.mask.mean()),
               filled_fraction=float(f.region.mean()), runs=len(f.sca.segments), runs_fixed=fixed,
               thumbnail=origin, fill=f.fill, timings=timings)
    if f.thumbnail_note:
        rec["thumbnail_frame"] = f.thumbnail_note
    rec["kept"] = kept
    rec["evidence"] = evidence
    if borrowed:
        rec["levels"] = "guided"  # the unguided result with the guided SCA's DC per run
    if disputed_share is not None:
        rec["disputed_fraction"] = disputed_share
    if any(sr.cut for sr in result.scans) and rec["missing_fraction"] > 0:
        rec["status"] = "truncated"  # what arrived restored, the rest filled: the file was cut
    coded = coded_image(data, result.frame, result.qtables, result.restart_intervals,
                        _shown(result, f.sca.coefficients))
    return PhotoResult(source=source, status="restored", stage="sca", image=f.rgb, mask=f.mask, region=f.region,
                       thumb_up=f.thumb_up, thumbnail_source=origin, unfilled=f.unfilled, coded=coded, record=rec)
