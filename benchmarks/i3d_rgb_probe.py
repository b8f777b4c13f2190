"""Why MTUT's rows do not use the I3D on synthetic data: single networks on the quick synthetic
set (run.py's synthetic set with --quick's 6 hand-shape classes, plain walls), one variant at a
time, beside the depth I3D and a per-frame ResNet-18 (TSN) on the same RGB clips.

    python benchmarks/i3d_rgb_probe.py [--out DIR] [--only NAME,...]

Every variant is `configs/cpu_fpha_tsn.yaml` (data, optimizer, schedule) with run.py's
`synthetic_overrides` for --quick (6 classes, dropout 0) and its own overrides; one seed. Writes
results.md and results.json (default benchmarks/results/fpha-quick-i3d-rgb/).
"""

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from run import synthetic_overrides  # noqa: E402

from handmt.config import load_config  # noqa: E402
from handmt.data import build_dataset  # noqa: E402
from handmt.engine.checkpoint import load_trained  # noqa: E402
from handmt.engine.evaluate import evaluate  # noqa: E402
from handmt.engine.trainer import CHECKPOINT, train  # noqa: E402

TSN = REPO / "configs" / "cpu_fpha_tsn.yaml"
I3D = ["model.backbone={name: i3d, width: 0.25, bn_momentum: 0.1, modality: rgb}",
       "model.heads.gesture.feature=Mixed_5c"]
CLIPS_40 = ["data.size=40", "data.num_frames=8"]
VARIANTS = {  # name: overrides of cpu_fpha_tsn.yaml after the synthetic set's
    "I3D RGB, 40 px, 12 epochs (MTUT's quick row)": [*I3D, *CLIPS_40, "train.epochs=12"],
    "I3D depth, 40 px, 12 epochs": [*I3D, *CLIPS_40, "train.epochs=12",
                                    "model.backbone.modality=depth", "data.modalities=[depth]"],
    "I3D RGB, width 1.0, 40 px, 12 epochs": [*I3D, *CLIPS_40, "train.epochs=12",
                                             "model.backbone.width=1.0"],
    "I3D RGB, 40 px, 40 epochs": [*I3D, *CLIPS_40, "train.epochs=40"],
    "I3D RGB, 80 px, 24 epochs": [*I3D, "data.size=80", "data.num_frames=8", "train.epochs=24"],
    "ResNet-18 per frame (TSN) RGB, 40 px, 12 epochs": [*CLIPS_40, "train.epochs=12"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" /
                        "fpha-quick-i3d-rgb")
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from: {'; '.join(VARIANTS)}")
    synthetic = synthetic_overrides(load_config(TSN)["model"]["heads"], quick=True)
    rows = []
    for name in names:
        cfg = load_config(TSN, [*synthetic, *VARIANTS[name]])
        run_dir = args.out / "runs" / str(len(rows))
        started = time.time()
        record = train(cfg, run_dir, overwrite=True, val_set=False, progress=False)
        seconds = time.time() - started
        model = load_trained(cfg, run_dir / CHECKPOINT)
        top1 = evaluate(model, build_dataset(cfg["data"], "test"), 16, progress=False)["top1"]
        rows.append({"variant": name, "overrides": VARIANTS[name], "top1": top1,
                     "train_cls_last_epoch": record["train_cls"], "train_seconds": seconds})
        print(f"{name}: top-1 {100 * top1:.1f} %, last epoch's training loss "
              f"{record['train_cls']:.2f} ({seconds:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    lines = ["# The RGB I3D learns the quick set slowly from scratch", "",
             "Single networks on run.py's quick synthetic set (6 classes, chance 16.7 %, ln 6 = "
             "1.79), one seed. Command: `python benchmarks/i3d_rgb_probe.py`.", "",
             "| variant | top-1 (%) | training loss, last epoch | train (s) |", "|---|---|---|---|"]
    lines += [f"| {r['variant']} | {100 * r['top1']:.1f} | {r['train_cls_last_epoch']:.2f} | "
              f"{r['train_seconds']:.0f} |" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
