"""Misclassified scenes: the person's verdict first; then where an emotion was missed, what it was
taken for, and whether that is unusual against the other people (single-case tests)."""

import streamlit as st

from emocore import ui
from emocore.reporting import figures
from emocore.stats.summaries import misclassified_scenes, scenes_table

s = ui.page("Misclassified scenes")
ctx = ui.require_run(s)
subject = ui.subject_picker(ctx)
ui.verdict_banner(ctx, subject)
c1, c2 = st.columns(2)
design = ui.design_picker(ctx, where=c1)
order = [e for e in ("LOVE", "FEAR") if e in ctx.classes] + [
    e for e in ctx.classes if e not in ("LOVE", "FEAR")
]
first = ui.opening_emotion(ctx, subject)  # the verdict's flagged emotion, else LOVE
emotion = c2.selectbox("Emotion", order, index=order.index(first) if first in order else 0)
with ui.guard():
    held = ctx.results.predictions(design)
    summary = ctx.results.misclassification(design, subject, emotion)
    scenes = misclassified_scenes(held, subject, emotion)
split = ctx.headline(design).get("split", "?")

ui.exploratory_caption(ctx, design)
ui.collapse_warning(held, design=design, subject=subject)
st.markdown(f"**{summary['sentence']}**")
ui.chance_caption(
    split, ctx.chance_k, what=f"1/{len(ctx.classes)} classes", extra="held-out predictions"
)
left, right = st.columns([2, 3])
if summary["n"]:
    left.plotly_chart(
        figures.misclassification_pie(summary["counts"], subject=subject, emotion=emotion)
    )
with right:
    st.markdown(f"**Scenes where {emotion} was missed** ({len(scenes)} spans)")
    st.dataframe(scenes_table(scenes), hide_index=True, height=300, column_config=ui.SCENES_COLUMNS)

st.subheader(f"Is this unusual? sub-{subject}'s {emotion} volumes against the other people (CNN)")
found = ui.run_findings(ctx)
if found is not None and not ui.no_findings_note(ctx, found, design):
    rows = found.emotion_findings(subject, design, emotion)
    if rows:
        ui.finding_block(ctx, found, rows, subject=subject, design=design, key="misclassified")
    else:
        st.info(f"sub-{subject} has no single-case test of {emotion} in the {design} design.")
