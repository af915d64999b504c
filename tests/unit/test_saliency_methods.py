"""SmoothGrad and the plain gradient, per-volume maps, the input-only map, the bootstrap of
(trained - randomised AUC) and the checks in words."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from emocore.data.dataset import VolumeSource
from emocore.errors import ConfigError
from emocore.interpret.saliency import (
    DEFAULT_METHOD,
    METHODS,
    describe_method,
    emotion_saliency,
    gradient,
    input_magnitude,
    pool_volumes,
    saliency_auc,
    smoothgrad,
    volume_saliency,
)
from emocore.interpret.saliency_checks import (
    RANDOMISATION_PASS,
    auc_difference_interval,
    cascade_order,
    check_sentences,
    linear_pattern_sentence,
    paired_bootstrap,
    randomise_model,
)
from emocore.models.cnn3d import SeedCNN
from tests.conftest import SHAPE, planted_volumes

CLASSES = ["FEAR", "LOVE", "SADNESS"]
N_VOXELS = int(np.prod(SHAPE))


def _volumes(n: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g), torch.arange(n) % 3


def test_the_default_map_is_smoothgrad_and_every_method_is_described():
    assert DEFAULT_METHOD == "smoothgrad" and DEFAULT_METHOD in METHODS
    assert "integrated-gradients" in METHODS  # still available
    sg = describe_method()
    assert sg["Method"] == "smoothgrad" and sg["Samples"] == 4 and sg["NoiseLevel"] == 0.15
    assert "15%" in sg["Units"] and "4 copies" in sg["Units"]
    for method in METHODS:
        assert describe_method(method)["Method"] == method
    with pytest.raises(ConfigError, match="'method'"):
        describe_method("lime")


def test_the_gradient_of_a_linear_model_is_its_weights_with_or_without_noise():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(N_VOXELS, 3))
    x, t = _volumes()
    expected = model[1].weight[t].detach().view(-1, *SHAPE)
    torch.testing.assert_close(gradient(model, x, t), expected)
    # a constant gradient: noise cannot change it
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(smoothgrad(model, x, t, samples=3, generator=g), expected)


def test_smoothgrad_averages_noisy_gradients_reproducibly():
    torch.manual_seed(0)
    model = SeedCNN(SHAPE, 3, widths=(2, 2, 2), hidden=4)
    x, t = _volumes()
    plain = gradient(model, x, t)
    torch.testing.assert_close(smoothgrad(model, x, t, noise=0.0, samples=2), plain)
    a = smoothgrad(model, x, t, generator=torch.Generator().manual_seed(5))
    b = smoothgrad(model, x, t, generator=torch.Generator().manual_seed(5))
    c = smoothgrad(model, x, t, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c) and not torch.allclose(a, plain)
    with pytest.raises(ConfigError, match="'samples'"):
        smoothgrad(model, x, t, samples=0)
    with pytest.raises(ConfigError, match="'noise'"):
        smoothgrad(model, x, t, noise=-0.1)


def test_volume_maps_average_to_the_emotion_map_within_the_mask():
    cache, meta = planted_volumes(5, 3)
    source = VolumeSource(cache, meta)
    torch.manual_seed(0)
    model = SeedCNN(SHAPE, 3, widths=(2, 2, 2), hidden=4)
    mask = np.zeros(SHAPE, bool)
    mask[1:-1, 2:, :-2] = True
    found = volume_saliency(
        model, source, CLASSES, device="cpu", max_per_class=4, keep_volumes=True, mask=mask
    )
    means = emotion_saliency(model, source, CLASSES, device="cpu", max_per_class=4)
    for name, m in found.items():
        assert m.volumes is not None and m.volumes.shape == (4, int(mask.sum()))
        assert m.check is None  # completeness is integrated gradients' only
        # the map pools the kept volumes: the size of their signed mean (SmoothGrad)
        np.testing.assert_allclose(pool_volumes(m.volumes), m.mean[mask], rtol=1e-5, atol=1e-9)
        assert (m.volumes < 0).any()  # kept signed, so a voxel that flips sign cancels out
        assert (pool_volumes(m.volumes) <= np.abs(m.volumes).mean(0) + 1e-9).all()
        # the same seed draws the same volumes and the same noise
        np.testing.assert_allclose(m.mean, means[name], rtol=1e-6)
    inputs = input_magnitude(source, CLASSES, max_per_class=4)
    assert set(inputs) == set(CLASSES) and all(v.shape == SHAPE for v in inputs.values())
    # integrated gradients keep each volume's absolute map: their map is the plain mean of sizes
    ig = volume_saliency(
        model,
        source,
        CLASSES,
        method="integrated-gradients",
        device="cpu",
        max_per_class=4,
        keep_volumes=True,
        mask=mask,
    )
    for m in ig.values():
        assert m.volumes is not None and (m.volumes >= 0).all()
        np.testing.assert_allclose(m.volumes.mean(0), m.mean[mask], rtol=1e-5, atol=1e-9)


def test_cascade_steps_reuse_the_full_randomisation_draws():
    model = SeedCNN(SHAPE, 3, widths=(2, 2, 2), hidden=4)
    full = randomise_model(model, seed=4)
    top = randomise_model(model, seed=4, layers=cascade_order(model)[:2])
    # a layer gets the same weights whichever other layers are re-drawn with it
    assert torch.equal(top.fc2.weight, full.fc2.weight)
    assert torch.equal(top.fc1.linear.weight, full.fc1.linear.weight)
    assert torch.equal(top.block1.conv.weight, model.block1.conv.weight)


def test_row_auc_bootstrap_agrees_with_scikit_learn_and_finds_a_real_difference(rng):
    truth = np.zeros(SHAPE, np.float32)
    truth[2:5, 2:6, 3:7] = 1.0
    positive = truth.reshape(-1) > 0.5
    n = 12
    noise = rng.normal(size=(n, N_VOXELS))
    trained = np.abs(noise + 1.5 * positive)  # every volume's map shows the pattern
    randomised = np.abs(rng.normal(size=(n, N_VOXELS)))
    low, high = auc_difference_interval(trained, randomised, truth, None, seed=3)
    gap = saliency_auc(trained.mean(0).reshape(SHAPE), truth) - saliency_auc(
        randomised.mean(0).reshape(SHAPE), truth
    )
    assert 0 < low <= gap <= high
    assert (low, high) == auc_difference_interval(trained, randomised, truth, None, seed=3)
    # the same map from both models: no difference, so it is not said to find the pattern
    same = auc_difference_interval(trained, trained, truth, None)
    assert same == (0.0, 0.0)
    # the row AUC is scikit-learn's (ties count a half)
    from emocore.interpret.saliency_checks import _row_auc

    rows = np.round(trained[:3], 1)
    for row, auc in zip(rows, _row_auc(rows, positive), strict=True):
        assert auc == pytest.approx(saliency_auc(row.reshape(SHAPE), truth))
    assert np.isnan(paired_bootstrap(trained[:1], trained[:1], lambda r: r.mean(1))[0])
    with pytest.raises(ConfigError, match="two \\(volumes, voxels\\) arrays"):
        paired_bootstrap(trained, trained[:, :5], lambda r: r.mean(1))


def test_each_check_is_one_sentence_with_its_numbers_apart():
    good = {
        "method": "smoothgrad",
        "randomisation_rank_correlation": 0.05,
        "cascade": [
            {"layers": "fc2", "rank_correlation": 0.6},
            {"layers": "fc1", "rank_correlation": 0.1},
        ],
        "auc": 0.9,
        "auc_randomised": 0.55,
        "auc_input_only": 0.95,
        "auc_difference_ci95": [0.2, 0.45],
        "finds_planted_pattern": True,
    }
    said = {s["check"]: s for s in check_sentences(good)}
    assert list(said) == [
        "model randomisation",
        "cascading randomisation",
        "planted pattern",
        "the input alone",
    ]
    assert said["model randomisation"]["passed"] is True
    assert said["model randomisation"]["sentence"] == (
        "Scrambling the model's weights changes this map: it reflects what the model learned."
    )
    assert "0.05" in said["model randomisation"]["details"]
    assert "once fc1 is scrambled" in said["cascading randomisation"]["sentence"]
    assert "fc2 0.60, fc1 0.10" in said["cascading randomisation"]["details"]
    assert said["planted pattern"]["passed"] is True
    assert "0.20 to 0.45" in said["planted pattern"]["details"]
    assert (
        said["the input alone"]["passed"] is None and "0.95" in said["the input alone"]["details"]
    )
    for s in said.values():  # one sentence each, the numbers in the details line
        assert s["sentence"].count(". ") == 0 and not re.search(r"\d\.\d", s["sentence"])

    bad = {
        **good,
        "randomisation_rank_correlation": 0.7,
        "cascade": [{"layers": "fc2", "rank_correlation": 0.9}],
        "auc_difference_ci95": [-0.02, 0.1],
        "finds_planted_pattern": False,
    }
    said = {s["check"]: s for s in check_sentences(bad)}
    assert said["model randomisation"]["sentence"] == (
        "This map also appears with scrambled weights: it shows the input more than the model."
    )
    assert said["model randomisation"]["passed"] is False
    assert said["cascading randomisation"]["passed"] is False
    assert said["planted pattern"]["passed"] is False
    assert "no better than the scrambled model's map" in said["planted pattern"]["sentence"]
    partly = check_sentences({"randomisation_rank_correlation": RANDOMISATION_PASS + 0.1})
    assert partly[0]["passed"] is False and "Part of this map" in partly[0]["sentence"]
    # a run from before the bootstrap: the planted-pattern check cannot be decided
    old = check_sentences({"auc": 0.99, "auc_randomised": 0.9})
    assert old[0]["passed"] is None and "re-run" in old[0]["sentence"]
    assert check_sentences({}) == []
    # integrated gradients' completeness, as a record holds it and as study.json does
    record = check_sentences({"completeness_delta": {"mean": 0.03, "max": 0.2}, "ig_steps": 16})
    assert record[0]["check"] == "completeness" and record[0]["passed"] is True
    assert (
        "3.0%" in record[0]["details"] and "16 integrated-gradients steps" in record[0]["details"]
    )
    capped = check_sentences({"completeness_delta": 0.09, "ig_steps": 128})
    assert capped[0]["passed"] is False and "read this map with care" in capped[0]["sentence"]


def test_the_pattern_correlation_is_said_against_the_randomised_maps():
    beyond = linear_pattern_sentence(
        {
            "correlation_with_saliency": 0.4,
            "correlation_with_randomised_saliency": 0.1,
            "correlation_difference_ci95": [0.2, 0.4],
        },
        "LOVE",
    )
    assert "r = 0.40" in beyond and "scrambled weights gives r = 0.10" in beyond
    assert "more than its structure and the input alone" in beyond
    null = linear_pattern_sentence(
        {
            "correlation_with_saliency": 0.4,
            "correlation_with_randomised_saliency": 0.38,
            "correlation_difference_ci95": [-0.05, 0.08],
        },
        "LOVE",
    )
    assert "does not show that the two decoders use the same voxels" in null
    old = linear_pattern_sentence({"correlation_with_saliency": 0.4}, "LOVE")
    assert "no null for it" in old


def test_embeddings_are_the_trained_models_hidden_layer():
    """The Representations page's features: the first dense layer of the model as trained (batch
    norm with its running statistics), though computed on a folded, channels-last copy."""
    from emocore.interpret.saliency import embeddings

    cache, meta = planted_volumes(5, 3)
    source = VolumeSource(cache, meta)
    torch.manual_seed(0)
    model = SeedCNN(SHAPE, 3, widths=(2, 2, 2), hidden=4)
    model.train()
    for x, _, _ in source.batches(8):  # running statistics that are not the identity
        model(x.float().unsqueeze(1))
    model.eval()
    with torch.no_grad():
        want = torch.cat([model.features(x.float().unsqueeze(1)) for x, _, _ in source.batches(8)])
    got = embeddings(model, source, batch_size=3, device="cpu")
    assert got.shape == (len(meta), 4)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    assert next(model.parameters()).is_contiguous()  # the model itself is left as it was
