"""Tiled GCA inference: only tiles that touch the region to restore run the network, overlapping
tiles are blended with tent weights, and pixels outside the region are the input's, unchanged.

This is the one module the engine reaches for the network (through ``acir_engine.network``): it
imports only torch, the architectures and the checkpoint loader. Memory stays bounded by the tile
size (a 12-Mpx photo needs the image arrays plus one tile's activations)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.archs.gca import GCANet
from training.checkpoint import DEFAULT_WEIGHTS, load_model


@dataclass(frozen=True, kw_only=True)
class TileOptions:
    tile: int = 512
    overlap: int = 64
    batch: int = 4


def _tent(n: int, overlap: int) -> np.ndarray:
    ramp = np.minimum(np.arange(n) + 1, np.arange(n)[::-1] + 1).astype(np.float32)
    return np.minimum(ramp / max(overlap, 1), 1.0)


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    s = list(range(0, length - tile, step))
    return s + [length - tile]


def _pad_to(a: np.ndarray, h: int, w: int) -> np.ndarray:
    pad = [(0, h - a.shape[0]), (0, w - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad, mode="reflect" if min(a.shape[:2]) > 1 else "edge")


@torch.no_grad()
def run_tiles(model: GCANet, image: np.ndarray, thumb_up: np.ndarray, region: np.ndarray, *,
              device: str = "cpu", options: TileOptions | None = None) -> np.ndarray:
    """The restored H×W×3 uint8 photo from the network's inputs: ``image`` (SCA + fill, uint8),
    ``thumb_up`` (the thumbnail up-sampled to H×W, uint8) and ``region`` (H×W bool, the pixels to
    restore). With a mask-aware model, pixels outside ``region`` equal ``image`` exactly; a model
    without the mask input runs on every tile."""
    o = options or TileOptions()
    use_mask = model.config.use_mask
    if use_mask and not region.any():
        return image.copy()
    h, w = region.shape
    m = model.config.multiple
    tile = max(m, o.tile // m * m)
    ph, pw = -(-h // m) * m, -(-w // m) * m  # padded to what the network's down-samplings need
    sca, thumb, mask = _pad_to(image, ph, pw), _pad_to(thumb_up, ph, pw), _pad_to(region, ph, pw)
    th, tw = min(tile, ph), min(tile, pw)
    overlap = min(o.overlap, tile // 2)
    acc = np.zeros((ph, pw, 3), np.float32)
    wsum = np.zeros((ph, pw), np.float32)
    weight = _tent(th, overlap)[:, None] * _tent(tw, overlap)[None, :]
    boxes = [(y, x) for y in _starts(ph, th, th - overlap) for x in _starts(pw, tw, tw - overlap)
             if not use_mask or mask[y:y + th, x:x + tw].any()]
    dtype = next(model.parameters()).dtype

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(device, dtype) / 127.5 - 1

    for i in range(0, len(boxes), o.batch):
        chunk = boxes[i:i + o.batch]
        s = tensor(np.stack([sca[y:y + th, x:x + tw] for y, x in chunk]))
        t = tensor(np.stack([thumb[y:y + th, x:x + tw] for y, x in chunk]))
        mk = torch.from_numpy(np.stack([mask[y:y + th, x:x + tw] for y, x in chunk])[:, None]).to(device, dtype)
        out = model(s, t, mk if use_mask else None)["pyramid"][0]
        out = ((out.float() + 1) * 127.5).permute(0, 2, 3, 1).cpu().numpy()
        for (y, x), tile_out in zip(chunk, out):
            acc[y:y + th, x:x + tw] += tile_out * weight[..., None]
            wsum[y:y + th, x:x + tw] += weight
    pred = np.clip(np.rint(acc[:h, :w] / np.maximum(wsum[:h, :w], 1e-6)[..., None]), 0, 255).astype(np.uint8)
    if not use_mask:
        return pred
    result = image.copy()
    result[region] = pred[region]
    return result


class GCANetwork:
    """The loaded network as a callable ``(image, thumb_up, region) -> restored image``: the
    weights (default: the packaged ones) are read once, on ``device``."""

    def __init__(self, weights: str | None = None, device: str = "cpu", options: TileOptions | None = None):
        self.model, self.meta = load_model(weights or None, device)
        self.device = device
        self.options = options

    def __call__(self, image: np.ndarray, thumb_up: np.ndarray, region: np.ndarray) -> np.ndarray:
        return run_tiles(self.model, image, thumb_up, region, device=self.device, options=self.options)


def weights_available(weights: str | None = None) -> bool:
    """Whether weights are there to load: the given file, or the packaged default."""
    if not weights:
        return DEFAULT_WEIGHTS.exists()
    import fsspec

    fs, path = fsspec.core.url_to_fs(weights)
    return fs.isfile(path)
