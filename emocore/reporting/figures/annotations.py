"""The observers' annotations: raw categories and their classes, how categories co-occur, the
labels over the movie, the observers' agreement and the labelled volumes per class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from emocore.constants import CATEGORY_MAP, CLASSES, EMOTION_COLORS, movie_clock
from emocore.reporting.figures.style import (
    LEGEND_ORDER,
    MOVIE_TIME_TITLE,
    clock_ticks,
    in_legend_order,
    layout,
    scene_lines,
)

__all__ = [
    "agreement_histogram",
    "category_bars",
    "category_map_table",
    "cooccurrence_heatmap",
    "label_counts_figure",
    "label_timeline",
]


def category_bars(counts: pd.DataFrame) -> go.Figure:
    """Annotations per raw category (22), coloured by the class the category maps to."""
    c = counts.sort_values("count", ascending=False)
    fig = go.Figure(
        go.Bar(
            x=c.index,
            y=c["count"],
            marker_color=[EMOTION_COLORS[k] for k in c["class"]],
            customdata=np.stack([c["class"], c["observers"]], axis=1),
            hovertemplate="%{x} → %{customdata[0]}<br>%{y} annotations by %{customdata[1]} observers<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="annotations")
    return layout(fig, "Raw categories (colour: the class each maps to)", 380)


def cooccurrence_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """How often two observers' categories fall on the same 2-s step; colour on a log scale
    (the colour bar labelled in plain counts), every category named on both axes."""
    counts = matrix.to_numpy(dtype=float)
    top = float(np.nanmax(counts)) if counts.size else 0.0
    ticks = [n for n in (0, 1, 10, 100, 1000, 10000, 100000) if n <= max(top, 1)]
    fig = go.Figure(
        go.Heatmap(
            z=np.log10(counts + 1),
            x=matrix.columns,
            y=matrix.index,
            customdata=matrix.to_numpy(),
            colorscale="Viridis",
            colorbar={
                "title": {"text": "2-s steps<br>together<br>(log scale)"},
                "tickmode": "array",
                "tickvals": [float(np.log10(n + 1)) for n in ticks],
                "ticktext": [f"{n:,}" for n in ticks],
            },
            hovertemplate="%{y} & %{x}: %{customdata} 2-s steps<extra></extra>",
        )
    )
    fig.update_xaxes(dtick=1, tickangle=-45)
    fig.update_yaxes(autorange="reversed", dtick=1)
    return layout(fig, "Co-occurrence of categories between observers (2-s steps)", 600)


def label_timeline(labels: pd.DataFrame, *, title: str = "Labels over the movie") -> go.Figure:
    """One mark per volume at its movie time, coloured by label; agreement on the y axis."""
    fig = go.Figure()
    for cls in LEGEND_ORDER:
        part = labels[labels["label"] == cls]
        if len(part):
            fig.add_trace(
                go.Scattergl(
                    x=part["movie_time"],
                    y=part["agreement"],
                    mode="markers",
                    name=cls,
                    marker={"color": EMOTION_COLORS[cls], "size": 4},
                    customdata=[movie_clock(x) for x in part["movie_time"]],
                    hovertemplate=f"{cls}<br>movie time %{{customdata}}, "
                    "%{y:.0%} of observers agreeing<extra></extra>",
                )
            )
    if "scene" in labels:
        xs, ys = scene_lines(labels["movie_time"], labels["scene"])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name="scene change",
                hoverinfo="skip",
                line={"color": "rgba(0,0,0,0.12)", "width": 1},
            )
        )
    if len(labels):
        fig.update_xaxes(**clock_ticks(labels["movie_time"].min(), labels["movie_time"].max()))
    else:
        fig.update_xaxes(title_text=MOVIE_TIME_TITLE)
    fig.update_yaxes(title_text="observers agreeing (%)", tickformat=".0%", range=[0, 1.05])
    return layout(fig, title, 360)


def agreement_histogram(labels: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for cls in LEGEND_ORDER:
        part = labels[labels["label"] == cls]
        if len(part):
            fig.add_trace(
                go.Histogram(
                    x=part["agreement"],
                    name=cls,
                    marker_color=EMOTION_COLORS[cls],
                    xbins={"start": 0, "end": 1.0001, "size": 0.0625},
                )
            )
    # plotly lists stacked bars bottom-up (reversed) unless told: keep the emotion order
    fig.update_layout(barmode="stack", legend={"traceorder": "normal"})
    fig.update_xaxes(title_text="observers agreeing with the volume's label (%)", tickformat=".0%")
    fig.update_yaxes(title_text="volumes")
    return layout(fig, "Agreement per volume", 320)


def label_counts_figure(counts: pd.DataFrame) -> go.Figure:
    """Grouped bars: volumes per class (columns) for each option (index, e.g. 'poster, lag 4 s')."""
    fig = go.Figure()
    for cls in in_legend_order(c for c in CLASSES if c in counts.columns):
        fig.add_trace(
            go.Bar(
                x=counts.index.astype(str),
                y=counts[cls],
                name=cls,
                marker_color=EMOTION_COLORS[cls],
            )
        )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="volumes")
    return layout(fig, "Labelled volumes per class, by recipe and hemodynamic lag", 360)


def category_map_table() -> pd.DataFrame:
    """The 22 -> 5 map as a table (category, class), for display."""
    return pd.DataFrame(
        sorted(CATEGORY_MAP.items(), key=lambda kv: (kv[1], kv[0])), columns=["category", "class"]
    )
