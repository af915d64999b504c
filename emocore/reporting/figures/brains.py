"""Brains: three orthogonal slices through a point (an overlay on an underlay, in world mm) and
the glass brains (maximum-intensity projections) of the mean saliency maps, every panel with its
sides marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from emocore.constants import EMOTION_COLORS
from emocore.reporting.anatomy import AXES, ENDS, WorldImage, robust_max
from emocore.reporting.figures.style import layout

__all__ = ["SALIENCY_SCALE", "orthogonal_slices", "saliency_mips", "saliency_title"]


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


#: A slice's box in world mm, out to the outer edges of its first and last voxels: x0, x1, y0, y1.
_Box = tuple[float, float, float, float]


def _slice_panels(underlay: WorldImage, point_mm: Sequence[float]) -> go.Figure:
    """Three panels side by side, each as wide as its slice is in mm, titled with the plane and
    the crosshair's coordinate across it."""
    widths = [float(np.ptp(underlay.axis_mm(h)) + underlay.voxel_mm[h]) for _, _, h, _ in _PLANES]
    # the crosshair as the sliders give it; the plane drawn is the nearest one of the grid
    titles = [
        f"{name} ({AXES[cut]} = {_mm(float(point_mm[cut]))} mm)" for name, cut, _, _ in _PLANES
    ]
    return make_subplots(
        rows=1,
        cols=3,
        subplot_titles=titles,
        horizontal_spacing=0.12,
        column_widths=[w / sum(widths) for w in widths],
    )


def _slice_box(image: WorldImage, h: int, v: int) -> _Box:
    """The box a slice of ``image`` across world axes ``h`` and ``v`` fills, in mm."""
    xs, ys = image.axis_mm(h), image.axis_mm(v)
    x0, x1 = xs[0] - image.voxel_mm[h] / 2, xs[-1] + image.voxel_mm[h] / 2
    y0, y1 = ys[0] - image.voxel_mm[v] / 2, ys[-1] + image.voxel_mm[v] / 2
    return x0, x1, y0, y1


def _add_underlay(
    fig: go.Figure,
    col: int,
    underlay: WorldImage,
    plane: tuple[int, int, int],
    point: Sequence[float],
    *,
    grey: tuple[float, float],
    label: str,
) -> None:
    """The underlay's slice (``plane``: the axis cut across, the axes across and up) in grey."""
    cut, h, v = plane
    fig.add_trace(
        go.Heatmap(
            z=underlay.plane(cut, point),
            x=underlay.axis_mm(h),
            y=underlay.axis_mm(v),
            colorscale="Gray",
            zmin=grey[0],
            zmax=grey[1],
            showscale=False,
            name=label,
            hovertemplate=f"{AXES[h]} %{{x:.0f}} mm, {AXES[v]} %{{y:.0f}} mm<br>"
            f"{label}: %{{z:.2f}}<extra></extra>",
        ),
        row=1,
        col=col,
    )


def _add_overlay(
    fig: go.Figure,
    col: int,
    overlay: WorldImage,
    plane: tuple[int, int, int],
    point: Sequence[float],
    *,
    threshold: float,
    opacity: float,
    label: str,
) -> None:
    """The overlay's slice, only its positive values of at least ``threshold``, on the shared
    colour axis."""
    cut, h, v = plane
    over = overlay.plane(cut, point).astype(float)
    over = np.where((over >= threshold) & (over > 0), over, np.nan)
    fig.add_trace(
        go.Heatmap(
            z=over,
            x=overlay.axis_mm(h),
            y=overlay.axis_mm(v),
            coloraxis="coloraxis",
            opacity=opacity,
            name=label,
            hoverongaps=False,
            hovertemplate=f"{AXES[h]} %{{x:.0f}} mm, {AXES[v]} %{{y:.0f}} mm<br>"
            f"{label}: %{{z:.3g}}<extra></extra>",
        ),
        row=1,
        col=col,
    )


def _add_crosshair(
    fig: go.Figure, col: int, point: Sequence[float], h: int, v: int, box: _Box
) -> None:
    """Green lines through ``point`` across the whole slice."""
    x0, x1, y0, y1 = box
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


def _frame_slice(fig: go.Figure, col: int, h: int, v: int, box: _Box) -> None:
    """The slice's sides marked at its edges, its axes titled in mm, fitted to ``box`` and
    drawn to scale (a mm across as long as a mm up)."""
    x0, x1, y0, y1 = box
    ref = "" if col == 1 else str(col)
    _mark_sides(
        fig,
        ref,
        h,
        v,
        box=box,
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


def _overlay_colour_bar(
    fig: go.Figure, point: Sequence[float], *, vmax: float | None, threshold: float, label: str
) -> None:
    """One colour axis for the overlay on the three slices, 0 to ``vmax``."""
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
                "title": {"text": f"{label}<br><sup>shown ≥ {threshold:.3g}</sup>"},
                "len": 0.8,
                "thickness": 14,
            },
        }
    )


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
    fig = _slice_panels(underlay, point_mm)
    grey = _display_range(underlay)
    for col, (_, cut, h, v) in enumerate(_PLANES, start=1):
        _add_underlay(fig, col, underlay, (cut, h, v), point, grey=grey, label=underlay_label)
        if overlay is not None:
            _add_overlay(
                fig,
                col,
                overlay,
                (cut, h, v),
                point,
                threshold=threshold,
                opacity=opacity,
                label=overlay_label,
            )
        box = _slice_box(underlay, h, v)
        _add_crosshair(fig, col, point, h, v, box)
        _frame_slice(fig, col, h, v, box)
    if overlay is not None:
        _overlay_colour_bar(fig, point, vmax=vmax, threshold=threshold, label=overlay_label)
    fig.update_layout(plot_bgcolor="#000000")
    return layout(fig, title, 400)


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
    layout(
        fig,
        title + f"<br><sup>one colour scale for all emotions: white = 0 to {top:.3g} "
        "(the largest mean saliency of any emotion); the person's left on the left</sup>",
        150 * len(emotions) + 100,
    )
    fig.update_layout(margin={"r": 110, "t": 80})
    return fig
