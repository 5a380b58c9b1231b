"""On-the-fly training data: clean photos are framed, encoded, corrupted, decoded and
compensated inside the DataLoader workers, each sample seeded from (seed, epoch, index).

What travels to a GPU host is then just the clean JPEGs (~200 KB each) and the CPU cores there
make the damage, so the GPU never waits on a pre-built multi-GB dataset."""
from __future__ import annotations

from dataclasses import replace

import fsspec
import numpy as np
from torch.utils.data import Dataset, get_worker_info

from acir_core.bitflip import corrupt
from acir_core.process import tune_process
from acir_engine.samples import Config, prepare, stable_int
from training.data.crops import CropSampler
from training.data.example import example_from_bytes


class OnTheFlyCrops(Dataset):
    """Item i = crops of one photo under a fresh corruption each epoch. ``bers``: one is drawn per
    sample (log-uniformly between the extremes when ``ber_range`` is set). ``styles``: dataset
    configurations (size, quality, subsampling, thumbnail style, their own ``bers``); each photo
    is an item once per style, so one run learns from the pipeline's frames and camera-like files."""

    def __init__(self, uris: list[str], bers: tuple[float, ...] = (1e-5,), sampler: CropSampler | None = None,
                 seed: int = 0, config: Config | None = None, ber_range: bool = False,
                 styles: tuple[Config, ...] = ()):
        if not uris:
            raise ValueError("no training photos")
        self.uris = list(uris)
        self.ber_range = ber_range
        self.sampler = sampler or CropSampler()
        self.cfg = config or Config()
        self.styles = tuple(styles) or (replace(self.cfg, bers=tuple(bers)),)
        self.bers = self.styles[0].bers
        self.seed = seed
        self.epoch = 0
        self._prepared: dict[int, object] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.uris) * len(self.styles)

    def _prepare(self, i: int):
        # framing + encoding does not depend on the epoch: cache it per worker
        if i not in self._prepared:
            uri = self.uris[i % len(self.uris)]
            with fsspec.open(uri, "rb") as f:
                self._prepared[i] = prepare(uri, f.read(), self.styles[i // len(self.uris)])
        return self._prepared[i]

    def __getitem__(self, i: int) -> list[dict]:
        # one DataLoader worker per core: more threads would only spin (the main process keeps its own)
        tune_process(1 if get_worker_info() is not None else None)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        p = self._prepare(i)
        cfg = self.styles[i // len(self.uris)]
        if self.ber_range and len(cfg.bers) > 1:
            lo, hi = np.log10(min(cfg.bers)), np.log10(max(cfg.bers))
            ber = float(10 ** rng.uniform(lo, hi))
        else:
            ber = float(cfg.bers[rng.integers(len(cfg.bers))])
        seed = stable_int("onthefly", self.seed, self.epoch, p.uri, ber, i // len(self.uris))
        damaged = corrupt(p.jpeg, fde=cfg.fde, ber=ber, region=cfg.region, seed=seed,
                          sector_size=cfg.sector_size, source=p.uri).data
        ex = example_from_bytes(damaged, p.jpeg, p.uri, p.thumbnail)
        return self.sampler(ex, rng)
