"""ChaLearn LAP IsoGD read as distributed: 249 isolated gestures, RGB-D videos.

Wan, Zhao, Zhou, Guyon, Escalera, Li, "ChaLearn Looking at People RGB-D Isolated and Continuous
Datasets for Gesture Recognition", CVPR Workshops 2016.

Layout: the root holds `train_list.txt`, `valid_list.txt` and `test_list.txt`, one sample per
line, `train/001/M_00001.avi train/001/K_00001.avi 1`: the colour video (M), the depth video
(K, 8-bit), both relative to the root, and the label 1..249 (read as 0..248). A list whose lines
all lack the label (the valid/test lists released before their labels) gives label -1. The whole
video is the gesture. Splits: "train", "val" (valid_list.txt), "test".

Everything else (sampling, crops, depth scaling, defects) is video.GestureDataset's and
base.ClipDataset's.
"""

from .base import Listed, annotation_lines, gesture_label, register_dataset
from .frames import FrameSource
from .video import GestureDataset

__all__ = ["IsoGDDataset", "read_list"]

NUM_CLASSES = 249
LIST_FILES = {"train": "train_list.txt", "val": "valid_list.txt", "test": "test_list.txt"}


def read_list(path):
    """A split list -> [(line number, colour video, depth video, label 0-based or -1)].

    CRLF line endings and blank lines are tolerated; a malformed line raises a ValueError naming
    the file and line."""
    entries, columns = [], None
    for line_number, line in annotation_lines(path):
        fields, where = line.split(), f"{path}:{line_number}"
        if len(fields) not in (2, 3) or columns not in (None, len(fields)):
            expected = {None: "2 or 3", 2: "2 (as the lines above)",
                        3: "3 (as the lines above)"}[columns]
            raise ValueError(f"{where}: expected '<M video> <K video> <label>' ({expected} "
                             f"columns), got {line.strip()!r}")
        columns = len(fields)
        label = -1
        if columns == 3:
            label = gesture_label(fields[2], where, num_classes=NUM_CLASSES)
        entries.append((line_number, fields[0], fields[1], label))
    return entries


@register_dataset("isogd")
class IsoGDDataset(GestureDataset):
    """IsoGD videos as the data contract's dicts (module docstring; video.py)."""

    NUM_CLASSES = NUM_CLASSES

    def list_samples(self):
        path = self.root / LIST_FILES[self.split]
        listed = []
        for _, colour, depth, label in read_list(path):
            videos = {"rgb": colour, "depth": depth}
            sources = {m: FrameSource(self.root / videos[m]) for m in self.streams}
            listed.append(Listed(colour, label, sources))
        return str(path), [path], listed
