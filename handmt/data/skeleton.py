"""The `joints` modality: a clip's 3D hand skeleton, normalised, resampled and augmented.

FPHA's authors normalise each frame so that the wrist is the origin and make bone lengths equal
across subjects, optionally rotating the hand into a common frame (Garcia-Hernando et al.,
CVPR 2018, section 5.1). `normalize_skeleton` does that; `resample` turns a sequence of any
length into `num_frames` by linear interpolation; `SkeletonTransform` is the training
augmentation (temporal crop, 3D rotation, scale, joint noise, mirroring). The measured choices:
docs/collaborative.md, "Real skeletons".
"""

from typing import Literal

import numpy as np
from scipy.spatial.transform import Rotation

from ..hand import BONE_LENGTHS_MM, BONES, PALM, WRIST

# Normalised joints are in units of UNIT_MM millimetres, so a hand spans about 2 units.
UNIT_MM = 100.0


def resample(joints, num_frames, start=0.0, end=1.0):
    """(F, 21, 3) -> (num_frames, 21, 3): the sequence between fractions `start` and `end` of its
    duration, linearly interpolated at `num_frames` evenly spaced times (both ends included)."""
    position = np.linspace(start, end, num_frames) * (len(joints) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(joints) - 1)
    weight = (position - low)[:, None, None]
    return joints[low] * (1 - weight) + joints[high] * weight


def retarget(joints, lengths=BONE_LENGTHS_MM):
    """Joints (..., 21, 3) with every bone rescaled to `lengths` (20, `hand.BONES` order) and its
    direction kept: children are placed from the wrist outward, so the pose stays and the
    subject's hand size goes. A zero-length bone keeps length zero."""
    out = np.zeros_like(joints)
    out[..., WRIST, :] = joints[..., WRIST, :]
    for (parent, child), length in zip(BONES, lengths, strict=True):  # parents come first
        bone = joints[..., child, :] - joints[..., parent, :]
        norm = np.linalg.norm(bone, axis=-1, keepdims=True)
        out[..., child, :] = out[..., parent, :] + length * bone / np.maximum(norm, 1e-9)
    return out


def palm_rotation(joints):
    """The rotation (3, 3) whose rows are the palm's axes in the mean frame of (F, 21, 3) joints:
    y from the wrist to the middle MCP, z the palm normal (index MCP x pinky MCP side), x = y x z.
    Applied as joints @ R.T it puts the hand in that canonical frame."""
    mean = joints.mean(axis=0)
    y = mean[PALM[3]] - mean[WRIST]
    across = mean[PALM[2]] - mean[PALM[5]]
    z = np.cross(across, y)
    x = np.cross(y, z)
    axes = np.stack([x, y, z])
    return axes / np.maximum(np.linalg.norm(axes, axis=1, keepdims=True), 1e-9)


CENTERS = ("frame", "sequence", "none")


def normalize_skeleton(joints, center: Literal[CENTERS] = "frame",
                       bones: Literal["template", "scale", "none"] = "template",
                       align: bool = False):
    """(F, 21, 3) joints in mm -> normalised joints in units of UNIT_MM.

    `center`: "frame" puts every frame's wrist at the origin (the authors' normalisation: the hand's
    own travel is gone), "sequence" the wrist's mean over the sequence (the travel stays), "none"
    keeps camera coordinates. `bones`: "template" rescales every bone to the
    canonical adult hand (`hand.BONE_LENGTHS_MM`), "scale" divides the sequence by its mean bone
    length relative to the template's (one factor, proportions kept), "none" keeps millimetres.
    `align`: rotate the sequence (one rotation, so the hand's own turning stays) into the palm
    frame of its mean pose (`palm_rotation`).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if bones == "template":
        joints = retarget(joints)
    elif bones == "scale":
        parents, children = zip(*BONES, strict=True)
        lengths = np.linalg.norm(joints[:, children] - joints[:, parents], axis=-1)
        joints = joints * (BONE_LENGTHS_MM.mean() / max(lengths.mean(), 1e-9))
    if center not in CENTERS:
        raise ValueError(f"center must be one of {', '.join(CENTERS)}, got {center!r}")
    if center == "frame":
        joints = joints - joints[:, WRIST:WRIST + 1]
    elif center == "sequence":
        joints = joints - joints[:, WRIST].mean(axis=0)
    if align:
        joints = (joints - joints[:, WRIST:WRIST + 1].mean(axis=0)) @ palm_rotation(joints).T
    return joints / UNIT_MM


class SkeletonTransform:
    """Training augmentation: a normalised sequence (F, 21, 3), the clip length and a numpy
    Generator -> a clip (num_frames, 21, 3).

    A random temporal window covering `min_duration`..1 of the sequence, resampled to
    `num_frames` (crop and rescale in time); a rotation by a random axis-angle of up to
    `rotation` degrees per axis; one scale factor in `scale`; Gaussian noise of `noise_mm` per
    coordinate; a mirror (x -> -x, a left hand) with probability `mirror`.
    """

    def __init__(self, min_duration: float = 0.8, rotation: float = 15.0,
                 scale: tuple[float, float] = (0.9, 1.1), noise_mm: float = 1.0,
                 mirror: float = 0.0):
        if not 0 < min_duration <= 1:
            raise ValueError(f"min_duration must be in (0, 1], got {min_duration}")
        self.min_duration = min_duration
        self.rotation, self.scale, self.noise, self.mirror = rotation, scale, noise_mm, mirror

    def __call__(self, joints, num_frames, rng):
        duration = rng.uniform(self.min_duration, 1.0)
        start = rng.uniform(0.0, 1.0 - duration)
        clip = resample(joints, num_frames, start, start + duration)
        rotation = Rotation.from_rotvec(np.radians(rng.uniform(-1, 1, 3) * self.rotation))
        clip = clip @ rotation.as_matrix().T * rng.uniform(*self.scale)
        clip = clip + rng.normal(0.0, self.noise / UNIT_MM, clip.shape)
        if rng.random() < self.mirror:
            clip = clip * np.array([-1.0, 1.0, 1.0])
        return clip
