"""One training/evaluation example: the network's inputs for a damaged photo and its ground truth,
made by the engine's own SCA + fill route so the network learns on exactly what ``acir restore``
later gives it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from acir_core.jpeg.decoder import DecodeResult, decode
from acir_core.thumbnail import extract_thumbnail
from acir_core.sca.compensate import compensate, decode_for
from acir_core.sca.fill import upsampled_thumbnail
from acir_engine.photo import restore_photo


@dataclass(frozen=True, eq=False, kw_only=True)
class Example:
    """Full-size arrays: ``sca`` (aware SCA with the thumbnail fill, H×W×3 uint8), ``thumb_up``
    (the thumbnail bicubic-up-sampled to H×W, uint8), ``mask`` (H×W bool: the pixels the network
    restores, those the fill took from the thumbnail; elsewhere ``sca`` passes through),
    ``clean`` (the clean decode, or None at inference), ``aware`` (aware SCA before the fill)."""

    sca: np.ndarray = field(repr=False)
    thumb_up: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    clean: np.ndarray | None = field(default=None, repr=False)
    aware: np.ndarray | None = field(default=None, repr=False)
    name: str = ""


def gca_inputs(result: DecodeResult, thumbnail: np.ndarray, name: str = "") -> Example:
    """From a robust decode and a thumbnail to the network's inputs (aware SCA + fill, the region
    the fill took from the thumbnail, up-sampled thumbnail)."""
    f = compensate(result, thumbnail)
    return Example(sca=f.rgb, thumb_up=f.thumb_up, mask=f.region, aware=f.unfilled, name=name)


def example_from_bytes(corrupted: bytes, clean_jpeg: bytes | None, name: str = "",
                       thumbnail: np.ndarray | None = None) -> Example | None:
    """``corrupted`` restored by the engine (:func:`acir_engine.photo.restore_photo` up to the
    network: repeats, the evidence between guided, unguided SCA and the standard decoder, the
    fill); None when it has no thumbnail (GCA needs one). A file that decodes intact gives an
    empty mask."""
    if thumbnail is None:
        found = extract_thumbnail(corrupted, name)
        if found is None:
            return None
        thumbnail = found.rgb
    clean = decode(clean_jpeg, "strict", source=name).rgb if clean_jpeg is not None else None
    res = restore_photo(corrupted, source=name, stage="gca", thumbnail=thumbnail)
    h, w = res.image.shape[:2]
    if res.region is None or res.thumb_up is None:  # intact (or a damage the file itself undid)
        return Example(sca=res.image, thumb_up=upsampled_thumbnail(thumbnail, w, h), mask=np.zeros((h, w), bool),
                       clean=clean, aware=res.image, name=name)
    return Example(sca=res.image, thumb_up=res.thumb_up, mask=res.region, clean=clean,
                   aware=res.unfilled if res.unfilled is not None else res.image, name=name)


def with_paper_sca(ex: Example, corrupted: bytes) -> Example:
    """The ablation input: the paper's SCA image instead of aware SCA + fill (the aware mask is
    kept only to place crops and to measure)."""
    return replace(ex, sca=compensate(decode_for(corrupted, "paper", ex.name), None, method="paper").rgb)


def example_from_row(row: dict, sca_input: str = "aware") -> Example:
    """A dataset row (``pipelines.schema``) to an example, compensated again from its corrupted
    file by the same route as ``acir restore`` (the thumbnail embedded in it, else the row's
    ``thumbnail_jpeg``). ``sca_input="paper"``: the paper's SCA image as the network input
    (ablation)."""
    from pipelines.dataset import decode_image  # rows come from the dataset reader (pyarrow) anyway

    name = row.get("sample_id", "")
    found = extract_thumbnail(row["corrupted_jpeg"], name)
    thumb = found.rgb if found is not None else decode_image(row["thumbnail_jpeg"])
    ex = example_from_bytes(row["corrupted_jpeg"], row["clean_jpeg"], name, thumb)
    return with_paper_sca(ex, row["corrupted_jpeg"]) if sca_input == "paper" else ex
