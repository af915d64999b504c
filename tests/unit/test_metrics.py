"""Tests of emocore.stats.metrics: hand-computed metrics and time-respecting resampling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from emocore.errors import ConfigError
from emocore.stats import metrics

# Unequal class counts (4, 2, 1, 0) so that mixing up axes or averages fails.
CLASSES = ["A", "B", "C", "D"]
Y_TRUE = ["A", "A", "A", "A", "B", "B", "C"]
Y_PRED = ["A", "A", "B", "C", "B", "A", "C"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


def episodes(rng: np.random.Generator, n: int, k: int, low: int = 8, high: int = 20) -> np.ndarray:
    """Label sequence made of constant episodes of random length, like annotated emotions."""
    labels: list[int] = []
    while len(labels) < n:
        labels += [int(rng.integers(k))] * int(rng.integers(low, high + 1))
    return np.array(labels[:n])


def runs(values: np.ndarray) -> list[int]:
    """Circular run lengths (a run crossing the end joins the one at the start), sorted."""
    if np.all(values == values[0]):
        return [len(values)]
    start = int(np.flatnonzero(values != np.roll(values, 1))[0])
    rotated = np.roll(values, -start)
    boundaries = np.flatnonzero(rotated[1:] != rotated[:-1]) + 1
    return sorted(np.diff(np.concatenate([[0], boundaries, [len(values)]])).tolist())


# --------------------------------------------------------------------------- plain metrics


def test_accuracy_hand_computed() -> None:
    assert metrics.accuracy(Y_TRUE, Y_PRED, CLASSES) == pytest.approx(4 / 7)


def test_per_class_accuracy_hand_computed_with_absent_class() -> None:
    recalls = metrics.per_class_accuracy(Y_TRUE, Y_PRED, CLASSES)
    np.testing.assert_allclose(recalls[:3], [2 / 4, 1 / 2, 1 / 1])
    assert np.isnan(recalls[3])


def test_balanced_accuracy_averages_present_classes_only() -> None:
    expected = (0.5 + 0.5 + 1.0) / 3
    assert metrics.balanced_accuracy(Y_TRUE, Y_PRED, CLASSES) == pytest.approx(expected)
    assert expected == pytest.approx(balanced_accuracy_score(Y_TRUE, Y_PRED))


def test_confusion_matrix_counts_rows_are_true() -> None:
    expected = [[2, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES), expected)


def test_confusion_matrix_normalized_by_true_class() -> None:
    matrix = metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES, normalize="true")
    np.testing.assert_allclose(matrix[:3], [[0.5, 0.25, 0.25, 0], [0.5, 0.5, 0, 0], [0, 0, 1, 0]])
    assert np.all(np.isnan(matrix[3]))


def test_integer_labels_give_the_same_numbers() -> None:
    codes = {c: i for i, c in enumerate(CLASSES)}
    true = [codes[c] for c in Y_TRUE]
    pred = np.array([codes[c] for c in Y_PRED])
    ints = [0, 1, 2, 3]
    assert metrics.accuracy(true, pred, ints) == metrics.accuracy(Y_TRUE, Y_PRED, CLASSES)
    assert metrics.balanced_accuracy(true, pred, ints) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(true, pred, ints),
        metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES),
    )


def test_classes_order_sets_confusion_order() -> None:
    reordered = ["C", "B", "A", "D"]
    matrix = metrics.confusion_matrix(Y_TRUE, Y_PRED, reordered)
    assert matrix[2, 2] == 2  # A -> A
    assert matrix[0, 0] == 1  # C -> C


def test_chance_levels() -> None:
    assert metrics.theoretical_chance(CLASSES) == pytest.approx(0.25)
    assert metrics.majority_chance(Y_TRUE) == pytest.approx(4 / 7)
    assert np.isnan(metrics.theoretical_chance([]))


def test_empty_input_gives_nan_and_zeros() -> None:
    assert np.isnan(metrics.accuracy([], [], CLASSES))
    assert np.isnan(metrics.balanced_accuracy([], [], CLASSES))
    assert np.all(np.isnan(metrics.per_class_accuracy([], [], CLASSES)))
    np.testing.assert_array_equal(metrics.confusion_matrix([], [], CLASSES), np.zeros((4, 4)))
    assert np.isnan(metrics.majority_chance([]))


def test_length_mismatch_is_named() -> None:
    with pytest.raises(ConfigError, match="y_true has 2 labels but y_pred has 1"):
        metrics.accuracy(["A", "B"], ["A"], CLASSES)


def test_unknown_label_is_named() -> None:
    with pytest.raises(
        ConfigError, match=r"'y_pred' contains labels that are not in 'classes': \['Z'\]"
    ):
        metrics.balanced_accuracy(["A"], ["Z"], CLASSES)


def test_bad_classes_are_rejected() -> None:
    with pytest.raises(ConfigError, match="'classes' is empty"):
        metrics.accuracy(["A"], ["A"], [])
    with pytest.raises(ConfigError, match=r"lists \['A'\] more than once"):
        metrics.accuracy(["A"], ["A"], ["A", "A"])
    with pytest.raises(ConfigError, match="'normalize' must be None or 'true'"):
        metrics.confusion_matrix(Y_TRUE, Y_PRED, CLASSES, normalize="all")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- circular shift


def test_circular_shift_is_a_rotation_per_group_of_at_least_min_shift(
    rng: np.random.Generator,
) -> None:
    lengths = [37, 50, 64]
    groups = np.repeat(np.arange(3), lengths)
    labels = np.concatenate([episodes(rng, n, 5) for n in lengths])
    shifted = metrics.circular_shift_labels(labels, groups, rng=rng, min_shift=10)
    for g, length in enumerate(lengths):
        original, moved = labels[groups == g], shifted[groups == g]
        offsets = [s for s in range(length) if np.array_equal(np.roll(original, -s), moved)]
        assert any(10 <= s <= length - 10 for s in offsets)


def test_circular_shift_keeps_label_run_lengths_and_counts(rng: np.random.Generator) -> None:
    lengths = [41, 58]
    groups = np.repeat(["01/1", "01/2"], lengths)
    labels = np.concatenate([episodes(rng, n, 4) for n in lengths])
    for _ in range(20):
        shifted = metrics.circular_shift_labels(labels, groups, rng=rng)
        for group in ("01/1", "01/2"):
            original, moved = labels[groups == group], shifted[groups == group]
            assert runs(moved) == runs(original)
            np.testing.assert_array_equal(
                np.bincount(moved, minlength=4), np.bincount(original, minlength=4)
            )
    # A shuffle, in contrast, breaks the episodes up.
    blocky = np.repeat([0, 1, 2, 3], [10, 12, 9, 10])
    assert runs(rng.permutation(blocky)) != runs(blocky)


def test_circular_shift_handles_interleaved_groups(rng: np.random.Generator) -> None:
    labels = np.arange(20)
    groups = np.tile([0, 1], 10)  # group 0 = even rows, group 1 = odd rows, each in time order
    shifted = metrics.circular_shift_labels(labels, groups, rng=rng, min_shift=2)
    for g in (0, 1):
        original, moved = labels[groups == g], shifted[groups == g]
        assert any(np.array_equal(np.roll(original, -s), moved) for s in range(2, 9))


def test_short_groups_still_shift(rng: np.random.Generator) -> None:
    shifted = metrics.circular_shift_labels(np.array([1, 2, 3]), np.zeros(3), rng=rng, min_shift=10)
    assert sorted(shifted.tolist()) == [1, 2, 3]
    assert not np.array_equal(shifted, [1, 2, 3])
    assert metrics.circular_shift_labels(np.array([7]), np.zeros(1), rng=rng).tolist() == [7]


def test_circular_shift_of_empty_input(rng: np.random.Generator) -> None:
    assert len(metrics.circular_shift_labels(np.array([]), np.array([]), rng=rng)) == 0
    null = metrics.circular_shift_null([], [], [], "accuracy", 5, rng)
    assert null.shape == (5,) and np.all(np.isnan(null))


def _cohort(rng: np.random.Generator, n_groups: int = 8, length: int = 150, k: int = 5):
    groups = np.repeat(np.arange(n_groups), length)
    truth = np.concatenate([episodes(rng, length, k) for _ in range(n_groups)])
    return groups, truth


def test_lagged_copy_of_truth_is_significant(rng: np.random.Generator) -> None:
    groups, truth = _cohort(rng)
    lag = 3
    lagged = truth.reshape(8, -1)
    lagged = np.concatenate([lagged[:, :lag], lagged[:, :-lag]], axis=1).ravel()
    result = metrics.permutation_test(truth, lagged, groups, "balanced_accuracy", 500, rng)
    assert result.observed > 0.7
    assert result.p_value == pytest.approx(1 / 501)
    assert result.null_high < result.observed


def test_random_predictions_are_not_significant(rng: np.random.Generator) -> None:
    p_values = []
    for _ in range(30):
        groups, truth = _cohort(rng)
        guesses = np.concatenate([episodes(rng, 150, 5) for _ in range(8)])
        result = metrics.permutation_test(truth, guesses, groups, "balanced_accuracy", 200, rng)
        assert result.null_low <= result.null_mean <= result.null_high
        p_values.append(result.p_value)
    # Guesses as autocorrelated as the truth: the false-positive rate stays near 5 % (a volume
    # shuffle null gives about 30 % here, see test_circular_shift_null_is_wider_than_a_shuffle_null).
    assert np.median(p_values) > 0.2
    assert np.sum(np.array(p_values) < 0.05) <= 5


def test_null_mean_of_random_predictions_is_one_over_k(rng: np.random.Generator) -> None:
    groups, truth = _cohort(rng, n_groups=16, length=300)
    guesses = rng.integers(0, 5, len(truth))
    null = metrics.circular_shift_null(truth, guesses, groups, "balanced_accuracy", 500, rng)
    assert null.mean() == pytest.approx(1 / 5, abs=0.02)


def test_chance_null_leaves_out_near_aligned_shifts(rng: np.random.Generator) -> None:
    groups, truth = _cohort(rng, n_groups=16, length=300)
    good = np.where(rng.random(len(truth)) < 0.8, truth, rng.integers(0, 5, len(truth)))
    exact = metrics.permutation_test(truth, good, groups, "balanced_accuracy", 300, rng)
    split = metrics.permutation_test(
        truth, good, groups, "balanced_accuracy", 300, rng, chance_min_shift=25
    )
    assert exact.chance_null is exact.null
    assert split.null_mean == pytest.approx(1 / 5, abs=0.02)
    assert exact.null_mean > split.null_mean  # near-aligned rotations still carry signal
    assert split.p_value == pytest.approx(1 / 301)


def test_constant_predictor_null_equals_its_score(rng: np.random.Generator) -> None:
    groups, truth = _cohort(rng, k=3)
    always_zero = np.zeros_like(truth)
    result = metrics.permutation_test(truth, always_zero, groups, "accuracy", 200, rng)
    # Shifts keep the class counts, so the null is the majority-style chance of this predictor.
    assert result.null_mean == pytest.approx(result.observed)
    assert result.p_value == pytest.approx(1.0)


def test_circular_shift_null_is_wider_than_a_shuffle_null(rng: np.random.Generator) -> None:
    groups, truth = _cohort(rng)
    guesses = np.concatenate([episodes(rng, 150, 5) for _ in range(8)])
    shifted = metrics.circular_shift_null(truth, guesses, groups, "accuracy", 500, rng)
    shuffled = [metrics.accuracy(rng.permutation(truth), guesses, range(5)) for _ in range(500)]
    assert shifted.std() > 1.5 * np.std(shuffled)


def test_callable_metric_matches_named_metric() -> None:
    rng = np.random.default_rng(3)
    groups, truth = _cohort(rng, n_groups=3, length=60)
    guesses = np.concatenate([episodes(rng, 60, 5) for _ in range(3)])

    def plain_accuracy(t: np.ndarray, p: np.ndarray) -> float:
        return metrics.accuracy(t, p, range(5))

    named = metrics.circular_shift_null(truth, guesses, groups, "accuracy", 50, 7)
    called = metrics.circular_shift_null(truth, guesses, groups, plain_accuracy, 50, 7)
    np.testing.assert_allclose(named, called)


def test_permutation_test_on_empty_input(rng: np.random.Generator) -> None:
    result = metrics.permutation_test([], [], [], "balanced_accuracy", 10, rng)
    assert np.isnan(result.observed) and np.isnan(result.p_value) and np.isnan(result.null_mean)


def test_resampling_errors_name_the_option(rng: np.random.Generator) -> None:
    with pytest.raises(ConfigError, match="did you mean 'balanced_accuracy'"):
        metrics.permutation_test([0], [0], [0], "balanced_acc", 10, rng)
    with pytest.raises(ConfigError, match="'groups' has 1 entries but there are 2 volumes"):
        metrics.circular_shift_null([0, 1], [0, 1], [0], "accuracy", 10, rng)
    with pytest.raises(ConfigError, match="'n_permutations' must be an integer >= 1"):
        metrics.circular_shift_null([0], [0], [0], "accuracy", 0, rng)
    with pytest.raises(ConfigError, match="'level' must lie strictly between 0 and 1"):
        metrics.block_bootstrap_ci([0], [0], [0], "accuracy", 10, rng, level=95)


# --------------------------------------------------------------------------- block bootstrap


def test_block_bootstrap_interval_contains_observed(rng: np.random.Generator) -> None:
    groups, truth = _cohort(rng)
    noisy = np.where(rng.random(len(truth)) < 0.6, truth, rng.integers(0, 5, len(truth)))
    for name, score in (
        ("accuracy", metrics.accuracy),
        ("balanced_accuracy", metrics.balanced_accuracy),
    ):
        observed = score(truth, noisy, range(5))
        low, high = metrics.block_bootstrap_ci(truth, noisy, groups, name, 500, rng)
        assert low <= observed <= high
        assert high - low < 0.2


def test_block_bootstrap_single_block_is_degenerate(rng: np.random.Generator) -> None:
    low, high = metrics.block_bootstrap_ci(Y_TRUE, Y_PRED, np.zeros(7), "accuracy", 50, rng)
    assert low == pytest.approx(4 / 7) and high == pytest.approx(4 / 7)


def test_block_bootstrap_is_wider_than_volume_bootstrap_for_clustered_errors(
    rng: np.random.Generator,
) -> None:
    groups, truth = _cohort(rng, n_groups=12, length=100)
    # Whole runs are right or wrong: errors cluster in time.
    good_runs = rng.random(12) < 0.5
    pred = np.where(np.repeat(good_runs, 100), truth, (truth + 1) % 5)
    blocks = metrics.block_bootstrap_ci(truth, pred, groups, "accuracy", 500, rng)
    volumes = metrics.block_bootstrap_ci(truth, pred, np.arange(len(truth)), "accuracy", 500, rng)
    assert blocks[1] - blocks[0] > 3 * (volumes[1] - volumes[0])


def test_block_bootstrap_callable_agrees_with_named(rng: np.random.Generator) -> None:
    groups, truth = _cohort(rng, n_groups=6, length=50)
    noisy = np.where(rng.random(len(truth)) < 0.5, truth, rng.integers(0, 5, len(truth)))
    named = metrics.block_bootstrap_ci(truth, noisy, groups, "balanced_accuracy", 200, 11)
    called = metrics.block_bootstrap_ci(
        truth, noisy, groups, lambda t, p: metrics.balanced_accuracy(t, p, range(5)), 200, 11
    )
    np.testing.assert_allclose(named, called)


def test_block_bootstrap_empty_input(rng: np.random.Generator) -> None:
    low, high = metrics.block_bootstrap_ci([], [], [], "accuracy", 10, rng)
    assert np.isnan(low) and np.isnan(high)
