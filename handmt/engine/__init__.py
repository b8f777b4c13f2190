"""Training and evaluation: the `train` and `eval` options (options.py), the trainer, the
evaluator, checkpoints and torchrun support."""

from .optim import OPTIMIZERS, SCHEDULES
from .options import EvalOptions, TrainOptions, check_config, eval_options, train_options

__all__ = ["EvalOptions", "OPTIMIZERS", "SCHEDULES", "TrainOptions", "check_config",
           "eval_options", "train_options"]
