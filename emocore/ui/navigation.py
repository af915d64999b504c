"""The dashboard's pages and the one navigation they share, cold deep links included.

Why this module exists: Streamlit (1.67) decides once per server, when the first browser session
opens, whether the app is an old-style multipage app, by checking whether a folder named
``pages/`` sits next to app.py (``PagesManager.uses_pages_directory``). Ours does (the design
card puts the page scripts there), so the first run on a fresh server goes through Streamlit's
automatic navigation instead of app.py's ``st.navigation``: its sidebar lists the file names, and
a URL it does not know shows a "Page not found" dialog. Only a call to ``st.navigation`` clears
the flag, and only from then on.

Two things make a cold deep link land on the right page with the app's own sidebar:

* each page file is named after its URL path (``pages/brain-viewer.py`` serves
  ``/brain-viewer``), so Streamlit's automatic navigation finds the page the link asks for and
  does not show the dialog;
* that automatic navigation then runs the page file alone, without app.py. Every page starts
  with ``ui.page``, which calls :func:`ensure_app_frame`: when the flag is still set, it draws
  what app.py would have drawn (page config, logo, and our ``st.navigation``, which clears the
  flag and replaces the automatic sidebar) and lets the page go on. A visit to ``/`` runs
  app.py itself, whose ``st.navigation`` clears the flag before the page runs. After drawing
  the frame, a cold deep link reruns once, before any widget is drawn: the widgets' ids depend
  on the running page's script hash, which differs between the automatic page and ours, so
  without the rerun the first click was lost. Streamlit's AppTest sets the flag afresh on
  every run, so under it there is no rerun and the page goes on.

No public Streamlit API sets the flag; this touches one class attribute and nothing else.
"""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from emocore.ui.brand import favicon, show_logo


class PageSpec(NamedTuple):
    url_path: str  # also the file name in pages/, without .py
    title: str
    icon: str


PAGES = (
    PageSpec("overview", "Overview", ":material/home:"),
    PageSpec("subject", "Subject", ":material/person:"),
    PageSpec("emotion-accuracy", "Emotion accuracy", ":material/grid_view:"),
    PageSpec("brain-viewer", "Brain viewer", ":material/neurology:"),
    PageSpec("misclassified", "Misclassified scenes", ":material/movie:"),
    PageSpec("representations", "Representations", ":material/scatter_plot:"),
    PageSpec("annotations", "Annotations", ":material/label:"),
    PageSpec("retrain", "Retrain", ":material/model_training:"),
    PageSpec("assess", "Assess a new person", ":material/person_add:"),
    PageSpec("report", "Report", ":material/description:"),
)


def app_frame() -> StreamlitPage:
    """Page config, logo and the app's navigation; returns the page the URL asks for.

    app.py runs what this returns; :func:`ensure_app_frame` calls it for a page run alone."""
    st.set_page_config(page_title="emocore", page_icon=favicon(), layout="wide")
    show_logo()
    pages = [
        st.Page(
            f"pages/{spec.url_path}.py",
            title=spec.title,
            icon=spec.icon,
            url_path=spec.url_path,
            default=i == 0,
        )
        for i, spec in enumerate(PAGES)
    ]
    return st.navigation(pages)


def ensure_app_frame() -> None:
    """Draw app.py's frame if Streamlit ran this page alone, through its automatic navigation."""
    try:
        from streamlit.runtime.pages_manager import PagesManager  # here: private, may vanish
    except ImportError:  # a Streamlit without the flag has no automatic navigation
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        app_frame()
        # The rest of this run would give the page's widgets ids under the automatic page's
        # script hash, and the next run (through app.py) other ids, so the first click on a cold
        # deep link was lost (seen in chromium: "Assess sub-12 again" needed two clicks). Rerun
        # now, before the page draws any widget: once per server, since the flag stays
        # cleared; never under AppTest, which sets the flag again on every run (a rerun there
        # would never end), and never if the flag did not clear.
        if not _app_testing() and not getattr(PagesManager, "uses_pages_directory", False):
            st.rerun()


def _app_testing() -> bool:
    from streamlit import config  # here: streamlit.config is not re-exported by streamlit

    return bool(config.get_option("global.appTest"))
