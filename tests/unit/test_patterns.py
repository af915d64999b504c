"""Haufe activation patterns of the linear decoder, their NIfTI files and spatial correlation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emocore.data.cache import create_cache, open_cache
from emocore.data.dataset import select
from emocore.data.derivatives import linear_pattern_relpath, sidecar_path
from emocore.errors import ConfigError
from emocore.interpret.patterns import (
    haufe_patterns,
    linear_patterns,
    save_linear_patterns,
    spatial_correlation,
)
from tests.conftest import SHAPE

CLASSES = ["HAPPINESS", "FEAR", "SADNESS"]
AFFINE = np.array([[3.0, 0, 0, -9.0], [0, 2.5, 0, -10.0], [0, 0, 2.0, -8.0], [0, 0, 0, 1.0]])


def test_haufe_patterns_equal_the_explicit_covariance_formula(rng):
    X = rng.normal(size=(40, 12)) @ rng.normal(size=(12, 12))  # correlated voxels
    W = rng.normal(size=(12, 3))
    S = X @ W
    expected = np.cov(X, rowvar=False) @ W @ np.linalg.inv(np.cov(S, rowvar=False))
    np.testing.assert_allclose(haufe_patterns(X, W), expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(haufe_patterns(X, 5.0 * W), expected / 5.0, rtol=1e-8, atol=1e-10)
    one = haufe_patterns(X, W[:, 0])
    assert one.shape == (12,)
    np.testing.assert_allclose(
        one, np.cov(X, rowvar=False) @ W[:, 0] / np.var(S[:, 0], ddof=1), rtol=1e-8
    )


def test_haufe_patterns_never_need_the_voxel_covariance(rng):
    X = rng.normal(size=(20, 200_000)).astype(np.float32)  # a p x p covariance would be 320 GB
    W = rng.normal(size=(200_000, 2))
    assert haufe_patterns(X, W).shape == (200_000, 2)
    with pytest.raises(ConfigError, match="same voxels"):
        haufe_patterns(X, W[:10])
    with pytest.raises(ConfigError, match="at least 2 volumes"):
        haufe_patterns(X[:1], W)


def test_suppressor_voxel_has_a_large_weight_but_no_pattern(rng):
    """Haufe et al. 2014, section 2.3: x1 = signal + distractor, x2 = distractor only. The best
    decoder subtracts x2 (a large weight); the pattern shows x2 carries no signal."""
    from sklearn.linear_model import LogisticRegression

    n = 2000
    y = rng.integers(0, 2, n)
    signal = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 0.3, n)
    distractor = rng.normal(0, 2.0, n)
    X = np.column_stack([signal + distractor, distractor, rng.normal(0, 1.0, n)])
    planted = np.array([1.0, 0.0, 0.0])  # how the signal is expressed in the channels
    W = LogisticRegression(C=10.0, max_iter=1000).fit(X, y).coef_.T
    A = haufe_patterns(X, W)[:, 0]
    assert abs(W[1, 0]) > 0.8 * abs(W[0, 0])  # the decoder leans on the noise channel
    assert abs(A[1]) < 0.1 * abs(A[0]) and abs(A[2]) < 0.1 * abs(A[0])
    assert spatial_correlation(A, planted) > 0.99
    assert spatial_correlation(W[:, 0], planted) < 0.9  # (1, -1, 0) against (1, 0, 0): 0.87


def _planted_cache(tmp_path, *, n_per_class: int = 30, seed: int = 0):
    """A cache of one person (non-identity affine, a box mask) whose emotions each add a box."""
    rng = np.random.default_rng(seed)
    label = np.repeat(CLASSES, n_per_class)
    rng.shuffle(label)
    labels = pd.DataFrame({"run": 1 + np.arange(len(label)) % 3, "label": label})
    mask = np.zeros(SHAPE, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    truths = {}
    for c, name in enumerate(CLASSES):
        truth = np.zeros(SHAPE, np.float32)
        truth[2:5, 1 + 2 * c : 3 + 2 * c, 3:6] = 1.0  # inside the mask
        truths[name] = truth
    x = rng.normal(0, 1, (len(label), *SHAPE)).astype(np.float32)
    for name in CLASSES:
        x[label == name] += 1.5 * truths[name]
    arrays = create_cache(
        tmp_path / "cache", grid=SHAPE, labels=labels, subjects=["01"], affine=AFFINE, mask=mask
    )
    arrays["01"][:] = x
    arrays["01"].flush()
    del arrays
    return open_cache(tmp_path / "cache"), truths, mask


def test_linear_patterns_recover_each_emotions_planted_box(tmp_path):
    cache, truths, mask = _planted_cache(tmp_path)
    rows = select(cache, classes=CLASSES)
    patterns = linear_patterns(cache, rows, CLASSES, C=0.01)
    assert list(patterns) == CLASSES
    for name, volume in patterns.items():
        assert volume.shape == SHAPE and volume.dtype == np.float32
        assert not volume[~mask].any()
        own = spatial_correlation(volume, truths[name], mask)
        others = [spatial_correlation(volume, truths[o], mask) for o in CLASSES if o != name]
        assert own > 0.7 and max(others) < 0.0, name  # lower where the other emotions are
    two = linear_patterns(cache, rows[rows["y"] < 2], CLASSES)
    assert list(two) == CLASSES[:2]
    np.testing.assert_allclose(two[CLASSES[0]], -two[CLASSES[1]])
    with pytest.raises(ConfigError, match="at least two emotions"):
        linear_patterns(cache, rows[rows["y"] == 0], CLASSES)


def test_saved_patterns_load_with_the_cache_affine_and_a_sidecar(tmp_path):
    import nibabel as nib

    cache, truths, _ = _planted_cache(tmp_path, n_per_class=6)
    folder = tmp_path / "saliency" / "single-subject"
    paths = save_linear_patterns(
        truths, cache.affine, folder, subject="01", sidecar={"Model": "sub-01", "C": 0.01}
    )
    assert paths["FEAR"] == folder / "sub-01" / "sub-01_desc-fear_linearpattern.nii.gz"
    for name, path in paths.items():
        img = nib.load(path)
        np.testing.assert_allclose(img.affine, AFFINE)
        np.testing.assert_allclose(np.asarray(img.dataobj), truths[name])
        meta = json.loads(sidecar_path(path).read_text())
        assert meta["Emotion"] == name and meta["Model"] == "sub-01" and meta["C"] == 0.01
        assert meta["Method"] == "haufe-activation-pattern"
    group = save_linear_patterns({"LOVE": truths["FEAR"]}, cache.affine, folder, subject=None)
    assert group["LOVE"] == folder / "desc-love_linearpattern.nii.gz"


def test_linear_pattern_relpath_follows_the_saliency_naming():
    assert linear_pattern_relpath("03", "LOVE") == "sub-03/sub-03_desc-love_linearpattern.nii.gz"
    assert linear_pattern_relpath(None, "ANGER") == "desc-anger_linearpattern.nii.gz"
    with pytest.raises(ConfigError, match="BIDS label"):
        linear_pattern_relpath("sub-03", "LOVE")


def test_spatial_correlation_within_the_mask(rng):
    a = rng.random(SHAPE)
    mask = np.zeros(SHAPE, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    assert spatial_correlation(a, a, mask) == pytest.approx(1.0)
    assert spatial_correlation(a, 2 - 3 * a) == pytest.approx(-1.0)
    assert spatial_correlation(a, np.where(mask, a, rng.random(SHAPE)), mask) == pytest.approx(1.0)
    assert spatial_correlation(a, np.where(mask, a, rng.random(SHAPE))) < 1.0
    assert np.isnan(spatial_correlation(a, np.ones(SHAPE), mask))
    with pytest.raises(ConfigError, match="different grids"):
        spatial_correlation(a, a[:-1])


def test_pattern_correlation_is_read_against_the_randomised_models_maps(rng):
    """The CNN-map vs pattern correlation gets a null: the same correlation for the map of the
    CNN with re-drawn weights, and a bootstrap interval of the difference over volumes."""
    from emocore.interpret.patterns import correlation_against_randomised

    pattern = rng.normal(size=300) * (rng.random(300) < 0.3)
    trained = np.abs(pattern) + rng.normal(0, 0.5, size=(10, 300))  # each volume shows it
    randomised = np.abs(rng.normal(size=(10, 300)))  # learnt nothing
    out = correlation_against_randomised(trained, randomised, pattern, n_boot=200, seed=1)
    assert set(out) == {
        "correlation_with_saliency",
        "correlation_with_randomised_saliency",
        "correlation_difference_ci95",
        "correlation_beyond_randomised",
    }
    assert out["correlation_with_saliency"] == pytest.approx(
        spatial_correlation(np.abs(trained.mean(0)), np.abs(pattern))
    )
    low, high = out["correlation_difference_ci95"]
    gap = out["correlation_with_saliency"] - out["correlation_with_randomised_saliency"]
    assert 0 < low <= gap <= high and out["correlation_beyond_randomised"] is True
    # a map that the randomised network makes just as well: no agreement beyond the null
    same = correlation_against_randomised(trained, trained, pattern, n_boot=50)
    assert same["correlation_difference_ci95"] == [0.0, 0.0]
    assert same["correlation_beyond_randomised"] is False
    with pytest.raises(ConfigError, match="300 voxels of the pattern"):
        correlation_against_randomised(trained[:, :10], randomised[:, :10], pattern)
