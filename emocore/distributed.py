"""Running under ``torchrun``: one process per GPU (or CPU worker), rank 0 writes.

``torchrun --nproc_per_node=N -m emocore.cli train ...`` starts N copies of the command. Each
trains the same folds in lockstep with DistributedDataParallel (see :func:`emocore.train.train_model`):
NCCL on GPUs, gloo on the CPU. Only rank 0 records the run and writes the bundle; the other ranks
write into a throw-away folder. The same command on one process needs no torchrun at all.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from emocore.registry import CURVE_COLUMNS

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


class _Record:
    def __init__(self, run_id: str) -> None:
        self.id = run_id
        self.status = "running"


class NullRegistry:
    """What ranks other than 0 write to: nothing is recorded, files go to a temporary folder."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="emocore-rank-"))

    def create_run(self, **_: Any) -> _Record:
        return _Record(time.strftime("%Y%m%d-%H%M%S") + f"-rank{os.environ.get('RANK', '?')}")

    def run_dir(self, run_id: str) -> Path:
        path = self.root / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def curves(self, run_id: str) -> pd.DataFrame:
        return pd.DataFrame(columns=CURVE_COLUMNS)

    def get_run(self, run_id: str) -> _Record:
        return _Record(run_id)

    def __getattr__(self, name: str):  # update, set_status, log_epoch, add_artifact: no-ops
        return lambda *args, **kwargs: None
