"""The graphical multiple-testing procedure behind each verdict."""

import numpy as np
import pytest

from emocore.errors import ConfigError
from emocore.stats.gatekeeping import Graph, adjusted_p, rejected
from emocore.stats.single_case import holm, verdict_graph

CLASSES = ["HAPPINESS", "FEAR", "SADNESS", "LOVE", "ANGER"]


def test_holm_is_the_graph_with_equal_weights_and_edges(rng):
    p = rng.uniform(0, 0.2, size=(200, 6))
    graph = Graph.holm(6)
    np.testing.assert_allclose(adjusted_p(p, graph), np.stack([holm(row) for row in p]))


def test_fixed_sequence_by_hand():
    """All weight on the first hypothesis, passed to the second once it is rejected: the second
    is tested at the full level, but only after the first."""
    graph = Graph(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [0.0, 0.0]]))
    np.testing.assert_allclose(adjusted_p([0.01, 0.04], graph), [0.01, 0.04])
    np.testing.assert_allclose(adjusted_p([0.06, 0.001], graph), [0.06, 0.06])
    assert rejected([0.01, 0.04], graph, 0.05).tolist() == [True, True]
    assert rejected([0.06, 0.001], graph, 0.05).tolist() == [False, False]


def test_weight_passes_on_and_back():
    """Bretz et al.'s update: with A -> B and B -> A, rejecting B at its share gives A the
    whole level."""
    graph = Graph(np.array([0.5, 0.5]), np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert rejected([0.04, 0.02], graph, 0.05).tolist() == [True, True]
    assert rejected([0.06, 0.02], graph, 0.05).tolist() == [False, True]


def test_rejected_agrees_with_the_adjusted_p_values(rng):
    graph, _ = verdict_graph(CLASSES)
    p = np.where(
        rng.random((500, 26)) < 0.3, rng.uniform(0, 0.01, (500, 26)), rng.random((500, 26))
    )
    p[rng.random(p.shape) < 0.05] = np.nan  # measures that could not be tested
    np.testing.assert_array_equal(rejected(p, graph, 0.05), adjusted_p(p, graph) <= 0.05)
    assert not rejected(p, graph, 0.05)[np.isnan(p)].any()


def test_the_verdict_order_controls_the_error_under_any_null(rng):
    """Independent and strongly dependent true nulls: the chance of rejecting anything is at
    most alpha (weighted Bonferroni at the first step)."""
    graph, _ = verdict_graph(CLASSES)
    independent = rng.random((20000, 26))
    shared = np.repeat(rng.random((20000, 1)), 26, axis=1)
    for p in (independent, shared):
        share = rejected(p, graph, 0.05).any(axis=1).mean()
        assert share <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / len(p))


def test_verdict_order_spends_alpha_on_the_clinical_question():
    graph, steps = verdict_graph(CLASSES)
    w = graph.weights
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(0.1) and steps[0] == 1  # balanced accuracy
    love = CLASSES.index("LOVE")
    assert w[1 + love] == pytest.approx(0.08) and steps[1 + love] == 2  # LOVE recall
    assert w[1 + CLASSES.index("ANGER")] == pytest.approx(0.1 / 3)
    assert steps[1 + CLASSES.index("ANGER")] == 3


def test_a_bad_graph_is_refused():
    with pytest.raises(ConfigError, match="sum to at most 1"):
        Graph(np.array([0.8, 0.8]), np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="no self-loops"):
        Graph(np.array([0.5, 0.5]), np.eye(2))
    with pytest.raises(ConfigError, match="3 p-values given for a graph of 2"):
        adjusted_p([0.1, 0.2, 0.3], Graph.holm(2))
