"""Small building blocks shared by the generators."""
from __future__ import annotations

import torch
from torch import nn


def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    """A 'same'-padded convolution with reflection padding (no dark frame at tile edges)."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="reflect")


class ResBlock(nn.Module):
    """pix2pixHD's residual block: conv-norm-ReLU-conv-norm plus the identity.

    Instance norm as in pix2pixHD would make a tile's output depend on the tile's statistics, which
    breaks tiled inference, so the norm is optional and off by default (GroupNorm-free, bias on)."""

    def __init__(self, ch: int, norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = [conv(ch, ch)]
        if norm:
            layers.append(nn.InstanceNorm2d(ch))
        layers += [nn.ReLU(inplace=True), conv(ch, ch)]
        if norm:
            layers.append(nn.InstanceNorm2d(ch))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, 3, stride=2), nn.ReLU(inplace=True))


def up(cin: int, cout: int) -> nn.Sequential:
    """Learned 2x up-sampling (transposed convolution), as pix2pixHD and the paper's fusion use."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.ReLU(inplace=True))
