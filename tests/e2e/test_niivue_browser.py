"""The Brain viewer's NiiVue viewer in a real browser, offline.

Debian's chromium draws WebGL through SwiftShader (``--use-angle=swiftshader
--enable-unsafe-swiftshader``; no GPU needed). On the tiny demo home (see
tests/e2e/test_dashboard_browser.py, whose server helper this reuses):

* NiiVue's canvas draws: a screenshot of it holds the template's greys and the map's colours,
  not one flat colour;
* a click at a known point of the canvas (axial view) moves the app's crosshair: the readout
  under the viewer and the x/y/z sliders go to the voxel under the click, in mm;
* every request the page makes goes to the Streamlit server on 127.0.0.1 (recorded with
  ``page.on("request")``): the viewer needs no network.

Screenshots go to tests/e2e/screenshots/niivue-*.png for a person to look at.
"""

from __future__ import annotations

import io
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_dashboard_browser import (
    CHROMIUM,
    RUN_TIMEOUT_MS,
    SHOTS,
    assert_no_exception,
    next_frames,
    serve,
    sync_api,
    wait_for_app_run,
)

pytestmark = pytest.mark.e2e

WEBGL_ARGS = [
    "--headless",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
NIIVUE = 'iframe[title="niivue_component.niivue_viewer"]'
READOUT = re.compile(r"Crosshair x = (-?[\d.]+) mm, y = (-?[\d.]+) mm, z = (-?[\d.]+) mm")
LOCAL_SCHEMES = ("data:", "blob:", "about:")


@pytest.fixture(scope="module")
def webgl_page(
    tiny_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[object, str, Path, list[str]]]:
    """A page of a browser with WebGL, the URL of a dashboard serving a copy of the tiny home,
    that home, and the list of every URL the page has asked for."""
    home = Path(shutil.copytree(tiny_home, tmp_path_factory.mktemp("niivue") / "home"))
    with serve(home, tmp_path_factory.mktemp("niivue-server")) as url:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=WEBGL_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(RUN_TIMEOUT_MS)
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                yield page, url, home, requests
            finally:
                browser.close()


def _readout(page) -> tuple[float, float, float]:
    text = page.locator('[data-testid="stMarkdown"]').filter(has_text="Crosshair").first
    found = READOUT.search(text.inner_text())
    assert found, f"no crosshair readout: {text.inner_text()!r}"
    return tuple(float(v) for v in found.groups())  # type: ignore[return-value]


def _readout_after(page, before: tuple[float, float, float], timeout_s: float = 60):
    """The crosshair readout once it differs from ``before`` (the click goes to the server and
    comes back as a rerun or two), or as it is after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            now = _readout(page)
        except AssertionError:  # between two runs
            now = before
        if now != before:
            return now
        page.wait_for_timeout(500)
    return _readout(page)


def _canvas_png(page, name: str) -> np.ndarray:
    from PIL import Image

    frame = page.locator(NIIVUE)
    frame.scroll_into_view_if_needed()
    canvas = page.frame_locator(NIIVUE).locator("canvas").first

    def shot() -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"))

    # NiiVue draws after the component has its volumes: wait until the canvas shows more than
    # one colour and two screenshots a few frames apart agree
    deadline = time.monotonic() + 30
    before = shot()
    while time.monotonic() < deadline:
        next_frames(page)
        now = shot()
        if np.array_equal(now, before) and len(np.unique(now.reshape(-1, 3), axis=0)) > 1:
            break
        before = now
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"niivue-{name}.png"))
    return before


def _choose(page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label).first
    box.scroll_into_view_if_needed()
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app_run(page)


def test_niivue_draws_answers_a_click_and_stays_on_the_local_server(webgl_page) -> None:
    from emocore.data.cache import VolumeCache
    from emocore.reporting.anatomy import WorldImage, mni_underlay
    from emocore.ui.niivue_view import centred
    from emocore.workflows.demo import demo_paths

    page, url, home, requests = webgl_page
    page.goto(f"{url}/brain-viewer", wait_until="domcontentloaded")
    wait_for_app_run(page)
    assert_no_exception(page, "brain-viewer")
    page.frame_locator(NIIVUE).locator("canvas").first.wait_for(timeout=60_000)

    # 1. the canvas draws: greys of the template and the colours of the map, not a flat fill
    pixels = _canvas_png(page, "multiplanar")
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    lit = float((pixels.max(axis=2) > 40).mean())
    saturated = int(((pixels.max(axis=2) - pixels.min(axis=2)) > 80).sum())
    assert colours > 50 and lit > 0.05, f"NiiVue's canvas is blank ({colours} colours, {lit:.0%})"
    assert saturated > 20, "no coloured (overlay) pixels on NiiVue's canvas"

    # 2. a click at a known point of the axial view moves the crosshair there
    _choose(page, "Interactive view", "axial")
    start = _readout(page)
    canvas = page.frame_locator(NIIVUE).locator("canvas").first
    _canvas_png(page, "axial")
    box = canvas.bounding_box()
    assert box and box["width"] > 100, f"NiiVue's canvas has no size: {box}"
    # NiiVue fills the canvas with the slice of the underlay it was sent: the template over the
    # cache's field of view, padded to be centred on the crosshair; the person's left on the left
    home_cache = VolumeCache(demo_paths(home)["cache"])
    underlay = mni_underlay(home_cache.grid_shape, home_cache.affine)
    sent = centred(underlay, start)
    width_mm = sent.shape[0] * sent.voxel_mm[0]
    height_mm = sent.shape[1] * sent.voxel_mm[1]
    grid = WorldImage(np.zeros(home_cache.grid_shape, np.float32), home_cache.affine)
    step = grid.voxel_mm[0]
    # two voxels to the right (towards +x) and one to the front (+y), if the grid has them
    dx = 2 * step if start[0] + 2 * step <= grid.axis_mm(0).max() else -2 * step
    dy = step if start[1] + step <= grid.axis_mm(1).max() else -step
    page.mouse.click(
        box["x"] + box["width"] / 2 + dx * box["width"] / width_mm,
        box["y"] + box["height"] / 2 - dy * box["height"] / height_mm,
    )
    want = grid.snap((start[0] + dx, start[1] + dy, start[2]))
    got = _readout_after(page, start)
    wait_for_app_run(page)
    assert_no_exception(page, "brain-viewer")
    assert got == pytest.approx(want, abs=0.05), f"clicked at {want} mm, the readout says {got}"
    sliders = [_slider_mm(page, axis) for axis in "xyz"]
    assert sliders == pytest.approx(want, abs=0.05), (
        f"clicked at {want} mm, the sliders say {sliders}"
    )
    _canvas_png(page, "after-click")

    # 3. after the click the sliders still move the crosshair, from where the click left it
    ys, y_step = grid.axis_mm(1), grid.voxel_mm[1]
    towards = "ArrowRight" if want[1] + y_step <= ys.max() else "ArrowLeft"
    page.get_by_role("slider", name="y (mm)").first.focus()
    page.keyboard.press(towards)
    moved = (want[0], want[1] + (y_step if towards == "ArrowRight" else -y_step), want[2])
    got = _readout_after(page, got)
    wait_for_app_run(page)
    assert got == pytest.approx(moved, abs=0.05), (
        f"the y slider moved to {moved}, the readout says {got}"
    )
    assert [_slider_mm(page, a) for a in "xyz"] == pytest.approx(moved, abs=0.05)
    _canvas_png(page, "after-slider")

    # 4. every request went to the local server
    outside = [u for u in requests if not u.startswith(url) and not u.startswith(LOCAL_SCHEMES)]
    assert requests and not outside, f"requests that left 127.0.0.1: {outside[:10]}"


def _slider_mm(page, axis: str) -> float:
    """The value (mm) the x, y or z slider shows."""
    slider = page.get_by_role("slider", name=f"{axis} (mm)").first
    text = slider.get_attribute("aria-valuetext") or slider.get_attribute("aria-valuenow") or ""
    return float(text.removesuffix(" mm"))
