"""`handmt predict`: a trained checkpoint run over a whole video, written back as a video with the
predictions drawn on every frame, and optionally as JSON.

Model. The checkpoint's own config (`state["config"]`, dotlist overrides applied) builds the
model (`engine.checkpoint.load_trained`); the weights load with `weights_only=True`. It runs as
`deploy(modality, keep_auxiliary=True)` (models/base.py): in eval mode, reading the video's
modality alone (MTUT: the network of that modality, as the method tests it), with the auxiliary
MSD depth decoders kept, whose predicted depth the overlay draws; the other predictions are
those of `deploy()`, which only drops auxiliary heads (docs/design.md).

Input. A video has no hand annotation, so there is no hand crop as in the FPHA loader: every
frame's centred square (side = its shorter side) is resized to `data.size` (area averaging when
shrinking, as the datasets do) and converted like a dataset clip (transforms.to_tensors): RGB
normalized with ImageNet's mean and std; a depth network reads the video as 8-bit grey, value /
255, as the gesture datasets' depth videos (an FPHA depth network learned mm / max_depth_mm, a
scale such a video does not carry). A model trained on FPHA hand crops sees the hand smaller in
a whole frame than in training, so expect weaker predictions on such videos.

Windows. Clips of `window` consecutive frames (default `data.num_frames`) start every `stride`
frames (default window // 2), plus one that ends at the last frame, so every frame is covered.
A video shorter than one window is padded by repeating its last frame, with a warning. Each
frame shows the window whose centre is nearest to it (the earlier one on ties): class name (or
index) and probability, the predicted hand mask (`Prediction.mask`: probabilities resized
bilinearly from input pixels back to the centre square, tinted where >= 1/2), the predicted 2D
skeleton (`joints2d`, mapped from input pixels back to the frame) and the predicted depth
(`depth`) as an inset. A model without gesture logits (segmentation alone) draws no caption and
its windows carry no class.

The video is read twice, once for the network inputs and once to draw, so memory holds the small
network inputs and per-frame outputs (masks as 8-bit probabilities), never the full-size frames.
The output has the input's frame rate and size (mp4v stores even sizes only: an odd width or
height loses its last column or row).

JSON: checkpoint, epoch, video, frames, fps, width, height, window, stride, padded_frames,
modality, preprocessing, classes (names or null), config, windows (one per window: start, end
(exclusive) and, with a gesture head, label, name, prob, top5 [{label, name, prob}]) and, with a
pose head, joints2d (per frame, 21 x [x, y] frame pixels, from the window shown on that frame).
"""

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .config import ConfigError, apply_overrides, check_config
from .data.fpha import SPLIT_FILE, crop_affine, crop_and_resize, read_split
from .data.synthetic.motion import gesture_classes
from .data.transforms import to_tensors
from .engine.checkpoint import load_checkpoint, load_trained
from .viz import draw_caption, draw_inset, draw_mask, draw_skeleton

__all__ = ["predict"]

VIDEO_MODALITIES = ("rgb", "depth")
DEPTH_SCALE = 255.0  # 8-bit depth video -> [0, 1], as data/video.py
DEFAULT_FPS = 30.0  # for containers that report no frame rate
DEFAULT_SIZE = 224  # the datasets' default `size`


def inference_model(cfg, checkpoint, state, modality):
    """(deployed model, modality of its input clips; default rgb, else the model's first); see
    the module docstring."""
    model = load_trained(cfg, checkpoint, state)
    modality = modality or ("rgb" if "rgb" in model.modalities else model.modalities[0])
    try:
        deployed = model.deploy(modality, keep_auxiliary=True)
    except ValueError as err:
        raise ValueError(f"{checkpoint}: {err}") from None
    if modality not in VIDEO_MODALITIES:
        raise ValueError(f"{checkpoint}: a {modality} network cannot run on a video: handmt "
                         "predict reads colour (rgb) or 8-bit grey (depth) videos")
    return deployed, modality


def class_names(data, num_classes):
    """Class names when the config's data section gives them: an FPHA-layout `root`'s split file
    (action folder names) or the synthetic set's class table; None otherwise or when their number
    is not the model's."""
    if data.get("name") != "fpha":
        return None
    if data.get("root") is None:
        names = [g.name for g in gesture_classes((data.get("synthetic") or {}).get("classes", 45))]
    else:
        split = Path(data["root"]).expanduser() / SPLIT_FILE
        if not split.is_file():  # the checkpoint travelled without its dataset
            return None
        action = {}
        for sequence, label in (e for section in read_split(split).values() for e in section):
            action.setdefault(label, sequence.split("/")[1])
        names = [action.get(k, f"class_{k}") for k in range(max(action, default=-1) + 1)]
    return names if len(names) == num_classes else None


def centre_square(width, height):
    """(x0, y0, side) of the centred square of a width x height frame."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def read_inputs(path, size, gray):
    """Every frame of a video as network input pixels: (n, size, size, 3) uint8 RGB, or (n, size,
    size) grey; the crop (x0, y0, side); fps; (width, height)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: missing, or not a video OpenCV can open")
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames, crop, frame_size = [], None, None
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if crop is None:
                frame_size = frame.shape[1], frame.shape[0]
                crop = centre_square(*frame_size)
            # as the FPHA loader crops colour frames
            image = crop_and_resize(frame, crop, size,
                                    cv2.INTER_AREA if crop[2] > size else cv2.INTER_LINEAR)
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if gray else cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"{path}: OpenCV opens it but decodes no frame")
    return np.stack(frames), crop, fps if fps > 0 else DEFAULT_FPS, frame_size


def window_starts(num_frames, window, stride):
    """First frames of the windows: every `stride` frames, plus one ending at the last frame."""
    last = max(num_frames - window, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def predict(checkpoint, video, out, *, json_path=None, window=None, stride=None, overrides=(),
            modality=None, device=None, progress=True):
    """Run `checkpoint` over `video`, write the annotated MP4 to `out` (and the JSON to
    `json_path`); return the JSON record. See the module docstring."""
    state = load_checkpoint(checkpoint)
    cfg = checkpoint_config(checkpoint, state, overrides)
    if Path(out).resolve() == Path(video).resolve():
        raise ValueError(f"{out}: the output would overwrite the input video")
    model, modality = inference_model(cfg, checkpoint, state, modality)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    size, window, stride = window_settings(cfg["data"], window, stride)
    inputs, crop, fps, (width, height) = read_inputs(video, size, gray=modality == "depth")
    num_frames = len(inputs)
    inputs, padded = padded_inputs(inputs, window, video)
    starts = window_starts(num_frames, window, stride)
    shown = shown_windows(num_frames, starts, window)
    probs, frames = run_windows(model, modality, inputs, starts, window, shown,
                                to_frame=np.linalg.inv(crop_affine(crop, size)), device=device,
                                progress=progress)
    names = class_names(cfg["data"], len(probs[0])) if probs else None
    windows = window_records(starts, window, num_frames, probs, names)
    write_overlay(video, out, fps, (width, height), num_frames, crop, [
        (f"{windows[w]['name']} {windows[w]['prob']:.2f}" if probs else None,
         *(frames[key][i] if key in frames else None for key in ("mask", "joints2d", "depth")))
        for i, w in enumerate(shown)], progress)

    record = {"checkpoint": str(checkpoint), "epoch": state.get("epoch"), "video": str(video),
              "frames": num_frames, "fps": fps, "width": width, "height": height,
              "window": window, "stride": stride, "padded_frames": padded, "modality": modality,
              "preprocessing": f"centre {crop[2]} x {crop[2]} square of the whole frame at "
                               f"({crop[0]}, {crop[1]}) resized to {size} x {size}, no hand crop",
              "classes": names, "config": cfg, "windows": windows}
    if "joints2d" in frames:
        record["joints2d"] = np.round(frames["joints2d"], 2).tolist()
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(record, indent=1, default=str))
    return record


def checkpoint_config(checkpoint, state, overrides):
    """The config stored in the checkpoint's `state`, `overrides` applied, checked."""
    if "config" not in state:
        raise ValueError(f"{checkpoint}: no 'config' entry, so the model cannot be built "
                         f"(handmt train writes it); keys: {', '.join(state)}")
    cfg = apply_overrides(state["config"], overrides)
    try:
        check_config(cfg)
    except ConfigError as err:
        raise ConfigError(err.path, f"{err.message} (config of {checkpoint})") from None
    return cfg


def window_settings(data, window, stride):
    """(input size, window, stride) from the config's `data` section and the given ones."""
    window = data.get("num_frames", 8) if window is None else window
    stride = max(1, window // 2) if stride is None else stride
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    return data.get("size", DEFAULT_SIZE), window, stride


def padded_inputs(inputs, window, video):
    """`inputs` padded to one `window` by repeating the last frame (with a warning), and the
    number of frames added."""
    padded = max(0, window - len(inputs))
    if padded:
        warnings.warn(f"{video}: {len(inputs)} frames, fewer than one window of {window}: "
                      f"padded by repeating the last frame {padded} times", stacklevel=3)
        inputs = np.concatenate([inputs, inputs[-1:].repeat(padded, axis=0)])
    return inputs, padded


def shown_windows(num_frames, starts, window):
    """The window each frame shows: the one whose centre is nearest (the earlier one on ties)."""
    centres = np.array(starts) + window / 2
    return [int(np.abs(centres - (i + 0.5)).argmin()) for i in range(num_frames)]


def run_windows(model, modality, inputs, starts, window, shown, to_frame, device, progress):
    """The model over every window: the softmax probabilities of each window (empty without
    gesture logits) and per-frame arrays from the window each frame shows (`shown`), "mask"
    (8-bit probabilities), "joints2d" (frame pixels, through the affine `to_frame`) and "depth",
    for those the model predicts."""
    num_frames, probs, frames = len(shown), [], {}

    def put(key, values, here, dtype):
        if key not in frames:
            frames[key] = np.zeros((num_frames, *values.shape[1:]), dtype)
        frames[key][here] = values
    with torch.inference_mode():
        for w, start in enumerate(tqdm(starts, desc="windows", disable=not progress)):
            clip = to_tensors({modality: inputs[start:start + window]}, DEPTH_SCALE)[modality]
            prediction = model.predict({modality: clip[None].to(device)})
            here = np.array([i for i in range(start, min(start + window, num_frames))
                             if shown[i] == w], dtype=np.int64)
            if prediction.logits is not None:
                probs.append(prediction.logits[0].float().softmax(-1).cpu().numpy())
            if prediction.mask is not None:
                mask = prediction.mask[0].float().cpu().numpy()[here - start]
                put("mask", np.rint(255 * mask), here, np.uint8)
            if prediction.joints2d is not None:
                points = prediction.joints2d[0].double().cpu().numpy()[here - start]
                put("joints2d", points @ to_frame[:2, :2].T + to_frame[:2, 2], here, np.float64)
            if prediction.depth is not None:
                depth = prediction.depth[0].float().cpu().numpy()[here - start]
                put("depth", depth, here, np.float16)
    return probs, frames


def window_records(starts, window, num_frames, probs, names):
    """The JSON's windows: start, end and, with probabilities, label, name, prob and top5."""
    def name(label):
        return names[label] if names else f"class_{label}"

    windows = [{"start": start, "end": min(start + window, num_frames)} for start in starts]
    for record, p in zip(windows, probs, strict=True) if probs else ():
        top = np.argsort(-p)[:5]
        record.update(label=int(top[0]), name=name(top[0]), prob=float(p[top[0]]),
                      top5=[{"label": int(k), "name": name(k), "prob": float(p[k])} for k in top])
    return windows


def frame_mask(mask, crop, frame_size):
    """8-bit mask probabilities (size, size) of the network input -> the (height, width) bool
    mask of the frame: resized bilinearly to the crop (x0, y0, side), >= 1/2, false outside."""
    x0, y0, side = crop
    full = np.zeros(frame_size[::-1], dtype=bool)
    full[y0:y0 + side, x0:x0 + side] = cv2.resize(mask, (side, side),
                                                  interpolation=cv2.INTER_LINEAR) >= 128
    return full


def write_overlay(video, out, fps, frame_size, num_frames, crop, overlays, progress):
    """Second pass over `video`: each frame with its (caption, mask, joints, depth; each may be
    None) drawn on, written to `out` as mp4v; masks are mapped to the frame through `crop`."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame_size)
    if not writer.isOpened():
        raise ValueError(f"{out}: OpenCV cannot write an mp4v video there")
    capture = cv2.VideoCapture(str(video))
    try:
        for caption, mask, joints, depth in tqdm(overlays, desc="frames", disable=not progress):
            ok, frame = capture.read()
            if not ok:
                raise ValueError(f"{video}: decoded {num_frames} frames on the first reading, "
                                 "fewer on the second")
            image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if mask is not None:
                image = draw_mask(image, frame_mask(mask, crop, frame_size))
            if joints is not None:
                image = draw_skeleton(image, joints)
            if depth is not None:
                image = draw_inset(image, depth)
            if caption is not None:
                image = draw_caption(image, caption)
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        capture.release()
        writer.release()
