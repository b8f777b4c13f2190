"""The dataset registry `DATASETS` and `ClipDataset`, the base of every clip dataset, with its
records `Listed` and `Sample` (docs/design.md, "Data contract").

A subclass lists its samples (`list_samples`), reads the frames of one stream (`read_stream`),
reads pose when it has some (`HAS_POSE`, `read_pose`), cuts test-time crops (`view`) and may
turn a listed sample into its own record (`load_sample`). The base checks the samples against
their files and reports the defects in one warning (`strict`: a ValueError), samples clips
(sampling.py), reads frames through the HDF5 cache (cache.py), augments, enumerates the test
views (clips x crops) and returns the data contract's tensors.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..registry import Registry
from . import flow
from .cache import FrameCache
from .frames import Probe
from .sampling import build_sampler
from .transforms import to_tensors

__all__ = ["DATASETS", "ClipDataset", "Listed", "Sample", "annotation_lines", "gesture_label",
           "register_dataset"]

DATASETS = Registry("dataset")


def register_dataset(name):
    """Register a dataset class under `name`, which it keeps as NAME (cache keys, messages)."""
    def decorator(cls):
        cls.NAME = name
        return DATASETS.register(name)(cls)
    return decorator

FRAME_MODALITIES = ("rgb", "depth", "mask", "flow")  # read from frame files (flow from rgb)
# the data contract's keys with one entry per frame: zero frames (padded sampling) get zeros
PER_FRAME = ("rgb", "depth", "mask", "flow", "joints3d", "joints2d", "pose_valid", "mask_valid")


@dataclass
class Listed:
    """A sample as its annotation lists it. `sources` maps each recorded stream, and each
    annotation counted with the frames (FPHA's skeleton), to a frames.FrameSource or
    frames.Counted; None when nothing of the sample can be read (reported, skipped)."""

    name: str  # where it is listed, for messages
    label: int  # 0-based, -1 = unknown
    sources: dict | None


@dataclass
class Sample:
    """One usable sample of the split."""

    name: str
    label: int
    sources: dict
    num_frames: int  # frames present in every source, at most what the annotation claims


def annotation_lines(path):
    """(line number, line) of each non-blank line of the annotation file at `path`; CRLF line
    endings read like LF."""
    with open(path) as file:  # text mode reads CRLF as LF
        for number, line in enumerate(file, 1):
            if line.strip():
                yield number, line


def gesture_label(text, where, first=1, num_classes=None):
    """The 0-based class of an annotation's label `text` (numbered from `first`), or -1 for the
    text "-1", an unknown gesture (a partially labelled set); anything else names `where`."""
    if text == "-1":
        return -1
    label = int(text) - first if text.isdigit() else None
    if label is None or label < 0 or (num_classes is not None and label >= num_classes):
        classes = (f"a class number from {first}" if num_classes is None else
                   f"a class ({first}..{num_classes - 1 + first})")
        raise ValueError(f"{where}: label {text!r} is not {classes} or -1 (unknown)")
    return label


def describe(key, source, present):
    """One source of a defective sample, for the defect message."""
    if present is None:
        return f"{key} {source.path}: missing or unreadable"
    if source.claimed is None:
        return f"{key} {source.path}: {present} frames"
    return (f"{key} {source.path}: {min(present, source.claimed)} of the {source.claimed} "
            f"listed frames {source.span(source.claimed)} present")


class ClipDataset(Dataset):
    """Clips of the listed samples as the data contract's dicts (module docstring).

    `split` "train": one item per sample, frames drawn by the sampler (`sampling`: "segments",
    "dense" or "padded", windows at `dense_stride`) and augmented by `transform` (a
    transforms.ClipTransform). Other splits: the sampler's test clips x `crops` items per sample,
    deterministic; `views` lists the (sample, clip, crop) of each item. `cache_dir` keeps decoded
    frames in an HDF5 file. Depth becomes depth / `depth_scale` clipped to [0, 1].

    Samples whose sources hold fewer frames than each other or than the annotation claims are cut
    to what all hold; those with no usable frame are skipped; one warning lists them (`strict`: a
    ValueError). With the cache, a sample with a bad frame is skipped the same way. `labels` (-1 =
    unknown), `pose_available` and `mask_available` are per sample; `withhold` edits them.

    Subclasses are registered with `register_dataset` (which sets NAME), set MODALITIES, SPLITS,
    HAS_POSE, `num_classes` and `classes`, and implement
    `list_samples`, `read_stream` and `view` (and `read_pose` when HAS_POSE).
    """

    NAME = ""
    MODALITIES = ()
    SPLITS = ("train", "test")
    HAS_POSE = False

    def __init__(self, root, split, *, num_frames, size, modalities, sampling, dense_stride,
                 strict, transform, clips, crops, cache_dir, depth_scale):
        unknown = [m for m in modalities if m not in self.MODALITIES]
        if unknown or not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be distinct names among "
                             f"{', '.join(self.MODALITIES)}, got {list(modalities)}")
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {', '.join(map(repr, self.SPLITS))}, "
                             f"got {split!r}")
        if num_frames < 1 or size < 1 or clips < 1:
            raise ValueError(f"num_frames, size and clips must be positive, got {num_frames}, "
                             f"{size}, {clips}")
        if crops not in (1, 3):
            raise ValueError(f"crops must be 1 or 3, got {crops}")
        self.root = Path(root)
        self.split, self.num_frames, self.size = split, num_frames, size
        self.modalities, self.transform = tuple(modalities), transform
        self.sampler = build_sampler(sampling, num_frames, dense_stride)
        # the recorded streams read from the files
        self.streams = flow.streams([m for m in self.modalities if m in FRAME_MODALITIES])
        self.depth_scale = depth_scale
        # test-time views exist outside the training split only
        self.clips, self.crops = (clips, crops) if split != "train" else (1, 1)

        self.annotation, self.annotation_files, listed = self.list_samples()
        self.videos = self._check_samples(listed, strict)
        self.labels = np.array([sample.label for sample in self.videos], dtype=np.int64)
        self.pose_available = np.full(len(self.videos), self.HAS_POSE)
        self.mask_available = np.full(len(self.videos), "mask" in self.MODALITIES)
        self.cache = None if cache_dir is None else self._open_cache(cache_dir, strict)
        self.views = [(video, clip, crop) for video, sample in enumerate(self.videos)
                      for clip in range(self._num_clips(sample)) for crop in range(self.crops)]

    # --- what subclasses provide ---------------------------------------------------------------

    def list_samples(self):
        """(the annotation, for messages; the annotation files, for the cache; [Listed, ...] of
        `self.split`), each Listed with a source for every stream of `self.streams`."""
        raise NotImplementedError

    def load_sample(self, listed, num_frames):
        """(the record of a `listed` sample whose sources hold `num_frames` frames, or None to
        skip it; a defect description or None). The base keeps it as a Sample."""
        return Sample(listed.name, listed.label, listed.sources, num_frames), None

    def read_stream(self, sample, stream, indices):
        """Frames `indices` of one stream of `sample` as stored: rgb (H,W,3) uint8 RGB, depth
        (H,W) uint16 mm or uint8, mask (H,W) uint8 0/255."""
        raise NotImplementedError

    def read_pose(self, video_index, indices):
        """Pose of frames `indices` (HAS_POSE): joints3d (n,21,3) and joints2d (n,21,2) float32,
        0 where unannotated; K (3,3) float32 with K @ joints3d = joints2d; pose_valid (n,) bool,
        the annotated frames."""
        raise NotImplementedError

    def view(self, clip, crop):
        """Test-time crop `crop` of `self.crops` of a numpy clip (crops 1: the untransformed
        training view as well)."""
        raise NotImplementedError

    # --- the shared logic ----------------------------------------------------------------------

    def _check_samples(self, listed, strict):
        """The usable samples of `listed`; their defects reported once."""
        probe = Probe({source for entry in listed if entry.sources is not None
                       for source in entry.sources.values()})
        samples, defects = [], []
        for entry in listed:
            if entry.sources is None:
                defects.append(f"{entry.name} -> skipped")
                continue
            present = {key: probe.present(source) for key, source in entry.sources.items()}
            usable = {key: 0 if present[key] is None else
                      min(c for c in (present[key], source.claimed) if c is not None)
                      for key, source in entry.sources.items()}
            length = min(usable.values())
            problems = []
            if length < 1 or len(set(usable.values())) > 1 or any(
                    source.claimed is not None and usable[key] < source.claimed
                    for key, source in entry.sources.items()):
                found = ", ".join(describe(key, source, present[key])
                                  for key, source in entry.sources.items())
                problems.append(f"{found} -> " +
                                ("skipped" if length < 1 else f"using {length} frames"))
            sample = None
            if length >= 1:
                sample, problem = self.load_sample(entry, length)
                problems += [problem] if problem else []
            if problems:
                defects.append(f"{entry.name}: " + "; ".join(problems))
            if sample is not None:
                samples.append(sample)
        if defects:
            self._report(f"{self.annotation} ({self.split}): {len(defects)} sample(s) with "
                         "missing, short or invalid frames:\n  " + "\n  ".join(defects), strict)
        if not samples:
            raise ValueError(f"{self.annotation}: no usable sample in split {self.split!r}")
        return samples

    @staticmethod
    def _report(message, strict):
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=5)

    def _open_cache(self, cache_dir, strict):
        """The FrameCache of the dataset; the samples it left out for a bad frame are dropped
        (`keep`) and reported."""
        cache = FrameCache(cache_dir, self)
        if cache.skipped:
            self._report(f"{self.annotation} ({self.split}): {len(cache.skipped)} video(s) with a "
                         "bad frame, skipped and not cached:\n  " +
                         "\n  ".join(cache.skipped.values()), strict)
            self.keep([i for i in range(len(self.videos)) if i not in cache.skipped])
        return cache

    def keep(self, indices):
        """Keep the samples `indices` only (with their labels and availability flags)."""
        self.videos = [self.videos[i] for i in indices]
        self.labels = self.labels[indices]
        self.pose_available = self.pose_available[indices]
        self.mask_available = self.mask_available[indices]
        if not self.videos:
            raise ValueError(f"{self.annotation}: no usable video in split {self.split!r}")

    def _num_clips(self, sample):
        if self.split == "train":
            return 1
        return self.sampler.num_test_clips(sample.num_frames, self.clips)

    def read_frames(self, video_index, indices):
        """Decoded frames `indices` of one sample, as stored: the requested modalities among
        rgb (n,H,W,3) uint8 RGB, depth (n,H,W), mask (n,H,W) uint8 0/255 and flow (n,H,W,2)
        float16 pixels (flow.py)."""
        sample = self.videos[video_index]
        indices = np.asarray(indices, dtype=np.int64)
        frames = {m: np.stack(self.read_stream(sample, m, indices))
                  for m in self.modalities if m in ("depth", "mask")}
        frames.update(flow.colour_frames(lambda i: self.read_stream(sample, "rgb", i), indices,
                                         sample.num_frames, self.modalities))
        return frames

    def cache_key(self):
        """The settings cached frames depend on (cache.py), flow's parameters among them."""
        key = {"dataset": self.NAME, "root": str(self.root.resolve()), "split": self.split,
               "size": self.size, "modalities": list(self.modalities)}
        if "flow" in self.modalities:
            key["farneback"] = flow.FARNEBACK
        return key

    def source_files(self):
        """Every file the frames are read from (cache.py's staleness check)."""
        files = dict.fromkeys(self.annotation_files)
        for sample in self.videos:
            for source in sample.sources.values():
                files.update(dict.fromkeys(source.files(sample.num_frames)))
        return list(files)

    def __len__(self):
        return len(self.views)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)}")
        video_index, clip, crop = self.views[index]
        rng = None
        if self.split == "train":  # drawn from torch, which DataLoader seeds per worker
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
        return self.item(video_index, clip, crop, rng)

    def item(self, video_index, clip, crop, rng):
        """The item of view (video_index, clip, crop); `rng`: a training item."""
        num_total = self.videos[video_index].num_frames
        indices = (self.sampler.train_indices(num_total, rng) if rng is not None else
                   self.sampler.test_indices(num_total, clip, self.clips))
        real = indices >= 0  # the others are zero frames
        frames = indices[real]
        sample = (self.cache.read(video_index, frames) if self.cache is not None else
                  self.read_frames(video_index, frames))
        if self.HAS_POSE:
            sample.update(self.read_pose(video_index, frames))
            sample["pose_valid"] = sample["pose_valid"] & self.pose_available[video_index]
        else:
            sample["pose_valid"] = np.zeros(len(frames), dtype=bool)
        if "mask" in self.modalities:
            sample["mask_valid"] = np.full(len(frames), self.mask_available[video_index])
        if rng is not None and self.transform is not None:
            sample = self.transform(sample, rng)
        else:
            sample = self.view(sample, crop)
        item = to_tensors(sample, self.depth_scale)
        if not real.all():
            # zero frames of the network input: mean colour, depth 0, no motion, no labels
            real = torch.from_numpy(real)
            for key in PER_FRAME:
                if key in item:
                    padded = item[key].new_zeros((len(real), *item[key].shape[1:]))
                    padded[real] = item[key]
                    item[key] = padded
        item["label"] = torch.tensor(self.labels[video_index])
        item["video"] = torch.tensor(video_index, dtype=torch.int64)
        return item
