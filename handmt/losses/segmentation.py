"""Hand-mask loss of the segmentation head: per-pixel binary cross-entropy plus soft Dice, each
computed per frame and averaged over the frames that have a mask label (docs/design.md, Principles:
a frame without a mask adds zero loss and zero gradient)."""

import torch.nn.functional as F

from .classification import masked_mean

DICE_SMOOTHING = 1.0  # one pixel: an empty prediction of an empty mask scores Dice 1, loss 0


def soft_dice_loss(logits, target):
    """1 - soft Dice per frame: logits and {0, 1} targets (..., 1, H, W) -> (...)."""
    probs = logits.sigmoid()
    overlap = (probs * target).sum(dim=(-3, -2, -1))
    sizes = probs.sum(dim=(-3, -2, -1)) + target.sum(dim=(-3, -2, -1))
    return 1 - (2 * overlap + DICE_SMOOTHING) / (sizes + DICE_SMOOTHING)


def mask_losses(logits, target, valid):
    """(BCE, Dice loss) of mask logits (B, T, 1, H, W) against {0, 1} masks of the same shape,
    each the mean over the frames where `valid` (B, T) is true; 0 when none is. Targets of the
    frames without a label must be finite (e.g. zeros): they are multiplied by zero."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (masked_mean(bce.mean(dim=(-3, -2, -1)), valid),
            masked_mean(soft_dice_loss(logits, target), valid))
