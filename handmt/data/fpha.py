"""FPHA (First-Person Hand Action benchmark) read as distributed, and any dataset in its layout:
`FPHADataset` (a base.ClipDataset with pose and masks), `read_skeleton`, `read_split`, `Video`.

docs/design.md "FPHA as distributed" fixes the layout and its real-world defects (empty skeletons,
CRLF, stray files, frame counts that differ between sources). Every video gets one square crop,
resized to `size`: `crop: joints` (the default) the box of its colour-projected ground-truth
joints enlarged by `crop_margin` per side; `crop: frame` the centred square of the whole colour
frame, no ground truth used to find the hand; `crop: boxes` the box `crop_boxes` (a JSON file,
`write_crop_boxes`) gives the sequence, e.g. from a hand detector or a model's predicted hand
(benchmarks/predicted_crop.py). K = A @ color_K for that affine map A; depth is
registered to the crop and holds colour-camera z in mm; flow comes from the cropped colour
frames (flow.py). With `modalities: [joints]` the dataset is skeleton-only (no Video_files): an
item's `joints` is the normalised sequence (skeleton.py) resampled to `num_frames`, or cropped in
time and augmented by the `transform` (skeleton.SkeletonTransform) in training.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from ..atomic import atomic_write
from ..geometry import project
from ..hand import NUM_JOINTS
from .base import (
    ClipDataset,
    Listed,
    Sample,
    annotation_lines,
    gesture_label,
    register_dataset,
)
from .cache import digest
from .camera import CAMERA_FILE, FPHACamera
from .frames import BadFrame, Counted, FrameSource, decode_image
from .skeleton import normalize_skeleton, resample
from .transforms import multi_crop_transforms

__all__ = ["FPHACamera", "FPHADataset", "Video", "read_skeleton", "read_split"]

SPLIT_FILE = "data_split_action_recognition.txt"
NUM_CLASSES = 45  # FPHA's actions (the synthetic set's default too)
SPLIT_HEADERS = {"Training": "train", "Test": "test"}
# Folder and file name of frame i of each modality, in Video_files/<sequence>/.
CROPS = ("joints", "frame", "boxes")  # where each video's square crop comes from
FRAME_FILES = {"rgb": ("color", "color_{:04d}.jpeg"),
               "depth": ("depth", "depth_{:04d}.png"),
               "mask": ("mask", "mask_{:04d}.png")}


def read_skeleton(path):
    """skeleton.txt -> (F, 21, 3) joints in mm, depth-camera frame, FPHA joint order.

    Each line is a frame index then 21 x (x, y, z): 64 columns, frames consecutive from 0. CRLF
    line endings and blank lines are tolerated; an empty file has no frames.
    """
    lines = list(annotation_lines(path))
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
    `Subject_k/<action>/<seq> <label>`, the label 0-based or -1 for an unknown gesture. CRLF line
    endings and blank lines are tolerated.
    """
    sections, headers, current = {}, {}, None
    for line_number, line in annotation_lines(path):
        fields, where = line.split(), f"{path}:{line_number}"
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
        elif len(fields) != 2 or fields[0].count("/") != 2:
            raise ValueError(f"{where}: expected 'Subject_k/<action>/<seq> <label>', "
                             f"got {line.strip()!r}")
        else:
            current.append((fields[0], gesture_label(fields[1], where, first=0)))
    for split, (count, where) in headers.items():
        if len(sections[split]) != count:
            raise ValueError(f"{where}: the header announces {count} sequences, the section "
                             f"has {len(sections[split])}")
    return sections


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


def read_crop_boxes(path):
    """{sequence: (x0, y0, side)} of a crop-box file: a JSON object mapping each sequence name
    (as the split file lists it) to its square box [x0, y0, side] in colour pixels."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"data.crop_boxes: file {path} does not exist")
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"data.crop_boxes: {path} is not JSON ({err})") from err
    if not isinstance(entries, dict):
        raise ValueError(f"data.crop_boxes: {path} must hold an object {{sequence: [x0, y0, "
                         f"side]}}, got a {type(entries).__name__}")
    boxes = {}
    for name, box in entries.items():
        if (not isinstance(box, list) or len(box) != 3
                or not all(isinstance(v, int) for v in box) or box[2] < 1):
            raise ValueError(f"data.crop_boxes: {path}: {name}: expected [x0, y0, side], "
                             f"integers with side >= 1, got {box!r}")
        boxes[name] = tuple(box)
    return boxes


def write_crop_boxes(path, boxes):
    """Write {sequence: (x0, y0, side)} as a crop-box file (`read_crop_boxes`), atomically."""
    with atomic_write(Path(path)) as temp:
        temp.write_text(json.dumps({name: [int(v) for v in box]
                                    for name, box in sorted(boxes.items())}, indent=0))


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
class ListedSequence(Listed):
    """A sequence of the split file with its skeleton as read (F, 21, 3), depth-camera mm;
    None when it has no skeleton.txt."""

    skeleton: np.ndarray | None


@dataclass
class Video(Sample):
    """One usable sequence of the split ("Subject_1/open_juice_bottle/1"); `sources` holds its
    frame folders and its skeleton.txt (frames.Counted)."""

    joints: np.ndarray  # (num_frames, 21, 3) float32, colour-camera mm; 0 where unannotated
    joint_valid: np.ndarray  # (num_frames,) bool: the frame's joints are annotated
    crop: tuple | None  # (x0, y0, side): the square colour-image box of the network input
    K: np.ndarray | None  # (3, 3) intrinsics of the network input (None: skeleton-only)


@register_dataset("fpha")
class FPHADataset(ClipDataset):
    """Clips of FPHA-layout videos as the data contract's dicts (base.ClipDataset; docs/design.md).

    Test items: clips x crops per video, the crops `multi_crop_transforms`. Sequences whose
    sources disagree in frame count are cut to the common prefix; NaN skeleton values count as
    unannotated. `fold` k: cross-subject split, subject k of the sorted names tests, the others
    train. `max_depth_mm` maps depth to [0, 1]. With `mask` among the modalities an item also
    carries `mask_valid` (T,) bool.
    """

    MODALITIES = ("rgb", "depth", "flow", "mask", "joints")
    HAS_POSE = True
    LABELS = ("gesture", "pose")  # a gesture per video, 2D and 3D joints per frame

    @staticmethod
    def declared_classes(data):
        """(classes, the config key that sets them) for the `data` section, or None: the
        synthetic set has `data.synthetic.classes` (a count or a list of classes); a folder's
        classes are those its split file lists (NUM_CLASSES in FPHA itself, fewer in a subset),
        known once it is read."""
        if data.get("root") is not None:
            return None
        classes = (data.get("synthetic") or {}).get("classes", NUM_CLASSES)
        return (classes if isinstance(classes, int) else len(classes)), "data.synthetic.classes"

    def __init__(self, root: str, split: Literal["train", "test"] = "train",
                 num_frames: int = 8, size: int = 224,
                 modalities: list[str] | tuple[str, ...] = ("rgb", "depth"),
                 sampling: Literal["segments", "dense", "padded"] = "segments",
                 strict: bool = False, transform=None, clips: int = 1, crops: int = 1,
                 max_depth_mm: float = 1000.0, crop_margin: float = 0.25,
                 crop: Literal["joints", "frame", "boxes"] = "joints",
                 crop_boxes: str | None = None, cache_dir: str | None = None,
                 joint_norm: dict | None = None,
                 fold: int | None = None, dense_stride: int = 2,
                 missing_pose: Literal["skip", "keep"] = "skip"):
        self.skeleton_only = "joints" in modalities
        if self.skeleton_only and (len(modalities) > 1 or cache_dir is not None
                                   or clips * crops > 1):
            raise ValueError("the joints modality is read alone, held in memory (no cache) and "
                             "tested on whole sequences (one clip, one crop); got modalities "
                             f"{list(modalities)}, cache {cache_dir is not None}, clips {clips}, "
                             f"crops {crops}")
        if missing_pose not in ("skip", "keep"):
            raise ValueError(f"missing_pose must be 'skip' or 'keep', got {missing_pose!r}")
        # skeleton-only data has nothing to read without a skeleton
        self.keep_without_pose = missing_pose == "keep" and not self.skeleton_only
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
        if (crop == "boxes") != (crop_boxes is not None):
            raise ValueError("data.crop_boxes: give a crop-box file with data.crop: boxes, and "
                             f"only then (crop {crop!r}, crop_boxes {crop_boxes!r})")
        self.crop_margin, self.crop, self.fold = crop_margin, crop, fold
        self.crop_boxes = read_crop_boxes(crop_boxes) if crop_boxes is not None else None
        self.crop_boxes_path = crop_boxes
        self.camera = FPHACamera.for_dataset(root)
        super().__init__(root, split, num_frames=num_frames, size=size, modalities=modalities,
                         sampling=sampling, dense_stride=dense_stride, strict=strict,
                         transform=transform, clips=clips, crops=crops, cache_dir=cache_dir,
                         depth_scale=max_depth_mm)
        self.pose_available = np.array([video.joint_valid.any() for video in self.videos])
        self.test_crops = multi_crop_transforms(size, self.crops)
        # skeleton-only: each video's annotated frames, normalised once
        self.skeletons = [normalize_skeleton(video.joints[video.joint_valid], **(joint_norm or {}))
                          for video in self.videos] if self.skeleton_only else None

    def list_samples(self):
        """The split file's sequences of `split` (or of `fold`); sets `num_classes` and
        `classes` (action names) from every section."""
        split_path = self.root / SPLIT_FILE
        sections = read_split(split_path)
        if self.split not in sections:
            raise ValueError(f"{split_path}: no section for split {self.split!r}")
        listed = [entry for section in sections.values() for entry in section]
        self.num_classes = max(label for _, label in listed) + 1
        action_of = {}
        for sequence, label in listed:
            action_of.setdefault(label, sequence.split("/")[1])
        self.classes = [action_of.get(k, f"class_{k}") for k in range(self.num_classes)]
        sequences = []
        for sequence, label in (self._fold(listed) if self.fold is not None else
                                sections[self.split]):
            folder = self.root / "Video_files" / sequence
            sources = {m: FrameSource(folder / FRAME_FILES[m][0], 0, FRAME_FILES[m][1])
                       for m in self.streams}
            path = self.root / "Hand_pose_annotation_v1" / sequence / "skeleton.txt"
            skeleton = read_skeleton(path) if path.is_file() else None
            count = None if skeleton is None else len(skeleton)
            if not count:  # no file, or one of FPHA's empty files
                skeleton = None
            if skeleton is not None or not self.keep_without_pose:
                sources["skeleton"] = Counted(path, count)
            sequences.append(ListedSequence(sequence, label, sources, skeleton))
        files = [split_path]
        if (self.root / CAMERA_FILE).exists():
            files.append(self.root / CAMERA_FILE)
        return str(split_path), files, sequences

    def _fold(self, listed):
        """Cross-subject fold `self.fold` of the `listed` (sequence, label) pairs of every
        section, the subjects sorted by name: the fold's subject is the test split, the others
        train."""
        subjects = sorted({sequence.split("/")[0] for sequence, _ in listed})
        if not 0 <= self.fold < len(subjects):
            raise ValueError(f"fold must be in 0..{len(subjects) - 1} (fold k tests on subject "
                             f"k of {', '.join(subjects)}), got {self.fold}")
        held_out = (self.split == "test")
        return [(sequence, label) for sequence, label in listed
                if (sequence.split("/")[0] == subjects[self.fold]) == held_out]

    def load_sample(self, listed, num_frames):
        """The Video of a listed sequence: its joints in the colour camera, their annotated
        frames, its crop and K. Kept without a skeleton (`missing_pose: keep`): no annotated
        frame, the crop the centred square of the colour image."""
        if listed.skeleton is None:
            skeleton = np.zeros((num_frames, NUM_JOINTS, 3))
            crop = self.crop_of(listed.name, np.zeros((0, 2)))
            K = crop_affine(crop, self.size) @ self.camera.color_K
            return (Video(listed.name, listed.label, listed.sources, num_frames,
                          skeleton.astype(np.float32), np.zeros(num_frames, dtype=bool), crop, K),
                    "no skeleton -> kept without pose (missing_pose: keep)")
        skeleton = listed.skeleton[:num_frames]
        finite = np.isfinite(skeleton).all(axis=(1, 2))
        joint_valid = finite & (skeleton != 0).any(axis=(1, 2))
        defect = None
        if not finite.all():
            defect = (f"{listed.sources['skeleton'].path}: {np.count_nonzero(~finite)} of "
                      f"{num_frames} frames hold NaN or infinite values -> treated as unannotated")
        joints = np.where(joint_valid[:, None, None], self.camera.to_color(skeleton), 0)
        if self.skeleton_only and not joint_valid.any():
            return None, "no annotated frame -> skipped"
        crop = K = None  # skeleton-only: no input image
        if not self.skeleton_only:
            crop = self.crop_of(listed.name,
                                project(joints[joint_valid], self.camera.color_K).reshape(-1, 2))
            K = crop_affine(crop, self.size) @ self.camera.color_K
        return Video(listed.name, listed.label, listed.sources, num_frames,
                     joints.astype(np.float32), joint_valid, crop, K), defect

    def crop_of(self, name, pixels):
        """The (x0, y0, side) colour-image crop of sequence `name` whose ground-truth joints
        project to `pixels` (N, 2), as `crop` says."""
        if self.crop == "boxes":
            if name not in self.crop_boxes:
                raise ValueError(f"data.crop_boxes: {self.crop_boxes_path} has no box for "
                                 f"sequence {name}")
            return self.crop_boxes[name]
        return crop_box(pixels if self.crop == "joints" else np.zeros((0, 2)),
                        self.camera.color_size, self.crop_margin)

    def read_pose(self, video_index, indices):
        video = self.videos[video_index]
        joints3d = video.joints[indices]
        valid = video.joint_valid[indices]
        joints2d = np.zeros((len(indices), NUM_JOINTS, 2), dtype=np.float32)
        joints2d[valid] = project(joints3d[valid], video.K)
        return {"joints3d": joints3d, "joints2d": joints2d, "K": video.K.astype(np.float32),
                "pose_valid": valid}

    def read_stream(self, video, stream, indices):
        """Frames cropped to the hand and resized: rgb RGB, depth registered to the crop
        (colour-camera mm), mask 0/255."""
        source = video.sources[stream]
        return [self._read_frame(video, stream, source.file(source.first + i)) for i in indices]

    def _read_frame(self, video, stream, path):
        if stream == "depth":
            depth = read_image(path, cv2.IMREAD_UNCHANGED, np.uint16, self.camera.depth_size)
            return register_depth(depth, self.camera, video.K, self.size)
        if stream == "mask":
            mask = read_image(path, cv2.IMREAD_GRAYSCALE, np.uint8, self.camera.color_size)
            return crop_and_resize(mask, video.crop, self.size, cv2.INTER_NEAREST_EXACT)
        image = read_image(path, cv2.IMREAD_COLOR, np.uint8, self.camera.color_size)
        # area averaging when shrinking avoids aliasing of full-size colour frames
        shrink = video.crop[2] > self.size
        image = crop_and_resize(image, video.crop, self.size,
                                cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def view(self, clip, crop):
        """Test crop `crop` (transforms.multi_crop_transforms; one crop: the clip as it is)."""
        transform = self.test_crops[crop]
        return clip if transform is None else transform(clip)

    def item(self, video_index, clip, crop, rng):
        if not self.skeleton_only:
            return super().item(video_index, clip, crop, rng)
        skeleton = self.skeletons[video_index]
        if rng is not None and self.transform is not None:
            joints = self.transform(skeleton, self.num_frames, rng)
        else:
            joints = resample(skeleton, self.num_frames)
        return {"joints": torch.from_numpy(joints.astype(np.float32)),
                "label": torch.tensor(self.labels[video_index]),
                "video": torch.tensor(video_index, dtype=torch.int64)}

    def cache_key(self):
        """The base's settings, the crop margin and the fold; max_depth_mm is not one: the
        cache holds depth in mm."""
        key = {**super().cache_key(), "crop_margin": self.crop_margin, "crop": self.crop,
               "fold": self.fold}
        if self.crop_boxes is not None:  # the boxes themselves, wherever the file is
            key["crop_boxes"] = digest(self.crop_boxes)
        return key
