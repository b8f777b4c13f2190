"""Several training processes under torchrun: the process group and the few helpers the trainer
needs.

`torchrun --nproc_per_node N -m handmt.cli train CONFIG` starts N processes and gives each RANK,
LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT. `init()` joins them into one process group:
nccl with one GPU per process when CUDA is available, else gloo on the CPU. Without those
variables (or with WORLD_SIZE=1) nothing is initialized and every helper answers as for a single
process, so single-process training is unchanged.
"""

import contextlib
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError


def init():
    """Join torchrun's process group when torchrun started this process as one of several (a
    no-op otherwise, or when already joined). The group lives until `cleanup()`."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 or initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def initialized():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if initialized() else 0


def world_size():
    return dist.get_world_size() if initialized() else 1


def is_main():
    """Whether this process logs and writes checkpoints (rank 0, or the only process)."""
    return rank() == 0


def barrier():
    if initialized():
        dist.barrier()


@contextlib.contextmanager
def main_first():
    """Run the block on rank 0 first and then on the other ranks, which reuse what it wrote
    (a generated synthetic set, a frame cache) instead of racing to write it too."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def cleanup():
    if initialized():
        dist.destroy_process_group()


def default_device():
    """This process's device: its own GPU under torchrun (set by `init()`), else cuda or cpu."""
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{torch.cuda.current_device()}" if initialized() else "cuda"


def sync_batchnorm(model, device):
    """`model` with SyncBatchNorm in place of BatchNorm when several processes train (one process
    has nothing to synchronize: unchanged)."""
    if world_size() == 1:
        return model
    if torch.device(device).type != "cuda":
        raise ConfigError("train.sync_bn", f"SyncBatchNorm needs CUDA: torch {torch.__version__} "
                          "does not support it on the CPU (gloo); set train.sync_bn=false")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def wrap(model, device):
    """`model` in DistributedDataParallel (gradients averaged over processes in backward) when
    several processes train, else `model` itself."""
    if world_size() == 1:
        return model
    device_ids = [device] if torch.device(device).type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def average(values, device):
    """The mean over processes of a dict of numbers with the same keys on every process."""
    if world_size() == 1:
        return values
    total = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return dict(zip(values, (total / world_size()).tolist(), strict=True))
