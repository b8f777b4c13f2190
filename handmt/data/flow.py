"""Optical flow, the third modality of MTUT (section 4: NVGesture's flow "is calculated using the
method presented in [14]", Farneback's two-frame motion estimation), from the colour frames.

The flow of frame t is the dense displacement from source frame t to source frame t + 1 of the
video (not of the sampled clip), so that it depends on nothing but the frame and can be cached
per frame (cache.py); the last frame of a video repeats the flow into it (t - 1 -> t), a video of
one frame has zero flow. It is computed on the grey frames as the dataset stores them (after its
crop and resize), in pixels of those frames, and stored as float16 (0.016 px steps at 20 px,
well below Farneback's error; it halves the cache).

Clip augmentation (transforms.ClipTransform) moves the field with the image and maps each vector
through the linear part of the image's map: a resize by s scales the displacement by s, a
horizontal flip negates its x component. `normalize` then clips to +-BOUND pixels of the network
input and divides by BOUND: the flow input of the released I3D networks (deepmind/kinetics-i3d,
the networks MTUT starts from), "truncated to the range [-20, 20], then rescaled between -1 and
1". 20 px per frame at 224 px is a fast hand (a tenth of the frame per frame); faster motion
saturates instead of dominating.
"""

import cv2
import numpy as np

__all__ = ["BOUND", "FARNEBACK", "SOURCE", "colour_frames", "farneback", "flow_pairs",
           "normalize", "streams"]

SOURCE = "rgb"  # the recorded stream the flow is computed from
BOUND = 20.0  # px per frame that map to +-1
# OpenCV's reference settings (its samples): a 3-level pyramid halving each level, 15 px
# averaging windows, 3 iterations, degree-5 polynomial neighbourhoods with sigma 1.2.
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5,
             "poly_sigma": 1.2, "flags": 0}


def streams(modalities):
    """The recorded streams `modalities` are read from (flow comes from rgb), in order, once."""
    return tuple(dict.fromkeys(SOURCE if m == "flow" else m for m in modalities))


def farneback(first, second):
    """Flow (H,W,2) float32 in pixels from grey uint8 frame `first` to `second`: the content at
    (x, y) of `first` is at (x + u, y + v) of `second`."""
    return cv2.calcOpticalFlowFarneback(first, second, None, **FARNEBACK)


def flow_pairs(indices, num_frames):
    """(from, to) source frames of the flow of each frame in `indices` (see the module
    docstring)."""
    pairs = []
    for t in (int(i) for i in indices):
        pairs.append((t, t + 1) if t + 1 < num_frames else (max(t - 1, 0), t))
    return pairs


def colour_frames(read_rgb, indices, num_frames, modalities):
    """The colour modalities among `modalities` of frames `indices` of a video of `num_frames`
    frames: rgb (n,H,W,3) uint8 and flow (n,H,W,2) float16 pixels. `read_rgb(frames)` returns
    RGB frames (H,W,3) uint8 as the dataset stores them; each frame is read once."""
    if "flow" not in modalities:
        return {"rgb": np.stack(read_rgb(indices))} if "rgb" in modalities else {}
    pairs = flow_pairs(indices, num_frames)
    needed = sorted({int(i) for i in indices} | {f for pair in pairs for f in pair})
    rgb = dict(zip(needed, read_rgb(needed), strict=True))
    grey = {i: cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for i, image in rgb.items()}
    flows = {}
    for first, second in dict.fromkeys(pairs):  # a repeated frame is computed once
        flow = farneback(grey[first], grey[second]) if first != second else \
            np.zeros((*grey[first].shape, 2), np.float32)
        flows[first, second] = flow.astype(np.float16)
    frames = {"flow": np.stack([flows[pair] for pair in pairs])}
    if "rgb" in modalities:
        frames["rgb"] = np.stack([rgb[int(i)] for i in indices])
    return frames


def normalize(flow):
    """Flow in pixels (..., 2) -> float32 in [-1, 1]: clipped to +-BOUND, divided by BOUND."""
    return np.clip(np.asarray(flow, np.float32) / BOUND, -1.0, 1.0)
