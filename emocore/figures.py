"""Plotly figures of the dashboard and the reports: pure functions returning ``go.Figure``.

Every figure colours classes with :data:`emocore.constants.EMOTION_COLORS`, labels its colour
scales and, where it shows accuracy, names the split and the chance level in its title. No
streamlit here; the inputs are tables and arrays that emocore writes (see :mod:`emocore.experiment`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from emocore.constants import CATEGORY_MAP, CLASSES, EMOTION_COLORS

__all__ = [
    "accuracy_heatmap",
    "agreement_histogram",
    "category_map_table",
    "category_bars",
    "cooccurrence_heatmap",
    "confusion_figure",
    "embedding_scatter",
    "label_counts_figure",
    "label_timeline",
    "misclassification_pie",
    "model_comparison",
    "orthogonal_slices",
    "saliency_mips",
    "single_case_dots",
    "subject_vs_cohort",
    "timeline",
    "training_curves",
]

_FONT = {"size": 12}
_SUBJECT_COLORS = (
    "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666", "#e6ab02", "#d95f02",
)  # fmt: skip


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.0f} %"


def _layout(fig: go.Figure, title: str, height: int = 400) -> go.Figure:
    fig.update_layout(
        title=title, height=height, font=_FONT, margin={"l": 60, "r": 20, "t": 60, "b": 40}
    )
    return fig


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


def timeline(table: pd.DataFrame, *, title: str) -> go.Figure:
    """True vs predicted class over movie time, scene changes, confidence of the prediction."""
    t = table.sort_values("movie_time")
    conf = _confidence(t)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06
    )
    for track, col in (("true", "true"), ("predicted", "pred")):
        for cls in [c for c in CLASSES if c in set(t[col])]:
            part = t[t[col] == cls]
            fig.add_trace(
                go.Scattergl(
                    x=part["movie_time"], y=[track] * len(part), mode="markers",
                    marker={"color": EMOTION_COLORS[cls], "symbol": "line-ns-open", "size": 18,
                            "line": {"width": 2, "color": EMOTION_COLORS[cls]}},
                    name=cls, legendgroup=cls, showlegend=track == "true",
                    hovertemplate=f"{track}: {cls}<br>movie time %{{x:.0f}} s<extra></extra>",
                ),
                row=1, col=1,
            )  # fmt: skip
    wrong = t["true"] != t["pred"]
    fig.add_trace(
        go.Scattergl(x=t["movie_time"], y=conf, mode="markers", name="confidence",
                     marker={"size": 4, "color": np.where(wrong, "#D55E00", "#333333")},
                     hovertemplate="p(predicted) %{y:.2f}<br>%{x:.0f} s<extra></extra>"),
        row=2, col=1,
    )  # fmt: skip
    if "scene" in t:
        xs, ys = _scene_lines(t["movie_time"], t["scene"])
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", yaxis="y3", name="scene change",
                       line={"color": "rgba(0,0,0,0.15)", "width": 1}, hoverinfo="skip"),
        )  # fmt: skip
        fig.update_layout(yaxis3={"overlaying": "y", "range": [0, 1], "visible": False})
    fig.update_yaxes(title_text="probability of<br>predicted class", range=[0, 1], row=2, col=1)
    fig.update_xaxes(title_text="movie time (s)", row=2, col=1)
    return _layout(fig, title, 420)


def _diverging_at(middle: float) -> list[list[float | str]]:
    """Red below ``middle``, white at it, blue above, on a 0..1 scale. (Plotly ignores ``zmid``
    once ``zmin`` and ``zmax`` are set, which drew a 30 % recall red against a 20 % chance.)"""
    m = min(max(float(middle), 0.01), 0.99)
    return [[0.0, "#b2182b"], [m / 2, "#ef8a62"], [m, "#f7f7f7"],
            [m + (1 - m) / 2, "#67a9cf"], [1.0, "#2166ac"]]  # fmt: skip


def accuracy_heatmap(
    per_subject: pd.DataFrame, classes: Sequence[str], *, split: str, chance: float, title: str
) -> go.Figure:
    """Subjects x emotions recall; the colour scale is centred on ``chance``."""
    cols = [f"accuracy_{c}" for c in classes]
    z = per_subject[cols].to_numpy(dtype=float)
    subjects = [f"sub-{s}" for s in per_subject["subject"]]
    text = [[_pct(v) for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z, x=list(classes), y=subjects, text=text, texttemplate="%{text}",
            colorscale=_diverging_at(chance), zmin=0, zmax=1,
            colorbar={"title": {"text": "recall<br>(held out)"}, "tickformat": ".0%"},
            hovertemplate="%{y} · %{x}: %{z:.1%}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    return _layout(
        fig, f"{title} — split: {split}, chance {_pct(chance)}", 120 + 40 * len(subjects)
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
            z=share, x=list(classes), y=list(classes), customdata=counts,
            text=[[_pct(v) for v in row] for row in share], texttemplate="%{text}",
            colorscale="Blues", zmin=0, zmax=1,
            colorbar={"title": {"text": "share of<br>true class"}, "tickformat": ".0%"},
            hovertemplate="true %{y} → predicted %{x}<br>%{z:.1%} (%{customdata:.0f} volumes)<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(title_text="true", autorange="reversed")
    fig.update_xaxes(title_text="predicted")
    return _layout(fig, f"{title} (row-normalised) — split: {split}, chance {_pct(chance)}", 420)


def _curve_groups(curves: pd.DataFrame) -> pd.DataFrame:
    parts = curves["fold"].astype(str).str.split("/", n=2, expand=True)
    out = curves.assign(design=parts[0], model=parts[1], part=parts[2])
    return out[out["part"] != "final"]


def training_curves(
    curves: pd.DataFrame, *, metric: str = "acc", chance: float | None = None
) -> go.Figure:
    """Per design: mean ± SD over models and folds of train and held-out ``acc`` or ``loss``."""
    fig = go.Figure()
    data = _curve_groups(curves) if len(curves) else curves.assign(design=[], model=[], part=[])
    palette = {"single-subject": "#0072B2", "cross-subject": "#D55E00", "loso": "#009E73"}
    for design, rows in data.groupby("design", sort=False):
        colour = palette.get(design, "#666666")
        for side, dash in (("train", "dot"), ("val", "solid")):
            stats = rows.groupby("epoch")[f"{side}_{metric}"].agg(["mean", "std"]).reset_index()
            stats["std"] = stats["std"].fillna(0.0)
            name = f"{design} · {'train' if side == 'train' else 'held out'}"
            band_x = list(stats["epoch"]) + list(stats["epoch"][::-1])
            band_y = list(stats["mean"] + stats["std"]) + list((stats["mean"] - stats["std"])[::-1])
            fig.add_trace(go.Scatter(x=band_x, y=band_y, fill="toself", line={"width": 0},
                                     fillcolor=colour, opacity=0.15, hoverinfo="skip",
                                     legendgroup=name, showlegend=False))  # fmt: skip
            fig.add_trace(go.Scatter(x=stats["epoch"], y=stats["mean"], name=name, legendgroup=name,
                                     line={"color": colour, "dash": dash}, mode="lines+markers"))  # fmt: skip
    if chance is not None and metric == "acc":
        fig.add_hline(y=chance, line_dash="dash", line_color="#999999", annotation_text="chance")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="accuracy" if metric == "acc" else "loss")
    return _layout(
        fig,
        f"Training curves ({'accuracy' if metric == 'acc' else 'loss'}): mean ± SD over models and folds",
        380,
    )


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
        fig.add_trace(go.Bar(
            x=part["design"] + "<br>(" + part["split"] + ")", y=part["balanced_accuracy"], name=model,
            marker_color=colour,
            error_y={"type": "data", "symmetric": False, "array": ci[:, 1] - part["balanced_accuracy"],
                     "arrayminus": part["balanced_accuracy"] - ci[:, 0]},
            hovertemplate="%{x}: %{y:.1%}<extra>" + model + "</extra>",
        ))  # fmt: skip
    if len(frame):
        fig.add_trace(go.Scatter(
            x=frame["design"] + "<br>(" + frame["split"] + ")", y=frame["chance_balanced_accuracy"],
            mode="markers", marker={"symbol": "line-ew-open", "size": 30, "color": "black"},
            name="chance (permutation)",
        ))  # fmt: skip
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="balanced accuracy", tickformat=".0%", range=[0, 1])
    return _layout(fig, title, 380)


def subject_vs_cohort(
    subject_row: Mapping,
    cohort: pd.DataFrame,
    classes: Sequence[str],
    *,
    subject: str,
    chance: float,
) -> go.Figure:
    """Per-emotion recall of one person next to the cohort mean (± SD)."""
    cols = [f"accuracy_{c}" for c in classes]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=list(classes), y=cohort[cols].mean().to_numpy(), name="cohort mean",
                         marker_color="#BBBBBB",
                         error_y={"type": "data", "array": cohort[cols].std().fillna(0).to_numpy()}))  # fmt: skip
    # one colour for the person (per-emotion colours made the legend show the first emotion's)
    fig.add_trace(go.Bar(x=list(classes), y=[subject_row[c] for c in cols], name=f"sub-{subject}",
                         marker_color="#33415C"))  # fmt: skip
    fig.add_hline(
        y=chance, line_dash="dash", line_color="#555555", annotation_text=f"chance {_pct(chance)}"
    )
    fig.update_yaxes(title_text="recall (held out)", tickformat=".0%", range=[0, 1])
    return _layout(fig, f"sub-{subject} vs cohort, per emotion", 340)


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
    marked (diamond and label), the others' mean dashed; rates on an x axis in %.

    ``values`` has the columns ``subject`` and ``value`` (a rate from 0 to 1), one row per
    person; the row of ``subject`` is the person. Tied values are stacked so every dot shows.
    """
    v = values.dropna(subset=["value"]).assign(subject=lambda f: f["subject"].astype(str))
    me = v[v["subject"] == str(subject)]
    others = v[v["subject"] != str(subject)].sort_values("value", kind="stable")
    rank = others.groupby(others["value"].round(3)).cumcount().to_numpy()
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=others["value"], y=0.12 * rank, mode="markers", name=f"the {len(others)} others",
        marker={"color": "#8C8C8C", "size": 10, "line": {"width": 1, "color": "#FFFFFF"}},
        customdata=("sub-" + others["subject"]).to_numpy(),
        hovertemplate="%{customdata}: %{x:.1%}<extra></extra>",
    ))  # fmt: skip
    if len(others):
        fig.add_vline(x=float(others["value"].mean()), line_dash="dot", line_color="#8C8C8C",
                      annotation_text="others' mean", annotation_position="bottom right")  # fmt: skip
    if chance is not None:
        fig.add_vline(x=chance, line_dash="dash", line_color="#BBBBBB",
                      annotation_text=f"chance {_pct(chance)}", annotation_position="top left")  # fmt: skip
    if len(me):
        x = float(me["value"].iloc[0])
        fig.add_trace(go.Scatter(
            x=[x], y=[0.0], mode="markers+text", name=f"sub-{subject}",
            marker={"symbol": "diamond", "size": 16, "color": "#D55E00",
                    "line": {"width": 1, "color": "#000000"}},
            text=[f"sub-{subject} {_pct(x)}"], textposition="top center",
            hovertemplate=f"sub-{subject}: %{{x:.1%}}<extra></extra>",
        ))  # fmt: skip
    top = 0.12 * (int(rank.max()) if len(rank) else 0) + 0.5
    fig.update_xaxes(title_text="per person, held out", tickformat=".0%", range=[-0.04, 1.04])
    fig.update_yaxes(visible=False, range=[-0.3, top])
    fig.update_layout(legend={"orientation": "h", "y": -0.45})
    return _layout(fig, f"{measure}<br><sup>{design}, split: {split}</sup>", 280)


def misclassification_pie(counts: Mapping[str, int], *, subject: str, emotion: str) -> go.Figure:
    """What the model answered for one person's volumes of one emotion."""
    names = list(counts)
    fig = go.Figure(go.Pie(
        labels=names, values=[counts[n] for n in names], sort=False, hole=0.35,
        marker={"colors": [EMOTION_COLORS.get(n, "#666666") for n in names]},
        hovertemplate="%{label}: %{value} volumes (%{percent})<extra></extra>",
    ))  # fmt: skip
    return _layout(fig, f"sub-{subject}: {emotion} volumes were predicted as", 340)


def embedding_scatter(
    emb: pd.DataFrame, *, color_by: str = "emotion", silhouette: float | None = None
) -> go.Figure:
    """PCA of the hidden layer, one point per volume, coloured by emotion or subject."""
    column = "label" if color_by == "emotion" else "subject"
    fig = go.Figure()
    for i, (key, part) in enumerate(emb.groupby(column, sort=True)):
        colour = EMOTION_COLORS.get(key, "#666666") if column == "label" else _SUBJECT_COLORS[i % 8]
        fig.add_trace(go.Scattergl(
            x=part["pc1"], y=part["pc2"], mode="markers", name=str(key) if column == "label" else f"sub-{key}",
            marker={"color": colour, "size": 5, "opacity": 0.7},
            customdata=np.stack([part["subject"], part["run"], part["volume"]], axis=1),
            hovertemplate="sub-%{customdata[0]} run %{customdata[1]} vol %{customdata[2]}<extra></extra>",
        ))  # fmt: skip
    sil = "n/a" if silhouette is None else f"{silhouette:.2f}"
    fig.update_xaxes(title_text="PC 1")
    fig.update_yaxes(title_text="PC 2")
    return _layout(fig, f"Hidden-layer PCA by {color_by} — silhouette by {color_by}: {sil}", 480)


# -- brains -----------------------------------------------------------------------------------
def _planes(volume: np.ndarray, voxel: Sequence[int]) -> list[tuple[str, np.ndarray, str, str]]:
    i, j, k = voxel
    return [
        (f"axial (z = {k})", volume[:, :, k].T, "x", "y"),
        (f"coronal (y = {j})", volume[:, j, :].T, "x", "z"),
        (f"sagittal (x = {i})", volume[i, :, :].T, "y", "z"),
    ]


def orthogonal_slices(
    volume: np.ndarray,
    *,
    voxel: Sequence[int],
    overlay: np.ndarray | None = None,
    threshold: float = 0.0,
    opacity: float = 0.6,
    title: str = "",
    overlay_label: str = "saliency",
) -> go.Figure:
    """Axial, coronal and sagittal slices through ``voxel`` with an optional thresholded overlay."""
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (x, y, z), got {volume.ndim}-D {volume.shape}")
    voxel = [int(np.clip(v, 0, n - 1)) for v, n in zip(voxel, volume.shape, strict=True)]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[0] for p in _planes(volume, voxel)])
    cross = {"x": voxel[0], "y": voxel[1], "z": voxel[2]}
    vmax = float(np.nanmax(np.abs(volume))) or 1.0
    for col, (_, plane, h, v) in enumerate(_planes(volume, voxel), start=1):
        fig.add_trace(go.Heatmap(z=plane, colorscale="Gray", zmin=-vmax, zmax=vmax, showscale=col == 3,
                                 colorbar={"title": {"text": "BOLD (z)"}, "x": 1.0, "len": 0.8},
                                 hovertemplate=f"{h} %{{x}}, {v} %{{y}}: %{{z:.2f}}<extra></extra>"),
                      row=1, col=col)  # fmt: skip
        if overlay is not None:
            over = _planes(overlay, voxel)[col - 1][1].astype(float)
            over = np.where(over >= threshold, over, np.nan)
            fig.add_trace(go.Heatmap(z=over, colorscale="Hot", reversescale=True, opacity=opacity,
                                     zmin=threshold, zmax=float(np.nanmax(overlay)) or 1.0,
                                     showscale=col == 3, colorbar={"title": {"text": overlay_label}, "x": 1.1, "len": 0.8},
                                     hovertemplate=f"{overlay_label} %{{z:.3g}}<extra></extra>"),
                          row=1, col=col)  # fmt: skip
        ny, nx = plane.shape
        fig.add_trace(go.Scatter(x=[cross[h], cross[h], None, -0.5, nx - 0.5], y=[-0.5, ny - 0.5, None, cross[v], cross[v]],
                                 mode="lines", line={"color": "#00FF00", "width": 1}, hoverinfo="skip", showlegend=False),
                      row=1, col=col)  # fmt: skip
        fig.update_xaxes(title_text=h, row=1, col=col, constrain="domain")
        fig.update_yaxes(title_text=v, row=1, col=col, scaleanchor=f"x{col if col > 1 else ''}")
    return _layout(fig, title, 380)


def _white_to(colour: str) -> list[list]:
    return [[0.0, "#FFFFFF"], [1.0, colour]]


def saliency_mips(
    maps: Mapping[str, np.ndarray],
    *,
    title: str = "Mean saliency per emotion (maximum-intensity projections)",
) -> go.Figure:
    """One row per emotion: the max over z (top view), y (front) and x (side) of its mean map."""
    emotions = list(maps)
    fig = make_subplots(rows=len(emotions), cols=3, horizontal_spacing=0.03, vertical_spacing=0.03,
                        column_titles=["top (max over z)", "front (max over y)", "side (max over x)"],
                        row_titles=emotions)  # fmt: skip
    for r, emotion in enumerate(emotions, start=1):
        m = np.asarray(maps[emotion], dtype=float)
        top = float(np.nanmax(m)) or 1.0
        for c, axis in enumerate((2, 1, 0), start=1):
            fig.add_trace(go.Heatmap(z=m.max(axis=axis).T, colorscale=_white_to(EMOTION_COLORS.get(emotion, "#000000")),
                                     zmin=0, zmax=top, showscale=False,
                                     hovertemplate=f"{emotion}: %{{z:.3g}}<extra></extra>"), row=r, col=c)  # fmt: skip
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return _layout(fig, title + " — colour: saliency, white = 0", 150 * len(emotions) + 80)


# -- annotations ------------------------------------------------------------------------------
def category_bars(counts: pd.DataFrame) -> go.Figure:
    """Annotations per raw category (22), coloured by the class the category maps to."""
    c = counts.sort_values("count", ascending=False)
    fig = go.Figure(go.Bar(
        x=c.index, y=c["count"], marker_color=[EMOTION_COLORS[k] for k in c["class"]],
        customdata=np.stack([c["class"], c["observers"]], axis=1),
        hovertemplate="%{x} → %{customdata[0]}<br>%{y} annotations by %{customdata[1]} observers<extra></extra>",
    ))  # fmt: skip
    fig.update_yaxes(title_text="annotations")
    return _layout(fig, "Raw categories (colour: the class each maps to)", 380)


def cooccurrence_heatmap(matrix: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Heatmap(
        z=np.log10(matrix.to_numpy(dtype=float) + 1), x=matrix.columns, y=matrix.index,
        customdata=matrix.to_numpy(), colorscale="Viridis",
        colorbar={"title": {"text": "log10(steps + 1)"}},
        hovertemplate="%{y} & %{x}: %{customdata} 2-s steps<extra></extra>",
    ))  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Co-occurrence of categories between observers (2-s steps)", 560)


def label_timeline(labels: pd.DataFrame, *, title: str = "Labels over the movie") -> go.Figure:
    """One mark per volume at its movie time, coloured by label; agreement on the y axis."""
    fig = go.Figure()
    for cls in CLASSES:
        part = labels[labels["label"] == cls]
        if len(part):
            fig.add_trace(go.Scattergl(x=part["movie_time"], y=part["agreement"], mode="markers", name=cls,
                                       marker={"color": EMOTION_COLORS[cls], "size": 4},
                                       hovertemplate=f"{cls}<br>%{{x:.0f}} s, agreement %{{y:.2f}}<extra></extra>"))  # fmt: skip
    if "scene" in labels:
        xs, ys = _scene_lines(labels["movie_time"], labels["scene"])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="scene change", hoverinfo="skip",
                                 line={"color": "rgba(0,0,0,0.12)", "width": 1}))  # fmt: skip
    fig.update_xaxes(title_text="movie time (s)")
    fig.update_yaxes(title_text="observer agreement", range=[0, 1.05])
    return _layout(fig, title, 360)


def agreement_histogram(labels: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for cls in CLASSES:
        part = labels[labels["label"] == cls]
        if len(part):
            fig.add_trace(go.Histogram(x=part["agreement"], name=cls, marker_color=EMOTION_COLORS[cls],
                                       xbins={"start": 0, "end": 1.0001, "size": 0.0625}))  # fmt: skip
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="fraction of observers agreeing with the volume's label")
    fig.update_yaxes(title_text="volumes")
    return _layout(fig, "Agreement per volume", 320)


def label_counts_figure(counts: pd.DataFrame) -> go.Figure:
    """Grouped bars: volumes per class (columns) for each option (index, e.g. 'poster, lag 4 s')."""
    fig = go.Figure()
    for cls in [c for c in CLASSES if c in counts.columns]:
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


def interactive_viewer_html(
    volume: np.ndarray,
    affine: np.ndarray,
    overlay: np.ndarray | None = None,
    *,
    threshold: float = 0.0,
    opacity: float = 0.6,
    title: str = "",
) -> str:
    """nilearn's interactive slice viewer (self-contained HTML, works offline): the volume as
    background and the saliency map as overlay; click to move the linked crosshair."""
    import nibabel as nib
    from nilearn.plotting import view_img

    bg = nib.Nifti1Image(np.asarray(volume, dtype=np.float32), affine)
    stat = nib.Nifti1Image(
        np.asarray(overlay if overlay is not None else np.zeros_like(volume), dtype=np.float32),
        affine,
    )
    view = view_img(
        stat,
        bg_img=bg,
        threshold=threshold,
        opacity=opacity,
        black_bg=False,
        draw_cross=True,
        symmetric_cmap=False,
        cmap="hot",
        title=title or None,
        colorbar=overlay is not None,
    )
    return view.get_standalone()


def static_viewer_png(
    volume: np.ndarray,
    affine: np.ndarray,
    overlay: np.ndarray | None = None,
    *,
    threshold: float = 0.0,
) -> bytes:
    """nilearn's static orthogonal view as PNG bytes (the fallback when the interactive one fails)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib
    from nilearn.plotting import plot_stat_map

    bg = nib.Nifti1Image(np.asarray(volume, dtype=np.float32), affine)
    stat = nib.Nifti1Image(
        np.asarray(overlay if overlay is not None else np.zeros_like(volume), dtype=np.float32),
        affine,
    )
    fig = plt.figure(figsize=(8, 3))
    plot_stat_map(stat, bg_img=bg, threshold=threshold, figure=fig, black_bg=False, draw_cross=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
