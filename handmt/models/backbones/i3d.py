"""I3D: Inception-v1 inflated to 3D (Carreira & Zisserman, CVPR 2017), MTUT's backbone (the MTUT
paper, section 4, "Implementation Details").

The layers, their names and their order follow the public PyTorch port of the DeepMind release
(pytorch-i3d): every convolution is a `Unit3D` (Conv3d without bias, BatchNorm3d with eps 1e-3
and momentum 0.01, ReLU); convolutions and max-pools pad like TensorFlow's "SAME" (the padding
is computed from each input's size, the extra pixel going after), so every layer's output size
is ceil(input / stride):

    Conv3d_1a_7x7     7x7x7 / 2            64
    MaxPool3d_2a_3x3  1x3x3 / (1, 2, 2)
    Conv3d_2b_1x1     1x1x1                64
    Conv3d_2c_3x3     3x3x3               192
    MaxPool3d_3a_3x3  1x3x3 / (1, 2, 2)
    Mixed_3b, Mixed_3c                    256, 480
    MaxPool3d_4a_3x3  3x3x3 / 2
    Mixed_4b .. Mixed_4f                  512, 512, 512, 528, 832
    MaxPool3d_5a_2x2  2x2x2 / 2
    Mixed_5b, Mixed_5c                    832, 1024

Without the classifier (heads classify) I3D has 12,287,264 parameters for RGB and 12,243,360
for depth. A clip of T x H x W frames gives Mixed_5c of 1024 x ceil(T/8) x ceil(H/32) x
ceil(W/32): 64 x 224 x 224 -> 1024 x 8 x 7 x 7, the map MTUT aligns with the SSA loss.

`width` scales the channels of every convolution (each rounded, at least 1): a narrow I3D for
CPU configs (width 0.25: 783,032 parameters for RGB). Width 1.0 is the published network.

`bn_momentum` is PyTorch's BatchNorm momentum, the port's 0.01 by default (TensorFlow's decay
0.99). The running statistics then average about the last 100 steps: a training of a few hundred
steps ends with eval-mode statistics of a much earlier network, and after 40 steps they are a
third of the way from their initial values, so the eval-mode network still predicts one class
(issue 15; tests/test_overfit.py). Short trainings set PyTorch's default, 0.1.

The clip (B, T, C, H, W) of the data contract is rearranged to (B, C, T, H, W); the features
keep that layout ('b c t h w'). `feature_info` strides are spatial; the temporal stride is 2 at
Conv3d_1a_7x7, 4 from Mixed_4b and 8 from Mixed_5b.

`pretrained` (pretrained.py) is a weights file in the port's layout (`rgb_imagenet.pt`,
`flow_imagenet.pt`: `Conv3d_1a_7x7.conv3d.weight`, ..., `Mixed_5c.b3b.bn.running_var`; the
port's `logits.*` Kinetics classifier is dropped with a note) or in this module's own
(`layers.` + the same names). RGB weights start a depth network with their kernels averaged.
There are no timm weights for I3D: `pretrained: true` is an error.
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ...errors import ConfigError
from ..pretrained import adapt_first_conv, drop, load_weights, origin_of, read_weights
from .base import BACKBONES, MODALITY_CHANNELS, FeatureSpec


def same_padding(size, kernel, stride):
    """TensorFlow's "SAME" padding of one input (T, H, W) as F.pad's (w0, w1, h0, h1, t0, t1)."""
    pads = []
    for s, k, st in zip(size, kernel, stride, strict=True):
        total = max((math.ceil(s / st) - 1) * st + k - s, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(p for pair in reversed(pads) for p in pair)


def layer_features(layers, clip, wanted):
    """Run a clip (B, T, C, H, W) through `layers` in order as (B, C, T, H, W); the outputs of
    the layers named in `wanted`, by name (a 3D backbone's forward)."""
    x = rearrange(clip, "b t c h w -> b c t h w")
    features = {}
    for name, layer in layers.items():
        x = layer(x)
        if name in wanted:
            features[name] = x
    return features


def scaled(channels, width):
    """A layer's channels at width multiplier `width`: rounded, at least 1."""
    return max(1, round(channels * width))


def triple(value):
    return (value,) * 3 if isinstance(value, int) else tuple(value)


class Unit3D(nn.Module):
    """Conv3d (no bias, "SAME" padding) + BatchNorm3d + ReLU."""

    def __init__(self, in_channels, out_channels, kernel=1, stride=1, bn_momentum=0.01):
        super().__init__()
        self.kernel, self.stride = triple(kernel), triple(stride)
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=bn_momentum)

    def forward(self, x):
        x = F.pad(x, same_padding(x.shape[-3:], self.kernel, self.stride))
        return F.relu(self.bn(self.conv3d(x)))


class MaxPool3dSame(nn.Module):
    """Max-pool with "SAME" padding. The padding is zeros, as in the port: its inputs follow a
    ReLU and every window holds at least one input value, so zeros never change the maximum."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = triple(kernel), triple(stride)
        self.pool = nn.MaxPool3d(self.kernel, self.stride)

    def forward(self, x):
        return self.pool(F.pad(x, same_padding(x.shape[-3:], self.kernel, self.stride)))


class InceptionModule(nn.Module):
    """Four branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max-pool -> 1x1.
    `widths` = (b0, b1 reduce, b1, b2 reduce, b2, b3); output channels b0 + b1 + b2 + b3."""

    def __init__(self, in_channels, widths, bn_momentum=0.01):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.b0 = Unit3D(in_channels, b0, bn_momentum=bn_momentum)
        self.b1a = Unit3D(in_channels, b1a, bn_momentum=bn_momentum)
        self.b1b = Unit3D(b1a, b1b, 3, bn_momentum=bn_momentum)
        self.b2a = Unit3D(in_channels, b2a, bn_momentum=bn_momentum)
        self.b2b = Unit3D(b2a, b2b, 3, bn_momentum=bn_momentum)
        self.b3a = MaxPool3dSame(3, 1)
        self.b3b = Unit3D(in_channels, b3, bn_momentum=bn_momentum)
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                          self.b3b(self.b3a(x))], dim=1)


# Mixed_* branch widths (b0, b1 reduce, b1, b2 reduce, b2, b3), from the release.
INCEPTION = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

# Features returned by forward: the last layer before each spatial down-sampling, and the end.
FEATURES = {"Conv3d_1a_7x7": 2, "Conv3d_2c_3x3": 4, "Mixed_3c": 8, "Mixed_4f": 16,
            "Mixed_5c": 32}


@BACKBONES.register("i3d")
class I3D(nn.Module):
    @staticmethod
    def requires(args):  # the data it reads (backbones/base.py)
        return {args["modality"]}

    def __init__(self, modality: Literal["rgb", "depth", "flow"] = "rgb", width: float = 1.0,
                 bn_momentum: float = 0.01, pretrained: bool | str | None = None):
        super().__init__()
        if width <= 0:
            raise ConfigError("width", f"must be positive, got {width}")
        if not 0 < bn_momentum <= 1:
            raise ConfigError("bn_momentum", f"must be in (0, 1], got {bn_momentum}")
        self.modality = modality
        stem, conv2c = scaled(64, width), scaled(192, width)
        layers = {
            "Conv3d_1a_7x7": Unit3D(MODALITY_CHANNELS[modality], stem, 7, 2, bn_momentum),
            "MaxPool3d_2a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(stem, stem, bn_momentum=bn_momentum),
            "Conv3d_2c_3x3": Unit3D(stem, conv2c, 3, bn_momentum=bn_momentum),
            "MaxPool3d_3a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
        }
        channels = {"Conv3d_1a_7x7": stem, "Conv3d_2c_3x3": conv2c}
        previous = conv2c
        for name, widths in INCEPTION.items():
            if name == "Mixed_4b":
                layers["MaxPool3d_4a_3x3"] = MaxPool3dSame(3, 2)
            elif name == "Mixed_5b":
                layers["MaxPool3d_5a_2x2"] = MaxPool3dSame(2, 2)
            layers[name] = InceptionModule(previous, [scaled(w, width) for w in widths],
                                           bn_momentum)
            previous = channels[name] = layers[name].out_channels
        self.layers = nn.ModuleDict(layers)
        self.feature_info = {name: FeatureSpec(channels[name], stride, "b c t h w")
                             for name, stride in FEATURES.items()}
        if pretrained:
            self.load_pretrained(pretrained)

    def load_pretrained(self, pretrained):
        origin = origin_of(pretrained)
        state = drop(read_weights(pretrained), ("logits.",),
                     "the port's Kinetics classifier; heads classify", origin)
        state = {k if k.startswith("layers.") else f"layers.{k}": v for k, v in state.items()}
        state = adapt_first_conv(state, "layers.Conv3d_1a_7x7.conv3d.weight",
                                 MODALITY_CHANNELS[self.modality], origin)
        load_weights(self, state, origin)

    def forward(self, batch):
        return layer_features(self.layers, batch[self.modality], self.feature_info)
