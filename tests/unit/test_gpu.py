"""CUDA code paths: skipped on machines without a GPU (CI has none)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emocore.data.dataset import VolumeSource
from emocore.train import TrainConfig, load_checkpoint, predict_proba, save_checkpoint, train_model
from tests.conftest import planted_volumes

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_trains_on_the_gpu_with_mixed_precision_and_loads_on_the_cpu(tmp_path):
    cache, meta = planted_volumes(80, 3)
    train, test = VolumeSource(cache, meta[meta.run != 4]), VolumeSource(cache, meta[meta.run == 4])
    cfg = TrainConfig(epochs=3, batch_size=8, widths=(4, 8, 8), hidden=16, device="cuda", amp=True)
    res = train_model(train, test, cfg, n_classes=3)
    assert next(res.model.parameters()).is_cuda
    bf16 = predict_proba(res.model, test, device="cuda", amp=True)
    fp32 = predict_proba(res.model, test, device="cuda", amp=False)
    assert (bf16.argmax(1) == test.y.numpy()).mean() > 0.75
    assert (bf16.argmax(1) == fp32.argmax(1)).mean() >= 0.995
    path = save_checkpoint(tmp_path / "m.pt", res.model, config=cfg, classes_n=3, epoch=3)
    cpu_model, _ = load_checkpoint(path)
    cpu = predict_proba(cpu_model, test, device="cpu")
    assert np.allclose(cpu, fp32, atol=1e-3)


def test_full_grid_model_fits_and_runs_on_the_gpu():
    from emocore.models.cnn3d import SeedCNN

    model = SeedCNN((132, 175, 48)).cuda().eval()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(torch.randn(8, 1, 132, 175, 48, device="cuda"))
    assert out.shape == (8, 5)
