"""Training curves of held-out balanced accuracy against chance 1/K, and the fallback for runs
recorded before balanced accuracy was logged per epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emocore.errors import ConfigError
from emocore.reporting import figures


def _curves(balanced: bool) -> pd.DataFrame:
    rows = []
    for design, split_folds in (
        ("single-subject", ("sub-01/runs-1", "sub-01/runs-2")),
        ("cross-subject", ("all/fold-1",)),
    ):
        for fold in (*split_folds, f"{split_folds[0].split('/')[0]}/final"):
            for epoch in (1, 2, 3):
                rows.append(
                    {
                        "fold": f"{design}/{fold}",
                        "epoch": epoch,
                        "train_acc": 0.3 * epoch,
                        "val_acc": 0.3,
                        "train_loss": 1.0,
                        "val_loss": 1.2,
                        "val_balanced_acc": 0.2 + 0.05 * epoch if balanced else np.nan,
                    }
                )
    return pd.DataFrame(rows)


def test_balanced_curves_are_held_out_only_against_chance_one_over_k() -> None:
    curves = _curves(balanced=True)
    assert figures.balanced_curves_recorded(curves)
    fig = figures.training_curves(
        curves,
        metric="balanced_acc",
        chance=0.2,
        chance_label="chance 1/5 classes",
        splits={"single-subject": "leave-one-run-out", "cross-subject": "run-wise 2-fold"},
    )
    named = {t.name: list(t.y) for t in fig.data if t.showlegend is not False}
    assert set(named) == {
        "single-subject (leave-one-run-out) · held out",
        "cross-subject (run-wise 2-fold) · held out",
    }
    assert named["single-subject (leave-one-run-out) · held out"] == pytest.approx(
        [0.25, 0.3, 0.35]
    )
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 0.2
    assert any(a.text == "chance 1/5 classes 20 %" for a in fig.layout.annotations)
    assert fig.layout.yaxis.title.text == "held-out balanced accuracy"
    assert "balanced accuracy" in fig.layout.title.text


def test_a_run_recorded_before_has_no_balanced_curves() -> None:
    assert not figures.balanced_curves_recorded(_curves(balanced=False))
    assert not figures.balanced_curves_recorded(
        _curves(balanced=True).drop(columns="val_balanced_acc")
    )
    assert not figures.balanced_curves_recorded(pd.DataFrame(columns=["fold", "epoch"]))
    fig = figures.training_curves(_curves(balanced=False), metric="acc", chance=0.31)
    assert any(t.name == "single-subject · train" for t in fig.data)  # plain accuracy, both sides


def test_an_unknown_curve_metric_is_named() -> None:
    with pytest.raises(ConfigError, match="'metric'.*did you mean 'balanced_acc'"):
        figures.training_curves(_curves(balanced=True), metric="balanced")
