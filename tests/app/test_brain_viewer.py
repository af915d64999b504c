"""The brain viewer through app.py: what the title says, choices that survive, slices in mm."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.test_pages import no_exception, open_page, texts


def _widget(at: AppTest, kind: str, label: str):
    return next(w for w in getattr(at, kind) if w.label == label)


def _slices(at: AppTest) -> dict:
    """The plotly spec of the slices (the first chart on the page)."""
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_brain_viewer_says_what_it_shows_and_keeps_the_emotion(
    demo_home: Path, emocore_env
) -> None:
    emocore_env(demo_home)
    at = open_page("brain-viewer")
    no_exception(at, "brain-viewer")
    # the default volume carries a label, so there is a held-out prediction to explain
    assert "has no emotion label" not in texts(at, "caption")
    assert "true **" in texts(at, "markdown") and "predicted **" in texts(at, "markdown")
    emotion = _widget(at, "selectbox", "Saliency for")
    assert emotion.value == "predicted"
    # the title says it is the model's mean map, not this volume's
    assert any("the model's mean saliency map, not this volume's" in h.value for h in at.subheader)
    assert "mean over" in _slices(at)["layout"]["title"]["text"]

    emotion.set_value("LOVE").run()
    volume = _widget(at, "slider", "Volume")
    volume.set_value(volume.value + 7).run()
    no_exception(at, "brain-viewer")
    assert _widget(at, "selectbox", "Saliency for").value == "LOVE"
    assert at.subheader[0].value.startswith("LOVE: the model's mean saliency map")


def test_brain_viewer_slices_are_in_mm_with_the_sides(demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    at = open_page("brain-viewer")
    layout = _slices(at)["layout"]
    assert layout["xaxis"]["title"]["text"] == "L ← x (mm) → R"
    assert layout["xaxis3"]["title"]["text"] == "P ← y (mm) → A"
    marks = {a["text"] for a in layout["annotations"]}
    assert {"<b>L</b>", "<b>R</b>", "<b>A</b>", "<b>P</b>"} <= marks
    assert layout["coloraxis"]["cmax"] > 0  # the saliency colour bar, fixed per map
    cmax = layout["coloraxis"]["cmax"]
    # one crosshair: the x slider (mm) moves the sagittal slice and keeps the colour bar
    x = _widget(at, "select_slider", "x (mm)")
    left = float(x.options[0].removesuffix(" mm"))  # the leftmost voxel centre
    assert x.value != left  # the viewer opens on the map's peak, so the slider has to move
    x.set_value(left).run()
    no_exception(at, "brain-viewer")
    layout = _slices(at)["layout"]
    assert layout["annotations"][2]["text"] == f"sagittal (x = {left:g} mm)"
    assert layout["coloraxis"]["cmax"] == cmax
    assert len(at.get("component_instance")) == 1  # NiiVue (tests/app/test_niivue.py)
    # the person's own volume as the underlay instead of the template, at the same crosshair
    next(r for r in at.radio if r.label == "Underlay").set_value(
        "this volume (BOLD, z-scored)"
    ).run()
    no_exception(at, "brain-viewer")
    layout = _slices(at)["layout"]
    assert "underlay: BOLD of sub-01 run 1 volume" in layout["title"]["text"]
    assert layout["annotations"][2]["text"] == f"sagittal (x = {left:g} mm)"


def test_brain_viewer_shows_checks_and_the_linear_pattern_beside(
    demo_home: Path, emocore_env
) -> None:
    emocore_env(demo_home)
    at = open_page("brain-viewer")
    no_exception(at, "brain-viewer")
    _widget(at, "selectbox", "Saliency for").set_value("LOVE").run()
    no_exception(at, "brain-viewer")
    page = texts(at, "markdown")
    # the map's sanity checks: the method, then one sentence per check marked passed or not,
    # each with its numbers in a details line below it
    assert "Sanity checks of this map** (SmoothGrad" in page
    assert "**model randomisation**: " in page and "**planted pattern**: " in page
    said = [line for line in at.markdown if "**model randomisation**" in line.value][0].value
    assert said.startswith(("✅ passed", "⚠️ not passed")) and "weights" in said
    details = texts(at, "caption")
    assert "rank correlation" in details and "re-drawn" in details
    assert "bootstrap interval" in details and "mean |x|" in details
    # the linear decoder's pattern beside the CNN's map, at the same crosshair, with r
    assert any("beside the linear decoder's pattern (LOVE)" in h.value for h in at.subheader)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [s["layout"]["title"]["text"] for s in specs]
    cnn = next(i for i, t in enumerate(titles) if t.startswith("CNN "))
    linear = next(i for i, t in enumerate(titles) if t.startswith("Linear decoder"))
    assert specs[cnn]["layout"]["annotations"][2] == specs[linear]["layout"]["annotations"][2]
    assert "Spatial correlation of the two maps within the brain mask: r = " in texts(at, "caption")


def test_brain_viewer_offers_the_persons_mean_epi_as_underlay(
    demo_home: Path, home_copy: Path, emocore_env
) -> None:
    emocore_env(demo_home)
    at = open_page("brain-viewer")
    underlay = _widget(at, "radio", "Underlay")
    assert underlay.value == "MNI152 template"  # still the default
    assert "mean EPI of sub-01" in underlay.options
    underlay.set_value("mean EPI").run()
    no_exception(at, "brain-viewer")
    assert "underlay: mean EPI of sub-01" in _slices(at)["layout"]["title"]["text"]
    # a cache made before prepare stored it: no such option, and how to get one
    (home_copy / "cache" / "sub-01_mean-epi.npy").unlink()
    emocore_env(home_copy)
    at = open_page("brain-viewer")
    no_exception(at, "brain-viewer")
    assert "mean EPI of sub-01" not in _widget(at, "radio", "Underlay").options
    assert "re-run `emocore prepare` to store each person's mean EPI" in texts(at, "caption")


# -- opening on the verdict ------------------------------------------------------------------
def _flag(home: Path, subject: str, emotion: str, predicted_as: str) -> None:
    """Make ``subject``'s recorded verdict flag ``emotion`` decoded as ``predicted_as``."""
    from emocore.runs.registry import Registry

    registry = Registry(home / "registry")
    path = registry.run_dir(registry.list_runs()["id"][0]) / "study.json"
    study = json.loads(path.read_text())
    for verdict in study["verdicts"]:
        if verdict["subject"] == subject:
            finding = {"measure": f"{emotion}->{predicted_as}", "emotion": emotion}
            verdict.update(
                status="flagged",
                sentence=f"Atypical decoding for sub-{subject}: {emotion} as {predicted_as}.",
                flagged=[{**finding, "predicted_as": predicted_as, "sentence": "s"}],
            )
    path.write_text(json.dumps(study))


def _opened_on(at: AppTest) -> tuple[str, str]:
    """The emotion of the saliency picker and the true emotion of the volume shown."""
    shown = texts(at, "markdown")
    true = shown.split("true **", 1)[1].split("**", 1)[0]
    return _widget(at, "selectbox", "Saliency for").value, true


def test_brain_viewer_opens_on_the_verdicts_emotion_in_the_primary_analysis(
    findings_home: Path, tmp_path: Path, emocore_env
) -> None:
    """sub-02 (in the cache): no evidence of atypical decoding, so LOVE, the clinical question's
    first emotion; flagged for FEAR, it opens on FEAR. Always the primary analysis (loso), with
    the model that held the person out, and a volume of that emotion the model got wrong."""
    import shutil

    from tests.app.test_pages import PAGES, ROOT

    def visit(home: Path) -> AppTest:
        emocore_env(home)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
        at.query_params["subject"] = "02"
        at.switch_page(PAGES["brain-viewer"]).run()
        no_exception(at, "brain-viewer")
        return at

    at = visit(findings_home)
    assert _widget(at, "selectbox", "Design").value == "loso"
    assert _opened_on(at) == ("LOVE", "LOVE")
    assert "predicted **LOVE**" not in texts(at, "markdown")  # one the model got wrong
    assert any(h.value == "Mean saliency per emotion — loso/sub-02" for h in at.subheader)

    home = Path(shutil.copytree(findings_home, tmp_path / "home"))
    _flag(home, "02", "FEAR", "ANGER")
    at = visit(home)
    assert at.warning[0].value == "Atypical decoding for sub-02: FEAR as ANGER."
    assert _opened_on(at) == ("FEAR", "FEAR")


def test_brain_viewer_says_when_the_person_is_not_in_the_cache(
    findings_home: Path, emocore_env
) -> None:
    """sub-05's held-out predictions are in the run but not their volumes in this cache: the
    verdict, then why no volume is shown (not an error)."""
    from tests.app.test_pages import PAGES, ROOT

    emocore_env(findings_home)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params["subject"] = "05"
    at.switch_page(PAGES["brain-viewer"]).run()
    no_exception(at, "brain-viewer")
    assert not at.error, [e.value for e in at.error]
    assert "sub-05 is not in the cache" in texts(at, "info")
