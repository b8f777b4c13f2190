"""The `train` and `eval` config sections."""

from dataclasses import dataclass, field
from typing import Literal

from ..data.factory import augmentation
from ..errors import ConfigError
from ..registry import check_arguments
from .optim import OPTIMIZERS, SCHEDULES
from .semi import SemiOptions


@dataclass
class TrainOptions:
    epochs: int = 10
    batch_size: int = 8  # per process: under torchrun the global batch is batch_size x processes
    optimizer: dict = field(default_factory=lambda: {"name": "sgd", "lr": 0.01})
    schedule: dict = field(default_factory=lambda: {"name": "cosine"})
    clip_grad: float | None = 20.0  # max global gradient norm; null disables clipping
    seed: int = 0
    workers: int = 2
    eval_every: int = 1  # epochs between validations (the last epoch is always validated)
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over all processes (CUDA only)
    tensorboard: bool = True  # scalars per epoch to OUT/tensorboard/ when tensorboard is installed
    # The GPU path (trainer.py): mixed precision of the forward pass (losses stay float32; fp16
    # with a GradScaler), channels-last weights, torch.compile, the device (null: the process's
    # GPU, else cpu) and gradients accumulated over `accumulate` batches per optimizer step (an
    # effective batch of batch_size x accumulate, x processes under torchrun).
    amp: Literal["off", "bf16", "fp16"] = "off"
    channels_last: bool = False
    compile: bool = False
    device: str | None = None
    accumulate: int = 1
    # semi-supervised training on the unlabelled videos (semi.py, SemiOptions); null: off
    semi: dict | None = None


@dataclass
class EvalOptions:
    clips: int = 1  # temporal clips per test video
    crops: int = 1  # spatial crops per clip (1 or 3)
    batch_size: int = 8
    split: str = "test"  # the split evaluated (IsoGD's test labels are not public: "val")
    size: int | None = None  # test input size when it differs from training (MSD paper: 256)


# (option, smallest valid value): the types are checked against the dataclasses' annotations
LOWER_BOUNDS = {TrainOptions: (("epochs", 1), ("batch_size", 1), ("eval_every", 1),
                               ("workers", 0), ("accumulate", 1)),
                EvalOptions: (("clips", 1), ("crops", 1), ("batch_size", 1))}


def check_bounds(options, values, path):
    for key, lowest in LOWER_BOUNDS[options]:
        if key in values and values[key] < lowest:
            raise ConfigError(f"{path}.{key}", f"must be at least {lowest}, got {values[key]}")


def check_config(cfg, train_path="train", eval_path="eval"):
    train = cfg.get(train_path) or {}
    check_arguments(TrainOptions, train, train_path)
    check_bounds(TrainOptions, train, train_path)
    if train.get("clip_grad") is not None and train["clip_grad"] <= 0:
        raise ConfigError(f"{train_path}.clip_grad", f"must be positive or null (no clipping), "
                          f"got {train['clip_grad']}")
    OPTIMIZERS.check(train.get("optimizer", TrainOptions().optimizer), f"{train_path}.optimizer",
                     params=None)
    SCHEDULES.check(train.get("schedule", TrainOptions().schedule), f"{train_path}.schedule",
                    optimizer=None, epochs=None)
    check_arguments(EvalOptions, cfg.get(eval_path) or {}, eval_path)
    check_bounds(EvalOptions, cfg.get(eval_path) or {}, eval_path)
    semi = train.get("semi")
    if semi is not None:
        check_arguments(SemiOptions, semi, f"{train_path}.semi")
        fn, provided = augmentation(cfg.get("data") or {})
        check_arguments(fn, semi.get("augment") or {}, f"{train_path}.semi.augment",
                        provided=provided)


def train_options(cfg):
    return TrainOptions(**(cfg.get("train") or {}))


def eval_options(cfg):
    return EvalOptions(**(cfg.get("eval") or {}))
