"""The styling every figure shares: the legend's class order, percentages, the title, font and
margins, movie time as clock time and scene changes.

Shared by the figure modules of this package and by :mod:`emocore.reporting.report_figures`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from emocore.constants import EMOTIONS, NONE, movie_clock

__all__ = [
    "LEGEND_ORDER",
    "MOVIE_TIME_TITLE",
    "clock_ticks",
    "in_legend_order",
    "layout",
    "pct",
    "scene_lines",
]


_FONT = {"size": 12}

#: The order of classes in every legend: the app's emotion order, NONE last.
LEGEND_ORDER: tuple[str, ...] = (*EMOTIONS, NONE)


def in_legend_order(keys) -> list:
    """``keys`` in :data:`LEGEND_ORDER`, anything else (sorted) between the emotions and NONE."""
    keys = list(keys)
    known = [k for k in EMOTIONS if k in keys]
    rest = sorted((k for k in keys if k not in EMOTIONS and k != NONE), key=str)
    return known + rest + ([NONE] if NONE in keys else [])


def pct(x: float | None) -> str:
    """A share as a whole percentage ("42 %"), "n/a" for None or a value that is not finite."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.0f} %"


def layout(fig: go.Figure, title: str, height: int = 400) -> go.Figure:
    """``fig`` with its title, height and the font and margins every figure shares."""
    fig.update_layout(
        title=title, height=height, font=_FONT, margin={"l": 60, "r": 20, "t": 60, "b": 40}
    )
    return fig


#: The x-axis title of movie time, whose tick labels :func:`clock_ticks` writes.
MOVIE_TIME_TITLE = "movie time (m:ss, h:mm:ss)"
_CLOCK_STEPS_S = (10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600)


def clock_ticks(lo: float, hi: float) -> dict:
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


def scene_lines(times: pd.Series, scenes: pd.Series) -> tuple[list, list]:
    """x, y of vertical lines (None-separated, one trace) at each scene change."""
    starts = times[scenes.ne(scenes.shift())].to_numpy()[1:]
    xs, ys = [], []
    for t in starts:
        xs += [t, t, None]
        ys += [0, 1, None]
    return xs, ys
