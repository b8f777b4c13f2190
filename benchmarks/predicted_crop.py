"""TSN on hand crops that a model predicts, not the ground truth: the fpha suite's TSN row
crops every video around its ground-truth joints, and its whole-frame row around nothing.

    python benchmarks/predicted_crop.py [--seeds N] [--size PX] [--out DIR]

1. A hand localiser: the fpha suite's "segmentation alone" row (a ResNet-18 with the hand
   segmentation head) trained on whole frames (`data.crop: frame`) at --size pixels, on the
   suite's synthetic set (run.py's row_config: the same videos and schedule).
2. Its masks on one unaugmented clip of every training and test video (4 frames on run.py's
   synthetic set) -> the box of the pixels it puts above 1/2, mapped back to
   colour pixels and enlarged by `data.crop_margin` like the ground-truth joints' box; a video
   with no such pixel keeps the whole frame. The boxes go to <out>/boxes.json (a crop-box file,
   handmt.data.fpha.write_crop_boxes), scored by their IoU with the ground-truth joints' box.
3. The suite's TSN row trained and tested on those crops (`data.crop: boxes`), --seeds seeds.

Writes <out>/results.md and results.json (default benchmarks/results/fpha-predicted-crop) with
the TSN rows of the suite's own results (benchmarks/results/fpha/results.json: the ground-truth
crop and the whole frame) beside it.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou as box_iou_xyxy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from run import row_config, suite_rows  # noqa: E402

from handmt.data import build_dataset  # noqa: E402
from handmt.data.fpha import crop_affine, crop_box, write_crop_boxes  # noqa: E402
from handmt.engine.checkpoint import load_trained  # noqa: E402
from handmt.engine.evaluate import evaluate  # noqa: E402
from handmt.engine.trainer import CHECKPOINT, train  # noqa: E402
from handmt.geometry import project  # noqa: E402

LOCALISER, TSN = "segmentation alone", "TSN"
SUITE_RESULTS = REPO / "benchmarks" / "results" / "fpha" / "results.json"
SUITE_ROWS = ("TSN", "TSN, whole frame (no hand crop)")


def config(name, seed, overrides):
    """The fpha suite's row `name` on its synthetic set (run.py's row_config), with `overrides`."""
    file, row = next((file, row) for file, row in suite_rows("fpha") if row.name == name)
    args = argparse.Namespace(suite="fpha", root=None, quick=False, set=overrides)
    return row_config(file, row, seed, None, args)


def box_iou(a, b):
    """IoU of two square boxes (x0, y0, side), by torchvision's box_iou."""
    corners = torch.tensor([[x0, y0, x0 + side, y0 + side] for x0, y0, side in (a, b)],
                           dtype=torch.float64)
    return box_iou_xyxy(corners[:1], corners[1:]).item()


def predicted_boxes(cfg, model):
    """{sequence: (x0, y0, side)} from `model`'s masks on one clip of every video of both splits
    (unaugmented), and per split {sequence: IoU with the ground-truth joints' box}."""
    boxes, ious = {}, {"train": {}, "test": {}}
    torch.manual_seed(0)  # the training view's frame sampling
    for split in ("train", "test"):
        dataset = build_dataset({**cfg["data"], "augment": None, "withhold": None}, split)
        assert len(dataset) == len(dataset.videos), "one clip per video"
        camera, margin = dataset.camera, dataset.crop_margin
        for index, video in enumerate(dataset.videos):
            clip = dataset[index]
            with torch.no_grad():
                mask = model.predict({k: v[None] for k, v in clip.items()
                                      if torch.is_tensor(v)}).mask[0]
            _, ys, xs = np.nonzero(mask.numpy() > 0.5)  # over the clip's frames
            to_colour = np.linalg.inv(crop_affine(video.crop, dataset.size))
            pixels = np.stack([xs, ys, np.ones_like(xs)], axis=1) @ to_colour[:2].T
            boxes[video.name] = crop_box(pixels, camera.color_size, margin)
            truth = project(video.joints[video.joint_valid], camera.color_K).reshape(-1, 2)
            ious[split][video.name] = box_iou(boxes[video.name],
                                              crop_box(truth, camera.color_size, margin))
    return boxes, ious


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=64, help="the localiser's input side")
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "fpha-predicted-crop")
    args = parser.parse_args()
    started = time.time()

    localiser_cfg = config(LOCALISER, 0, ["data.crop=frame", f"data.size={args.size}"])
    run_dir = args.out / "runs" / "localiser"
    train(localiser_cfg, run_dir, overwrite=True, val_set=False, progress=False)
    localiser = load_trained(localiser_cfg, run_dir / CHECKPOINT)
    boxes, ious = predicted_boxes(localiser_cfg, localiser.eval())
    boxes_file = args.out / "boxes.json"
    write_crop_boxes(boxes_file, boxes)
    test_ious = list(ious["test"].values())
    print(f"localiser boxes: IoU with the ground-truth joints' box, test videos: mean "
          f"{statistics.mean(test_ious):.3f}, median {statistics.median(test_ious):.3f}",
          flush=True)

    top1 = []
    for seed in range(args.seeds):
        cfg = config(TSN, seed, ["data.crop=boxes", f"data.crop_boxes={boxes_file}"])
        run_dir = args.out / "runs" / f"tsn_seed{seed}"
        train(cfg, run_dir, overwrite=True, val_set=False, progress=False)
        metrics = evaluate(load_trained(cfg, run_dir / CHECKPOINT),
                           build_dataset(cfg["data"], "test"), 16, progress=False)
        top1.append(metrics["top1"])
        print(f"TSN on the predicted crops, seed {seed}: top-1 {100 * top1[-1]:.1f} %", flush=True)

    suite = {row["method"]: row for row in json.loads(SUITE_RESULTS.read_text())["rows"]}
    rows = [{"method": f"TSN, {crop}", "top1": suite[name]["top1"], "source": name}
            for name, crop in zip(SUITE_ROWS, ("ground-truth joints' box", "whole frame"),
                                  strict=True)]
    rows.append({"method": "TSN, box of the localiser's mask", "top1": top1, "source": None})

    def cell(values):
        mean = 100 * statistics.mean(values)
        return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 \
            else f"{mean:.1f}"

    thresholds = (0.3, 0.5, 0.7)
    lines = [
        "# TSN on predicted hand crops", "",
        f"Command: `python benchmarks/predicted_crop.py --seeds {args.seeds} --size {args.size}`"
        f" ({time.time() - started:.0f} s on this machine). The fpha suite's synthetic set "
        "(run.py, 10 classes, chance 10 %), 300 test videos.", "",
        f"Localiser: the suite's \"segmentation alone\" row trained on whole frames at "
        f"{args.size} px; each video's crop is the box of its mask pixels above 1/2 over the "
        "video's 4 sampled frames, enlarged by 25 % per side as the ground-truth box is. Its "
        f"boxes on the {len(test_ious)} test videos against the ground-truth joints' box: IoU "
        f"mean {statistics.mean(test_ious):.3f}, median {statistics.median(test_ious):.3f}; "
        + ", ".join(f"{100 * np.mean(np.array(test_ious) >= t):.0f} % at IoU >= {t}"
                    for t in thresholds) + ".", "",
        "| method | top-1 (%) | runs | source |", "|---|---|---|---|"]
    lines += [f"| {row['method']} | {cell(row['top1'])} | {len(row['top1'])} | "
              + (f"benchmarks/results/fpha/results.json, row \"{row['source']}\""
                 if row["source"] else "this run") + " |" for row in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    (args.out / "results.json").write_text(json.dumps(
        {"rows": rows, "box_iou_test": test_ious, "size": args.size, "seeds": args.seeds},
        indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
