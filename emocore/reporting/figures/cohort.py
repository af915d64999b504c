"""One person against the others: per-emotion recall beside the others' mean ± SD, and where the
person stands among the others' values of one measure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from emocore.reporting.figures.style import layout, pct

__all__ = ["others_label", "others_recall", "single_case_dots", "subject_vs_cohort"]


def others_recall(
    cohort: pd.DataFrame, classes: Sequence[str], *, subject: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """The other people's mean and sample SD of each emotion's recall, and how many they are.

    ``cohort`` has one row per person (``accuracy_<EMOTION>`` columns, as
    :func:`emocore.stats.summaries.per_subject_metrics` writes them); the row of ``subject`` (column
    ``subject``) is left out, so a person is never compared with a mean that includes them. A
    table without a ``subject`` column is taken to hold the others only. SD 0 with one other.
    """
    cols = [f"accuracy_{c}" for c in classes]
    if "subject" in cohort.columns:
        cohort = cohort[cohort["subject"].astype(str) != str(subject)]
    mean = cohort[cols].mean().to_numpy(dtype=float)
    sd = cohort[cols].std().fillna(0).to_numpy(dtype=float)
    return mean, sd, len(cohort)


def others_label(n: int) -> str:
    """How every comparison names the people a person is compared with: "others (9)"."""
    return f"others ({n})"


def subject_vs_cohort(
    subject_row: Mapping,
    cohort: pd.DataFrame,
    classes: Sequence[str],
    *,
    subject: str,
    chance: float,
) -> go.Figure:
    """Per-emotion recall of one person next to the other people's mean ± SD (the sample
    standard deviation over ``cohort`` without the person, see :func:`others_recall`; labelled
    "others (n)"), chance marked to the right of the plot, clear of the bars."""
    cols = [f"accuracy_{c}" for c in classes]
    mean, sd, n = others_recall(cohort, classes, subject=subject)
    others = others_label(n)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=list(classes),
            y=mean,
            name=f"{others}: mean ± SD",
            marker_color="#BBBBBB",
            error_y={"type": "data", "array": sd},
            customdata=sd,
            hovertemplate="%{x}: others' mean %{y:.1%} ± SD %{customdata:.1%}"
            f" over the {n} other {'person' if n == 1 else 'people'}<extra></extra>",
        )
    )
    # one colour for the person (per-emotion colours made the legend show the first emotion's)
    fig.add_trace(
        go.Bar(
            x=list(classes),
            y=[subject_row[c] for c in cols],
            name=f"sub-{subject}",
            marker_color="#33415C",
            hovertemplate=f"%{{x}}: sub-{subject} %{{y:.1%}}<extra></extra>",
        )
    )
    fig.add_hline(y=chance, line_dash="dash", line_color="#555555")
    # the label right of the plot area, where no bar is
    fig.add_annotation(
        x=1,
        xref="paper",
        xanchor="left",
        xshift=4,
        y=chance,
        yref="y",
        yanchor="middle",
        text=f"chance<br>{pct(chance)}",
        showarrow=False,
        align="left",
        font={"color": "#555555"},
    )
    fig.update_yaxes(title_text="decoded correctly (held out)", tickformat=".0%", range=[0, 1])
    fig.update_layout(legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"})
    layout(fig, f"sub-{subject} vs {others}, per emotion", 360)
    fig.update_layout(margin={"r": 70, "t": 80})
    return fig


def _others(n: int) -> str:
    """'the 1 other', 'the 7 others'."""
    return f"the {n} other" if n == 1 else f"the {n} others"


def _edge_anchor(x: float, *, low: float = 0.15, high: float = 0.85) -> str:
    """Where a label at ``x`` (on a 0..1 axis) hangs: to the right near the left edge, to the
    left near the right edge, centred between, so it never runs off the plot."""
    return "left" if x < low else "right" if x > high else "center"


def single_case_dots(
    values: pd.DataFrame,
    *,
    subject: str,
    measure: str,
    design: str,
    split: str,
    chance: float | None = None,
) -> go.Figure:
    """Where one person stands: the other people's values of a measure as dots, the person's
    marked (diamond and label, on its own row below the others), the others' mean dotted and
    chance dashed; rates on an x axis in %.

    Every label has a place of its own, so none covers another whatever the values: the
    person's beside the diamond (on the side with room), the others' mean and chance each on a
    row above the dots; labels near an edge of the axis hang inwards, so none is cut off.

    ``values`` has the columns ``subject`` and ``value`` (a rate from 0 to 1), one row per
    person; the row of ``subject`` is the person. Tied values are stacked so every dot shows.
    """
    v = values.dropna(subset=["value"]).assign(subject=lambda f: f["subject"].astype(str))
    me = v[v["subject"] == str(subject)]
    others = v[v["subject"] != str(subject)].sort_values("value", kind="stable")
    rank = others.groupby(others["value"].round(3)).cumcount().to_numpy()
    dots_top = 0.12 * (int(rank.max()) if len(rank) else 0)
    me_y, lines_from = -0.4, -0.2
    rows = iter((dots_top + 0.3, dots_top + 0.6))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=others["value"],
            y=0.12 * rank,
            mode="markers",
            name=_others(len(others)),
            marker={"color": "#8C8C8C", "size": 10, "line": {"width": 1, "color": "#FFFFFF"}},
            customdata=("sub-" + others["subject"]).to_numpy(),
            hovertemplate="%{customdata}: %{x:.1%}<extra></extra>",
        )
    )
    marks = []
    if len(others):
        mean = float(others["value"].mean())
        marks.append((mean, "dot", "#8C8C8C", f"others' mean {pct(mean)}"))
    if chance is not None:
        marks.append((float(chance), "dash", "#BBBBBB", f"chance {pct(chance)}"))
    top = dots_top + 0.3
    for x, dash, colour, text in marks:
        row = next(rows)
        top = row + 0.25
        fig.add_shape(
            type="line",
            x0=x,
            x1=x,
            y0=lines_from,
            y1=row,
            xref="x",
            yref="y",
            line={"dash": dash, "color": colour, "width": 1.5},
        )
        fig.add_annotation(
            x=x,
            y=row,
            text=text,
            showarrow=False,
            xanchor=_edge_anchor(x),
            yanchor="bottom",
            font={"color": "#555555"},
            bgcolor="rgba(255,255,255,0.9)",
        )
    if len(me):
        x = float(me["value"].iloc[0])
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[me_y],
                mode="markers+text",
                name=f"sub-{subject}",
                marker={
                    "symbol": "diamond",
                    "size": 16,
                    "color": "#D55E00",
                    "line": {"width": 1, "color": "#000000"},
                },
                text=[f"sub-{subject} {pct(x)}"],
                # beside the diamond, on the side with room for the label
                textposition="middle right" if x <= 0.6 else "middle left",
                cliponaxis=False,
                hovertemplate=f"sub-{subject}: %{{x:.1%}}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="per person, held out", tickformat=".0%", range=[-0.04, 1.04])
    fig.update_yaxes(visible=False, range=[me_y - 0.2, top])
    fig.update_layout(legend={"orientation": "h", "y": -0.45})
    return layout(fig, f"{measure}<br><sup>{design}, split: {split}</sup>", 300)
