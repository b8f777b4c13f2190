"""What the gesture datasets without pose (EgoGesture, NVGesture, IsoGD, VIVA) share: frames read
by index from OpenCV videos or numbered image files, and `GestureDataset`, their common clip
logic.

A subclass lists its samples (one gesture each: a label and, per recorded stream in
`self.streams`, a `FrameSource` and the number of frames its annotation claims); the base class
checks them against the files, samples frames (sampling.py), reads, resizes and crops them, and
returns the data contract's items (DESIGN.md): `rgb`, `depth`, `flow` (as asked; flow is
computed from the rgb stream, flow.py), `label`, `video`, and `pose_valid`, all False (these
datasets have no pose; the mask lets pose heads ignore them as DESIGN.md asks of anything
missing). No joints or K.

Sampling: "segments" (TSN), "dense" (a window at a stride; short videos loop) or "padded"
(MTUT: a window, short videos zero-padded on both sides; testing covers each whole video with
windows, so the number of test items per video varies and evaluation averages their
predictions). sampling.py has the details.

Geometry (MSD paper, section IV-B): frames are resized to a short side of `size`, keeping the
datasets' 4:3 aspect (stored frames are size x round(size * 4 / 3); a video of another aspect is
resized to that shape). Training: `transform` (transforms.build_train_transform: multi-scale
corner crop over the whole frame, resized to size x size), or the centre square without one.
Test: `crops` 1 is the centre size x size square, 3 are the left, centre and right squares along
the long side: the paper's three-crop of the full short side ("scale the shorter side to 256 and
take three crops of 256 x 256"), at the training resolution.

Depth in these datasets is 8-bit (jpg frames or video): read as one grey channel, 0..255 ->
[0, 1] (value / 255), values as distributed (no inversion, no metric depth).

Videos are decoded from their first frame up to the last frame asked for (grab, then retrieve
only the frames kept): exact for every codec, and cheap for these short clips. Frame counts come
from the container's header when a dataset is opened. Every frame is checked as it is decoded
(frames.py): a video that decodes fewer frames than its header claims, a frame that does not
decode or is not the container's size, an image file that does not decode or a truncated JPEG
raise frames.BadFrame naming the file and frame; with the cache on, the sample is skipped
(cache.py) or, with `strict`, the dataset raises.
"""

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from . import flow
from .cache import open_cache
from .frames import BadFrame, decode_image
from .sampling import covering_clips, dense_indices, padded_indices, segment_indices
from .transforms import to_tensors

__all__ = ["FrameSource", "GestureDataset", "GestureSample", "read_video_frames",
           "video_frame_count"]

ASPECT = 4 / 3  # width / height of EgoGesture, NVGesture, IsoGD and (assumed) VIVA frames
DEPTH_SCALE = 255.0  # 8-bit depth -> [0, 1]
PROBE_THREADS = 8  # opening videos waits on the disk more than on the CPU


def video_frame_count(path):
    """Frames in a video according to its container (decoded and counted when the header has
    no count); None when OpenCV cannot open it."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            count = 0
            while capture.grab():
                count += 1
        return count
    finally:
        capture.release()


def read_video_frames(path, indices, gray=False):
    """Frames `indices` (0-based, any order, repeats allowed) of a video as uint8 arrays: BGR
    (H,W,3), or (H,W) grey when `gray`."""
    indices = [int(i) for i in indices]
    wanted = set(indices)
    capture = cv2.VideoCapture(str(path))
    frames = {}
    try:
        if not capture.isOpened():
            raise BadFrame(f"{path}: missing, or not a video OpenCV can open")
        # the container's frame size; when it reports none, the first decoded frame's
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        for position in range(max(indices) + 1):
            if not capture.grab():
                raise BadFrame(f"{path}: decoded only {position} frames, frame {max(indices)} "
                               "was asked for (the file has fewer frames than its header or "
                               "the list says)")
            if position in wanted:
                ok, frame = capture.retrieve()
                if not ok:
                    raise BadFrame(f"{path}: cannot decode frame {position}")
                if 0 in size:
                    size = frame.shape[1::-1]
                if frame.shape[1::-1] != size:
                    raise BadFrame(f"{path}: frame {position} is {frame.shape[1]}x"
                                   f"{frame.shape[0]}, the video {size[0]}x{size[1]}")
                frames[position] = frame
    finally:
        capture.release()
    if gray:
        frames = {i: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) if f.ndim == 3 else f
                  for i, f in frames.items()}
    return [frames[i] for i in indices]


@dataclass(frozen=True)
class FrameSource:
    """Frames of one modality of one sample. `pattern` None: a video file, frame i of the
    sample is the video's frame `first + i` (0-based). Otherwise a folder of images, frame i is
    `path / pattern.format(first + i)` (the dataset's own numbering)."""

    path: Path
    first: int
    pattern: str | None = None

    def file(self, index):
        return self.path if self.pattern is None else self.path / self.pattern.format(index)

    def span(self, count):
        """Frames first .. first + count - 1 in the source's numbering, for messages."""
        last = self.first + count - 1
        if self.pattern is None:
            return f"{self.first}..{last}"
        return f"{self.pattern.format(self.first)}..{self.pattern.format(last)}"

    def read(self, indices, gray):
        indices = self.first + np.asarray(indices, dtype=np.int64)
        if self.pattern is None:
            return read_video_frames(self.path, indices, gray)
        flags = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
        return [decode_image(self.file(index), flags) for index in indices]


@dataclass
class GestureSample:
    """One usable gesture of the split."""

    name: str  # where it is listed, e.g. "train_list.txt:12" or a video's relative path
    label: int  # 0-based, -1 = unknown
    sources: dict  # modality -> FrameSource
    num_frames: int  # frames present in every source, at most what the annotation claims


class GestureDataset(Dataset):
    """Clips of gesture samples as the data contract's dicts (see the module docstring).

    `split` "train": one item per sample, frames sampled at random (TSN segments, dense or
    padded, the last two with `dense_stride`) and augmented by `transform` (a
    transforms.ClipTransform). Other splits: clips x crops items per sample, deterministic
    (padded sampling: its covering clips x crops, `clips` must be 1); `views` lists the (sample,
    clip, crop) of each item. `cache_dir` keeps decoded, resized frames and flow in an HDF5 file
    (cache.py).

    Samples whose files hold fewer frames than their annotation claims are cut to what exists;
    those with no usable frame (missing or unreadable file, start past the end) are skipped; one
    warning lists them (strict=True: a ValueError instead). `labels` (-1 = unknown),
    `pose_available` and `mask_available` (all False) are per sample; `withhold` edits them.

    Subclasses set NAME, NUM_CLASSES, SPLITS and implement `list_samples()` -> (the annotation
    for messages, the annotation files, [(name, label, {stream: (FrameSource, frames the
    annotation claims or None)} or None when nothing of it can be read), ...] of `self.split`),
    for each stream of `self.streams` (rgb, depth).
    """

    NAME = ""
    NUM_CLASSES = 0
    SPLITS = ("train", "test")
    MODALITIES = ("rgb", "depth", "flow")
    LABELS = ("gesture",)  # no joint labels
    SAMPLINGS = ("segments", "dense", "padded")

    @classmethod
    def declared_classes(cls, data):
        """(classes, the config key that sets them): the dataset's NUM_CLASSES."""
        return cls.NUM_CLASSES, f"data.name {cls.NAME!r}"

    def __init__(self, root, split, num_frames, size, modalities, sampling, strict, transform,
                 clips, crops, dense_stride, cache_dir):
        unknown = [m for m in modalities if m not in self.MODALITIES]
        if unknown or not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be distinct names among "
                             f"{', '.join(self.MODALITIES)}, got {list(modalities)}")
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {', '.join(map(repr, self.SPLITS))}, "
                             f"got {split!r}")
        if sampling not in self.SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(map(repr, self.SAMPLINGS))}, "
                             f"got {sampling!r}")
        if num_frames < 1 or size < 1 or clips < 1 or dense_stride < 1:
            raise ValueError(f"num_frames, size, clips and dense_stride must be positive, got "
                             f"{num_frames}, {size}, {clips}, {dense_stride}")
        if crops not in (1, 3):
            raise ValueError(f"crops must be 1 or 3, got {crops}")
        if sampling == "padded" and split != "train" and clips != 1:
            raise ValueError(f"sampling 'padded' tests on the clips that cover each video: clips "
                             f"must be 1, got {clips}")
        self.root = Path(root)
        self.split, self.num_frames, self.size = split, num_frames, size
        self.modalities, self.sampling, self.transform = tuple(modalities), sampling, transform
        self.streams = flow.streams(self.modalities)  # what is read from the files
        self.dense_stride = dense_stride
        self.frame_shape = (size, round(size * ASPECT))  # (height, width) of stored frames
        # test-time views exist outside the training split only
        self.clips, self.crops = (clips, crops) if split != "train" else (1, 1)
        self.num_classes = self.NUM_CLASSES
        self.classes = [str(k + 1) for k in range(self.NUM_CLASSES)]  # the files' 1-based labels

        self.annotation, self.annotation_files, listed = self.list_samples()
        counts = self._probe(listed)
        self.videos, labels, defects = [], [], []
        for name, label, sources in listed:
            if sources is None:
                defects.append(f"{name} -> skipped")
                continue
            claimed = {m: sources[m][1] for m in self.streams}
            present = {m: counts[sources[m][0]] for m in self.streams}
            usable = {m: min(c for c in (claimed[m], present[m]) if c is not None)
                      if present[m] is not None else 0 for m in self.streams}
            length = min(usable.values())
            if length < 1 or len(set(usable.values())) > 1 or any(
                    claimed[m] is not None and usable[m] < claimed[m] for m in self.streams):
                found = ", ".join(self._found(sources[m][0], claimed[m], present[m], m)
                                  for m in self.streams)
                outcome = "skipped" if length < 1 else f"using {length} frames"
                defects.append(f"{name}: {found} -> {outcome}")
            if length >= 1:
                self.videos.append(GestureSample(
                    name, label, {m: sources[m][0] for m in self.streams}, length))
                labels.append(label)
        if defects:
            message = (f"{self.annotation} ({split}): {len(defects)} sample(s) with missing or "
                       "short videos/frames:\n  " + "\n  ".join(defects))
            if strict:
                raise ValueError(message)
            warnings.warn(message, stacklevel=3)
        if not self.videos:
            raise ValueError(f"{self.annotation}: no usable sample in split {split!r}")
        self.labels = np.array(labels, dtype=np.int64)
        self.pose_available = np.zeros(len(self.videos), dtype=bool)
        self.mask_available = np.zeros(len(self.videos), dtype=bool)
        self.cache = (open_cache(self, cache_dir, strict, self.annotation)
                      if cache_dir is not None else None)
        self.views = [(video, clip, crop) for video, sample in enumerate(self.videos)
                      for clip in range(self._num_clips(sample)) for crop in range(self.crops)]

    def list_samples(self):
        raise NotImplementedError

    @staticmethod
    def _found(source, claimed, present, modality):
        if present is None:
            return f"{modality} {source.path}: missing or unreadable"
        if claimed is None:
            return f"{modality} {source.path}: {present} frames"
        return (f"{modality} {source.path}: {min(present, claimed)} of the {claimed} listed frames "
                f"{source.span(claimed)} present")

    def _probe(self, listed):
        """FrameSource -> frames present from its first frame on (None: missing/unreadable)."""
        sources = {entry[m][0] for _, _, entry in listed if entry is not None
                   for m in self.streams}
        videos = sorted({s.path for s in sources if s.pattern is None})
        with ThreadPoolExecutor(PROBE_THREADS) as pool:
            totals = dict(zip(videos, pool.map(video_frame_count, videos), strict=True))
        listings = {}
        counts = {}
        for source in sources:
            if source.pattern is None:
                total = totals[source.path]
                counts[source] = None if total is None else max(0, total - source.first)
                continue
            if source.path not in listings:
                is_dir = source.path.is_dir()
                listings[source.path] = set(os.listdir(source.path)) if is_dir else None
            names = listings[source.path]
            if names is None:
                counts[source] = None
                continue
            count = 0  # files by index, never in listing order; other files are ignored
            while source.pattern.format(source.first + count) in names:
                count += 1
            counts[source] = count
        return counts

    def read_frames(self, video_index, frame_indices):
        """Decoded frames of one sample, resized to `frame_shape`: the requested modalities
        among rgb (n,H,W,3) uint8 RGB, depth (n,H,W) uint8 and flow (n,H,W,2) float16 pixels
        (flow.py); plus K, an identity placeholder that cache.py and transforms.py expect
        (dropped from items: no intrinsics are known)."""
        sample = self.videos[video_index]
        frames = {}
        if "depth" in self.modalities:
            frames["depth"] = np.stack(self._read(sample, "depth", frame_indices))
        frames.update(flow.colour_frames(lambda indices: self._read(sample, "rgb", indices),
                                         frame_indices, sample.num_frames, self.modalities))
        frames["K"] = np.eye(3, dtype=np.float32)
        return frames

    def _read(self, sample, stream, frame_indices):
        """Frames of one stream resized to `frame_shape`: RGB, or grey for depth."""
        height, width = self.frame_shape
        resized = []
        for image in sample.sources[stream].read(frame_indices, gray=stream == "depth"):
            # area averaging when shrinking avoids aliasing
            shrink = image.shape[0] > height
            image = cv2.resize(image, (width, height),
                               interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            resized.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if stream == "rgb" else image)
        return resized

    def view(self, frames, crop):
        """Square `size` crop number `crop` of `self.crops` along the long side (centre: 1 of 3
        or 0 of 1)."""
        height, width = frames[self.modalities[0]].shape[1:3]
        side = self.size
        long = max(height, width)
        offset = (0, (long - side) // 2, long - side)[crop] if self.crops == 3 else \
            (long - side) // 2
        y, x = (0, offset) if width >= height else (offset, 0)
        return {k: v[:, y:y + side, x:x + side] if k in self.MODALITIES else v
                for k, v in frames.items()}

    def _num_clips(self, sample):
        if self.sampling == "padded" and self.split != "train":
            return len(covering_clips(sample.num_frames, self.num_frames, self.dense_stride))
        return self.clips

    def frame_indices(self, sample, rng, clip):
        """Frame indices of one clip of `sample`, -1 for a zero frame (padded sampling)."""
        if self.sampling == "segments":
            return segment_indices(sample.num_frames, self.num_frames, rng, clip, self.clips)
        if self.sampling == "dense":
            return dense_indices(sample.num_frames, self.num_frames, self.dense_stride, rng,
                                 clip, self.clips)
        if rng is not None:
            return padded_indices(sample.num_frames, self.num_frames, self.dense_stride, rng)
        return covering_clips(sample.num_frames, self.num_frames, self.dense_stride)[clip]

    def __len__(self):
        return len(self.views)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)}")
        video_index, clip, crop = self.views[index]
        rng = None
        if self.split == "train":  # drawn from torch, which DataLoader seeds per worker
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
        indices = self.frame_indices(self.videos[video_index], rng, clip)
        real = indices >= 0  # the others are zero frames
        if self.cache is not None:
            sample = self.cache.read(video_index, indices[real])
        else:
            sample = self.read_frames(video_index, indices[real])
        if self.split == "train" and self.transform is not None:
            # ClipTransform moves joints with the image: give it none
            sample["joints2d"] = np.zeros((real.sum(), 0, 2), np.float32)
            sample["joints3d"] = np.zeros((real.sum(), 0, 3), np.float32)
            sample = self.transform(sample, rng)
        else:
            sample = self.view(sample, crop)
        sample = {k: sample[k] for k in self.modalities}
        sample["label"] = self.labels[video_index]
        sample["video"] = np.int64(video_index)
        sample["pose_valid"] = np.zeros(len(indices), dtype=bool)
        item = to_tensors(sample, DEPTH_SCALE)
        if not real.all():
            # zero frames of the network input: mean colour, depth 0, no motion
            real = torch.from_numpy(real)
            for key in self.modalities:
                frames = item[key]
                item[key] = frames.new_zeros((len(real), *frames.shape[1:]))
                item[key][real] = frames
        return item

    def cache_key(self):
        """The settings cached frames depend on (cache.py), flow's parameters among them; the
        samples follow from these and from the source files."""
        key = {"dataset": self.NAME, "root": str(self.root.resolve()), "split": self.split,
               "size": self.size, "modalities": list(self.modalities)}
        if "flow" in self.modalities:
            key["farneback"] = flow.FARNEBACK
        return key

    def source_files(self):
        """Every file the frames are read from (cache.py's staleness check)."""
        files = list(self.annotation_files)
        seen = set()
        for sample in self.videos:
            for source in sample.sources.values():
                for index in range(source.first, source.first + sample.num_frames):
                    path = source.file(index)
                    if path not in seen:
                        seen.add(path)
                        files.append(path)
        return files
