"""Brain viewer: a volume's held-out prediction and the model's saliency maps on anatomy, in mm."""

import streamlit as st

from emocore import figures, ui
from emocore.ui import brain

s = ui.page("Brain viewer")
ctx = ui.require_run(s)
subject = ui.subject_picker(ctx)
with ui.guard():
    cache = ui.loaders.cache(s)
saliency = ctx.study.get("saliency") or {}
if not saliency:
    st.info(
        f"Run {ctx.run_id} saved no saliency maps (they were switched off when it was "
        "trained); only the volumes and their anatomy are shown."
    )
design = ui.design_picker(ctx, where=st.sidebar, options=list(saliency) or ctx.designs)
name = "all" if design == "cross-subject" else f"sub-{subject}"
with ui.guard():
    held = ctx.results.predictions(design)
brain.volume_section(ctx, cache, subject=subject, design=design, name=name, held=held)

st.subheader(f"Mean saliency per emotion — {design}/{name}")
with ui.guard():
    maps = {
        e: m
        for e in ctx.classes
        if (m := ui.loaders.saliency_map(ctx.results, design, name, e)) is not None
    }
if maps:
    st.plotly_chart(figures.saliency_mips(maps))
    st.caption(
        "Maximum-intensity projections of mean |attribution| over the model's volumes of each emotion (a glass-brain view)."
    )
