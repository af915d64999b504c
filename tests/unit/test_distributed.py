"""Data-parallel training (torchrun / DDP): 2 CPU processes with gloo train like 1, within tolerance."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from emocore.data.dataset import VolumeSource
from emocore.training.train import TrainConfig, load_checkpoint, predict_proba, train_model
from tests.conftest import planted_volumes

CFG = TrainConfig(epochs=2, batch_size=16, widths=(4, 8, 8), hidden=16, device="cpu", seed=5)


def _data():
    cache, meta = planted_volumes(40, 3)
    return VolumeSource(cache, meta[meta.run != 4]), VolumeSource(cache, meta[meta.run == 4])


def _worker(rank: int, world: int, store: str, ckpt: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        train, _ = _data()
        res = train_model(train, None, CFG, n_classes=3, checkpoint=ckpt)
        assert len(res.history) == CFG.epochs
    finally:
        dist.barrier()  # nobody tears down gloo while the other rank still talks to it
        dist.destroy_process_group()
    # Done and torn down: leave without interpreter finalization, where gloo's worker threads can
    # still abort the process ("terminate called without an active exception", SIGABRT; see
    # pytorch/pytorch PR 179291). Reached only when training succeeded: failures still raise.
    os._exit(0)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    ckpt = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), str(ckpt)), nprocs=2, join=True)
    ddp_model, state = load_checkpoint(ckpt)
    torch.set_num_threads(1)
    train, test = _data()
    single = train_model(train, None, CFG, n_classes=3)
    a = predict_proba(ddp_model, test, device="cpu")
    b = predict_proba(single.model, test, device="cpu")
    y = test.y.numpy()
    # On the CPU each process normalises its own half-batch (no SyncBatchNorm with gloo), so the
    # runs are close, not bit-identical: same accuracy within 10 points, same loss curve within 10 %.
    assert abs((a.argmax(1) == y).mean() - (b.argmax(1) == y).mean()) <= 0.1
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.85
    single_loss = [h["train_loss"] for h in single.history]
    assert np.allclose([h["train_loss"] for h in state["history"]], single_loss, rtol=0.1)
