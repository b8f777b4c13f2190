"""EgoGesture read as distributed: 83 egocentric hand gestures, RGB-D, 50 subjects, 6 scenes.

Zhang, Cao, Cheng, Lu, "EgoGesture: A New Dataset and Benchmark for Egocentric Hand Gesture
Recognition", IEEE Transactions on Multimedia 20(5), 2018.

Layout (frames numbered from 1; an `images_320-240/` or `images/` folder above the subjects is
found by itself):
  Subject01/Scene1/Color/rgb1/000001.jpg        colour frames of recording (group) 1
  Subject01/Scene1/Depth/depth1/000001.jpg      8-bit depth frames of the same recording
  labels-final-revised1/subject01/Scene1/Group1.csv
Each recording is continuous; its CSV holds one row `label,start_frame,end_frame` per gesture
(no header; labels 1..83, frames inclusive, both 1-based), and each row is one sample: its frames
start..end of the recording. Subject folders are matched without regard to case.

Splits are by subject, the paper's: SUBJECTS below (`subjects` overrides the split's list).
Everything else (sampling, crops, depth scaling, defects) is video.GestureDataset's and
base.ClipDataset's.
"""

import re
from typing import Literal

from .base import Listed, annotation_lines, gesture_label, register_dataset
from .frames import FrameSource
from .video import GestureDataset

__all__ = ["SUBJECTS", "EgoGestureDataset", "read_labels"]

NUM_CLASSES = 83
LABEL_FOLDER = "labels-final-revised1"
IMAGE_FOLDERS = ("images_320-240", "images")  # else the subjects sit in the root
FRAME_PATTERN = "{:06d}.jpg"
# The subject-independent split of the EgoGesture paper (section IV-A): 30 training, 10
# validation and 10 test subjects.
SUBJECTS = {
    "train": (3, 4, 5, 6, 8, 10, 15, 16, 17, 20, 21, 22, 23, 25, 26, 27, 30, 32, 36, 38, 39, 40,
              42, 43, 44, 45, 46, 48, 49, 50),
    "val": (1, 7, 12, 13, 24, 29, 33, 34, 35, 37),
    "test": (2, 9, 11, 14, 18, 19, 28, 31, 41, 47),
}


def read_labels(path):
    """A recording's label CSV -> [(label 0-based, start, end, line number), ...], frames 1-based
    and inclusive as in the file. CRLF line endings, blank lines and trailing empty fields are
    tolerated; anything else malformed raises a ValueError naming the file and line."""
    rows = []
    for line_number, line in annotation_lines(path):
        fields = [field.strip() for field in line.strip().split(",")]
        while fields and not fields[-1]:
            fields.pop()
        if not fields:
            continue
        where = f"{path}:{line_number}"
        if len(fields) != 3 or not all(field.lstrip("-").isdigit() for field in fields):
            raise ValueError(f"{where}: expected 'label,start_frame,end_frame' (three "
                             f"integers), got {line.strip()!r}")
        label = gesture_label(fields[0], where, num_classes=NUM_CLASSES)
        start, end = int(fields[1]), int(fields[2])
        if not 1 <= start <= end:
            raise ValueError(f"{where}: expected 1 <= start_frame <= end_frame, got "
                             f"{start}, {end}")
        rows.append((label, start, end, line_number))
    return rows


def numbered(folder, prefix, suffix=""):
    """{number: path} of the entries `<prefix><number><suffix>` of `folder` (any case)."""
    pattern = re.compile(rf"{prefix}(\d+){re.escape(suffix)}", re.IGNORECASE)
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = pattern.fullmatch(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


@register_dataset("egogesture")
class EgoGestureDataset(GestureDataset):
    """EgoGesture gestures as the data contract's dicts (module docstring; video.py)."""

    NUM_CLASSES = NUM_CLASSES

    def __init__(self, root: str, split: Literal["train", "val", "test"] = "train",
                 num_frames: int = 8, size: int = 224,
                 modalities: list[str] | tuple[str, ...] = ("rgb", "depth"),
                 sampling: Literal["segments", "dense", "padded"] = "segments",
                 strict: bool = False,
                 transform=None, clips: int = 1, crops: int = 1,
                 subjects: list[int] | tuple[int, ...] | None = None, dense_stride: int = 1,
                 cache_dir: str | None = None):
        if split in SUBJECTS:
            self.subjects = tuple(sorted(SUBJECTS[split] if subjects is None else subjects))
        super().__init__(root, split, num_frames, size, modalities, sampling, strict, transform,
                         clips, crops, dense_stride, cache_dir)

    def list_samples(self):
        label_root = self.root / LABEL_FOLDER
        if not label_root.is_dir():
            raise ValueError(f"{label_root}: no such folder (EgoGesture's label CSVs)")
        image_root = next((self.root / name for name in IMAGE_FOLDERS
                           if (self.root / name).is_dir()), self.root)
        label_subjects = numbered(label_root, "subject")
        image_subjects = numbered(image_root, "subject")
        files, listed = [], []
        for subject in self.subjects:
            name = f"Subject{subject:02d}"
            label_folder = label_subjects.get(subject, label_root / name.lower())
            image_folder = image_subjects.get(subject, image_root / name)
            scenes = numbered(label_folder, "scene")
            if not scenes:  # listed with the defects
                listed.append(Listed(f"{label_folder}: no Scene*/Group*.csv of subject "
                                     f"{subject} (`subjects` chooses others)", -1, None))
            for scene, scene_folder in sorted(scenes.items()):
                image_scene = numbered(image_folder, "scene").get(scene,
                                                                  image_folder / f"Scene{scene}")
                for group, path in sorted(numbered(scene_folder, "group", ".csv").items()):
                    files.append(path)
                    folders = {"rgb": image_scene / "Color" / f"rgb{group}",
                               "depth": image_scene / "Depth" / f"depth{group}"}
                    for label, start, end, line_number in read_labels(path):
                        sources = {m: FrameSource(folders[m], start, FRAME_PATTERN,
                                                  end - start + 1) for m in self.streams}
                        listed.append(Listed(f"{path.relative_to(self.root)}:{line_number}",
                                             label, sources))
        return str(label_root), files, listed

    def cache_key(self):
        return {**super().cache_key(), "subjects": list(self.subjects)}
