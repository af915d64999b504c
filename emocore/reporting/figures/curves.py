"""Training curves: a metric per epoch, mean ± SD over models and folds, per design."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from emocore.errors import check_choice
from emocore.reporting.figures.style import layout, pct

__all__ = ["CURVE_METRICS", "balanced_curves_recorded", "training_curves"]


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
            annotation_text=f"{chance_label} {pct(chance)}",
        )
    what = _CURVE_NAMES[metric]
    fig.update_xaxes(title_text="epoch", **_epoch_ticks(data["epoch"] if len(data) else []))
    fig.update_yaxes(title_text=f"held-out {what}" if metric == "balanced_acc" else what)
    if metric != "loss":
        fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return layout(fig, f"Training curves ({what}): mean ± SD over models and folds", 380)
