"""Brain viewer: one volume in three planes with the model's saliency on top; per-emotion maps."""

import streamlit as st
import streamlit.components.v1 as components

from emocore import figures, ui

s = ui.page("Brain viewer")
ctx = ui.require_run(s)
subject = ui.subject_picker(ctx)
with ui.guard():
    cache = ui.loaders.cache(s)
    spans = {span.run: span.n_volumes for span in cache.runs(subject)}
saliency = ctx.study.get("saliency") or {}
if not saliency:
    st.info(
        f"Run {ctx.run_id} saved no saliency maps (it was run without --saliency); only volumes are shown."
    )
design = ui.design_picker(ctx, where=st.sidebar, options=list(saliency) or ctx.designs)
name = "all" if design == "cross-subject" else f"sub-{subject}"

c1, c2 = st.columns([1, 3])
run = c1.selectbox("Run", list(spans))
volume = c2.slider("Volume", 0, spans[run] - 1, min(40, spans[run] - 1))
with ui.guard():
    data = ui.loaders.subject_volume(s, subject, run, volume)
    held = ui.loaders.design_predictions(ctx.registry, ctx.run_id, design)
row = held[(held["subject"] == subject) & (held["run"] == run) & (held["volume"] == volume)]
if len(row):
    r = row.iloc[0]
    p = r["prob_" + r["pred"]]
    st.markdown(
        f"Movie time **{r['movie_time']:.0f} s**, scene {r['scene']} ({r['scene_location']}) · true **{r['true']}** · predicted **{r['pred']}** (p = {p:.2f}, held out, {r['split']})"
    )
    predicted = r["pred"]
else:
    st.caption(
        f"Volume {volume} of run {run} has no emotion label (NONE or trimmed), so no held-out prediction."
    )
    predicted = None

choices = ([f"predicted ({predicted})"] if predicted else []) + ctx.classes
c1, c2, c3 = st.columns(3)
pick = c1.selectbox("Saliency for", choices)
emotion = predicted if pick.startswith("predicted") else pick
threshold = c2.slider("Threshold (share of the map's maximum)", 0.0, 1.0, 0.5, 0.05)
opacity = c3.slider("Opacity", 0.0, 1.0, 0.6, 0.05)
nx, ny, nz = data.shape
c1, c2, c3 = st.columns(3)
x = c1.slider("x", 0, nx - 1, nx // 2)
y = c2.slider("y", 0, ny - 1, ny // 2)
z = c3.slider("z", 0, nz - 1, nz // 2)
with ui.guard():
    overlay = ui.loaders.saliency_map(ctx.registry, ctx.run_id, design, name, emotion)
top = float(overlay.max()) if overlay is not None else 0.0
st.plotly_chart(figures.orthogonal_slices(data, voxel=(x, y, z), overlay=overlay, threshold=threshold * top, opacity=opacity,
                                          title=f"sub-{subject} run {run} volume {volume} — saliency of {design}/{name} for {emotion}"))  # fmt: skip
with st.expander("Interactive viewer (nilearn): click to move the crosshair"):
    try:
        html = figures.interactive_viewer_html(
            data, cache.affine, overlay, threshold=threshold * top, opacity=opacity
        )
        components.html(html, height=420, scrolling=False)
    except Exception as exc:  # the static view is the fallback for any viewer failure
        st.caption(
            f"The interactive viewer failed ({exc.__class__.__name__}); showing nilearn's static view."
        )
        st.image(figures.static_viewer_png(data, cache.affine, overlay, threshold=threshold * top))
auc = saliency.get(design, {}).get(name, {}).get(emotion, {}).get("auc_vs_truth")
if overlay is None:
    st.info(f"No saliency map for {design}/{name} and {emotion} in this run.")
elif auc is not None:
    st.caption(
        f"Synthetic cohort: this map finds the planted {emotion} pattern with AUC {auc:.2f} (0.5 = chance)."
    )

st.subheader(f"Mean saliency per emotion — {design}/{name}")
with ui.guard():
    maps = {
        e: m
        for e in ctx.classes
        if (m := ui.loaders.saliency_map(ctx.registry, ctx.run_id, design, name, e)) is not None
    }
if maps:
    st.plotly_chart(figures.saliency_mips(maps))
    st.caption(
        "Maximum-intensity projections of mean |attribution| over the model's volumes of each emotion (a glass-brain view)."
    )
