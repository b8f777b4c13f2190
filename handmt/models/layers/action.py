"""The ACTION module (Wang et al., "ACTION-Net: Multipath Excitation for Action Recognition",
CVPR 2021), as the MSD paper uses it (section III-B, Fig. 2; docs/design.md, "ACTION module and
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

How it is computed (the values are those of the description above, to float rounding): the
three paths only read the shifted x through small summaries, its 1x1 reduction and its channel
mean (one batched matrix product: the mean is a row of 1/C under the reduction's weights) and
its spatial mean, and
(x + x M_ste) + (x + x M_ce) + (x + x M_me) = x * (M_ste + 3 + M_ce + M_me). Training runs
the module as one autograd Function (`ActionFunction`) that writes its backward for the
full-size tensors (the shift, the summaries, the excitation) and lets autograd do the small
attention networks. Every full-size tensor is memory to write and keep, so the Function keeps
only its input for backward and makes one in forward (the shifted x, excited in place into the
output) and one in backward (the shifted x again, overwritten by its gradient and then by the
input's), working a frame at a time where a step would otherwise need a second one; autograd of
the plain code made about twelve.
"""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.autograd.function import once_differentiable

from .temporal_shift import ClipLayer, LearnableShift, mix_frames, mix_frames_


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
        clips = rearrange(x.contiguous(), "(b t) c h w -> b t c (h w)", t=self.segments())
        if self.training and torch.is_grad_enabled():
            out = ActionFunction.apply(clips, x.shape[-2], self, *self.parameters())
        else:  # inference and (traced) export: plain ops, no Python Function in the graph
            shifted = mix_frames(clips, self.taps())
            spatial, channel = self.attention(*self.summaries(shifted), height=x.shape[-2])
            out = shifted * (spatial + channel)
        return rearrange(out, "b t c (h w) -> (b t) c h w", h=x.shape[-2])

    def taps(self):
        """The shift's (C, 3) taps for `mix_frames`."""
        return self.shift.conv.weight[:, 0]

    def summaries(self, shifted):
        """Shifted clips (B, T, C, L) -> the motion path's 1x1 reduction (B, T, r, L), the
        channel means (B, T, L) and the spatial means (B, T, C). The reduction and the channel
        means are one batched matrix product by `summary_rows`, its rows expanded to every
        frame (a 2-D `weight @ shifted` would copy shifted into a transposed layout first)."""
        products = self.summary_rows().expand(*shifted.shape[:2], -1, -1) @ shifted
        # contiguous: BatchNorm's CPU kernels are several times slower on a strided batch
        return products[:, :, :-1].contiguous(), products[:, :, -1], shifted.mean(dim=3)

    def summary_rows(self):
        """(r + 1, C): the motion path's 1x1 reduction and a last row of 1 / C (channel mean)."""
        weight = self.me_squeeze.weight.flatten(1)
        return torch.cat([weight, weight.new_full((1, weight.shape[1]), 1 / weight.shape[1])])

    def attention(self, reduced, channel_means, spatial_means, *, height):
        """The paths' maps from the summaries: M_ste (B, T, 1, L) and 3 + M_ce + M_me
        (B, T, C, 1)."""
        return (self.spatiotemporal_attention(channel_means, height),
                3 + self.channel_attention(spatial_means) + self.motion_attention(reduced, height))

    def spatiotemporal_attention(self, channel_mean, height):
        """(B, T, L) channel means -> (B, T, 1, L): one map per frame from a 3D conv over the
        clip."""
        pooled = rearrange(channel_mean, "b t (h w) -> b 1 t h w", h=height)
        return rearrange(self.ste_conv(pooled), "b 1 t h w -> b t 1 (h w)").sigmoid()

    def channel_attention(self, means):
        """(B, T, C) spatial means -> (B, T, C, 1): SE-style channel weights with a temporal conv
        between squeeze and expand (the 1x1 convs of a 1 x 1 map are matrix products)."""
        squeezed = rearrange(F.linear(means, self.ce_squeeze.weight.flatten(1)), "b t r -> b r t")
        temporal = rearrange(F.relu(self.ce_temporal(squeezed)), "b r t -> b t r")
        return F.linear(temporal, self.ce_expand.weight.flatten(1)).sigmoid().unsqueeze(-1)

    def motion_attention(self, reduced, height):
        """(B, T, r, L) reduced frames -> (B, T, C, 1): channel weights from the motion
        K * F(t+1) - F(t), 0 at the last frame (MSD eq. 1)."""
        frames = rearrange(reduced, "b t r (h w) -> (b t) r h w", h=height)
        features = self.me_bn(frames)
        # the spatial mean of K * F(t+1) - F(t) as a difference of means (the mean is linear):
        # no full-resolution difference maps
        means = rearrange(features.mean(dim=(2, 3)), "(b t) r -> b t r", t=reduced.shape[1])
        transformed = rearrange(self.me_conv(features).mean(dim=(2, 3)), "(b t) r -> b t r",
                                t=reduced.shape[1])
        motion = F.pad(transformed[:, 1:] - means[:, :-1], (0, 0, 0, 1))  # 0 after the last frame
        return F.linear(motion, self.me_expand.weight.flatten(1)).sigmoid().unsqueeze(-1)


class ActionFunction(torch.autograd.Function):
    """Action's forward in training, with the backward of its full-size part written out.

    Saved: the input clips only (the block keeps them alive anyway); backward computes the
    shifted clips again. The attention networks' small graph (from the summaries to the maps) is
    kept on ctx and differentiated with torch.autograd.grad in backward. With g the output
    gradient, s the shifted clips and W the motion path's 1x1 reduction:
      d spatial = sum_c g s,  d channel = sum_L g s,
      d s = g * channel + d spatial means / L + g * spatial
            + W^T d reduced + d channel means / C  (the last two as one batched GEMM),
      d W = sum d reduced s^T,  d clips = the shift's transpose (its taps reversed) of d s,
      d taps = products of d s and the clips one frame apart (a (C, T, T) batched GEMM).
    """

    @staticmethod
    def forward(ctx, clips, height, action, *params):
        shifted = mix_frames(clips, action.taps())
        with torch.enable_grad():  # the small graph: summaries -> maps
            summaries = [summary.detach().requires_grad_()
                         for summary in action.summaries(shifted)]
            spatial, channel = action.attention(*summaries, height=height)
        ctx.save_for_backward(clips)
        ctx.action, ctx.graph = action, (summaries, spatial, channel)
        # the output in shifted's memory, a frame at a time: no full-size map of the sum
        spatial, channel = spatial.detach(), channel.detach()  # ctx.graph holds the graph's
        frame_maps = shifted.new_empty(shifted[:, 0].shape)
        for frame in range(shifted.shape[1]):
            torch.add(spatial[:, frame], channel[:, frame], out=frame_maps)
            shifted[:, frame].mul_(frame_maps)
        return shifted

    @staticmethod
    @once_differentiable  # the backward's own ops are not differentiated (no double backward)
    def backward(ctx, grad):
        (clips,) = ctx.saved_tensors
        action, (summaries, spatial, channel) = ctx.action, ctx.graph
        batch, frames, channels, positions = clips.shape
        grad = grad.contiguous()
        shifted = mix_frames(clips, action.taps())  # this buffer ends as the input's gradient
        grad_spatial, grad_channel = torch.empty_like(spatial), torch.empty_like(channel)
        product = shifted.new_empty(shifted[:, 0].shape)
        for frame in range(frames):  # d maps = sums of g s, a frame of g s at a time
            torch.mul(grad[:, frame], shifted[:, frame], out=product)
            torch.sum(product, dim=1, keepdim=True, out=grad_spatial[:, frame])
            torch.sum(product, dim=2, keepdim=True, out=grad_channel[:, frame])
        params = list(action.parameters())
        direct = {action.shift.conv.weight, action.me_squeeze.weight}  # done by hand below
        wanted = [p for p, needed in zip(params, ctx.needs_input_grad[3:], strict=True)
                  if needed and p not in direct]
        # retain_graph: the small graph lives as long as this node (a backward with
        # retain_graph=True can run this again)
        grad_reduced, grad_channel_means, grad_spatial_means, *grad_wanted = torch.autograd.grad(
            (spatial, channel), (*summaries, *wanted), (grad_spatial, grad_channel),
            retain_graph=True)
        grads = dict(zip(wanted, grad_wanted, strict=True))
        grad_weight = torch.bmm(grad_reduced.flatten(0, 1),
                                shifted.flatten(0, 1).transpose(1, 2)).sum(0)
        grads[action.me_squeeze.weight] = grad_weight.view_as(action.me_squeeze.weight)

        # g * channel + (d spatial means / L) 1^T in one pass, then + g * spatial, then
        # + summary_rows^T [d reduced; d channel means] (the summaries' transpose), per frame
        grad_shifted = torch.addcmul((grad_spatial_means / positions).unsqueeze(-1), grad,
                                     channel, out=shifted).addcmul_(grad, spatial)
        transposed_rows = action.summary_rows().T.expand(batch * frames, -1, -1)
        right = torch.cat([grad_reduced, grad_channel_means.unsqueeze(2)], dim=2)
        grad_shifted.flatten(0, 1).baddbmm_(transposed_rows, right.flatten(0, 1))
        # (C, T, T) products of d s frame t and clips frame t' over positions and clips; tap 0
        # carried frame t-1 into t (offset -1), tap 1 frame t, tap 2 frame t+1
        products = sum(torch.bmm(g.transpose(0, 1), c.permute(1, 2, 0))
                       for g, c in zip(grad_shifted, clips, strict=True))
        grad_taps = torch.stack([products.diagonal(offset, dim1=1, dim2=2).sum(-1)
                                 for offset in (-1, 0, 1)], dim=1)
        grads[action.shift.conv.weight] = grad_taps.unsqueeze(1)
        grad_clips = mix_frames_(grad_shifted, action.taps().flip(1))
        return (grad_clips, None, None, *[grads.get(p) for p in params])
