"""TEA (Li et al., "TEA: Temporal Excitation and Aggregation for Action Recognition", CVPR 2020),
one of the 2D backbones the MSD paper compares and plugs its decoder into (Tables I-IV).

TEA changes every bottleneck of a Res2Net-50 (26w x 4s) run per frame, as its public code does
(Phoenix1327/tea-action-recognition, models/res2net.py, `Bottle2neckShift`):
- motion excitation (ME, section 3.1), after conv1 + BN + ReLU: reduce to C // 16 + BN, the
  difference of the depthwise 3x3 transform of frame t+1 and frame t (0 for the last frame),
  spatial mean, 1x1 expand + BN, sigmoid; the attention is A = sigmoid(.) - 0.5 and the output
  X + X * A (the residual excitation of eq. 4);
- multiple temporal aggregation (MTA, section 3.2): the C channels are split into 4 fragments
  of `width` channels; fragment i (i = 1..3) passes a channel-wise temporal convolution (k=3),
  then Res2Net's 3x3 spatial convolution + BN + ReLU, and its output is added to fragment i+1
  (hierarchical residual, not in the first block of a stage, whose fragments are independent);
  the last fragment passes only a temporal convolution (and the stage's average pool).
The temporal convolutions are depthwise Conv1d without bias, as in the public code: the three
before spatial convolutions start as the identity, the last fragment's starts as a shift (half
of the channels from frame t+1, half from frame t-1) and all are trained.

Parameters: per block with C = 4 * width bottleneck channels and r = C // 16, ME adds
2Cr + 2r + 9r + 2C and the temporal convolutions 4 * 3 * width. Over Res2Net-50's 16 blocks
that is 449,634 on Res2Net-50's 23,650,120 (no classifier), so TEA with 83 classes has
24,269,821 parameters: the 24.3M of the MSD paper's Table I.
"""

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from .temporal_shift import ClipLayer, LearnableShift


class MotionExcitation(ClipLayer):
    """TEA's ME module: frames (B*T, C, H, W) -> X + X * (sigmoid(.) - 0.5), same shape."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        reduced = channels // reduction
        self.squeeze = nn.Conv2d(channels, reduced, kernel_size=1, bias=False)
        self.squeeze_bn = nn.BatchNorm2d(reduced)
        self.transform = nn.Conv2d(reduced, reduced, kernel_size=3, padding=1, groups=reduced,
                                   bias=False)
        self.expand = nn.Conv2d(reduced, channels, kernel_size=1, bias=False)
        self.expand_bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return x + x * self.attention(x)

    def attention(self, x):
        """(B*T, C, 1, 1) in (-0.5, 0.5): channel weights from the motion between frames."""
        features = self.squeeze_bn(self.squeeze(x))
        # the spatial mean of K * F(t+1) - F(t) as a difference of means (the mean is linear)
        frames = reduce(features, "(b t) r h w -> b t r", "mean", t=self.segments())
        transformed = reduce(self.transform(features), "(b t) r h w -> b t r", "mean",
                             t=self.segments())
        motion = F.pad(transformed[:, 1:] - frames[:, :-1], (0, 0, 0, 1))  # 0 after the last frame
        expanded = self.expand_bn(self.expand(rearrange(motion, "b t r -> (b t) r 1 1")))
        return expanded.sigmoid() - 0.5


def temporal_conv(channels, shift):
    """MTA's channel-wise temporal convolution, initialized as TSM's shift with half of the
    channels each way (`shift`) or as the identity."""
    conv = LearnableShift(channels, fold_div=2)
    if not shift:
        with torch.no_grad():
            conv.conv.weight.copy_(F.one_hot(torch.ones(channels, dtype=torch.long), 3)
                                   .unsqueeze(1))
    return conv


class TEABottleneck(nn.Module):
    """A timm Res2Net `Bottle2neck` turned into TEA's block. It keeps the block's modules under
    their names (so Res2Net weights load with the same keys) and adds `me` and `temporal`."""

    def __init__(self, block):
        super().__init__()
        self.conv1, self.bn1, self.relu = block.conv1, block.bn1, block.relu
        self.convs, self.bns, self.pool = block.convs, block.bns, block.pool
        self.conv3, self.bn3 = block.conv3, block.bn3
        self.downsample, self.drop_path = block.downsample, block.drop_path
        self.width, self.is_first = block.width, block.is_first
        self.me = MotionExcitation(block.conv1.out_channels)
        self.temporal = nn.ModuleList([temporal_conv(block.width, shift=False)
                                       for _ in block.convs])
        self.temporal.append(temporal_conv(block.width, shift=True))

    def forward(self, x):
        out = self.me(self.relu(self.bn1(self.conv1(x))))
        fragments = torch.split(out, self.width, dim=1)
        outputs = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            # hierarchical residual: the previous fragment's output joins this fragment
            fragment = fragments[i] if i == 0 or self.is_first else outputs[-1] + fragments[i]
            outputs.append(self.relu(bn(conv(self.temporal[i](fragment)))))
        last = self.temporal[-1](fragments[-1])
        outputs.append(self.pool(last) if self.pool is not None else last)
        out = self.bn3(self.conv3(torch.cat(outputs, dim=1)))
        if self.drop_path is not None:
            out = self.drop_path(out)
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + shortcut)
