"""Losses shared by heads and models. Every loss is masked by label availability: a sample
without a label adds zero loss and zero gradient (DESIGN.md, Principles)."""

from .classification import masked_cross_entropy, masked_mean
from .depth import depth_mse
from .ssa import focal_rho, ssa_loss

__all__ = ["depth_mse", "focal_rho", "masked_cross_entropy", "masked_mean", "ssa_loss"]
