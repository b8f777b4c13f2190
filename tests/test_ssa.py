"""The SSA loss with the focal regularization parameter (docs/design.md, "SSA loss with focal
regularization"; MTUT paper, eq. 1-4)."""

import math

import numpy as np
import pytest
import torch

from handmt.losses import focal_rho, ssa_loss
from handmt.losses import ssa as ssa_module

# beta = 2 and l_m - l_n = ln(2) / 2 give rho = exp(ln 2) - 1 = 1.
RHO_ONE = (torch.tensor([math.log(2) / 2]), torch.tensor([0.0]))


def reference_fro2(feat_m, feat_n):
    """||corr(F_m) - corr(F_n)||_F^2 per sample in float64 numpy, straight from eq. 1: each
    position's C-vector standardized by its mean and standard deviation over the channels, then
    divided by its magnitude; corr = F^ F^T (d x d)."""
    values = []
    for fm, fn in zip(feat_m.detach().double().numpy(), feat_n.detach().double().numpy(),
                      strict=True):
        corrs = []
        for f in (fm, fn):
            rows = f.reshape(f.shape[0], -1).T  # (d, C)
            tilde = (rows - rows.mean(1, keepdims=True)) / rows.std(1, keepdims=True)
            hat = tilde / np.linalg.norm(tilde, axis=1, keepdims=True)
            corrs.append(hat @ hat.T)
        values.append(((corrs[0] - corrs[1]) ** 2).sum())
    return torch.tensor(values)


def test_focal_rho_follows_eq_3():
    l_m = torch.tensor([1.0, 0.3, 0.5, 0.7])
    l_n = torch.tensor([0.5, 0.3, 0.9, 0.2])
    # exp(2 * 0.5) - 1; equal losses -> 0; network n worse -> 0; exp(2 * 0.5) - 1
    expected = torch.tensor([math.e - 1, 0.0, 0.0, math.e - 1])
    torch.testing.assert_close(focal_rho(l_m, l_n), expected)
    torch.testing.assert_close(focal_rho(l_m, l_n, beta=1.0)[3], torch.tensor(math.exp(0.5) - 1))


def test_ssa_is_zero_where_the_other_network_is_not_better():
    torch.manual_seed(0)
    feat_m, feat_n = torch.randn(3, 8, 2, 3, 3), torch.randn(3, 8, 2, 3, 3)
    l_m = torch.tensor([1.0, 0.4, 0.4])
    l_n = torch.tensor([0.5, 0.4, 0.9])
    values = ssa_loss(feat_m, feat_n, l_m, l_n)
    assert values.shape == (3,)
    assert values[1] == 0 and values[2] == 0
    torch.testing.assert_close(values[0], (math.e - 1) * reference_fro2(feat_m, feat_n)[0].float())


@pytest.mark.parametrize("normalize", ["position", "channel"])
@pytest.mark.parametrize("distance", ["fro2", "rms"])
@pytest.mark.parametrize("path", ["corr", "gram"])
def test_ssa_is_zero_for_identical_features(normalize, distance, path):
    torch.manual_seed(0)
    feat = torch.randn(2, 6, 2, 3, 4, requires_grad=True)
    values = ssa_loss(feat, feat, torch.tensor([2.0, 3.0]), torch.tensor([0.0, 0.0]),
                      normalize=normalize, distance=distance, path=path)
    torch.testing.assert_close(values, torch.zeros(2), rtol=0, atol=1e-4)
    values.sum().backward()
    assert torch.isfinite(feat.grad).all()  # also for rms, whose sqrt is singular at 0


def test_hand_computed_2x2_example_in_both_normalizations():
    # (B, C, H, W) = (1, 2, 1, 2): two positions, two channels.
    # F_m: p1 = (1, 0), p2 = (0, 1); F_n: p1 = (1, 0), p2 = (2, 0).
    feat_m = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
    feat_n = torch.tensor([[[[1.0, 2.0]], [[0.0, 0.0]]]])
    # position: rows centred over channels and scaled to unit length: F_m -> (1, -1)/sqrt 2 and
    # (-1, 1)/sqrt 2, corr [[1, -1], [-1, 1]]; F_n -> (1, -1)/sqrt 2 twice, corr all ones.
    # Difference [[0, -2], [-2, 0]]: fro2 = 8, rms = sqrt(8) / 2.
    # channel: columns unit length over positions: F_m -> identity, corr I; F_n -> channel 0
    # (1, 2)/sqrt 5, channel 1 zero, corr [[1, 2], [2, 4]] / 5. Difference
    # [[4, -2], [-2, 1]] / 5: fro2 = (16 + 4 + 4 + 1) / 25 = 1, rms = 1 / 2.
    expected = {("position", "fro2"): 8.0, ("position", "rms"): math.sqrt(8) / 2,
                ("channel", "fro2"): 1.0, ("channel", "rms"): 0.5}
    for (normalize, distance), value in expected.items():
        for path in ("corr", "gram"):
            got = ssa_loss(feat_m, feat_n, *RHO_ONE, normalize=normalize, distance=distance,
                           path=path)
            torch.testing.assert_close(got, torch.tensor([value]), msg=f"{normalize} {distance}")


@pytest.mark.parametrize("normalize", ["position", "channel"])
def test_gram_identity_equals_the_explicit_d_by_d_path(normalize):
    torch.manual_seed(0)
    for shape in [(3, 8, 2, 4, 5), (2, 64, 2, 3, 3), (2, 16, 4, 4)]:  # d > C, d < C, (B,C,H,W)
        feat_m = torch.randn(shape, requires_grad=True)
        feat_n = torch.randn(shape)
        values, grads = {}, {}
        for path in ("corr", "gram", "auto"):
            values[path] = ssa_loss(feat_m, feat_n, *RHO_ONE, normalize=normalize, path=path)
            (grads[path],) = torch.autograd.grad(values[path].sum(), feat_m)
        torch.testing.assert_close(values["gram"], values["corr"], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(grads["gram"], grads["corr"], rtol=1e-4, atol=1e-5)
        d = math.prod(shape[2:])
        auto = "corr" if d <= shape[1] else "gram"
        assert torch.equal(values["auto"], values[auto])
        if normalize == "position":
            torch.testing.assert_close(values["corr"].double(), reference_fro2(feat_m, feat_n),
                                       rtol=1e-5, atol=1e-4)


def autograd_gram_fro2(feat_m, feat_n, normalize):
    """The Gram path as first written, differentiated by autograd: the reference for
    GramDistance's hand-written backward."""
    def rows(feat):  # (B, d, C)
        x = feat.flatten(2).transpose(1, 2)
        if normalize == "position":
            return torch.nn.functional.normalize(x - x.mean(dim=2, keepdim=True), dim=2)
        return torch.nn.functional.normalize(x, dim=1)
    a, b = rows(feat_m), rows(feat_n.detach())
    at, bt = a.transpose(1, 2), b.transpose(1, 2)
    return ((at @ a).square().sum((1, 2)) - 2 * (at @ b).square().sum((1, 2))
            + (bt @ b).square().sum((1, 2))).clamp(min=0)


@pytest.mark.parametrize("normalize", ["position", "channel"])
def test_gram_backward_equals_autograd_of_the_first_implementation(normalize):
    torch.manual_seed(0)
    for shape_m, shape_n in [((3, 8, 2, 4, 5), (3, 8, 2, 4, 5)), ((2, 5, 3, 4), (2, 9, 3, 4))]:
        feat_m = torch.randn(shape_m, dtype=torch.float64, requires_grad=True)
        feat_n = torch.randn(shape_n, dtype=torch.float64)
        with torch.no_grad():  # a position with equal channels: its normalized row is 0
            feat_m[0, :, 0, 0] = 1.5
        weights = torch.rand(shape_m[0], dtype=torch.float64)  # a different d loss/d value each
        values, grads = [], []
        for fro2 in (ssa_module.correlation_distance_sq(feat_m, feat_n, normalize, "gram"),
                     autograd_gram_fro2(feat_m, feat_n, normalize)):
            values.append(fro2)
            grads.append(torch.autograd.grad((weights * fro2).sum(), feat_m)[0])
        torch.testing.assert_close(values[0], values[1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-10)
        assert grads[0].abs().sum() > 0


def test_gram_path_with_different_channel_counts():
    torch.manual_seed(0)
    feat_m, feat_n = torch.randn(2, 5, 3, 4, 4), torch.randn(2, 9, 3, 4, 4)
    corr = ssa_loss(feat_m, feat_n, *RHO_ONE, path="corr")
    torch.testing.assert_close(ssa_loss(feat_m, feat_n, *RHO_ONE), corr, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(corr.double(), reference_fro2(feat_m, feat_n), rtol=1e-5,
                               atol=1e-4)


@pytest.mark.parametrize("path", ["corr", "gram"])
def test_gradient_reaches_only_the_network_being_aligned(path):
    torch.manual_seed(0)
    feat_m = torch.randn(2, 4, 2, 3, 3, requires_grad=True)
    feat_n = torch.randn(2, 4, 2, 3, 3, requires_grad=True)
    l_m = torch.tensor([1.0, 0.2], requires_grad=True)
    l_n = torch.tensor([0.5, 0.6], requires_grad=True)
    ssa_loss(feat_m, feat_n, l_m, l_n, path=path).sum().backward()
    assert feat_n.grad is None  # target correlation detached
    assert l_m.grad is None and l_n.grad is None  # rho detached
    assert feat_m.grad[0].abs().sum() > 0  # sample 0: network n is better, m is pulled
    assert torch.equal(feat_m.grad[1], torch.zeros_like(feat_m.grad[1]))  # rho = 0


def test_a_clamped_term_passes_no_gradient():
    torch.manual_seed(0)
    feat_m = torch.randn(2, 4, 2, 3, 3, requires_grad=True)
    feat_n = torch.randn(2, 4, 2, 3, 3)
    l_m, l_n = torch.tensor([5.0, 0.51]), torch.tensor([0.0, 0.5])  # rho ~ 2.2e4 and ~0.02
    free = ssa_loss(feat_m, feat_n, l_m, l_n).detach()
    limit = free[1].item() * 2
    assert free[0] > limit
    clamped = ssa_loss(feat_m, feat_n, l_m, l_n, max_term=limit)
    torch.testing.assert_close(clamped, torch.stack([torch.tensor(limit), free[1]]))
    clamped.sum().backward()
    assert torch.equal(feat_m.grad[0], torch.zeros_like(feat_m.grad[0]))
    assert feat_m.grad[1].abs().sum() > 0


def test_masked_samples_add_zero_loss_and_zero_gradient_even_with_nan_losses():
    torch.manual_seed(0)
    feat_m = torch.randn(2, 4, 2, 3, 3, requires_grad=True)
    feat_n = torch.randn(2, 4, 2, 3, 3)
    l_m, l_n = torch.tensor([1.0, float("nan")]), torch.tensor([0.5, 0.0])
    values = ssa_loss(feat_m, feat_n, l_m, l_n, valid=torch.tensor([True, False]))
    assert values[0] > 0 and values[1] == 0
    values.sum().backward()
    assert torch.isfinite(feat_m.grad).all()
    assert torch.equal(feat_m.grad[1], torch.zeros_like(feat_m.grad[1]))


def test_rejects_mismatched_positions_and_unknown_options():
    feat = torch.randn(1, 4, 2, 3, 3)
    with pytest.raises(ValueError, match="positions"):
        ssa_loss(feat, torch.randn(1, 4, 2, 3, 4), *RHO_ONE)
    with pytest.raises(ValueError, match="normalize"):
        ssa_loss(feat, feat, *RHO_ONE, normalize="batch")
    with pytest.raises(ValueError, match="distance"):
        ssa_loss(feat, feat, *RHO_ONE, distance="l1")
