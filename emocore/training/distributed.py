"""Running under ``torchrun``: one process per GPU (or CPU worker), rank 0 writes.

``torchrun --nproc_per_node=N -m emocore.cli train ...`` starts N copies of the command. Each
trains the same folds in lockstep with DistributedDataParallel (see :func:`emocore.training.train.train_model`):
NCCL on GPUs, gloo on the CPU. Only rank 0 records the run and writes the bundle; the other ranks
write into a throw-away folder. The same command on one process needs no torchrun at all.
"""

from __future__ import annotations

import os
import tempfile

import torch

__all__ = ["init_from_env", "scratch_folder"]


def init_from_env() -> tuple[int, int, str]:
    """Join the process group torchrun describes; return (rank, world size, device for this rank)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, "auto"
    import torch.distributed as dist  # here: only runs under torchrun need it

    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return dist.get_rank(), dist.get_world_size(), f"cuda:{local}" if cuda else "cpu"


def scratch_folder() -> str:
    """A throw-away registry folder for ranks other than 0: they run the same code as rank 0
    while nothing reaches the user's registry."""
    return tempfile.mkdtemp(prefix=f"emocore-rank{os.environ.get('RANK', '')}-")
