"""World-coordinate images, the MNI152 underlay and the brain viewer's slices (mm axes, L/R)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from emocore.reporting import figures
from emocore.reporting.anatomy import WorldImage, mni_underlay, robust_max, to_world

SHAPE = (7, 8, 9)  # unequal sides, so axis mix-ups fail


def _affine(voxel: float = 12.0, origin=(-72.0, -100.0, -40.0)) -> np.ndarray:
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = origin
    return affine


def test_a_flipped_grid_is_reordered_to_ras_without_interpolation(rng) -> None:
    data = rng.normal(size=SHAPE).astype(np.float32)
    las = _affine()
    las[0, 0], las[0, 3] = -12.0, 72.0  # x runs right to left
    image = to_world(data, las)
    assert image.shape == SHAPE and image.voxel_mm == (12.0, 12.0, 12.0)
    np.testing.assert_array_equal(image.data, data[::-1])
    np.testing.assert_allclose(image.axis_mm(0), 72.0 - 12.0 * np.arange(7)[::-1])
    # the voxel that was (0, 2, 3) at x = +72 mm is still found at +72 mm
    assert image.index((72.0, -76.0, -4.0)) == (6, 2, 3)


def test_an_oblique_grid_is_resampled_onto_a_diagonal_one(rng) -> None:
    theta = np.deg2rad(20)
    oblique = _affine()
    oblique[:2, :2] = 12.0 * np.array(
        [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    )
    image = to_world(rng.random(SHAPE).astype(np.float32), oblique)
    linear = image.affine[:3, :3]
    np.testing.assert_allclose(linear, np.diag(np.diag(linear)))
    assert (np.diag(linear) > 0).all()


def test_world_image_refuses_a_non_ras_affine() -> None:
    flipped = _affine()
    flipped[1, 1] = -12.0
    with pytest.raises(ValueError, match="'affine' must be diagonal with positive voxel sizes"):
        WorldImage(np.zeros(SHAPE, np.float32), flipped)
    with pytest.raises(ValueError, match="'data' must be 3-D"):
        WorldImage(np.zeros((*SHAPE, 2), np.float32), _affine())


def test_planes_point_and_peak_are_in_mm() -> None:
    data = np.zeros(SHAPE, np.float32)
    data[5, 2, 7] = 3.0
    image = WorldImage(data, _affine())
    assert image.peak_mm() == (-12.0, -76.0, 44.0)
    assert image.snap((-10.0, -70.0, 100.0)) == (-12.0, -76.0, 56.0)  # clipped to the grid
    axial, coronal, sagittal = (image.plane(a, image.peak_mm()) for a in (2, 1, 0))
    assert axial.shape == (8, 7) and coronal.shape == (9, 7) and sagittal.shape == (9, 8)
    assert axial[2, 5] == coronal[7, 5] == sagittal[7, 2] == 3.0


def test_mni_underlay_covers_the_grid_in_finer_voxels() -> None:
    affine = _affine()
    underlay = mni_underlay(SHAPE, affine)
    assert underlay.voxel_mm == (2.0, 2.0, 2.0)
    for axis, n in enumerate(SHAPE):  # the data grid's field of view, voxel edges included
        low = affine[axis, 3] - 6.0
        assert underlay.axis_mm(axis)[0] == pytest.approx(low + 1.0)
        assert underlay.axis_mm(axis)[-1] >= low + 12.0 * n - 2.0
    assert 0.0 <= underlay.data.min() and underlay.data.max() <= 1.0
    assert (underlay.data > 0.5).mean() > 0.05  # anatomy, not an empty box


def test_robust_max_ignores_one_hot_voxel() -> None:
    values = np.full(1000, 0.2)
    values[0] = 50.0
    assert robust_max(values) == pytest.approx(0.2)
    assert robust_max(np.zeros(SHAPE)) == 1.0


@cache
def _underlay() -> WorldImage:
    return mni_underlay(SHAPE, _affine())


def _slices(point, threshold: float = 0.5):
    underlay = _underlay()
    data = np.zeros(SHAPE, np.float32)
    data[3, 4, 4] = 1.0
    fig = figures.orthogonal_slices(
        underlay, point_mm=point, threshold=threshold, vmax=1.0, overlay=WorldImage(data, _affine())
    )
    return fig


def test_slices_have_mm_axes_and_the_sides_marked() -> None:
    layout = _slices((-36.0, -52.0, 8.0)).layout
    across = [layout[f"xaxis{i}"].title.text for i in ("", "2", "3")]
    assert across == ["L ← x (mm) → R", "L ← x (mm) → R", "P ← y (mm) → A"]
    # up the slices: mm, the sides spelled out only where the slice is tall enough (96 mm is not)
    assert [layout[f"yaxis{i}"].title.text for i in ("", "2", "3")] == [
        "y (mm)",
        "z (mm)",
        "z (mm)",
    ]
    texts = [a.text for a in layout.annotations]
    assert texts[:3] == ["axial (z = 8 mm)", "coronal (y = -52 mm)", "sagittal (x = -36 mm)"]
    assert {"<b>L</b>", "<b>R</b>", "<b>A</b>", "<b>P</b>", "<b>S</b>", "<b>I</b>"} <= set(texts)


def test_the_colour_bar_is_fixed_per_map_and_kept_on_blank_slices() -> None:
    """The range is the map's, whatever the slice; with nothing above the threshold on any slice
    a trace still carries the colour axis (plotly drops a colour bar with no values)."""
    on_peak, far_away = _slices((-36.0, -52.0, 8.0)), _slices((36.0, 68.0, 56.0))
    for fig in (on_peak, far_away):
        assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)
    maps = [t for t in far_away.data if t.type == "heatmap" and t.coloraxis == "coloraxis"]
    assert len(maps) == 3 and all(np.isnan(np.asarray(t.z, float)).all() for t in maps)
    holders = [t for t in far_away.data if t.type == "scatter" and t.marker.coloraxis]
    assert len(holders) == 1 and list(holders[0].marker.color) == [0.0]
