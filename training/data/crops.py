"""Random crops centred on damage (plus some anywhere), as tensors in [-1, 1].

Why centred on damage: after aware SCA well under 1 % of a photo is damaged and the mask
pass-through fixes the rest, so a uniformly placed crop would usually carry no learning signal."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.data.example import Example


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 3×H×W float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


@dataclass(frozen=True, kw_only=True)
class CropSampler:
    size: int = 128
    per_image: int = 8
    damage_fraction: float = 0.9  # of crops centred on a damaged pixel (when there is one)

    def __call__(self, ex: Example, rng: np.random.Generator) -> list[dict]:
        h, w = ex.mask.shape
        s = min(self.size, h, w) // 8 * 8
        ys, xs = np.nonzero(ex.mask[::8, ::8])  # MCU-level damage map is enough to pick centres
        crops = []
        for _ in range(self.per_image):
            if ys.size and rng.random() < self.damage_fraction:
                i = rng.integers(ys.size)
                cy, cx = ys[i] * 8 + rng.integers(8), xs[i] * 8 + rng.integers(8)
                top = int(np.clip(cy - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, h - s))
                left = int(np.clip(cx - s // 2 + rng.integers(-s // 4, s // 4 + 1), 0, w - s))
            else:
                top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            win = (slice(top, top + s), slice(left, left + s))
            crops.append({
                "sca": to_tensor(ex.sca[win]),
                "thumb": to_tensor(ex.thumb_up[win]),
                "mask": torch.from_numpy(ex.mask[win][None].astype(np.float32)),
                "clean": to_tensor(ex.clean[win]),
            })
        return crops
