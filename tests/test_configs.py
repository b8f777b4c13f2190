"""Every shipped config loads, builds, and runs one forward/backward pass on a tiny clip."""

from pathlib import Path

import pytest
import torch

from handmt import load_config
from handmt.models import MultiModalModel, build

CONFIGS = sorted(Path("configs").glob("*.yaml"))


def contract_batch(batch_size, frames, size):
    """A batch with every key of the data contract (docs/design.md), random but well-formed."""
    joints2d = torch.rand(batch_size, frames, 21, 2) * size
    K = torch.tensor([[size * 1.5, 0, size / 2], [0, size * 1.5, size / 2], [0, 0, 1.0]])
    return {"rgb": torch.randn(batch_size, frames, 3, size, size),
            "depth": torch.rand(batch_size, frames, 1, size, size),
            "flow": torch.randn(batch_size, frames, 2, size, size),
            "mask": (torch.rand(batch_size, frames, 1, size, size) > 0.5).float(),
            "joints": torch.randn(batch_size, frames, 21, 3),
            "mask_valid": torch.ones(batch_size, frames, dtype=torch.bool),
            "label": torch.arange(batch_size) % 2,
            "joints2d": joints2d,
            "joints3d": torch.cat([joints2d, torch.full_like(joints2d[..., :1], 400.0)], -1),
            "pose_valid": torch.ones(batch_size, frames, dtype=torch.bool),
            "K": K.expand(batch_size, 3, 3).clone(),
            "video": torch.arange(batch_size)}


def test_there_are_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_builds_and_trains(path):
    """Finite positive losses, and within three SGD steps every parameter gets a gradient (a
    zero-initialised residual conv, as in the relation module, opens the path behind it only
    after its first step)."""
    cfg = load_config(path)
    torch.manual_seed(0)
    model = build(cfg)
    if isinstance(model, MultiModalModel):  # MTUT's second stage: SSA on
        model.set_epoch(model.ssa.start_epoch)
    batch = contract_batch(2, cfg["data"].get("num_frames", 8), 32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    trained = set()
    for _ in range(3):
        losses = model.losses(model(batch), batch)
        assert torch.isfinite(losses["total"]) and losses["total"] > 0
        optimizer.zero_grad()
        losses["total"].backward()
        trained |= {name for name, p in model.named_parameters()
                    if p.grad is not None and bool(p.grad.abs().sum() > 0)}
        optimizer.step()
    untrained = [name for name, p in model.named_parameters()
                 if p.requires_grad and name not in trained]
    assert not untrained, untrained
