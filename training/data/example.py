"""One training/evaluation example: the network's inputs for a damaged photo and its ground truth."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from acir_core.jpeg.decoder import DecodeResult, decode
from acir_core.jpeg.tables import first_scan_cell
from acir_core.restore import sca_with_fill
from acir_core.sca.fill import disagreeing, fill_from_thumbnail, upsampled_thumbnail
from acir_core.thumbnail import extract_thumbnail


@dataclass(frozen=True, eq=False)
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
    """From a robust decode and a thumbnail to the network's inputs (aware SCA + fill, mask,
    up-sampled thumbnail): what both training and ``acir restore`` feed the network."""
    f = sca_with_fill(result, thumbnail)
    return Example(f.rgb, f.thumb_up, f.region, aware=f.aware, name=name)


def example_from_bytes(corrupted: bytes, clean_jpeg: bytes | None, name: str = "",
                       thumbnail: np.ndarray | None = None) -> Example | None:
    """Decode and compensate ``corrupted``; None when it has no thumbnail (GCA needs one)."""
    if thumbnail is None:
        found = extract_thumbnail(corrupted, name)
        if found is None:
            return None
        thumbnail = found.rgb
    ex = gca_inputs(decode(corrupted, "robust", source=name), thumbnail, name)
    clean = decode(clean_jpeg, "strict", source=name).rgb if clean_jpeg is not None else None
    return Example(ex.sca, ex.thumb_up, ex.mask, clean, ex.aware, name)


def _png(blob: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im)


def _png_mask(blob: bytes) -> np.ndarray:
    """Damage mask, stored 1-bit (current datasets) or as 0/255 greyscale (older ones)."""
    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("L")) > 127


def with_paper_sca(ex: Example, corrupted: bytes) -> Example:
    """The ablation input: the paper's SCA image instead of aware SCA + fill (the aware mask is
    kept only to place crops and to measure)."""
    from acir_core.sca.paper import paper_sca

    paper = paper_sca(decode(corrupted, "robust", resync="paper", source=ex.name)).rgb
    return Example(paper, ex.thumb_up, ex.mask, ex.clean, ex.aware, ex.name)


def example_from_row(row: dict, sca_input: str = "aware") -> Example:
    """A dataset row (``pipelines.schema``) to an example, reusing the stored aware-SCA image and
    mask when the row has them (the pipeline ran the same SCA), else recomputing them.
    ``sca_input="paper"``: the paper's SCA image as the network input (ablation)."""
    if sca_input == "paper":
        return with_paper_sca(example_from_row(row), row["corrupted_jpeg"])
    name = row.get("sample_id", "")
    found = extract_thumbnail(row["corrupted_jpeg"], name)
    thumb = found.rgb if found is not None else _png(row["thumbnail_jpeg"])
    clean = decode(row["clean_jpeg"], "strict", source=name).rgb
    if not row.get("aware_sca_png") or not row.get("mask_png"):
        ex = example_from_bytes(row["corrupted_jpeg"], None, name, thumb)
        return Example(ex.sca, ex.thumb_up, ex.mask, clean, ex.aware, name)
    aware = _png(row["aware_sca_png"])
    mask = _png_mask(row["mask_png"])
    # rows keep no record of which damaged MCUs were precautions, so every one is judged at the
    # strict tolerance: a few more are taken from the thumbnail than acir restore would take
    thumb_up = upsampled_thumbnail(thumb, mask.shape[1], mask.shape[0])
    thumb_f = thumb_up.astype(np.float32)
    region = disagreeing(aware, mask, thumb_f, first_scan_cell(row["corrupted_jpeg"], name))
    return Example(fill_from_thumbnail(aware, region, thumb_f), thumb_up, region, clean, aware, name)
