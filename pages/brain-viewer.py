"""Brain viewer: the person's verdict first; then a volume's held-out prediction and the saliency
maps of the model that decoded the person, on anatomy, in mm. It opens on the verdict's emotion
in the primary analysis (for leave-one-subject-out: the model that held the person out)."""

import streamlit as st

from emocore import ui
from emocore.reporting import figures
from emocore.ui import brain

s = ui.page("Brain viewer")
ctx = ui.require_run(s)
subject = ui.subject_picker(ctx)
ui.verdict_banner(ctx, subject)
with ui.guard():
    cache = ui.loaders.cache(s)
saliency = ctx.study.get("saliency") or {}
if not saliency:
    st.info(
        f"Run {ctx.run_id} saved no saliency maps (they were switched off when it was "
        "trained); only the volumes and their anatomy are shown."
    )
design = ui.design_picker(ctx, where=st.columns(2)[0], options=list(saliency) or ctx.designs)
name = "all" if design == "cross-subject" else f"sub-{subject}"  # loso: the fold without them
ui.exploratory_caption(ctx, design)
if subject not in cache.subjects:
    st.info(
        f"sub-{subject} is not in the cache at {s.cache}, so their volumes cannot be shown; "
        "the verdict above comes from the run's stored held-out predictions."
    )
    st.stop()
with ui.guard():
    held = ctx.results.predictions(design)
brain.volume_section(
    ctx,
    cache,
    subject=subject,
    design=design,
    name=name,
    held=held,
    emotion=ui.opening_emotion(ctx, subject),
)

st.subheader(f"Mean saliency per emotion — {design}/{name}")
with ui.guard():
    maps = {
        e: m
        for e in ctx.classes
        if (m := ui.loaders.saliency_map(ctx.results, design, name, e)) is not None
    }
if maps:
    st.plotly_chart(figures.saliency_mips(maps))
    method = brain.method_words(ctx.results.map_entry(design, name, next(iter(maps))).get("method"))
    st.caption(
        f"Maximum-intensity projections of the mean absolute map ({method}) over the model's "
        "volumes of each emotion (a glass-brain view)."
    )
