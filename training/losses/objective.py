"""Eq. 6: L = L_GAN + λ1 (L_FM + L_VGG) + λ2 L_edge + λ3 L_char(pyramid), paper weights by default."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from training.losses.terms import (discriminator_lsgan, edge_loss, feature_matching, generator_lsgan,
                                   pyramid_charbonnier)


@dataclass(frozen=True, kw_only=True)
class LossWeights:
    """λ1 = 10 (feature matching, VGG), λ2 = 15 (edge), λ3 = 150 (Charbonnier). ``gan`` scales the
    adversarial and feature-matching terms together: 0 trains without discriminators (a
    PSNR-oriented run, much cheaper on a CPU)."""

    gan: float = 1.0
    feature_matching: float = 10.0
    vgg: float = 10.0
    edge: float = 15.0
    charbonnier: float = 150.0

    def to_dict(self) -> dict:
        return asdict(self)


class Objective:
    """Computes the generator and discriminator losses from one forward pass."""

    def __init__(self, weights: LossWeights, discriminator=None, vgg=None):
        self.w = weights
        self.d = discriminator if weights.gan > 0 else None
        self.vgg = vgg

    def generator(self, cond: torch.Tensor, result: dict, target: torch.Tensor,
                  weight: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """``cond``: the network's input (conditions the discriminators); ``weight``: where the loss
        counts (the damage mask, dilated a little; None = everywhere)."""
        w = self.w
        out = result["out"]
        # the composite stands in for the finest level (equal to it without the mask pass-through)
        parts = {"charbonnier": pyramid_charbonnier([out] + result["pyramid"][1:], target, weight),
                 "edge": edge_loss(out, target, weight)}
        total = w.charbonnier * parts["charbonnier"] + w.edge * parts["edge"]
        if self.d is not None:
            fake = self.d(torch.cat([cond, out], 1))
            with torch.no_grad():
                real = self.d(torch.cat([cond, target], 1))
            parts["gan"] = generator_lsgan(fake)
            parts["feature_matching"] = feature_matching(real, fake)
            total = total + w.gan * (parts["gan"] + w.feature_matching * parts["feature_matching"])
        if self.vgg is not None:
            parts["vgg"] = self.vgg(out, target)
            total = total + w.vgg * parts["vgg"]
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def discriminator(self, cond: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        real = self.d(torch.cat([cond, target], 1))
        fake = self.d(torch.cat([cond, out.detach()], 1))
        return discriminator_lsgan(real, fake)
