"""Coarse-guided pix2pix (paper Sec. 3.3, after pix2pixHD): a global generator G1 that sees the
input at half resolution and a local enhancer G2 at full resolution that adds G1's features to its
own before its residual blocks. Multi-scale PatchGAN discriminators D1/D2 return their
intermediate features for the feature-matching loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.archs.blocks import ResBlock, conv, down, up


class GlobalGenerator(nn.Module):
    """G1: conv7 -> ``n_down`` stride-2 convs -> residual blocks -> as many learned up-samplings.
    Returns features (``ngf`` channels) at its input's resolution; G2 adds them to its own."""

    def __init__(self, cin: int, ngf: int, n_down: int = 2, n_res: int = 3):
        super().__init__()
        layers: list[nn.Module] = [conv(cin, ngf, 7), nn.ReLU(inplace=True)]
        ch = ngf
        for _ in range(n_down):
            layers.append(down(ch, ch * 2))
            ch *= 2
        layers += [ResBlock(ch) for _ in range(n_res)]
        for _ in range(n_down):
            layers.append(up(ch, ch // 2))
            ch //= 2
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class CoarseGenerator(nn.Module):
    """G1 + G2. ``x`` is the concatenated input (SCA image, up-sampled thumbnail, optionally the
    mask), values in [-1, 1]; the output is the coarse image in [-1, 1] as a residual on the SCA
    image (the first three channels), so an untrained network starts from the SCA image."""

    def __init__(self, cin: int, ngf: int = 32, n_res_global: int = 3, n_res_local: int = 3):
        super().__init__()
        self.g1 = GlobalGenerator(cin, ngf * 2, n_down=2, n_res=n_res_global)
        self.g2_down = nn.Sequential(conv(cin, ngf, 7), nn.ReLU(inplace=True), down(ngf, ngf * 2))
        self.g2_body = nn.Sequential(*[ResBlock(ngf * 2) for _ in range(n_res_local)], up(ngf * 2, ngf))
        self.g2_out = conv(ngf, 3, 7)
        nn.init.zeros_(self.g2_out.weight)
        nn.init.zeros_(self.g2_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = F.avg_pool2d(x, 2)
        feats = self.g2_down(x) + self.g1(half)
        return torch.clamp(x[:, :3] + self.g2_out(self.g2_body(feats)), -1.0, 1.0)


class PatchDiscriminator(nn.Module):
    """A 70x70-style PatchGAN that keeps every layer's output (for feature matching)."""

    def __init__(self, cin: int, ndf: int = 32, n_layers: int = 3):
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(cin, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))]
        ch = ndf
        for i in range(1, n_layers + 1):
            nxt = min(ch * 2, ndf * 8)
            stride = 2 if i < n_layers else 1
            blocks.append(nn.Sequential(nn.Conv2d(ch, nxt, 4, stride, 1), nn.InstanceNorm2d(nxt),
                                        nn.LeakyReLU(0.2, inplace=True)))
            ch = nxt
        blocks.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """D1 at full resolution, D2 (and more) on 2x-downsampled copies; conditioned on the input."""

    def __init__(self, cin: int, ndf: int = 32, n_scales: int = 2):
        super().__init__()
        self.ds = nn.ModuleList(PatchDiscriminator(cin, ndf) for _ in range(n_scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outs = []
        for i, d in enumerate(self.ds):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs
