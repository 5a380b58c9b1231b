"""The VGG19 perceptual term of Eq. 6, only when a weights file is given.

No weights can be downloaded at run time, so this term is off unless the user points
``vgg_weights`` at a local state dict with torchvision's ``vgg19`` key names (``features.N.*``).
The layer list is VGG19's own; we do not depend on torchvision."""
from __future__ import annotations

import torch
from torch import nn

from acir_core.errors import BadInput

# VGG19 'features': numbers are conv output channels, "M" a max-pool.
_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 as indices into 'features', with pix2pixHD's weights
_TAPS = {1: 1 / 32, 6: 1 / 16, 11: 1 / 8, 20: 1 / 4, 29: 1.0}


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG19:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
    return nn.Sequential(*layers)


class VGGLoss(nn.Module):
    def __init__(self, weights_path: str):
        super().__init__()
        self.features = _features()
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as e:
            raise BadInput(f"cannot read VGG19 weights ({e})", source=weights_path) from None
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        missing = self.features.load_state_dict(state, strict=False).missing_keys
        if missing:
            raise BadInput(f"not a VGG19 state dict: missing {', '.join(missing[:4])}", source=weights_path)
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Inputs in [-1, 1]."""
        x = ((pred.float() + 1) / 2 - self.mean) / self.std
        y = ((target.float() + 1) / 2 - self.mean) / self.std
        loss = torch.zeros((), device=pred.device)
        for i, layer in enumerate(self.features):
            x, y = layer(x), layer(y)
            if i in _TAPS:
                loss = loss + _TAPS[i] * (x - y.detach()).abs().mean()
            if i >= max(_TAPS):
                break
        return loss
