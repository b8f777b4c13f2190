"""`GestureDataset`: the base.ClipDataset of the gesture datasets without pose (EgoGesture,
NVGesture, IsoGD, VIVA), whose frames come from OpenCV videos or numbered images
(frames.FrameSource). A subclass is registered with `base.register_dataset`, sets NUM_CLASSES
(and SPLITS where it has no val split) and lists its samples.

Items: `rgb`, `depth`, `flow` (as asked; flow from rgb, flow.py), `label`, `video` and
`pose_valid`, all False; no joints or K (docs/design.md, "Data contract").

Geometry (MSD paper, section IV-B): frames are resized to a short side of `size` at the datasets'
4:3 aspect (stored size x round(size * 4 / 3)). Training: `transform`, or the centre square.
Test: `crops` 1 is the centre size x size square, 3 are the left, centre and right squares
along the long side (the paper's three-crop of the full short side, at the training
resolution). Depth is 8-bit as distributed: one grey channel, value / 255.
"""

from typing import Literal

import cv2

from .base import ClipDataset

__all__ = ["GestureDataset"]

ASPECT = 4 / 3  # width / height of EgoGesture, NVGesture, IsoGD and (assumed) VIVA frames
DEPTH_SCALE = 255.0  # 8-bit depth -> [0, 1]


class GestureDataset(ClipDataset):
    """Clips of gesture samples as the data contract's dicts (module docstring; base.py); `split`
    one of SPLITS."""

    NUM_CLASSES = 0
    SPLITS = ("train", "val", "test")
    MODALITIES = ("rgb", "depth", "flow")
    LABELS = ("gesture",)  # no joint labels

    @classmethod
    def declared_classes(cls, data):
        """(classes, the config key that sets them): the dataset's NUM_CLASSES."""
        return cls.NUM_CLASSES, f"data.name {cls.NAME!r}"

    def __init__(self, root: str, split: str = "train", num_frames: int = 8, size: int = 224,
                 modalities: list[str] | tuple[str, ...] = ("rgb", "depth"),
                 sampling: Literal["segments", "dense", "padded"] = "segments",
                 strict: bool = False, transform=None, clips: int = 1, crops: int = 1,
                 dense_stride: int = 1, cache_dir: str | None = None):
        self.frame_shape = (size, round(size * ASPECT))  # (height, width) of stored frames
        self.num_classes = self.NUM_CLASSES
        self.classes = [str(k + 1) for k in range(self.NUM_CLASSES)]  # the files' 1-based labels
        super().__init__(root, split, num_frames=num_frames, size=size, modalities=modalities,
                         sampling=sampling, dense_stride=dense_stride, strict=strict,
                         transform=transform, clips=clips, crops=crops, cache_dir=cache_dir,
                         depth_scale=DEPTH_SCALE)

    def read_stream(self, sample, stream, indices):
        """Frames of one stream resized to `frame_shape`: RGB, or grey for depth."""
        height, width = self.frame_shape
        gray = stream == "depth"
        resized = []
        for image in sample.sources[stream].read(
                indices, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR):
            # area averaging when shrinking avoids aliasing
            shrink = image.shape[0] > height
            image = cv2.resize(image, (width, height),
                               interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            resized.append(image if gray else cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return resized

    def view(self, clip, crop):
        """Square `size` crop number `crop` of `self.crops` along the long side (centre: 1 of 3
        or 0 of 1)."""
        height, width = clip[self.modalities[0]].shape[1:3]
        side = self.size
        long = max(height, width)
        offset = (0, (long - side) // 2, long - side)[crop] if self.crops == 3 else \
            (long - side) // 2
        y, x = (0, offset) if width >= height else (offset, 0)
        return {k: v[:, y:y + side, x:x + side] if k in self.MODALITIES else v
                for k, v in clip.items()}
