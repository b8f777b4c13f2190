"""Multi-view evaluation of a model's predictions: softmax probabilities averaged over each
video's views."""

import numpy as np
import pytest
import torch
from torch import nn

from handmt.engine.evaluate import evaluate
from handmt.models import Prediction


class Views(torch.utils.data.Dataset):
    """Views whose logits are given; interleaved so that a video's views are not contiguous."""

    def __init__(self, logits, videos, labels):
        self.logits, self.videos, self.labels = logits, videos, labels

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return {"scores": torch.tensor(self.logits[i]), "video": torch.tensor(self.videos[i]),
                "label": torch.tensor(self.labels[i])}


class Replay(nn.Module):
    """Predicts the logits the batch gives (evaluation reads `predict` alone)."""

    def predict(self, batch):
        return Prediction(logits=batch["scores"])


def test_accuracy_averages_probabilities_not_logits_or_votes():
    # Video 0 (label 1): views [10, 0], [0, 2], [0, 2]. Probabilities of class 0:
    # 1/(1+e^-10) = 0.99995 and 1/(1+e^2) = 0.1192 twice -> mean 0.4128 < 0.5 -> class 1, right.
    # Averaging logits would give [3.33, 1.33] -> class 0, wrong.
    # Video 1 (label 0): one view [0, 1] -> class 1, wrong. Top-1 = 1/2.
    logits = [[10.0, 0.0], [0.0, 2.0], [0.0, 1.0], [0.0, 2.0]]
    videos = [0, 0, 1, 0]
    labels = [1, 1, 0, 1]
    metrics = evaluate(Replay(), Views(logits, videos, labels), batch_size=3, progress=False)
    assert metrics["top1"] == 0.5
    assert metrics["videos"] == 2
    np.testing.assert_array_equal(metrics["confusion"], [[0, 1], [0, 1]])


def test_unlabelled_videos_are_left_out_of_accuracy():
    logits = [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    metrics = evaluate(Replay(), Views(logits, [0, 1, 2], [0, 1, -1]), progress=False)
    assert metrics["top1"] == 1.0 and metrics["confusion"].sum() == 2


class PoseViews(torch.utils.data.Dataset):
    """One frame per view; PoseReplay predicts the true joints moved by `offsets` mm."""

    def __init__(self, offsets, valid):
        self.offsets, self.valid = offsets, valid

    def __len__(self):
        return len(self.offsets)

    def __getitem__(self, i):
        joints = torch.zeros(1, 21, 3)
        joints[..., 2] = 400.0
        return {"scores": torch.zeros(2), "video": torch.tensor(i), "label": torch.tensor(0),
                "joints3d": joints, "offset": torch.tensor(self.offsets[i]),
                "pose_valid": torch.tensor([self.valid[i]])}


class PoseReplay(nn.Module):
    """Predicts the true joints moved by the batch's offsets."""

    def predict(self, batch):
        shifted = batch["joints3d"].clone()
        shifted[..., 0] += batch["offset"][:, None, None]
        return Prediction(logits=batch["scores"], joints3d=shifted)


def test_pose_metrics_pool_the_labelled_frames():
    # errors 10, 22 and 40 mm on labelled frames; the 5 mm frame has no pose label.
    metrics = evaluate(PoseReplay(), PoseViews([10.0, 22.0, 40.0, 5.0], [True, True, True, False]),
                       batch_size=3, progress=False)
    pose = metrics["pose"]
    assert pose["frames"] == 3
    assert [pose[f"pck@{t}"] for t in (20, 25, 30)] == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert pose["mpjpe"] == pytest.approx(24.0)
    # curve on 0, 2.5, ..., 50: 0 below 10, 1/3 on [10, 22), 2/3 on [22.5, 40), 1 from 40
    expected = np.trapezoid([(t >= 10) / 3 + (t >= 22.5) / 3 + (t >= 40) / 3
                             for t in np.linspace(0, 50, 21)], np.linspace(0, 50, 21)) / 50
    assert pose["auc"] == pytest.approx(expected)
    assert "pose" not in evaluate(Replay(), Views([[0.0, 1.0]], [0], [1]), progress=False)


class FusionReplay(nn.Module):
    """A two-modality prediction: fused logits and each modality's own."""

    def predict(self, batch):
        scores = batch["scores"]
        return Prediction(logits=scores, per_modality={"rgb": Prediction(logits=scores),
                                                       "depth": Prediction(logits=-scores)})


def test_per_modality_predictions_are_scored_alone_and_the_fusion_is_top1():
    metrics = evaluate(FusionReplay(), Views([[0.0, 1.0], [1.0, 0.0]], [0, 1], [1, 0]),
                       progress=False)
    assert metrics["top1"] == metrics["top1_fusion"] == metrics["top1_rgb"] == 1.0
    assert metrics["top1_depth"] == 0.0
    assert "top1_fusion" not in evaluate(Replay(), Views([[0.0, 1.0]], [0], [1]), progress=False)
