"""Annotations: how the per-volume labels come from the observers' raw annotations."""

import streamlit as st

from emocore import ui
from emocore.data.labels import OBSERVER_SETS, RECIPES, label_counts
from emocore.reporting import figures

s = ui.page("Annotations")
st.caption(f"Raw observer annotations from `{s.annotations}`")
if not s.annotations.is_dir():
    st.info(
        f"No annotation folder at {s.annotations}. Build the demo on the Overview page, or set "
        "EMOCORE_ANNOTATIONS to labs2015-emotionannotation/data/raw."
    )
    st.stop()
with ui.guard():
    ui.loaders.annotations(s)
c1, c2, c3 = st.columns(3)
recipe = c1.selectbox(
    "Recipe", RECIPES, help="poster: the DeepEmotion labels; overlap: the Labs et al. vote"
)
observers = c2.selectbox(
    "Observers", [None, *OBSERVER_SETS], format_func=lambda o: o or "recipe default"
)
lag = c3.select_slider("Hemodynamic lag (s)", [0, 2, 4, 6, 8], value=4)

with ui.guard():
    labels = ui.loaders.volume_labels(s, lag=lag, recipe=recipe, observers=observers)
    raw = ui.loaders.raw_category_counts(s, observers)
    cooc = ui.loaders.category_cooccurrence(s, observers)
    grid = ui.loaders.label_count_grid(s, observers=observers)
counts = label_counts(labels)
cols = st.columns(len(counts))
for col, (cls, n) in zip(cols, counts.items(), strict=True):
    col.metric(cls, n)
st.caption(
    f"Volumes per class with recipe {recipe}, observers {observers or 'default'}, lag {lag} s, out of {len(labels)}."
)

st.plotly_chart(
    figures.label_timeline(
        labels, title=f"Labels over the movie ({recipe}, lag {lag} s); grey lines: scene changes"
    )
)
left, right = st.columns(2)
left.plotly_chart(figures.category_bars(raw))
right.plotly_chart(figures.agreement_histogram(labels))
left, right = st.columns([3, 2])
left.plotly_chart(figures.cooccurrence_heatmap(cooc))
with right:
    st.markdown("**22 → 5 mapping** (the prototype's clustering)")
    st.dataframe(figures.category_map_table(), hide_index=True, height=480)
st.plotly_chart(figures.label_counts_figure(grid))
