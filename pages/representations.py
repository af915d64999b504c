"""Representations: the CNN's hidden layer in two dimensions, by emotion or by person."""

import streamlit as st

from emocore import ui
from emocore.reporting import figures

s = ui.page("Representations")
ctx = ui.require_run(s)
info = ctx.study.get("embeddings")
if not info:
    st.info(f"Run {ctx.run_id} saved no embeddings.")
    st.stop()
with ui.guard():
    emb = ctx.results.table("embeddings")
color_by = st.radio("Colour by", ["emotion", "subject"], horizontal=True)
st.plotly_chart(
    figures.embedding_scatter(
        emb, color_by=color_by, silhouette=info.get(f"silhouette_by_{color_by}")
    )
)
c1, c2 = st.columns(2)
c1.metric("Silhouette by emotion", f"{info.get('silhouette_by_emotion') or float('nan'):.3f}")
c2.metric("Silhouette by subject", f"{info.get('silhouette_by_subject') or float('nan'):.3f}")
st.caption(
    f"PCA of the hidden layer of `{info.get('model')}` over {info.get('n')} volumes, including the ones it was trained on (in-sample). Silhouette: −1 to 1; near 0 = no clustering. Clustering by subject rather than emotion means the model separates people more than feelings."
)
