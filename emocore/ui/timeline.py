"""The Subject page's timeline (zoom to a run or a scene, with a legend in words) and the
result of running a stored model on every volume of a person (NONE included)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from emocore.errors import EmocoreError
from emocore.reporting import figures
from emocore.stats.summaries import WHOLE_MOVIE, every_volume_summary, timeline_windows
from emocore.ui import loaders
from emocore.ui.settings import Settings
from emocore.ui.widgets import chance_caption, pct

__all__ = ["every_volume_block", "movie_windows", "timeline_view"]


def movie_windows(s: Settings, table: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Zoom windows from the cache's label table (every volume: whole runs, every scene); from
    ``table`` alone when there is no readable cache."""
    try:
        volumes = loaders.cache(s).labels
    except EmocoreError:
        volumes = table
    return timeline_windows(volumes)


def timeline_view(
    table: pd.DataFrame, windows: dict[str, tuple[float, float]], *, title: str, key: str
) -> None:
    """A zoom choice ("whole movie", "run 1".., scenes), the timeline and what its marks mean."""
    window = st.selectbox(
        "Zoom the timeline to",
        list(windows) or [WHOLE_MOVIE],
        key=key,
        help="Seven thousand seconds do not fit one strip: pick an fMRI run or a scene.",
    )
    span = windows.get(window) if window != WHOLE_MOVIE else None
    where = "" if span is None else f" · {window}, {span[0]:.0f}-{span[1]:.0f} s"
    st.plotly_chart(figures.timeline(table, title=title + where, x_range=span), key=f"{key}-fig")
    st.caption(figures.TIMELINE_LEGEND)


def every_volume_block(table: pd.DataFrame, *, classes: list[str], split: str) -> None:
    """Metrics on the labelled volumes, and what the model said about the NONE volumes."""
    summary = every_volume_summary(table, classes=classes)
    c1, c2, c3 = st.columns(3)
    c1.metric("Volumes run", f"{summary['n_volumes']:,}")
    c1.caption(
        f"{summary['n_labelled']:,} labelled with an emotion + {summary['n_none']:,} NONE "
        "(no emotion labelled)"
    )
    c2.metric("Balanced accuracy (labelled volumes)", pct(summary["balanced_accuracy"]))
    with c2:
        chance_caption(split, summary["chance"], what=f"1/{len(classes)} classes")
    c3.metric("Accuracy (labelled volumes)", pct(summary["accuracy"]))
    c3.caption("A NONE volume has no correct answer: the metrics leave the NONE volumes out.")
    if summary["n_none"]:
        st.plotly_chart(
            figures.none_predictions_figure(
                summary["none_predictions"],
                title=f"What the model called the {summary['n_none']:,} NONE volumes",
            )
        )
