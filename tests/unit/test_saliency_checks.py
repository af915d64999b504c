"""Integrated-gradients completeness, step doubling, the model-randomisation check (all at once
and cascading), the bootstrap of (trained - randomised AUC) and the checks in words."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from emocore.data.dataset import VolumeSource
from emocore.errors import ConfigError
from emocore.interpret.saliency import (
    describe_method,
    emotion_saliency,
    emotion_saliency_checked,
    ig_completeness,
    integrated_gradients,
    integrated_gradients_converged,
)
from emocore.interpret.saliency_checks import (
    cascade_order,
    check_record,
    randomise_model,
    rank_correlation,
    saliency_checks,
)
from emocore.models.cnn3d import SeedCNN
from tests.conftest import SHAPE, planted_volumes

N_VOXELS = int(np.prod(SHAPE))
CLASSES = ["FEAR", "LOVE", "SADNESS"]


def _linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(N_VOXELS, 3))


def _smooth(seed: int = 0) -> nn.Module:
    """A small tanh network, saturated enough that a few Riemann steps are visibly wrong."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(N_VOXELS, 16), nn.Tanh(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].weight.mul_(6.0)
    return model


def _volumes(n: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g), torch.arange(n) % 3


def _blobs() -> dict[str, np.ndarray]:
    """The planted pattern of each class of :func:`planted_volumes` (a 2x3x3 box)."""
    out = {}
    for c, name in enumerate(CLASSES):
        truth = np.zeros(SHAPE, np.float32)
        truth[1 + 2 * c : 3 + 2 * c, 2:5, 3:6] = 1.0
        out[name] = truth
    return out


def _delta(model, x, t, steps: int) -> torch.Tensor:
    return ig_completeness(model, x, t, integrated_gradients(model, x, t, steps=steps))


def test_completeness_is_exact_for_a_linear_model():
    model = _linear()
    x, t = _volumes()
    delta = _delta(model, x, t, steps=1)  # the gradient is constant along the path
    assert delta.shape == (6,)
    assert float(delta.max()) < 1e-4


def test_completeness_gap_shrinks_as_steps_grow_on_a_nonlinear_model():
    model = _smooth()
    x, t = _volumes()
    gaps = [float(_delta(model, x, t, steps=s).nanmean()) for s in (2, 8, 32)]
    assert gaps[0] > 0.05  # visibly incomplete with two steps
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.01


def test_completeness_is_nan_where_the_logit_does_not_move():
    model = _linear()
    x, t = _volumes()
    x[0] = 0.0  # the baseline itself: f(x) - f(0) = 0
    delta = _delta(model, x, t, steps=4)
    assert torch.isnan(delta[0]) and not torch.isnan(delta[1:]).any()


def test_step_doubling_stops_at_the_first_step_count_within_the_tolerance():
    model = _smooth()
    x, t = _volumes()
    tol = 0.01
    res = integrated_gradients_converged(model, x, t, tolerance=tol, steps=2, max_steps=512)
    assert res.converged and res.steps > 2
    assert float(res.delta.max()) <= tol
    assert float(_delta(model, x, t, steps=res.steps // 2).max()) > tol  # one fewer doubling fails
    assert torch.allclose(res.attributions, integrated_gradients(model, x, t, steps=res.steps))


def test_step_doubling_stops_at_the_cap_and_says_it_did_not_converge():
    model = _smooth()
    x, t = _volumes()
    res = integrated_gradients_converged(model, x, t, tolerance=1e-9, steps=2, max_steps=24)
    assert res.steps == 16 and not res.converged  # 2, 4, 8, 16; 32 would pass the cap
    with pytest.raises(ConfigError, match="'tolerance'"):
        integrated_gradients_converged(model, x, t, tolerance=0.0)
    with pytest.raises(ConfigError, match="'steps'"):
        integrated_gradients_converged(model, x, t, steps=64, max_steps=32)


def test_checked_maps_with_fixed_steps_equal_emotion_saliency():
    cache, meta = planted_volumes(6, 3)
    source = VolumeSource(cache, meta)
    model = SeedCNN(SHAPE, 3, widths=(2, 2, 2), hidden=4)
    plain = emotion_saliency(
        model, source, CLASSES, method="integrated-gradients", device="cpu", max_per_class=4
    )
    maps, checks = emotion_saliency_checked(
        model, source, CLASSES, device="cpu", max_per_class=4, tolerance=None
    )
    assert maps.keys() == plain.keys() == set(CLASSES)
    for name in CLASSES:
        np.testing.assert_allclose(maps[name], plain[name], rtol=1e-5, atol=1e-7)
        assert checks[name].steps == 8 and checks[name].n_volumes == 4
        assert checks[name].converged
    ig = "integrated-gradients"
    assert describe_method(ig, steps=32)["Steps"] == 32 and describe_method(ig)["Steps"] == 8


def test_map_stopping_rule_mean_or_worst_volume():
    """A map stops doubling when its mean gap is within the tolerance (the map is a mean); the
    stricter worst-volume rule never stops earlier, and each rule's gap is the one it met."""
    cache, meta = planted_volumes(6, 3)
    source = VolumeSource(cache, meta)
    torch.manual_seed(1)
    model = SeedCNN(SHAPE, 3, widths=(2, 2, 2), hidden=4)
    common = dict(device="cpu", max_per_class=2, tolerance=0.05, steps=2, max_steps=32)
    _, mean_rule = emotion_saliency_checked(model, source, CLASSES, **common)
    _, max_rule = emotion_saliency_checked(model, source, CLASSES, rule="max", **common)
    for name in CLASSES:
        assert mean_rule[name].steps <= max_rule[name].steps
        if mean_rule[name].converged:
            assert mean_rule[name].delta_mean <= 0.05
        if max_rule[name].converged:
            assert max_rule[name].delta_max <= 0.05
    assert any(mean_rule[n].steps < max_rule[n].steps for n in CLASSES) or all(
        max_rule[n].steps == 2 for n in CLASSES
    )
    with pytest.raises(ConfigError, match="'rule' must be one of 'mean', 'max'"):
        emotion_saliency_checked(model, source, CLASSES, rule="median", **common)


def test_randomise_model_redraws_every_layer_and_leaves_the_original_alone():
    model = SeedCNN(SHAPE, 3, widths=(2, 2, 2), hidden=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    rand = randomise_model(model, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # global random state untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    weights = [k for k in before if k.endswith("weight") and ".bn." not in k]
    assert all(not torch.equal(rand.state_dict()[k], before[k]) for k in weights)
    again = randomise_model(model, seed=3)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in rand.state_dict().items())
    assert cascade_order(model)[:2] == ["fc2", "fc1.linear"]
    top = randomise_model(model, layers=["fc2"])
    assert torch.equal(top.block1.conv.weight, model.block1.conv.weight)
    assert not torch.equal(top.fc2.weight, model.fc2.weight)
    with pytest.raises(ConfigError, match="'layers'"):
        randomise_model(model, layers=["fc9"])


def test_rank_correlation_within_the_mask(rng):
    a = rng.random(SHAPE)
    mask = np.zeros(SHAPE, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    assert rank_correlation(a, a, mask) == pytest.approx(1.0)
    outside_differs = np.where(mask, a, -a)
    assert rank_correlation(a, outside_differs, mask) == pytest.approx(1.0)
    assert rank_correlation(a, -a, None) == pytest.approx(-1.0)
    assert abs(rank_correlation(a, rng.random(SHAPE), mask)) < 0.2
    assert np.isnan(rank_correlation(a, np.zeros(SHAPE), mask))
    with pytest.raises(ConfigError, match="different grids"):
        rank_correlation(a, a, mask[:-1])


def test_randomised_model_map_correlates_weakly_with_the_trained_one():
    """A linear "trained" model whose weights are the planted blobs, explained on noise volumes:
    its map is the blobs; after randomisation the map follows random weights instead."""
    cache, meta = planted_volumes(8, 3, signal=0.0)
    source = VolumeSource(cache, meta)
    model = _linear(seed=5)  # not randomisation_seed's draw, which would be the same weights
    blobs = _blobs()
    with torch.no_grad():
        model[1].weight.mul_(0.05)
        for c, name in enumerate(CLASSES):
            model[1].weight[c] += torch.from_numpy(blobs[name].reshape(-1))
    mask = np.zeros(SHAPE, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    out = saliency_checks(
        model,
        source,
        CLASSES,
        mask=mask,
        truths=blobs,
        method="integrated-gradients",
        device="cpu",
        max_per_class=8,
    )
    assert out.maps.keys() == out.randomised.keys() == out.records.keys() == set(CLASSES)
    for name, record in out.records.items():
        assert list(record) == [
            "method",
            "completeness_delta",
            "ig_steps",
            "randomisation_rank_correlation",
            "cascade",
            "cascade_volumes",
            "auc",
            "auc_randomised",
            "auc_input_only",
            "auc_difference_ci95",
            "finds_planted_pattern",
        ]
        assert record["method"] == "integrated-gradients"
        assert [s["layers"] for s in record["cascade"]] == ["1"]  # one layer: one step
        assert record["ig_steps"] == 8  # exact for a linear model: no doubling needed
        assert record["completeness_delta"]["max"] < 1e-3
        assert record["completeness_delta"]["mean"] <= record["completeness_delta"]["max"]
        assert abs(record["randomisation_rank_correlation"]) < 0.3, name
        assert record["auc"] > 0.95 and record["auc_randomised"] < 0.75, name
        assert check_record(out.maps[name], out.maps[name], mask)[
            "randomisation_rank_correlation"
        ] == pytest.approx(1.0)


def test_records_without_truth_and_for_grad_cam():
    cache, meta = planted_volumes(4, 3)
    source = VolumeSource(cache, meta)
    model = SeedCNN(SHAPE, 3, widths=(2, 2, 2), hidden=4)
    out = saliency_checks(
        model, source, CLASSES, mask=None, method="grad-cam", device="cpu", max_per_class=2
    )
    for record in out.records.values():
        assert set(record) == {
            "method",
            "completeness_delta",
            "ig_steps",
            "randomisation_rank_correlation",
            "cascade",
            "cascade_volumes",
        }
        assert record["completeness_delta"] is None and record["ig_steps"] is None
        assert record["method"] == "grad-cam"
        assert [s["layers"] for s in record["cascade"]] == [
            "fc2",
            "fc1",
            "block3",
            "block2",
            "block1",
        ]
        # the last step re-draws every layer: with all the map's volumes (2 here, fewer than
        # the cascade's 4) it is the fully randomised model's map
        assert record["cascade_volumes"] == 2
        assert record["cascade"][-1]["rank_correlation"] == pytest.approx(
            record["randomisation_rank_correlation"], nan_ok=True
        )
    with pytest.raises(ConfigError, match="'method'"):
        saliency_checks(model, source, CLASSES, mask=None, method="lime")
