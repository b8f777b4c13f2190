"""Look at the synthetic FPHA-format data: a few videos of different classes and subjects over
time, as colour with the projected skeleton, the square hand crop the loader cuts, depth and mask.

    python benchmarks/show_synthetic.py [--root DIR] [--out benchmarks/results/synthetic_frames.png]

Without --root it generates a small set (12 classes, 3 subjects, 16 frames) into a temporary
folder. Any dataset in the FPHA layout can be shown (masks are drawn when present).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handmt.data.camera import FPHACamera  # noqa: E402
from handmt.data.fpha import crop_box, read_skeleton, read_split  # noqa: E402
from handmt.data.synthetic import generate_fpha  # noqa: E402
from handmt.hand import BONES, FINGER_CHAINS  # noqa: E402

FINGER_COLOURS = ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple")
BONE_COLOURS = [FINGER_COLOURS[next(f for f, chain in enumerate(FINGER_CHAINS) if child in chain)]
                for _, child in BONES]


def pick_videos(root, count):
    """`count` sequences of evenly spaced labels, cycling through the subjects."""
    split = read_split(root / "data_split_action_recognition.txt")
    by_label = {}
    for sequence, label in sorted(split["train"] + split["test"]):
        by_label.setdefault(label, []).append(sequence)
    labels = sorted(by_label)
    chosen = [labels[i] for i in np.linspace(0, len(labels) - 1, count).round().astype(int)]
    return [by_label[label][i % len(by_label[label])] for i, label in enumerate(chosen)]


def show(root, out, videos=3, times=4):
    root = Path(root)
    camera = FPHACamera.for_dataset(root)
    rows = ("colour + skeleton", "hand crop", "depth (mm)", "mask")
    figure, axes = plt.subplots(len(rows) * videos, times, figsize=(2.2 * times, 1.5 * len(rows)
                                                                     * videos), squeeze=False)
    for v, sequence in enumerate(pick_videos(root, videos)):
        joints = read_skeleton(root / "Hand_pose_annotation_v1" / sequence / "skeleton.txt")
        uv = camera.project_color(joints)
        x0, y0, side = crop_box(uv.reshape(-1, 2), camera.color_size, margin=0.1)
        frames_dir = root / "Video_files" / sequence
        for t, frame in enumerate(np.linspace(0, len(joints) - 1, times).round().astype(int)):
            color = cv2.imread(str(frames_dir / "color" / f"color_{frame:04d}.jpeg"))[..., ::-1]
            depth = cv2.imread(str(frames_dir / "depth" / f"depth_{frame:04d}.png"),
                               cv2.IMREAD_UNCHANGED)
            mask_path = frames_dir / "mask" / f"mask_{frame:04d}.png"
            panels = axes[len(rows) * v:len(rows) * (v + 1), t]
            panels[0].imshow(color)
            for (parent, child), colour in zip(BONES, BONE_COLOURS, strict=True):
                panels[0].plot(uv[frame, [parent, child], 0], uv[frame, [parent, child], 1],
                               color=colour, linewidth=0.8)
            panels[0].set_title(f"{sequence} #{frame}" if t == 0 else f"#{frame}", fontsize=6)
            shift = np.float32([[1, 0, -x0], [0, 1, -y0]])
            panels[1].imshow(cv2.warpAffine(np.ascontiguousarray(color), shift, (side, side)))
            panels[2].imshow(np.ma.masked_equal(depth, 0), cmap="turbo", vmin=250, vmax=1200)
            panels[2].set_facecolor("black")
            if mask_path.exists():
                panels[3].imshow(cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE), cmap="gray")
    for row, ax in enumerate(axes[:, 0]):
        ax.set_ylabel(rows[row % len(rows)], fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout(pad=0.3)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="an FPHA-layout dataset (default: generate a small one)")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/synthetic_frames.png"))
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="generator seed (without --root)")
    args = parser.parse_args()
    if args.root:
        print(show(args.root, args.out, args.videos))
        return
    with tempfile.TemporaryDirectory() as folder:
        root = generate_fpha(Path(folder) / "fpha", classes=12, subjects=3, seqs=1, frames=16,
                             seed=args.seed)
        print(show(root, args.out, args.videos))


if __name__ == "__main__":
    main()
