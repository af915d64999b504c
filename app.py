"""emocore dashboard: page config and navigation; the pages live in pages/."""

import streamlit as st

from emocore.ui.brand import favicon, show_logo

st.set_page_config(page_title="emocore", page_icon=favicon(), layout="wide")
show_logo()
PAGES = [
    ("overview", "Overview", ":material/home:"),
    ("subject", "Subject", ":material/person:"),
    ("emotion_accuracy", "Emotion accuracy", ":material/grid_view:"),
    ("brain_viewer", "Brain viewer", ":material/neurology:"),
    ("misclassified", "Misclassified scenes", ":material/movie:"),
    ("representations", "Representations", ":material/scatter_plot:"),
    ("annotations", "Annotations", ":material/label:"),
    ("retrain", "Retrain", ":material/model_training:"),
    ("assess", "Assess a new person", ":material/person_add:"),
    ("report", "Report", ":material/description:"),
]
st.navigation(
    [
        st.Page(
            f"pages/{name}.py",
            title=title,
            icon=icon,
            url_path=name.replace("_", "-"),
            default=i == 0,
        )
        for i, (name, title, icon) in enumerate(PAGES)
    ]
).run()
