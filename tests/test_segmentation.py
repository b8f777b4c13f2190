"""Hand segmentation: the head, its BCE + Dice loss masked by label availability, mask IoU and F1,
their evaluation, the FPHA loader's `mask_valid` and the overlay of `handmt predict`."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from handmt.data import FPHADataset, withhold
from handmt.engine.evaluate import evaluate
from handmt.errors import ConfigError
from handmt.losses import mask_losses, soft_dice_loss
from handmt.metrics import f1, iou, iou_f1, mask_counts
from handmt.models import HEADS, Prediction, build
from handmt.models.backbones import FeatureSpec
from handmt.viz import draw_mask
from tests.fixtures import build_with_warnings, write_mini_fpha

T, SIZE = 2, 32
SEGMENTATION = {"name": "segmentation", "feature": "res2", "channels": 8}


def model_config(temporal="none", **heads):
    return {"model": {
        "backbone": {"name": "resnet_tsn", "arch": "resnet18", "temporal": temporal,
                     "last_stage": "res3"},
        "heads": {"segmentation": SEGMENTATION, **heads}}}


def batch_of(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, T, 1, SIZE, SIZE)
    mask[..., 8:20, 10:24] = 1
    return {"rgb": torch.randn(b, T, 3, SIZE, SIZE, generator=g), "mask": mask,
            "mask_valid": torch.ones(b, T, dtype=torch.bool), "label": torch.arange(b)}


# -- loss ------------------------------------------------------------------------------------

def test_loss_of_zero_logits_by_hand():
    # sigmoid(0) = 1/2 everywhere: BCE = ln 2 per pixel whatever the target; Dice on a frame of
    # 16 pixels with 4 in the mask: 1 - (2 * 4 * 0.5 + 1) / (16 * 0.5 + 4 + 1) = 1 - 5/13.
    target = torch.zeros(1, 1, 1, 4, 4)
    target[..., :2, :2] = 1
    bce, dice = mask_losses(torch.zeros(1, 1, 1, 4, 4), target, torch.ones(1, 1, dtype=torch.bool))
    assert bce.item() == pytest.approx(math.log(2))
    assert dice.item() == pytest.approx(1 - 5 / 13)


def test_confident_right_logits_cost_nothing_and_empty_masks_are_perfect():
    target = torch.zeros(1, 2, 1, 4, 4)
    target[0, 0, :, 1:3, 1:3] = 1  # frame 1 has no hand: Dice's smoothing makes it perfect
    logits = (2 * target - 1) * 30
    bce, dice = mask_losses(logits, target, torch.ones(1, 2, dtype=torch.bool))
    assert bce.item() < 1e-10 and dice.item() < 1e-10
    assert soft_dice_loss(-30 * torch.ones(1, 4, 4), torch.zeros(1, 4, 4)).item() < 1e-10


def test_frames_without_a_mask_add_no_loss_and_no_gradient():
    g = torch.Generator().manual_seed(0)
    target = (torch.rand(2, 3, 1, 4, 4, generator=g) > 0.5).float()
    logits = torch.randn(2, 3, 1, 4, 4, generator=g, requires_grad=True)
    valid = torch.tensor([[True, False, True], [False, False, True]])
    garbage = target.clone()
    garbage[~valid] = 1 - garbage[~valid]  # the unlabelled frames' targets change ...
    bce, dice = mask_losses(logits, target, valid)
    bce_g, dice_g = mask_losses(logits, garbage, valid)
    assert bce == bce_g and dice == dice_g  # ... and nothing else does
    # the mean is over the three labelled frames
    frame_bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert bce.item() == pytest.approx(frame_bce[valid].mean().item())
    (bce + dice).backward()
    assert logits.grad[~valid].abs().max() == 0 and logits.grad[valid].abs().max() > 0
    none = torch.zeros(2, 3, dtype=torch.bool)
    assert [x.item() for x in mask_losses(logits, target, none)] == [0.0, 0.0]


# -- head --------------------------------------------------------------------------------------

@pytest.mark.parametrize("temporal", ["none", "tsm", "action"])
def test_head_gives_input_size_logits_and_trains_the_backbone(temporal):
    torch.manual_seed(0)
    model = build(model_config(temporal))
    batch = batch_of()
    outputs = model(batch)
    assert outputs["mask_logits"].shape == (2, T, 1, SIZE, SIZE)
    losses = model.losses(outputs, batch)
    assert set(losses) == {"mask_bce", "mask_dice", "total"}
    losses["total"].backward()
    assert model.backbone.net.conv1.weight.grad.abs().max() > 0
    assert not model.heads["segmentation"].auxiliary  # deploy() keeps it
    assert "segmentation" in model.deploy().heads


def test_head_beside_the_collaborative_head_in_one_model():
    torch.manual_seed(0)
    collab = {"name": "collab", "num_classes": 5, "joint_channels": 4, "tcn_hidden": 16,
              "loss_2d": 0.0, "loss_3d": 0.0}  # batch_of has no pose: its losses are off
    model = build(model_config(gesture=collab))
    batch = batch_of()
    batch["pose_valid"] = torch.zeros(2, T, dtype=torch.bool)
    batch.update(joints2d=torch.zeros(2, T, 21, 2), joints3d=torch.ones(2, T, 21, 3),
                 K=torch.eye(3).expand(2, 3, 3))
    outputs = model(batch)
    assert outputs["mask_logits"].shape == (2, T, 1, SIZE, SIZE)
    assert outputs["logits"].shape == (2, 5)
    losses = model.losses(outputs, batch)
    assert {"mask_bce", "mask_dice", "cls"} <= set(losses)
    losses["mask_dice"].backward()
    seg_head = model.heads["segmentation"].decoder[0].weight
    assert seg_head.grad.abs().max() > 0


def test_head_learns_a_mask_it_can_see():
    # the mask is where the frame is bright. A constant guess scores IoU 0 (the hand covers 16 %
    # of the frame: below 1/2 everywhere) or 0.16 (all hand); 30 steps must do far better.
    torch.manual_seed(0)
    model = build(model_config())
    batch = batch_of()
    batch["rgb"] = batch["rgb"] * 0.1 + 3 * batch["mask"]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        optimizer.zero_grad()
        model.losses(model(batch), batch)["total"].backward()
        optimizer.step()
    probs = model.eval()(batch)["mask_logits"].sigmoid()
    assert iou(probs, batch["mask"]) > 0.6


def test_head_errors_name_the_problem():
    with pytest.raises(ConfigError, match="model.heads.segmentation.feature.*per-frame"):
        HEADS.build(SEGMENTATION, "model.heads.segmentation",
                    feature_info={"res2": FeatureSpec(64, 4, "b c t h w")})
    with pytest.raises(ConfigError, match="no feature 'res9'"):
        HEADS.build({**SEGMENTATION, "feature": "res9"}, "model.heads.segmentation",
                    feature_info={"res2": FeatureSpec(64, 4, "b t c h w")})
    model = build(model_config())
    batch = batch_of()
    outputs = model(batch)
    del batch["mask_valid"]
    with pytest.raises(KeyError, match="mask_valid.*add mask to data.modalities"):
        model.losses(outputs, batch)
    odd = batch_of()
    odd["rgb"], odd["mask"] = odd["rgb"][..., :30, :30], odd["mask"][..., :30, :30]
    with pytest.raises(ValueError, match=r"multiple of the segmentation feature's stride \(4\)"):
        model.losses(model(odd), odd)


# -- metrics -----------------------------------------------------------------------------------

def test_counts_iou_and_f1_by_hand():
    pred = torch.tensor([[0.9, 0.8, 0.2], [0.6, 0.1, 0.0]])
    target = torch.tensor([[1, 0, 1], [1, 0, 0]])
    # TP: (0,0), (1,0); FP: (0,1); FN: (0,2)
    assert mask_counts(pred, target).tolist() == [2, 1, 1]
    assert iou(pred, target) == pytest.approx(2 / 4)
    assert f1(pred, target) == pytest.approx(4 / 6)
    assert mask_counts(pred, target, threshold=0.15).tolist() == [3, 1, 0]
    # the two agree as they must: F1 = 2 IoU / (1 + IoU)
    score_iou, score_f1 = iou_f1(torch.tensor([7, 3, 5]))
    assert score_f1 == pytest.approx(2 * score_iou / (1 + score_iou))
    assert iou_f1(torch.zeros(3)) == (1.0, 1.0)


# -- evaluation on FPHA-layout data ------------------------------------------------------------

@pytest.fixture(scope="module")
def mini_root(tmp_path_factory):
    return write_mini_fpha(tmp_path_factory.mktemp("fpha"))


def test_loader_marks_mask_frames_valid_and_withhold_hides_them(mini_root):
    dataset, _ = build_with_warnings(FPHADataset, mini_root, split="train", size=SIZE,
                                     num_frames=3, modalities=("rgb", "mask"))
    item = dataset[0]
    assert item["mask"].shape == (3, 1, SIZE, SIZE) and item["mask"].max() == 1
    assert item["mask_valid"].dtype == torch.bool and item["mask_valid"].all()
    hidden = withhold(dataset, "mask", 0.0)
    assert not any(hidden[i]["mask_valid"].any() for i in range(len(hidden)))
    assert dataset.mask_available.all()  # the original is untouched
    without, _ = build_with_warnings(FPHADataset, mini_root, split="train", size=SIZE,
                                     num_frames=3, modalities=("rgb",))
    assert "mask_valid" not in without[0]


class MaskOracle(nn.Module):
    """Segmentation alone: predicts the true mask, or its complement."""

    def __init__(self, inverted=False):
        super().__init__()
        self.inverted = inverted

    def predict(self, batch):
        mask = batch["mask"][:, :, 0]
        return Prediction(mask=1 - mask if self.inverted else mask)


def test_evaluation_scores_masks_of_labelled_frames_and_needs_no_logits(mini_root):
    test_set, _ = build_with_warnings(FPHADataset, mini_root, split="test", size=SIZE,
                                      num_frames=3, modalities=("rgb", "mask"), clips=2)
    metrics = evaluate(MaskOracle(), test_set, batch_size=3, progress=False)
    assert "top1" not in metrics and metrics["videos"] == 2
    assert metrics["segmentation"] == {"iou": 1.0, "f1": 1.0, "frames": 2 * 2 * 3}
    wrong = evaluate(MaskOracle(inverted=True), test_set, progress=False)["segmentation"]
    assert wrong["iou"] == 0.0 and wrong["f1"] == 0.0
    test_set.mask_available[:] = False  # no labelled frame: nothing to score, no error
    assert evaluate(MaskOracle(), test_set, progress=False)["segmentation"]["frames"] == 0


def test_draw_mask_blends_the_mask_pixels_only():
    image = np.full((2, 3, 3), 100, np.uint8)
    mask = np.array([[True, False, False], [False, False, True]])
    drawn = draw_mask(image, mask, color=(255, 0, 255), alpha=0.5)
    assert drawn[0, 0].tolist() == drawn[1, 2].tolist() == [178, 50, 178]  # rint(177.5) = 178
    assert (drawn[~mask] == 100).all() and (image == 100).all()  # a copy
