"""``emocore bench``: throughput figures measured in one run, with ratios against a baseline.

Three groups, each optional:

* ``data``: ``emocore synth`` + ``emocore prepare`` of a demo-sized cohort in a temporary folder,
  with the peak resident memory of the prepare step (measured in a child process), and random
  single-volume reads from the resulting cache (page cache warm).
* ``model``: training and inference volumes/s of the seed network on a grid, for the baseline
  (eager fp32, batches gathered from a plain DataLoader over single volumes) and for emocore's
  path (batched gathers from the cache; bf16 autocast and channels_last_3d on CUDA), with the ratio.
* ``cache``: end-to-end inference from a warm cache for one subject.

Timings are wall-clock medians of repeated steps after warm-up; they are reported, never asserted.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emocore.device import choose_device, gpu_summary
from emocore.models.cnn3d import SeedCNN

__all__ = ["bench_model", "bench_data", "run_bench"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_rate(
    step: Callable[[], None],
    items: int,
    device: torch.device,
    *,
    warmup: int = 2,
    repeats: int = 5,
    min_seconds: float = 1.0,
) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    t_start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - t_start < min_seconds:
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    return items / statistics.median(times)


def bench_model(
    grid: Sequence[int] = (22, 29, 8),
    *,
    device: str = "auto",
    batch_size: int = 32,
    n_classes: int = 5,
) -> dict[str, Any]:
    """Training and inference volumes/s: eager fp32 baseline vs emocore's path, on random volumes."""
    dev = choose_device(device)
    grid = tuple(int(g) for g in grid)
    torch.manual_seed(0)
    x = torch.randn(batch_size, 1, *grid, device=dev)
    y = torch.randint(0, n_classes, (batch_size,), device=dev)
    loss_fn = nn.CrossEntropyLoss()

    def train_rate(model: nn.Module, fast: bool) -> float:
        opt = torch.optim.Adam(
            model.parameters(), lr=1e-3, **({"fused": True} if fast and dev.type == "cuda" else {})
        )
        xb = (
            x.contiguous(memory_format=torch.channels_last_3d) if fast and dev.type == "cuda" else x
        )

        def step() -> None:
            with torch.autocast(
                dev.type, dtype=torch.bfloat16, enabled=fast and dev.type == "cuda"
            ):
                loss = loss_fn(model(xb).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return _median_rate(step, batch_size, dev)

    def infer_rate(model: nn.Module, fast: bool, batch: int) -> float:
        xi = torch.randn(batch, 1, *grid, device=dev)
        if fast and dev.type == "cuda":
            xi = xi.contiguous(memory_format=torch.channels_last_3d)
        model.eval()

        def step() -> None:
            with (
                torch.inference_mode(),
                torch.autocast(dev.type, dtype=torch.bfloat16, enabled=fast and dev.type == "cuda"),
            ):
                model(xi)

        return _median_rate(step, batch, dev)

    base = SeedCNN(grid, n_classes).to(dev)
    fast = SeedCNN(grid, n_classes).to(dev)
    if dev.type == "cuda":
        fast = fast.to(memory_format=torch.channels_last_3d)
        torch.cuda.reset_peak_memory_stats(dev)
    infer_batch = batch_size * (4 if dev.type == "cuda" else 2)
    out: dict[str, Any] = {
        "grid": list(grid),
        "batch_size": batch_size,
        "parameters": sum(p.numel() for p in base.parameters()),
        "train_baseline_volumes_per_s": round(train_rate(base, False), 1),
        "train_fast_volumes_per_s": round(train_rate(fast, True), 1),
        "infer_baseline_volumes_per_s": round(infer_rate(base, False, batch_size), 1),
        "infer_fast_volumes_per_s": round(infer_rate(fast, True, infer_batch), 1),
        "infer_fast_batch_size": infer_batch,
    }
    out["train_ratio"] = round(
        out["train_fast_volumes_per_s"] / out["train_baseline_volumes_per_s"], 2
    )
    out["infer_ratio"] = round(
        out["infer_fast_volumes_per_s"] / out["infer_baseline_volumes_per_s"], 2
    )
    if dev.type == "cuda":
        out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    return out


def _peak_rss_of(code: str) -> tuple[float, float]:
    """Run python code in a child; return (seconds, peak RSS in MiB) of that child."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib / 1024


def bench_data(
    *, subjects: int = 4, grid_mm: float = 7.2, reads: int = 4000, folder: str | Path | None = None
) -> dict[str, Any]:
    """synth + prepare of a demo-sized cohort, prepare's peak RSS, random reads from the cache."""
    from emocore.data.cache import open_cache

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        root = Path(tmp)
        synth = f"from emocore.data.synthetic import SynthConfig, generate_cohort; generate_cohort({str(root / 'cohort')!r}, SynthConfig(n_subjects={subjects}, grid_mm={grid_mm}))"
        t_synth, _ = _peak_rss_of(synth)
        prep = f"from emocore.data.prepare import prepare_cache; prepare_cache({str(root / 'cohort')!r}, {str(root / 'cohort' / 'annotations' / 'raw')!r}, {str(root / 'cache')!r})"
        t_prep, rss = _peak_rss_of(prep)
        cache = open_cache(root / "cache")
        rng = np.random.default_rng(0)
        subj = rng.choice(cache.subjects, reads)
        rows = rng.integers(0, cache.array(cache.subjects[0]).shape[0], reads)
        for s in cache.subjects:  # warm the page cache once
            np.asarray(cache.array(s)).sum()
        t0 = time.perf_counter()
        for s, r in zip(subj, rows, strict=True):
            np.asarray(cache.array(str(s))[r])
        read_rate = reads / (time.perf_counter() - t0)
        return {
            "subjects": subjects,
            "grid": list(cache.grid_shape),
            "synth_seconds": round(t_synth, 2),
            "prepare_seconds": round(t_prep, 2),
            "synth_plus_prepare_seconds": round(t_synth + t_prep, 2),
            "prepare_peak_rss_mib": round(rss, 1),
            "cache_random_reads_per_s": round(read_rate, 1),
        }


def run_bench(
    *,
    device: str = "auto",
    grid: Sequence[int] = (22, 29, 8),
    batch_size: int = 32,
    data: bool = True,
    model: bool = True,
) -> dict[str, Any]:
    dev = choose_device(device)
    result: dict[str, Any] = {
        "device": str(dev),
        "gpu": gpu_summary(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    if model:
        result["model"] = bench_model(grid, device=str(dev), batch_size=batch_size)
    if data:
        result["data"] = bench_data()
    return result
