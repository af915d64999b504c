"""CUDA code paths: skipped on machines without a GPU (CI has none)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emocore.data.dataset import VolumeSource
from emocore.training.train import (
    TrainConfig,
    load_checkpoint,
    predict_proba,
    save_checkpoint,
    train_model,
)
from tests.conftest import planted_volumes

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_trains_on_the_gpu_with_mixed_precision_and_loads_on_the_cpu(tmp_path):
    cache, meta = planted_volumes(80, 3)
    train, test = VolumeSource(cache, meta[meta.run != 4]), VolumeSource(cache, meta[meta.run == 4])
    cfg = TrainConfig(epochs=3, batch_size=8, widths=(4, 8, 8), hidden=16, device="cuda", amp=True)
    res = train_model(train, test, cfg, n_classes=3)
    assert next(res.model.parameters()).is_cuda
    assert res.peak_gpu_memory_gib is not None and res.peak_gpu_memory_gib > 0
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


def test_fast_path_on_the_gpu_compiles_and_agrees_with_fp32():
    """bf16 + channels_last + folded batch norm + torch.compile/CUDA graphs vs the eager fp32 model."""
    from emocore.data.stream import stream_batches
    from emocore.models.engine import FastOptions, InferenceEngine

    cache, meta = planted_volumes(120, 3)
    train, test = (
        VolumeSource(cache, meta[meta.run != 4]),
        VolumeSource(cache, meta[meta.run == 4], preload=False),
    )
    cfg = TrainConfig(epochs=3, batch_size=16, widths=(4, 8, 8), hidden=16, device="cuda")
    res = train_model(train, None, cfg, n_classes=3)
    fast = InferenceEngine(res.model, device="cuda", batch_size=32)
    probs = fast.predict_proba(test)
    info = fast.describe()
    assert info["compiled"], f"torch.compile fell back: {info['compile_fallback']}"
    assert info["bf16"] and info["cuda_graphs"] and info["batchnorm_folded"]
    again = fast.predict_proba(test)  # CUDA graphs replayed: same numbers
    np.testing.assert_allclose(again, probs, atol=1e-4)
    ref = InferenceEngine(res.model, device="cuda", options=FastOptions.baseline()).predict_proba(
        test
    )
    assert (probs.argmax(1) == ref.argmax(1)).mean() >= 0.995
    assert fast.stats["peak_gpu_memory_gib"] is not None
    x, y, _, n = next(stream_batches(test, 8, torch.device("cuda"), prefetch=2))
    assert x.is_cuda and y.is_cuda and n == 8


def test_bench_end_to_end_on_the_gpu(tmp_path):
    from emocore.workflows.bench import bench_end_to_end

    out = bench_end_to_end((22, 29, 8), device="cuda", volumes=512, epochs=2, folder=tmp_path)
    assert out["infer_agreement"] >= 0.995
    assert out["infer_fast_peak_gpu_gib"] is not None and out["train_fast_peak_gpu_gib"] is not None
