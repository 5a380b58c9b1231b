"""Training configuration: one TOML file with [model], [loss], [data] and [train] tables."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields

from acir_core.errors import BadInput, InvalidParameter
from training.archs.gca import GCAConfig
from training.losses.objective import LossWeights


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """``source``: "shards" (``path`` = a dataset folder from ``acir generate``) or "onthefly"
    (``path`` = a glob of clean photos, corrupted in the workers at ``bers``)."""

    source: str = "shards"
    path: str = ""
    split: str = "train"
    bers: tuple[float, ...] = (1e-5,)
    ber_range: bool = False
    size: str = "2048x1024"  # on-the-fly framing (WxH), as the dataset pipeline's --size
    crop: int = 128
    crops_per_image: int = 8
    damage_fraction: float = 0.9
    images_per_batch: int = 2
    workers: int = 2
    cache: str = ""  # a .npz crop cache: built from the source once, then trained on (see data/cache.py)
    cache_passes: int = 1
    val_path: str = ""  # a dataset folder whose rows give fixed validation crops (optional)
    val_images: int = 8
    styles: tuple = ()  # on-the-fly: [[data.styles]] tables of dataset settings (acir_engine.samples.Config)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """``max_minutes``: stop (and checkpoint) before this wall time, so a run fits a 10-minute
    GPU slot; the next run with the same ``out`` resumes. ``init_weights``: shipped weights or a
    checkpoint of the same network to start from (fine-tuning) when ``out`` has nothing to
    resume."""

    out: str = "runs/gca"
    steps: int = 10_000
    lr: float = 2e-4
    beta1: float = 0.6
    beta2: float = 0.999
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    checkpoint_every: int = 500
    log_every: int = 20
    max_minutes: float = 0.0
    vgg_weights: str = ""
    init_weights: str = ""


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    model: GCAConfig = field(default_factory=GCAConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _build(cls, table: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = set(table) - set(known)
    if unknown:
        raise InvalidParameter(f"[{where}] has unknown keys: {', '.join(sorted(unknown))}")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(**kw)
    except TypeError as e:
        raise InvalidParameter(f"[{where}]: {e}") from None


def style_config(table: dict, where: str = "data.styles"):
    """One ``[[data.styles]]`` table as the dataset configuration it names (unknown keys and bad
    values refused with where they are)."""
    from acir_engine.samples import Config

    if not isinstance(table, dict):
        raise InvalidParameter(f"{where} must be a table, got {table!r}")
    return _build(Config, table, where)


def load_config(path: str) -> RunConfig:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise BadInput(f"cannot read config ({e.strerror or e})", source=path) from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"not valid TOML ({e})", source=path) from None
    unknown = set(doc) - {"model", "loss", "data", "train"}
    if unknown:
        raise InvalidParameter(f"{path}: unknown tables: {', '.join(sorted(unknown))}")
    cfg = RunConfig(model=_build(GCAConfig, doc.get("model", {}), "model"),
                    loss=_build(LossWeights, doc.get("loss", {}), "loss"),
                    data=_build(DataConfig, doc.get("data", {}), "data"),
                    train=_build(TrainConfig, doc.get("train", {}), "train"))
    if cfg.model.sca_input not in ("aware", "paper"):
        raise InvalidParameter(f"[model] sca_input must be 'aware' or 'paper', got {cfg.model.sca_input!r}")
    if cfg.model.sca_input == "paper" and (cfg.model.use_mask or cfg.data.source != "shards"):
        raise InvalidParameter("[model] sca_input = 'paper' (ablation) needs use_mask = false and shards data")
    if cfg.data.source not in ("shards", "onthefly"):
        raise InvalidParameter(f"[data] source must be 'shards' or 'onthefly', got {cfg.data.source!r}")
    for i, style in enumerate(cfg.data.styles):
        style_config(style, f"data.styles #{i + 1}")
    if not cfg.data.path:
        raise InvalidParameter("[data] path is required")
    if cfg.data.crop % cfg.model.multiple:
        raise InvalidParameter(f"[data] crop must be a multiple of {cfg.model.multiple}, got {cfg.data.crop}")
    return cfg
