"""The default saliency map depends on the model (issue 21, items 4 and 5).

* On a synthetic cohort with planted patterns, the default map finds the pattern better than
  the map of a weight-randomised copy: the lower end of the bootstrap interval of (trained AUC -
  randomised AUC) is above 0, and the input alone's AUC (mean |x|, no model) is reported
  beside it.
* On a cohort whose signal is made another way (sparse signed patterns and a response shared by
  everybody, as tests/integration/independent_cohort.py makes them), the default map's median
  rank correlation with the map of a weight-randomised copy is at most 0.2.

The fast checks use tiny in-memory cohorts and tiny networks. The sweep tests run the real
pipeline (a synthetic cohort or the independent cohort, prepare, leave-one-subject-out
training) and take minutes: ``pytest -m sweep tests/unit/test_saliency_model_dependence.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from emocore.data.dataset import VolumeSource
from emocore.interpret.saliency import DEFAULT_METHOD
from emocore.interpret.saliency_checks import RANDOMISATION_PASS, saliency_checks
from emocore.models.cnn3d import SeedCNN
from tests.conftest import ArrayCache

CLASSES = ["FEAR", "LOVE", "SADNESS"]


def _brain(shape: tuple[int, int, int]) -> np.ndarray:
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2
    radius = centre + 0.5
    return (((grid - centre[:, None, None, None]) / radius[:, None, None, None]) ** 2).sum(0) <= 1


def _cohort(shape, patterns: np.ndarray, *, n_per: int, seed: int, shared: float = 1.0):
    """Volumes whose class ``k`` carries ``patterns[k]`` (brain voxels), plus unit noise and a
    slow response with one spatial map that every volume shares."""
    rng = np.random.default_rng(seed)
    brain = _brain(shape)
    y = np.repeat(np.arange(len(patterns)), n_per)
    rng.shuffle(y)
    movie = np.convolve(rng.normal(size=len(y) + 20), np.ones(8) / 8, "same")[10 : 10 + len(y)]
    x = np.zeros((len(y), *shape), np.float32)
    x[:, brain] = (
        patterns[y]
        + rng.normal(size=(len(y), int(brain.sum())))
        + shared * movie[:, None] * rng.normal(size=int(brain.sum()))
    )
    meta = pd.DataFrame({"subject": "01", "row": np.arange(len(y)), "y": y, "run": 1})
    return VolumeSource(ArrayCache({"01": x.astype(np.float16)}), meta), brain


def _train(source: VolumeSource, shape, *, epochs: int, seed: int) -> SeedCNN:
    torch.manual_seed(seed)
    model = SeedCNN(shape, len(CLASSES), widths=(2, 4, 4), hidden=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = source.volumes(np.arange(len(source.y))).float().unsqueeze(1)
    y = source.y
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y)).split(16):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    return model.eval()


def _blobs(shape, brain: np.ndarray, amplitude: float) -> tuple[np.ndarray, dict]:
    """One Gaussian blob per class (as emocore's generator plants them), brain voxels only."""
    grid = np.indices(shape).astype(float)
    centres = [(0.3, 0.3, 0.5), (0.7, 0.5, 0.5), (0.4, 0.75, 0.5)]
    patterns, truths = [], {}
    for name, c in zip(CLASSES, centres, strict=True):
        at = np.array(c) * (np.array(shape) - 1)
        blob = np.exp(-(((grid - at[:, None, None, None]) / 2.5) ** 2).sum(0) / 2)
        patterns.append(amplitude * blob[brain])
        truths[name] = (blob * brain).astype(np.float32)
    return np.stack(patterns), truths


def test_the_default_map_finds_a_planted_pattern_that_a_randomised_copy_does_not():
    shape = (20, 24, 10)
    brain = _brain(shape)
    patterns, truths = _blobs(shape, brain, amplitude=1.5)
    source, _ = _cohort(shape, patterns, n_per=16, seed=0)
    model = _train(source, shape, epochs=5, seed=0)
    out = saliency_checks(
        model,
        source,
        CLASSES,
        mask=brain,
        truths=truths,
        device="cpu",
        max_per_class=6,
        cascade=False,
        randomisation_seed=1,
    )
    for name, record in out.records.items():
        assert record["method"] == DEFAULT_METHOD
        low, high = record["auc_difference_ci95"]
        assert low > 0 and record["finds_planted_pattern"] is True, (name, record)
        assert low <= record["auc"] - record["auc_randomised"] <= high
        assert 0.5 < record["auc_input_only"] <= 1  # reported beside it; the input shows it too


def _randomisation_rho(method: str = DEFAULT_METHOD) -> list[float]:
    """Rank correlation of each emotion's map with a weight-randomised copy's, on a cohort of
    sparse signed patterns (a fifth of the voxels, as in the independent cohort)."""
    shape = (24, 28, 12)
    brain = _brain(shape)
    rng = np.random.default_rng(3)
    n = int(brain.sum())
    patterns = rng.normal(size=(len(CLASSES), n)) * (rng.random((len(CLASSES), n)) < 0.2)
    source, _ = _cohort(shape, patterns, n_per=16, seed=3)
    model = _train(source, shape, epochs=5, seed=3)
    out = saliency_checks(
        model,
        source,
        CLASSES,
        mask=brain,
        method=method,
        device="cpu",
        max_per_class=6,
        cascade=False,
        randomisation_seed=4,
    )
    return [r["randomisation_rank_correlation"] for r in out.records.values()]


def test_the_default_map_barely_survives_randomising_the_weights():
    # integrated gradients, which multiply by the input, keep 0.39-0.42 on this cohort. On the
    # independent cohort's 10 x 12 x 8 grid the mean of absolute gradients kept the network's
    # edge structure (median 0.25); pooling the signed gradients first gives 0.07 (sweep below)
    rho = _randomisation_rho()
    assert np.median(rho) <= RANDOMISATION_PASS, rho


# -- the real pipeline (minutes): -m sweep ----------------------------------------------------
def _study(cache, registry, *extra: str) -> None:
    import contextlib
    import io

    from emocore.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main(
            [
                "study",
                "--designs",
                "loso",
                "--epochs",
                "2",
                "--class-weights",
                "--no-baseline",
                "--permutations",
                "20",
                "--cache",
                str(cache),
                "--registry",
                str(registry),
                "--json",
                "-q",
                *extra,
            ]
        )
    assert code == 0


@pytest.mark.sweep
def test_sweep_demo_cohort_maps_find_the_planted_patterns(tmp_path):
    """The demo's cohort (emocore synth), its leave-one-subject-out models: every default map's
    lower bound of (trained - randomised AUC) is above 0, with the input alone's AUC beside it."""
    import json

    from emocore.workflows.demo import build_demo

    paths = build_demo(tmp_path, train=True)
    study = json.loads((paths["run"] / "study.json").read_text())
    records = [
        r
        for models in study["saliency_checks"].values()
        for m in models.values()
        for r in m.values()
    ]
    assert len(records) >= 40
    for r in records:
        assert r["method"] == DEFAULT_METHOD
        assert r["auc_difference_ci95"][0] > 0 and r["finds_planted_pattern"], r
        assert 0 <= r["auc_input_only"] <= 1


@pytest.mark.sweep
def test_sweep_independent_cohort_maps_change_with_the_weights(tmp_path):
    """The independent cohort (written without emocore's generator), its leave-one-subject-out
    models: the default maps' median rank correlation with a weight-randomised copy is at most
    0.2."""
    import json

    from emocore.cli import main
    from tests.integration.independent_cohort import write_cohort

    raw = write_cohort(tmp_path / "data", n_subjects=8, planted="08")
    # prepare refuses observer files with identical rows (copies); shift each by 0.01 s
    for i, path in enumerate(sorted(raw.glob("av1o*.csv"))):
        head, *rows = path.read_text().splitlines()
        moved = [f"{float(r.split(',')[0]) + 0.01 * i:.2f},{r.split(',', 1)[1]}" for r in rows]
        path.write_text("\n".join([head, *moved]) + "\n")
    cache, registry = tmp_path / "cache", tmp_path / "registry"
    args = ["prepare", "--bids", str(tmp_path / "data"), "--annotations", str(raw)]
    assert main([*args, "--cache", str(cache), "-q"]) == 0
    _study(cache, registry)
    run = next((registry / "runs").iterdir())
    study = json.loads((run / "study.json").read_text())
    rho = [
        r["randomisation_rank_correlation"]
        for models in study["saliency_checks"].values()
        for m in models.values()
        for r in m.values()
    ]
    assert len(rho) >= 30 and np.median(rho) <= RANDOMISATION_PASS, sorted(rho)
