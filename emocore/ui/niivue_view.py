"""The Brain viewer's interactive viewer: NiiVue (the ``niivue-streamlit`` component), with the
app's crosshair going both ways.

* **What it shows.** An underlay (any :class:`~emocore.reporting.anatomy.WorldImage`: the MNI152 template,
  the person's mean EPI or a volume) and overlays (the saliency map, the linear decoder's
  pattern), each with its colormap, threshold and opacity, in the multiplanar or 3-D view, in the
  neurological or radiological convention. NiiVue writes an L or R at the left edge of every
  slice; the caption above the viewer says which convention is on.
* **Offline.** The component's wheel ships NiiVue's built frontend; the volumes go to it as
  gzipped NIfTI bytes inside the page's own messages, so the browser asks nothing of any server
  but Streamlit's.
* **Click to sliders.** A click in NiiVue comes back as the clicked point in mm. :func:`viewer`
  snaps it to the data grid, keeps it as pending and reruns; :func:`follow_click`, called before
  the x/y/z sliders are drawn, moves the sliders there (a widget's state cannot change once it is
  drawn in a run). Everything drawn from the sliders (static slices, readout) follows.
* **Sliders to NiiVue.** The component takes no crosshair position: NiiVue opens with its
  crosshair at the centre of the underlay. So the underlay goes to it padded with zeros until the
  sliders' point is its centre, and under a key that names that centre, so moving a slider opens
  a fresh viewer there. After a click NiiVue is already at the point, so it is left as it is.
  (The component adds a second canvas instead of replacing the image when the underlay changes
  under one key; a new key per underlay avoids that.)

No computation here that the static figures need: maps, thresholds and colour limits come from
the caller (:mod:`emocore.ui.brain`), so NiiVue and the slices agree.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np
import streamlit as st
from niivue_component import niivue_viewer
from streamlit.errors import StreamlitAPIException

from emocore.reporting.anatomy import WorldImage

__all__ = [
    "COLORMAPS",
    "VIEWS",
    "Overlay",
    "OverlayStyle",
    "ViewSettings",
    "centred",
    "click_mm",
    "follow_click",
    "nearest_region",
    "nifti_gz",
    "overlay_controls",
    "readout",
    "view_controls",
    "viewer",
]

KEY = "brain_niivue"  # prefix of this viewer's session_state keys
#: The view picker's options -> niivue-streamlit's ``view_mode``.
VIEWS = {
    "multiplanar": "multiplanar",
    "axial": "axial",
    "coronal": "coronal",
    "sagittal": "sagittal",
    "3-D render": "3d",
}
#: NiiVue colormaps offered for an overlay (all ship with NiiVue; the first is the default).
COLORMAPS = ("warm", "hot", "redyell", "plasma", "viridis", "winter", "cool", "blue2cyan", "green")
NEUROLOGICAL = "neurological"
RADIOLOGICAL = "radiological"
#: Beyond this distance (mm) no named point counts as "nearest".
REGION_MAX_MM = 20.0
#: How often (ms) the component may send a click or drag back; each one reruns the viewer.
UPDATE_MS = 250


@dataclass(frozen=True)
class OverlayStyle:
    """How an overlay is drawn: ``share`` is its threshold as a share of the map's robust
    maximum (0 shows every non-zero voxel, 1 only the top 0.5 %)."""

    colormap: str = COLORMAPS[0]
    share: float = 0.3
    opacity: float = 0.8
    visible: bool = True

    def __post_init__(self) -> None:
        if self.colormap not in COLORMAPS:
            raise ValueError(f"'colormap' must be one of {COLORMAPS}; {self.colormap!r} was given")
        for name in ("share", "opacity"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"'{name}' must be between 0 and 1; {value!r} was given")


@dataclass(frozen=True)
class Overlay:
    """A non-negative map (a magnitude) to draw over the underlay. ``vmax`` is the top of its
    colour scale (its robust maximum, fixed per map, as on the static slices)."""

    label: str
    image: WorldImage
    vmax: float
    style: OverlayStyle = OverlayStyle()

    @property
    def threshold(self) -> float:
        return self.style.share * self.vmax

    def value_at(self, point_mm: Sequence[float]) -> float:
        """The map's value in the voxel nearest to ``point_mm``."""
        return float(self.image.data[self.image.index(point_mm)])


@dataclass(frozen=True)
class ViewSettings:
    view: str = "multiplanar"  # a key of VIEWS
    radiological: bool = False

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"'view' must be one of {list(VIEWS)}; {self.view!r} was given")


# -- pure helpers --------------------------------------------------------------------------------
def nifti_gz(
    image: WorldImage, *, cal: tuple[float, float] | None = None, as_uint8: bool = False
) -> bytes:
    """``image`` as gzipped NIfTI-1 bytes, the same bytes for the same image (no time stamp in
    the gzip header, so the component does not reload an unchanged volume).

    ``cal`` sets the header's display range (NiiVue's colour limits: values below the first are
    transparent in an overlay). ``as_uint8`` rescales the 0.5th..99.5th percentiles to 0..255,
    a quarter of the bytes, for an underlay whose values are never read back.
    """
    data = np.asarray(image.data, dtype=np.float32)
    if as_uint8:
        finite = data[np.isfinite(data)]
        low, high = (
            (float(v) for v in np.percentile(finite, [0.5, 99.5])) if finite.size else (0.0, 0.0)
        )
        scaled = (np.nan_to_num(data, nan=low) - low) / (high - low) if high > low else data * 0
        data = np.rint(np.clip(scaled, 0.0, 1.0) * 255)
        out = nib.Nifti1Image(data.astype(np.uint8), image.affine)
    else:
        out = nib.Nifti1Image(np.nan_to_num(data, nan=0.0), image.affine)
    out.header.set_xyzt_units("mm")
    if cal is not None:
        out.header["cal_min"], out.header["cal_max"] = cal
    return gzip.compress(out.to_bytes(), compresslevel=6, mtime=0)


def centred(image: WorldImage, point_mm: Sequence[float]) -> WorldImage:
    """``image`` padded with zeros so that the voxel nearest to ``point_mm`` is the centre of the
    grid (NiiVue opens with its crosshair there); the world coordinates do not move."""
    ijk = image.index(point_mm)
    pads = []
    for i, n in zip(ijk, image.shape, strict=True):
        before = max(0, n - 1 - 2 * i)  # the point in the lower half: pad below it
        after = max(0, 2 * i - (n - 1))  # in the upper half: pad above it
        pads.append((before, after))
    affine = image.affine.copy()
    for axis, (before, _) in enumerate(pads):
        affine[axis, 3] -= before * affine[axis, axis]
    return WorldImage(np.pad(image.data, pads), affine)


def overlay_image(overlay: Overlay) -> WorldImage:
    """The overlay's map with every voxel below its threshold set to 0 (not drawn)."""
    data = np.nan_to_num(np.asarray(overlay.image.data, dtype=np.float32), nan=0.0)
    return WorldImage(np.where(data >= overlay.threshold, data, 0.0), overlay.image.affine)


def colour_limits(overlay: Overlay) -> tuple[float, float]:
    """NiiVue's colour limits of the overlay: its threshold to its robust maximum (the header's
    range is used only while it lies within the data's, so the bottom stays below the top)."""
    top = float(overlay.vmax)
    return min(float(overlay.threshold), top * 0.999), top


def click_mm(value: Any) -> tuple[float, float, float] | None:
    """The point (mm) of a click the component reported (``{"type": "voxel_click", "mm": [x, y,
    z], ...}``); None for no click or anything else."""
    if not isinstance(value, Mapping) or value.get("type") != "voxel_click":
        return None
    mm = value.get("mm")
    if not isinstance(mm, Sequence) or len(mm) != 3:
        return None
    try:
        point = tuple(float(v) for v in mm)
    except (TypeError, ValueError):
        return None
    return point if all(math.isfinite(v) for v in point) else None  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _named_points() -> tuple[np.ndarray, tuple[str, ...]]:
    """Dosenbach et al. (2010)'s 160 named points in MNI space; nilearn ships them (no download)."""
    from nilearn.datasets import fetch_coords_dosenbach_2010  # here: nilearn takes 1.4 s to import

    atlas = fetch_coords_dosenbach_2010()
    xyz = np.asarray(atlas.rois[["x", "y", "z"]], dtype=float)
    names = tuple(str(label).rstrip("0123456789 ") for label in atlas.labels)
    return xyz, names


def nearest_region(
    point_mm: Sequence[float], *, max_mm: float = REGION_MAX_MM
) -> tuple[str, float] | None:
    """The name (with its side) of the named point of Dosenbach 2010 nearest to ``point_mm`` (MNI
    mm) and its distance, or None when none lies within ``max_mm``."""
    xyz, names = _named_points()
    distances = np.linalg.norm(xyz - np.asarray(point_mm, dtype=float), axis=1)
    i = int(np.argmin(distances))
    if distances[i] > max_mm:
        return None
    x = xyz[i, 0]
    side = "left " if x < -4 else "right " if x > 4 else "midline "
    return side + names[i], float(distances[i])


def readout(point_mm: Sequence[float], overlays: Sequence[Overlay]) -> str:
    """One line about the crosshair: its point in mm, each map's value there (and whether it
    passes the threshold) and the nearest named region."""
    x, y, z = (float(v) for v in point_mm)
    parts = [f"**Crosshair** x = {x:g} mm, y = {y:g} mm, z = {z:g} mm"]
    for overlay in overlays:
        value = overlay.value_at(point_mm)
        shown = "shown" if value >= overlay.threshold and value > 0 else "below the threshold"
        parts.append(f"{overlay.label} {value:.3g} ({shown})")
    region = nearest_region(point_mm)
    parts.append(
        f"nearest named region: {region[0]}, {region[1]:.0f} mm away (Dosenbach 2010, MNI)"
        if region
        else f"no named region within {REGION_MAX_MM:g} mm (Dosenbach 2010, MNI)"
    )
    return " · ".join(parts)


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(part)
    return h.hexdigest()


@st.cache_data(show_spinner=False, max_entries=8)
def _underlay_bytes(data: np.ndarray, affine: np.ndarray, anchor: tuple[float, ...]) -> bytes:
    return nifti_gz(centred(WorldImage(data, affine), anchor), as_uint8=True)


@st.cache_data(show_spinner=False, max_entries=16)
def _overlay_bytes(
    data: np.ndarray, affine: np.ndarray, vmax: float, share: float
) -> tuple[bytes, str]:
    overlay = Overlay("", WorldImage(data, affine), vmax, OverlayStyle(share=share))
    body = nifti_gz(overlay_image(overlay), cal=colour_limits(overlay))
    return body, _digest(body)


# -- streamlit -----------------------------------------------------------------------------------
def _rerun() -> None:
    """Rerun the fragment being rerun, or the page during a full run (where a fragment-scoped
    rerun is refused)."""
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:
        st.rerun()


def _same(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    return a is not None and b is not None and np.allclose(a, b, atol=0.05)


def follow_click(slider_keys: Sequence[str], *, key: str = KEY) -> bool:
    """Move the x/y/z sliders (their session_state keys) to the point of a NiiVue click that
    :func:`viewer` left pending; call it before the sliders are drawn. True when they moved."""
    pending = st.session_state.pop(f"{key}_pending", None)
    if pending is None:
        return False
    for slider, v in zip(slider_keys, pending, strict=True):
        st.session_state[slider] = round(float(v), 1)
    return True


def view_controls(where: Any = st, *, key: str = KEY) -> ViewSettings:
    """The view (multiplanar, one plane, 3-D render) and the left-right convention."""
    c1, c2 = where.columns(2)
    view = c1.selectbox("Interactive view", list(VIEWS), key=f"{key}_view")
    side = c2.radio(
        "Left-right convention",
        [NEUROLOGICAL, RADIOLOGICAL],
        key=f"{key}_convention",
        horizontal=True,
        format_func=lambda o: {
            NEUROLOGICAL: "neurological (left on the left)",
            RADIOLOGICAL: "radiological (left on the right)",
        }[o],
        help="Neurological: the person's left is on the screen's left, as on the static slices. "
        "Radiological: as if facing the person, their left on the screen's right, as scanners "
        "show it.",
    )
    return ViewSettings(view=str(view), radiological=side == RADIOLOGICAL)


def overlay_controls(
    where: Any,
    label: str,
    *,
    key: str,
    colormap: str = COLORMAPS[0],
    share: float = 0.3,
    opacity: float = 0.8,
    disabled: bool = False,
) -> OverlayStyle:
    """Show, colormap, threshold and opacity of one overlay, keyed under ``key``."""
    visible = where.checkbox(f"Show the {label}", True, key=f"{key}_show", disabled=disabled)
    colour = where.selectbox(
        f"Colormap ({label})",
        COLORMAPS,
        index=COLORMAPS.index(colormap),
        key=f"{key}_colormap",
        disabled=disabled or not visible,
    )
    threshold = where.slider(
        f"Threshold ({label}; share of its robust maximum)",
        0.0,
        1.0,
        share,
        0.05,
        key=f"{key}_threshold",
        disabled=disabled or not visible,
    )
    alpha = where.slider(
        f"Opacity ({label})",
        0.0,
        1.0,
        opacity,
        0.05,
        key=f"{key}_opacity",
        disabled=disabled or not visible,
    )
    return OverlayStyle(
        colormap=str(colour), share=float(threshold), opacity=float(alpha), visible=bool(visible)
    )


def orientation_caption(settings: ViewSettings) -> str:
    if settings.view == "3-D render":
        return (
            "3-D render: it opens on the person's **left** side (nose to the left); drag to turn "
            "it. It has no side letters: the crosshair's x below (negative = left) says the side."
        )
    if settings.radiological:
        return (
            "Radiological convention: the person's **left is on the screen's right**; NiiVue "
            "marks the left edge of each slice **R**."
        )
    return (
        "Neurological convention: the person's **left is on the screen's left**, as on the "
        "static slices; NiiVue marks the left edge of each slice **L**. The 3-D tile opens on "
        "the person's left side (nose to the left)."
    )


def viewer(
    underlay: WorldImage,
    overlays: Sequence[Overlay],
    *,
    point_mm: Sequence[float],
    grid: WorldImage,
    settings: ViewSettings,
    key: str = KEY,
    height: int = 620,
) -> None:
    """NiiVue at the sliders' point ``point_mm``, the orientation caption and the crosshair
    readout. A click moves the sliders (snapped to ``grid``, the data's) through
    :func:`follow_click` and a rerun."""
    point = tuple(float(v) for v in point_mm)
    underlay_id = _digest(underlay.data.tobytes(), underlay.affine.tobytes())
    # where the viewer opens: the sliders' point, unless NiiVue put them there itself
    anchor_key, from_click_key = f"{key}_anchor", f"{key}_from_click"
    stored = st.session_state.get(anchor_key)
    from_click = st.session_state.get(from_click_key)
    if (
        stored is not None
        and stored[0] == underlay_id
        and (_same(point, stored[1]) or _same(point, from_click))
    ):
        anchor = tuple(stored[1])
    else:
        anchor = point
        st.session_state[anchor_key] = (underlay_id, anchor)
        st.session_state.pop(from_click_key, None)
    body = _underlay_bytes(underlay.data, underlay.affine, tuple(round(v, 3) for v in anchor))
    layers = []
    for i, overlay in enumerate(o for o in overlays if o.style.visible):
        data, digest = _overlay_bytes(
            overlay.image.data, overlay.image.affine, float(overlay.vmax), overlay.style.share
        )
        layers.append(
            {
                "data": data,
                # the component re-adds an overlay when its name, colormap or opacity changes
                "name": f"{i}-{overlay.label.replace(' ', '_')}-{digest}.nii.gz",
                "colormap": overlay.style.colormap,
                "opacity": overlay.style.opacity,
            }
        )
    st.caption(orientation_caption(settings))
    component_key = f"{key}_{_digest(body)}"
    value = niivue_viewer(
        nifti_data=body,
        filename="underlay.nii.gz",
        overlays=layers,
        height=height,
        view_mode=VIEWS[settings.view],
        settings={"radiological": settings.radiological, "crosshair": True, "colorbar": False},
        update_interval_ms=UPDATE_MS,
        key=component_key,
    )
    clicked = click_mm(value)
    seen = (component_key, repr(value))
    if clicked is not None and st.session_state.get(f"{key}_seen") != seen:
        st.session_state[f"{key}_seen"] = seen
        target = grid.snap(clicked)
        if not _same(target, point):
            st.session_state[f"{key}_pending"] = target
            st.session_state[from_click_key] = target
            _rerun()
    st.markdown(readout(point, [o for o in overlays if o.style.visible]))
