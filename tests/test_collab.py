"""The collaborative pose and gesture head (ECCV 2020, section 3) and its pose losses."""

import pytest
import torch

from handmt import ConfigError
from handmt.losses.pose import depth_loss, heatmap_loss
from handmt.models import build

T, SIZE = 4, 64


def config(**head):
    return {"model": {
        "backbone": {"name": "resnet_tsn", "arch": "resnet18", "last_stage": "res3"},
        "heads": {"gesture": {"name": "collab", "num_classes": 5, "joint_channels": 4,
                              "tcn_hidden": 16, **head}}}}


def batch_of(b=2, seed=0):
    """Clips whose joints2d are the projection of joints3d through K (the data contract)."""
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[40.0, 0, SIZE / 2], [0, 40.0, SIZE / 2], [0, 0, 1]])
    joints3d = torch.randn(b, T, 21, 3, generator=g) * torch.tensor([40.0, 40.0, 30.0])
    joints3d[..., 2] += 400
    uvw = joints3d @ K.T
    return {"rgb": torch.randn(b, T, 3, SIZE, SIZE, generator=g), "joints3d": joints3d,
            "joints2d": uvw[..., :2] / uvw[..., 2:], "K": K.expand(b, 3, 3),
            "pose_valid": torch.ones(b, T, dtype=torch.bool), "label": torch.arange(b)}


def test_pose_losses_by_hand():
    target = torch.zeros(1, 1, 21)
    pred = target.clone()
    pred[0, 0, 3] = 2.0
    assert depth_loss(pred, target, torch.ones(1, 1, dtype=torch.bool)) == pytest.approx(4 / 21)
    assert depth_loss(pred, target, torch.zeros(1, 1, dtype=torch.bool)) == 0
    maps = torch.zeros(1, 2, 21, 3, 3)
    maps[0, 1, 5, 1, 1] = 3.0
    valid = torch.tensor([[True, True]])
    # one pixel off by 3 on one of two frames: 9 over the paper's 64 x 64 pixels, mean over 21
    # joints and 2 frames, whatever the grid size
    assert heatmap_loss(maps, torch.zeros_like(maps), valid) == pytest.approx(9 / 4096 / 21 / 2)
    finer = torch.zeros(1, 2, 21, 6, 6)
    finer[0, 1, 5, 2, 2] = 3.0
    assert heatmap_loss(finer, torch.zeros_like(finer), valid) == pytest.approx(9 / 4096 / 21 / 2)
    # a NaN target on an unlabelled frame neither counts nor poisons the gradient
    target_maps = torch.zeros_like(maps)
    target_maps[0, 1] = float("nan")
    maps.requires_grad_()
    loss = heatmap_loss(maps, target_maps, torch.tensor([[True, False]]))
    loss.backward()
    assert loss == 0 and torch.isfinite(maps.grad).all()


def test_decoding_the_targets_lands_on_the_ground_truth():
    model = build(config())
    head = model.heads["gesture"]
    batch = batch_of()
    h = w = SIZE // 4
    # keep the joints inside the heatmap so soft-argmax sees the whole Gaussian
    batch["joints2d"] = batch["joints2d"].clamp(16, SIZE - 17)
    uv1 = torch.cat([batch["joints2d"], torch.ones_like(batch["joints2d"][..., :1])], -1)
    batch["joints3d"] = (uv1 @ torch.linalg.inv(batch["K"][0]).T) * batch["joints3d"][..., 2:]
    heatmaps, depth = head.targets(batch, h, w)
    logits = torch.zeros(2, 5)
    predicted = head.predict({"heatmaps": heatmaps, "rel_depth": depth, "logits": logits}, batch)
    assert predicted["logits"] is logits
    assert (predicted["joints2d"] - batch["joints2d"]).abs().max() < 0.05  # input pixels
    assert (predicted["joints3d"] - batch["joints3d"]).norm(dim=-1).max() < 1.0  # mm
    relative = batch["joints3d"][..., 2] - batch["joints3d"][..., :1, 2]
    assert (predicted["rel_depth"] - relative).abs().max() < 1.0  # mm from the wrist
    del batch["K"]  # no intrinsics (a video): no 3D joints
    assert set(head.predict({"heatmaps": heatmaps, "rel_depth": depth, "logits": logits},
                            batch)) == {"logits", "joints2d", "rel_depth"}


def test_masked_samples_give_zero_pose_and_gesture_gradient():
    model = build(config()).eval()  # eval: BatchNorm statistics do not couple the samples
    batch = batch_of()
    batch["label"] = torch.tensor([2, -1])
    batch["pose_valid"][1] = False
    batch["rgb"].requires_grad_()
    losses = model.losses(model(batch), batch)
    losses["total"].backward()
    grad = batch["rgb"].grad
    assert grad[0].abs().sum() > 0 and torch.all(grad[1] == 0)
    assert set(losses) == {"pose_2d", "pose_3d", "cls", "total"}


def test_loss_weights_are_the_papers_and_each_term_is_masked_alone():
    model = build(config()).eval()
    batch = batch_of()
    batch["label"][:] = -1
    losses = model.losses(model(batch), batch)
    assert losses["cls"] == 0 and losses["pose_2d"] > 0
    batch = batch_of()
    batch["pose_valid"][:] = False
    losses = model.losses(model(batch), batch)
    assert losses["pose_2d"] == 0 and losses["pose_3d"] == 0 and losses["cls"] > 0
    unweighted = build(config(loss_cls=1.0)).eval()
    unweighted.load_state_dict(model.state_dict())
    assert unweighted.losses(unweighted(batch), batch)["cls"].item() == pytest.approx(
        1000 * losses["cls"].item(), rel=1e-5)


def test_iterations_change_the_graph():
    one, two, three = (build(config(iterations=k)) for k in (1, 2, 3))
    sizes = [sum(p.numel() for p in m.parameters()) for m in (one, two, three)]
    assert sizes[2] - sizes[1] == sizes[1] - sizes[0] > 0  # one pose + gesture step each
    assert not hasattr(one.heads["gesture"], "gesture_to_pose") or \
        len(one.heads["gesture"].gesture_to_pose) == 0
    outputs = three.eval()(batch_of())
    assert len(outputs["collab_iterations"]) == 3
    # the later iterations read the earlier ones: changing the first gesture step changes the
    # final heatmaps
    before = outputs["heatmaps"]
    with torch.no_grad():
        three.heads["gesture"].gesture_to_pose[0].weight.add_(0.5)
    assert not torch.allclose(three(batch_of())["heatmaps"], before)


@pytest.mark.parametrize("head", [{"multi_scale": False, "orders": [0], "iterations": 1},
                                  {"orders": [0, 2], "slow_fast": "fast"}])
def test_ablation_switches_build_and_train(head):
    model = build(config(**head))
    batch = batch_of()
    outputs = model(batch)
    assert outputs["logits"].shape == (2, 5)
    model.losses(outputs, batch)["total"].backward()


def test_bad_switches_name_the_value():
    with pytest.raises((ConfigError, ValueError), match="orders"):
        build(config(orders=[1, 2]))
    with pytest.raises(ValueError, match="heatmap_stride"):
        build(config(feature="stem", heatmap_stride=8))
