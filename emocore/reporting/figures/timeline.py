"""The prediction timeline: true and predicted class of every volume over movie time, the
probability of each prediction, and scene changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from emocore.constants import CLASSES, EMOTION_COLORS, movie_clock
from emocore.errors import ConfigError
from emocore.reporting.figures.style import (
    MOVIE_TIME_TITLE,
    clock_ticks,
    in_legend_order,
    layout,
    scene_lines,
)

__all__ = ["TIMELINE_LEGEND", "TIMELINE_ROWS", "classes_of", "confidence", "timeline"]


def confidence(t: pd.DataFrame) -> np.ndarray:
    """Probability of the predicted class of each row (from the ``prob_<CLASS>`` columns)."""
    cols = [c for c in t.columns if str(c).startswith("prob_")]
    at = pd.Index([c[5:] for c in cols]).get_indexer(t["pred"])
    probs = t[cols].to_numpy(dtype=float)
    return np.where(at >= 0, probs[np.arange(len(t)), np.maximum(at, 0)], np.nan)


#: The rows of the timeline's upper panel, bottom to top (the legend below names them so).
TIMELINE_ROWS = ("true", "predicted")

TIMELINE_LEGEND = (
    "**How to read the timeline.** Each vertical tick is one fMRI volume (2 s) at its movie "
    "time. Top row **predicted**: the model's answer. Row below it **true**: the emotion the "
    "observers labelled, in the same colours (grey: NONE, no emotion labelled, so no correct "
    "answer). Lower panel: the model's probability for its answer; black dots are correct, "
    "vermillion dots **misclassified** volumes, grey dots NONE volumes. Faint vertical lines "
    "are scene changes. Zoom to a run or a scene to read single volumes."
)


_WRONG_COLOR = "#D55E00"


def timeline(
    table: pd.DataFrame, *, title: str, x_range: tuple[float, float] | None = None
) -> go.Figure:
    """True vs predicted class over movie time, scene changes, confidence of the prediction.

    ``x_range`` (movie seconds, e.g. one run of
    :func:`emocore.stats.summaries.timeline_windows`) zooms the x axis; volumes outside it are left
    out. NONE rows of ``true`` (no emotion labelled) are drawn grey and are neither correct nor
    misclassified. :data:`TIMELINE_LEGEND` says in words what the marks mean.
    """
    t = table.sort_values("movie_time")
    if x_range is not None:
        lo, hi = float(x_range[0]), float(x_range[1])
        if not lo <= hi:
            raise ConfigError(f"'x_range' must be (start, end) with start <= end; got {x_range}")
        t = t[t["movie_time"].between(lo, hi)]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06
    )
    _add_class_tracks(fig, t)
    _add_confidence(fig, t)
    if "scene" in t:
        _add_scene_changes(fig, t)
    # the rows' order fixed, not left to which trace comes first (TIMELINE_LEGEND names them)
    fig.update_yaxes(categoryorder="array", categoryarray=list(TIMELINE_ROWS), row=1, col=1)
    fig.update_yaxes(title_text="probability of<br>predicted class", range=[0, 1], row=2, col=1)
    _movie_time_axis(fig, t, None if x_range is None else (lo, hi))
    return layout(fig, title, 420)


def _add_class_tracks(fig: go.Figure, t: pd.DataFrame) -> None:
    """Upper panel: a tick per volume on the true row and on the predicted row, one trace per
    class, each class in the legend once."""
    for track, col in (("true", "true"), ("predicted", "pred")):
        for cls in in_legend_order(set(t[col])):
            part = t[t[col] == cls]
            fig.add_trace(
                go.Scattergl(
                    x=part["movie_time"],
                    y=[track] * len(part),
                    mode="markers",
                    marker={
                        "color": EMOTION_COLORS[cls],
                        "symbol": "line-ns-open",
                        "size": 18,
                        "line": {"width": 2, "color": EMOTION_COLORS[cls]},
                    },
                    name=cls if cls != CLASSES[0] else f"{cls} (no emotion labelled)",
                    legendgroup=cls,
                    showlegend=track == "true" or cls not in set(t["true"]),
                    customdata=[movie_clock(x) for x in part["movie_time"]],
                    hovertemplate=f"{track}: {cls}<br>movie time %{{customdata}}<extra></extra>",
                ),
                row=1,
                col=1,
            )


def _add_confidence(fig: go.Figure, t: pd.DataFrame) -> None:
    """Lower panel: the probability of each prediction, correct, misclassified and NONE
    volumes (no correct answer) as separate traces."""
    conf = confidence(t)
    # NONE has a correct answer only for a model that has NONE among its classes
    no_answer = (t["true"] == CLASSES[0]).to_numpy() & (CLASSES[0] not in classes_of(t))
    labelled = ~no_answer
    wrong = (t["true"] != t["pred"]).to_numpy()
    for name, keep, color in (
        ("correct", labelled & ~wrong, "#333333"),
        ("misclassified", labelled & wrong, _WRONG_COLOR),
        ("NONE volume (no correct answer)", ~labelled, EMOTION_COLORS[CLASSES[0]]),
    ):
        if keep.any() or name != "NONE volume (no correct answer)":
            fig.add_trace(
                go.Scattergl(
                    x=t["movie_time"][keep],
                    y=conf[keep],
                    mode="markers",
                    name=name,
                    legendgroup="confidence",
                    legendgrouptitle_text="p(predicted)",
                    marker={"size": 4, "color": color},
                    customdata=[movie_clock(x) for x in t["movie_time"][keep]],
                    hovertemplate=f"{name}<br>p(predicted) %{{y:.2f}}<br>movie time "
                    "%{customdata}<extra></extra>",
                ),
                row=2,
                col=1,
            )


def _add_scene_changes(fig: go.Figure, t: pd.DataFrame) -> None:
    """Faint vertical lines at the scene changes, across both panels (on a hidden axis)."""
    xs, ys = scene_lines(t["movie_time"], t["scene"])
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            yaxis="y3",
            name="scene change",
            line={"color": "rgba(0,0,0,0.15)", "width": 1},
            hoverinfo="skip",
        ),
    )
    fig.update_layout(yaxis3={"overlaying": "y", "range": [0, 1], "visible": False})


def _movie_time_axis(fig: go.Figure, t: pd.DataFrame, x_range: tuple[float, float] | None) -> None:
    """Movie time on the x axis: zoomed to ``x_range`` (with a little room) when given, ticks
    labelled as clock time."""
    # seconds on the axis (x_range and zooms stay in seconds), labelled as clock time
    if x_range is not None:
        lo, hi = x_range
        pad = max(1.0, 0.01 * (hi - lo))
        fig.update_xaxes(range=[lo - pad, hi + pad])
        fig.update_xaxes(**clock_ticks(lo, hi), row=2, col=1)
    elif len(t):
        fig.update_xaxes(**clock_ticks(t["movie_time"].min(), t["movie_time"].max()), row=2, col=1)
    else:
        fig.update_xaxes(title_text=MOVIE_TIME_TITLE, row=2, col=1)


def classes_of(t: pd.DataFrame) -> list[str]:
    """The classes a prediction table's model knows (its ``prob_<CLASS>`` columns)."""
    return [str(c)[5:] for c in t.columns if str(c).startswith("prob_")]
