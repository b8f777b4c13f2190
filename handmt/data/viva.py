"""VIVA hand gestures (CVRR, UC San Diego): 885 intensity and depth videos of 19 in-car gestures
performed by 8 subjects, recorded with a Kinect.

Ohn-Bar, Trivedi, "Hand Gesture Recognition in Real Time for Automotive Interfaces: A Multimodal
Vision-Based Approach and Evaluations", IEEE Transactions on Intelligent Transportation Systems
15(6), 2014.

Layout. ASSUMED: no public source found states how the release names its files, so this is the
layout read here; a tree that differs fails at once with an error naming the first file that
does not fit:
  <root>/intensity/<subject>_<gesture>_<repetition>.avi   the intensity (colour) video
  <root>/depth/<subject>_<gesture>_<repetition>.avi       its 8-bit depth video, same name
with decimal numbers, subject 1..8, gesture 1..19 (read as labels 0..18), e.g. `03_17_2.avi`.
Each video is one gesture, whole. rgb reads intensity/, depth reads depth/; the folder of the
first stream asked for lists the samples, the other stream's video of the same name must exist
(else the sample is reported and skipped, or strict=True raises). Hidden files are ignored.

Protocol of MTUT (section 4.1 and implementation details): 8-fold cross-subject validation,
fold k tests on subject k + 1 and trains on the 7 others (the reported accuracy is the mean over
the folds); training clips of `num_frames` = 64 consecutive frames, shorter videos zero-padded on
both sides; testing over the whole video with predictions averaged (sampling "padded",
sampling.py; evaluation averages per video). Everything else (crops, depth scaling, flow,
defects) is video.GestureDataset's and base.ClipDataset's.
"""

import re
from typing import Literal

from .base import Listed, register_dataset
from .frames import FrameSource
from .video import GestureDataset

__all__ = ["FOLDERS", "VIVADataset", "parse_name"]

NUM_CLASSES = 19
NUM_SUBJECTS = 8
FOLDERS = {"rgb": "intensity", "depth": "depth"}
NAME = re.compile(r"(\d+)_(\d+)_(\d+)\.avi")


def parse_name(path):
    """(subject 1..8, gesture 1..19) of a video's file name; a ValueError naming the file when
    the name does not fit the layout (module docstring)."""
    match = NAME.fullmatch(path.name)
    if match is None or not (1 <= int(match[1]) <= NUM_SUBJECTS
                             and 1 <= int(match[2]) <= NUM_CLASSES):
        raise ValueError(f"{path}: expected a video named <subject>_<gesture>_<repetition>.avi "
                         f"with subject 1..{NUM_SUBJECTS} and gesture 1..{NUM_CLASSES} (the "
                         "VIVA layout of handmt/data/viva.py)")
    return int(match[1]), int(match[2])


@register_dataset("viva")
class VIVADataset(GestureDataset):
    """VIVA videos of one split of one cross-subject fold as the data contract's dicts (module
    docstring; video.py)."""

    NUM_CLASSES = NUM_CLASSES
    SPLITS = ("train", "test")

    def __init__(self, root: str, split: Literal["train", "test"] = "train", fold: int = 0,
                 num_frames: int = 64, size: int = 224,
                 modalities: list[str] | tuple[str, ...] = ("rgb", "depth"),
                 sampling: Literal["segments", "dense", "padded"] = "padded",
                 strict: bool = False, transform=None, clips: int = 1, crops: int = 1,
                 dense_stride: int = 1, cache_dir: str | None = None):
        if not 0 <= fold < NUM_SUBJECTS:
            raise ValueError(f"fold must be in 0..{NUM_SUBJECTS - 1} (fold k tests on subject "
                             f"k + 1), got {fold}")
        self.fold = fold
        super().__init__(root, split, num_frames, size, modalities, sampling, strict, transform,
                         clips, crops, dense_stride, cache_dir)

    def list_samples(self):
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such folder (the VIVA root, holding "
                                    f"{' and '.join(FOLDERS.values())}/)")
        listing = self.root / FOLDERS[self.streams[0]]
        if not listing.is_dir():
            raise FileNotFoundError(f"{listing}: no such folder (VIVA's {self.streams[0]} "
                                    "videos)")
        test_subject = self.fold + 1
        listed = []
        for path in sorted(listing.iterdir()):
            if path.name.startswith("."):  # .DS_Store and the like
                continue
            subject, gesture = parse_name(path)
            if (subject == test_subject) != (self.split == "test"):
                continue
            sources = {m: FrameSource(self.root / FOLDERS[m] / path.name) for m in self.streams}
            listed.append(Listed(f"{listing.name}/{path.name}", gesture - 1, sources))
        if not listed:
            whose = f"subject {test_subject}" if self.split == "test" else \
                f"any subject but {test_subject}"
            raise ValueError(f"{listing}: no video of {whose} (split {self.split!r} of fold "
                             f"{self.fold})")
        return str(listing), [], listed

    def cache_key(self):
        return {**super().cache_key(), "fold": self.fold}
