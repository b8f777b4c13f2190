"""Semi-supervised training on the unlabelled videos (`train.semi`): FixMatch (Sohn et al.,
NeurIPS 2020) for gestures. The model's prediction on a weakly augmented clip (the training
view) becomes the pseudo-label of a strongly augmented view of the same video when its
confidence reaches `threshold`; the cross-entropy of the strong view against it is added with
`weight` from `start_epoch` on. Every epoch goes over every training video once, labelled or not:
the unlabelled ones (label -1) in each batch give this term, normalised by their count."""

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..data.factory import training_transform


@dataclass
class SemiOptions:
    """The `train.semi` section."""
    weight: float = 1.0  # lambda_u of FixMatch
    threshold: float = 0.95  # confidence a pseudo-label needs
    start_epoch: int = 0  # epochs of supervised training first
    augment: dict = field(default_factory=dict)  # the strong view: a data.augment mapping


class PairedViews(Dataset):
    """Items of `dataset` (the weak, training view) with `strong`: the same video drawn again
    through `dataset` with the strong transform."""

    def __init__(self, dataset, strong_transform):
        self.dataset = dataset
        self.strong = copy.copy(dataset)
        self.strong.transform = strong_transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return {**self.dataset[index], "strong": self.strong[index]}

    def __getattr__(self, name):  # labels, num_classes, videos ... of the wrapped dataset
        if name in ("dataset", "strong"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def paired_views(dataset, data, options):
    """`dataset` with strong views for `train.semi` (a SemiOptions)."""
    return PairedViews(dataset, training_transform(data, options.augment))


def fixmatch_loss(model, batch, options):
    """weight * mean over the unlabelled clips of the batch of 1[max p_weak >= threshold] *
    CE(strong logits, argmax p_weak) (FixMatch eq. 4); zero without unlabelled clips. Both views
    run through `model` as it trains (FixMatch: train mode, no grad for the weak one)."""
    unlabelled = batch["label"] < 0
    if not unlabelled.any():
        return batch["label"].new_zeros((), dtype=torch.float32)
    weak = {k: v[unlabelled] for k, v in batch.items() if k != "strong"}
    strong = {k: v[unlabelled] for k, v in batch["strong"].items()}
    # The weak view runs a second time (the training forward saw it): raw outputs are the
    # model's own, only `predict` turns them into logits (docs/design.md, Model contract).
    with torch.no_grad():
        confidence, pseudo = model.predict(weak).logits.float().softmax(-1).max(-1)
    logits = model.predict(strong).logits.float()
    kept = (confidence >= options.threshold).float()
    return options.weight * (F.cross_entropy(logits, pseudo, reduction="none") * kept).mean()
