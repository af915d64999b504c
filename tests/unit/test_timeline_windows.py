"""summaries.timeline_windows / every_volume_summary and figures.timeline's zoom (issue 11)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from emocore.errors import ConfigError
from emocore.reporting.figures import timeline
from emocore.stats.summaries import every_volume_summary, timeline_windows

CLASSES = ["HAPPINESS", "FEAR"]


def volumes() -> pd.DataFrame:
    """Two runs of 5 and 7 volumes (overlapping by one), scenes 0 (before the list), 1 and 2."""
    return pd.DataFrame(
        {
            "run": [1] * 5 + [2] * 7,
            "movie_time": [0.0, 2, 4, 6, 8, 8, 10, 12, 14, 16, 18, 20],
            "scene": [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2],
            "scene_location": ["", "A", "A", "A", "A", "A", "B", "B", "B", "B", "B", "B"],
            "true": [
                "NONE",
                "FEAR",
                "FEAR",
                "NONE",
                "HAPPINESS",
                "HAPPINESS",
                "FEAR",
                "NONE",
                "NONE",
                "FEAR",
                "HAPPINESS",
                "HAPPINESS",
            ],
            "pred": [
                "FEAR",
                "FEAR",
                "HAPPINESS",
                "FEAR",
                "HAPPINESS",
                "FEAR",
                "FEAR",
                "HAPPINESS",
                "FEAR",
                "FEAR",
                "HAPPINESS",
                "HAPPINESS",
            ],
            "prob_HAPPINESS": np.linspace(0.1, 0.9, 12),
            "prob_FEAR": 1 - np.linspace(0.1, 0.9, 12),
        }
    )


def test_windows_are_the_movie_each_run_and_each_scene() -> None:
    w = timeline_windows(volumes())
    assert list(w) == [
        "whole movie",
        "run 1",
        "run 2",
        "scene 1: A (2-8 s)",
        "scene 2: B (10-20 s)",
    ]
    assert (
        w["whole movie"] == (0.0, 20.0) and w["run 1"] == (0.0, 8.0) and w["run 2"] == (8.0, 20.0)
    )
    assert timeline_windows(volumes().iloc[:0]) == {}
    with pytest.raises(ConfigError, match="movie_time"):
        timeline_windows(volumes().drop(columns="movie_time"))


def test_every_volume_summary_scores_labelled_volumes_only() -> None:
    s = every_volume_summary(volumes(), classes=CLASSES)
    assert (s["n_volumes"], s["n_labelled"], s["n_none"]) == (12, 8, 4)
    assert math.isclose(s["accuracy"], 6 / 8)  # NONE rows neither right nor wrong
    assert math.isclose(s["balanced_accuracy"], (3 / 4 + 3 / 4) / 2)
    assert s["chance"] == 0.5
    assert s["none_predictions"].to_dict() == {"HAPPINESS": 1, "FEAR": 3}


def test_timeline_zoom_limits_the_x_axis_and_the_marks() -> None:
    fig = timeline(volumes(), title="t", x_range=(8.0, 20.0))
    lo, hi = fig.layout.xaxis.range
    assert 7 <= lo <= 8 and 20 <= hi <= 21
    xs = [x for tr in fig.data if tr.x is not None for x in tr.x if x is not None]
    assert min(xs) >= 8 and max(xs) <= 20
    names = {tr.name for tr in fig.data}
    assert {"correct", "misclassified", "NONE volume (no correct answer)"} <= names
    with pytest.raises(ConfigError, match="x_range"):
        timeline(volumes(), title="t", x_range=(5.0, 1.0))
