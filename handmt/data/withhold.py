"""Partial labels: hide the gesture class or the pose of most videos of a dataset.

Weak supervision is nothing but `label == -1` and `pose_valid == False` on the videos whose
labels are withheld (DESIGN.md "Data contract"; collaborative paper, section 3.4, the
weakly-supervised learning strategy). `withhold` edits a dataset's per-video `labels` and
`pose_available` arrays.
"""

import copy

import numpy as np

TASKS = ("gesture", "pose")


def withhold(dataset, task, keep_fraction, seed=0):
    """A shallow copy of `dataset` that keeps the `task` labels of `keep_fraction` of the videos.

    task "gesture" sets `labels` to -1, task "pose" sets `pose_available` to False, on all but
    round(keep_fraction * n) of the n labelled videos of each gesture class (at least one per
    class when keep_fraction > 0), chosen at random with `seed`. Videos already without that
    label stay without it. `dataset` itself is not modified.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if not 0.0 <= keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in [0, 1], got {keep_fraction!r}")
    labels = np.asarray(dataset.labels)
    available = labels >= 0 if task == "gesture" else np.asarray(dataset.pose_available)
    keep = np.zeros(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):  # sorted: the draws do not depend on video order
        members = np.flatnonzero((labels == label) & available)
        if len(members) == 0:
            continue
        count = round(keep_fraction * len(members))
        if keep_fraction > 0:
            count = max(1, count)
        keep[rng.permutation(members)[:count]] = True

    result = copy.copy(dataset)
    if task == "gesture":
        result.labels = np.where(keep, labels, -1).astype(np.int64)
    else:
        result.pose_available = keep
    return result
