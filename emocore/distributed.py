"""Running under ``torchrun``: one process per GPU (or CPU worker), rank 0 writes.

``torchrun --nproc_per_node=N -m emocore.cli train ...`` starts N copies of the command. Each
trains the same folds in lockstep with DistributedDataParallel (see :func:`emocore.train.train_model`):
NCCL on GPUs, gloo on the CPU. Only rank 0 records the run and writes the bundle; the other ranks
write into a throw-away folder. The same command on one process needs no torchrun at all.
"""

from __future__ import annotations

import os
import tempfile

import torch

from emocore.registry import Registry

__all__ = ["init_from_env", "NullRegistry"]


def init_from_env() -> tuple[int, int, str]:
    """Join the process group torchrun describes; return (rank, world size, device for this rank)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, "auto"
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return dist.get_rank(), dist.get_world_size(), f"cuda:{local}" if cuda else "cpu"


class NullRegistry(Registry):
    """What ranks other than 0 record to: a real registry in a throw-away folder, so they run
    the same code as rank 0 while nothing reaches the user's registry."""

    def __init__(self) -> None:
        super().__init__(tempfile.mkdtemp(prefix=f"emocore-rank{os.environ.get('RANK', '')}-"))
