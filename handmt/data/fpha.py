"""FPHA (First-Person Hand Action benchmark) read as distributed, and any dataset in its layout.

DESIGN.md "FPHA as distributed" fixes the layout and the real-world defects handled here (empty
skeletons, CRLF, stray files, frame counts that differ between sources); "Data contract" fixes
what an item holds. The synthetic generator writes the same layout plus hand masks.

Every video gets one square crop around its hand: the box of its colour-projected joints over
all frames, enlarged by `crop_margin` on each side, resized to `size`. The crop is an exact
affine map A of colour pixels, so the input's intrinsics are K = A @ color_K. Depth is registered
to that crop through the depth-to-colour extrinsic and holds colour-camera z in mm. Flow is
computed from the cropped colour frames (flow.py).

With `modalities: [joints]` the dataset is skeleton-only (no Video_files needed): an item's
`joints` is the whole sequence normalised (skeleton.py, `joint_norm`) and resampled to
`num_frames`; in training the `transform` (skeleton.SkeletonTransform) crops it in time and
augments it.
"""

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..hand import NUM_JOINTS
from . import flow
from .base import DATASETS
from .cache import open_cache
from .camera import CAMERA_FILE, FPHACamera, project
from .frames import BadFrame, decode_image
from .sampling import dense_indices, segment_indices
from .skeleton import normalize_skeleton, resample
from .transforms import multi_crop_transforms, to_tensors

__all__ = ["FPHACamera", "FPHADataset", "Video", "read_skeleton", "read_split"]

SPLIT_FILE = "data_split_action_recognition.txt"
NUM_CLASSES = 45  # FPHA's actions (the synthetic set's default too)
SPLIT_HEADERS = {"Training": "train", "Test": "test"}
# Folder and file name of frame i of each modality, in Video_files/<sequence>/.
FRAME_FILES = {"rgb": ("color", "color_{:04d}.jpeg"),
               "depth": ("depth", "depth_{:04d}.png"),
               "mask": ("mask", "mask_{:04d}.png")}
DENSE_STRIDE = 2


def read_skeleton(path):
    """skeleton.txt -> (F, 21, 3) joints in mm, depth-camera frame, FPHA joint order.

    Each line is a frame index then 21 x (x, y, z): 64 columns, frames consecutive from 0. CRLF
    line endings and blank lines are tolerated; an empty file has no frames.
    """
    with open(path) as file:  # text mode reads CRLF as LF
        lines = [(number, line) for number, line in enumerate(file, 1) if line.strip()]
    columns = 1 + 3 * NUM_JOINTS
    for number, line in lines:
        if len(line.split()) != columns:
            raise ValueError(f"{path}:{number}: expected 64 columns (frame index, then x y z of "
                             f"21 joints), got {len(line.split())}")
    try:  # one conversion of the whole file: a loop over values took most of a dataset's load
        table = np.array(" ".join(line for _, line in lines).split(), dtype=np.float64)
    except ValueError:
        for number, line in lines:
            try:
                np.array(line.split(), dtype=np.float64)
            except ValueError:
                raise ValueError(f"{path}:{number}: not a number in {line.strip()[:80]!r}"
                                 ) from None
    table = table.reshape(len(lines), columns)
    for frame, ((number, _), index) in enumerate(zip(lines, table[:, 0], strict=True)):
        if index != frame:
            raise ValueError(f"{path}:{number}: frame index {index:g}, expected {frame} "
                             "(frames are numbered consecutively from 0)")
    return table[:, 1:].reshape(-1, NUM_JOINTS, 3)


def read_split(path):
    """data_split_action_recognition.txt -> {"train": [(sequence, label), ...], "test": [...]}.

    A section starts with a header `Training N` or `Test N` and holds N lines
    `Subject_k/<action>/<seq> <label>`. CRLF line endings and blank lines are tolerated.
    """
    sections, headers, current = {}, {}, None
    with open(path) as file:
        for line_number, line in enumerate(file, 1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}:{line_number}"
            if fields[0] in SPLIT_HEADERS:
                split = SPLIT_HEADERS[fields[0]]
                if len(fields) != 2 or not fields[1].isdigit() or split in sections:
                    raise ValueError(f"{where}: expected one header '{fields[0]} <count>' per "
                                     f"section, got {line.strip()!r}")
                current = sections[split] = []
                headers[split] = (int(fields[1]), where)
            elif current is None:
                raise ValueError(f"{where}: expected a header 'Training <count>' or "
                                 f"'Test <count>', got {line.strip()!r}")
            elif len(fields) != 2 or fields[0].count("/") != 2 or not fields[1].isdigit():
                raise ValueError(f"{where}: expected 'Subject_k/<action>/<seq> <label>', "
                                 f"got {line.strip()!r}")
            else:
                current.append((fields[0], int(fields[1])))
    for split, (count, where) in headers.items():
        if len(sections[split]) != count:
            raise ValueError(f"{where}: the header announces {count} sequences, the section "
                             f"has {len(sections[split])}")
    return sections


def count_frames(folder, pattern):
    """Frames 0, 1, ... present in `folder` up to the first missing index (None: no folder).
    Files are looked up by index, never in listing order; other files (.DS_Store) are ignored."""
    if not folder.is_dir():
        return None
    names = set(os.listdir(folder))
    count = 0
    while pattern.format(count) in names:
        count += 1
    return count


def crop_box(points, image_size, margin):
    """(x0, y0, side): the integer square box around 2D `points` (N, 2), enlarged by `margin`
    of its size on each side; the whole image (as a square) when there are no points."""
    if len(points) == 0:
        centre, side = np.asarray(image_size) / 2, max(image_size)
    else:
        low, high = points.min(axis=0), points.max(axis=0)
        centre, side = (low + high) / 2, (high - low).max() * (1 + 2 * margin)
    side = max(1, round(side))
    x0, y0 = np.round(centre - side / 2).astype(int)
    return int(x0), int(y0), side


def crop_affine(crop, size):
    """The 3x3 map from colour pixels to input pixels of `crop_and_resize` (OpenCV's pixel
    centres: a resize by s maps x to (x + 0.5) * s - 0.5)."""
    x0, y0, side = crop
    scale = size / side
    return np.array([[scale, 0, scale * (0.5 - x0) - 0.5],
                     [0, scale, scale * (0.5 - y0) - 0.5],
                     [0, 0, 1]])


def crop_and_resize(image, crop, size, interpolation):
    """The square `crop` (x0, y0, side) of `image`, zeros where it leaves the image, resized to
    size x size."""
    x0, y0, side = crop
    # an integer shift with nearest interpolation copies pixels exactly and pads with zeros
    shift = np.array([[1, 0, -x0], [0, 1, -y0]], dtype=np.float64)
    square = cv2.warpAffine(image, shift, (side, side), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.resize(square, (size, size), interpolation=interpolation)


def read_image(path, flags, dtype, size):
    """Decode an image file (frames.decode_image), checking its type and its (width, height)
    against the camera; BadFrame otherwise."""
    image = decode_image(path, flags)
    if image.dtype != dtype or image.shape[1::-1] != tuple(size):
        raise BadFrame(f"{path}: expected a {size[0]}x{size[1]} {np.dtype(dtype).name} image "
                       f"(camera file or FPHA constants), got {image.shape[1]}x"
                       f"{image.shape[0]} {image.dtype}")
    return image


def register_depth(depth_mm, camera, K, size):
    """Depth image (depth camera, mm) -> size x size depth seen by the input camera K.

    Each valid depth pixel is back-projected with depth_K, moved to the colour camera and
    projected with K; the nearest surface wins (z-buffer); the pinholes that forward splatting
    leaves where K magnifies the depth image are filled with their nearest valid neighbour.
    Values are colour-camera z in mm, 0 = no depth.
    """
    rows, cols = np.nonzero(depth_mm)
    z = depth_mm[rows, cols].astype(np.float64)
    # one linear map from (u z, v z, z) in the depth image to K's homogeneous coordinates of the
    # point in the colour camera, plus a fourth row for its colour-camera z
    to_color = camera.extrinsic[:, :3] @ np.linalg.inv(camera.depth_K)
    linear = np.concatenate([K @ to_color, to_color[2:]])
    offset = np.concatenate([K @ camera.extrinsic[:, 3], camera.extrinsic[2:, 3]])
    h = np.stack([cols * z, rows * z, z], axis=-1) @ linear.T + offset
    h = h[h[:, 3] > 0]  # in front of the colour camera
    x = np.rint(h[:, 0] / h[:, 2]).astype(np.int64)
    y = np.rint(h[:, 1] / h[:, 2]).astype(np.int64)
    inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
    zbuffer = np.full(size * size, np.inf, dtype=np.float32)
    np.minimum.at(zbuffer, y[inside] * size + x[inside], h[inside, 3])
    zbuffer = zbuffer.reshape(size, size)

    # Neighbouring depth pixels land `magnification` input pixels apart.
    magnification = abs(K[0, 0]) / camera.depth_K[0, 0]
    radius = max(1, int(np.ceil((magnification - 1) / 2)))
    nearest = cv2.erode(zbuffer, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    filled = np.where(np.isinf(zbuffer), nearest, zbuffer)
    filled[np.isinf(filled)] = 0
    return np.clip(np.rint(filled), 0, np.iinfo(np.uint16).max).astype(np.uint16)


@dataclass
class Video:
    """One usable sequence of the split."""

    name: str  # "Subject_1/open_juice_bottle/1"
    folder: Path  # Video_files/<name>
    skeleton_path: Path
    num_frames: int  # frames present in every source: their common prefix
    joints: np.ndarray  # (num_frames, 21, 3) float32, colour-camera mm; 0 where unannotated
    joint_valid: np.ndarray  # (num_frames,) bool: the frame's joints are annotated
    crop: tuple | None  # (x0, y0, side): the square colour-image box of the network input
    K: np.ndarray | None  # (3, 3) intrinsics of the network input (None: skeleton-only)

    def frame_path(self, modality, index):
        folder, pattern = FRAME_FILES[modality]
        return self.folder / folder / pattern.format(index)


@DATASETS.register("fpha")
class FPHADataset(Dataset):
    """Clips of FPHA-layout videos as the data contract's dicts (DESIGN.md).

    `split` "train": one item per video, frames sampled at random (TSN segments or dense) and
    augmented by `transform` (a transforms.ClipTransform). `split` "test": clips x crops items
    per video (item i belongs to video i // (clips * crops)), deterministic. `cache_dir` keeps
    decoded, cropped and registered frames and flow in an HDF5 file (cache.py).

    Sequences whose sources disagree in frame count are cut to the common prefix; those with no
    usable frame are skipped; one warning lists them (strict=True: a ValueError instead). Every
    frame is checked as it is decoded (frames.py): with the cache, a sequence with a bad frame is
    skipped with a warning naming the frame (strict: a ValueError) and never cached; without it,
    reading its clip raises frames.BadFrame.
    `labels` (-1 = unknown), `pose_available` and `mask_available` are per video; `withhold` edits
    them. With `mask` among the modalities an item also carries `mask_valid` (T,) bool.
    """

    MODALITIES = ("rgb", "depth", "flow", "mask", "joints")
    LABELS = ("gesture", "pose")  # a gesture per video, 2D and 3D joints per frame

    @staticmethod
    def declared_classes(data):
        """(classes, the config key that sets them) for the `data` section, or None: the
        synthetic set has `data.synthetic.classes`; a folder's classes are those its split file
        lists (NUM_CLASSES in FPHA itself, fewer in a subset), known once it is read."""
        if data.get("root") is not None:
            return None
        return (data.get("synthetic") or {}).get("classes", NUM_CLASSES), "data.synthetic.classes"

    def __init__(self, root: str, split: Literal["train", "test"] = "train",
                 num_frames: int = 8, size: int = 224,
                 modalities: list[str] | tuple[str, ...] = ("rgb", "depth"),
                 sampling: Literal["segments", "dense"] = "segments", strict: bool = False,
                 transform=None, clips: int = 1, crops: int = 1, max_depth_mm: float = 1000.0,
                 crop_margin: float = 0.25, cache_dir: str | None = None,
                 joint_norm: dict | None = None, fold: int | None = None):
        unknown = [m for m in modalities if m not in self.MODALITIES]
        if unknown or not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be distinct names among "
                             f"{', '.join(self.MODALITIES)}, got {list(modalities)}")
        self.skeleton_only = "joints" in modalities
        if self.skeleton_only and (len(modalities) > 1 or cache_dir is not None
                                   or clips * crops > 1):
            raise ValueError("the joints modality is read alone, held in memory (no cache) and "
                             "tested on whole sequences (one clip, one crop); got modalities "
                             f"{list(modalities)}, cache {cache_dir is not None}, clips {clips}, "
                             f"crops {crops}")
        if split not in SPLIT_HEADERS.values():
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if sampling not in ("segments", "dense"):
            raise ValueError(f"sampling must be 'segments' or 'dense', got {sampling!r}")
        if num_frames < 1 or size < 1 or clips < 1:
            raise ValueError(f"num_frames, size and clips must be positive, got {num_frames}, "
                             f"{size}, {clips}")
        self.root = Path(root)
        self.split, self.num_frames, self.size = split, num_frames, size
        self.modalities, self.sampling, self.transform = tuple(modalities), sampling, transform
        # what is read from the frame files
        self.streams = () if self.skeleton_only else flow.streams(self.modalities)
        self.max_depth_mm, self.crop_margin = max_depth_mm, crop_margin
        # test-time views exist in the test split only
        self.clips, self.crops = (clips, crops) if split == "test" else (1, 1)
        self.test_crops = multi_crop_transforms(size, self.crops)
        self.camera = FPHACamera.for_dataset(root)

        self.split_path = self.root / SPLIT_FILE
        sections = read_split(self.split_path)
        if split not in sections:
            raise ValueError(f"{self.split_path}: no section for split {split!r}")
        listed = [entry for section in sections.values() for entry in section]
        self.num_classes = max(label for _, label in listed) + 1
        action_of = {}
        for sequence, label in listed:
            action_of.setdefault(label, sequence.split("/")[1])
        self.classes = [action_of.get(k, f"class_{k}") for k in range(self.num_classes)]

        self.videos, labels, defects = [], [], []
        for sequence, label in self._fold(listed, fold) if fold is not None else sections[split]:
            video, defect = self._load_video(sequence)
            if defect:
                defects.append(defect)
            if video is not None:
                self.videos.append(video)
                labels.append(label)
        if defects:
            message = (f"{self.split_path} ({split}): {len(defects)} sequence(s) with missing, "
                       "mismatched or invalid frames:\n  " + "\n  ".join(defects))
            if strict:
                raise ValueError(message)
            warnings.warn(message, stacklevel=2)
        if not self.videos:
            raise ValueError(f"{self.split_path}: no usable sequence in split {split!r}")
        self.labels = np.array(labels, dtype=np.int64)
        self.pose_available = np.ones(len(self.videos), dtype=bool)
        self.mask_available = np.ones(len(self.videos), dtype=bool)
        self.cache = (open_cache(self, cache_dir, strict, self.split_path)
                      if cache_dir is not None else None)
        # skeleton-only: each video's annotated frames, normalised once
        self.skeletons = [normalize_skeleton(video.joints[video.joint_valid], **(joint_norm or {}))
                          for video in self.videos] if self.skeleton_only else None

    def _fold(self, listed, fold):
        """Cross-subject fold `fold` of the `listed` (sequence, label) pairs of every section,
        the subjects sorted by name: the fold's subject is the test split, the others train."""
        subjects = sorted({sequence.split("/")[0] for sequence, _ in listed})
        if not 0 <= fold < len(subjects):
            raise ValueError(f"fold must be in 0..{len(subjects) - 1} (fold k tests on subject "
                             f"k of {', '.join(subjects)}), got {fold}")
        held_out = (self.split == "test")
        return [(sequence, label) for sequence, label in listed
                if (sequence.split("/")[0] == subjects[fold]) == held_out]

    def _load_video(self, sequence):
        """(Video or None when nothing is usable, defect description or None)."""
        folder = self.root / "Video_files" / sequence
        skeleton_path = self.root / "Hand_pose_annotation_v1" / sequence / "skeleton.txt"
        counts = {m: count_frames(folder / FRAME_FILES[m][0], FRAME_FILES[m][1])
                  for m in self.streams}
        skeleton = read_skeleton(skeleton_path) if skeleton_path.is_file() else None
        counts["skeleton"] = None if skeleton is None else len(skeleton)
        usable = min(count or 0 for count in counts.values())
        defect = None
        if len(set(counts.values())) > 1 or usable == 0:
            found = ", ".join(f"{source} {'missing' if count is None else count}"
                              for source, count in counts.items())
            outcome = "skipped" if usable == 0 else f"using the first {usable}"
            defect = f"{sequence}: frames {found} -> {outcome}"
        if usable == 0:
            return None, defect

        skeleton = skeleton[:usable]
        finite = np.isfinite(skeleton).all(axis=(1, 2))
        joint_valid = finite & (skeleton != 0).any(axis=(1, 2))
        if not finite.all():
            defect = (f"{skeleton_path}: {np.count_nonzero(~finite)} of {usable} frames hold NaN "
                      "or infinite values -> treated as unannotated")
        joints = np.where(joint_valid[:, None, None], self.camera.to_color(skeleton), 0)
        if self.skeleton_only:
            if not joint_valid.any():
                return None, f"{sequence}: no annotated frame -> skipped"
            return Video(sequence, folder, skeleton_path, usable, joints.astype(np.float32),
                         joint_valid, None, None), defect
        pixels = project(joints[joint_valid], self.camera.color_K).reshape(-1, 2)
        crop = crop_box(pixels, self.camera.color_size, self.crop_margin)
        K = crop_affine(crop, self.size) @ self.camera.color_K
        return Video(sequence, folder, skeleton_path, usable, joints.astype(np.float32),
                     joint_valid, crop, K), defect

    def read_frames(self, video_index, frame_indices):
        """Decoded, cropped and registered frames of one video, as numpy arrays: the requested
        modalities among rgb (n,S,S,3) uint8 RGB, depth (n,S,S) uint16 colour-camera mm,
        mask (n,S,S) uint8 0/255, flow (n,S,S,2) float16 pixels (flow.py); joints3d (n,21,3) and
        joints2d (n,21,2) float32 (0 where the frame is unannotated); K (3,3) float32 with
        K @ joints3d = joints2d."""
        video = self.videos[video_index]
        frame_indices = np.asarray(frame_indices, dtype=np.int64)
        frames = {modality: np.stack([self._read_frame(video, modality, i) for i in frame_indices])
                  for modality in self.modalities if modality in ("depth", "mask")}
        frames.update(flow.colour_frames(
            lambda indices: [self._read_frame(video, "rgb", i) for i in indices], frame_indices,
            video.num_frames, self.modalities))
        joints3d = video.joints[frame_indices]
        valid = video.joint_valid[frame_indices]
        joints2d = np.zeros((len(frame_indices), NUM_JOINTS, 2), dtype=np.float32)
        joints2d[valid] = project(joints3d[valid], video.K)
        frames.update(joints3d=joints3d, joints2d=joints2d, K=video.K.astype(np.float32))
        return frames

    def _read_frame(self, video, modality, index):
        path = video.frame_path(modality, index)
        if modality == "depth":
            depth = read_image(path, cv2.IMREAD_UNCHANGED, np.uint16, self.camera.depth_size)
            return register_depth(depth, self.camera, video.K, self.size)
        if modality == "mask":
            mask = read_image(path, cv2.IMREAD_GRAYSCALE, np.uint8, self.camera.color_size)
            return crop_and_resize(mask, video.crop, self.size, cv2.INTER_NEAREST_EXACT)
        image = read_image(path, cv2.IMREAD_COLOR, np.uint8, self.camera.color_size)
        # area averaging when shrinking avoids aliasing of full-size colour frames
        shrink = video.crop[2] > self.size
        image = crop_and_resize(image, video.crop, self.size,
                                cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def __len__(self):
        return len(self.videos) * self.clips * self.crops

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)}")
        video_index, view = divmod(index, self.clips * self.crops)
        clip, crop = divmod(view, self.crops)
        video = self.videos[video_index]
        rng = None
        if self.split == "train":  # drawn from torch, which DataLoader seeds per worker
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
        if self.skeleton_only:
            return self._skeleton_item(video_index, rng)
        if self.sampling == "segments":
            indices = segment_indices(video.num_frames, self.num_frames, rng, clip, self.clips)
        else:
            indices = dense_indices(video.num_frames, self.num_frames, DENSE_STRIDE, rng, clip,
                                    self.clips)
        if self.cache is not None:
            sample = self.cache.read(video_index, indices)
        else:
            sample = self.read_frames(video_index, indices)
        if self.split == "train" and self.transform is not None:
            sample = self.transform(sample, rng)
        elif self.test_crops[crop] is not None:
            sample = self.test_crops[crop](sample)
        sample["label"] = self.labels[video_index]
        sample["video"] = np.int64(video_index)
        sample["pose_valid"] = self.pose_available[video_index] & video.joint_valid[indices]
        if "mask" in self.modalities:
            sample["mask_valid"] = np.full(len(indices), self.mask_available[video_index])
        return to_tensors(sample, self.max_depth_mm)

    def _skeleton_item(self, video_index, rng):
        skeleton = self.skeletons[video_index]
        if rng is not None and self.transform is not None:
            joints = self.transform(skeleton, self.num_frames, rng)
        else:
            joints = resample(skeleton, self.num_frames)
        return {"joints": torch.from_numpy(joints.astype(np.float32)),
                "label": torch.tensor(self.labels[video_index]),
                "video": torch.tensor(video_index, dtype=torch.int64)}

    def cache_key(self):
        """The settings cached frames depend on (cache.py), flow's parameters among them;
        max_depth_mm is not one: the cache holds depth in mm."""
        key = {"dataset": "fpha", "root": str(self.root.resolve()), "split": self.split,
               "size": self.size, "modalities": list(self.modalities),
               "crop_margin": self.crop_margin}
        if "flow" in self.modalities:
            key["farneback"] = flow.FARNEBACK
        return key

    def source_files(self):
        """Every file the frames are read from (cache.py's staleness check)."""
        files = [self.split_path]
        if (self.root / CAMERA_FILE).exists():
            files.append(self.root / CAMERA_FILE)
        for video in self.videos:
            files.append(video.skeleton_path)
            files.extend(video.frame_path(m, i) for m in self.streams
                         for i in range(video.num_frames))
        return files
