"""Train and test one fpha-skeleton row for one seed, with config overrides: the quick single-seed
measurement behind a change, before the 3-seed suite (`benchmarks/run.py fpha-skeleton`).

    python benchmarks/skeleton_row.py 06-full-multi-order-multi-scale.yaml 0 \
        [model.heads.gesture.shared_tcn=false ...] [--root DIR] [--out DIR]

Prints the row, seed, overrides and the video-level top-1 on the test split.
"""

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("row", help="a file of configs/benchmarks/fpha-skeleton/")
    parser.add_argument("seed", type=int)
    parser.add_argument("overrides", nargs="*", help="a.b.c=value")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "fpha-dev"))
    parser.add_argument("--out", default="/tmp/skeleton-row", help="the run's folder")
    args = parser.parse_args()
    cfg = load_config(REPO / "configs" / "benchmarks" / "fpha-skeleton" / args.row,
                      [f"data.root={args.root}", f"train.seed={args.seed}", *args.overrides])
    started = time.time()
    train(cfg, args.out, overwrite=True, val_set=False, progress=False)
    model = load_trained(cfg, Path(args.out) / CHECKPOINT)
    top1 = evaluate(model, build_dataset(cfg["data"], "test"), 64, progress=False)["top1"]
    print(f"{args.row} seed {args.seed} {' '.join(args.overrides)}: top-1 {100 * top1:.1f} % "
          f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
