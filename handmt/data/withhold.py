"""Partial labels: hide the gesture class, the pose or the hand mask of most videos of a dataset.

Weak supervision is nothing but `label == -1`, `pose_valid == False` and `mask_valid == False` on
the videos whose labels are withheld (docs/design.md "Data contract"; collaborative paper, section
3.4, the weakly-supervised learning strategy). `withhold` edits a dataset's per-video `labels`,
`pose_available` and `mask_available` arrays.
"""

import copy
from typing import Literal

import numpy as np

TASKS = ("gesture", "pose", "mask")
AVAILABLE = {"pose": "pose_available", "mask": "mask_available"}  # per-video flags


def withhold(dataset, task: Literal["gesture", "pose", "mask"], keep_fraction: float,
             seed: int = 0):
    """A shallow copy of `dataset` that keeps the `task` labels of `keep_fraction` of the videos.

    task "gesture" sets `labels` to -1, task "pose" (or "mask") sets `pose_available` (or
    `mask_available`) to False, on all but round(keep_fraction * n) of the n labelled videos,
    spread over the gesture classes as evenly as possible: each class keeps the floor of its
    share (at least one video when keep_fraction > 0) and the classes with the largest remainders
    one more (ties drawn at random), so that 15, 25 and 40 % differ even with 6 videos per class.
    The videos are chosen at random with `seed`. Videos already without that label stay without
    it. `dataset` itself is not modified.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if not 0.0 <= keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in [0, 1], got {keep_fraction!r}")
    labels = np.asarray(dataset.labels)
    available = labels >= 0 if task == "gesture" else np.asarray(getattr(dataset,
                                                                         AVAILABLE[task]))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels[available])  # sorted: the draws do not depend on video order
    members = [np.flatnonzero((labels == label) & available) for label in classes]
    shares = keep_fraction * np.array([len(m) for m in members], dtype=np.float64)
    counts = np.floor(shares).astype(int)
    if keep_fraction > 0:
        counts = np.maximum(counts, 1)
    extra = max(0, round(keep_fraction * available.sum()) - counts.sum())
    # largest remainders first, ties in random order
    order = np.lexsort((rng.random(len(classes)), -(shares - np.floor(shares))))
    counts[order[:extra]] += 1
    keep = np.zeros(len(labels), dtype=bool)
    for index, count in zip(members, np.minimum(counts, [len(m) for m in members]), strict=True):
        keep[rng.permutation(index)[:count]] = True

    result = copy.copy(dataset)
    if task == "gesture":
        result.labels = np.where(keep, labels, -1).astype(np.int64)
    else:
        setattr(result, AVAILABLE[task], keep)
    return result
