"""The Emotion accuracy page's training curves: held-out balanced accuracy against chance 1/K
when the run logged it per epoch, else (runs recorded before) plain accuracy against the share
of the most frequent emotion; loss on request."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from emocore.reporting import figures

__all__ = ["training_curves_block"]


def training_curves_block(ctx: Any, metrics: dict[str, Any], curves: pd.DataFrame | None) -> None:
    """A radio (accuracy / loss), the curves figure and a caption saying what is drawn; a
    sentence instead when the run logged no curves (``curves`` None)."""
    if curves is None or curves.empty:
        st.caption(
            f"Run {ctx.run_id} logged no training curves (a run evaluated from stored "
            "predictions, or one that trained no model); the rest of this page is its held-out "
            "result."
        )
        return
    metric = st.radio("Curve", ["accuracy", "loss"], horizontal=True)
    splits = {d: ctx.headline(d).get("split", "?") for d in ctx.designs}
    balanced = figures.balanced_curves_recorded(curves)
    k = len(ctx.classes)
    if metric == "loss":
        figure = figures.training_curves(curves, metric="loss", splits=splits)
    elif balanced:
        figure = figures.training_curves(
            curves,
            metric="balanced_acc",
            chance=1 / k,
            chance_label=f"chance 1/{k} classes",
            splits=splits,
        )
    else:
        majority = max(
            metrics[d]["cnn"]["summary"]["chance"]["accuracy_majority"] for d in ctx.designs
        )
        figure = figures.training_curves(
            curves,
            metric="acc",
            chance=majority,
            chance_label="chance: always the most frequent emotion",
            splits=splits,
        )
    st.plotly_chart(figure)
    what = (
        f"Held-out balanced accuracy per epoch, against chance 1/{k} classes."
        if balanced
        else "Dotted = training volumes, solid = held-out volumes (per-fold, unbalanced "
        "accuracy, against the most frequent emotion's share: this run was recorded before "
        "balanced accuracy was logged per epoch)."
    )
    st.caption(
        "Single-subject: mean ± SD over people and folds; cross-subject: over folds; the legend "
        f"names each design's split. {what}"
    )
