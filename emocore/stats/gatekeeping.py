"""Multiple testing along an order fixed in advance: the graphical procedure of Bretz et al.

A person's verdict asks many questions at once (decoded worse overall? LOVE decoded correctly
less often? LOVE taken for SADNESS more often? ...). Testing each at ``alpha`` would flag a
typical person on some question far more often than ``alpha``; Holm's correction over all of
them (what exploratory designs use) controls that, but spreads ``alpha`` so thin that a moderate
effect is almost never found.

The graphical approach (Bretz, Maurer, Brannath & Posch 2009, *Stat Med* 28:586; adjusted
p-values as in Bretz, Posch, Glimm, Klinglmueller, Maurer & Rohmeyer 2011, *Biom J* 53:894)
spends ``alpha`` where the question is and passes it on when a hypothesis is rejected:

* each hypothesis ``j`` starts with a weight ``w_j`` (the weights sum to at most 1) and is
  rejected when its p-value is at most ``w_j * alpha``;
* a rejected hypothesis hands its weight on along the edges of a transition matrix ``G``
  (row ``j`` says where ``j``'s weight goes), and the graph is updated so that weight routed
  through ``j`` goes on to ``j``'s successors;
* it repeats until no hypothesis can be rejected.

This is a closed testing procedure with weighted Bonferroni tests, so it controls the
family-wise error rate (the chance that a person is flagged for anything that is not so) at
``alpha`` strongly and under any dependence between the tests. scipy and statsmodels do not
implement it (statsmodels' ``multipletests`` has Holm and Hochberg, not graphs), and the R
package gMCP is not a Python dependency, so it is written here; the tests check it against
Holm's procedure, which is the graph with equal weights and equal edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emocore.errors import ConfigError

__all__ = ["Graph", "adjusted_p", "rejected"]


@dataclass(frozen=True)
class Graph:
    """Initial weights (H,) and transition matrix (H, H) of a graphical procedure."""

    weights: np.ndarray
    transitions: np.ndarray

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=float)
        g = np.asarray(self.transitions, dtype=float)
        h = len(w)
        if w.ndim != 1 or g.shape != (h, h):
            raise ConfigError(
                f"a graph needs weights of shape (H,) and transitions of shape (H, H); got "
                f"{w.shape} and {g.shape}"
            )
        if np.any(w < 0) or w.sum() > 1 + 1e-9:
            raise ConfigError(f"graph weights must be >= 0 and sum to at most 1; sum {w.sum()}")
        if np.any(g < 0) or np.any(g.sum(axis=1) > 1 + 1e-9) or np.any(np.diag(g) != 0):
            raise ConfigError(
                "graph transitions must be >= 0, with rows summing to at most 1 and no self-loops"
            )
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "transitions", g)

    @classmethod
    def holm(cls, h: int) -> Graph:
        """Holm's procedure as a graph: equal weights, each rejection shared equally."""
        g = np.full((h, h), 1.0 / max(h - 1, 1))
        np.fill_diagonal(g, 0.0)
        return cls(np.full(h, 1.0 / h), g if h > 1 else np.zeros((1, 1)))


def _remove(w: np.ndarray, g: np.ndarray, rows: np.ndarray, j: np.ndarray) -> None:
    """Reject hypothesis ``j[r]`` in row ``rows[r]`` (in place): hand its weight on, update
    the graph (Bretz et al. 2009, algorithm 1), and take it out."""
    wj = w[rows, j]  # (R,)
    gj_out = g[rows, j, :]  # (R, H): where j's weight goes
    gj_in = g[rows, :, j]  # (R, H): what reaches j
    w[rows] += wj[:, None] * gj_out
    # g_lk <- (g_lk + g_lj g_jk) / (1 - g_lj g_jl) for l != k
    num = g[rows] + gj_in[:, :, None] * gj_out[:, None, :]
    den = 1.0 - gj_in * gj_out  # (R, H) indexed by l
    with np.errstate(divide="ignore", invalid="ignore"):
        new = np.where(den[:, :, None] > 1e-12, num / den[:, :, None], 0.0)
    h = w.shape[1]
    new[:, np.arange(h), np.arange(h)] = 0.0
    g[rows] = new
    w[rows, j] = 0.0
    g[rows, j, :] = 0.0
    g[rows, :, j] = 0.0


def _prepare(p: np.ndarray, graph: Graph) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    p = np.asarray(p, dtype=float)
    one = p.ndim == 1
    p = np.atleast_2d(p)
    if p.shape[1] != len(graph.weights):
        raise ConfigError(
            f"{p.shape[1]} p-values given for a graph of {len(graph.weights)} hypotheses"
        )
    m = p.shape[0]
    w = np.repeat(graph.weights[None], m, axis=0)
    g = np.repeat(graph.transitions[None], m, axis=0)
    return p, w, g, one


def adjusted_p(p: np.ndarray, graph: Graph) -> np.ndarray:
    """Adjusted p-values of the graphical procedure: hypothesis ``j`` is rejected at level
    ``alpha`` exactly when its adjusted p is at most ``alpha``.

    ``p`` is (H,) or (M, H) (M independent families, e.g. simulated people). A missing p
    (``NaN``: a test that could not be run) is never rejected and its adjusted p is ``NaN``; its
    weight still passes on only if it is rejected, so it is simply lost (conservative).
    """
    p, w, g, one = _prepare(p, graph)
    m, h = p.shape
    out = np.full((m, h), np.nan)
    open_ = np.isfinite(p)
    pmax = np.zeros(m)
    rows_all = np.arange(m)
    for _ in range(h):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(open_ & (w > 0), p / w, np.inf)
        j = ratio.argmin(axis=1)
        best = ratio[rows_all, j]
        live = np.isfinite(best)
        if not live.any():
            break
        rows = rows_all[live]
        q = np.minimum(np.maximum(best[live], pmax[live]), 1.0)
        out[rows, j[live]] = q
        pmax[live] = q
        open_[rows, j[live]] = False
        _remove(w, g, rows, j[live])
    # hypotheses never reached (weight 0 all along): not rejectable at any level below 1
    out = np.where(np.isfinite(p) & np.isnan(out), 1.0, out)
    return out[0] if one else out


def rejected(p: np.ndarray, graph: Graph, alpha: float) -> np.ndarray:
    """Which hypotheses the procedure rejects at ``alpha`` (same shapes as :func:`adjusted_p`).

    Stops as soon as nothing more can be rejected, so it is quick when few hypotheses are
    false (simulations of many people)."""
    p, w, g, one = _prepare(p, graph)
    m, h = p.shape
    out = np.zeros((m, h), dtype=bool)
    p = np.where(np.isfinite(p), p, np.inf)
    active = np.arange(m)
    for _ in range(h):
        if len(active) == 0:
            break
        pa, wa = p[active], w[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(~out[active] & (wa > 0), pa / wa, np.inf)
        j = ratio.argmin(axis=1)
        can = ratio[np.arange(len(active)), j] <= alpha
        active, j = active[can], j[can]
        if len(active) == 0:
            break
        out[active, j] = True
        _remove(w, g, active, j)
    return out[0] if one else out
