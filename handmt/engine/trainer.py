"""The training loop: plain and readable.

`train(cfg, out_dir)` builds the model and datasets from the config, trains with the configured
optimizer, schedule and gradient clipping, validates, and after every epoch writes
`out_dir/checkpoint.pt`, then `out_dir/log.jsonl` (JSON lines; TensorBoard scalars to
`out_dir/tensorboard/` when tensorboard is installed). `resume=True` continues from that
checkpoint: model, optimizer, scheduler and RNG states are restored, so 2 epochs straight and
1 + resume 1 give identical weights on CPU.

The GPU path (`train.amp`, `channels_last`, `compile`, `device`, `accumulate`): the forward pass
runs under torch.autocast in bf16 or fp16 and its floating outputs are cast back to float32
before the losses, so every loss (MTUT's SSA included) is computed in float32; fp16 scales the
loss with a GradScaler (its state is not checkpointed: it recalibrates within a few steps).
`channels_last` stores 4D weights channels-last and 5D (3D convolution) weights
channels-last-3d. `compile` runs the forward through torch.compile, one graph per batch shape.
With `accumulate: k` the gradients of k batches (each loss divided by k) are summed before one
optimizer step, and clipping applies to that sum; BatchNorm still sees batches of `batch_size`.

Reliability (README, "Reliability"): every file is replaced atomically (atomic.py). The
checkpoint is the commit point of an epoch: it holds the epoch's log records, and `log.jsonl` is
rewritten from them after it, so a kill between the two loses no record and a resume never
duplicates one. A resume compares the checkpoint's config with the current one and refuses
differences (naming the keys) unless `force`; a folder that holds a run is refused without
`resume` or `overwrite`. Labels the heads cannot score (a dataset with more classes than a head's
`num_classes`) are refused before training starts.

Under torchrun (WORLD_SIZE > 1) every process trains a DistributedDataParallel copy on its own
share of the training set (DistributedSampler); `train.batch_size` is per process. Rank 0 alone
validates, logs and writes checkpoints, of the unwrapped model, so that they are interchangeable
with single-process ones; the other ranks wait for it at a barrier.
"""

import contextlib
import functools
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..atomic import atomic_write, remove_stale_temps
from ..data import build_dataset
from ..data.labels import label_counts
from ..errors import ConfigError
from ..models import build
from . import distributed
from .checkpoint import load_checkpoint, load_model_state, rng_state, save_checkpoint, set_rng_state
from .evaluate import evaluate, to_device
from .optim import OPTIMIZERS, SCHEDULES
from .options import TrainOptions, eval_options, train_options
from .semi import SemiOptions, paired_views, semi_losses

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
CONFIG = "config.yaml"
TENSORBOARD = "tensorboard"
RUN_FILES = (CHECKPOINT, LOG, CONFIG, TENSORBOARD)
RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng", "config", "log")
UNSET = "(unset)"


# torch dtypes of `train.amp`
AMP = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def float32(outputs):
    """Model outputs (nested dicts, lists and tuples of tensors) with every floating tensor in
    float32."""
    if isinstance(outputs, dict):
        return {k: float32(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(float32(v) for v in outputs)
    return outputs.float() if torch.is_floating_point(outputs) else outputs


def to_channels_last(model):
    """`model` with its 4D tensors channels-last and its 5D tensors channels-last-3d."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.dim() in formats:
                tensor.data = tensor.data.contiguous(memory_format=formats[tensor.dim()])
    return model


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@functools.cache
def summary_writer():
    """TensorBoard's SummaryWriter class, or None (with a one-line notice, once per process)
    when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("handmt: tensorboard is not installed, logging JSON lines only "
              "(pip install handmt[tensorboard])", file=sys.stderr)
        return None
    return SummaryWriter


def write_log(path, records):
    """`path` (log.jsonl) rewritten atomically with one JSON line per record."""
    with atomic_write(path) as temp:
        temp.write_text("".join(json.dumps(record) + "\n" for record in records))


class RunLog:
    """Epoch records: `records` (which every checkpoint stores; a resumed run starts with its
    checkpoint's), `save()` rewrites `out_dir/log.jsonl` from them; with `tensorboard` on and
    installed also scalars in `out_dir/tensorboard/` (`train_total` as `train/total`)."""

    def __init__(self, out_dir, records, tensorboard=True):
        self.path = out_dir / LOG
        self.records = list(records)
        writer = summary_writer() if tensorboard else None
        self.board = writer(str(out_dir / TENSORBOARD)) if writer else None

    def append(self, record):
        self.records.append(record)
        if self.board:
            for key, value in record.items():
                if key != "epoch":
                    self.board.add_scalar(key.replace("_", "/", 1), value, record["epoch"])
            self.board.flush()

    def save(self):
        write_log(self.path, self.records)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.board:
            self.board.close()


def prepare_run_folder(out_dir, resume, overwrite):
    """Create `out_dir` and delete the temporary files of killed runs in it. Without `resume`, a
    folder that holds a run is refused, or with `overwrite` emptied of it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"run folder {out_dir} is a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in remove_stale_temps(out_dir):
        print(f"handmt: removed {path}, left by an interrupted run", file=sys.stderr)
    found = [name for name in RUN_FILES if (out_dir / name).exists()]
    if resume or not found:
        return
    if not overwrite:
        raise ValueError(f"{out_dir} already holds a run ({', '.join(found)}): --resume "
                         "continues it, --overwrite replaces it")
    for name in found:
        if (out_dir / name).is_dir():
            shutil.rmtree(out_dir / name)
        else:
            (out_dir / name).unlink()


def flatten(cfg, prefix=""):
    """{"train.optimizer.lr": 0.01, ...}: the leaves of a nested config by dotted path."""
    flat = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(saved, current):
    """["key: saved value -> current value", ...] over the dotted paths where they differ."""
    saved, current = flatten(saved), flatten(current)
    return [f"{key}: {saved.get(key, UNSET)} -> {current.get(key, UNSET)}"
            for key in sorted(saved.keys() | current.keys())
            if saved.get(key, UNSET) != current.get(key, UNSET)]


def run_config(cfg):
    """The config as the checkpoint stores it: without `_source` (the file it was read from) and
    `bench` (a benchmark row's metadata, which does not change the training)."""
    return {k: v for k, v in cfg.items() if k not in ("_source", "bench")}


def resume_state(path, cfg, force):
    """The checkpoint at `path`, checked: it holds every RESUME_KEYS entry and its config is
    `cfg` (or `force` accepts the differences, with a notice)."""
    state = load_checkpoint(path)
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        raise ValueError(f"{path} cannot be resumed: it lacks {', '.join(missing)} "
                         f"(handmt train's checkpoints hold {', '.join(RESUME_KEYS)})")
    differences = config_differences(state["config"], run_config(cfg))
    if differences and not force:
        raise ValueError(f"{path} was trained with another config (checkpoint -> now: "
                         f"{'; '.join(differences)}): resume with the run's config and "
                         "overrides, or add --force to continue with the new values")
    if differences:
        print(f"handmt: --force: resuming {path} with {'; '.join(differences)} (the optimizer "
              "and schedule continue from their saved state)", file=sys.stderr)
    return state


def check_class_counts(cfg, datasets):
    """Refuse a dataset with more classes than a head's `num_classes` (its labels would fail
    inside the loss, at the first batch). Every training dataset declares `num_classes`; heads
    without classes (MSD's depth decoders) are not concerned."""
    for task, head in cfg["model"]["heads"].items():
        if "num_classes" not in head:
            continue
        for split, dataset in datasets.items():
            if dataset.num_classes > head["num_classes"]:
                raise ConfigError(f"model.heads.{task}.num_classes",
                                  f"is {head['num_classes']}, but the {split} set has "
                                  f"{dataset.num_classes} classes (labels up to "
                                  f"{dataset.num_classes - 1})")


def checkpoint_state(model, optimizer, scheduler, epoch, cfg, records):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch, "rng": rng_state(),
            "config": run_config(cfg), "log": records}


@dataclass
class Run:
    """What a run's epochs work on."""
    model: nn.Module  # the unwrapped model: losses, set_epoch, checkpoints, validation
    net: nn.Module  # what runs the forward pass: `model`, under torchrun in DDP, maybe compiled
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    opts: TrainOptions
    device: torch.device
    progress: bool  # progress bars (rank 0's)
    semi: SemiOptions | None = None  # train.semi: FixMatch, pose consistency
    epoch: int = 0  # the epoch being trained


def train(cfg, out_dir, *, resume=False, force=False, overwrite=False, stop_after=None,
          train_set=None, val_set=None, progress=True, device=None):
    """Train the model of `cfg`; return the last epoch's record (losses, validation metrics;
    under torchrun the validation metrics on rank 0 only).

    `resume` continues the run in `out_dir` (`force`: even with another config); `overwrite`
    replaces a run there. `stop_after` ends this run after that many epochs (a time-sliced job
    continued later with `resume=True`). `train_set` / `val_set` default to the config's dataset
    splits (a dataset passed in declares `num_classes` and per-video `labels` and
    `pose_available`, as data.base.ClipDataset does); pass `val_set=False` to skip validation."""
    if resume and overwrite:
        raise ValueError("--resume continues the run, --overwrite replaces it: give one")
    if force and not resume:
        raise ValueError("--force accepts config differences on --resume only")
    opts, eval_opts = train_options(cfg), eval_options(cfg)
    distributed.init()
    device = torch.device(device or opts.device or distributed.default_device())
    out_dir = Path(out_dir)
    if distributed.is_main():
        prepare_run_folder(out_dir, resume, overwrite)
    # Each rank draws its own augmentations; DDP copies rank 0's initial weights to the others.
    seed_everything(opts.seed + distributed.rank())
    run, start_epoch, records = start_run(cfg, opts, device, out_dir, resume, force, progress)
    train_set, val_set = run_datasets(cfg, eval_opts.split, train_set, val_set)
    if run.semi is not None and run.semi.weight > 0:
        # FixMatch's strong views (the pose term warps in the batch)
        train_set = paired_views(train_set, cfg["data"], run.semi)
    loader, sampler = training_loader(train_set, opts)
    if distributed.is_main():  # written once every check has passed
        with atomic_write(out_dir / CONFIG) as temp:
            temp.write_text(yaml.safe_dump(cfg, sort_keys=False))

    end = opts.epochs if stop_after is None else min(opts.epochs, start_epoch + stop_after)
    record = {}
    with (RunLog(out_dir, records, opts.tensorboard) if distributed.is_main()
          else contextlib.nullcontext()) as log:
        for epoch in range(start_epoch, end):
            started = time.time()
            record = train_epoch(run, loader, sampler, epoch)
            if distributed.is_main():
                end_epoch(run, cfg, out_dir, log, record, started, val_set, eval_opts.batch_size)
            distributed.barrier()  # the other ranks wait for rank 0's validation and checkpoint
    return record


def start_run(cfg, opts, device, out_dir, resume, force, progress):
    """The Run of `cfg` (model, optimizer, schedule; with `resume` their states, and the RNG's,
    from the checkpoint in `out_dir`), the epoch it starts at and the log records so far."""
    model = build(cfg).to(device)
    if opts.channels_last:
        model = to_channels_last(model)
    if opts.sync_bn:
        model = distributed.sync_batchnorm(model, device)
    optimizer = OPTIMIZERS.build(opts.optimizer, "train.optimizer", params=model.parameters())
    scheduler = SCHEDULES.build(opts.schedule, "train.schedule", optimizer=optimizer,
                                epochs=opts.epochs)
    start_epoch, records = 0, []
    if resume:
        start_epoch, records = restore(out_dir, cfg, force, opts, model, optimizer, scheduler)
    net = distributed.wrap(model, device)  # DDP under torchrun; `model` stays the unwrapped one
    if opts.compile:
        # one graph per input shape (the last, smaller batch compiles once more): the dynamic-shape
        # graph that torch 2.14 builds for a second shape fails to compile for ACTION networks
        net = torch.compile(net, dynamic=False)
    scaler = torch.amp.GradScaler(device.type, enabled=opts.amp == "fp16")
    semi = SemiOptions(**opts.semi) if opts.semi is not None else None
    run = Run(model, net, optimizer, scheduler, scaler, opts, device, progress, semi)
    return run, start_epoch, records


def restore(out_dir, cfg, force, opts, model, optimizer, scheduler):
    """Load the checkpoint in `out_dir` into the model, optimizer, schedule and RNGs (checked
    by `resume_state`); the epoch it ends and its log records."""
    path = out_dir / CHECKPOINT
    state = resume_state(path, cfg, force)
    if distributed.is_main():  # the log as the checkpoint committed it: drops records written
        write_log(out_dir / LOG, state["log"])  # after it, restores one a kill kept from the file
    if state["epoch"] >= opts.epochs:
        raise ValueError(f"{path} has trained {state['epoch']} epochs and train.epochs is "
                         f"{opts.epochs}: nothing left to resume")
    load_model_state(model, state, path)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    rank = distributed.rank()
    if rank > 0:  # the checkpoint holds rank 0's RNG state: the others start fresh streams
        seed_everything(opts.seed + rank + distributed.world_size() * state["epoch"])
    return state["epoch"], state["log"]


def run_datasets(cfg, split, train_set, val_set):
    """The training and validation sets (the config's splits where None is given), their class
    counts checked against the heads'."""
    with distributed.main_first():
        if train_set is None:
            train_set = build_dataset(cfg["data"], "train")
        if val_set is None:
            val_set = build_dataset(cfg["data"], split)
    check_class_counts(cfg, {"training": train_set,
                             **({split: val_set} if val_set is not False else {})})
    if distributed.is_main():  # what is labelled, once the sets are accepted
        for name, dataset in (("train", train_set), (split, val_set)):
            if dataset is not False:
                print(f"handmt: {name} set: {label_counts(dataset)}", file=sys.stderr)
    return train_set, val_set


def training_loader(train_set, opts):
    """The training DataLoader and, under torchrun, its DistributedSampler (else None)."""
    # Under torchrun every rank reads len(train_set) // world clips, in whole batches, so that all
    # ranks take the same number of steps.
    sampler = (DistributedSampler(train_set, shuffle=True, seed=opts.seed, drop_last=True)
               if distributed.world_size() > 1 else None)
    loader = DataLoader(train_set, batch_size=opts.batch_size, shuffle=sampler is None,
                        sampler=sampler, drop_last=True, num_workers=opts.workers,
                        persistent_workers=False)
    if len(loader) == 0:
        share = f", {len(sampler)} per process" if sampler else ""
        raise ValueError(f"train.batch_size={opts.batch_size} is larger than the training set "
                         f"({len(train_set)} clips{share})")
    return loader, sampler


def train_epoch(run, loader, sampler, epoch):
    """One epoch of training; its record: epoch (from 1), lr, mean losses `train_{name}` over
    every rank's steps. The schedule steps at its end."""
    run.net.train()
    run.epoch = epoch
    run.model.set_epoch(epoch)  # e.g. MTUT's SSA starts at ssa.start_epoch
    if sampler is not None:
        sampler.set_epoch(epoch)  # a new shuffle every epoch, the same on every rank
    sums, seen = {}, 0
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{run.opts.epochs}",
               disable=not (run.progress and distributed.is_main()), leave=False)
    for step, batch in enumerate(bar):
        losses = train_step(run, to_device(batch, run.device), step, len(loader))
        seen += 1
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + value.item()
        bar.set_postfix(loss=f"{sums['total'] / seen:.3f}")
    sums = distributed.average(sums, run.device)  # every rank took `seen` steps
    record = {"epoch": epoch + 1, "lr": run.optimizer.param_groups[0]["lr"],
              **{f"train_{k}": v / seen for k, v in sums.items()}}
    run.scheduler.step()
    return record


def train_step(run, batch, step, steps):
    """Forward and backward of batch `step` of `steps`; the optimizer steps after the last batch
    of each group of `accumulate`. Returns the losses."""
    opts, amp = run.opts, AMP[run.opts.amp]
    with torch.autocast(run.device.type, dtype=amp, enabled=amp is not None):
        outputs = run.net(batch)
        # Under DDP the semi terms' forward passes run on the unwrapped model: each parameter's
        # gradient is still accumulated once over the whole graph before DDP's hook averages it
        # over the ranks (tests/test_distributed.py checks this against one process).
        semi = (semi_losses(run.model, batch, run.semi)
                if run.semi is not None and run.epoch >= run.semi.start_epoch else {})
    losses = run.model.losses(float32(outputs), batch)
    for name, value in semi.items():
        losses[name] = value
        losses["total"] = losses["total"] + value
    # this optimizer step sums the gradients of batches first .. first + group - 1
    # (`accumulate` of them, fewer at the epoch's end)
    first = step - step % opts.accumulate
    group = min(opts.accumulate, steps - first)
    if step == first:
        run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(losses["total"] / group).backward()
    if step + 1 == first + group:
        run.scaler.unscale_(run.optimizer)  # clip the true gradients
        if opts.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), opts.clip_grad)
        run.scaler.step(run.optimizer)
        run.scaler.update()
    return losses


def end_epoch(run, cfg, out_dir, log, record, started, val_set, batch_size):
    """Rank 0's end of an epoch begun at time `started`: validation on `val_set` (unless False)
    when due, the record's `seconds`, then the checkpoint holding the record and the rewritten
    log."""
    epoch, opts = record["epoch"], run.opts
    if val_set is not False and (epoch % opts.eval_every == 0 or epoch == opts.epochs):
        metrics = evaluate(run.model, val_set, batch_size, opts.workers, run.progress,
                           run.device)
        if "top1" in metrics:  # absent for a segmentation-only model
            record["val_top1"] = metrics["top1"]
        if "segmentation" in metrics:
            record["val_mask_iou"] = metrics["segmentation"]["iou"]
    record["seconds"] = round(time.time() - started, 2)
    log.append(record)
    save_checkpoint(out_dir / CHECKPOINT, checkpoint_state(
        run.model, run.optimizer, run.scheduler, epoch, cfg, log.records))
    log.save()
