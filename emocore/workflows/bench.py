"""``emocore bench``: throughput measured in one run, as ratios against a baseline in the same run.

Three groups, each optional:

* ``model`` (model only): the seed network on random volumes already on the device. Baseline:
  eager fp32, plain Adam. emocore: the engine's inference path (batch norm folded,
  channels_last_3d, bf16 autocast and torch.compile with CUDA graphs on CUDA) and its training
  path (channels_last_3d, bf16, fused Adam and torch.compile on CUDA).
* ``e2e`` (end to end from a warm cache): a cache of one person's worth of volumes with a
  planted class signal is written at the grid, read once to warm the page cache, then
  training epochs and whole-subject inference are timed. Baseline: a plain ``DataLoader`` over
  single memory-mapped volumes into the eager fp32 model. emocore: :func:`emocore.training.train.train_model`
  and :class:`emocore.models.engine.InferenceEngine`. The agreement of the two inference paths (the share
  of volumes with the same predicted class, on the trained model) is reported beside the speed.
* ``data``: ``emocore synth`` + ``emocore prepare`` of a demo-sized cohort, the peak resident
  memory of prepare (in a child process), and random single-volume reads from the cache.

Timings are wall-clock medians of repeated steps or epochs after a warm-up; they are reported,
never asserted in tests.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from emocore.constants import EMOTIONS
from emocore.data.cache import VolumeCache, create_cache, open_cache
from emocore.data.dataset import VolumeSource, select
from emocore.device import choose_device, gpu_summary
from emocore.models.cnn3d import SeedCNN
from emocore.models.engine import (
    FastOptions,
    InferenceEngine,
    cudnn_benchmark,
    maybe_compile,
    peak_gpu_gib,
)
from emocore.stats import metrics
from emocore.training.train import TrainConfig, TrainResult, train_model

__all__ = [
    "bench_model",
    "bench_end_to_end",
    "bench_data",
    "bench_stats",
    "run_bench",
    "planted_cache",
]

#: Volumes of one studyforrest person (8 runs): the default size of the end-to-end cache.
PERSON_VOLUMES = 3599


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    """Free what earlier phases left behind, then start counting this phase's peak."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _median_rate(
    step: Callable[[], None],
    items: int,
    device: torch.device,
    *,
    warmup: int = 3,
    repeats: int = 5,
    min_seconds: float = 1.0,
) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    times: list[float] = []
    t_start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - t_start < min_seconds:
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    return items / statistics.median(times)


def _ratio(fast: float, base: float) -> float | None:
    return round(fast / base, 2) if base > 0 else None


# -- model only ------------------------------------------------------------------------------
def bench_model(
    grid: Sequence[int] = (22, 29, 8),
    *,
    device: str = "auto",
    batch_size: int = 32,
    n_classes: int = 5,
    compile: str = "auto",
) -> dict[str, Any]:
    """Training and inference volumes/s of the seed network on random volumes already on the device.

    Each of the four phases builds its own network and frees it, so its peak GPU memory is its
    own (the phase's model, optimizer state, gradients and activations).
    """
    dev = choose_device(device)
    grid = tuple(int(g) for g in grid)
    out: dict[str, Any] = {"grid": list(grid), "batch_size": batch_size}
    out["parameters"] = sum(p.numel() for p in SeedCNN(grid, n_classes).parameters())
    for what in ("train", "infer"):
        for kind in ("baseline", "fast"):
            _reset_peak(dev)
            extra: dict[str, Any]
            if what == "train":
                rate, compiled = _train_phase(
                    kind == "fast", grid, dev, batch_size, n_classes, compile
                )
                extra = {"train_fast_compiled": compiled}
            else:
                rate, batch, path = _infer_phase(
                    kind == "fast", grid, dev, batch_size, n_classes, compile
                )
                extra = {"infer_fast_batch_size": batch, "infer_fast_path": path}
            out[f"{what}_{kind}_volumes_per_s"] = round(rate, 1)
            out[f"{what}_{kind}_peak_gpu_gib"] = peak_gpu_gib(dev)
            if kind == "fast":
                out.update(extra)
        out[f"{what}_ratio"] = _ratio(
            out[f"{what}_fast_volumes_per_s"], out[f"{what}_baseline_volumes_per_s"]
        )
    return out


def _train_phase(
    fast: bool,
    grid: tuple[int, ...],
    dev: torch.device,
    batch_size: int,
    n_classes: int,
    compile: str,
) -> tuple[float, bool]:
    """Training steps/s on one random batch: eager fp32 and plain Adam, or emocore's training
    path (``fast``); with whether the network ran compiled."""
    cuda = dev.type == "cuda"
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(0)
    x = torch.randn(batch_size, 1, *grid, device=dev)
    y = torch.randint(0, n_classes, (batch_size,), device=dev)
    model = SeedCNN(grid, n_classes).to(dev)
    forward = maybe_compile(model, option="off", device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if fast:  # emocore's training path
        # nn.Module.to takes memory_format at runtime; torch's overloads for it leave it out
        model = model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
        forward = maybe_compile(model, option=compile, device=dev, dynamic=None)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True if cuda else None)
        x = x.to(torch.bfloat16 if cuda else torch.float32)
        x = x.contiguous(memory_format=torch.channels_last_3d)

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=fast and cuda):
            loss = loss_fn(forward(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with cudnn_benchmark(dev, fast):
        rate = _median_rate(step, batch_size, dev)
    return rate, forward.is_compiled


def _infer_phase(
    fast: bool,
    grid: tuple[int, ...],
    dev: torch.device,
    batch_size: int,
    n_classes: int,
    compile: str,
) -> tuple[float, int, dict[str, Any] | None]:
    """Inference volumes/s: the eager model, or the engine's path (``fast``); with the batch
    size it used and, for the engine, the path it took."""
    torch.manual_seed(0)
    model = SeedCNN(grid, n_classes).eval()
    if not fast:
        model = model.to(dev)
        x = torch.randn(batch_size, 1, *grid, device=dev)

        def step() -> None:
            with torch.inference_mode():
                model(x)

        return _median_rate(step, batch_size, dev), batch_size, None
    engine = InferenceEngine(model, device=dev, options=FastOptions(compile=compile))  # a copy
    xi = torch.randn(engine.batch_size, 1, *grid, device=dev).to(torch.float16)

    def fast_step() -> None:
        with torch.inference_mode():
            engine.logits(xi)

    with cudnn_benchmark(dev, True):
        rate = _median_rate(fast_step, engine.batch_size, dev)
    return rate, engine.batch_size, engine.describe()


# -- end to end from a warm cache -------------------------------------------------------------
def planted_cache(
    folder: str | Path, grid: Sequence[int], volumes: int, *, signal: float = 1.0, seed: int = 0
):
    """A one-person cache of ``volumes`` float16 volumes with one planted box per emotion.

    Noise comes from a pool of 32 volumes (so writing a full-grid person takes seconds, not
    minutes); labels cycle through the five emotions in blocks of 10 volumes (20 s, the length
    of a short scene) over 8 runs. Returns the opened :class:`~emocore.data.cache.VolumeCache`.
    """
    grid = tuple(int(g) for g in grid)
    y = (np.arange(volumes) // 10) % len(EMOTIONS)
    labels = pd.DataFrame(
        {
            "run": 1 + (np.arange(volumes) * 8) // volumes,
            "volume": np.arange(volumes),
            "movie_time": 2.0 * np.arange(volumes),
            "label": np.asarray(EMOTIONS)[y],
        }
    )
    arrays = create_cache(
        folder, grid=grid, labels=labels, subjects=["01"], note="emocore bench planted volumes"
    )
    arr = arrays["01"]
    rng = np.random.default_rng(seed)
    pool = rng.standard_normal((32, *grid), dtype=np.float32)
    patterns = np.zeros((len(EMOTIONS), *grid), np.float32)
    for c in range(len(EMOTIONS)):  # a box per class, at different places along x
        lo = [int(g * (0.1 + 0.15 * c)) if i == 0 else g // 4 for i, g in enumerate(grid)]
        hi = [max(lo[i] + 1, lo[i] + g // 6) if i == 0 else 3 * g // 4 for i, g in enumerate(grid)]
        patterns[c, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = signal * 2.0
    step = max(1, (256 * 2**20) // (math.prod(grid) * 4))
    for a in range(0, volumes, step):
        b = min(volumes, a + step)
        arr[a:b] = (pool[rng.integers(0, len(pool), b - a)] + patterns[y[a:b]]).astype(np.float16)
    arr.flush()
    del arrays, arr
    return open_cache(folder)


class _SingleVolumes(torch.utils.data.Dataset):
    """The baseline's dataset: one memory-mapped volume per ``__getitem__``, as float32."""

    def __init__(self, array: np.ndarray, rows: np.ndarray, y: np.ndarray) -> None:
        self.array, self.rows, self.y = array, rows, y

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.array[self.rows[i]].astype(np.float32)), int(self.y[i])


def bench_end_to_end(
    grid: Sequence[int] = (22, 29, 8),
    *,
    device: str = "auto",
    batch_size: int = 32,
    volumes: int | None = None,
    epochs: int = 3,
    compile: str = "auto",
    folder: str | Path | None = None,
) -> dict[str, Any]:
    """Training and whole-subject inference from a warm cache: plain DataLoader vs emocore."""
    dev = choose_device(device)
    grid = tuple(int(g) for g in grid)
    if volumes is None:
        # one person, or what fits in 2 GiB of cache on the CPU (the full grid is 8 GB a person)
        volumes = PERSON_VOLUMES
        if dev.type == "cpu":
            volumes = max(256, min(volumes, (2 * 2**30) // (math.prod(grid) * 2)))
    epochs = max(2, epochs)
    out: dict[str, Any] = {"grid": list(grid), "volumes": volumes, "batch_size": batch_size}
    with tempfile.TemporaryDirectory(dir=folder, prefix="emocore-bench-") as tmp:
        t0 = time.perf_counter()
        cache = planted_cache(Path(tmp) / "cache", grid, volumes)
        out["cache_write_seconds"] = round(time.perf_counter() - t0, 2)
        array = cache.array("01")
        float(np.asarray(array[:: max(1, volumes // 64)]).sum())  # touch the file once
        array.sum(dtype=np.float32)  # and warm the page cache
        meta = select(cache)
        dataset = _SingleVolumes(array, meta["row"].to_numpy(), meta["y"].to_numpy())

        # training: plain DataLoader into eager fp32 vs train_model's fast path
        out.update(_train_baseline(dataset, grid, dev, batch_size=batch_size, epochs=epochs))
        fast_train, res = _train_fast(cache, meta, dev, batch_size, epochs, compile)
        out.update(fast_train)
        out["train_ratio"] = _ratio(
            out["train_fast_volumes_per_s"], out["train_baseline_volumes_per_s"]
        )
        out["train_accuracy_last_epoch"] = round(res.history[-1]["train_acc"], 3)

        # inference of the trained model over the whole person
        model = res.model.cpu()  # each inference phase puts its own copy on the device
        base_probs, baseline = _infer_baseline(model, dataset, grid, dev, batch_size)
        out.update(baseline)
        probs, fast_infer = _infer_fast(model, cache, meta, dev, compile)
        out.update(fast_infer)
        out["infer_ratio"] = _ratio(
            out["infer_fast_volumes_per_s"], out["infer_baseline_volumes_per_s"]
        )
        same = probs.argmax(1) == base_probs.argmax(1)
        out["infer_agreement"] = round(float(same.mean()), 5)
        out["infer_max_probability_difference"] = round(float(np.abs(probs - base_probs).max()), 5)
        del cache, array, dataset
    return out


def _train_baseline(
    dataset: _SingleVolumes,
    grid: tuple[int, ...],
    dev: torch.device,
    *,
    batch_size: int,
    epochs: int,
) -> dict[str, Any]:
    """The baseline's training: a shuffling ``DataLoader`` of single volumes into the eager fp32
    network with plain Adam; volumes/s is the median epoch's after the first."""
    torch.manual_seed(0)
    base = SeedCNN(grid, len(EMOTIONS)).to(dev)
    opt = torch.optim.Adam(base.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    _reset_peak(dev)
    epoch_s = []
    for _ in range(epochs):
        te = time.perf_counter()
        for xb, yb in loader:
            loss = loss_fn(base(xb.to(dev).unsqueeze(1)), yb.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(dev)
        epoch_s.append(time.perf_counter() - te)
    return {
        "train_baseline_volumes_per_s": round(len(dataset) / statistics.median(epoch_s[1:]), 1),
        "train_baseline_peak_gpu_gib": peak_gpu_gib(dev),
    }


def _train_fast(
    cache: VolumeCache,
    meta: pd.DataFrame,
    dev: torch.device,
    batch_size: int,
    epochs: int,
    compile: str,
) -> tuple[dict[str, Any], TrainResult]:
    """emocore's training (:func:`~emocore.training.train.train_model`) on the same volumes:
    its speed numbers, and what it trained."""
    _reset_peak(dev)
    source = VolumeSource(cache, meta)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, device=str(dev), compile=compile)
    res = train_model(source, None, cfg, n_classes=len(EMOTIONS))
    fast_epochs = [h["seconds"] for h in res.history]
    return {
        "train_fast_volumes_per_s": round(len(meta) / statistics.median(fast_epochs[1:]), 1),
        "train_fast_first_epoch_seconds": round(fast_epochs[0], 2),
        "train_fast_peak_gpu_gib": peak_gpu_gib(dev),
        "train_fast_compiled": res.compiled,
        "train_fast_source": "in memory" if source.preloaded else "memory-mapped",
    }, res


def _infer_baseline(
    model: nn.Module,
    dataset: _SingleVolumes,
    grid: tuple[int, ...],
    dev: torch.device,
    batch_size: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The baseline's inference: a copy of ``model`` in eager fp32 over a ``DataLoader`` of
    single volumes; its class probabilities and numbers."""
    ref = SeedCNN(grid, len(EMOTIONS))
    ref.load_state_dict(model.state_dict())
    ref = ref.to(dev).eval()
    seq = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    _reset_peak(dev)
    te = time.perf_counter()
    chunks = []
    with torch.inference_mode():
        for xb, _ in seq:
            chunks.append(torch.softmax(ref(xb.to(dev).unsqueeze(1)), 1).cpu())
    _sync(dev)
    base_s = time.perf_counter() - te
    return torch.cat(chunks).numpy(), {
        "infer_baseline_volumes_per_s": round(len(dataset) / base_s, 1),
        "infer_baseline_peak_gpu_gib": peak_gpu_gib(dev),
    }


def _infer_fast(
    model: nn.Module, cache: VolumeCache, meta: pd.DataFrame, dev: torch.device, compile: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """emocore's inference (:class:`~emocore.models.engine.InferenceEngine`) streaming the
    volumes from the cache: the first call, then the median of three; its class probabilities
    and numbers."""
    _reset_peak(dev)
    engine = InferenceEngine(model, device=dev, options=FastOptions(compile=compile))
    streamed = VolumeSource(cache, meta, preload=False)
    te = time.perf_counter()
    engine.predict_proba(streamed)
    first = round(time.perf_counter() - te, 2)
    runs = []
    for _ in range(3):
        te = time.perf_counter()
        probs = engine.predict_proba(streamed)
        runs.append(time.perf_counter() - te)
    return probs, {
        "infer_fast_first_call_seconds": first,
        "infer_fast_volumes_per_s": round(len(meta) / statistics.median(runs), 1),
        "infer_fast_peak_gpu_gib": engine.stats.get("peak_gpu_memory_gib"),
        "infer_fast_path": engine.describe(),
    }


# -- data ------------------------------------------------------------------------------------
def _peak_rss_of(code: str) -> tuple[float, float]:
    """Run python code in a child; return (seconds, peak RSS in MiB) of that child alone."""
    probe = "\nimport resource; print('peak-rss-kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code + probe], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("peak-rss-kib")][-1]
    return seconds, int(line.split()[1]) / 1024


def bench_data(
    *, subjects: int = 4, grid_mm: float = 7.2, reads: int = 4000, folder: str | Path | None = None
) -> dict[str, Any]:
    """synth + prepare of a demo-sized cohort, prepare's peak RSS, random reads from the cache."""
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


def bench_stats(
    *, people: int = 64, volumes: int = 160, permutations: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The permutation test behind every p emocore reports (:func:`emocore.stats.metrics.
    permutation_test`: circular shifts within each person x run, balanced accuracy), on
    ``people`` x ``volumes`` predictions with emotion episodes of 8-20 volumes, against the same
    null computed the plain way: one ``np.roll`` per group and scikit-learn's
    ``balanced_accuracy_score`` per shift (timed on 50 shifts, scaled to ``permutations``)."""
    # here: scikit-learn loads in 0.5 s, and only this baseline needs it
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(seed)
    truth = []
    for _ in range(people):
        labels: list[int] = []
        while len(labels) < volumes:
            labels += [int(rng.integers(5))] * int(rng.integers(8, 21))
        truth.append(labels[:volumes])
    y = np.array(truth)
    pred = np.where(rng.random(y.shape) < 0.5, y, rng.integers(0, 5, y.shape))
    groups = np.repeat(np.arange(people), volumes)
    t0 = time.perf_counter()
    metrics.permutation_test(y.ravel(), pred.ravel(), groups, "balanced_accuracy", permutations, 1)
    fast = time.perf_counter() - t0
    probe = 50
    shifts = rng.integers(0, volumes, (probe, people))
    t0 = time.perf_counter()
    for row in shifts:
        shifted = np.concatenate([np.roll(y[g], k) for g, k in enumerate(row)])
        balanced_accuracy_score(shifted, pred.ravel())
    base = (time.perf_counter() - t0) * permutations / probe
    return {
        "volumes": int(y.size),
        "permutations": permutations,
        "permutation_test_seconds": round(fast, 3),
        "permutation_baseline_seconds": round(base, 3),
        "permutation_ratio": _ratio(base, fast),
    }


def run_bench(
    *,
    device: str = "auto",
    grid: Sequence[int] = (22, 29, 8),
    batch_size: int = 32,
    compile: str = "auto",
    volumes: int | None = None,
    epochs: int = 3,
    data: bool = True,
    model: bool = True,
    e2e: bool = True,
    stats: bool = True,
    folder: str | Path | None = None,
) -> dict[str, Any]:
    """Every group asked for, with the machine it ran on."""
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
        result["model"] = bench_model(grid, device=str(dev), batch_size=batch_size, compile=compile)
    if e2e:
        result["e2e"] = bench_end_to_end(
            grid,
            device=str(dev),
            batch_size=batch_size,
            volumes=volumes,
            epochs=epochs,
            compile=compile,
            folder=folder,
        )
    if data:
        result["data"] = bench_data(folder=folder)
    if stats:
        result["stats"] = bench_stats()
    return result
