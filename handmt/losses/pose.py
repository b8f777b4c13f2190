"""Pose losses of the collaborative paper (ECCV 2020, section 3.4, eq. 5): `heatmap_loss` (L_2d)
and `depth_loss` (L_3d); targets come from handmt/geometry.py (docs/design.md, "Pose losses").

Both are means over joints, and the heatmap error is scaled to the paper's 64 x 64 grid whatever
the heatmap size: only then do the paper's weights (1, 0.001, 0.001) balance the terms (on small
grids a per-pixel mean drowned the class loss, issue 15)."""


from .classification import masked_mean

PAPER_HEATMAP_PIXELS = 64 * 64  # the paper's heatmaps (section 4, "Implementation Details")


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
