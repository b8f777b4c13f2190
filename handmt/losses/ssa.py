"""Spatiotemporal semantic alignment (SSA) with the focal regularization parameter (MTUT, Abavisani
et al., CVPR 2019, eq. 1-4; DESIGN.md, "SSA loss with focal regularization").

For one sample, the feature map F (C channels at d = T*H*W positions) is written as a d x C
matrix A, and corr(F) = A A^T (eq. 1). The loss of network m aligned to network n is

    ssa^{m,n} = rho^{m,n} * dist(corr(F_m), corr(F_n)),                          (eq. 2)
    rho^{m,n} = relu(exp(beta * (l_cls^m - l_cls^n)) - 1),                          (eq. 3)

and network m trains on l_cls^m + lambda * sum_n ssa^{m,n}, averaged over the batch (eq. 4;
lambda = 0.05 with "fro2"). `ssa_loss` returns the per-sample values ssa^{m,n}; the caller applies
lambda, sums the directions and averages.

Choices (the paper leaves them open):
- rho is computed from detached per-sample classification losses: it weights the alignment and
  passes no gradient (the ReLU of eq. 3 makes it zero unless network n has the lower loss).
- corr(F_n) is detached: network m is pulled toward network n, never the reverse; the direction
  n -> m is a second call with the arguments swapped.
- normalize="position" (the paper's text): each position's C-vector is standardized over its
  channels and scaled to unit length, so corr(F) holds cosine similarities with a unit diagonal.
  The standard deviation cancels in the unit scaling, so this is (f - mean) / ||f - mean||; a
  position whose channels are all equal becomes a zero row (its correlations are 0).
  normalize="channel" (OpenMMLab mmpose 0.x): each channel is L2-normalized over the positions,
  without centering.
- distance="fro2" (the paper): ||corr_m - corr_n||_F^2. distance="rms" (mmpose 0.x):
  ||corr_m - corr_n||_F / d, with zero gradient where the matrices are equal.
- The d x d matrices are built only when d <= C. Otherwise the Gram identity
  ||A A^T - B B^T||_F^2 = ||A^T A||_F^2 - 2 ||A^T B||_F^2 + ||B^T B||_F^2 works on C x C matrices
  (fewer operations and less memory when d > C); rounding can leave it slightly negative, so it
  is clamped at 0. `path` forces either form. Both run in float32 (or float64) outside autocast.
- `max_term` (optional) clamps each sample's ssa^{m,n} from above to guard early training. A
  clamped value is a constant: it passes no gradient at all, so a sample whose term reaches the
  clamp stops being aligned until its term falls below it.
- `focal=False` sets rho = 1 (the paper's "I3D+SSA" ablation, section 4.5): every direction is
  aligned whatever the classification losses, which are then unused.
- `valid` (optional) masks samples whose classification losses mean nothing (e.g. no label):
  their value is 0, with zero gradient.
"""

import torch
import torch.nn.functional as F
from einops import rearrange


def focal_rho(cls_loss_m, cls_loss_n, beta=2.0):
    """The focal regularization parameter rho^{m,n} = relu(exp(beta * (l_m - l_n)) - 1) (eq. 3),
    from detached losses (per-sample tensors or scalars, broadcast together)."""
    delta = cls_loss_m.detach() - cls_loss_n.detach()
    return F.relu(torch.expm1(beta * delta))


def positions(feat, normalize="position", eps=1e-12):
    """Features (B, C, T, H, W) or (B, C, H, W) -> normalized (B, d, C) matrices A, corr = A A^T."""
    if feat.dim() not in (4, 5):
        raise ValueError(f"expected features (B, C, T, H, W) or (B, C, H, W), got {feat.shape}")
    x = rearrange(feat, "b c ... -> b (...) c")
    if normalize == "position":
        return F.normalize(x - x.mean(dim=2, keepdim=True), dim=2, eps=eps)
    if normalize == "channel":
        return F.normalize(x, dim=1, eps=eps)
    raise ValueError(f"normalize must be 'position' or 'channel', got {normalize!r}")


def squared_norm(x):
    return x.square().sum(dim=(1, 2))


def correlation_distance_sq(a, b, path="auto"):
    """||A A^T - B B^T||_F^2 per sample for (B, d, C_a) and (B, d, C_b) matrices: the d x d form
    when d <= min(C_a, C_b) ("corr"), the Gram identity otherwise ("gram")."""
    if path == "auto":
        path = "corr" if a.shape[1] <= min(a.shape[2], b.shape[2]) else "gram"
    if path == "corr":
        return squared_norm(a @ a.transpose(1, 2) - b @ b.transpose(1, 2))
    if path == "gram":
        at, bt = a.transpose(1, 2), b.transpose(1, 2)
        value = squared_norm(at @ a) - 2 * squared_norm(at @ b) + squared_norm(bt @ b)
        return value.clamp(min=0)
    raise ValueError(f"path must be 'auto', 'corr' or 'gram', got {path!r}")


def ssa_loss(feat_m, feat_n, cls_loss_m, cls_loss_n, *, beta=2.0, normalize="position",
             distance="fro2", max_term=None, valid=None, path="auto", focal=True):
    """Per-sample SSA loss of network m aligned to network n, rho^{m,n} * dist: shape (B,).

    feat_m, feat_n: (B, C, T, H, W) or (B, C, H, W) features of the same positions (channel
    counts may differ); cls_loss_m, cls_loss_n: per-sample classification losses (B,) or
    scalars. Gradient reaches feat_m only (see the module docstring for every choice)."""
    if feat_m.shape[0] != feat_n.shape[0] or feat_m.shape[2:] != feat_n.shape[2:]:
        raise ValueError(f"features must share batch and positions: {tuple(feat_m.shape)} vs "
                         f"{tuple(feat_n.shape)}")
    # float32 at least and no autocast: in half precision the squared correlations overflow.
    dtype = torch.promote_types(feat_m.dtype, torch.float32)
    with torch.autocast(feat_m.device.type, enabled=False):
        a = positions(feat_m.to(dtype), normalize)
        b = positions(feat_n.detach().to(dtype), normalize)
        fro2 = correlation_distance_sq(a, b, path)
    if distance == "fro2":
        dist = fro2
    elif distance == "rms":
        positive = fro2 > 0
        dist = torch.where(positive, fro2.clamp(min=torch.finfo(fro2.dtype).tiny).sqrt(),
                           torch.zeros_like(fro2)) / a.shape[1]
    else:
        raise ValueError(f"distance must be 'fro2' or 'rms', got {distance!r}")
    rho = (focal_rho(cls_loss_m, cls_loss_n, beta).expand_as(dist) if focal
           else torch.ones_like(dist))
    if valid is not None:  # zero rho first: a masked sample's loss may be inf or NaN
        rho = torch.where(valid, rho, torch.zeros_like(rho))
    values = rho * dist
    if max_term is not None:
        values = values.clamp(max=max_term)
    return values
