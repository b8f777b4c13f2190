"""Labels as users have them: a `data.labels` CSV that overrides the gesture and pose labels of
any dataset's videos, and the one-line count of what is labelled (docs/design.md, "Data
contract": an unknown gesture is -1, a video without pose has `pose_valid` false)."""

import copy
import csv

import numpy as np

COLUMNS = ["video", "gesture", "pose"]
TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")


def read_labels(path):
    """{video name: (gesture class or -1, pose labelled)} of a CSV with the header
    `video,gesture,pose`; a blank gesture is unknown (-1), a blank pose unknown (no pose), pose
    otherwise 1/0 (true/false). Errors name the file and line."""
    table = {}
    with open(path, newline="") as file:
        rows = csv.reader(file)
        header = [field.strip() for field in next(rows, [])]
        if header != COLUMNS:
            raise ValueError(f"{path}:1: expected the header {','.join(COLUMNS)}, got "
                             f"{','.join(header)!r}")
        for number, row in enumerate(rows, 2):
            if not any(field.strip() for field in row):
                continue
            if len(row) != 3:
                raise ValueError(f"{path}:{number}: expected 3 fields (video,gesture,pose), got "
                                 f"{len(row)}")
            video, gesture, pose = (field.strip() for field in row)
            if not gesture.isdigit() and gesture not in ("", "-1"):
                raise ValueError(f"{path}:{number}: gesture {gesture!r} is not a class number, "
                                 "blank or -1 (unknown)")
            if pose.lower() not in (*TRUE, *FALSE, ""):
                raise ValueError(f"{path}:{number}: pose {pose!r} is not 1/0, true/false or "
                                 "blank (unknown)")
            if video in table:
                raise ValueError(f"{path}:{number}: video {video!r} is listed twice")
            table[video] = (int(gesture) if gesture not in ("", "-1") else -1,
                            pose.lower() in TRUE)
    return table


def apply_labels(dataset, path):
    """A shallow copy of `dataset` whose videos listed in the CSV at `path` (by the name the
    dataset lists them under, e.g. FPHA's `Subject_1/open_juice_bottle/2`) take its labels;
    the others keep theirs. A CSV that can only remove pose: a video without pose stays without.
    """
    table = read_labels(path)
    labels = np.array(dataset.labels)
    pose = np.array(dataset.pose_available)
    for index, video in enumerate(dataset.videos):
        if video.name in table:
            gesture, has_pose = table[video.name]
            if gesture >= dataset.num_classes:
                raise ValueError(f"{path}: gesture {gesture} of {video.name!r} is not below the "
                                 f"dataset's {dataset.num_classes} classes")
            labels[index] = gesture
            pose[index] &= has_pose
    result = copy.copy(dataset)
    result.labels, result.pose_available = labels, pose
    return result


def label_counts(dataset):
    """'N videos: G with a gesture label, P with pose' of a dataset's per-video `labels` and
    `pose_available`: the line the trainer prints for each set it uses."""
    return (f"{len(dataset.labels)} videos: {int((np.asarray(dataset.labels) >= 0).sum())} with a "
            f"gesture label, {int(np.asarray(dataset.pose_available).sum())} with pose")
