"""The Brain viewer's NiiVue viewer through app.py, with the component replaced by a stand-in
(AppTest runs no browser): a click it reports moves the sliders, the readout and the static
slices, and the sliders move where NiiVue opens."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from emocore.ui import niivue_view
from tests.app.test_pages import no_exception, open_page, texts


class FakeViewer:
    """Stands in for ``niivue_viewer``: records its arguments and, like a Streamlit widget, keeps
    returning the last value reported under the key the viewer had then (a viewer under a new key
    is a new widget: it has reported nothing)."""

    def __init__(self) -> None:
        self.value: dict | None = None
        self.key: str | None = None
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.value if kwargs.get("key") == self.key else None

    def report(self, value: dict) -> None:
        """What the browser would send after a click in the viewer drawn last."""
        self.key, self.value = self.calls[-1]["key"], value


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeViewer:
    viewer = FakeViewer()
    monkeypatch.setattr(niivue_view, "niivue_viewer", viewer)
    return viewer


def _slider(at: AppTest, label: str):
    return next(w for w in at.select_slider if w.label == label)


def _mm(option: str) -> float:
    return float(str(option).removesuffix(" mm"))


def _opened_at(call: dict) -> np.ndarray:
    """The point (mm) NiiVue opens on: the centre of the underlay it was sent."""
    image = nib.Nifti1Image.from_bytes(gzip.decompress(call["nifti_data"]))
    centre = [(n - 1) / 2 for n in image.shape]
    return (image.affine @ [*centre, 1.0])[:3]


def test_a_click_in_niivue_moves_the_sliders_the_readout_and_the_slices(
    demo_home: Path, emocore_env, fake: FakeViewer
) -> None:
    emocore_env(demo_home)
    at = open_page("brain-viewer")
    no_exception(at, "brain-viewer")
    assert fake.calls, "the Brain viewer did not draw NiiVue"
    first = fake.calls[-1]
    assert first["overlays"], "NiiVue got no saliency overlay"
    assert first["settings"]["radiological"] is False  # neurological until the user changes it
    xs, ys, zs = ([_mm(o) for o in _slider(at, f"{a} (mm)").options] for a in ("x", "y", "z"))
    before = tuple(_slider(at, f"{a} (mm)").value for a in ("x", "y", "z"))
    # something that is not a click moves nothing
    fake.report({"type": "something else"})
    at.run()
    no_exception(at, "brain-viewer")
    assert tuple(_slider(at, f"{a} (mm)").value for a in ("x", "y", "z")) == before
    np.testing.assert_allclose(_opened_at(fake.calls[-1]), before, atol=1.01)
    # a click 2 mm off the centre of the second voxel along x, third along y, second along z
    fake.report(
        {
            "type": "voxel_click",
            "voxel": [0, 0, 0],
            "mm": [xs[1] + 2.0, ys[2] - 2.0, zs[1] + 1.0],
            "value": 0.5,
            "filename": "underlay.nii.gz",
        }
    )
    at.run()
    no_exception(at, "brain-viewer")
    want = (xs[1], ys[2], zs[1])
    got = tuple(_slider(at, f"{a} (mm)").value for a in ("x", "y", "z"))
    assert got == want, f"the sliders are at {got}, not at the clicked voxel {want}"
    readout = texts(at, "markdown")
    assert f"x = {want[0]:g} mm, y = {want[1]:g} mm, z = {want[2]:g} mm" in readout
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert f"sagittal (x = {want[0]:g} mm)" in {a["text"] for a in spec["layout"]["annotations"]}
    # NiiVue was not sent back to where it was: it is already at the click
    np.testing.assert_allclose(_opened_at(fake.calls[-1]), _opened_at(first))

    # (that the sliders still move after a click is checked in the browser,
    # tests/e2e/test_niivue_browser.py: after a run that session_state moved a select_slider in,
    # AppTest sends it back as its first option, which a browser does not)


def test_the_sliders_move_niivue(demo_home: Path, emocore_env, fake: FakeViewer) -> None:
    emocore_env(demo_home)
    at = open_page("brain-viewer")
    no_exception(at, "brain-viewer")
    xs = [_mm(o) for o in _slider(at, "x (mm)").options]
    y, z = (_slider(at, f"{a} (mm)").value for a in ("y", "z"))
    target = xs[-1] if _slider(at, "x (mm)").value != xs[-1] else xs[0]
    _slider(at, "x (mm)").set_value(target).run()
    no_exception(at, "brain-viewer")
    assert _slider(at, "x (mm)").value == target
    # NiiVue opens at the sliders' point (on its finer underlay grid)
    np.testing.assert_allclose(_opened_at(fake.calls[-1]), (target, y, z), atol=1.01)
