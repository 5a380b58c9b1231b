"""On-the-fly training data: clean photos are framed, encoded, corrupted, decoded and
compensated inside the DataLoader workers, each sample seeded from (seed, epoch, index).

What travels to a GPU host is then just the clean JPEGs (~200 KB each) and the CPU cores there
make the damage, so the GPU never waits on a pre-built multi-GB dataset."""
from __future__ import annotations

import fsspec
import numpy as np
from torch.utils.data import Dataset

from acir_core.bitflip import corrupt
from acir_core.process import tune_process
from acir_engine.samples import Config, prepare, stable_int
from training.data.crops import CropSampler
from training.data.example import example_from_bytes


class OnTheFlyCrops(Dataset):
    """Item i = crops of photo i under a fresh corruption each epoch. ``bers``: one is drawn per
    sample (log-uniformly between the extremes when ``ber_range`` is set)."""

    def __init__(self, uris: list[str], bers: tuple[float, ...] = (1e-5,), sampler: CropSampler | None = None,
                 seed: int = 0, config: Config | None = None, ber_range: bool = False):
        if not uris:
            raise ValueError("no training photos")
        self.uris = list(uris)
        self.bers = tuple(bers)
        self.ber_range = ber_range
        self.sampler = sampler or CropSampler()
        self.cfg = config or Config()
        self.seed = seed
        self.epoch = 0
        self._prepared: dict[int, object] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.uris)

    def _prepare(self, i: int):
        # framing + encoding does not depend on the epoch: cache it per worker
        if i not in self._prepared:
            with fsspec.open(self.uris[i], "rb") as f:
                self._prepared[i] = prepare(self.uris[i], f.read(), self.cfg)
        return self._prepared[i]

    def __getitem__(self, i: int) -> list[dict]:
        tune_process()  # one DataLoader worker per core: BLAS threads would only spin
        rng = np.random.default_rng([self.seed, self.epoch, i])
        p = self._prepare(i)
        if self.ber_range and len(self.bers) > 1:
            lo, hi = np.log10(min(self.bers)), np.log10(max(self.bers))
            ber = float(10 ** rng.uniform(lo, hi))
        else:
            ber = float(self.bers[rng.integers(len(self.bers))])
        seed = stable_int("onthefly", self.seed, self.epoch, p.uri, ber)
        damaged = corrupt(p.jpeg, fde=self.cfg.fde, ber=ber, region=self.cfg.region, seed=seed,
                          sector_size=self.cfg.sector_size, source=p.uri).data
        ex = example_from_bytes(damaged, p.jpeg, p.uri, p.thumbnail)
        return self.sampler(ex, rng)
