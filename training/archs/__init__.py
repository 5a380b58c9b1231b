"""The GCA networks as plain ``nn.Module``s: pix2pixHD-style coarse generator (G1 global + G2
local enhancer) with multi-scale discriminators, the bi-directional Laplacian pyramid fusion
network, and :class:`GCANet` which chains them with the damage-mask pass-through."""
from training.archs.gca import GCAConfig, GCANet
from training.archs.lapfusion import LaplacianFusion
from training.archs.pix2pix import CoarseGenerator, MultiscaleDiscriminator

__all__ = ["GCAConfig", "GCANet", "CoarseGenerator", "LaplacianFusion", "MultiscaleDiscriminator"]
