"""C3D (Tran et al., ICCV 2015), the second backbone of MTUT's analysis (the MTUT paper, section
4.5, where the SSA loss is applied to the last max-pool, "MaxPool3d_5").

Eight 3x3x3 convolutions (stride 1, padding 1, with bias, each followed by ReLU) in five stages,
each stage closed by a max-pool:

    conv1a 64                 pool1 1x2x2 / (1, 2, 2)
    conv2a 128                pool2 2x2x2 / 2
    conv3a 256, conv3b 256    pool3 2x2x2 / 2
    conv4a 512, conv4b 512    pool4 2x2x2 / 2
    conv5a 512, conv5b 512    pool5 2x2x2 / 2

The pools round up (Caffe's pooling, as the original C3D): a 16 x 112 x 112 clip gives
MaxPool3d_5 of 512 x 1 x 4 x 4, the 8192 values C3D's fc6 reads. The fully connected layers
fc6/fc7 are left out, the heads classify; the convolutions hold 27,655,936 parameters for RGB.
No batch normalization, as published. `width` scales every convolution's channels (each rounded,
at least 1), as I3D's.

The clip (B, T, C, H, W) of the data contract is rearranged to (B, C, T, H, W); the features keep
that layout ('b c t h w'). `feature_info` strides are spatial; the temporal stride is 2 from
pool2 on (16 at MaxPool3d_5).

`pretrained` (pretrained.py) is a weights file in the layout of the public c3d-pytorch port
(DavideA/c3d-pytorch, `c3d.pickle`: `conv1.weight`, `conv2.weight`, `conv3a.weight`, ...; its
`fc6`-`fc8` are dropped with a note) or in this module's own (`layers.conv1a.0.weight`, ...).
RGB weights start a depth or flow network with their kernels averaged. There are no timm weights
for C3D: `pretrained: true` is an error.
"""

import re
from typing import Literal

from torch import nn

from ...errors import ConfigError
from ..pretrained import adapt_first_conv, drop, load_weights, origin_of, read_weights
from .base import BACKBONES, MODALITY_CHANNELS, FeatureSpec
from .i3d import layer_features, scaled

# (convolution widths, pool kernel = stride) of each stage.
STAGES = (((64,), (1, 2, 2)), ((128,), (2, 2, 2)), ((256, 256), (2, 2, 2)),
          ((512, 512), (2, 2, 2)), ((512, 512), (2, 2, 2)))

# Features returned by forward and their spatial strides: each stage's last convolution, and the
# last max-pool, MTUT's choice for C3D.
FEATURES = {"conv1a": 1, "conv2a": 2, "conv3b": 4, "conv4b": 8, "conv5b": 16, "MaxPool3d_5": 32}


@BACKBONES.register("c3d")
class C3D(nn.Module):
    @staticmethod
    def requires(args):  # the data it reads (backbones/base.py)
        return {args["modality"]}

    def __init__(self, modality: Literal["rgb", "depth", "flow"] = "rgb", width: float = 1.0,
                 pretrained: bool | str | None = None):
        super().__init__()
        if width <= 0:
            raise ConfigError("width", f"must be positive, got {width}")
        self.modality = modality
        layers = {}
        channels = {}
        previous = MODALITY_CHANNELS[modality]
        for stage, (widths, pool) in enumerate(STAGES, start=1):
            for letter, published in zip("ab", widths, strict=False):
                name = f"conv{stage}{letter}"
                out = scaled(published, width)
                layers[name] = nn.Sequential(nn.Conv3d(previous, out, 3, padding=1),
                                             nn.ReLU(inplace=True))
                previous = channels[name] = out
            name = "MaxPool3d_5" if stage == 5 else f"pool{stage}"
            layers[name] = nn.MaxPool3d(pool, pool, ceil_mode=True)
            channels[name] = previous
        self.layers = nn.ModuleDict(layers)
        self.feature_info = {name: FeatureSpec(channels[name], stride, "b c t h w")
                             for name, stride in FEATURES.items()}
        if pretrained:
            self.load_pretrained(pretrained)

    def load_pretrained(self, pretrained):
        origin = origin_of(pretrained)
        state = drop(read_weights(pretrained), ("fc6.", "fc7.", "fc8."),
                     "C3D's fully connected layers are not built; heads classify", origin)
        # the port's conv1 and conv2 are this module's conv1a and conv2a
        state = {k if k.startswith("layers.") else
                 re.sub(r"^conv(\d)([ab]?)\.", lambda m: f"layers.conv{m[1]}{m[2] or 'a'}.0.", k): v
                 for k, v in state.items()}
        state = adapt_first_conv(state, "layers.conv1a.0.weight", MODALITY_CHANNELS[self.modality],
                                 origin)
        load_weights(self, state, origin)

    def forward(self, batch):
        return layer_features(self.layers, batch[self.modality], self.feature_info)
