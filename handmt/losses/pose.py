"""Pose targets and losses of the collaborative paper (ECCV 2020, section 3.4, eq. 5).

Eq. 5 writes the pose terms as sums over joints; the losses here are means over joints, as the
pose codes the paper follows compute them (mean squared error): only then do the paper's weights
(1, 0.001, 0.001) balance the terms. With sums over its 64 x 64 heatmaps the heatmap term would
outweigh the gesture term by about five orders of magnitude.

The heatmap error is the per-joint sum over pixels divided by the paper's 64 x 64 pixels,
whatever the heatmap size: the mean squared error of the paper's grid, which its weights were
set for. A target Gaussian has a fixed sigma in heatmap pixels, so the per-joint sum does not
depend on the grid, but a mean over a smaller grid does: on the cpu configs' 8 x 8 heatmaps it
is 64 times larger, and that drowned the class loss (weight 0.001): the gesture cross-entropy
stayed at ln(classes) while the shared features learned the heatmaps alone (issue 15;
tests/test_overfit.py).

Heatmaps live on a grid `stride` times coarser than the network input; heatmap pixel i covers
input pixels [i*stride, (i+1)*stride), so its centre is input pixel i*stride + (stride-1)/2.
"""

import torch

from ..hand import WRIST
from .classification import masked_mean

PAPER_HEATMAP_PIXELS = 64 * 64  # the paper's heatmaps (section 4, "Implementation Details")


def to_heatmap(points, stride):
    """Input pixels (..., 2) -> heatmap pixels."""
    return (points - (stride - 1) / 2) / stride


def from_heatmap(points, stride):
    """Heatmap pixels (..., 2) -> input pixels."""
    return points * stride + (stride - 1) / 2


def gaussian_heatmaps(points, height, width, sigma):
    """Unnormalized Gaussians exp(-d^2 / (2 sigma^2)) with peak 1 at `points` (..., 2) in heatmap
    pixels (x, y) -> (..., height, width). A joint outside the grid gives a (near) zero map; a
    grid-normalized Gaussian (kornia's render_gaussian2d) would pile its mass on the border."""
    ys = torch.arange(height, device=points.device, dtype=points.dtype)
    xs = torch.arange(width, device=points.device, dtype=points.dtype)
    dy = (ys - points[..., 1, None]) ** 2
    dx = (xs - points[..., 0, None]) ** 2
    return torch.exp(-(dy[..., :, None] + dx[..., None, :]) / (2 * sigma**2))


def relative_depth(joints3d, depth_scale):
    """Depth targets: each joint's z minus the wrist's, in units of `depth_scale` mm (..., 21)."""
    z = joints3d[..., 2]
    return (z - z[..., WRIST, None]) / depth_scale


def heatmap_loss(pred, target, valid):
    """L_2d: per frame, the squared heatmap error summed over pixels, divided by
    PAPER_HEATMAP_PIXELS and averaged over joints (pred, target (B, T, N, h, w)); then averaged
    over the frames with a pose label (`valid` (B, T)). Targets of unlabelled frames may be NaN."""
    squared = ((pred - target.nan_to_num()) ** 2).sum(dim=(-2, -1)).mean(dim=-1)
    return masked_mean(squared / PAPER_HEATMAP_PIXELS, valid)


def depth_loss(pred, target, valid):
    """L_3d: the squared depth error averaged over joints per frame (pred, target (B, T, N)),
    then over the frames with a pose label. Targets of unlabelled frames may be NaN."""
    return masked_mean(((pred - target.nan_to_num()) ** 2).mean(dim=-1), valid)
