"""The TCN classifier on hand features (collaborative paper, section 3.3)."""

import torch
from torch import nn

from handmt.models.collab.tcn import TCN


def test_shape_and_temporal_order():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 16)
    tcn = TCN(16, 5, hidden=32).eval()
    logits = tcn(x)
    assert logits.shape == (3, 5)
    assert not torch.allclose(tcn(x.flip(1)), logits, atol=1e-4)
    # A 1-frame kernel sees frames independently: the mean over time forgets their order.
    pointwise = TCN(16, 5, hidden=32, kernel_size=1).eval()
    assert torch.allclose(pointwise(x.flip(1)), pointwise(x), atol=1e-5)


def test_hand_computed_logit():
    tcn = TCN(1, 1, hidden=1, layers=1, kernel_size=3).eval()
    with torch.no_grad():
        for layer in (tcn.project, tcn.fc):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
        tcn.blocks[0][0].weight.copy_(torch.tensor([[[0.0, 0.0, 1.0]]]))  # y_t = x_{t+1}
    scale = 1 / (1 + tcn.blocks[0][1].eps) ** 0.5  # BN in eval: running mean 0, variance 1
    # x = (1, -2, 3): next frames (-2, 3, 0), ReLU (0, 3, 0); residual (1, 3 scale - 2, 3)
    x = torch.tensor([1.0, -2.0, 3.0]).reshape(1, 3, 1)
    assert torch.allclose(tcn(x), torch.tensor([[(2 + 3 * scale) / 3]]))
    # reversed (3, -2, 1): next frames (-2, 1, 0), ReLU (0, 1, 0); residual (3, scale - 2, 1)
    assert torch.allclose(tcn(x.flip(1)), torch.tensor([[(2 + scale) / 3]]))


def test_training_mode_trains():
    torch.manual_seed(0)
    tcn = TCN(8, 4, hidden=16, dropout=0.0)
    x, labels = torch.randn(6, 5, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    nn.functional.cross_entropy(tcn(x), labels).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tcn.parameters())
