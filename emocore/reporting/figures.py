"""Plotly figures of the dashboard and the reports: pure functions returning ``go.Figure``.

Every figure colours classes with :data:`emocore.constants.EMOTION_COLORS`, labels its colour
scales and, where it shows accuracy, names the split and the chance level in its title. No
streamlit here; the inputs are tables and arrays that emocore writes (see :mod:`emocore.workflows.study`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from emocore.constants import (
    CATEGORY_MAP,
    CLASSES,
    EMOTION_COLORS,
    EMOTIONS,
    NONE,
    movie_clock,
)
from emocore.errors import ConfigError, check_choice
from emocore.reporting.anatomy import AXES, ENDS, WorldImage, robust_max

__all__ = [
    "accuracy_heatmap",
    "agreement_histogram",
    "category_map_table",
    "balanced_curves_recorded",
    "category_bars",
    "CURVE_METRICS",
    "LEGEND_ORDER",
    "MOVIE_TIME_TITLE",
    "cooccurrence_heatmap",
    "confusion_figure",
    "embedding_scatter",
    "label_counts_figure",
    "label_timeline",
    "misclassification_pie",
    "model_comparison",
    "orthogonal_slices",
    "saliency_mips",
    "saliency_title",
    "single_case_dots",
    "subject_vs_cohort",
    "others_label",
    "others_recall",
    "none_predictions_figure",
    "timeline",
    "TIMELINE_LEGEND",
    "TIMELINE_ROWS",
    "training_curves",
]

_FONT = {"size": 12}
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


#: The order of classes in every legend: the app's emotion order, NONE last.
LEGEND_ORDER: tuple[str, ...] = (*EMOTIONS, NONE)


def _in_legend_order(keys) -> list:
    """``keys`` in :data:`LEGEND_ORDER`, anything else (sorted) between the emotions and NONE."""
    keys = list(keys)
    known = [k for k in EMOTIONS if k in keys]
    rest = sorted((k for k in keys if k not in EMOTIONS and k != NONE), key=str)
    return known + rest + ([NONE] if NONE in keys else [])


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.0f} %"


def _layout(fig: go.Figure, title: str, height: int = 400) -> go.Figure:
    fig.update_layout(
        title=title, height=height, font=_FONT, margin={"l": 60, "r": 20, "t": 60, "b": 40}
    )
    return fig


#: The x-axis title of movie time, whose tick labels :func:`_clock_ticks` writes.
MOVIE_TIME_TITLE = "movie time (m:ss, h:mm:ss)"
_CLOCK_STEPS_S = (10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600)


def _clock_ticks(lo: float, hi: float) -> dict:
    """Tick values in seconds labelled as clock time, a round step giving at most 7 ticks
    between ``lo`` and ``hi``."""
    span = max(float(hi) - float(lo), 1.0)
    step = next((s for s in _CLOCK_STEPS_S if span / s <= 6), 7200)
    first = np.ceil(float(lo) / step) * step
    values = np.arange(first, float(hi) + 1e-9, step)
    return {
        "tickmode": "array",
        "tickvals": values.tolist(),
        "ticktext": [movie_clock(v) for v in values],
        "title_text": MOVIE_TIME_TITLE,
    }


def _scene_lines(times: pd.Series, scenes: pd.Series) -> tuple[list, list]:
    """x, y of vertical lines (None-separated, one trace) at each scene change."""
    starts = times[scenes.ne(scenes.shift())].to_numpy()[1:]
    xs, ys = [], []
    for t in starts:
        xs += [t, t, None]
        ys += [0, 1, None]
    return xs, ys


# -- predictions ------------------------------------------------------------------------------
def _confidence(t: pd.DataFrame) -> np.ndarray:
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
    conf = _confidence(t)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06
    )
    for track, col in (("true", "true"), ("predicted", "pred")):
        for cls in _in_legend_order(set(t[col])):
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
    # NONE has a correct answer only for a model that has NONE among its classes
    no_answer = (t["true"] == CLASSES[0]).to_numpy() & (CLASSES[0] not in _classes_of(t))
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
    if "scene" in t:
        xs, ys = _scene_lines(t["movie_time"], t["scene"])
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
    # the rows' order fixed, not left to which trace comes first (TIMELINE_LEGEND names them)
    fig.update_yaxes(categoryorder="array", categoryarray=list(TIMELINE_ROWS), row=1, col=1)
    fig.update_yaxes(title_text="probability of<br>predicted class", range=[0, 1], row=2, col=1)
    # seconds on the axis (x_range and zooms stay in seconds), labelled as clock time
    if x_range is not None:
        pad = max(1.0, 0.01 * (hi - lo))
        fig.update_xaxes(range=[lo - pad, hi + pad])
        fig.update_xaxes(**_clock_ticks(lo, hi), row=2, col=1)
    elif len(t):
        fig.update_xaxes(**_clock_ticks(t["movie_time"].min(), t["movie_time"].max()), row=2, col=1)
    else:
        fig.update_xaxes(title_text=MOVIE_TIME_TITLE, row=2, col=1)
    return _layout(fig, title, 420)


def _classes_of(t: pd.DataFrame) -> list[str]:
    """The classes a prediction table's model knows (its ``prob_<CLASS>`` columns)."""
    return [str(c)[5:] for c in t.columns if str(c).startswith("prob_")]


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
    return _layout(fig, title, 300)


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
    text = [[_pct(v) for v in row] for row in z]
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
                    "text": f"decoded correctly<br>(held out)<br>white = chance {_pct(chance)}"
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
    return _layout(
        fig,
        f"{title} — split: {split}, chance {_pct(chance)}",
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
            text=[[_pct(v) for v in row] for row in share],
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
    return _layout(fig, f"{title} (row-normalised) — split: {split}, chance {_pct(chance)}", 420)


def _curve_groups(curves: pd.DataFrame) -> pd.DataFrame:
    parts = curves["fold"].astype(str).str.split("/", n=2, expand=True)
    out = curves.assign(design=parts[0], model=parts[1], part=parts[2])
    return out[out["part"] != "final"]


#: What :func:`training_curves` can draw, and the curve-table column prefix of each.
CURVE_METRICS = ("balanced_acc", "acc", "loss")
_CURVE_NAMES = {"balanced_acc": "balanced accuracy", "acc": "accuracy", "loss": "loss"}


def balanced_curves_recorded(curves: pd.DataFrame) -> bool:
    """Whether the run logged held-out balanced accuracy per epoch (runs recorded before the
    registry's ``val_balanced_acc`` column have none: draw plain accuracy for them)."""
    if "val_balanced_acc" not in curves or not len(curves):
        return False
    return bool(pd.to_numeric(curves["val_balanced_acc"], errors="coerce").notna().any())


def _epoch_ticks(epochs) -> dict:
    """Whole-number epoch ticks (never 0.5): every epoch up to 10, else a round step; a run
    of one or two epochs gets half an epoch of room on either side."""
    e = pd.to_numeric(pd.Series(epochs), errors="coerce").dropna()
    if not len(e):
        return {"tickformat": "d"}
    lo, hi = float(e.min()), float(e.max())
    span = hi - lo
    step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100) if span / s <= 10), 200)
    ticks: dict = {"tickmode": "linear", "tick0": 0, "dtick": step, "tickformat": "d"}
    if span < 2:
        ticks["range"] = [lo - 0.5, hi + 0.5]
    return ticks


def training_curves(
    curves: pd.DataFrame,
    *,
    metric: str = "acc",
    chance: float | None = None,
    chance_label: str = "chance",
    splits: Mapping[str, str] | None = None,
) -> go.Figure:
    """Per design: mean ± SD over models and folds of ``metric`` per epoch.

    ``balanced_acc`` is the held-out volumes' balanced accuracy (only held out: training logs
    none), whose chance is 1/K; ``acc`` is plain accuracy of train and held-out volumes, whose
    ``chance`` is the share of the most frequent emotion among the held-out volumes, not 1/K;
    say which in ``chance_label``. ``splits`` (design -> split name) names each design's split
    in the legend."""
    check_choice("metric", metric, CURVE_METRICS)
    fig = go.Figure()
    data = _curve_groups(curves) if len(curves) else curves.assign(design=[], model=[], part=[])
    palette = {"single-subject": "#0072B2", "cross-subject": "#D55E00", "loso": "#009E73"}
    # a symbol per design too, so designs whose curves coincide (one epoch) stay apart
    symbols = {"single-subject": "circle", "cross-subject": "square", "loso": "diamond"}
    extra_symbols = iter(("triangle-up", "cross", "x", "star", "hexagon"))
    sides = (
        (("val", "solid"),) if metric == "balanced_acc" else (("train", "dot"), ("val", "solid"))
    )
    for design, rows in data.groupby("design", sort=False):
        colour = palette.get(design, "#666666")
        symbol = symbols.get(str(design)) or next(extra_symbols, "circle")
        split = (splits or {}).get(str(design))
        label = f"{design} ({split})" if split else str(design)
        for side, dash in sides:
            column = f"{side}_{metric}"
            if column not in rows:
                continue
            values = rows.assign(**{column: pd.to_numeric(rows[column], errors="coerce")})
            stats = values.groupby("epoch")[column].agg(["mean", "std"]).reset_index()
            stats = stats[stats["mean"].notna()]
            stats["std"] = stats["std"].fillna(0.0)
            name = f"{label} · {'train' if side == 'train' else 'held out'}"
            band_x = list(stats["epoch"]) + list(stats["epoch"][::-1])
            band_y = list(stats["mean"] + stats["std"]) + list((stats["mean"] - stats["std"])[::-1])
            fig.add_trace(
                go.Scatter(
                    x=band_x,
                    y=band_y,
                    fill="toself",
                    line={"width": 0},
                    fillcolor=colour,
                    opacity=0.15,
                    hoverinfo="skip",
                    legendgroup=name,
                    showlegend=False,
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=stats["epoch"],
                    y=stats["mean"],
                    name=name,
                    legendgroup=name,
                    line={"color": colour, "dash": dash},
                    # open markers for train, filled for held out: apart without their lines
                    marker={
                        "symbol": f"{symbol}-open" if side == "train" else symbol,
                        "size": 8,
                        "color": colour,
                    },
                    mode="lines+markers",
                )
            )
    if chance is not None and metric != "loss":
        fig.add_hline(
            y=chance,
            line_dash="dash",
            line_color="#999999",
            annotation_text=f"{chance_label} {_pct(chance)}",
        )
    what = _CURVE_NAMES[metric]
    fig.update_xaxes(title_text="epoch", **_epoch_ticks(data["epoch"] if len(data) else []))
    fig.update_yaxes(title_text=f"held-out {what}" if metric == "balanced_acc" else what)
    if metric != "loss":
        fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, f"Training curves ({what}): mean ± SD over models and folds", 380)


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
    return _layout(fig, title, 380)


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
        text=f"chance<br>{_pct(chance)}",
        showarrow=False,
        align="left",
        font={"color": "#555555"},
    )
    fig.update_yaxes(title_text="decoded correctly (held out)", tickformat=".0%", range=[0, 1])
    fig.update_layout(legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"})
    _layout(fig, f"sub-{subject} vs {others}, per emotion", 360)
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
        marks.append((mean, "dot", "#8C8C8C", f"others' mean {_pct(mean)}"))
    if chance is not None:
        marks.append((float(chance), "dash", "#BBBBBB", f"chance {_pct(chance)}"))
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
                text=[f"sub-{subject} {_pct(x)}"],
                # beside the diamond, on the side with room for the label
                textposition="middle right" if x <= 0.6 else "middle left",
                cliponaxis=False,
                hovertemplate=f"sub-{subject}: %{{x:.1%}}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="per person, held out", tickformat=".0%", range=[-0.04, 1.04])
    fig.update_yaxes(visible=False, range=[me_y - 0.2, top])
    fig.update_layout(legend={"orientation": "h", "y": -0.45})
    return _layout(fig, f"{measure}<br><sup>{design}, split: {split}</sup>", 300)


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
    return _layout(fig, f"sub-{subject}: {emotion} volumes were predicted as", 340)


def embedding_scatter(
    emb: pd.DataFrame, *, color_by: str = "emotion", silhouette: float | None = None
) -> go.Figure:
    """PCA of the hidden layer, one point per volume, coloured by emotion or subject."""
    column = "label" if color_by == "emotion" else "subject"
    fig = go.Figure()
    groups = dict(list(emb.groupby(column, sort=True)))
    keys = _in_legend_order(groups) if column == "label" else list(groups)
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
    return _layout(fig, f"Hidden-layer PCA by {color_by} — silhouette by {color_by}: {sil}", 480)


# -- brains -----------------------------------------------------------------------------------
#: The saliency colours, dark red (the threshold) to pale yellow (the map's robust maximum): they
#: stand out on a grey underlay, and the lowest shown value is never white or black.
SALIENCY_SCALE: list[tuple[float, str]] = [
    (0.0, "#7f0000"),
    (0.35, "#d7301f"),
    (0.7, "#fc8d59"),
    (1.0, "#ffffb2"),
]
#: The three planes: name, the world axis cut across, the world axes across and up the slice.
_PLANES = (("axial", 2, 0, 1), ("coronal", 1, 0, 2), ("sagittal", 0, 1, 2))


def _mm(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _axis_title(axis: int, *, sides: bool = True) -> str:
    """'L ← x (mm) → R': the world axis, its unit and the side each end points to."""
    name = AXES[axis]
    low, high = ENDS[name]
    return f"{low} ← {name} (mm) → {high}" if sides else f"{name} (mm)"


def _display_range(image: WorldImage) -> tuple[float, float]:
    """Grey levels of an underlay: 0..robust max, or symmetric when it has negative values (a
    z-scored volume)."""
    top = robust_max(image.data)
    return (-top, top) if float(np.nanmin(image.data)) < 0 else (0.0, top)


def orthogonal_slices(
    underlay: WorldImage,
    *,
    point_mm: Sequence[float],
    overlay: WorldImage | None = None,
    threshold: float = 0.0,
    vmax: float | None = None,
    opacity: float = 0.7,
    title: str = "",
    underlay_label: str = "MNI152 template",
    overlay_label: str = "saliency",
) -> go.Figure:
    """Axial, coronal and sagittal slices through ``point_mm`` (world mm), in the neurological
    convention (the subject's left on the left), each axis titled in mm with the side it points to
    and L/R, A/P, S/I at the slice edges; the overlay's values of at least ``threshold`` drawn on
    the underlay.

    The overlay's colour bar runs from 0 to ``vmax`` (default: the overlay's :func:`robust_max`):
    give it once per map, so it neither changes nor vanishes from slice to slice. The underlay
    and the overlay may lie on different grids (a 2 mm template under a 7.2 mm map): both are
    drawn in mm.
    """
    if overlay is not None and vmax is None:
        vmax = robust_max(overlay.data)
    point = underlay.snap(point_mm) if overlay is None else overlay.snap(point_mm)
    widths = [float(np.ptp(underlay.axis_mm(h)) + underlay.voxel_mm[h]) for _, _, h, _ in _PLANES]
    # the crosshair as the sliders give it; the plane drawn is the nearest one of the grid
    titles = [
        f"{name} ({AXES[cut]} = {_mm(float(point_mm[cut]))} mm)" for name, cut, _, _ in _PLANES
    ]
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=titles,
        horizontal_spacing=0.12,
        column_widths=[w / sum(widths) for w in widths],
    )
    lo, hi = _display_range(underlay)
    for col, (_, cut, h, v) in enumerate(_PLANES, start=1):
        xs, ys = underlay.axis_mm(h), underlay.axis_mm(v)
        fig.add_trace(
            go.Heatmap(
                z=underlay.plane(cut, point),
                x=xs,
                y=ys,
                colorscale="Gray",
                zmin=lo,
                zmax=hi,
                showscale=False,
                name=underlay_label,
                hovertemplate=f"{AXES[h]} %{{x:.0f}} mm, {AXES[v]} %{{y:.0f}} mm<br>"
                f"{underlay_label}: %{{z:.2f}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        if overlay is not None:
            over = overlay.plane(cut, point).astype(float)
            over = np.where((over >= threshold) & (over > 0), over, np.nan)
            fig.add_trace(
                go.Heatmap(
                    z=over,
                    x=overlay.axis_mm(h),
                    y=overlay.axis_mm(v),
                    coloraxis="coloraxis",
                    opacity=opacity,
                    name=overlay_label,
                    hoverongaps=False,
                    hovertemplate=f"{AXES[h]} %{{x:.0f}} mm, {AXES[v]} %{{y:.0f}} mm<br>"
                    f"{overlay_label}: %{{z:.3g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        x0, x1 = xs[0] - underlay.voxel_mm[h] / 2, xs[-1] + underlay.voxel_mm[h] / 2
        y0, y1 = ys[0] - underlay.voxel_mm[v] / 2, ys[-1] + underlay.voxel_mm[v] / 2
        fig.add_trace(
            go.Scatter(
                x=[point[h], point[h], None, x0, x1],
                y=[y0, y1, None, point[v], point[v]],
                mode="lines",
                line={"color": "#00D000", "width": 1},
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        ref = "" if col == 1 else str(col)
        _mark_sides(
            fig,
            ref,
            h,
            v,
            box=(x0, x1, y0, y1),
            font={"color": "#FFFFFF", "size": 13},
            bgcolor="rgba(0,0,0,0.45)",
        )
        fig.update_xaxes(
            title_text=_axis_title(h),
            range=[x0, x1],
            constrain="domain",
            showgrid=False,
            zeroline=False,
            row=1,
            col=col,
        )
        # a thin slab (the demo's 58 mm of z) has no room for the sides in its vertical title;
        # they stay marked by the letters at the slice's edges
        fig.update_yaxes(
            title_text=_axis_title(v, sides=y1 - y0 >= 120),
            range=[y0, y1],
            scaleanchor=f"x{ref}",
            constrain="domain",
            showgrid=False,
            zeroline=False,
            row=1,
            col=col,
        )
    if overlay is not None:
        # one colour axis for the three slices, fixed per map; plotly drops a colour bar whose
        # traces are all blank (nothing above the threshold in any slice), so an invisible
        # marker holds it
        fig.add_trace(
            go.Scatter(
                x=[point[0]],
                y=[point[1]],
                mode="markers",
                hoverinfo="skip",
                showlegend=False,
                marker={"color": [0.0], "coloraxis": "coloraxis", "opacity": 0},
            ),
            row=1,
            col=1,
        )
        fig.update_layout(
            coloraxis={
                "colorscale": SALIENCY_SCALE,
                "cmin": 0.0,
                "cmax": float(vmax or 1.0),
                "colorbar": {
                    "title": {"text": f"{overlay_label}<br><sup>shown ≥ {threshold:.3g}</sup>"},
                    "len": 0.8,
                    "thickness": 14,
                },
            }
        )
    fig.update_layout(plot_bgcolor="#000000")
    return _layout(fig, title, 400)


def saliency_title(emotion: str) -> str:
    """What the brain viewer draws: a model's *mean* map for ``emotion`` (the mean |attribution|
    over volumes of that emotion, as the study saved it), not a map of the volume on screen."""
    return f"{emotion}: the model's mean saliency map, not this volume's"


def _white_to(colour: str) -> list[list]:
    return [[0.0, "#FFFFFF"], [1.0, colour]]


#: The glass-brain panels: the plane and where it is seen from (the order of _PLANES).
_MIP_VIEWS = (
    ("axial", "from above (max over z)"),
    ("coronal", "from behind (max over y)"),
    ("sagittal", "from the right (max over x)"),
)


def _mark_sides(
    fig: go.Figure,
    ref: str,
    h: int,
    v: int,
    *,
    box: tuple[float, float, float, float] | None = None,
    **style: Any,
) -> None:
    """The side each edge of a panel points to (L/R, P/A, I/S) for its horizontal axis ``h`` and
    vertical axis ``v``, inside its edges: at ``box`` (x0, x1, y0, y1, in data units) or, without
    one, at the edges of the panel's domain. ``ref`` names the subplot's axes ("" for the first);
    ``style`` goes to every annotation (font, background)."""
    (left, right), (bottom, top) = ENDS[AXES[h]], ENDS[AXES[v]]
    x0, x1, y0, y1 = box if box is not None else (0.0, 1.0, 0.0, 1.0)
    domain = "" if box is not None else " domain"
    for text, x, y, xa, ya in (
        (left, x0, (y0 + y1) / 2, "left", "middle"),
        (right, x1, (y0 + y1) / 2, "right", "middle"),
        (top, (x0 + x1) / 2, y1, "center", "top"),
        (bottom, (x0 + x1) / 2, y0, "center", "bottom"),
    ):
        fig.add_annotation(
            x=x,
            y=y,
            xref=f"x{ref}{domain}",
            yref=f"y{ref}{domain}",
            text=f"<b>{text}</b>",
            showarrow=False,
            xanchor=xa,
            yanchor=ya,
            **style,
        )


def saliency_mips(
    maps: Mapping[str, np.ndarray],
    *,
    title: str = "Mean saliency per emotion (maximum-intensity projections)",
) -> go.Figure:
    """One row per emotion: the max over z (seen from above), y (from behind) and x (from the
    right) of its mean map, each panel with its sides marked (L/R, A/P, S/I; the person's left on
    the left, as on the slices).

    All emotions share one colour scale, 0 (white) to the largest value of any map, so rows
    compare: a paler row is a weaker map. Each row keeps its emotion's colour and has its own
    colour bar (same range in every row)."""
    emotions = list(maps)
    fig = make_subplots(
        rows=len(emotions),
        cols=3,
        horizontal_spacing=0.03,
        vertical_spacing=0.03,
        column_titles=[f"{name}: {view}" for name, view in _MIP_VIEWS],
        row_titles=emotions,
    )
    arrays = {e: np.asarray(maps[e], dtype=float) for e in emotions}
    peaks = [float(np.nanmax(m)) for m in arrays.values() if m.size and np.isfinite(m).any()]
    top = max(peaks, default=0.0) or 1.0
    for r, emotion in enumerate(emotions, start=1):
        m = arrays[emotion]
        low, high = fig.get_subplot(r, 3).yaxis.domain
        for c, axis in enumerate((2, 1, 0), start=1):
            fig.add_trace(
                go.Heatmap(
                    z=m.max(axis=axis).T,
                    colorscale=_white_to(EMOTION_COLORS.get(emotion, "#000000")),
                    zmin=0,
                    zmax=top,
                    showscale=c == 3,
                    colorbar={
                        "x": 1.05,  # right of the row titles
                        "y": (low + high) / 2,
                        "len": high - low,
                        "thickness": 12,
                        "tickformat": ".2g",
                        "title": {"text": "saliency" if r == 1 else ""},
                    },
                    hovertemplate=f"{emotion}: %{{z:.3g}}<extra></extra>",
                ),
                row=r,
                col=c,
            )
            subplot = (r - 1) * 3 + c
            _, _, h, v = _PLANES[c - 1]
            _mark_sides(
                fig,
                "" if subplot == 1 else str(subplot),
                h,
                v,
                font={"color": "#444444", "size": 11},
            )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    _layout(
        fig,
        title + f"<br><sup>one colour scale for all emotions: white = 0 to {top:.3g} "
        "(the largest mean saliency of any emotion); the person's left on the left</sup>",
        150 * len(emotions) + 100,
    )
    fig.update_layout(margin={"r": 110, "t": 80})
    return fig


# -- annotations ------------------------------------------------------------------------------
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
    return _layout(fig, "Raw categories (colour: the class each maps to)", 380)


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
    return _layout(fig, "Co-occurrence of categories between observers (2-s steps)", 600)


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
        xs, ys = _scene_lines(labels["movie_time"], labels["scene"])
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
        fig.update_xaxes(**_clock_ticks(labels["movie_time"].min(), labels["movie_time"].max()))
    else:
        fig.update_xaxes(title_text=MOVIE_TIME_TITLE)
    fig.update_yaxes(title_text="observers agreeing (%)", tickformat=".0%", range=[0, 1.05])
    return _layout(fig, title, 360)


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
    return _layout(fig, "Agreement per volume", 320)


def label_counts_figure(counts: pd.DataFrame) -> go.Figure:
    """Grouped bars: volumes per class (columns) for each option (index, e.g. 'poster, lag 4 s')."""
    fig = go.Figure()
    for cls in _in_legend_order(c for c in CLASSES if c in counts.columns):
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
    return _layout(fig, "Labelled volumes per class, by recipe and hemodynamic lag", 360)


def category_map_table() -> pd.DataFrame:
    """The 22 -> 5 map as a table (category, class), for display."""
    return pd.DataFrame(
        sorted(CATEGORY_MAP.items(), key=lambda kv: (kv[1], kv[0])), columns=["category", "class"]
    )
