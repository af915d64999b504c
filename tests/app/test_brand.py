"""The dashboard's assets through app.py (AppTest): logo, favicon, research-use notice, and what the
Overview says on an empty data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from emocore.ui import brand

ROOT = Path(__file__).resolve().parents[2]


def test_assets_are_in_the_top_level_folder() -> None:
    assert brand.ASSETS == ROOT / "assets"
    for path in (brand.LOGO, brand.FAVICON, brand.NOTICE):
        assert path.is_file(), f"{path} is missing"
    assert brand.LOGO.read_text().lstrip().startswith("<svg")
    assert brand.FAVICON.read_bytes().startswith(b"\x89PNG")
    assert brand.favicon() == str(brand.FAVICON)
    assert "not a medical device, not for diagnosis" in brand.notice_text()


def test_empty_folder_shows_logo_notice_and_one_plain_instruction(
    tmp_path: Path, emocore_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    logos: list[str] = []
    monkeypatch.setattr(streamlit, "logo", lambda image, **_: logos.append(str(image)))
    emocore_env(tmp_path / "empty")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception

    assert logos == [str(brand.LOGO)], "app.py does not show the logo from assets/"
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "not a medical device, not for diagnosis" in sidebar
    assert any("not for diagnosis" in w.value for w in at.warning)

    infos = [i.value for i in at.info]
    assert len(infos) == 1, infos  # one box, not one per missing folder
    assert "There is no data to show yet" in infos[0]
    assert "Build the demo" in infos[0] and "emocore.toml" in infos[0]
    assert "Real data" not in " ".join(m.value for m in at.markdown)
    assert [b.label for b in at.button] == ["Build the demo cohort, cache and model"]


def test_folder_with_other_files_is_not_offered_the_demo(tmp_path: Path, emocore_env) -> None:
    home = tmp_path / "study"
    home.mkdir()
    (home / "notes.txt").write_text("not a cache")
    emocore_env(home)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "holds files but no data prepared for emocore" in at.info[0].value
    assert not at.button, "the demo would be written into someone's folder"
