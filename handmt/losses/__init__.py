"""Losses shared by heads and models. Every loss is masked by label availability: a sample
without a label adds zero loss and zero gradient (docs/design.md, Principles)."""

from .classification import masked_cross_entropy, masked_mean
from .depth import depth_mse
from .segmentation import mask_losses, soft_dice_loss
from .ssa import focal_rho, ssa_loss

__all__ = ["depth_mse", "focal_rho", "mask_losses", "masked_cross_entropy", "masked_mean",
           "soft_dice_loss", "ssa_loss"]
