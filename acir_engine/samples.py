"""Dataset samples: a clean photo framed and encoded, corrupted, decoded, compensated by the
same SCA + fill route as ``acir restore``, scored, and encoded as a Parquet row.

The Beam DoFns in :mod:`pipelines.generate`, the benchmark's plain loop, on-the-fly training data
and ``acir evaluate`` all call these, so they do exactly the same work. Every function is
deterministic: seeds come from the source URI, the BER and the variant index, never from worker
order or time."""
from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from PIL import Image

from acir_core import __version__
from acir_core.bitflip import corrupt
from acir_core.damage import apply_damage, parse_damage
from acir_core.errors import BadInput, InvalidParameter
from acir_core.imagefile import load_rgb
from acir_core.jpeg.decoder import decode
from acir_core.metrics import psnr, rgb_to_y, ssim
from acir_core.sca.compensate import compensate, decode_for
from acir_core.thumbnail import camera_thumbnail, extract_thumbnail, synthetic_thumbnail, with_thumbnail
from acir_engine.outputs import jpeg_bytes, png_bytes

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
IMAGE_COLUMNS = ("none", "aware", "all")
THUMBNAIL_STYLES = ("pillow", "camera")
SCORED_IMAGES = ("pillow", "robust", "paper_sca", "aware_sca", "aware_fill")  # scored per row


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything that decides a dataset's bytes (recorded in its manifest)."""

    width: int = 2048
    height: int = 1024
    keep_size: bool = False
    quality: int = 75
    subsampling: str = "4:2:0"
    restart_rows: int = 0
    progressive: bool = False  # photos stored progressive (Pillow's 10-scan script), not baseline
    thumbnail: bool = True
    thumbnail_style: str = "pillow"  # "camera": letterboxed, toned, sharpened JPEG (thumbnail.camera_thumbnail)
    fde: str = "aes-cbc-essiv:sha256"
    sector_size: int = 512
    region: str = "scan"
    bers: tuple[float, ...] = (1e-5,)
    variants: int = 1
    seed: int = 0
    splits: tuple[tuple[str, float], ...] = (("train", 0.9), ("val", 0.05), ("test", 0.05))
    images: str = "aware"
    max_pixels: int = 200_000_000
    damage: tuple[str, ...] = ()  # acir_core.damage specs applied after the flips (e.g. "lose:16k")

    def __post_init__(self) -> None:
        if self.subsampling not in SUBSAMPLING:
            raise InvalidParameter(f"subsampling must be one of {', '.join(SUBSAMPLING)}, got {self.subsampling!r}")
        if not 1 <= self.quality <= 100:
            raise InvalidParameter(f"quality must be in [1, 100], got {self.quality}")
        if self.thumbnail_style not in THUMBNAIL_STYLES:
            raise InvalidParameter(f"thumbnail style must be one of {', '.join(THUMBNAIL_STYLES)}, "
                                   f"got {self.thumbnail_style!r}")
        if self.images not in IMAGE_COLUMNS:
            raise InvalidParameter(f"images must be one of {', '.join(IMAGE_COLUMNS)}, got {self.images!r}")
        for spec in self.damage:
            parse_damage(spec)  # refused here, before any photo is read
        if self.variants < 1:
            raise InvalidParameter(f"variants must be >= 1, got {self.variants}")
        total = sum(f for _, f in self.splits)
        if not math.isclose(total, 1.0, abs_tol=1e-6) or any(f < 0 for _, f in self.splits):
            raise InvalidParameter(f"split fractions must be >= 0 and sum to 1, got {self.splits}")


def stable_int(*parts: object) -> int:
    """A 63-bit integer from the parts' text: the same on every machine and Python version."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def split_of(uri: str, cfg: Config) -> str:
    """The split a source belongs to, from a hash of its URI alone: adding sources never moves old ones."""
    u = (stable_int("split", uri) % 1_000_000) / 1_000_000
    acc = 0.0
    for name, frac in cfg.splits:
        acc += frac
        if u < acc:
            return name
    return cfg.splits[-1][0]


@dataclass(frozen=True, eq=False, kw_only=True)
class Prepared:
    """A clean photo encoded the way the dataset asks: its JPEG (with thumbnail). Kept small on
    purpose (no decoded pixels): it is what the pipeline shuffles between workers."""

    uri: str
    image_id: str
    split: str
    jpeg: bytes = field(repr=False)
    thumbnail: np.ndarray = field(repr=False)

    def clean_rgb(self) -> np.ndarray:
        """The ground truth: the clean JPEG's decode (decoded again where needed: it is cheap)."""
        return decode(self.jpeg, "strict", source=self.uri).rgb


def _fit(im: Image.Image, width: int, height: int) -> Image.Image:
    """Resize to cover width x height, then centre-crop (the paper's 2048x1024 framing)."""
    scale = max(width / im.width, height / im.height)
    size = (max(width, round(im.width * scale)), max(height, round(im.height * scale)))
    im = im.resize(size, Image.Resampling.LANCZOS)
    left, top = (im.width - width) // 2, (im.height - height) // 2
    return im.crop((left, top, left + width, top + height))


def prepare(uri: str, data: bytes, cfg: Config) -> Prepared:
    """Decode any photo (JPEG, PNG, ...), frame it, re-encode as the dataset's JPEG with a thumbnail."""
    loaded = load_rgb(data, uri, cfg.max_pixels)
    if not loaded.complete:
        raise BadInput(f"source image is damaged ({loaded.problem})", source=uri)
    im = Image.fromarray(loaded.rgb)
    if not cfg.keep_size:
        im = _fit(im, cfg.width, cfg.height)
    buf = io.BytesIO()
    kw = {"restart_marker_rows": cfg.restart_rows} if cfg.restart_rows else {}
    im.save(buf, "JPEG", quality=cfg.quality, subsampling=SUBSAMPLING[cfg.subsampling], progressive=cfg.progressive,
            **kw)
    jpeg = buf.getvalue()
    clean = decode(jpeg, "strict", source=uri, max_pixels=cfg.max_pixels).rgb
    if cfg.thumbnail:
        made = camera_thumbnail(clean, stable_int("camera-thumbnail", cfg.seed, uri)) \
            if cfg.thumbnail_style == "camera" else None
        jpeg = with_thumbnail(jpeg, source=uri, thumbnail_jpeg=made)
        thumb = extract_thumbnail(jpeg, uri)
        thumb_rgb = thumb.rgb if thumb is not None else synthetic_thumbnail(clean)
    else:
        thumb_rgb = synthetic_thumbnail(clean)
    image_id = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return Prepared(uri=uri, image_id=image_id, split=split_of(uri, cfg), jpeg=jpeg, thumbnail=thumb_rgb)


@dataclass(eq=False, kw_only=True)
class Sample:
    """One (image, BER, variant) as it moves through the stages; later stages fill more fields
    (each stage returns a new Sample, see :meth:`shed`)."""

    prepared: Prepared = field(repr=False)
    ber: float
    variant: int
    seed: int
    corrupted: bytes = field(default=b"", repr=False)
    flip_bits: tuple[int, ...] = field(default=(), repr=False)
    bytes_changed: int = 0
    damage: str = ""  # JSON of the damage events (acir_core.damage), "" for none
    decoded: object = field(default=None, repr=False)
    paper: np.ndarray | None = field(default=None, repr=False)
    aware: np.ndarray | None = field(default=None, repr=False)
    aware_fill: np.ndarray | None = field(default=None, repr=False)
    mask: np.ndarray | None = field(default=None, repr=False)
    sca_seconds: float = 0.0
    metrics: dict = field(default_factory=dict)

    @property
    def sample_id(self) -> str:
        return f"{self.prepared.image_id}-ber{self.ber:g}-v{self.variant}"

    def shed(self) -> None:
        """Drop the corrupted file, the decode and the images, once the next stage's Sample holds
        its own references to them. Beam's DaskRunner keeps every stage's outputs of a bundle
        alive until the whole run ends (a ParDo's receiver collects them, and the worker keeps
        the task), tens of MB a sample."""
        self.corrupted = b""
        self.decoded = self.paper = self.aware = self.aware_fill = self.mask = None


def expand(prepared: Prepared, cfg: Config) -> list[Sample]:
    return [Sample(prepared=prepared, ber=ber, variant=v, seed=stable_int(cfg.seed, prepared.uri, repr(ber), v))
            for ber in cfg.bers for v in range(cfg.variants)]


def corrupt_stage(s: Sample, cfg: Config) -> Sample:
    c = corrupt(s.prepared.jpeg, fde=cfg.fde, ber=s.ber, region=cfg.region, seed=s.seed,
                sector_size=cfg.sector_size, source=s.prepared.uri)
    data, damage = c.data, ""
    if cfg.damage:
        d = apply_damage(data, [parse_damage(spec) for spec in cfg.damage], seed=s.seed, sector_size=cfg.sector_size,
                         source=s.prepared.uri)
        data, damage = d.data, json.dumps([asdict(e) for e in d.events])
    return replace(s, corrupted=data, flip_bits=tuple(c.flip_bits.tolist()), bytes_changed=int(c.changed_bytes.size),
                   damage=damage)


def decode_stage(s: Sample, cfg: Config) -> Sample:
    return replace(s, decoded=decode(s.corrupted, "robust", source=s.prepared.uri, max_pixels=cfg.max_pixels))


def sca_stage(s: Sample, cfg: Config) -> Sample:
    import time

    t = time.perf_counter()
    f = compensate(s.decoded, s.prepared.thumbnail)
    paper = compensate(decode_for(s.corrupted, "paper"), None, method="paper")
    return replace(s, aware=f.unfilled, aware_fill=f.rgb, mask=f.mask, paper=paper.rgb,
                   sca_seconds=time.perf_counter() - t)


def metrics_stage(s: Sample, cfg: Config) -> Sample:
    clean = s.prepared.clean_rgb()
    pillow = load_rgb(s.corrupted).rgb
    stages = {"pillow": pillow, "robust": s.decoded.rgb, "paper_sca": s.paper, "aware_sca": s.aware,
              "aware_fill": s.aware_fill}
    out = {}
    clean_y = rgb_to_y(clean)  # once for all five stages (y_psnr/y_ssim would convert it ten times)
    for name, img in stages.items():
        if img is None or img.shape != clean.shape:
            out[f"y_psnr_{name}"], out[f"y_ssim_{name}"] = float("nan"), float("nan")
            continue
        y = rgb_to_y(img)
        p = psnr(y, clean_y)
        out[f"y_psnr_{name}"] = 100.0 if math.isinf(p) else p  # identical: capped so means stay finite
        out[f"y_ssim_{name}"] = ssim(y, clean_y)
    return replace(s, metrics=out)


def png(image: np.ndarray | None) -> bytes:
    """A row's PNG column: zlib level 1, a third of level 6's time on 2K photos for files a few %
    larger (photo content barely compresses either way); bool masks as 1-bit PNGs."""
    return png_bytes(image, level=1)


def encode_row(s: Sample, cfg: Config) -> dict:
    """The Parquet row (schema in :mod:`pipelines.schema`)."""
    r = s.decoded
    p = s.prepared
    n_mcus = max(r.mcus_expected, 1)
    keep = cfg.images
    row = {
        "sample_id": s.sample_id, "image_id": p.image_id, "source_uri": p.uri, "split": p.split,
        "width": r.frame.width, "height": r.frame.height, "seed": s.seed, "ber": s.ber, "variant": s.variant,
        "fde": cfg.fde, "sector_size": cfg.sector_size, "region": cfg.region, "quality": cfg.quality,
        "subsampling": cfg.subsampling, "restart_rows": cfg.restart_rows, "progressive": cfg.progressive,
        "n_flips": len(s.flip_bits), "flip_bits": list(s.flip_bits), "plaintext_bytes_changed": s.bytes_changed,
        "damage": s.damage,
        "resyncs": len(r.resyncs), "bits_skipped": r.bits_skipped,
        "suspect_fraction": float(r.suspect.sum()) / n_mcus, "missing_fraction": float(r.missing.sum()) / n_mcus,
        "damaged_fraction": float(s.mask.mean()) if s.mask is not None else float("nan"),
        "clean_jpeg": p.jpeg, "corrupted_jpeg": s.corrupted, "thumbnail_jpeg": jpeg_bytes(p.thumbnail, quality=95),
        "robust_png": png(r.rgb) if keep == "all" else b"",
        "paper_sca_png": png(s.paper) if keep == "all" else b"",
        "aware_sca_png": png(s.aware) if keep in ("aware", "all") else b"",
        "mask_png": png(s.mask) if keep in ("aware", "all") else b"",  # 1-bit PNG: faster and smaller
        "code_version": __version__,
    }
    row.update(s.metrics)
    return row


def process(uri: str, data: bytes, cfg: Config) -> list[dict]:
    """Everything for one source photo, without Beam (the benchmark's reference loop)."""
    prepared = prepare(uri, data, cfg)
    rows = []
    for s in expand(prepared, cfg):
        for stage in (corrupt_stage, decode_stage, sca_stage, metrics_stage):
            s = stage(s, cfg)
        rows.append(encode_row(s, cfg))
    return rows


__all__ = ["Config", "Prepared", "Sample", "prepare", "expand", "corrupt_stage", "decode_stage", "sca_stage",
           "metrics_stage", "encode_row", "process", "split_of", "stable_int"]
