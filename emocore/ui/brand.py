"""The dashboard's logo, favicon and research-use notice, read from the top-level ``assets/``.

``assets/`` sits beside ``app.py`` (the design card's layout). When emocore runs from an install
without it, the notice falls back to :data:`emocore.reporting.report.RESEARCH_NOTICE` and the logo is left
out, so no page fails for want of a picture.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from emocore.reporting.report import RESEARCH_NOTICE

__all__ = ["ASSETS", "FAVICON", "LOGO", "NOTICE", "favicon", "notice_text", "show_logo"]

ASSETS = Path(__file__).resolve().parents[2] / "assets"
LOGO = ASSETS / "logo.svg"
FAVICON = ASSETS / "favicon.png"
NOTICE = ASSETS / "NOTICE.md"


def notice_text() -> str:
    """The research-use notice (markdown) from assets/NOTICE.md, or the built-in one."""
    try:
        text = NOTICE.read_text(encoding="utf-8").strip()
    except OSError:
        return RESEARCH_NOTICE
    return text or RESEARCH_NOTICE


def favicon() -> str:
    """What ``st.set_page_config(page_icon=...)`` gets: the favicon file, or a material icon."""
    return str(FAVICON) if FAVICON.is_file() else ":material/neurology:"


def show_logo() -> None:
    """The logo at the top of the sidebar (``st.logo``); nothing when assets/ is missing."""
    if LOGO.is_file():
        st.logo(str(LOGO), size="large")
