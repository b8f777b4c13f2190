"""The one-seed tuning runs of tuning.md: configs/fpha_skeleton.yaml on ../shared/fpha-dev with
gesture labels on 10 % of the training sequences (withhold seed = run seed), trained with the
extra overrides (e.g. a train.semi mapping) and tested like a benchmark row.

    python benchmarks/results/fpha-skeleton-weak/tune.py NAME SEED [OVERRIDE ...]
"""
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from handmt.config import load_config  # noqa: E402
from handmt.data import build_dataset  # noqa: E402
from handmt.engine.checkpoint import load_trained  # noqa: E402
from handmt.engine.evaluate import evaluate  # noqa: E402
from handmt.engine.trainer import CHECKPOINT, train  # noqa: E402

name, seed, *extra = sys.argv[1:]
out = Path("/tmp/semi-tune/runs") / f"{name}-{seed}"
cfg = load_config(REPO / "configs" / "fpha_skeleton.yaml", [
    f"data.root={REPO.parent / 'shared' / 'fpha-dev'}", f"train.seed={seed}",
    f"data.withhold=[{{task: gesture, keep_fraction: 0.1, seed: {seed}}}]", *extra])
started = time.time()
train(cfg, out, overwrite=True, val_set=False, progress=False)
metrics = evaluate(load_trained(cfg, out / CHECKPOINT), build_dataset(cfg["data"], "test"), 64,
                   progress=False)
print(f"RESULT {name} seed {seed}: top-1 {100 * metrics['top1']:.1f} "
      f"({time.time() - started:.0f} s) {extra}", flush=True)
