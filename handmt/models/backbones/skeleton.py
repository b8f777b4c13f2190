"""Skeleton input: a clip's 3D joints as per-joint feature maps for the gesture sub-network of
the collaborative network (Yang et al., ECCV 2020, section 3.1), which reads joint features.

Each joint's normalised position and velocity (data/skeleton.py) pass through a BatchNorm over
all joints' inputs (ST-GCN's data normalisation: velocities are a hundred times smaller than
positions) and the joint's own linear map to `channels` features, BatchNorm and ReLU. The
features have the image model's layout, 21 groups of channels on a 1 x 1 map per frame, so the
gesture sub-network runs on them unchanged.
"""

import torch
from einops import rearrange
from torch import nn

from ...hand import NUM_JOINTS
from .base import BACKBONES, FeatureSpec

INPUTS = 6  # position and velocity, 3 each


def positions_and_velocities(joints):
    """(B, T, 21, 3) -> (B, T, 21, 6): each joint's position and its velocity (the difference
    to the previous frame; zero at the first frame)."""
    velocity = torch.zeros_like(joints)
    velocity[:, 1:] = joints[:, 1:] - joints[:, :-1]
    return torch.cat([joints, velocity], dim=-1)


@BACKBONES.register("skeleton")
class SkeletonEmbedding(nn.Module):
    """batch["joints"] (B, T, 21, 3) -> {"joints": (B, T, 21 * C, 1, 1), "inputs": (B, T, 21 * 6,
    1, 1)}, C = `channels`, the features of joint i in channels i*C..(i+1)*C-1, and the
    normalised inputs themselves (a head may read them beside the embedding). `channels: 0`
    keeps the normalised inputs as "joints" too (C = 6), the input of a plain temporal-conv
    classifier."""

    modality = "joints"  # the batch key it reads

    @staticmethod
    def requires(args):  # the data it reads (backbones/base.py)
        return {"joints"}

    def __init__(self, channels: int = 16):
        super().__init__()
        if channels < 0:
            raise ValueError(f"channels must be 0 (no embedding) or positive, got {channels}")
        inputs = NUM_JOINTS * INPUTS
        # the inputs' statistics are the data's, fixed: a cumulative average estimates them
        # without the lag of a moving one (whose initial variance 1 is 10^4 times the
        # velocities' and would dominate a short training's eval-mode statistics)
        self.input_norm = nn.BatchNorm1d(inputs, momentum=None)
        self.embed = nn.Sequential(
            nn.Conv1d(inputs, NUM_JOINTS * channels, 1, groups=NUM_JOINTS, bias=False),
            nn.BatchNorm1d(NUM_JOINTS * channels), nn.ReLU(inplace=True)) if channels else None
        out = NUM_JOINTS * (channels or INPUTS)
        self.feature_info = {"joints": FeatureSpec(out, 1, "b t c h w"),
                             "inputs": FeatureSpec(inputs, 1, "b t c h w")}

    def forward(self, batch):
        joints = batch["joints"]
        b = joints.shape[0]
        x = rearrange(positions_and_velocities(joints), "b t n i -> b (n i) t")
        inputs = self.input_norm(x)
        x = inputs if self.embed is None else self.embed(inputs)
        return {name: rearrange(value, "b c t -> b t c 1 1", b=b)
                for name, value in (("joints", x), ("inputs", inputs))}
