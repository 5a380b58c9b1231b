"""The paper's objective (Eq. 6) as separate terms and their weighted sum."""
from training.losses.objective import LossWeights, Objective
from training.losses.terms import (charbonnier, discriminator_lsgan, edge_loss, feature_matching,
                                   generator_lsgan, pyramid_charbonnier, sobel)

__all__ = ["LossWeights", "Objective", "charbonnier", "pyramid_charbonnier", "sobel", "edge_loss",
           "generator_lsgan", "discriminator_lsgan", "feature_matching"]
