"""Soak test of training's crash safety: kill `handmt train` at random moments, resume, compare.

    python benchmarks/soak.py [--kills 20] [--epochs 60] [--seed 0] [--work DIR] [--out DIR]

A tiny run (configs/cpu_fpha_tsn.yaml on a 3-class synthetic FPHA set of 32-pixel crops,
ResNet-10t, the HDF5 clip cache on, one thread) is trained once without interruption (the
reference), then again while this script kills it `--kills` times at random moments, SIGKILL or
SIGINT (Ctrl-C) at random, each time restarting it: with --resume once a checkpoint exists, with
--overwrite before. A quarter of the kills aim at the start-up (imports, cache building,
checks), at a time drawn uniformly over the last start-up measured (the reference's at first);
the others at training once it has begun (the run writes config.yaml just before its first
epoch), at a time drawn uniformly over two of the reference's epochs: training steps,
validation, checkpoint and log writes. Where each kill landed is counted (start-up or training),
and "during a write" when a temporary file of atomic.py exists right after it.

Checked after every kill: the checkpoint loads and has not gone back (committed epochs lost),
log.jsonl holds exactly the checkpoint's records or is one record behind it (a kill between the
two writes, restored at resume). At the end: the weights equal the reference's bit for bit, the
log holds epochs 1..N once each, and no temporary file is left (bytes left behind).
Writes results.md and results.json to --out (default benchmarks/results/soak).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handmt.data import generate_fpha  # noqa: E402
from handmt.engine.checkpoint import load_checkpoint  # noqa: E402
from handmt.engine.trainer import CHECKPOINT, LOG  # noqa: E402

CONFIG = REPO / "configs" / "cpu_fpha_tsn.yaml"


def overrides(root, epochs):
    return [f"data.root={root}", "data.size=32", "data.num_frames=2", "data.cache=true",
            "model.heads.gesture.num_classes=3", "model.backbone.arch=resnet10t",
            "train.batch_size=2", "train.workers=0", "train.tensorboard=false",
            f"train.epochs={epochs}", "eval.clips=1"]


def command(root, epochs, out, *flags):
    return [sys.executable, "-m", "handmt.cli", "train", str(CONFIG), *overrides(root, epochs),
            "--out", str(out), *flags]


def environment(cache):
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "HANDMT_CACHE": str(cache)}


def temp_files(*folders):
    return [p for folder in folders if folder.exists() for p in folder.rglob("*.tmp")]


def log_epochs(run):
    path = run / LOG
    if not path.exists():
        return []
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()]


def committed_epoch(run):
    return load_checkpoint(run / CHECKPOINT)["epoch"] if (run / CHECKPOINT).exists() else 0


def in_training(run, since):
    """Whether the training started at `since` has begun its epochs (it writes run/config.yaml
    just before the first)."""
    config = run / "config.yaml"
    return config.exists() and config.stat().st_mtime >= since


def training_started(process, run, since):
    """Wait until `process` is `in_training`; False if it exits first."""
    while process.poll() is None:
        if in_training(run, since):
            return True
        time.sleep(0.02)
    return False


def soak(args, work):
    root = generate_fpha(work / "synth", classes=3, subjects=2, seqs=2, frames=8, size=160,
                         seed=1, progress=False)
    rng = random.Random(args.seed)

    started = time.time()
    subprocess.run(command(root, args.epochs, work / "reference"), check=True,
                   env=environment(work / "cache-reference"), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    reference_seconds = time.time() - started
    epoch_seconds = sum(json.loads(line)["seconds"] for line in
                        (work / "reference" / LOG).read_text().splitlines()) / args.epochs
    startup = reference_seconds - epoch_seconds * args.epochs

    run, cache = work / "soak", work / "cache-soak"
    kills = {"SIGKILL": 0, "SIGINT": 0}
    phases = {"start-up": 0, "training": 0}
    during_write, restarts, epochs_lost, log_faults, exit_codes = 0, 0, 0, [], {}
    slowest_exit = 0.0
    started = time.time()
    while committed_epoch(run) < args.epochs:
        committed = committed_epoch(run)
        flag = "--resume" if committed else "--overwrite"
        since = time.time()
        restarts += 1
        stderr = work / f"restart-{restarts}.stderr"
        with open(stderr, "w") as sink:
            process = subprocess.Popen(command(root, args.epochs, run, flag),
                                       env=environment(cache), stdout=subprocess.DEVNULL,
                                       stderr=sink)
        killed, phase, delay, exit_seconds = None, None, None, None
        if sum(kills.values()) < args.kills:
            aim = "start-up" if rng.random() < 0.25 else "training"
            delay = rng.uniform(0, startup if aim == "start-up" else 2 * epoch_seconds)
            if aim == "training" and training_started(process, run, since):
                startup = time.time() - since  # a resumed run's, without the cache build
            if aim == "start-up" or in_training(run, since):
                try:
                    process.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    killed = rng.choice(list(kills))
                    phase = "training" if in_training(run, since) else "start-up"
                    signalled = time.time()
                    process.send_signal(getattr(signal, killed))
                    process.wait()
                    exit_seconds = time.time() - signalled
                    slowest_exit = max(slowest_exit, exit_seconds)
                    kills[killed] += 1
                    phases[phase] += 1
                    during_write += bool(temp_files(run, cache))
        code = process.wait()
        if not killed and code != 0:
            raise SystemExit(f"restart {restarts} failed with exit code {code}, see {stderr}")
        exit_codes[str(code)] = exit_codes.get(str(code), 0) + 1
        now = committed_epoch(run)
        epochs_lost += max(0, committed - now)
        records = log_epochs(run)
        expected = list(range(1, now + 1))
        if records not in (expected, expected[:-1]):
            log_faults.append(f"after restart {restarts}: log epochs {records}, checkpoint {now}")
        when = f" in {phase} after {delay:.1f} s, exited {exit_seconds:.1f} s later" if killed \
            else ""
        print(f"restart {restarts}: {killed or 'not killed'}{when} (exit {code}), checkpoint "
              f"epoch {committed} -> {now}", flush=True)
    soak_seconds = time.time() - started

    reference = load_checkpoint(work / "reference" / CHECKPOINT)["model"]
    resumed = load_checkpoint(run / CHECKPOINT)["model"]
    differing = [k for k in reference if not torch.equal(reference[k], resumed[k])]
    records = log_epochs(run)
    leftovers = temp_files(run, cache)
    return {
        "kills": sum(kills.values()), **{f"kills_{k}": v for k, v in kills.items()},
        **{f"kills_in_{k}": v for k, v in phases.items()},
        "kills_during_a_write": during_write, "restarts": restarts, "exit_codes": exit_codes,
        "epochs": args.epochs, "committed_epochs_lost": epochs_lost,
        "log_records": len(records),
        "duplicate_log_records": len(records) - len(set(records)),
        "log_is_epochs_1_to_n": records == list(range(1, args.epochs + 1)),
        "log_faults_between_kills": log_faults,
        "temp_files_left": len(leftovers),
        "bytes_left_behind": sum(p.stat().st_size for p in leftovers),
        "weights_identical": not differing and reference.keys() == resumed.keys(),
        "differing_tensors": differing,
        "slowest_exit_after_a_signal_seconds": round(slowest_exit, 1),
        "reference_seconds": round(reference_seconds, 1), "startup_seconds": round(startup, 1),
        "epoch_seconds": round(epoch_seconds, 2),
        "soak_seconds": round(soak_seconds, 1), "seed": args.seed,
    }


def write_results(result, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Soak test", "", "`python benchmarks/soak.py --kills "
             f"{result['kills']} --epochs {result['epochs']} --seed {result['seed']}`", "",
             "| figure | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in result.items()]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", help="working folder (default: a temporary one, removed after)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "soak"))
    args = p.parse_args()
    # A shell that starts this script in the background ignores SIGINT, and the trainings would
    # inherit that: they get Python's default handler instead.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="handmt-soak-"))
    try:
        result = soak(args, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    write_results(result, Path(args.out))
    print(json.dumps(result, indent=2))
    passed = (result["weights_identical"] and result["log_is_epochs_1_to_n"]
              and not result["log_faults_between_kills"] and result["temp_files_left"] == 0
              and result["committed_epochs_lost"] == 0)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
