"""Reading a generated dataset: iterate rows, decode image columns, filter, summarise.

Used by ``acir dataset info PATH`` and by the training data loader. Streams row groups, so a
dataset larger than memory can be read; paths go through fsspec (local, gs://, memory://).
"""
from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from acir_core.errors import BadInput
from acir_core.imagefile import load_rgb
from acir_engine.outputs import png_bytes, write_atomic
from acir_engine.samples import SCORED_IMAGES

IMAGE_COLUMNS = ("robust_png", "paper_sca_png", "aware_sca_png", "mask_png")
JPEG_COLUMNS = ("clean_jpeg", "corrupted_jpeg", "thumbnail_jpeg")


def shard_paths(path: str) -> list[str]:
    fs, _, (root,) = fsspec.get_fs_token_paths(path.rstrip("/"))
    if not fs.exists(root):
        raise BadInput("no such dataset folder", source=path)
    found = sorted(p for p in fs.glob(f"{root}/*.parquet"))
    if not found:
        raise BadInput("no Parquet shards in the folder", source=path)
    return [fs.unstrip_protocol(p) for p in found]


def decode_image(blob: bytes) -> np.ndarray | None:
    """PNG/JPEG bytes to an array (RGB H×W×3, or H×W for the mask); None for an empty column."""
    if not blob:
        return None
    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("L") if im.mode in ("L", "1") else im.convert("RGB"))


def decode_jpeg(blob: bytes) -> np.ndarray | None:
    """A JPEG column as a standard decoder shows it: the corrupted file is damaged by design, and
    libjpeg gives up on some damage with an error ("broken data stream"), so what it decoded up to
    there is returned (grey after), as the ``pillow`` stage scores it; None for an empty column."""
    return load_rgb(blob).rgb if blob else None


def iter_rows(path: str, columns: list[str] | None = None, split: str | None = None,
              ber: float | None = None, decode_images: bool = False) -> Iterator[dict]:
    """Rows of the dataset at ``path`` (a folder of shards), one row group at a time."""
    for shard in shard_paths(path):
        with fsspec.open(shard, "rb") as f:
            pf = pq.ParquetFile(f)
            for g in range(pf.num_row_groups):
                for row in pf.read_row_group(g, columns=columns).to_pylist():
                    if split is not None and row.get("split") != split:
                        continue
                    if ber is not None and not math.isclose(row.get("ber", -1.0), ber, rel_tol=1e-9):
                        continue
                    if decode_images:
                        for col in IMAGE_COLUMNS:
                            if col in row:
                                row[col] = decode_image(row[col])
                        for col in JPEG_COLUMNS:
                            if col in row:
                                row[col] = decode_jpeg(row[col])
                    yield row


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    rows: int
    images: int
    splits: dict
    bers: dict
    bytes_on_disk: int
    mean_y_psnr: dict  # BER -> stage -> mean dB
    damaged_fraction: float
    dead_letters: int
    manifest: dict

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def info(path: str) -> DatasetInfo:
    """Counts, BER histogram, mean metrics per stage and BER, size on disk."""
    metric_cols = [f"y_psnr_{s}" for s in SCORED_IMAGES]
    cols = ["image_id", "split", "ber", "damaged_fraction"] + metric_cols
    rows = list(iter_rows(path, columns=cols))
    fs, _, (root,) = fsspec.get_fs_token_paths(path.rstrip("/"))
    size = sum(fs.size(p) for p in fs.glob(f"{root}/*.parquet"))
    per_ber: dict = {}
    for r in rows:
        per_ber.setdefault(r["ber"], []).append(r)
    means = {f"{b:g}": {s: float(np.nanmean([r[f"y_psnr_{s}"] for r in rs])) for s in SCORED_IMAGES}
             for b, rs in sorted(per_ber.items())}
    dead = 0
    if fs.exists(f"{root}/dead_letter.jsonl"):
        dead = sum(1 for line in fs.cat(f"{root}/dead_letter.jsonl").decode().splitlines() if line.strip())
    manifest = json.loads(fs.cat(f"{root}/manifest.json")) if fs.exists(f"{root}/manifest.json") else {}
    return DatasetInfo(rows=len(rows), images=len({r["image_id"] for r in rows}),
                       splits=dict(Counter(r["split"] for r in rows)),
                       bers={f"{b:g}": len(rs) for b, rs in sorted(per_ber.items())}, bytes_on_disk=size,
                       mean_y_psnr=means,
                       damaged_fraction=float(np.nanmean([r["damaged_fraction"] for r in rows])) if rows else float("nan"),
                       dead_letters=dead, manifest=manifest)


def write_previews(path: str, out_dir: str, n: int = 3) -> list[str]:
    """A few side-by-side PNGs (corrupted as Pillow shows it | aware SCA | mask) for a person to look at."""
    written = []
    cols = ["sample_id", "corrupted_jpeg", "aware_sca_png", "mask_png", "clean_jpeg"]
    for row in iter_rows(path, columns=cols):
        if len(written) >= n:
            break
        parts = [load_rgb(row["corrupted_jpeg"]).rgb]
        for col in ("aware_sca_png", "mask_png"):
            img = decode_image(row[col])
            if img is not None:
                parts.append(np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img)
        parts.append(load_rgb(row["clean_jpeg"]).rgb)
        strip = np.concatenate(parts, axis=1)
        im = Image.fromarray(strip)
        im.thumbnail((2048, 2048))
        target = f"{out_dir.rstrip('/')}/{row['sample_id']}.png"
        write_atomic(target, png_bytes(np.asarray(im)))
        written.append(target)
    return written
