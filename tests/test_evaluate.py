"""Multi-view evaluation: softmax probabilities averaged over each video's views."""

import numpy as np
import torch
from torch import nn

from handmt.engine.evaluate import evaluate


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
    def forward(self, batch):
        return {"logits": batch["scores"]}


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
