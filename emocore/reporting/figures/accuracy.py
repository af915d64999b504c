"""How well the model decodes: recall per person and emotion, the confusion matrix, what it
answered for NONE volumes and for one person's volumes of one emotion, and the CNN against the
linear baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from emocore.constants import EMOTION_COLORS
from emocore.reporting.figures.style import layout, pct

__all__ = [
    "accuracy_heatmap",
    "confusion_figure",
    "misclassification_pie",
    "model_comparison",
    "none_predictions_figure",
]


def _diverging_at(middle: float) -> list[list[float | str]]:
    """Red below ``middle``, white at it, blue above, on a 0..1 scale. (Plotly ignores ``zmid``
    once ``zmin`` and ``zmax`` are set, which drew a 30 % recall red against a 20 % chance.)"""
    m = min(max(float(middle), 0.01), 0.99)
    return [
        [0.0, "#b2182b"],
        [m / 2, "#ef8a62"],
        [m, "#f7f7f7"],
        [m + (1 - m) / 2, "#67a9cf"],
        [1.0, "#2166ac"],
    ]


def accuracy_heatmap(
    per_subject: pd.DataFrame, classes: Sequence[str], *, split: str, chance: float, title: str
) -> go.Figure:
    """Subjects x emotions recall (the share decoded correctly); the colour scale is white at ``chance`` (its colour bar says
    so), red below, blue above."""
    cols = [f"accuracy_{c}" for c in classes]
    z = per_subject[cols].to_numpy(dtype=float)
    subjects = [f"sub-{s}" for s in per_subject["subject"]]
    text = [[pct(v) for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(classes),
            y=subjects,
            text=text,
            texttemplate="%{text}",
            colorscale=_diverging_at(chance),
            zmin=0,
            zmax=1,
            colorbar={
                "title": {
                    "text": f"decoded correctly<br>(held out)<br>white = chance {pct(chance)}"
                },
                "tickformat": ".0%",
                # a readable bar however few people: at least 200 px (title included), else the rows
                "lenmode": "pixels",
                "len": max(200, 40 * len(subjects)),
                "thickness": 16,
                "yanchor": "middle",
                "y": 0.5,
            },
            hovertemplate="%{y} · %{x}: %{z:.1%}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    # tall enough for the colour bar (200 px + margins) with one or two people
    return layout(
        fig,
        f"{title} — split: {split}, chance {pct(chance)}",
        max(320, 120 + 40 * len(subjects)),
    )


def confusion_figure(
    confusion: Sequence[Sequence[int]],
    classes: Sequence[str],
    *,
    split: str,
    chance: float,
    title: str = "Confusion",
) -> go.Figure:
    """Row-normalised confusion matrix (rows: true class), counts in the hover."""
    counts = np.asarray(confusion, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = counts / counts.sum(axis=1, keepdims=True)
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=list(classes),
            y=list(classes),
            customdata=counts,
            text=[[pct(v) for v in row] for row in share],
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "share of<br>true class"}, "tickformat": ".0%"},
            hovertemplate="true %{y} → predicted %{x}<br>%{z:.1%} (%{customdata:.0f} volumes)<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="true", autorange="reversed")
    fig.update_xaxes(title_text="predicted")
    return layout(fig, f"{title} (row-normalised) — split: {split}, chance {pct(chance)}", 420)


def none_predictions_figure(counts: pd.Series, *, title: str) -> go.Figure:
    """Bars: how many NONE volumes (no emotion labelled) the model called each class."""
    fig = go.Figure(
        go.Bar(
            x=list(counts.index),
            y=counts.to_numpy(),
            marker_color=[EMOTION_COLORS.get(str(c), "#999999") for c in counts.index],
            hovertemplate="%{x}: %{y} NONE volumes<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="the model's answer")
    fig.update_yaxes(title_text="NONE volumes")
    return layout(fig, title, 300)


def misclassification_pie(counts: Mapping[str, int], *, subject: str, emotion: str) -> go.Figure:
    """What the model answered for one person's volumes of one emotion."""
    names = list(counts)
    fig = go.Figure(
        go.Pie(
            labels=names,
            values=[counts[n] for n in names],
            sort=False,
            hole=0.35,
            marker={"colors": [EMOTION_COLORS.get(n, "#666666") for n in names]},
            # one decimal, as the sentence above the chart writes it ("2.1 %", not "2.08%")
            texttemplate="%{percent:.1%}",
            hovertemplate="%{label}: %{value} volumes (%{percent:.1%})<extra></extra>",
        )
    )
    return layout(fig, f"sub-{subject}: {emotion} volumes were predicted as", 340)


def model_comparison(
    results: Sequence[Mapping], *, title: str = "CNN vs linear baseline"
) -> go.Figure:
    """Balanced accuracy per design for each model family, 95 % CI, permutation chance marked."""
    frame = pd.DataFrame(list(results))
    fig = go.Figure()
    for model, colour in (("cnn", "#0072B2"), ("linear", "#E69F00")):
        part = frame[frame["model"] == model] if len(frame) else frame
        if not len(part):
            continue
        ci = np.array([c if c is not None else [np.nan, np.nan] for c in part["ci95"]], dtype=float)
        fig.add_trace(
            go.Bar(
                x=part["design"] + "<br>(" + part["split"] + ")",
                y=part["balanced_accuracy"],
                name=model,
                marker_color=colour,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": ci[:, 1] - part["balanced_accuracy"],
                    "arrayminus": part["balanced_accuracy"] - ci[:, 0],
                },
                hovertemplate="%{x}: %{y:.1%}<extra>" + model + "</extra>",
            )
        )
    if len(frame):
        fig.add_trace(
            go.Scatter(
                x=frame["design"] + "<br>(" + frame["split"] + ")",
                y=frame["chance_balanced_accuracy"],
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 30, "color": "black"},
                name="chance (permutation)",
            )
        )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="balanced accuracy", tickformat=".0%", range=[0, 1])
    return layout(fig, title, 380)
