"""Spatiotemporal semantic alignment (SSA) with the focal regularization parameter (MTUT, Abavisani
et al., CVPR 2019, eq. 1-4; docs/design.md, "SSA loss with focal regularization").

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
  is clamped at 0. Its backward is written out (`GramDistance`): it keeps only the C x C Gram
  matrices and recomputes the normalized features, so forward + backward at d = 6272, C = 256
  peaks at about 1/30 of the d x d form's memory (benchmarks/perf.py). `path` forces either
  form. Both run in float32 (or float64) outside autocast.
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


def focal_rho(cls_loss_m, cls_loss_n, beta=2.0):
    """The focal regularization parameter rho^{m,n} = relu(exp(beta * (l_m - l_n)) - 1) (eq. 3),
    from detached losses (per-sample tensors or scalars, broadcast together)."""
    delta = cls_loss_m.detach() - cls_loss_n.detach()
    return F.relu(torch.expm1(beta * delta))


def normalized(feat, normalize="position", eps=1e-12):
    """Features (B, C, T, H, W) or (B, C, H, W) -> (A^T, norms): the normalized (B, C, d) matrices
    (corr = A A^T) in the features' own layout, and the norms they were divided by (before the
    clamp at eps), (B, 1, d) for "position" and (B, C, 1) for "channel"."""
    if feat.dim() not in (4, 5):
        raise ValueError(f"expected features (B, C, T, H, W) or (B, C, H, W), got {feat.shape}")
    x = feat.flatten(2)
    if normalize == "position":
        x, dim = x - x.mean(dim=1, keepdim=True), 1
    elif normalize == "channel":
        dim = 2
    else:
        raise ValueError(f"normalize must be 'position' or 'channel', got {normalize!r}")
    norms = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
    return x / norms.clamp_min(eps), norms


def squared_norm(x):
    return x.square().sum(dim=(1, 2))


class GramDistance(torch.autograd.Function):
    """||A A^T - B B^T||_F^2 per sample by the Gram identity, from the raw features of network m
    (B, C_m, ...) and the detached ones of network n (B, C_n, ...), clamped at 0.

    Autograd would keep the normalized and centered d x C matrices for backward and build several
    more of them there. This forward keeps only the features (the caller holds them anyway), the
    C x C Gram matrices and the d or C norms; backward recomputes A and B, so its peak is three
    d x C matrices: A, B and the gradient. With a = A^T, b = B^T (C x d) and G_aa = a a^T,
    G_ab = a b^T, the value is ||G_aa||^2 - 2 ||G_ab||^2 + ||G_bb||^2 and its gradient in a is
    4 (G_aa a - G_ab b); F.normalize's backward then maps that to the features."""

    @staticmethod
    def forward(ctx, feat_m, feat_n, normalize, eps):
        a, norms = normalized(feat_m, normalize, eps)
        b, _ = normalized(feat_n, normalize, eps)
        gram_aa, gram_ab = a @ a.transpose(1, 2), a @ b.transpose(1, 2)
        value = squared_norm(gram_aa) - 2 * squared_norm(gram_ab) + squared_norm(
            b @ b.transpose(1, 2))
        ctx.save_for_backward(feat_m, feat_n, norms, gram_aa, gram_ab, value)
        ctx.normalize, ctx.eps = normalize, eps
        return value.clamp(min=0)  # rounding can leave it slightly negative

    @staticmethod
    def backward(ctx, grad_value):
        feat_m, feat_n, norms, gram_aa, gram_ab, value = ctx.saved_tensors
        a, _ = normalized(feat_m, ctx.normalize, ctx.eps)
        b, _ = normalized(feat_n, ctx.normalize, ctx.eps)
        grad = torch.bmm(gram_aa, a).baddbmm_(gram_ab, b, alpha=-1)
        del b
        scale = torch.where(value >= 0, 4 * grad_value, torch.zeros_like(grad_value))  # clamp
        grad.mul_(scale[:, None, None])
        # a = x / max(norm, eps): grad_x = (grad - a <a, grad>) / norm, or grad / eps where the
        # clamp held (its gradient is 0); <., .> over the normalized axis
        dim = 1 if ctx.normalize == "position" else 2
        projected = norms >= ctx.eps
        grad.sub_(a * torch.where(projected, (a * grad).sum(dim, keepdim=True), 0))
        grad.div_(norms.clamp_min(ctx.eps))
        # "position" centers x over the channels first; that map's backward (subtracting the
        # channel mean) changes nothing here: grad = a (a^T a - b^T b) up to the per-position
        # steps above, a combination of a's already centered columns
        return grad.view_as(feat_m), None, None, None


def correlation_distance_sq(feat_m, feat_n, normalize="position", path="auto", eps=1e-12):
    """||A A^T - B B^T||_F^2 per sample for features (B, C_m, ...) and (B, C_n, ...) with the same
    d positions: the d x d form when d <= min(C_m, C_n) ("corr"), the Gram identity otherwise
    ("gram"). feat_n is detached."""
    d, channels = feat_m[0, 0].numel(), min(feat_m.shape[1], feat_n.shape[1])
    if path == "auto":
        path = "corr" if d <= channels else "gram"
    if path == "corr":
        a, _ = normalized(feat_m, normalize, eps)
        b, _ = normalized(feat_n.detach(), normalize, eps)
        return squared_norm(a.transpose(1, 2) @ a - b.transpose(1, 2) @ b)
    if path == "gram":
        return GramDistance.apply(feat_m, feat_n.detach(), normalize, eps)
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
        fro2 = correlation_distance_sq(feat_m.to(dtype), feat_n.to(dtype), normalize, path)
    if distance == "fro2":
        dist = fro2
    elif distance == "rms":
        positive = fro2 > 0
        dist = torch.where(positive, fro2.clamp(min=torch.finfo(fro2.dtype).tiny).sqrt(),
                           torch.zeros_like(fro2)) / feat_m[0, 0].numel()
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
