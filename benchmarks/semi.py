"""Semi-supervised gesture training on the real FPHA skeletons: the masked loss alone (the
collaborative paper's weak supervision) against + FixMatch (`train.semi`), with the gesture
labels of all but `--fraction` of the training sequences withheld (spread over classes).

    python benchmarks/semi.py [--root DIR] [--fraction 0.1] [--seeds 3] [--out DIR]

Writes <out>/results.json and results.md (default out: benchmarks/results/semi).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handmt.config import load_config  # noqa: E402
from handmt.data import build_dataset  # noqa: E402
from handmt.engine.checkpoint import load_trained  # noqa: E402
from handmt.engine.evaluate import evaluate  # noqa: E402
from handmt.engine.trainer import CHECKPOINT, train  # noqa: E402

SEMI = ("train.semi={weight: 1.0, threshold: 0.9, start_epoch: 5, augment: {min_duration: 0.6, "
        "rotation: 30.0, scale: [0.8, 1.2], noise_mm: 3.0}}")
MODES = {"masked loss only": [], "+ FixMatch": [SEMI]}


def run(root, fraction, seed, extra, out):
    cfg = load_config(REPO / "configs" / "fpha_skeleton.yaml", [
        f"data.root={root}", f"train.seed={seed}",
        f"data.withhold=[{{task: gesture, keep_fraction: {fraction}, seed: {seed}}}]", *extra])
    started = time.time()
    train(cfg, out, overwrite=True, val_set=False, progress=False)
    model = load_trained(cfg, Path(out) / CHECKPOINT)
    metrics = evaluate(model, build_dataset(cfg["data"], "test"), 64, progress=False)
    return metrics["top1"], time.time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "fpha-dev"))
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "semi"))
    args = parser.parse_args()
    out = Path(args.out)
    rows = []
    for name, extra in MODES.items():
        top1 = []
        for seed in range(args.seeds):
            value, seconds = run(args.root, args.fraction, seed, extra,
                                 out / "runs" / f"{name.strip('+ ').replace(' ', '_')}-{seed}")
            print(f"{name}, seed {seed}: top-1 {100 * value:.1f} % ({seconds:.0f} s)", flush=True)
            top1.append(value)
        rows.append({"method": name, "top1": top1, "top1_mean": statistics.mean(top1),
                     "top1_std": statistics.stdev(top1) if len(top1) > 1 else 0.0})
    (out / "results.json").write_text(json.dumps(
        {"root": args.root, "fraction": args.fraction, "seeds": args.seeds, "semi": SEMI,
         "rows": rows}, indent=1))
    lines = [f"# Gesture labels on {args.fraction:.0%} of the training sequences (real FPHA "
             "skeletons)", "", f"`python benchmarks/semi.py --fraction {args.fraction} --seeds "
             f"{args.seeds}`; data {args.root}; model configs/fpha_skeleton.yaml (full).", "",
             "| method | top-1 % (mean ± std) | per seed |", "|---|---|---|"]
    lines += [f"| {r['method']} | {100 * r['top1_mean']:.1f} ± {100 * r['top1_std']:.1f} | "
              f"{', '.join(f'{100 * v:.1f}' for v in r['top1'])} |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
