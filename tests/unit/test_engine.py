"""The fast path: exact where it claims to be, same batches as the plain loop, safe fallbacks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from emocore.data.cache import create_cache, open_cache
from emocore.data.dataset import VolumeSource, select
from emocore.data.stream import stream_batches
from emocore.errors import CacheError, ConfigError
from emocore.models.cnn3d import SeedCNN
from emocore.models.engine import (
    FastOptions,
    InferenceEngine,
    default_inference_batch,
    describe_path,
    fold_batchnorm,
)
from emocore.training.train import TrainConfig, predict_proba, train_model
from tests.conftest import SHAPE, planted_volumes

CPU = torch.device("cpu")


def _model_with_running_stats(seed: int = 0) -> SeedCNN:
    """A small seed network whose batch norms hold non-trivial statistics (as after training)."""
    torch.manual_seed(seed)
    model = SeedCNN(SHAPE, 4, widths=(3, 5, 6), hidden=8)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.3, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
    return model.eval()


def test_folding_batchnorm_keeps_the_outputs_and_leaves_the_model_alone():
    model = _model_with_running_stats()
    x = torch.randn(6, 1, *SHAPE)
    folded = fold_batchnorm(model)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules()) == 3
    # features (the embedding hook) still work on the folded copy
    assert folded.features(x).shape == (6, 8)


def test_folding_also_merges_sync_batchnorm_from_distributed_training():
    model = _model_with_running_stats()
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    engine = InferenceEngine(synced, device="cpu")
    assert engine.describe()["batchnorm_folded"]
    assert not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in engine.net.modules()
    )
    x = torch.randn(4, 1, *SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(engine.net(x), model(x), rtol=1e-5, atol=1e-5)


def _planted_source(n_per_class: int = 25, **kw):
    cache, meta = planted_volumes(n_per_class, 4, **kw)
    return VolumeSource(cache, meta, preload=False), cache, meta


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_fast_path_gives_the_baseline_probabilities_in_order(batch_size):
    source, _, _ = _planted_source()
    model = _model_with_running_stats()
    ref = InferenceEngine(
        model, device="cpu", options=FastOptions.baseline(), batch_size=batch_size
    )
    fast = InferenceEngine(model, device="cpu", batch_size=batch_size)
    p_ref, p_fast = ref.predict_proba(source), fast.predict_proba(source)
    assert p_fast.shape == (len(source), 4) and p_fast.dtype == np.float32
    np.testing.assert_allclose(p_fast, p_ref, atol=1e-5)
    assert (p_fast.argmax(1) == p_ref.argmax(1)).all()
    # the reference is the plain model, volume by volume
    with torch.no_grad():
        direct = torch.softmax(model(source.volumes(np.arange(5)).float().unsqueeze(1)), 1)
    np.testing.assert_allclose(p_ref[:5], direct.numpy(), atol=1e-6)
    assert fast.stats["volumes"] == len(source) and fast.stats["volumes_per_s"] > 0
    assert (
        fast.describe()["batchnorm_folded"] and not fast.describe()["compiled"]
    )  # CPU: no compile


def test_static_batches_pad_the_tail_and_report_the_real_count():
    source, _, _ = _planted_source(5)  # 20 volumes
    seen = []
    for x, y, idx, n in stream_batches(source, 8, CPU, pad_to_batch=True, prefetch=2):
        assert x.shape == (8, 1, *SHAPE) and x.dtype == torch.float16
        assert len(idx) == n == len(y)
        assert torch.count_nonzero(x[n:]) == 0
        seen.append(n)
    assert seen == [8, 8, 4]


@pytest.mark.parametrize("preload", [True, False])
def test_read_ahead_yields_the_batches_of_the_plain_loop(preload):
    cache, meta = planted_volumes(30, 3)
    source = VolumeSource(cache, meta, preload=preload)
    for shard in [(0, 1), (1, 2)]:
        plain = list(
            source.batches(
                16, shuffle=True, generator=torch.Generator().manual_seed(3), shard=shard
            )
        )
        ahead = list(
            stream_batches(
                source,
                16,
                CPU,
                shuffle=True,
                generator=torch.Generator().manual_seed(3),
                shard=shard,
                prefetch=3,
                readers=3,
            )
        )
        assert len(plain) == len(ahead)
        for (xa, ya, ia), (xb, yb, ib, n) in zip(plain, ahead, strict=True):
            assert torch.equal(ia, ib) and torch.equal(ya, yb) and n == len(ia)
            assert torch.equal(xa, xb.squeeze(1))


def test_gather_reads_mixed_subjects_and_any_row_order():
    cache, meta = planted_volumes(20, 2)
    other = {"02": cache.arrays["01"][::-1].copy()}
    cache.arrays.update(other)
    both = pd.concat([meta, meta.assign(subject="02")], ignore_index=True)
    source = VolumeSource(cache, both, preload=False)
    for idx in ([0, 1, 2, 3], [5, 9, 2], [41, 3, 40, 7], [10, 12, 14]):
        out = np.empty((len(idx), *SHAPE), np.float16)
        source.gather_into(np.asarray(idx), out)
        want = np.stack(
            [cache.arrays[both.subject[i]][both.row[i]] for i in idx]
        )  # one by one, by hand
        np.testing.assert_array_equal(out, want)


def test_training_with_read_ahead_matches_training_without():
    cache, meta = planted_volumes(20, 3)
    cfg = TrainConfig(epochs=2, batch_size=8, widths=(3, 4, 4), hidden=8, device="cpu", seed=2)
    a = train_model(VolumeSource(cache, meta, preload=False), None, cfg, n_classes=3)
    b = train_model(
        VolumeSource(cache, meta, preload=False),
        None,
        TrainConfig(**{**cfg.to_dict(), "prefetch": 0}),
        n_classes=3,
    )
    for (k, va), (_, vb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(va, vb), k


def test_a_failing_compile_falls_back_to_eager_with_a_warning(monkeypatch, caplog):
    class Broken:
        def __call__(self, x):
            raise RuntimeError("inductor: no working C++ compiler\nmore detail")

    monkeypatch.setattr(torch, "compile", lambda module, **kw: Broken())
    source, _, _ = _planted_source(5)
    model = _model_with_running_stats()
    fast = InferenceEngine(model, device="cpu", options=FastOptions(compile="on"))
    assert fast.compiled
    with caplog.at_level(logging.WARNING, logger="emocore.models.engine"):
        probs = fast.predict_proba(source)
    assert not fast.compiled
    assert "no working C++ compiler" in fast.describe()["compile_fallback"]
    assert "running it eagerly" in caplog.text
    assert "torch.compile failed" in describe_path(fast.describe())
    ref = InferenceEngine(model, device="cpu", options=FastOptions.baseline())
    np.testing.assert_allclose(probs, ref.predict_proba(source), atol=1e-5)


def test_a_wrong_grid_is_refused_with_the_fix():
    model = SeedCNN((8, 8, 8), 4, widths=(2, 2, 2), hidden=4)
    source, _, _ = _planted_source(2)
    with pytest.raises(
        ConfigError, match=r"trained on \(8, 8, 8\).*use a cache on the model's grid"
    ):
        InferenceEngine(model, device="cpu").predict_proba(source)


def test_out_of_memory_halves_an_automatic_batch_and_names_the_option_otherwise(monkeypatch):
    source, _, _ = _planted_source(5)
    model = _model_with_running_stats()
    real_run = InferenceEngine._run
    sizes = []

    def oom_above_4(self, src, progress):
        sizes.append(self.batch_size)
        if self.batch_size > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_run(self, src, progress)

    monkeypatch.setattr(InferenceEngine, "_run", oom_above_4)
    auto = InferenceEngine(model, device="cpu")
    assert auto.batch_size > 4
    probs = auto.predict_proba(source)
    assert auto.batch_size == 4 and sizes[-1] == 4 and len(probs) == len(source)
    fixed = InferenceEngine(model, device="cpu", batch_size=16)
    with pytest.raises(
        ConfigError, match=r"batch of 16 volumes does not fit.*lower --batch-size \(e\.g\. 8\)"
    ):
        fixed.predict_proba(source)


def test_training_out_of_memory_names_the_batch_option(monkeypatch):
    cache, meta = planted_volumes(5, 3)

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr("emocore.training.train._run_epoch", oom)
    cfg = TrainConfig(epochs=1, batch_size=8, widths=(2, 2, 2), hidden=4, device="cpu")
    with pytest.raises(ConfigError, match="--batch-size"):
        train_model(VolumeSource(cache, meta), None, cfg, n_classes=3)


def test_default_batches_fit_the_grid():
    assert default_inference_batch((22, 29, 8), CPU) == 64
    full = default_inference_batch((132, 175, 48), CPU)
    assert 1 <= full <= 8  # about 0.18 GB of activations per volume in fp32
    assert full & (full - 1) == 0


def test_options_are_checked():
    with pytest.raises(ConfigError, match="'compile' must be one of"):
        FastOptions(compile="yes")
    with pytest.raises(ConfigError, match="'compile' must be one of"):
        TrainConfig(compile="maybe")
    assert not FastOptions.baseline().fold_bn


def test_predict_proba_keeps_its_contract_with_amp_off():
    source, _, _ = _planted_source(5)
    model = _model_with_running_stats()
    probs = predict_proba(model, source, device="cpu", amp=False, batch_size=3)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def _rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    pytest.skip("no /proc/self/status RssAnon here")


def test_streaming_a_cohort_does_not_grow_host_memory(tmp_path):
    """Anonymous memory while streaming six people from the memmap is that of streaming one."""
    grid, per_subject = (40, 48, 32), 400
    subjects = ["01", "02", "03", "04", "05", "06"]
    labels = pd.DataFrame({"run": np.repeat(np.arange(1, 5), per_subject // 4), "label": "FEAR"})
    arrays = create_cache(tmp_path / "c", grid=grid, labels=labels, subjects=subjects)
    for arr in arrays.values():
        arr[:] = 1.0
        arr.flush()
    del arrays
    cache = open_cache(tmp_path / "c")
    cohort_mib = len(subjects) * per_subject * np.prod(grid) * 2 / 2**20  # 281 MiB

    def peak_growth_mib(who: list[str]) -> float:
        source = VolumeSource(cache, select(cache, subjects=who), preload=False)
        before = peak = _rss_anon_kib()
        total = 0
        for _x, _, _, n in stream_batches(source, 32, CPU, shuffle=True, prefetch=3, readers=2):
            total += n
            peak = max(peak, _rss_anon_kib())
        assert total == len(who) * per_subject
        return (peak - before) / 1024

    one = peak_growth_mib(subjects[:1])  # also warms the allocator's thread arenas
    everyone = peak_growth_mib(subjects)
    # holding the cohort would add ~234 MiB over one person; allocator arenas of the reader
    # threads account for a few tens of MiB of noise between the two passes
    assert everyone < max(one, 0) + 96, (
        f"{everyone:.0f} MiB for {len(subjects)} people ({cohort_mib:.0f} MiB) vs {one:.0f} for one"
    )


def test_create_cache_refuses_an_existing_folder(tmp_path):
    (tmp_path / "c").mkdir()
    with pytest.raises(CacheError, match="already exists"):
        create_cache(
            tmp_path / "c",
            grid=(4, 4, 4),
            labels=pd.DataFrame({"run": [1], "label": ["FEAR"]}),
            subjects=["01"],
        )


@pytest.mark.slow
def test_real_torch_compile_on_the_cpu_agrees_with_eager():
    """torch.compile (Inductor, C++ on the CPU) really runs and gives the eager probabilities."""
    source, _, _ = _planted_source(10)
    model = _model_with_running_stats()
    compiled = InferenceEngine(
        model, device="cpu", options=FastOptions(compile="on"), batch_size=16
    )
    probs = compiled.predict_proba(source)
    info = compiled.describe()
    if info["compile_fallback"]:
        pytest.skip(f"torch.compile cannot run here: {info['compile_fallback']}")
    assert info["compiled"]
    ref = InferenceEngine(model, device="cpu", options=FastOptions.baseline())
    np.testing.assert_allclose(probs, ref.predict_proba(source), atol=1e-4)


def test_training_restarts_eagerly_when_the_compiled_backward_fails(monkeypatch, caplog):
    """Inductor compiles the backward pass lazily: a failure there must not end the training."""

    class FakeInductorError(RuntimeError):
        __module__ = "torch._inductor.exc"

    class FailingBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise FakeInductorError("could not compile the backward graph")

    def fake_compile(module, **kwargs):
        return lambda x: FailingBackward.apply(module(x))

    monkeypatch.setattr(torch, "compile", fake_compile)
    cache, meta = planted_volumes(10, 3)
    cfg = TrainConfig(epochs=1, batch_size=8, widths=(2, 3, 3), hidden=4, device="cpu", seed=4)
    with caplog.at_level(logging.WARNING, logger="emocore.training.train"):
        res = train_model(
            VolumeSource(cache, meta),
            None,
            TrainConfig(**{**cfg.to_dict(), "compile": "on"}),
            n_classes=3,
        )
    assert "training eagerly instead" in caplog.text and not res.compiled
    eager = train_model(VolumeSource(cache, meta), None, cfg, n_classes=3)
    for (k, va), (_, vb) in zip(
        res.model.state_dict().items(), eager.model.state_dict().items(), strict=True
    ):
        assert torch.equal(va, vb), k
