"""Refine-guided bi-directional Laplacian pyramid fusion (paper Fig. 7).

Top-down, the coarse image is bicubic-downsampled to each pyramid level and a conv block
(``depth`` x conv3x3+LeakyReLU, then conv3x3) extracts its high-frequency detail there; bottom-up,
the thumbnail's low-frequency estimate starts at the coarsest level and is carried up level by
level with learned 2x transposed convolutions, the detail being added at each level. Every level's
output is returned so the Charbonnier loss can supervise the whole pyramid (Eq. 6)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.archs.blocks import conv


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


class DetailBlock(nn.Module):
    def __init__(self, cin: int, ch: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = [conv(cin, ch), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(depth - 1):
            layers += [conv(ch, ch), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(conv(ch, 3))
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class LaplacianFusion(nn.Module):
    """``levels`` pyramid levels (full, 1/2, 1/4, ...). Inputs in [-1, 1]: the coarse image, the
    up-sampled thumbnail and the guide (SCA image and mask) whose channels each level also sees."""

    def __init__(self, guide_ch: int, ch: int = 32, depth: int = 11, levels: int = 3):
        super().__init__()
        self.levels = levels
        self.detail = nn.ModuleList(DetailBlock(3 + 3 + guide_ch, ch, depth) for _ in range(levels))
        self.lift = nn.ModuleList(nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1) for _ in range(levels - 1))
        for t in self.lift:  # start as bilinear-like up-sampling so training begins from a sane image
            w = torch.zeros_like(t.weight)
            k = torch.tensor([0.25, 0.75, 0.75, 0.25])
            for c in range(3):
                w[c, c] = k[:, None] * k[None, :]
            t.weight.data.copy_(w)
            t.bias.data.zero_()

    def forward(self, coarse: torch.Tensor, thumb: torch.Tensor, guide: torch.Tensor,
                mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``mask`` (N×1×H×W in [0, 1], optional): where the coarsest level starts from the thumbnail
        instead of the coarse image. Returns the pyramid's outputs, finest first."""
        h, w = coarse.shape[-2:]
        sizes = [(h >> k, w >> k) for k in range(self.levels)][::-1]  # coarsest first
        cs = [resize(coarse, s) for s in sizes]
        start = resize(thumb, sizes[0])
        if mask is not None:
            m = resize(mask, sizes[0]).clamp(0, 1)
            start = cs[0] * (1 - m) + start * m
        outs: list[torch.Tensor] = []
        for i, size in enumerate(sizes):
            if i == 0:
                current = start
            else:  # low frequencies carried up, the coarse image's band-pass detail of this level added
                current = resize(self.lift[i - 1](outs[-1]), size) + (cs[i] - resize(cs[i - 1], size))
            x = torch.cat([cs[i], current, resize(guide, size)], 1)
            outs.append(torch.clamp(current + self.detail[i](x), -1.0, 1.0))
        return outs[::-1]
