"""Temporal shift for 2D networks run per frame (docs/design.md, "ACTION module and temporal
shift").

TSM (Lin et al., ICCV 2019) moves a fold of C // 8 channels of every frame to the previous frame
and the next fold to the following frame, zero-padded at the clip ends, so a per-frame 2D
convolution sees its neighbours at no cost. ACTION-Net (Wang et al., CVPR 2021; the MSD paper,
section III-B) makes the same shift a depthwise temporal convolution initialized to TSM's shift
and left trainable.

Layers here see frames as (B*T, C, H, W), inside a timm block. They need T, which the backbone
sets from each clip with `set_num_segments` before its forward.
"""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class ClipLayer(nn.Module):
    """A layer that mixes the frames of a clip while the network runs on (B*T, C, H, W)."""

    num_segments: int | None = None  # T, set by `set_num_segments`

    def segments(self):
        if self.num_segments is None:
            raise RuntimeError(f"{type(self).__name__}.num_segments is not set: ResNetTSN sets it "
                               "from each clip; call set_num_segments(module, T) when using a "
                               "layer on its own")
        return self.num_segments


def set_num_segments(module, num_segments):
    """Tell every ClipLayer inside `module` the number of frames per clip of the next forward."""
    for layer in module.modules():
        if isinstance(layer, ClipLayer):
            layer.num_segments = num_segments


def shift_frames(clips, fold_div=8):
    """TSM's zero-padded shift of clips (B, T, C, H, W): channels [0, fold) of frame t take frame
    t+1's, channels [fold, 2*fold) take frame t-1's, the rest stay; fold = C // fold_div.

    Built by torch.cat of slices, never slice assignment, so ONNX export traces it."""
    fold = clips.shape[2] // fold_div
    zeros = torch.zeros_like(clips[:, :1, :fold])
    from_next = torch.cat([clips[:, 1:, :fold], zeros], dim=1)
    from_previous = torch.cat([zeros, clips[:, :-1, fold:2 * fold]], dim=1)
    return torch.cat([from_next, from_previous, clips[:, :, 2 * fold:]], dim=2)


class TemporalShift(ClipLayer):
    """TSM's fixed (parameter-free) shift."""

    def __init__(self, fold_div=8):
        super().__init__()
        self.fold_div = fold_div

    def forward(self, x):
        clips = rearrange(x, "(b t) c h w -> b t c h w", t=self.segments())
        return rearrange(shift_frames(clips, self.fold_div), "b t c h w -> (b t) c h w")


def mix_frames(clips, taps):
    """Each channel's depthwise temporal correlation with 3 taps, zero-padded: clips (B, T, C, L),
    taps (C, 3) -> out[:, t] = taps[:, 0] * clips[:, t-1] + taps[:, 1] * clips[:, t]
    + taps[:, 2] * clips[:, t+1] (a Conv1d(k=3, padding=1, groups=C) over each position's frames).

    Three multiply-adds on frame-offset views of the (b t) c h w memory: no layout change, no
    copy. Its transpose (for a backward) is the correlation with the taps reversed."""
    out = clips * taps[:, 1, None]
    out[:, 1:].addcmul_(clips[:, :-1], taps[:, 0, None])
    out[:, :-1].addcmul_(clips[:, 1:], taps[:, 2, None])
    return out


def mix_frames_(clips, taps):
    """`mix_frames` in place, a frame at a time: clips (B, T, C, L) are overwritten with their
    correlation, and each original frame is kept (in one of two frame-size buffers) for the next
    frame, which reads it. Returns clips."""
    frames = clips.shape[1]
    kept = clips.new_empty((2, *clips[:, 0].shape))
    for t in range(frames):
        if t + 1 < frames:  # frame t + 1 reads the original frame t
            kept[t % 2].copy_(clips[:, t])
        frame = clips[:, t].mul_(taps[:, 1, None])
        if t > 0:
            frame.addcmul_(kept[(t - 1) % 2], taps[:, 0, None])
        if t + 1 < frames:
            frame.addcmul_(clips[:, t + 1], taps[:, 2, None])
    return clips


class LearnableShift(ClipLayer):
    """ACTION-Net's shift: a depthwise temporal Conv1d (k=3, no bias) over each pixel's frames,
    initialized to TSM's shift (equal to `shift_frames` at initialization) and trainable.
    Action holds one for its taps and runs `mix_frames` itself, inside its autograd Function."""

    def __init__(self, channels, fold_div=8):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size=3, padding=1, groups=channels,
                              bias=False)
        # Conv1d correlates: tap 0 reads frame t-1, tap 1 frame t, tap 2 frame t+1.
        fold = channels // fold_div
        taps = torch.tensor([2] * fold + [0] * fold + [1] * (channels - 2 * fold))
        with torch.no_grad():
            self.conv.weight.copy_(F.one_hot(taps, 3).unsqueeze(1))

    def forward(self, x):
        # self.conv's values, computed by `mix_frames` in the frames' own layout: no
        # transposing copies in and out, which the conv needs (frames as the last axis)
        clips = rearrange(x.contiguous(), "(b t) c h w -> b t c (h w)", t=self.segments())
        shifted = mix_frames(clips, self.conv.weight[:, 0])
        return rearrange(shifted, "b t c (h w) -> (b t) c h w", h=x.shape[-2])
