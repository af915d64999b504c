"""The report's charts as static SVG images, so the report runs no script at all.

The dashboard draws with plotly, whose charts are drawn by JavaScript in the page. A report that
needs a script to show its charts cannot forbid scripts, and the issue's threat is exactly a
script smuggled into the report through a value from the data (a subject label, a sentence). So
the report's two charts are drawn here with matplotlib (already installed with nilearn's
plotting) into SVG, embedded as ``<img src="data:image/svg+xml;base64,...">``: an image never runs
a script, even an SVG one, and its text never reaches the page's HTML. The report can then
forbid every script (Content-Security-Policy ``default-src 'none'``, see :mod:`emocore.reporting.report`)
and still print its charts.

The figures say what the dashboard's say (:func:`emocore.reporting.figures.subject_vs_cohort`,
:func:`emocore.reporting.figures.timeline`) with the same colours, the same "others (n)" comparison and
the same clock-time axis; dense marks are rasterised inside the SVG to keep the file small,
axes and text stay vector for print. No pyplot: no global state, no GUI backend.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from emocore.constants import CLASSES, EMOTION_COLORS
from emocore.reporting.figures import TIMELINE_ROWS, others_label, others_recall
from emocore.reporting.figures.style import clock_ticks, in_legend_order, pct
from emocore.reporting.figures.timeline import classes_of, confidence

__all__ = ["subject_vs_others_svg", "svg_data_uri", "timeline_svg"]

_WRONG = "#D55E00"
_RC: dict[Any, Any] = {  # typed loosely: matplotlib types its keys as Literals
    "svg.fonttype": "path",  # text as outlines: the same on every machine, no font lookup
    "svg.hashsalt": "emocore-report",  # reproducible ids
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.usetex": False,
}


def _plain(text: object) -> str:
    """A label as literal text: matplotlib would read ``$...$`` in a label as maths."""
    return str(text).replace("$", r"\$")


def _svg(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None}, dpi=150)
    return out.getvalue()


def svg_data_uri(svg: bytes) -> str:
    """``data:image/svg+xml;base64,...`` of an SVG, for an ``<img src>``."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def subject_vs_others_svg(
    subject_row: Mapping,
    cohort: pd.DataFrame,
    classes: Sequence[str],
    *,
    subject: str,
    chance: float,
) -> bytes:
    """Per-emotion recall of one person beside the others' mean ± SD ("others (n)", the person
    left out: :func:`emocore.reporting.figures.others_recall`), chance dashed and named right of the bars."""
    classes = [str(c) for c in classes]
    mean, sd, n = others_recall(cohort, classes, subject=subject)
    mine = np.array([float(subject_row[f"accuracy_{c}"]) for c in classes])
    x = np.arange(len(classes))
    with rc_context(_RC):
        fig = Figure(figsize=(7.2, 2.9), layout="constrained")
        ax = fig.add_subplot()
        ax.bar(
            x - 0.2,
            mean,
            0.4,
            yerr=sd,
            color="#BBBBBB",
            ecolor="#555555",
            capsize=3,
            label=_plain(f"{others_label(n)}: mean ± SD"),
        )
        ax.bar(x + 0.2, mine, 0.4, color="#33415C", label=_plain(f"sub-{subject}"))
        ax.axhline(chance, color="#555555", linestyle="--", linewidth=1)
        ax.annotate(
            f"chance\n{pct(chance)}",
            xy=(1, chance),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            color="#555555",
        )
        ax.set_xticks(x, classes)
        ax.set_ylim(0, 1)
        ax.set_yticks(np.linspace(0, 1, 6), [f"{v:.0f} %" for v in np.linspace(0, 100, 6)])
        ax.set_ylabel("recall (held out)")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, frameon=False)
        return _svg(fig)


def timeline_svg(table: pd.DataFrame) -> bytes:
    """True and predicted class of every volume over movie time (upper panel, predicted on top),
    the probability of each prediction (lower panel: correct, misclassified, NONE), scene
    changes as faint lines; movie time as clock time."""
    t = table.sort_values("movie_time")
    time = t["movie_time"].to_numpy(dtype=float)
    conf = confidence(t)
    with rc_context(_RC):
        fig = Figure(figsize=(7.2, 3.4), layout="constrained")
        top, low = fig.subplots(2, 1, sharex=True, height_ratios=[0.62, 0.38])
        shown: list[str] = []
        for row, col in enumerate(("true", "pred")):  # TIMELINE_ROWS, bottom to top
            for cls in in_legend_order(set(t[col])):
                keep = (t[col] == cls).to_numpy()
                top.scatter(
                    time[keep],
                    np.full(int(keep.sum()), row),
                    marker="|",
                    s=160,
                    linewidths=1.2,
                    color=EMOTION_COLORS.get(cls, "#999999"),
                    rasterized=True,
                )
                if cls not in shown:
                    shown.append(cls)
        top.set_yticks(range(len(TIMELINE_ROWS)), list(TIMELINE_ROWS))
        top.set_ylim(-0.6, len(TIMELINE_ROWS) - 0.4)
        top.spines["left"].set_visible(False)
        top.tick_params(axis="y", length=0)
        no_answer = (t["true"] == CLASSES[0]).to_numpy() & (CLASSES[0] not in classes_of(t))
        wrong = (t["true"] != t["pred"]).to_numpy()
        marks = (
            ("correct", ~no_answer & ~wrong, "#333333"),
            ("misclassified", ~no_answer & wrong, _WRONG),
            ("NONE volume (no correct answer)", no_answer, EMOTION_COLORS[CLASSES[0]]),
        )
        for _, keep, colour in marks:
            low.scatter(time[keep], conf[keep], s=4, color=colour, linewidths=0, rasterized=True)
        low.set_ylim(0, 1.02)
        low.set_ylabel("probability of\npredicted class")
        if "scene" in t and len(t):
            changes = time[t["scene"].ne(t["scene"].shift()).to_numpy()][1:]
            for ax in (top, low):
                ax.vlines(
                    changes,
                    0,
                    1,
                    transform=ax.get_xaxis_transform(),
                    color="#000000",
                    alpha=0.12,
                    linewidth=0.6,
                    rasterized=True,
                )
        if len(t):
            ticks = clock_ticks(float(time.min()), float(time.max()))
            low.set_xticks(ticks["tickvals"], ticks["ticktext"])
            low.set_xlabel(ticks["title_text"])
        handles = [
            Patch(
                color=EMOTION_COLORS.get(c, "#999999"),
                label=f"{c} (no emotion labelled)" if c == CLASSES[0] else c,
            )
            for c in shown
        ] + [
            Line2D([], [], marker="o", linestyle="", markersize=4, color=colour, label=name)
            for name, keep, colour in marks
            if keep.any() or name != marks[2][0]
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=5, frameon=False)
        return _svg(fig)
