"""GCANet: coarse generator + Laplacian fusion, with the aware-SCA damage mask as an input channel
and an output that passes undamaged pixels through unchanged.

Why the pass-through: after aware SCA the pixels outside the mask already equal the clean decode
in most of the image; a network can only make them worse. So the network's prediction is used
inside the mask only (a hard composite: the mask is dilated to whole MCUs by SCA already, and the
network sees the exact pixels around each hole so it learns to meet them)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from training.archs.lapfusion import LaplacianFusion
from training.archs.pix2pix import CoarseGenerator


@dataclass(frozen=True, kw_only=True)
class GCAConfig:
    """Network size. The paper's: ngf 64, 3+3 residual blocks, fusion depth 11; ours is smaller
    so the bf16 weights fit in a few MiB and CPU inference stays fast."""

    ngf: int = 32
    n_res_global: int = 3
    n_res_local: int = 3
    fusion_ch: int = 32
    fusion_depth: int = 11
    levels: int = 3
    use_mask: bool = True
    sca_input: str = "aware"  # what the network was trained on: "aware" (SCA + fill) or "paper" (ablation)

    @property
    def in_channels(self) -> int:
        return 7 if self.use_mask else 6

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (G1's down-samplings and the pyramid)."""
        return max(8, 1 << self.levels)

    def to_dict(self) -> dict:
        return asdict(self)


class GCANet(nn.Module):
    def __init__(self, config: GCAConfig | None = None):
        super().__init__()
        self.config = config or GCAConfig()
        c = self.config
        self.coarse = CoarseGenerator(c.in_channels, c.ngf, c.n_res_global, c.n_res_local)
        self.fusion = LaplacianFusion(c.in_channels - 3, c.fusion_ch, c.fusion_depth, c.levels)

    def forward(self, sca: torch.Tensor, thumb: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
        """``sca`` and ``thumb`` (the thumbnail bicubic-up-sampled to the image size): N×3×H×W in
        [-1, 1]; ``mask``: N×1×H×W, 1 = damaged. Returns ``out`` (the composite), ``pyramid``
        (the fusion's levels, finest first, before compositing) and ``coarse``."""
        c = self.config
        if c.use_mask:
            if mask is None:
                raise ValueError("this GCANet was built with use_mask=True and needs the damage mask")
            x = torch.cat([sca, thumb, mask], 1)
        else:
            x = torch.cat([sca, thumb], 1)
        coarse = self.coarse(x)
        guide = x[:, 3:] if not c.use_mask else torch.cat([sca, mask], 1)
        pyramid = self.fusion(coarse, thumb, guide, mask if c.use_mask else None)
        out = pyramid[0]
        if c.use_mask:
            out = sca * (1 - mask) + out * mask
        return {"out": out, "pyramid": pyramid, "coarse": coarse}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
