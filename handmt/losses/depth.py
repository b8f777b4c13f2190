"""Depth-map regression loss of the MSD decoders (MSD paper, section III-E, eq. 4-5; DESIGN.md,
"MSD")."""

import torch.nn.functional as F
from einops import rearrange


def depth_mse(prediction, depth, binarize_threshold=None):
    """Mean squared error between predicted maps (B, T, 1, h, w) and depth frames (B, T, 1, H, W)
    in [0, 1].

    With `binarize_threshold` the depth frames first become segmentation maps (> threshold -> 1,
    else 0; the paper's Table VIII uses 10 of 255, about 0.04 here). The targets are then resized
    bilinearly (antialiased, so thin fingers do not alias away) to the prediction's size, as the
    paper downsamples the depth frames for the global decoder."""
    if binarize_threshold is not None:
        depth = (depth > binarize_threshold).to(depth.dtype)
    target = F.interpolate(rearrange(depth, "b t c h w -> (b t) c h w"), size=prediction.shape[-2:],
                           mode="bilinear", align_corners=False, antialias=True)
    return F.mse_loss(rearrange(prediction, "b t c h w -> (b t) c h w"), target)
