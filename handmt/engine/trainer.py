"""The training loop: plain and readable.

`train(cfg, out_dir)` builds the model and datasets from the config, trains with the configured
optimizer, schedule and gradient clipping, validates, logs JSON lines to `out_dir/log.jsonl` and
writes `out_dir/checkpoint.pt` atomically after every epoch. `resume=True` continues from that
checkpoint: model, optimizer, scheduler and RNG states are restored, so 2 epochs straight and
1 + resume 1 give identical weights on CPU.
"""

import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data import build_dataset
from ..models import build
from . import OPTIMIZERS, SCHEDULES, eval_options, train_options
from .checkpoint import load_checkpoint, load_model_state, rng_state, save_checkpoint, set_rng_state
from .evaluate import evaluate, to_device

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg, out_dir, *, resume=False, stop_after=None, train_set=None, val_set=None,
          progress=True, device=None):
    """Train the model of `cfg`; return the last epoch's record (losses, validation metrics).

    `stop_after` ends this run after that many epochs (a time-sliced job continued later with
    `resume=True`). `train_set` / `val_set` default to the config's dataset splits; pass
    `val_set=False` to skip validation."""
    opts, eval_opts = train_options(cfg), eval_options(cfg)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(opts.seed)

    model = build(cfg).to(device)
    optimizer = OPTIMIZERS.build(opts.optimizer, "train.optimizer", params=model.parameters())
    scheduler = SCHEDULES.build(opts.schedule, "train.schedule", optimizer=optimizer,
                                epochs=opts.epochs)
    start_epoch = 0
    if resume:
        state = load_checkpoint(out_dir / CHECKPOINT)
        load_model_state(model, state, out_dir / CHECKPOINT)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start_epoch = state["epoch"]
    else:
        (out_dir / LOG).unlink(missing_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    if train_set is None:
        train_set = build_dataset(cfg["data"], "train")
    if val_set is None:
        val_set = build_dataset(cfg["data"], "test")
    loader = DataLoader(train_set, batch_size=opts.batch_size, shuffle=True, drop_last=True,
                        num_workers=opts.workers, persistent_workers=False)
    if len(loader) == 0:
        raise ValueError(f"train.batch_size={opts.batch_size} is larger than the training set "
                         f"({len(train_set)} clips)")

    record = {}
    with open(out_dir / LOG, "a") as log:
        end = opts.epochs if stop_after is None else min(opts.epochs, start_epoch + stop_after)
        for epoch in range(start_epoch, end):
            started = time.time()
            model.train()
            sums, seen = {}, 0
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{opts.epochs}", disable=not progress,
                       leave=False)
            for batch in bar:
                batch = to_device(batch, device)
                losses = model.losses(model(batch), batch)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                if opts.clip_grad is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip_grad)
                optimizer.step()
                seen += 1
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + value.item()
                bar.set_postfix(loss=f"{sums['total'] / seen:.3f}")
            record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                      **{f"train_{k}": v / seen for k, v in sums.items()}}
            scheduler.step()
            last = epoch + 1 == opts.epochs
            if val_set is not False and ((epoch + 1) % opts.eval_every == 0 or last):
                metrics = evaluate(model, val_set, eval_opts.batch_size, opts.workers,
                                   progress, device)
                record["val_top1"] = metrics["top1"]
            record["seconds"] = round(time.time() - started, 2)
            log.write(json.dumps(record) + "\n")
            log.flush()
            save_checkpoint(out_dir / CHECKPOINT, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "rng": rng_state(),
                "config": {k: v for k, v in cfg.items() if k != "_source"}})
    return record
