"""Semi-supervised training (`train.semi`): FixMatch's loss against a hand-computed case and a run
on the real FPHA skeletons with most gesture labels withheld; the pose consistency term's
geometry (a re-crop moves a blob where its affine map says), its value for models that follow the
hand and for ones that do not, and a run of the collaborative model with pose labels withheld."""

import json
import math
from pathlib import Path

import pytest
import torch
from fixtures import tiny_overrides, write_mini_fpha

from handmt import ConfigError, load_config
from handmt.data import build_dataset
from handmt.engine.semi import (
    SemiOptions,
    fixmatch_loss,
    map_points,
    paired_views,
    pose_consistency_loss,
    recrop_affine,
    warp_clips,
)
from handmt.engine.trainer import LOG, train
from handmt.models.base import Prediction

DEV = Path(__file__).resolve().parents[2] / "shared" / "fpha-dev"


class Echo:
    """A model whose logits are the batch's `x`."""

    def predict(self, batch):
        return Prediction(logits=batch["x"])


def test_fixmatch_loss_by_hand():
    weak = torch.tensor([[9.0, 0.0], [0.0, 0.0], [0.0, 9.0], [5.0, 0.0]])
    strong = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    batch = {"x": weak, "label": torch.tensor([-1, -1, -1, 0]),
             "strong": {"x": strong, "label": torch.tensor([-1, -1, -1, 0])}}
    loss = fixmatch_loss(Echo(), batch, SemiOptions(weight=2.0, threshold=0.9))
    # unlabelled: rows 0-2; row 1 (p = 0.5) is below the threshold; pseudo-labels 0 and 1
    ce0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(2)))
    ce2 = -math.log(math.exp(1) / (1 + math.exp(1)))
    assert loss.item() == pytest.approx(2.0 * (ce0 + ce2) / 3, rel=1e-5)
    labelled = {**batch, "label": torch.zeros(4, dtype=torch.long)}
    assert fixmatch_loss(Echo(), labelled, SemiOptions()).item() == 0.0


def test_semi_options_are_checked_with_their_keys():
    with pytest.raises(ConfigError, match="train.semi.thresh: unknown argument"):
        load_config("configs/fpha_skeleton.yaml", ["train.semi={thresh: 0.9}"])
    with pytest.raises(ConfigError, match="train.semi.augment.rotate: unknown argument"):
        load_config("configs/fpha_skeleton.yaml", ["train.semi={augment: {rotate: 30}}"])


@pytest.mark.skipif(not DEV.is_dir(), reason=f"the real FPHA skeletons are not at {DEV}")
def test_a_semi_supervised_run_on_real_skeletons_logs_its_term(tmp_path):
    cfg = load_config("configs/fpha_skeleton.yaml", [
        f"data.root={DEV}", "train.epochs=2", "train.eval_every=2",
        "data.withhold=[{task: gesture, keep_fraction: 0.1, seed: 0}]",
        "train.semi={threshold: 0.0, augment: {rotation: 30.0, noise_mm: 3.0}}"])
    train(cfg, tmp_path / "run", val_set=False, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / LOG).read_text().splitlines()]
    # threshold 0: every unlabelled clip (90 % of them) gives a term
    assert all(r["train_semi"] > 0 and math.isfinite(r["train_semi"]) for r in records)


@pytest.mark.skipif(not DEV.is_dir(), reason=f"the real FPHA skeletons are not at {DEV}")
def test_the_strong_view_is_the_same_sequence_and_the_unlabelled_are_the_withheld():
    cfg = load_config("configs/fpha_skeleton.yaml", [
        f"data.root={DEV}", "data.withhold=[{task: gesture, keep_fraction: 0.1, seed: 0}]"])
    labels = build_dataset({**cfg["data"], "withhold": None}, "train").labels
    # an identity "strong" augmentation gives back the un-augmented clip of the same sequence
    identity = {"min_duration": 1.0, "rotation": 0.0, "scale": [1.0, 1.0], "noise_mm": 0.0}
    paired = paired_views(build_dataset(cfg["data"], "train"), cfg["data"],
                          SemiOptions(augment=identity))
    plain = build_dataset({**cfg["data"], "augment": None}, "train")
    withheld = paired.labels < 0
    assert withheld.sum() == len(labels) - 45  # one labelled sequence per class is kept
    assert (paired.labels[~withheld] == labels[~withheld]).all()
    for index in (0, int(withheld.argmax()), len(paired) - 1):
        item = paired[index]
        assert item["label"] == item["strong"]["label"] == paired.labels[index]
        assert torch.equal(item["strong"]["joints"], plain[index]["joints"])
        assert not torch.equal(item["joints"], plain[index]["joints"])  # the weak view: augmented


def blob_clips(centres, size):
    """Clips (n, 1, 3, size, size): one Gaussian blob (sigma 1.5 px) per clip at `centres` (n, 2),
    pixel centres at integers."""
    coords = torch.arange(size, dtype=torch.float32)
    dx = coords[None, None, :] - centres[:, 0, None, None]
    dy = coords[None, :, None] - centres[:, 1, None, None]
    blob = torch.exp(-(dx ** 2 + dy ** 2) / (2 * 1.5 ** 2))
    return blob[:, None, None].expand(-1, 1, 3, -1, -1).contiguous()


def centroid(clips):
    """Intensity centroid (n, T, 2) of channel 0 of clips (n, T, C, H, W)."""
    image = clips[:, :, 0]
    ys, xs = (torch.arange(n, dtype=torch.float32) for n in image.shape[-2:])
    mass = image.sum((-2, -1))
    return torch.stack([(image * xs).sum((-2, -1)) / mass,
                        (image * ys[:, None]).sum((-2, -1)) / mass], -1)


class BlobFollower:
    """Predicts every joint at the blob's centroid, relative depth 0: it follows the hand."""

    modalities = ["rgb"]

    def predict(self, batch):
        joints = centroid(batch["rgb"])[:, :, None].expand(-1, -1, 21, -1)
        return Prediction(joints2d=joints, rel_depth=torch.zeros(joints.shape[:-1]))


class Constant:
    """Predicts the same joints `point` and relative depths `depth` whatever it sees."""

    modalities = ["rgb"]

    def __init__(self, point, depth=0.0):
        self.point, self.depth = torch.tensor(point), depth

    def predict(self, batch):
        shape = batch["rgb"].shape[:2]
        return Prediction(joints2d=self.point.expand(*shape, 21, 2),
                          rel_depth=torch.full((*shape, 21), self.depth))


def test_a_recrop_moves_a_blob_where_its_affine_map_says():
    torch.manual_seed(0)
    size, count = 32, 12
    centres = 15.5 + torch.rand(count, 2) * 2 - 1  # inside every re-crop of 3/4 of the side
    affine = recrop_affine(count, size, (0.75, 1.0), flip=True)
    moved = centroid(warp_clips(blob_clips(centres, size), affine))[:, 0]
    expected = map_points(affine, centres[:, None])[:, 0]
    assert torch.allclose(moved, expected, atol=0.05)
    mirrored = affine[:, 0, 0] < 0  # both kinds of view were checked
    assert 0 < mirrored.sum() < count
    # the full-size, unmirrored re-crop is the identity
    identity = recrop_affine(3, size, (1.0, 1.0), flip=False)
    assert torch.allclose(identity, torch.eye(2, 3).expand(3, -1, -1))


def unlabelled_batch(count, size, labelled=0):
    centres = torch.full((count + labelled, 2), size / 2 - 0.5)
    return {"rgb": blob_clips(centres, size),
            "pose_valid": torch.tensor([[False]] * count + [[True]] * labelled)}


def test_pose_consistency_is_zero_for_a_model_that_follows_the_hand():
    torch.manual_seed(0)
    options = SemiOptions(weight=0.0, pose_weight=1.0, pose_scales=[0.75, 1.0], pose_flip=True)
    follower = pose_consistency_loss(BlobFollower(), unlabelled_batch(16, 32), options)
    still = pose_consistency_loss(Constant([20.0, 9.0]), unlabelled_batch(16, 32), options)
    assert follower.item() < 1e-5 and still.item() > 1e-3


def test_pose_consistency_by_hand_for_a_model_that_ignores_the_hand():
    """Full-size views, half of them mirrored: a constant x = size / 2 - 0.5 + d maps back to
    x - 2d on a mirrored view, so each mirrored clip adds (2d / size)^2, the others 0; a depth
    that does not move adds nothing. The 4 labelled clips count for nothing."""
    torch.manual_seed(0)
    size, count, d, weight = 8, 16, 1.0, 3.0
    options = SemiOptions(weight=0.0, pose_weight=weight, pose_scales=[1.0, 1.0], pose_flip=True)
    model = Constant([size / 2 - 0.5 + d, 2.0], depth=40.0)
    loss = pose_consistency_loss(model, unlabelled_batch(count, size, labelled=4), options)
    mirrored = loss.item() / (weight * (2 * d / size) ** 2 / count)
    assert mirrored == pytest.approx(round(mirrored), abs=1e-4) and 0 < round(mirrored) < count
    no_flip = SemiOptions(weight=0.0, pose_weight=weight, pose_scales=[1.0, 1.0], pose_flip=False)
    assert pose_consistency_loss(model, unlabelled_batch(count, size), no_flip).item() == 0.0
    labelled = unlabelled_batch(0, size, labelled=4)
    assert pose_consistency_loss(model, labelled, options).item() == 0.0


def test_the_collaborative_model_trains_with_pose_consistency_on_withheld_pose(tmp_path):
    root = write_mini_fpha(tmp_path / "fpha")
    cfg = load_config("configs/cpu_fpha_collab.yaml", [
        *tiny_overrides(root), "train.epochs=1",
        "data.withhold=[{task: pose, keep_fraction: 0.0, seed: 0}]",
        "train.semi={weight: 0.0, pose_weight: 1.0}"])
    train(cfg, tmp_path / "run", val_set=False, progress=False)
    [record] = [json.loads(line) for line in (tmp_path / "run" / LOG).read_text().splitlines()]
    assert record["train_pose_consistency"] > 0 and math.isfinite(record["train_pose_consistency"])
    assert "train_semi" not in record  # FixMatch off: no term, no strong views


def test_pose_consistency_needs_a_model_that_predicts_pose(tmp_path):
    root = write_mini_fpha(tmp_path / "fpha")
    cfg = load_config("configs/cpu_fpha_tsn.yaml", [
        *tiny_overrides(root), "train.epochs=1",
        "data.withhold=[{task: pose, keep_fraction: 0.0, seed: 0}]",
        "train.semi={weight: 0.0, pose_weight: 1.0}"])
    with pytest.raises(ConfigError, match="train.semi.pose_weight: the model predicts no 2D"):
        train(cfg, tmp_path / "run", val_set=False, progress=False)
