"""The hidden layer's embedding: a PCA scatter, one point per volume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from emocore.constants import EMOTION_COLORS
from emocore.reporting.figures.style import in_legend_order, layout

__all__ = ["embedding_scatter"]


_SUBJECT_COLORS = (
    "#1b9e77",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#a6761d",
    "#666666",
    "#e6ab02",
    "#d95f02",
)


def embedding_scatter(
    emb: pd.DataFrame, *, color_by: str = "emotion", silhouette: float | None = None
) -> go.Figure:
    """PCA of the hidden layer, one point per volume, coloured by emotion or subject."""
    column = "label" if color_by == "emotion" else "subject"
    fig = go.Figure()
    groups = dict(list(emb.groupby(column, sort=True)))
    keys = in_legend_order(groups) if column == "label" else list(groups)
    for i, key in enumerate(keys):
        part = groups[key]
        colour = EMOTION_COLORS.get(key, "#666666") if column == "label" else _SUBJECT_COLORS[i % 8]
        fig.add_trace(
            go.Scattergl(
                x=part["pc1"],
                y=part["pc2"],
                mode="markers",
                name=str(key) if column == "label" else f"sub-{key}",
                marker={"color": colour, "size": 5, "opacity": 0.7},
                customdata=np.stack([part["subject"], part["run"], part["volume"]], axis=1),
                hovertemplate="sub-%{customdata[0]} run %{customdata[1]} vol %{customdata[2]}<extra></extra>",
            )
        )
    # three decimals, as the page's metric shows it
    sil = "n/a" if silhouette is None else f"{silhouette:.3f}"
    fig.update_xaxes(title_text="PC 1")
    fig.update_yaxes(title_text="PC 2")
    return layout(fig, f"Hidden-layer PCA by {color_by} — silhouette by {color_by}: {sil}", 480)
