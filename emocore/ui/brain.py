"""The brain viewer's widgets: a volume picker and the saliency viewer, each an ``st.fragment``.

One crosshair state: the x/y/z sliders (mm, on the data grid) are session_state keys, and the
interactive viewer, its readout and the three static slices are drawn from them, so they move
together. Moving a slider reruns the viewer fragment only, moving the volume reruns the volume
section only, not the page. Every choice is a keyed widget, so picking an emotion survives moving
the volume.

Interactive viewer: NiiVue, through the ``niivue-streamlit`` component (a dependency; its wheel
ships the built frontend, so it needs no network), in :mod:`emocore.ui.niivue_view`. It goes both
ways: a click in NiiVue moves the sliders (and so the static slices and the readout), and the
sliders move NiiVue. The static slices stay: they are the figures of the report and its PDF.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from emocore.constants import movie_clock
from emocore.data.cache import VolumeCache
from emocore.interpret.saliency_checks import check_sentences, linear_pattern_sentence
from emocore.reporting import figures
from emocore.reporting.anatomy import AXES, WorldImage, robust_max
from emocore.ui import loaders, niivue_view
from emocore.ui.widgets import RunContext, guard

__all__ = ["VolumePick", "default_volume", "method_words", "saliency_viewer", "volume_section"]

KEY = "brain"  # prefix of this page's session_state keys
TEMPLATE = "MNI152 template"
MEAN_EPI = "mean EPI"  # shown as "mean EPI of sub-XX"
THIS_VOLUME = "this volume (BOLD, z-scored)"
_NO_MEAN_EPI = "re-run `emocore prepare` to store each person's mean EPI."
PREDICTED = "predicted"


@dataclass(frozen=True)
class VolumePick:
    run: int
    volume: int
    predicted: str | None  # the held-out prediction of the volume; None when it has no label


def _remembered(
    where: Any,
    label: str,
    options: list[str],
    key: str,
    fmt: Callable[[str], str] = str,
    disabled: bool = False,
    default: str | None = None,
) -> str:
    """A selectbox whose choice is kept under ``key`` even while it is not among the options
    (so 'predicted' comes back on the next labelled volume); until the user chooses, it opens on
    ``default`` (when among the options). The widget's own key is seeded from ``key`` on every
    run (see :func:`emocore.ui.widgets._pick` for why)."""
    widget = f"{key}__widget"
    stored = st.session_state.get(key)
    if stored in options:
        st.session_state[widget] = stored
    else:
        st.session_state[widget] = default if default in options else options[0]

    def keep() -> None:
        st.session_state[key] = st.session_state[widget]

    return where.selectbox(
        label, options, key=widget, format_func=fmt, on_change=keep, disabled=disabled
    )


def default_volume(held: pd.DataFrame, n_volumes: int, *, emotion: str | None = None) -> int:
    """The first volume of the run with an emotion label (a held-out prediction), else 0; with
    ``emotion``, the first volume of that emotion the model got wrong, else of that emotion,
    when the run has one."""

    def first(rows: pd.DataFrame) -> int | None:
        return next((v for v in sorted(int(v) for v in rows["volume"]) if 0 <= v < n_volumes), None)

    choices = [held]
    if emotion is not None and len(held):
        mine = held[held["true"] == emotion]
        choices = [mine[mine["pred"] != emotion], mine, held]
    for rows in choices:
        found = first(rows) if len(rows) else None
        if found is not None:
            return found
    return 0


def _opening_run(mine: pd.DataFrame, runs: list[int], emotion: str | None) -> int:
    """The first run holding volumes of ``emotion`` (the verdict's), else the first run."""
    if emotion is not None and len(mine):
        held = set(mine.loc[mine["true"] == emotion, "run"].astype(int))
        return next((r for r in runs if r in held), runs[0])
    return runs[0]


@st.fragment
def volume_section(
    ctx: RunContext,
    cache: VolumeCache,
    *,
    subject: str,
    design: str,
    name: str,
    held: pd.DataFrame,
    emotion: str | None = None,
) -> None:
    """Run and volume pickers, what the model said about the volume, then the saliency viewer.

    With ``emotion`` (the person's verdict's) the page opens on it: the first run with volumes
    of it, its first such volume the model got wrong, and its saliency map. Otherwise the volume
    starts at the run's first labelled volume. The pickers are keyed per person and run.
    """
    spans = {span.run: span.n_volumes for span in cache.runs(subject)}
    mine = held[held["subject"] == subject]
    runs = list(spans)
    c1, c2 = st.columns([1, 3])
    run = c1.selectbox(
        "fMRI run",
        runs,
        index=runs.index(_opening_run(mine, runs, emotion)),
        key=f"{KEY}_run_{subject}",
    )
    in_run = mine[mine["run"] == run]
    first = default_volume(in_run, spans[run], emotion=emotion)
    why = (
        f"the run's first {emotion} volume the model got wrong (the verdict's emotion)"
        if emotion is not None and first in set(in_run.loc[in_run["true"] == emotion, "volume"])
        else "the run's first volume with an emotion label"
    )
    volume = c2.slider(
        "Volume",
        0,
        spans[run] - 1,
        first,
        key=f"{KEY}_volume_{subject}_{run}",
        help=f"Starts at volume {first}, {why}.",
    )
    row = in_run[in_run["volume"] == volume]
    predicted = None
    if len(row):
        r = row.iloc[0]
        prob = r["prob_" + r["pred"]]
        st.markdown(
            f"Movie time **{movie_clock(r['movie_time'])}**, scene {r['scene']} "
            f"({r['scene_location']}) · true **{r['true']}** · predicted **{r['pred']}** "
            f"(the model's probability {100 * prob:.0f} %; held out, {r['split']})"
        )
        predicted = str(r["pred"])
    else:
        st.caption(
            f"Volume {volume} of run {run} has no emotion label (NONE or trimmed), so no "
            "held-out prediction."
        )
    saliency_viewer(
        ctx,
        cache,
        subject=subject,
        design=design,
        name=name,
        pick=VolumePick(run, volume, predicted),
        emotion=emotion,
    )


def _crosshair(grid: WorldImage, start: Sequence[float]) -> tuple[float, float, float]:
    """The x/y/z sliders, in mm on the data grid's voxel centres; a stored point off the grid
    (another cache) goes back to ``start``."""
    cols = st.columns(3)
    point = []
    for axis, col in enumerate(cols):
        options = [round(float(v), 1) for v in grid.axis_mm(axis)]
        key = f"{KEY}_{AXES[axis]}_mm"
        if st.session_state.get(key) not in options:
            st.session_state[key] = min(options, key=lambda v: abs(v - start[axis]))
        point.append(
            col.select_slider(
                f"{AXES[axis]} (mm)", options, key=key, format_func=lambda v: f"{v:g} mm"
            )
        )
    return tuple(point)  # type: ignore[return-value]


_SLIDERS = tuple(f"{KEY}_{axis}_mm" for axis in AXES)  # the crosshair's session_state keys
_NIIVUE = f"{KEY}_niivue"  # prefix of the interactive viewer's keys


def _go_to(point: Sequence[float]) -> None:
    for axis, v in enumerate(point):
        st.session_state[f"{KEY}_{AXES[axis]}_mm"] = round(float(v), 1)


@st.fragment
def saliency_viewer(
    ctx: RunContext,
    cache: VolumeCache,
    *,
    subject: str,
    design: str,
    name: str,
    pick: VolumePick,
    emotion: str | None = None,
) -> None:
    """The saliency map of the chosen emotion (until the user chooses: ``emotion``, the
    verdict's, else the volume's prediction) on an anatomical underlay: NiiVue (with the linear
    decoder's pattern as a second overlay) and three static slices in mm, at one crosshair; the
    colour bar is fixed per map."""
    no_maps = not ctx.study.get("saliency")  # the map controls would do nothing
    chosen = _map_controls(
        cache, ctx.classes, subject=subject, pick=pick, emotion=emotion, no_maps=no_maps
    )
    emotion, share, opacity = chosen.emotion, chosen.share, chosen.opacity
    settings, colormap, pattern_style = _viewer_controls(no_maps)
    with guard():
        raw = loaders.saliency_map(ctx.results, design, name, emotion)
        grid = loaders.world_image(
            raw if raw is not None else np.zeros(cache.grid_shape, np.float32), cache.affine
        )
        underlay, underlay_label = _underlay(cache, subject, pick, chosen)
    overlay = grid if raw is not None else None
    vmax = robust_max(grid.data)  # once per map: the same bar on every slice and threshold
    niivue_view.follow_click(_SLIDERS, key=_NIIVUE)  # a click in NiiVue, before the sliders
    point = _crosshair(grid, grid.peak_mm() if overlay is not None else grid.snap((0, 0, 0)))
    title = _announce_map(f"{design}/{name}", emotion, underlay_label, has_map=overlay is not None)
    st.button(
        "Crosshair to the map's peak",
        on_click=_go_to,
        args=(grid.peak_mm(),),
        disabled=overlay is None,
        key=f"{KEY}_peak",
    )
    threshold = share * vmax
    overlays = []
    if overlay is not None:
        style = niivue_view.OverlayStyle(colormap=colormap, share=share, opacity=opacity)
        overlays = _niivue_overlays(
            ctx,
            cache,
            design=design,
            name=name,
            emotion=emotion,
            saliency=(overlay, vmax, style),
            pattern_style=pattern_style,
        )
    niivue_view.viewer(
        underlay, overlays, point_mm=point, grid=grid, settings=settings, key=_NIIVUE
    )
    st.markdown("**Static slices** at the crosshair (the report's figures)")
    _slices(
        underlay,
        point,
        overlay,
        threshold=threshold,
        vmax=vmax,
        opacity=opacity,
        title=title,
        underlay_label=underlay_label,
        key=f"{KEY}_slices",
    )
    _slices_caption(chosen.underlay_name, vmax)
    entry = ctx.results.map_entry(design, name, emotion)
    if overlay is not None:
        _checks(entry.get("checks"))
        _linear_beside(
            ctx,
            cache,
            underlay,
            design=design,
            name=name,
            emotion=emotion,
            point=point,
            saliency=(overlay, threshold, vmax, opacity),
            entry=entry,
        )


@dataclass(frozen=True)
class _MapChoice:
    """What the row of controls above the viewer chose."""

    emotion: str
    underlay_name: str
    mean_epi: WorldImage | None  # the person's mean EPI, None when the cache holds none
    share: float  # the threshold, as a share of the map's robust maximum
    opacity: float


def _map_controls(
    cache: VolumeCache,
    classes: list[str],
    *,
    subject: str,
    pick: VolumePick,
    emotion: str | None,
    no_maps: bool,
) -> _MapChoice:
    """The row above the viewer: which emotion's map (or the volume's prediction), the
    underlay, the threshold and the opacity."""
    options = ([PREDICTED] if pick.predicted else []) + classes
    c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
    choice = _remembered(
        c1,
        "Saliency for",
        options,
        f"{KEY}_emotion",
        lambda o: f"predicted ({pick.predicted})" if o == PREDICTED else o,
        disabled=no_maps,
        default=emotion,
    )
    # PREDICTED is offered only when the volume has a prediction
    emotion = pick.predicted if choice == PREDICTED and pick.predicted else choice
    with guard():
        mean_epi = loaders.mean_epi_underlay(cache, subject)
    underlay_name = _underlay_choice(c2, subject, has_mean_epi=mean_epi is not None)
    share = c3.slider(
        "Threshold (share of the map's robust maximum)",
        0.0,
        1.0,
        0.3,
        0.05,
        key=f"{KEY}_threshold",
        disabled=no_maps,
    )
    opacity = c4.slider("Opacity", 0.0, 1.0, 0.8, 0.05, key=f"{KEY}_opacity", disabled=no_maps)
    return _MapChoice(emotion, underlay_name, mean_epi, share, opacity)


def _viewer_controls(
    no_maps: bool,
) -> tuple[niivue_view.ViewSettings, str, niivue_view.OverlayStyle]:
    """The interactive viewer's controls: its view, and in a popover the saliency map's
    colormap and the linear pattern's style."""
    views, colours = st.columns([5, 3])
    settings = niivue_view.view_controls(views, key=_NIIVUE)
    with colours.popover("Overlays of the interactive viewer", width="stretch"):
        colormap = st.selectbox(
            "Colormap (saliency)",
            niivue_view.COLORMAPS,
            key=f"{_NIIVUE}_saliency_colormap",
            disabled=no_maps,
            help="The saliency map's threshold and opacity are the sliders above.",
        )
        pattern_style = niivue_view.overlay_controls(
            st, "linear pattern", key=f"{_NIIVUE}_pattern", colormap="winter", disabled=no_maps
        )
    return settings, colormap, pattern_style


def _underlay(
    cache: VolumeCache, subject: str, pick: VolumePick, chosen: _MapChoice
) -> tuple[WorldImage, str]:
    """The chosen underlay and its name in the title: the template, the person's mean EPI, or
    the volume itself (also when the mean EPI was chosen but is gone)."""
    if chosen.underlay_name == TEMPLATE:
        return loaders.mni_underlay(cache.grid_shape, cache.affine), TEMPLATE
    if chosen.underlay_name == MEAN_EPI and chosen.mean_epi is not None:
        return chosen.mean_epi, f"mean EPI of sub-{subject}"
    volume = cache.volume(subject, pick.run, pick.volume).astype(np.float32)
    underlay = loaders.world_image(volume, cache.affine)
    return underlay, f"BOLD of sub-{subject} run {pick.run} volume {pick.volume} (z)"


def _announce_map(model: str, emotion: str, underlay_label: str, *, has_map: bool) -> str:
    """Say above the viewer which map it shows (or that there is none); the static slices'
    title."""
    if not has_map:
        st.info(f"No saliency map for {model} and {emotion} in this run; the underlay alone.")
        return f"{underlay_label} (no saliency map for {emotion})"
    st.subheader(figures.saliency_title(emotion))
    return f"Model {model}: mean over {emotion} volumes · underlay: {underlay_label}"


def _niivue_overlays(
    ctx: RunContext,
    cache: VolumeCache,
    *,
    design: str,
    name: str,
    emotion: str,
    saliency: tuple[WorldImage, float, niivue_view.OverlayStyle],
    pattern_style: niivue_view.OverlayStyle,
) -> list[niivue_view.Overlay]:
    """The interactive viewer's overlays: the saliency map (``saliency``: the map, its colour
    bar's top and its style) and, when the run has one, the linear decoder's |pattern|."""
    overlay, vmax, style = saliency
    overlays = [niivue_view.Overlay("saliency", overlay, vmax, style)]
    with guard():
        pattern = loaders.linear_pattern(ctx.results, design, name, emotion)
    if pattern is not None:
        magnitude = loaders.world_image(np.abs(pattern).astype(np.float32), cache.affine)
        pmax = robust_max(magnitude.data)
        overlays.append(niivue_view.Overlay("linear pattern", magnitude, pmax, pattern_style))
    return overlays


def _slices_caption(underlay_name: str, vmax: float) -> None:
    """What the static slices show: their convention, the underlay's provenance, the colour
    bar's range."""
    st.caption(
        "Slices in world coordinates (mm), the subject's left on the left (neurological "
        "convention). "
        + (
            "The MNI152 template is nilearn's, resampled over the cache's field of view; it is "
            "the anatomy for data in MNI space (the demo cohort, fMRIPrep's MNI outputs), only "
            "an orientation aid for data in a scanner's space. "
            if underlay_name == TEMPLATE
            else "The mean EPI is the person's own brain as the scanner saw it: the mean of "
            "their runs before cleaning, on the cache's grid (EPI contrast, not a T1's). "
            if underlay_name == MEAN_EPI
            else ""
        )
        + f"Colour bar: 0 to the map's robust maximum ({vmax:.3g}, its 99.5th percentile), "
        "fixed for this map."
    )


def _underlay_choice(where: Any, subject: str, *, has_mean_epi: bool) -> str:
    """The Underlay radio: the MNI152 template (the default), the person's mean EPI when the
    cache holds it, and the volume itself. A stored choice the options lack (the mean EPI of a
    person whose cache has none) goes back to the template."""
    options = [TEMPLATE, *([MEAN_EPI] if has_mean_epi else []), THIS_VOLUME]
    key = f"{KEY}_underlay"
    if st.session_state.get(key) not in options:
        st.session_state[key] = TEMPLATE
    missing = (
        "" if has_mean_epi else f" This cache holds no mean EPI of sub-{subject}: {_NO_MEAN_EPI}"
    )
    choice = where.radio(
        "Underlay",
        options,
        key=key,
        horizontal=True,
        format_func=lambda o: f"mean EPI of sub-{subject}" if o == MEAN_EPI else o,
        help="The MNI152 template (nilearn's), the person's mean EPI (the mean of their runs "
        "before cleaning, stored by `emocore prepare`) or the z-scored volume itself." + missing,
    )
    if not has_mean_epi:
        where.caption(f"No mean EPI of sub-{subject} in this cache: {_NO_MEAN_EPI}")
    return str(choice)


#: How the brain viewer names each attribution method (emocore.interpret.saliency.METHODS).
_METHOD_WORDS = {
    "smoothgrad": "SmoothGrad (the model's gradient, averaged over noisy copies)",
    "grad-cam": "Grad-CAM (the last convolution block's gradient-weighted features)",
    "integrated-gradients": "integrated gradients (gradient times input, from an all-zero volume)",
    "gradient": "the model's gradient",
}
_MARK = {True: "✅ passed", False: "⚠️ not passed", None: "ℹ️ no verdict"}


def method_words(method: str | None) -> str:
    """The attribution method in words; runs that did not record it made integrated gradients
    (the maps before SmoothGrad became the default)."""
    return _METHOD_WORDS.get(method or "integrated-gradients", str(method))


def _checks(checks: dict | None) -> None:
    """The map's sanity checks (see emocore.interpret.saliency_checks): one sentence per check, marked
    passed / not passed, with its numbers in a details line below it."""
    if not checks:
        st.caption("This run predates saliency sanity checks: re-run the study to get them.")
        return
    st.markdown(f"**Sanity checks of this map** ({method_words(checks.get('method'))})")
    found = check_sentences(checks)
    if not found:
        st.caption("No sanity checks were recorded for this map.")
    for check in found:
        st.markdown(f"{_MARK[check['passed']]} · **{check['check']}**: {check['sentence']}")
        st.caption(check["details"])


def _linear_beside(
    ctx: RunContext,
    cache: VolumeCache,
    underlay: WorldImage,
    *,
    design: str,
    name: str,
    emotion: str,
    point,
    saliency,
    entry: dict,
) -> None:
    """The CNN's map and the linear decoder's activation pattern, one above the other at one
    crosshair."""
    with guard():
        pattern = loaders.linear_pattern(ctx.results, design, name, emotion)
    if pattern is None:
        return
    st.subheader(f"CNN saliency beside the linear decoder's pattern ({emotion})")
    overlay, threshold, vmax, opacity = saliency
    magnitude = loaders.world_image(np.abs(pattern).astype(np.float32), cache.affine)
    pmax = robust_max(magnitude.data)
    # one above the other at full width: three slices each are unreadable in half a page
    _slices(
        underlay,
        point,
        overlay,
        threshold=threshold,
        vmax=vmax,
        opacity=opacity,
        title=f"CNN {design}/{name}: mean |{(entry.get('method') or 'attribution')}|",
        key=f"{KEY}_side_cnn",
    )
    _slices(
        underlay,
        point,
        magnitude,
        threshold=threshold / vmax * pmax if vmax else 0,
        vmax=pmax,
        opacity=opacity,
        title="Linear decoder: |activation pattern|",
        overlay_label="|pattern|",
        key=f"{KEY}_side_linear",
    )
    st.caption(linear_pattern_sentence(entry.get("linear_pattern") or {}, emotion))


def _slices(
    underlay: WorldImage,
    point,
    overlay: WorldImage | None,
    *,
    threshold: float,
    vmax: float,
    opacity: float,
    title: str,
    key: str,
    underlay_label: str = "",
    overlay_label: str = "saliency",
) -> None:
    """Three orthogonal slices through ``point`` with ``overlay`` on ``underlay``, in mm."""
    figure = figures.orthogonal_slices(
        underlay,
        point_mm=point,
        overlay=overlay,
        threshold=threshold,
        vmax=vmax,
        opacity=opacity,
        title=title,
        underlay_label=underlay_label,
        overlay_label=overlay_label,
    )
    st.plotly_chart(figure, key=key)
