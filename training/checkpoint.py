"""Checkpoints (full training state, for resuming) and shipped weights (the generator only, in
bf16, with its config and a model card): both plain dicts of tensors and primitives, so
``torch.load(weights_only=True)`` reads them without unpickling code."""
from __future__ import annotations

import io
import os
from pathlib import Path

import fsspec
import torch

from acir_core.errors import BadInput
from acir_engine.outputs import write_atomic
from training.archs.gca import GCAConfig, GCANet

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "gca-v2.pt"


def save_atomic(obj: dict, path: str) -> None:
    """torch.save through the engine's atomic writer: a crash never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_atomic(path, buf.getvalue())


def load_dict(path: str) -> dict:
    try:
        with fsspec.open(path, "rb") as f:
            return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BadInput("no such checkpoint or weights file", source=path) from None
    except Exception as e:  # torch raises several types for a damaged or foreign file
        raise BadInput(f"not a readable torch weights file ({type(e).__name__}: {e})", source=path) from None


def export_weights(model: GCANet, path: str, meta: dict) -> int:
    """Write the generator in bf16 (half the bytes of fp32, same range). Returns the file size."""
    state = {k: v.detach().to("cpu", torch.bfloat16) if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    save_atomic({"format": "acir-gca", "version": 1, "config": model.config.to_dict(), "state": state,
                 "meta": meta}, path)
    fs, _, (p,) = fsspec.get_fs_token_paths(path)
    return int(fs.size(p))


def load_model(path: str | os.PathLike | None = None, device: str = "cpu") -> tuple[GCANet, dict]:
    """A generator from shipped weights (default: the packaged ``gca-v2.pt``) or from a training
    checkpoint; float32, eval mode, on ``device``. Returns the model and its metadata."""
    path = str(path or DEFAULT_WEIGHTS)
    d = load_dict(path)
    if d.get("format") == "acir-gca":
        state, cfg, meta = d["state"], d["config"], d.get("meta", {})
    elif "model" in d and "config" in d:  # a training checkpoint
        state, cfg, meta = d["model"], d["config"]["model"], {"step": d.get("step")}
    else:
        raise BadInput("not an acir GCA weights file or checkpoint", source=path)
    try:
        model = GCANet(GCAConfig(**cfg))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (TypeError, RuntimeError) as e:
        raise BadInput(f"weights do not fit the network ({str(e).splitlines()[0]})", source=path) from None
    return model.to(device).eval(), meta
