"""The ACTION module (Wang et al., "ACTION-Net: Multipath Excitation for Action Recognition",
CVPR 2021), as the MSD paper uses it (section III-B, Fig. 2; DESIGN.md, "ACTION module and
temporal shift").

The frames are shifted by the learnable temporal shift, then three excitation paths each compute
an attention map M from the shifted x and give x + x * M (eq. 3); their sum feeds the block's
conv1:
- spatio-temporal (STE): channel mean -> Conv3d(1, 1, 3x3x3) -> sigmoid, one map per frame;
- channel (CE): spatial mean -> 1x1 reduce to C // 16 -> temporal Conv1d(k=3) -> ReLU ->
  1x1 expand -> sigmoid, one weight per channel and frame;
- motion (ME): 1x1 reduce to C // 16 + BN -> depthwise 3x3 conv of frame t+1 minus frame t
  (eq. 1), zero for the last frame -> spatial mean -> 1x1 expand -> sigmoid.

Parameters as in the public ACTION-Net code (V-Sense/ACTION-Net, models/action.py): every
convolution is bias-free and the motion path's BatchNorm is affine. Per block with C input
channels and r = C // 16 that is 3C (shift) + 27 (STE) + 2Cr + 3r^2 (CE) + 2Cr + 2r + 9r (ME);
over ResNet-50's 16 blocks 4,217,820, so ResNet-50 + ACTION with 83 classes has 27,895,919
parameters, the 27.9M of the MSD paper's Table I (TSN/TSM: 23,678,099).
"""

import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from .temporal_shift import ClipLayer, LearnableShift


class Action(ClipLayer):
    """Frames (B*T, C, H, W) -> the summed excited features, same shape, for the block's conv1."""

    def __init__(self, channels, fold_div=8, reduction=16):
        super().__init__()
        reduced = channels // reduction
        self.shift = LearnableShift(channels, fold_div)
        self.ste_conv = nn.Conv3d(1, 1, kernel_size=3, padding=1, bias=False)
        self.ce_squeeze = nn.Conv2d(channels, reduced, kernel_size=1, bias=False)
        self.ce_temporal = nn.Conv1d(reduced, reduced, kernel_size=3, padding=1, bias=False)
        self.ce_expand = nn.Conv2d(reduced, channels, kernel_size=1, bias=False)
        self.me_squeeze = nn.Conv2d(channels, reduced, kernel_size=1, bias=False)
        self.me_bn = nn.BatchNorm2d(reduced)
        self.me_conv = nn.Conv2d(reduced, reduced, kernel_size=3, padding=1, groups=reduced,
                                 bias=False)
        self.me_expand = nn.Conv2d(reduced, channels, kernel_size=1, bias=False)

    def forward(self, x):
        x = self.shift(x)
        # (x + x*M_ste) + (x + x*M_ce) + (x + x*M_me) = x * (M_ste + (3 + M_ce + M_me)): the
        # per-channel maps are added at their (B*T, C, 1, 1) size first, so one full-size sum
        # and one product remain (and backward reduces the full-size gradient once per shape).
        channel = 3 + self.channel_attention(x) + self.motion_attention(x)
        return x * (self.spatiotemporal_attention(x) + channel)

    def spatiotemporal_attention(self, x):
        """(B*T, 1, H, W): one map per frame from a 3D conv over the clip's channel means."""
        # torch's mean over dim 1, not einops' reduce, which moves c last first: its backward
        # then writes a (b t h w c) gradient that is added, transposed, to x's (b t c h w) one
        pooled = rearrange(x.mean(dim=1, keepdim=True), "(b t) 1 h w -> b 1 t h w",
                           t=self.segments())
        return rearrange(self.ste_conv(pooled), "b 1 t h w -> (b t) 1 h w").sigmoid()

    def channel_attention(self, x):
        """(B*T, C, 1, 1): SE-style channel weights with a temporal conv between squeeze and
        expand."""
        squeezed = self.ce_squeeze(reduce(x, "n c h w -> n c 1 1", "mean"))
        sequences = rearrange(squeezed, "(b t) r 1 1 -> b r t", t=self.segments())
        temporal = rearrange(F.relu(self.ce_temporal(sequences)), "b r t -> (b t) r 1 1")
        return self.ce_expand(temporal).sigmoid()

    def motion_attention(self, x):
        """(B*T, C, 1, 1): channel weights from the motion K * F(t+1) - F(t), 0 at the last
        frame (MSD eq. 1)."""
        features = self.me_bn(self.me_squeeze(x))
        # the spatial mean of K * F(t+1) - F(t) as a difference of means (the mean is linear):
        # no full-resolution difference maps
        frames = reduce(features, "(b t) r h w -> b t r", "mean", t=self.segments())
        transformed = reduce(self.me_conv(features), "(b t) r h w -> b t r", "mean",
                             t=self.segments())
        motion = F.pad(transformed[:, 1:] - frames[:, :-1], (0, 0, 0, 1))  # 0 after the last frame
        return self.me_expand(rearrange(motion, "b t r -> (b t) r 1 1")).sigmoid()
