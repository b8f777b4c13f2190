"""Reproduce the shape of the papers' tables on FPHA (or the embedded synthetic FPHA-format set).

    python benchmarks/run.py fpha [--root DIR] [--quick] [--seeds N] [--tables T,...]
                                  [--rows PATTERN,...] [--set KEY=VALUE ...] [--out DIR]
                                  [--resume] [--jobs N]
    python benchmarks/run.py fpha-skeleton [--root DIR] [--protocol 1:1|cross-subject] [--seeds N]
    python benchmarks/run.py fpha-skeleton --tables weak --seeds 3

The fpha suite's tables, after the collaborative paper (ECCV 2020) and the MSD and MTUT papers:
- gesture: TSN, then the collaborative network from its baseline (1 iteration, zero order only,
  no multi-scale relation) through + multi-scale, + multi-order and + 2 iterations (Table 1),
  and the order / slow-fast variants of the full model (Table 4), and TSN on the whole frame
  (no ground-truth hand crop);
- pose: 3D PCK@20/25/30, AUC over 0-50 mm and MPJPE of the collaborative rows, and the curves;
- iterations: 1, 2 and 3 iterations of the full model (Table 3);
- weak (only with --tables weak): pose labels on 15/25/40 % of the training videos with all
  gesture labels, against the same model without the gesture loss and with the pose consistency
  term on the unlabelled videos; and the converse, with FixMatch (Figure 4, middle and right);
- depth_supervision: TSN, ACTION, ACTION + MSD and its local-only and global-only decoders (the
  MSD paper's Tables I and VI);
- multimodal: RGB and depth networks alone, coupled by SSA, without the focal rho, and their
  fusion (MTUT's Tables 3 and 7);
- segmentation: TSN alone, TSN with a hand segmentation head, the segmentation head alone, and
  the floor every mask must beat: the training masks' per-pixel mean as a constant prediction.
The fpha-skeleton suite runs the collaborative network's gesture sub-network on real 3D hand
skeletons (FPHA's annotations; default root ../shared/fpha-dev, the development split): a plain
temporal-conv reference, Baseline, + multi-scale, + multi-order, the full model, its slow-only and
fast-only variants and the two open readings of the paper (FD per clip, the TCN on the level-3
hand node), beside floors (majority class, 1-NN) and the published skeleton-only results.
`--protocol cross-subject` trains and tests six folds, each leaving one subject out. Its weak
table, run only when asked (`--tables weak`), trains the full model with gesture labels on
5/10/25/50/100 % of the training sequences: the masked loss alone (the collaborative paper's weak
supervision), and + FixMatch on the unlabelled ones (configs/fpha_skeleton_semi.yaml).
Every row is a config file, configs/benchmarks/<suite>/NN-<row>.yaml (in file-name order): a
`base:` config of configs/, the row's changes and its `bench` section (name, tables, modality,
metric, folds, floor, weak, quick: config.py's BenchOptions). A row trains its config (rows with
the same config, e.g. one in two tables, train once), is evaluated on the test split, and
lands in `<out>/results.md`, `<out>/results.json` and plots (default out:
benchmarks/results/<suite>, -quick appended with --quick, -cross-subject with that protocol and
the tables' names with --tables, e.g. benchmarks/results/fpha-skeleton-weak). With no --root the
synthetic set is generated once into the cache (~/.cache/handmt, or $HANDMT_CACHE). --resume
keeps every run whose folder already holds this very config trained to its last epoch.
"""

import argparse
import dataclasses
import fnmatch
import functools
import json
import math
import multiprocessing
import operator
import os
import platform
import re
import shlex
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
DEV_SKELETONS = REPO.parent / "shared" / "fpha-dev"  # real FPHA skeletons, a development split
BENCH = REPO / "configs" / "benchmarks"  # a folder of row configs per suite
sys.path.insert(0, str(REPO))

from handmt.config import BenchOptions, load_config  # noqa: E402
from handmt.data import build_dataset  # noqa: E402
from handmt.engine import eval_options  # noqa: E402
from handmt.engine.checkpoint import load_checkpoint, load_trained  # noqa: E402
from handmt.engine.evaluate import evaluate  # noqa: E402
from handmt.engine.trainer import CHECKPOINT, LOG, run_config, train  # noqa: E402
from handmt.errors import ConfigError, closest  # noqa: E402
from handmt.metrics.pose import PROTOCOL_3D  # noqa: E402
from handmt.models import Prediction  # noqa: E402
from handmt.viz import plot_confusion, plot_curves, plot_pck_curves, plot_training_log  # noqa: E402

# Published skeleton-only results on FPHA's official protocols (top-1 %), for reference: they are
# not comparable with a run on the development split.
GARCIA = "Garcia-Hernando et al., CVPR 2018, Table 4"
SABATER = "Sabater et al., IROS 2021"
PUBLISHED = {
    "1:1": [("Moving Pose", 56.34, GARCIA), ("JOULE-pose", 74.60, GARCIA),
            ("HBRNN", 77.40, GARCIA), ("LSTM", 80.14, GARCIA), ("TF", 80.69, GARCIA),
            ("Lie Group", 82.69, GARCIA), ("Gram Matrix", 85.39, GARCIA),
            ("Sabater et al.", 95.93, SABATER)],
    "cross-subject": [("Sabater et al.", 88.7, SABATER)],
}
SKELETON_FOLDS = 6  # FPHA's six subjects, one left out per fold

TABLES = ("gesture", "pose", "iterations", "weak", "depth_supervision", "multimodal",
          "segmentation")
# tables a suite runs only when --tables names them: their many trainings would double the default
# run (fpha-skeleton's weak table: 4 fractions of gesture labels, with and without FixMatch; fpha's:
# 3 fractions of pose or gesture labels, with and without the other task's loss, 12 trainings)
ON_REQUEST = {"fpha-skeleton": ("weak",), "fpha": ("weak",)}

# fpha on its embedded synthetic set (no --root): a set that models learn from scratch on 2 cores,
# plain backgrounds, 32-pixel hand crops of 4 frames, no dropout, light crops, 12 epochs (a row's
# `bench.synthetic` and, with --quick, `bench.quick` add to this). Measured (TSN; docs/design.md,
# "The fpha suite's synthetic set"): in cluttered backgrounds a network memorises each video's
# background (6 classes: 94 % training, 18 % test top-1); on plain ones it learns the hand (68 %).
# The default has 10 classes: the 6 hand shapes and motions of --quick, which an order-less TSN
# can tell apart, and two pairs that differ only in the order of their frames (a played-backwards
# gesture), which it cannot. All 45 classes do not fit the 30-minute budget: one TSN on them, with
# 30 training videos per class, trained 37 minutes (15 epochs) to test at 30.5 %, its training
# cross-entropy still 2.1 (ln 45 = 3.8; benchmarks/results/fpha-45-classes-tsn).
QUICK_CLASSES = ["point_index", "victory", "thumbs_up", "close_all_constant", "rotate_in", "wave"]
DEFAULT_CLASSES = [*QUICK_CLASSES, "open_then_close_all", "close_then_open_all", "swipe_right",
                   "swipe_left"]
SYNTHETIC = ["data.synthetic.subjects=3", "data.synthetic.seqs=20", "data.synthetic.frames=8",
             "data.synthetic.size=160", "data.synthetic.background=plain", "data.size=32",
             "data.num_frames=4", "data.augment.color_jitter=0", "data.augment.scales=[1.0, 0.875]",
             "train.epochs=12", "train.batch_size=8", "train.eval_every=100", "eval.clips=1",
             "eval.crops=1"]
# --quick on a real dataset (--root): one short epoch of small models (each row's `bench.quick`:
# e.g. a ResNet-18; TEA keeps its Res2Net-50, timm has no smaller one), to check that the data,
# the configs and the suite run end to end before the real thing.
QUICK_REAL = ["data.size=32", "data.num_frames=4", "train.epochs=1", "train.batch_size=2",
              "train.workers=0", "eval.clips=1", "eval.crops=1", "eval.size=null",
              "data.cache=false"]


def suite_rows(suite):
    """[(file, BenchOptions), ...]: the rows of `suite`, the files configs/benchmarks/<suite>/
    *.yaml in file-name order (their numeric prefix)."""
    rows = []
    for path in sorted((BENCH / suite).glob("*.yaml")):
        cfg = load_config(path)
        if "bench" not in cfg:
            raise ConfigError("bench", f"missing: a benchmark row needs its name and tables "
                              f"(in {path})")
        row = BenchOptions(**cfg["bench"])
        for key, value, valid in (("tables", row.tables, TABLES), ("floor", [row.floor], FLOORS)):
            unknown = [v for v in value if v is not None and v not in valid]
            if unknown:
                raise ConfigError(f"bench.{key}", f"unknown {unknown[0]!r}"
                                  f"{closest(unknown[0], valid)}; valid: {', '.join(valid)} "
                                  f"(in {path})")
        rows.append((path, row))
    names = [row.name for _, row in rows]
    for path, row in rows:
        if row.compare is not None and row.compare not in names:
            raise ConfigError("bench.compare", f"no row of {suite} is named {row.compare!r}"
                              f"{closest(row.compare, names)} (in {path})")
    return rows


def synthetic_overrides(heads, quick):
    """The overrides that train a config whose heads are `heads` on the fpha suite's synthetic
    set (SYNTHETIC; --quick's classes with `quick`): its classes, and every classifying head with
    as many outputs and no dropout."""
    classes = QUICK_CLASSES if quick else DEFAULT_CLASSES
    return [f"data.synthetic.classes=[{', '.join(classes)}]", *SYNTHETIC,
            *(f"model.heads.{task}.{key}={value}" for task, head in heads.items()
              for key, value in (("num_classes", len(classes)), ("dropout", 0)) if key in head)]


def row_config(file, row, seed, fold, args):
    """The config `row` trains with `seed` (on `fold`): its file, then the synthetic set's or
    --quick's overrides (the suite's and the row's own), --root, --set and the fold."""
    overrides = [f"train.seed={seed}"]
    if args.suite == "fpha" and not args.root:
        overrides += [*synthetic_overrides(load_config(file)["model"]["heads"], args.quick),
                      *row.synthetic]
    elif args.quick:
        overrides += QUICK_REAL
    if args.quick:
        overrides += row.quick
    if args.root:
        overrides.append(f"data.root={args.root}")
    overrides += args.set
    if fold is not None:
        overrides.append(f"data.fold={fold}")
    return load_config(file, overrides)


def slug(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def finished(run_dir, cfg):
    """Whether `run_dir` holds `cfg` trained to its last epoch (for --resume; the `bench`
    section, a row's metadata, may have changed since)."""
    saved, checkpoint = run_dir / "config.yaml", run_dir / CHECKPOINT
    if not (saved.exists() and checkpoint.exists()):
        return False
    return (run_config(yaml.safe_load(saved.read_text())) == run_config(cfg)
            and load_checkpoint(checkpoint)["epoch"] == cfg["train"]["epochs"])


class ConstantMask(torch.nn.Module):
    """The segmentation floor: the same mask probabilities (1, H, W) for every test frame (of
    the model contract, evaluation uses `predict` alone)."""

    def __init__(self, probs):
        super().__init__()
        self.probs = probs[0]

    def predict(self, batch):
        return Prediction(mask=self.probs.expand_as(batch["mask"][:, :, 0]))


def prior_mask_result(cfg):
    """Mask metrics of `ConstantMask` with the per-pixel mean of the training clips' masks (no
    augmentation, frames drawn with the run's seed), at the test resolution; thresholded at 1/2
    like a model's probabilities."""
    started = time.time()
    opts = eval_options(cfg)
    train_set = build_dataset({**cfg["data"], "augment": None}, "train", size=opts.size)
    torch.manual_seed(cfg["train"]["seed"])  # training clips sample their frames from torch
    prior = torch.stack([train_set[i]["mask"].mean(0) for i in range(len(train_set))]).mean(0)
    test_set = build_dataset(cfg["data"], opts.split, clips=opts.clips,
                             crops=opts.crops, size=opts.size)
    metrics = evaluate(ConstantMask(prior), test_set, opts.batch_size, progress=False)
    return {**metrics, "train_seconds": 0.0, "seconds": round(time.time() - started, 1),
            "classes": test_set.classes, "data": cfg["data"]}


class MeanPose(torch.nn.Module):
    """The pose floor: one wrist-relative pose (21, 3) placed at each test frame's true wrist
    (the 3D protocol gives every model the true wrist depth; this floor is given the whole
    wrist)."""

    def __init__(self, relative):
        super().__init__()
        self.relative = relative

    def predict(self, batch):
        return Prediction(joints3d=batch["joints3d"][:, :, :1] + self.relative)


def mean_pose_result(cfg):
    """Pose metrics of `MeanPose` with the mean wrist-relative pose of the labelled frames of the
    training clips (no augmentation, frames drawn with the run's seed)."""
    started = time.time()
    opts = eval_options(cfg)
    train_set = build_dataset({**cfg["data"], "augment": None}, "train", size=opts.size)
    torch.manual_seed(cfg["train"]["seed"])
    items = [train_set[i] for i in range(len(train_set))]
    relative = torch.cat([(item["joints3d"] - item["joints3d"][:, :1])[item["pose_valid"]]
                          for item in items]).mean(0)
    test_set = build_dataset(cfg["data"], opts.split, clips=opts.clips,
                             crops=opts.crops, size=opts.size)
    metrics = evaluate(MeanPose(relative), test_set, opts.batch_size, progress=False)
    return {**metrics, "train_seconds": 0.0, "seconds": round(time.time() - started, 1),
            "classes": test_set.classes, "data": cfg["data"]}


def run_row(file, row, seed, fold, args, runs_dir):
    """Train `row` (its config `file`) with `seed` (on `fold`, or reuse the finished run with
    --resume), evaluate it on the test split; its metrics and where it ran."""
    cfg = row_config(file, row, seed, fold, args)
    if row.floor:
        return FLOORS[row.floor](cfg)
    run_dir = runs_dir / slug(row.name) / f"seed{seed}" / (f"fold{fold}" if fold is not None
                                                            else "")
    started = time.time()
    if args.resume and finished(run_dir, cfg):
        train_seconds = sum(json.loads(line)["seconds"]
                            for line in (run_dir / LOG).read_text().splitlines())
    else:
        train(cfg, run_dir, overwrite=True, val_set=False, progress=not args.no_progress)
        train_seconds = time.time() - started
    model = load_trained(cfg, run_dir / CHECKPOINT)
    opts = eval_options(cfg)
    test_set = build_dataset(cfg["data"], opts.split, clips=opts.clips,
                             crops=opts.crops, size=opts.size)
    metrics = evaluate(model, test_set, opts.batch_size, progress=not args.no_progress)
    return {**metrics, "train_seconds": round(train_seconds, 1),
            "seconds": round(time.time() - started, 1), "log": str(run_dir / LOG),
            "classes": test_set.classes, "data": cfg["data"]}


def run_tasks(tasks, files, args, runs_dir, label, expected=None):
    """run_row of every (row, seed, fold) of `tasks`, the results in order: one after the other,
    or with --jobs N in N spawned processes of cores / N threads each (small models use one
    thread better than several), started longest first by `expected` ({row name: seconds};
    rows it lacks first), so that no long training starts last and runs alone at the end. The
    data of every task is prepared (generated, cached) here first, so that no two processes
    build the same file."""
    def done(task, result):
        print(f"{label(task)}: {summary(result, task[0].metric)} ({result['seconds']:.0f} s)",
              flush=True)

    if args.jobs == 1:
        results = []
        for task in tasks:
            print(f"{label(task)} ...", flush=True)
            results.append(run_row(files[task[0].name], *task, args, runs_dir))
            done(task, results[-1])
        return results
    datas = {json.dumps(data, sort_keys=True): data for data in
             (row_config(files[row.name], row, seed, fold, args)["data"]
              for row, seed, fold in tasks)}
    for data in datas.values():
        build_dataset(data, "train")
        build_dataset(data, "test")
    quiet = argparse.Namespace(**{**vars(args), "no_progress": True})  # bars would interleave
    threads = max(1, torch.get_num_threads() // args.jobs)
    order = longest_first(tasks, expected or {})
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=start_worker, initargs=(threads, os.getpid())) as pool:
        futures = {i: pool.submit(run_row, files[tasks[i][0].name], *tasks[i], quiet, runs_dir)
                   for i in order}
        print(f"{len(tasks)} trainings, {args.jobs} at a time, {threads} thread(s) each ...",
              flush=True)
        task_of = {future: tasks[i] for i, future in futures.items()}
        for future in as_completed(task_of):
            done(task_of[future], future.result())
    return [futures[i].result() for i in range(len(tasks))]


def longest_first(tasks, expected):
    """Indices of `tasks` by their row's `expected` seconds, longest first; rows without an
    expectation before all others, in their order."""
    return sorted(range(len(tasks)), key=lambda i: -expected.get(tasks[i][0].name, math.inf))


def expected_seconds(results_file):
    """{row name: its mean training seconds per run} from a suite's earlier results.json, {}
    when there is none."""
    if not results_file.is_file():
        return {}
    rows = json.loads(results_file.read_text()).get("rows", [])
    return {row["method"]: statistics.mean(row["train_seconds"])
            for row in rows if row.get("train_seconds")}


def start_worker(threads, parent):
    """A training process of --jobs: `threads` torch threads, and it exits when `parent` (run.py)
    is gone: killed, run.py's workers would otherwise train on to the end of their row, into the
    run folders a --resume run trains again (a worker notices its parent only when it asks for
    the next row)."""
    torch.set_num_threads(threads)

    def watch():
        while os.getppid() == parent:
            time.sleep(5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def gesture_floor(cfg, nearest):
    """A trivial gesture baseline on the test split: the training set's most frequent class, or
    (`nearest`) the class of the nearest training clip (Euclidean distance between the clips'
    ground-truth joints as the models see them: for skeletons the normalised joints resampled to
    `num_frames`, for images the 2D joints in crop pixels of the clip's frames)."""
    started = time.time()
    data = {**cfg["data"], "augment": None}
    train_set, test_set = (build_dataset(data, split) for split in ("train", "test"))
    train_labels, test_labels = train_set.labels, test_set.labels
    key = "joints" if "joints" in data["modalities"] else "joints2d"
    if nearest:
        torch.manual_seed(cfg["train"]["seed"])  # training clips sample their frames from torch

        def features(dataset):
            return torch.stack([dataset[i][key].flatten() for i in range(len(dataset))])
        predicted = train_labels[torch.cdist(features(test_set), features(train_set))
                                 .argmin(dim=1).numpy()]
    else:
        predicted = np.full(len(test_labels), np.bincount(train_labels).argmax())
    return {"top1": float(np.mean(predicted == test_labels)), "videos": len(test_labels),
            "classes": test_set.classes, "data": cfg["data"], "train_seconds": 0.0,
            "seconds": round(time.time() - started, 1)}


# the floors: rows computed from the data, not trained
FLOORS = {"majority": functools.partial(gesture_floor, nearest=False),
          "nearest": functools.partial(gesture_floor, nearest=True),
          "mean mask": prior_mask_result, "mean pose": mean_pose_result}


def mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(runs, metric, scale=100.0, digits=1):
    """'mean ± std' over seeds of one metric (a function of a run's results), or '-'."""
    values = [metric(run) for run in runs]
    if any(v is None for v in values):
        return "-"
    mean, std = mean_std([scale * v for v in values])
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def pose_value(key):
    return lambda run: run["pose"][key] if "pose" in run else None


def mask_value(key):
    return lambda run: run["segmentation"][key] if "segmentation" in run else None


def top1(run):
    return run["top1"]


def markdown(header, lines):
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header),
            *(f"| {' | '.join(line)} |" for line in lines)]


def difference(row, results, metric, scale=100.0):
    """(difference, verdict) of `row` from the row it changes (`bench.compare`) in `metric` x
    `scale`, or None (no such row run, or no metric). The verdict, with two seeds or more on both
    sides: "better" or "worse" when the difference of the means is more than twice its standard
    error, sqrt(s_a^2 / n_a + s_b^2 / n_b), else "within noise"; None with one seed."""
    if row.compare not in results:  # none, or not run (--rows)
        return None
    runs = results[row.name], results[row.compare]
    if any(metric(run) is None for side in runs for run in side):
        return None
    (mean, std), (mean_ref, std_ref) = (mean_std([scale * metric(run) for run in side])
                                        for side in runs)
    value = mean - mean_ref
    if min(len(side) for side in runs) < 2:
        return value, None
    error = math.sqrt(std ** 2 / len(runs[0]) + std_ref ** 2 / len(runs[1]))
    return value, ("better" if value > 2 * error else "worse" if value < -2 * error
                   else "within noise")


def change(row, results, metric):
    """The change column's cell: "+1.2 vs <row>: verdict", or "-"."""
    found = difference(row, results, metric)
    if found is None:
        return "-"
    value, verdict = found
    return f"{value:+.1f} vs {row.compare}" + (f": {verdict}" if verdict else "")


def change_header(rows):
    """The change column's header, for tables with a row that changes another."""
    return ["change (points)"] if any(row.compare for row in rows) else []


def gesture_table(rows, results, pose=True):
    """Top-1 (and PCK@20 with `pose`), the change of top-1 from the row it changes, the number of
    runs and the training time of each row."""
    changes = change_header(rows)
    header = ["method", "modality", "top-1 (%)", *(["PCK@20 (%)"] if pose else []), *changes,
              "runs", "train (s)"]
    lines = []
    for row in rows:
        metric = operator.itemgetter(row.metric)
        lines.append([row.name, row.modality, cell(results[row.name], metric),
                      *([cell(results[row.name], pose_value("pck@20"))] if pose else []),
                      *([change(row, results, metric)] if changes else []),
                      str(len(results[row.name])),
                      cell(results[row.name], lambda r: r["train_seconds"], 1, 0)])
    return markdown(header, lines)


def segmentation_table(rows, results):
    """Top-1, mask IoU and F1, the change of top-1 from the row it changes, seeds, time."""
    def top1_or_none(run):
        return run.get("top1")
    changes = change_header(rows)
    return markdown(["method", "top-1 (%)", "mask IoU (%)", "mask F1 (%)", *changes,
                     "seeds", "train (s)"],
                    [[row.name, cell(results[row.name], top1_or_none),
                      cell(results[row.name], mask_value("iou")),
                      cell(results[row.name], mask_value("f1")),
                      *([change(row, results, top1_or_none)] if changes else []),
                      str(len(results[row.name])),
                      cell(results[row.name], lambda r: r["train_seconds"], 1, 0)]
                     for row in rows])


def pose_table(rows, results):
    """PCK at 20/25/30 mm, AUC, MPJPE, and the change of PCK@20 from the row it changes."""
    changes = change_header(rows)
    return markdown(["method", "PCK@20 (%)", "PCK@25 (%)", "PCK@30 (%)", "AUC 0-50 mm",
                     "MPJPE (mm)", *changes],
                    [[row.name, *(cell(results[row.name], pose_value(f"pck@{t}"))
                                  for t in (20, 25, 30)),
                      cell(results[row.name], pose_value("auc"), 1, 3),
                      cell(results[row.name], pose_value("mpjpe"), 1, 1),
                      *([change(row, results, pose_value("pck@20"))] if changes else [])]
                     for row in rows])


def weak_cell(row, results, metric, scale, digits):
    """A weak table's cell: mean ± std, and for a row that changes another (a semi-supervised
    column), its difference and verdict."""
    text = cell(results[row.name], metric, scale, digits)
    found = difference(row, results, metric, scale)
    if found is None:
        return text
    value, verdict = found
    return f"{text} ({value:+.{digits}f}" + (f", {verdict})" if verdict else ")")


def weak_tables(rows, results):
    """Per task whose labels are withheld (pose, then gesture): a table of its metric against the
    fraction of training videos with labels, a column per training variant (`bench.weak.column`),
    and the plot's series: {column: (means, stds)} over the fractions."""
    tables, series = [], {}
    rows_by_name = {row.name: row for row in rows}
    for task, metric, label, scale, digits in (("pose", pose_value("auc"), "AUC 0-50 mm", 1, 3),
                                               ("gesture", top1, "top-1 (%)", 100, 1)):
        columns = {}  # {column: {fraction: row name}}
        for row in rows:
            if row.weak["task"] == task:
                columns.setdefault(row.weak["column"], {})[row.weak["fraction"]] = row.name
        if not columns:
            continue
        fractions = sorted({f for names in columns.values() for f in names})
        lines = [[f"{f:.0%}", *(weak_cell(rows_by_name[names[f]], results, metric, scale, digits)
                                for names in columns.values())] for f in fractions]
        stats = {column: list(zip(*(mean_std([scale * metric(run) for run in results[names[f]]])
                                    for f in fractions), strict=True))
                 for column, names in columns.items()}
        tables += [f"{task.capitalize()} labels on a fraction of the training videos (any other "
                   "task's labels on all of them):", "",
                   *markdown([f"{task} labels", *(f"{label}, {column}" for column in columns)],
                             lines), ""]
        series[task] = (fractions, stats, label)
    return tables, series


def write_results(suite, tables, files, results, args, out, wall_seconds):
    """results.md, results.json and the plots of `tables` ({table: rows}); `files`: each row's
    config file, `results`: each row's runs, both by row name; `wall_seconds`: the whole run's
    time, data preparation included."""
    out.mkdir(parents=True, exist_ok=True)
    rows = {row.name: row for table in tables.values() for row in table}
    first = next(iter(results.values()))[0]
    chance = 100 / len(first["classes"])
    root = "../shared/fpha-dev" if Path(args.root or "") == DEV_SKELETONS else args.root
    data = (f"{first['data']['name']} at {root}" if args.root else
            "synthetic FPHA-format set (" + ", ".join(
                f"{k}={v}" for k, v in first["data"]["synthetic"].items()) + "), generated by "
            "handmt.data.synthetic")
    command = (f"python benchmarks/run.py {suite}{' --quick' if args.quick else ''}"
               f"{f' --seeds {args.seeds}' if args.seeds > 1 else ''}"
               f"{f' --jobs {args.jobs}' if args.jobs > 1 else ''}"
               f"{f' --tables {args.tables}' if args.tables else ''}"
               f"{f' --rows {shlex.quote(args.rows)}' if args.rows else ''}"
               f"{f' --root {args.root}' if args.root and root != '../shared/fpha-dev' else ''}"
               f"{f' --protocol {args.protocol}' if args.protocol != '1:1' else ''}"
               + "".join(f" --set {shlex.quote(override)}" for override in args.set))
    text = [f"# {suite}{' (quick)' if args.quick else ''}", "", f"Data: {data}.", "",
            f"Gesture: video-level top-1 over {first['videos']} test videos, softmax averaged "
            f"over each video's clips and crops; chance = {chance:.1f} %. "
            + ("Every video (training and test) is cropped to one square around its hand, the "
               "box of its ground-truth joints, except in rows named \"whole frame\" (the centred "
               f"square of the frame). 3D pose: {PROTOCOL_3D}; PCK over every labelled "
               "test frame. "
               if suite == "fpha" else "")
            + "Models trained from scratch (no pretrained weights); ± is the standard deviation "
            "over seeds" + (" and cross-subject folds." if any(row.folds for row in rows.values())
                            else ".")
            + (" Change: a row's difference from the row it changes by one component, in the "
               "table's metric (percentages in points); over seeds \"better\" or \"worse\" when "
               "it exceeds twice the standard error of the difference, else \"within noise\"."
               if any(row.compare for row in rows.values()) else ""), ""]
    if "gesture" in tables:
        text += ["## Gesture recognition", "",
                 *gesture_table(tables["gesture"], results, pose=suite == "fpha"), ""]
    if suite == "fpha-skeleton" and "gesture" in tables:
        text += [f"Published skeleton-only results, {args.protocol} protocol of the full FPHA "
                 "(reference lines, not run here; a development split is not the official one):",
                 "", *markdown(["method", "top-1 (%)", "source"],
                               [[name, f"{value:.2f}", source]
                                for name, value, source in PUBLISHED[args.protocol]]), ""]
    if "pose" in tables:
        text += ["## 3D hand pose", "", *pose_table(tables["pose"], results), ""]
        plot_pck_curves({row.name: (results[row.name][0]["pose"]["thresholds"],
                                    results[row.name][0]["pose"]["pck"])
                         for row in tables["pose"]},
                        out / "pck_curves.png", title="3D PCK on the test split (seed 0)")
    if "iterations" in tables:
        text += ["## Iterations", "", *gesture_table(tables["iterations"], results), ""]
    if "depth_supervision" in tables:
        text += ["## Depth supervision of an RGB recognizer (MSD)", "",
                 "Recognizers on RGB alone at test time; the Multi-Scale Decoder "
                 "regresses the depth frames in training only (loss weights cls : local : global "
                 "= 1 : 1 : 0.01) and deploy() removes it.", "",
                 *gesture_table(tables["depth_supervision"], results), ""]
    if "multimodal" in tables:
        text += ["## One network per modality, coupled by SSA (MTUT)", "",
                 "Networks for RGB and depth trained together; each runs alone at test time "
                 "(fusion: their softmax probabilities averaged). Rows without SSA come from one "
                 "training with the SSA weight at 0."
                 + (" Here each network is a per-frame ResNet-18 with SSA on res4 (the rows' "
                    "`bench.synthetic`): from scratch, MTUT's I3D does not learn this set's RGB "
                    "(benchmarks/results/fpha-quick-i3d-rgb)." if suite == "fpha" and not args.root
                    else ""), "",
                 *gesture_table(tables["multimodal"], results), ""]
    if "segmentation" in tables:
        text += ["## Hand segmentation", "",
                 "Per-frame hand masks (BCE + Dice, `handmt/models/heads/segmentation.py`) from "
                 "res2 of the RGB recognizer, upsampled to the input size; IoU and F1 of the "
                 "masks thresholded at 1/2, pixels of every frame of every test view pooled. The "
                 "floor predicts every frame as the per-pixel mean of the training masks.", "",
                 *segmentation_table(tables["segmentation"], results), ""]
    if "weak" in tables:
        lines, series = weak_tables(tables["weak"], results)
        text += ["## Weak supervision", "", *lines]
        for task, (fractions, stats, label) in series.items():
            plot_curves([100 * f for f in fractions],
                        {column: means for column, (means, _) in stats.items()},
                        out / f"weak_{task}.png", f"training videos with {task} labels (%)",
                        label + (" (mean ± std over seeds)" if args.seeds > 1 else ""),
                        title=f"Weak supervision: {task} labels withheld",
                        errors={column: stds for column, (_, stds) in stats.items()})
    minutes, seconds = divmod(round(wall_seconds), 60)
    text += [f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads. Command: `{command}`. Wall time: {minutes} min "
             f"{seconds} s ({args.jobs} training(s) at a time; data preparation included, none "
             f"where the cache held it already).", ""]
    (out / "results.md").write_text("\n".join(text))
    (out / "results.json").write_text(json.dumps(
        {"suite": suite, "data": data, "quick": args.quick, "seeds": args.seeds,
         "wall_seconds": round(wall_seconds, 1),
         "chance": chance / 100, "tables": {name: [row.name for row in rows]
                                            for name, rows in tables.items()},
         "rows": [{"method": row.name, "config": str(files[row.name].relative_to(REPO)),
                   "modality": row.modality, "metric": row.metric, "compare": row.compare,
                   "floor": row.floor,  # a trivial baseline, not a trained model
                   "top1": [r.get(row.metric) for r in runs],
                   "top1_mean": (mean_std([r[row.metric] for r in runs])[0]
                                 if row.metric in runs[0] else None),
                   "pose": [r.get("pose") for r in runs],
                   "segmentation": [r.get("segmentation") for r in runs],
                   "videos": runs[0]["videos"],
                   "train_seconds": [r["train_seconds"] for r in runs]}
                  for row, runs in ((rows[name], runs) for name, runs in results.items())]},
        indent=1))
    for row in rows.values():
        if row.plots:
            runs = results[row.name]
            plot_confusion(runs[0]["confusion"], out / f"confusion_{slug(row.name)}.png",
                           class_names=first["classes"],
                           title=f"{row.name}, seed 0: test confusion (rows: true class)")
            plot_training_log(runs[0]["log"], out / f"training_{slug(row.name)}.png")
    return "\n".join(text)


SUITES = sorted(path.name for path in BENCH.iterdir() if path.is_dir())


def suite_tables(rows):
    """The tables the rows of a suite fill, in TABLES order."""
    return [t for t in TABLES if any(t in row.tables for _, row in rows)]


def default_tables(suite, rows):
    """The tables a suite runs without --tables: all of its rows' but those run on request."""
    return [t for t in suite_tables(rows) if t not in ON_REQUEST.get(suite, ())]


def default_out(args, names):
    """benchmarks/results/<suite>[-quick][-<protocol>][-<tables>]: --quick, a protocol other than
    1:1 and a subset of tables (`names`, given with --tables) each get their own folder, so that
    they leave the whole suite's results alone."""
    return REPO / "benchmarks" / "results" / "-".join(
        [args.suite, *(["quick"] if args.quick else []),
         *([args.protocol] if args.protocol != "1:1" else []), *(names if args.tables else [])])


def select_tables(rows, names, quick, patterns=None):
    """{table: rows} for the chosen tables; --quick keeps the rows with a `bench.quick` list,
    `patterns` (--rows) those whose file name (without .yaml) matches one of them."""
    tables = {}
    for name in names:
        chosen = [row for file, row in rows
                  if name in row.tables and (not quick or row.quick is not None)
                  and (patterns is None or any(fnmatch.fnmatch(file.stem, p) for p in patterns))]
        if chosen:
            tables[name] = chosen
    return tables


def summary(result, metric):
    """'top-1 ... %, PCK@20 ... %, mask IoU ... %', for what the run has."""
    parts = [f"top-1 {100 * result[metric]:.1f} %"] if metric in result else []
    if "pose" in result:
        parts.append(f"PCK@20 {100 * result['pose']['pck@20']:.1f} %")
    if "segmentation" in result:
        parts.append(f"mask IoU {100 * result['segmentation']['iou']:.1f} %")
    return ", ".join(parts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=SUITES)
    p.add_argument("--root", help="the dataset folder (fpha: default the synthetic set)")
    p.add_argument("--quick", action="store_true",
                   help="small data, short schedules (3-4 min on 2 cores)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per row (mean ± std)")
    p.add_argument("--tables", help=f"comma-separated subset of the suite's tables "
                   f"({', '.join(TABLES)}; default: all of the suite's but fpha-skeleton's weak)")
    p.add_argument("--rows", help="comma-separated patterns of row files to run, e.g. "
                   "'00-tsn,04-*' (configs/benchmarks/<suite>/<row>.yaml; default: all)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every row (repeatable), e.g. train.epochs=20")
    p.add_argument("--out", type=Path, help="results folder")
    p.add_argument("--jobs", type=int, default=1,
                   help="trainings at once, each in its own process (default 1; e.g. 2 on 2 "
                   "cores: small models use one thread better than two)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true",
                   help="reuse runs already trained with the same config")
    p.add_argument("--protocol", choices=list(PUBLISHED), default="1:1",
                   help="fpha-skeleton: the split file (1:1) or six leave-one-subject-out folds")
    args = p.parse_args(argv)
    started = time.time()
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.suite == "fpha-skeleton" and not args.root:
        if not DEV_SKELETONS.is_dir():
            p.error(f"fpha-skeleton: no --root given and {DEV_SKELETONS} does not exist")
        args.root = str(DEV_SKELETONS)
    if args.protocol != "1:1" and args.suite != "fpha-skeleton":
        p.error("--protocol applies to the fpha-skeleton suite only")
    listed = suite_rows(args.suite)
    available = suite_tables(listed)
    names = [t for t in (args.tables or ",".join(default_tables(args.suite, listed))).split(",")
             if t]
    unknown = sorted(set(names) - set(available))
    if unknown:
        p.error(f"unknown table(s) {', '.join(unknown)} for {args.suite}; choose from "
                f"{', '.join(available)}")
    if args.suite not in ("fpha", "fpha-skeleton") and not args.root:
        p.error(f"{args.suite} is not embedded: give its folder with --root DIR")
    out = args.out or default_out(args, names)
    patterns = args.rows.split(",") if args.rows else None
    tables = select_tables(listed, names, args.quick, patterns)
    if not tables:
        p.error(f"no row of {args.suite} matches --rows {args.rows} in the chosen tables")
    if args.protocol == "cross-subject":
        tables = {name: [dataclasses.replace(row, folds=SKELETON_FOLDS) for row in rows]
                  for name, rows in tables.items()}
    files = {row.name: file for file, row in listed}
    rows = list({row.name: row for table in tables.values() for row in table}.values())

    # rows with the same config (one network of a multi-modal training, a row under another
    # name in another table) share one training
    def training(row):  # what a row's result depends on (a floor: its kind too)
        cfg = row_config(files[row.name], row, 0, None, args)
        return json.dumps([run_config(cfg), row.floor], sort_keys=True)

    keys = {row.name: training(row) for row in rows}
    first = {}  # a training's key -> the first row that needs it; the others share its runs
    for row in rows:
        first.setdefault(keys[row.name], row)
    todo = list(first)
    tasks = [(row, seed, fold) for row in first.values() for seed in range(args.seeds)
             for fold in (range(row.folds) if row.folds else [None])]

    def label(task):
        row, seed, fold = task
        return (f"[{args.suite} {todo.index(keys[row.name]) + 1}/{len(todo)}] {row.name}, "
                f"seed {seed}" + (f", fold {fold}" if fold is not None else ""))

    outcomes = run_tasks(tasks, files, args, out / "runs", label,
                         expected_seconds(out / "results.json"))
    runs = {key: [] for key in todo}
    for (row, _, _), outcome in zip(tasks, outcomes, strict=True):
        runs[keys[row.name]].append(outcome)
    results = {row.name: runs[keys[row.name]] for row in rows}
    print(write_results(args.suite, tables, files, results, args, out,
                        time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
