"""Figures for reports (PCK curves, confusion matrices, line plots, training logs) and the skeleton,
mask, caption and inset overlays of `handmt predict` (docs/design.md, "Layout": viz.py).

Figures are built on `matplotlib.figure.Figure` rather than pyplot: no backend or display is
involved, nothing global stays open, and the Agg canvas writes the PNG. Every plotting function
takes the output path, writes the PNG through a temporary file so a reader never sees half of it,
and returns the path.
"""

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from handmt.hand import BONES, FINGER_CHAINS
from handmt.metrics.pose import curve_auc

DPI = 100
# One RGB colour per finger (thumb, index, middle, ring, pinky), from matplotlib's tab10.
FINGER_COLORS = ((214, 39, 40), (255, 127, 14), (44, 160, 44), (31, 119, 180), (148, 103, 189))
WRIST_COLOR = (255, 255, 255)
MASK_COLOR = (255, 0, 255)  # magenta: neither skin nor a finger's colour


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fig.savefig(partial, format="png", dpi=DPI)
    os.replace(partial, path)
    return path


def plot_pck_curves(curves, path, title=None):
    """3D PCK against the error threshold; curves maps a name to (thresholds mm, pck values)."""
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, (thresholds, pck) in curves.items():
        ax.plot(thresholds, pck, marker="o", markersize=3,
                label=f"{name} (AUC {curve_auc(thresholds, pck):.3f})")
    ax.set(xlabel="error threshold (mm)", ylabel="3D PCK", ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_confusion(cm, path, class_names=None, title=None):
    """Row-normalized confusion matrix (rows = true class), sized to stay readable at 45 classes."""
    cm = np.asarray(cm, dtype=np.float64)
    num_classes = len(cm)
    totals = cm.sum(axis=1, keepdims=True)
    rates = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    side = max(6.0, 0.25 * num_classes + 2)
    fig = Figure(figsize=(side, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    names = class_names if class_names is not None else [str(c) for c in range(num_classes)]
    ticks = np.arange(num_classes)
    ax.set_xticks(ticks, names, rotation=90, fontsize=7)
    ax.set_yticks(ticks, names, fontsize=7)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    if num_classes <= 15:  # numbers in the cells only where they fit
        for true, predicted in np.ndindex(rates.shape):
            ax.text(predicted, true, f"{rates[true, predicted]:.2f}", ha="center", va="center",
                    fontsize=7, color="white" if rates[true, predicted] > 0.5 else "black")
    return _save(fig, path)


def plot_curves(x, ys, path, xlabel, ylabel, title=None, errors=None):
    """Line plot with markers of each series in ys (name -> values over x); errors optionally maps
    a name to the half-height of its error bars (e.g. the std over seeds)."""
    errors = errors or {}
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, values in ys.items():
        ax.errorbar(x, values, yerr=errors.get(name), marker="o", capsize=3, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def draw_skeleton(image_rgb, joints2d, color=None):
    """A copy of the uint8 RGB image with the hand's bones and joints drawn at joints2d (21, 2)
    pixels; each finger gets its own colour unless one RGB `color` is given for all."""
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    points = np.round(np.asarray(joints2d, dtype=np.float64)).astype(int)
    thickness = max(1, round(min(image.shape[:2]) / 150))
    # A joint (and the bone ending at it) takes its finger's colour; the wrist is white.
    joint_colors = [WRIST_COLOR] * len(points)
    for finger, chain in enumerate(FINGER_CHAINS):
        for joint in chain:
            joint_colors[joint] = FINGER_COLORS[finger]
    if color is not None:
        joint_colors = [tuple(map(int, color))] * len(points)
    for parent, child in BONES:
        cv2.line(image, tuple(points[parent]), tuple(points[child]), joint_colors[child],
                 thickness, cv2.LINE_AA)
    for point, joint_color in zip(points, joint_colors, strict=True):
        cv2.circle(image, tuple(point), thickness + 1, joint_color, -1, cv2.LINE_AA)
    return image


def draw_mask(image_rgb, mask, color=MASK_COLOR, alpha=0.5):
    """A copy of the uint8 RGB image with the pixels where `mask` (H, W) bool is true blended
    with `color` (weight `alpha`), the others untouched."""
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    mask = np.asarray(mask, dtype=bool)
    tint = (1 - alpha) * image[mask] + alpha * np.asarray(color, dtype=np.float64)
    image[mask] = np.rint(tint).astype(np.uint8)
    return image


def draw_caption(image_rgb, text):
    """A copy of the uint8 RGB image with `text` in white on a black band at its top-left corner,
    the font scaled to the image and shrunk to fit its width."""
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    scale = max(0.3, min(image.shape[:2]) / 400)
    thickness = max(1, round(scale * 1.5))
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    if width > 0.95 * image.shape[1]:
        scale *= 0.95 * image.shape[1] / width
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                                    thickness)
    pad = max(2, round(4 * scale))
    cv2.rectangle(image, (0, 0), (width + 2 * pad, height + baseline + 2 * pad), (0, 0, 0), -1)
    cv2.putText(image, text, (pad, pad + height), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return image


def draw_inset(image_rgb, values, fraction=0.3):
    """A copy of the uint8 RGB image with `values` (h, w) in [0, 1] (clipped), colour-mapped
    (viridis), as an inset at its bottom-right corner (away from `draw_caption`), `fraction` of
    the shorter side tall and framed in white."""
    image = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    values = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0, 1)
    height = max(2, round(min(image.shape[:2]) * fraction))
    width = max(2, round(height * values.shape[1] / values.shape[0]))
    levels = cv2.resize(np.rint(values * 255).astype(np.uint8), (width, height),
                        interpolation=cv2.INTER_NEAREST)
    inset = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)
    inset[[0, -1], :] = inset[:, [0, -1]] = 255
    image[-height:, -width:] = inset
    return image


def _read_log(jsonl_path):
    records = []
    for line_number, line in enumerate(Path(jsonl_path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{jsonl_path}:{line_number}: not a JSON line ({err})") from err
    return records


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plot_training_log(jsonl_path, path):
    """One panel per numeric key of the trainer's JSON-lines log: step records ({"epoch", "step",
    "loss", ...}) against the step, epoch records ({"epoch", "val_top1", ...}, no "step") against
    the epoch. Keys missing from some records are plotted where present."""
    records = _read_log(jsonl_path)
    step_records = [r for r in records if _is_number(r.get("step"))]
    epoch_records = [r for r in records if "step" not in r and _is_number(r.get("epoch"))]
    # A step counter that restarts every epoch would zig-zag: then count the logged steps instead.
    steps = [r["step"] for r in step_records]
    step_axis = steps if steps == sorted(steps) else list(range(1, len(steps) + 1))
    panels = []  # (title, x label, xs, ys)
    for kind, group, axis in (("step", step_records, step_axis),
                              ("epoch", epoch_records, [r["epoch"] for r in epoch_records])):
        keys = sorted({k for r in group for k, v in r.items() if _is_number(v)} - {"epoch", "step"})
        for key in keys:
            xs, ys = zip(*[(x, r[key]) for x, r in zip(axis, group, strict=True)
                           if _is_number(r.get(key))], strict=True)
            panels.append((f"{key} (per {kind})", kind, xs, ys))
    if not panels:
        raise ValueError(f"{jsonl_path}: no numeric key to plot besides epoch/step")
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(4 * columns, 3 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (title, xlabel, xs, ys) in zip(axes[:len(panels)], panels, strict=True):
        ax.plot(xs, ys, marker="o", markersize=3)
        ax.set(title=title, xlabel=xlabel)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return _save(fig, path)
