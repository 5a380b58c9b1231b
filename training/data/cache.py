"""A crop cache: crops drawn once from a (slow) crop dataset, stored as uint8 arrays in one
``.npz`` file, then served with random flips.

Why: decoding a 2K PNG pair and re-filling the mask every time a photo is drawn costs about as
much as the training step itself on a small CPU machine (measurements in benchmarks/HISTORY.md).
Drawing each photo's crops once and reusing them for several epochs (with flips for variety) lets
a CPU run spend its time learning."""
from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)
KEYS = ("sca", "thumb", "mask", "clean")


def _to_u8(t: torch.Tensor) -> np.ndarray:
    return ((t + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def build_cache(source: Dataset, path: str, passes: int = 1, workers: int = 0) -> int:
    """Draw ``passes`` epochs of crops from ``source`` (a dataset whose items are lists of crop
    dicts) into ``path``. Returns the number of crops."""
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in KEYS}
    for epoch in range(passes):
        if hasattr(source, "set_epoch"):
            source.set_epoch(1000 + epoch)  # different crops from the training epochs' own
        loader = DataLoader(source, batch_size=None, num_workers=workers, collate_fn=lambda x: x)
        for i, item in enumerate(loader):
            for c in item:
                arrays["sca"].append(_to_u8(c["sca"]))
                arrays["thumb"].append(_to_u8(c["thumb"]))
                arrays["clean"].append(_to_u8(c["clean"]))
                arrays["mask"].append(c["mask"].numpy().astype(bool))
            if i % 50 == 0:
                log.info("crop cache: pass %d, %d of %d photos", epoch, i, len(source))
    stacked = {k: np.stack(v) for k, v in arrays.items()}
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **stacked)
    os.replace(tmp, path)
    return len(stacked["sca"])


class CachedCrops(Dataset):
    """Item i = one crop from the cache, flipped at random (seeded by seed, epoch and i)."""

    def __init__(self, path: str, seed: int = 0):
        with np.load(path) as z:
            self.arrays = {k: z[k] for k in KEYS}
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.arrays["sca"])

    def __getitem__(self, i: int) -> list[dict]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        flip_h, flip_v = rng.random() < 0.5, rng.random() < 0.5
        out = {}
        for k in KEYS:
            a = self.arrays[k][i]
            if flip_h:
                a = a[..., ::-1]
            if flip_v:
                a = a[..., ::-1, :]
            t = torch.from_numpy(np.ascontiguousarray(a))
            out[k] = t.float() if k == "mask" else t.float().div_(127.5).sub_(1.0)
        return [out]
