"""`emocore bench` measures what it says, names the device and compares against its own baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emocore.cli import main
from emocore.data.dataset import select
from emocore.workflows.bench import planted_cache


def test_planted_cache_is_a_readable_one_person_cache(tmp_path):
    cache = planted_cache(tmp_path / "c", (8, 9, 10), 120)
    meta = select(cache)
    assert cache.grid_shape == (8, 9, 10) and cache.subjects == ["01"] and len(meta) == 120
    assert sorted(meta["label"].unique()) == sorted(
        ["HAPPINESS", "FEAR", "SADNESS", "LOVE", "ANGER"]
    )
    assert [s.n_volumes for s in cache.runs("01")] == [15] * 8
    # the planted boxes differ between classes: class means are not all alike
    x = np.asarray(cache.array("01"), dtype=np.float32)
    means = np.stack([x[meta["y"] == c].mean(0) for c in range(5)])
    assert np.abs(means[0] - means[1]).max() > 1.0


@pytest.mark.slow
def test_bench_cli_reports_ratios_against_its_baseline_and_agreement(tmp_path, capsys):
    args = ["bench", "--device", "cpu", "--grid", "8,9,10", "--volumes", "256", "--epochs", "2"]
    args += ["--no-data", "--workdir", str(tmp_path), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "cpu" and out["torch"]
    for group in ("model", "e2e"):
        g = out[group]
        for what in ("train", "infer"):
            base, fast = g[f"{what}_baseline_volumes_per_s"], g[f"{what}_fast_volumes_per_s"]
            assert base > 0 and fast > 0
            assert g[f"{what}_ratio"] == pytest.approx(fast / base, abs=0.01)
    e2e = out["e2e"]
    assert e2e["volumes"] == 256 and e2e["infer_agreement"] == 1.0  # fp32 on the CPU: exact
    assert e2e["infer_fast_path"]["batchnorm_folded"] and not e2e["infer_fast_path"]["bf16"]
    assert list(tmp_path.iterdir()) == []  # the temporary cache is gone
    stats = out["stats"]
    assert stats["volumes"] == 10_240 and stats["permutations"] == 1000
    base, fast = stats["permutation_baseline_seconds"], stats["permutation_test_seconds"]
    assert base > 0 and fast > 0
    assert stats["permutation_ratio"] == pytest.approx(base / fast, rel=0.05, abs=0.01)


def test_bench_stats_and_its_baseline_compute_the_same_null():
    """The baseline is the plain way of computing emocore's null, not another null: over every
    rotation of one group, np.roll and scikit-learn give the scores emocore's test draws from."""
    from sklearn.metrics import balanced_accuracy_score

    from emocore.stats import metrics

    rng = np.random.default_rng(3)
    y = np.repeat(rng.integers(0, 5, 8), 6)  # 48 volumes in episodes of 6
    pred = np.where(rng.random(y.shape) < 0.5, y, rng.integers(0, 5, y.shape))
    by_hand = {round(balanced_accuracy_score(np.roll(y, k), pred), 9) for k in range(len(y))}
    test = metrics.permutation_test(y, pred, np.zeros(len(y)), "balanced_accuracy", 400, 0)
    assert {round(float(v), 9) for v in test.null} <= by_hand
    assert test.observed == pytest.approx(balanced_accuracy_score(y, pred))


def test_bench_cli_refuses_a_bad_grid(capsys):
    assert main(["bench", "--grid", "22,29", "--no-data"]) == 3  # a config error
    assert "--grid takes three sides" in capsys.readouterr().err
