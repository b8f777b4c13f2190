"""Gesture classification metrics: top-1, confusion matrix, multi-view video accuracy.

docs/design.md, "Metrics": accuracy is top-1 over videos, after averaging softmax probabilities over
the clips and crops of each video (the multi-view test protocol). Samples labelled -1 (gesture
class unknown, docs/design.md "Data contract") are ignored. Inputs are torch tensors or numpy
arrays.
"""

import numpy as np
import torch


def top1(scores, labels):
    """Fraction of labelled samples whose highest score is their label.

    scores: (N, C) logits or probabilities; labels: (N,) with -1 for unlabelled samples.
    """
    scores = torch.as_tensor(scores).detach()
    labels = torch.as_tensor(labels, device=scores.device).detach()
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f"scores {tuple(scores.shape)} must be (N, C) and labels "
                         f"{tuple(labels.shape)} (N,)")
    labelled = labels >= 0
    if not labelled.any():
        raise ValueError(f"no labelled sample among {len(labels)}: every label is -1")
    hits = scores[labelled].argmax(dim=1) == labels[labelled]
    return hits.double().mean().item()


def confusion_matrix(pred, labels, num_classes):
    """(C, C) int64 counts: row = true class, column = predicted class; labels -1 are ignored."""
    pred = torch.as_tensor(pred).detach().cpu().long()
    labels = torch.as_tensor(labels).detach().cpu().long()
    if pred.shape != labels.shape or pred.dim() != 1:
        raise ValueError(f"pred {tuple(pred.shape)} and labels {tuple(labels.shape)} must be (N,)")
    labelled = labels >= 0
    pred, labels = pred[labelled], labels[labelled]
    out_of_range = (pred < 0) | (pred >= num_classes) | (labels >= num_classes)
    if out_of_range.any():
        raise ValueError(f"class indices must lie in [0, {num_classes}); got pred "
                         f"{pred[out_of_range].tolist()} / labels {labels[out_of_range].tolist()}")
    counts = torch.bincount(labels * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).numpy()


def video_scores(probs, video_ids):
    """Average the probabilities (N, C) of all views of each video.

    Returns (videos, mean_probs): the sorted unique video ids (V,) and their averaged
    probabilities (V, C), both numpy arrays.
    """
    probs = torch.as_tensor(probs).detach().double()
    video_ids = torch.as_tensor(video_ids, device=probs.device).detach()
    if probs.dim() != 2 or video_ids.shape != probs.shape[:1]:
        raise ValueError(f"probs {tuple(probs.shape)} must be (N, C) and video_ids "
                         f"{tuple(video_ids.shape)} (N,)")
    videos, view_to_video, views = torch.unique(video_ids, return_inverse=True, return_counts=True)
    sums = probs.new_zeros(len(videos), probs.shape[1]).index_add_(0, view_to_video, probs)
    return videos.cpu().numpy(), (sums / views[:, None]).cpu().numpy()


def video_predictions(logits, labels, video_ids):
    """Per-video view-averaged softmax probabilities and labels.

    logits: (N, C) one row per view (clip x crop); labels: (N,) the label of each view's video
    (-1 = unknown); video_ids: (N,). Views of one video must share their label. Returns
    (videos (V,), mean_probs (V, C), video_labels (V,)) as numpy arrays.
    """
    logits = torch.as_tensor(logits).detach()
    labels = torch.as_tensor(labels).detach().cpu().numpy()
    videos, mean_probs = video_scores(logits.softmax(dim=1), video_ids)
    view_to_video = np.searchsorted(videos, torch.as_tensor(video_ids).cpu().numpy())
    video_labels = np.full(len(videos), -1, dtype=np.int64)
    video_labels[view_to_video] = labels  # the last view of each video writes its label
    disagree = np.flatnonzero(video_labels[view_to_video] != labels)
    if len(disagree):
        video = view_to_video[disagree[0]]
        raise ValueError(f"views of video {videos[video]} carry different labels "
                         f"{sorted(set(labels[view_to_video == video].tolist()))}")
    return videos, mean_probs, video_labels


def video_accuracy(logits, labels, video_ids):
    """Top-1 over videos of the view-averaged softmax probabilities (docs/design.md, "Metrics")."""
    _, mean_probs, video_labels = video_predictions(logits, labels, video_ids)
    return top1(mean_probs, video_labels)
