"""Training under torchrun: two CPU processes (gloo) against one process (supervised, and
FixMatch on unlabelled clips), and TensorBoard logs.

`test_two_processes_train_as_one_with_the_combined_batch` launches this file as a script with
`python -m torch.distributed.run --nproc_per_node 2`; `run_ranks` is what each process runs.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, default_collate

from handmt.engine import OPTIMIZERS, SCHEDULES, distributed, train_options, trainer
from handmt.engine.checkpoint import load_checkpoint, load_model_state
from handmt.engine.semi import SemiOptions, paired_views, semi_losses
from handmt.engine.trainer import CHECKPOINT, LOG, TENSORBOARD, seed_everything, train
from handmt.errors import ConfigError
from handmt.models import BACKBONES, build
from handmt.models.backbones import FeatureSpec

WORLD, BATCH = 2, 2  # processes, clips per process and step
ATOL = 1e-5  # float32 sums in another order (one batch of 4 against two of 2, averaged)


@BACKBONES.register("test_tiny_conv")
class TinyConv(nn.Module):
    """One convolution per frame, without BatchNorm: BatchNorm's batch statistics would differ
    between a batch of 2 * BATCH and its two halves."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.feature_info = {"res5": FeatureSpec(channels, 1, "b t c h w")}

    def forward(self, batch):
        clip = batch["rgb"]
        return {"res5": torch.relu(self.conv(clip.flatten(0, 1))).unflatten(0, clip.shape[:2])}


class Clips(Dataset):
    """Fixed clips whose class is the brightest colour channel; no augmentation, so that every
    process and the reference read the same values."""

    def __init__(self, n=12, classes=3, unlabelled=()):
        g = torch.Generator().manual_seed(0)
        self.num_classes = classes
        self.labels = torch.arange(n) % classes
        self.labels[list(unlabelled)] = -1  # no gesture label: FixMatch's clips
        self.pose_available = torch.zeros(n, dtype=torch.bool)
        self.clips = torch.rand(n, 2, 3, 8, 8, generator=g)
        for i, label in enumerate(self.labels):
            self.clips[i, :, label] += 1.0

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"rgb": self.clips[i], "label": self.labels[i], "video": torch.tensor(i)}


UNLABELLED = (0, 4, 5, 9)  # ranks see different numbers of them in a step
SEMI = {"weight": 1.0, "threshold": 0.0}  # every pseudo-label kept: a gradient at every step


def config(**train):
    return {"model": {"backbone": {"name": "test_tiny_conv"},
                      "heads": {"gesture": {"name": "clip_classifier", "num_classes": 3,
                                            "dropout": 0.0}}},
            "data": {"name": "fpha"},
            "train": {"epochs": 2, "batch_size": BATCH, "workers": 0, "seed": 3,
                      "clip_grad": None, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
                      "schedule": {"name": "cosine", "warmup_epochs": 1}, **train}}


def run_ranks(out):
    """Each torchrun process: two epochs straight, 1 + resume 1, and sync_bn on the CPU."""
    data, rank = Clips(), int(os.environ["RANK"])
    cfg = config(tensorboard=False)  # spares rank 0 importing tensorboard (tested below)
    # Rank 1 gets a folder of its own, which must stay absent: rank 0 alone writes.
    train(cfg, out / ("straight" if rank == 0 else "rank1"), train_set=data, val_set=data,
          progress=False)
    train(cfg, out / "sliced", train_set=data, val_set=data, progress=False, stop_after=1)
    train(cfg, out / "sliced", train_set=data, val_set=data, progress=False, resume=True)
    train(config(tensorboard=False, semi=SEMI), out / ("semi" if rank == 0 else "semi_rank1"),
          train_set=Clips(unlabelled=UNLABELLED), val_set=False, progress=False)
    try:
        train(config(sync_bn=True), out / "sync_bn", train_set=data, val_set=False)
    except ConfigError as err:
        (out / f"sync_bn_error_{rank}.txt").write_text(str(err))
    distributed.cleanup()


def reference(data, cfg):
    """One process that steps on the mean of the ranks' losses on their batches of each step
    (DistributedSampler gives rank r the shuffled indices r, r + WORLD, ...), as DDP averages
    their gradients; with every clip labelled, one batch of WORLD * BATCH clips. Its weights and
    the mean total loss of each epoch."""
    opts = train_options(cfg)
    seed_everything(opts.seed)
    model = build(cfg)
    semi = SemiOptions(**opts.semi) if opts.semi is not None else None
    if semi is not None:
        data = paired_views(data, cfg["data"], semi)
    optimizer = OPTIMIZERS.build(opts.optimizer, "train.optimizer", params=model.parameters())
    scheduler = SCHEDULES.build(opts.schedule, "train.schedule", optimizer=optimizer,
                                epochs=opts.epochs)
    epoch_losses = []
    for epoch in range(opts.epochs):
        orders = []
        for rank in range(WORLD):
            sampler = DistributedSampler(data, WORLD, rank, shuffle=True, seed=opts.seed,
                                         drop_last=True)
            sampler.set_epoch(epoch)
            orders.append(list(sampler))
        steps = len(orders[0]) // BATCH
        total = 0.0
        for step in range(steps):
            loss = 0.0
            for order in orders:
                batch = default_collate([data[i] for i in order[step * BATCH:(step + 1) * BATCH]])
                terms = semi_losses(model, batch, semi) if semi is not None else {}
                loss = loss + (model.losses(model(batch), batch)["total"]
                               + sum(terms.values())) / WORLD
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        epoch_losses.append(total / steps)
        scheduler.step()
    return model.state_dict(), epoch_losses


def test_two_processes_train_as_one_with_the_combined_batch(tmp_path):
    cpu_only = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # gloo, even where a GPU is
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          f"--nproc_per_node={WORLD}", __file__, str(tmp_path)],
                         capture_output=True, text=True, timeout=180, env=cpu_only)
    assert run.returncode == 0, run.stdout + run.stderr

    expected, epoch_losses = reference(Clips(), config())
    straight = load_checkpoint(tmp_path / "straight" / CHECKPOINT)
    model = build(config())
    load_model_state(model, straight, "the torchrun checkpoint")  # no DDP "module." prefix
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=ATOL, msg=key)
    log = [json.loads(line) for line in open(tmp_path / "straight" / LOG)]
    assert [r["epoch"] for r in log] == [1, 2] and "val_top1" in log[-1]
    # The logged loss is the mean over both ranks, i.e. over the combined batches.
    assert [r["train_total"] for r in log] == pytest.approx(epoch_losses, abs=ATOL)
    assert not (tmp_path / "rank1").exists()

    sliced = load_checkpoint(tmp_path / "sliced" / CHECKPOINT)
    assert sliced["epoch"] == 2
    for key, value in straight["model"].items():
        torch.testing.assert_close(sliced["model"][key], value, rtol=0, atol=1e-6, msg=key)
    assert len(open(tmp_path / "sliced" / LOG).readlines()) == 2

    expected, epoch_losses = reference(Clips(unlabelled=UNLABELLED), config(semi=SEMI))
    semi = load_checkpoint(tmp_path / "semi" / CHECKPOINT)
    model = build(config(semi=SEMI))
    load_model_state(model, semi, "the torchrun checkpoint")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=ATOL, msg=key)
    log = [json.loads(line) for line in open(tmp_path / "semi" / LOG)]
    assert [r["train_total"] for r in log] == pytest.approx(epoch_losses, abs=ATOL)
    assert all(r["train_semi"] > 0 for r in log)

    for rank in range(WORLD):
        error = (tmp_path / f"sync_bn_error_{rank}.txt").read_text()
        assert error.startswith("train.sync_bn: SyncBatchNorm needs CUDA"), error


def test_tensorboard_scalars_per_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    data = Clips(n=4)
    train(config(), tmp_path / "on", train_set=data, val_set=data, progress=False)
    events = EventAccumulator(str(tmp_path / "on" / TENSORBOARD))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"lr", "train/total", "train/cls", "val/top1", "seconds"} <= set(tags)
    assert [e.step for e in events.Scalars("train/total")] == [1, 2]
    train(config(tensorboard=False), tmp_path / "off", train_set=data, val_set=data,
          progress=False)
    assert not (tmp_path / "off" / TENSORBOARD).exists()


def test_without_tensorboard_a_one_line_notice(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    assert trainer.summary_writer.__wrapped__() is None
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1 and "tensorboard is not installed" in notice


if __name__ == "__main__":
    run_ranks(Path(sys.argv[1]))
