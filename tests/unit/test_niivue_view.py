"""The NiiVue viewer's pure parts: the volumes it is sent, where it opens, what a click means."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from emocore.reporting.anatomy import WorldImage
from emocore.ui import niivue_view as nv

SHAPE = (7, 8, 9)  # unequal sides, so axis mix-ups fail


def _image(rng, voxel: float = 12.0) -> WorldImage:
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = (-72.0, -100.0, -40.0)
    return WorldImage(rng.random(SHAPE).astype(np.float32), affine)


def _read(body: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(body))


@pytest.mark.parametrize("ijk", [(0, 0, 0), (6, 7, 8), (3, 2, 6), (1, 5, 4)])
def test_the_padded_underlay_has_the_point_at_its_centre_and_keeps_world_coordinates(
    rng, ijk
) -> None:
    image = _image(rng)
    point = tuple(float(image.axis_mm(a)[i]) for a, i in enumerate(ijk))
    out = nv.centred(image, point)
    # NiiVue opens at the grid's centre: (n - 1) / 2 in voxels, an integer (odd sides)
    assert all(n % 2 == 1 for n in out.shape)
    centre = tuple((n - 1) // 2 for n in out.shape)
    assert out.index(point) == centre
    np.testing.assert_allclose(out.snap(point), point)
    # every voxel of the image is where it was, in mm, with its value
    for probe in [(0, 0, 0), (6, 7, 8), (2, 5, 1)]:
        mm = [float(image.axis_mm(a)[i]) for a, i in enumerate(probe)]
        assert out.data[out.index(mm)] == image.data[probe]


def test_the_nifti_bytes_round_trip_and_do_not_change_between_calls(rng) -> None:
    image = _image(rng)
    body = nv.nifti_gz(image, cal=(0.2, 0.9))
    assert body == nv.nifti_gz(image, cal=(0.2, 0.9))  # no time stamp: no reload in NiiVue
    read = _read(body)
    np.testing.assert_allclose(np.asarray(read.dataobj), image.data)
    np.testing.assert_allclose(read.affine, image.affine)
    assert float(read.header["cal_min"]) == pytest.approx(0.2)
    assert float(read.header["cal_max"]) == pytest.approx(0.9)
    small = _read(nv.nifti_gz(image, as_uint8=True))
    assert small.get_data_dtype() == np.uint8
    values = np.asarray(small.dataobj)
    assert values.min() == 0 and values.max() == 255
    # the rescaling keeps the order of the values
    brightest = np.unravel_index(np.argmax(image.data), SHAPE)
    assert values[brightest] == 255


def test_an_overlay_hides_what_is_below_its_threshold_and_keeps_its_colour_limits(rng) -> None:
    image = _image(rng)
    overlay = nv.Overlay("saliency", image, vmax=0.8, style=nv.OverlayStyle(share=0.5))
    assert overlay.threshold == pytest.approx(0.4)
    out = nv.overlay_image(overlay)
    assert (out.data[image.data < 0.4] == 0).all()
    np.testing.assert_array_equal(out.data[image.data >= 0.4], image.data[image.data >= 0.4])
    assert nv.colour_limits(overlay) == (pytest.approx(0.4), 0.8)
    # a threshold at the top: the bottom stays below the top, or NiiVue ignores the range
    top = nv.Overlay("saliency", image, vmax=0.8, style=nv.OverlayStyle(share=1.0))
    low, high = nv.colour_limits(top)
    assert low < high == 0.8


def test_a_click_is_read_from_the_component_value_and_anything_else_is_not() -> None:
    click = {"type": "voxel_click", "voxel": [1, 2, 3], "mm": [-31.8, -8.3, 6], "value": 0.8}
    assert nv.click_mm(click) == (-31.8, -8.3, 6.0)
    for value in (
        None,
        "click",
        {"type": "voxel_click"},
        {"type": "other", "mm": [1, 2, 3]},
        {"type": "voxel_click", "mm": [1, 2]},
        {"type": "voxel_click", "mm": [1, "a", 3]},
        {"type": "voxel_click", "mm": [1, float("nan"), 3]},
    ):
        assert nv.click_mm(value) is None, value


def test_the_nearest_named_region_has_its_side_and_far_points_have_none() -> None:
    # Dosenbach 2010's vmPFC at (6, 64, 3): a point 3 mm away is in the right vmPFC
    name, distance = nv.nearest_region((6.0, 61.0, 3.0))
    assert name == "right vmPFC" and distance == pytest.approx(3.0)
    name, _ = nv.nearest_region((-29.0, 57.0, 10.0))
    assert name == "left aPFC"
    assert nv.nearest_region((0.0, 0.0, 300.0)) is None


def test_the_readout_gives_the_point_in_mm_and_each_map_value(rng) -> None:
    image = _image(rng)
    point = tuple(float(image.axis_mm(a)[i]) for a, i in enumerate((3, 2, 6)))
    overlay = nv.Overlay("saliency", image, vmax=1.0, style=nv.OverlayStyle(share=0.0))
    text = nv.readout(point, [overlay])
    assert f"x = {point[0]:g} mm, y = {point[1]:g} mm, z = {point[2]:g} mm" in text
    assert f"saliency {image.data[3, 2, 6]:.3g} (shown)" in text


def test_bad_settings_name_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="'colormap' must be one of .*'rainbow' was given"):
        nv.OverlayStyle(colormap="rainbow")
    with pytest.raises(ValueError, match="'opacity' must be between 0 and 1; 1.5 was given"):
        nv.OverlayStyle(opacity=1.5)
    with pytest.raises(ValueError, match="'view' must be one of"):
        nv.ViewSettings(view="4d")
