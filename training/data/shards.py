"""A torch dataset over the dataset pipeline's Parquet shards (``acir generate`` output)."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from pipelines.dataset import iter_rows
from training.data.crops import CropSampler
from training.data.example import example_from_row

COLUMNS = ["sample_id", "split", "ber", "clean_jpeg", "corrupted_jpeg", "thumbnail_jpeg", "aware_sca_png",
           "mask_png", "damaged_fraction"]


class ShardCrops(Dataset):
    """Item i = ``sampler.per_image`` crops of row i (use :func:`collate_crops`). The rows' bytes
    are held in memory (a few MB each, compressed); decoding happens in the worker that asks.
    ``seed`` and the epoch (``set_epoch``) fix every crop, whatever the worker order."""

    def __init__(self, path: str, split: str | None = "train", sampler: CropSampler | None = None,
                 seed: int = 0, ber: float | None = None, min_damage: float = 0.0, sca_input: str = "aware"):
        self.rows = [r for r in iter_rows(path, columns=COLUMNS, split=split, ber=ber)
                     if (r["damaged_fraction"] or 0.0) >= min_damage]
        self.sampler = sampler or CropSampler()
        self.sca_input = sca_input
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> list[dict]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return self.sampler(example_from_row(self.rows[i], self.sca_input), rng)


def collate_crops(items: list[list[dict]]) -> dict[str, torch.Tensor]:
    flat = [c for item in items for c in item]
    return {k: torch.stack([c[k] for c in flat]) for k in flat[0]}
