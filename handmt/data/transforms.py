"""Clip augmentation and conversion to tensors: `ClipTransform`, `MultiScaleCornerCrop`,
`build_train_transform`, `multi_crop_transforms`, `to_tensors` (docs/design.md, "Data contract").

A clip is a dict of numpy arrays as base.ClipDataset reads it: `rgb` (T,H,W,3) uint8, `depth`
(T,H,W), `mask` (T,H,W) uint8 0/255, `flow` (T,H,W,2) float16 pixels (each when asked for) and,
when the dataset has pose, `joints3d` (T,21,3) colour-camera mm, `joints2d` (T,21,2) pixels and
`K` (3,3) with K @ joints3d = joints2d; other keys (flags) pass through. `ClipTransform` gives
every frame and target the same geometry (depth, mask, flow nearest-interpolated, colour changes
on rgb only) and folds the image's affine map into K; flow vectors follow its linear part.
"""

import cv2
import numpy as np
import torch
from albumentations import (
    ColorJitter,
    Compose,
    Crop,
    HorizontalFlip,
    KeypointParams,
    Resize,
)
from albumentations.augmentations.crops.transforms import BaseCrop
from einops import rearrange

from . import flow as optical_flow

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Colour augmentation of the MSD paper (section IV-B): brightness, contrast and saturation 0.8,
# hue 0.2, applied to a fraction of the clips.
JITTER = {"brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2}


class MultiScaleCornerCrop(BaseCrop):
    """TSN's multi-scale corner crop (MSD paper, section IV-B).

    Crop width and height are base * scales[i] and base * scales[j] with |i - j| <= 1 (base = the
    shorter image side), at one of five positions: the four corners or the centre.
    """

    def __init__(self, scales=(1, 7 / 8, 3 / 4, 2 / 3), p=1.0):
        super().__init__(p=p)
        self.scales = tuple(scales)

    def get_params_dependent_on_data(self, params, data):
        height, width = params["shape"][:2]
        base = min(height, width)
        sizes = [int(base * scale) for scale in self.scales]
        pairs = [(w, h) for i, w in enumerate(sizes) for j, h in enumerate(sizes)
                 if abs(i - j) <= 1]
        crop_w, crop_h = self.py_random.choice(pairs)
        x_min, y_min = self.py_random.choice([
            (0, 0), (width - crop_w, 0), (0, height - crop_h), (width - crop_w, height - crop_h),
            ((width - crop_w) // 2, (height - crop_h) // 2)])
        return {"crop_coords": (x_min, y_min, x_min + crop_w, y_min + crop_h)}


class ClipTransform:
    """Apply albumentations `transforms` identically to every frame and target of a clip.

    A horizontal flip mirrors the image; joints3d are mirrored with it (x -> -x) so that the
    camera keeps a positive focal length and K @ joints3d still lands on joints2d. Joint order is
    kept: hand.FLIP_MAP is the identity because FPHA annotates a single hand, whose joints keep
    their names in the mirror image.

    Note: albumentations moves keypoints by x * s under a resize while OpenCV maps pixel centres
    by (x + 0.5) * s - 0.5, so joints2d and K may sit up to 0.5 * |s - 1| px (0.25 px at the 2/3
    crop scale) from the image content; K and joints2d agree with each other exactly.
    """

    def __init__(self, transforms):
        self.pipeline = Compose(
            transforms, strict=True, mask_interpolation=cv2.INTER_NEAREST_EXACT,
            keypoint_params=KeypointParams(format="xy", remove_invisible=False,
                                           check_each_transform=False),
            additional_targets={"depth": "masks", "flow": "masks"})

    def __call__(self, clip, rng=None):
        """Transform `clip` (see the module docstring); `rng` (a numpy Generator) seeds the
        pipeline's random choices, so a DataLoader worker's draws do not repeat another's."""
        if rng is not None:
            self.pipeline.set_random_seed(int(rng.integers(2**32)))
        num_frames, height, width = _frame_shape(clip)
        pose = "K" in clip  # the data contract: pose keys are present when the dataset has pose
        reference = np.array([[0, 0], [width, 0], [0, height]], dtype=np.float32)
        joints2d = clip["joints2d"].reshape(-1, 2) if pose else np.zeros((0, 2), np.float32)
        keypoints = np.concatenate([joints2d, reference])
        targets = {"keypoints": keypoints}
        if "rgb" in clip:
            targets["images"] = clip["rgb"]
        else:  # albumentations reads the frame size from an image: give it a blank one
            targets["image"] = np.zeros((height, width, 3), np.uint8)
        if "mask" in clip:
            targets["masks"] = clip["mask"]
        if "depth" in clip:
            targets["depth"] = clip["depth"]
        if "flow" in clip:  # OpenCV resizes float32, not float16
            targets["flow"] = clip["flow"].astype(np.float32)
        out = self.pipeline(**targets)

        moved = out["keypoints"].astype(np.float64)
        p0, px, py = moved[-3:]
        affine = np.eye(3)
        affine[:2, 0] = (px - p0) / width
        affine[:2, 1] = (py - p0) / height
        affine[:2, 2] = p0
        mirror = np.diag([np.sign(np.linalg.det(affine[:2, :2])), 1.0, 1.0])
        result = dict(clip)
        if pose:
            result["joints2d"] = moved[:-3].reshape(num_frames, -1, 2).astype(np.float32)
            result["joints3d"] = (clip["joints3d"] @ mirror).astype(np.float32)
            result["K"] = (affine @ clip["K"] @ mirror).astype(np.float32)
        for key, target in (("rgb", "images"), ("mask", "masks"), ("depth", "depth")):
            if key in clip:
                result[key] = out[target]
        if "flow" in clip:
            # a displacement d becomes A d: scaled by a resize, x negated by a flip
            result["flow"] = (out["flow"] @ affine[:2, :2].T).astype(np.float32)
        return result


def _frame_shape(clip):
    for key in ("rgb", "depth", "mask", "flow"):
        if key in clip:
            return clip[key].shape[:3]
    raise ValueError(f"a clip needs one of rgb, depth, mask, flow; got keys {sorted(clip)}")


def build_train_transform(size: int,
                          scales: list[float] | tuple[float, ...] = (1, 7 / 8, 3 / 4, 2 / 3),
                          color_jitter: float = 0.4, flip: bool = False):
    """Training augmentation of the MSD paper (section IV-B): multi-scale corner crop resized to
    `size`, colour jitter on a `color_jitter` fraction of the clips, optional horizontal flip."""
    transforms = [MultiScaleCornerCrop(scales), Resize(size, size),
                  ColorJitter(**JITTER, p=color_jitter)]
    if flip:
        transforms.append(HorizontalFlip(p=0.5))
    return ClipTransform(transforms)


def multi_crop_transforms(size, crops):
    """Test-time crops of a `size` x `size` clip (MSD paper, section IV-B, "three-crop"): the
    frame resized to round(size * 8 / 7) and cut into size x size crops at the top-left corner,
    the centre and the bottom-right corner. One crop is the frame itself (no transform)."""
    if crops == 1:
        return [None]
    if crops != 3:
        raise ValueError(f"crops must be 1 or 3, got {crops}")
    big = round(size * 8 / 7)
    corners = (0, (big - size) // 2, big - size)
    return [ClipTransform([Resize(big, big), Crop(c, c, c + size, c + size)]) for c in corners]


def to_tensors(sample, max_depth_mm):
    """numpy sample -> the data contract's tensors: rgb normalized with ImageNet mean/std,
    depth = mm / max_depth_mm clipped to [0, 1], mask in {0, 1}, flow in [-1, 1]
    (flow.normalize); other keys as they are."""
    out = {}
    for key, value in sample.items():
        if key == "rgb":
            rgb = rearrange(torch.from_numpy(np.ascontiguousarray(value)), "t h w c -> t c h w")
            mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
            out[key] = (rgb.float() / 255 - mean) / std
        elif key == "depth":
            depth = np.clip(value.astype(np.float32) / max_depth_mm, 0.0, 1.0)
            out[key] = rearrange(torch.from_numpy(depth), "t h w -> t 1 h w")
        elif key == "mask":
            mask = torch.from_numpy(np.ascontiguousarray(value) > 127).float()
            out[key] = rearrange(mask, "t h w -> t 1 h w")
        elif key == "flow":
            out[key] = rearrange(torch.from_numpy(optical_flow.normalize(value)),
                                 "t h w c -> t c h w")
        else:
            out[key] = torch.as_tensor(np.asarray(value))
    return out
