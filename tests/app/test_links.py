"""Links and the sidebar through app.py (AppTest): a URL picks the person on every page with a
person picker and the choice goes back into the URL; the run picker's label fits the sidebar."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import PAGES, ROOT, newcomer_home, no_exception, texts
from tests.app.test_tables import text_px

__all__ = ["newcomer_home"]  # the fixture, shared with test_pages

PERSON_PAGES = ("subject", "misclassified", "emotion-accuracy", "brain-viewer", "report")


def follow_link(name: str, **query: str) -> AppTest:
    """A first visit to ``/<name>?<query>``, as a shared link opens it."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params.update(query)
    at.switch_page(PAGES[name]).run()
    no_exception(at, name)
    return at


def picked(at: AppTest) -> str:
    return next(s for s in at.selectbox if s.label == "Subject").value


@pytest.mark.parametrize("name", PERSON_PAGES)
def test_a_link_picks_the_person(name: str, demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    at = follow_link(name, subject="sub-02")  # sub-01 is the first, the default
    assert picked(at) == "02"
    assert not at.warning or "The link asks for" not in texts(at, "warning")
    assert at.query_params["subject"] == "02"  # the address names the person shown


def test_the_chosen_person_goes_into_the_address_and_a_change_sticks(
    demo_home: Path, emocore_env
) -> None:
    emocore_env(demo_home)
    at = follow_link("subject", subject="2")  # "2" for sub-02 too
    assert picked(at) == "02"
    next(s for s in at.selectbox if s.label == "Subject").set_value("01").run()
    assert picked(at) == "01" and at.query_params["subject"] == "01"
    at.switch_page(PAGES["misclassified"]).run()  # switching pages keeps the person
    assert picked(at) == "01" and at.query_params["subject"] == "01"


def test_a_link_to_someone_not_in_the_run_names_the_people_available(
    demo_home: Path, emocore_env
) -> None:
    emocore_env(demo_home)
    at = follow_link("subject", subject="sub-99")
    assert not at.error, [e.value for e in at.error]
    warning = texts(at, "warning")
    assert "The link asks for sub-99, who is not in run" in warning, warning
    assert "People available: sub-01, sub-02" in warning
    assert picked(at) == "01" and at.query_params["subject"] == "01"


def test_the_cell_table_shows_the_chosen_person(demo_home: Path, emocore_env) -> None:
    """ "The volumes behind a cell" had a picker of its own that opened on the first person."""
    emocore_env(demo_home)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page(PAGES["subject"]).run()
    next(s for s in at.selectbox if s.label == "Subject").set_value("02").run()
    at.switch_page(PAGES["emotion-accuracy"]).run()
    no_exception(at, "emotion-accuracy")
    assert [s.label for s in at.selectbox].count("Subject") == 1
    assert picked(at) == "02"
    assert any(h.value.startswith("The volumes behind a cell: sub-02") for h in at.subheader)


def test_a_link_preselects_the_newcomer_to_assess(newcomer_home: Path, emocore_env) -> None:
    emocore_env(newcomer_home)
    at = follow_link("assess", subject="sub-03")
    assert next(s for s in at.selectbox if s.label == "Person").value == "03"
    assert "The link asks for" not in texts(at, "warning")
    at = follow_link("assess", subject="01")  # already in the cohort
    warning = texts(at, "warning")
    assert "The link asks for sub-01, who is not among this folder's people outside" in warning
    assert "People available: sub-03" in warning


def test_the_run_picker_fits_the_sidebar(demo_home: Path, emocore_env) -> None:
    """At 1280 px the sidebar's box shows about 190 px of text: "study · single-subject +
    cross-sub…" was cut off. The full description stands under the box."""
    emocore_env(demo_home)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    box = next(s for s in at.sidebar.selectbox if s.label == "Run")
    label = box.format_func(box.value)
    assert text_px(label) - 16 <= 1.1 * 190, label  # text_px overestimates by 5-15 %
    assert " · study · " in label, label
    caption = texts(at.sidebar, "caption")
    assert f"Run {box.value}: study · single-subject + cross-subject + loso · 2 people" in caption
