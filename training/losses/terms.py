"""Loss terms. Each takes an optional weight map (1 where the pixel counts) so training can
concentrate on the damaged pixels: with the mask pass-through, the others are fixed anyway."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _weighted_mean(err: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return err.mean()
    weight = weight.expand_as(err)
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                eps: float = 1e-3) -> torch.Tensor:
    """sqrt((x - y)² + ε²): L1-like, differentiable at 0 (ε = 1e-3 as in the paper)."""
    return _weighted_mean(torch.sqrt((pred - target) ** 2 + eps * eps), weight)


def _down(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


def pyramid_charbonnier(levels: list[torch.Tensor], target: torch.Tensor,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Charbonnier at every pyramid level against the target resized to it, summed."""
    total = torch.zeros((), device=target.device, dtype=torch.float32)
    for lv in levels:
        size = tuple(lv.shape[-2:])
        w = None if weight is None else (_down(weight, size) > 0.01).float()
        total = total + charbonnier(lv.float(), _down(target, size), w)
    return total


_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel(x: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradients (N×2C×H×W: d/dx then d/dy)."""
    c = x.shape[1]
    k = torch.stack([_SOBEL, _SOBEL.t()]).to(x)[:, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=c)


def edge_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between Sobel gradient maps: keeps edges sharp where plain L1 would blur them."""
    return _weighted_mean((sobel(pred.float()) - sobel(target)).abs(), weight)


def generator_lsgan(fake_outputs: list[list[torch.Tensor]]) -> torch.Tensor:
    """LSGAN generator term: every discriminator's last map pushed towards 1."""
    return sum(((f[-1].float() - 1) ** 2).mean() for f in fake_outputs) / len(fake_outputs)


def discriminator_lsgan(real_outputs: list[list[torch.Tensor]], fake_outputs: list[list[torch.Tensor]]) -> torch.Tensor:
    real = sum(((r[-1].float() - 1) ** 2).mean() for r in real_outputs)
    fake = sum((f[-1].float() ** 2).mean() for f in fake_outputs)
    return 0.5 * (real + fake) / len(real_outputs)


def feature_matching(real_outputs: list[list[torch.Tensor]], fake_outputs: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminators' intermediate features on real and fake (pix2pixHD)."""
    total = 0.0
    n = 0
    for r_feats, f_feats in zip(real_outputs, fake_outputs):
        for r, f in zip(r_feats[:-1], f_feats[:-1]):
            total = total + (f.float() - r.detach().float()).abs().mean()
            n += 1
    return total / max(n, 1)
