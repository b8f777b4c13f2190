"""Depth-map regression loss of the MSD decoders (MSD paper, section III-E, eq. 4-5, and
section IV-C3, Table VIII; docs/design.md, "MSD")."""

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange

DepthEncoding = Literal["metric", "frames"]


def near_is_bright(depth):
    """Metric depth (z / max_depth_mm in [0, 1]: the nearest surface smallest, 0 = no reading)
    -> the paper's depth frames, where the nearest surface is brightest and what the sensor does
    not see is dark: 1 - z on valid pixels, 0 on holes."""
    return torch.where(depth > 0, 1 - depth, torch.zeros_like(depth))


def binarize(depth, threshold, encoding: DepthEncoding):
    """The binarised depth target of Table VIII: 1 where the near-is-bright frame is above
    `threshold`, else 0.

    The paper thresholds its datasets' 8-bit frames as distributed (10 of 255, about 0.04 here):
    encoding "frames" does the same. Encoding "metric" (FPHA and the synthetic set) first turns
    the map into near-is-bright frames (`near_is_bright`), so the target marks what is nearer than
    (1 - threshold) * max_depth_mm: the hand, not every pixel with a depth reading, and never a
    hole."""
    frames = near_is_bright(depth) if encoding == "metric" else depth
    return (frames > threshold).to(depth.dtype)


def depth_mse(prediction, depth, binarize_threshold=None, encoding: DepthEncoding = "metric"):
    """Mean squared error between predicted maps (B, T, 1, h, w) and depth frames (B, T, 1, H, W)
    in [0, 1].

    With `binarize_threshold` the depth frames first become segmentation maps (`binarize`, with
    the depth `encoding`). The targets are then resized bilinearly (antialiased, so thin fingers
    do not alias away) to the prediction's size, as the paper downsamples the depth frames for the
    global decoder. Without it the frames are regressed as they are."""
    if binarize_threshold is not None:
        depth = binarize(depth, binarize_threshold, encoding)
    target = F.interpolate(rearrange(depth, "b t c h w -> (b t) c h w"), size=prediction.shape[-2:],
                           mode="bilinear", align_corners=False, antialias=True)
    return F.mse_loss(rearrange(prediction, "b t c h w -> (b t) c h w"), target)
