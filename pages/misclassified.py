"""Misclassified scenes: where a person's emotion was missed, what it was taken for, how unusual."""

import streamlit as st

from emocore import figures, ui
from emocore.summaries import atypicality, misclassification_summary, misclassified_scenes

s = ui.page("Misclassified scenes")
ctx = ui.require_run(s)
subject = ui.subject_picker(ctx)
c1, c2 = st.columns(2)
design = ui.design_picker(ctx, where=c1)
order = [e for e in ("LOVE", "FEAR") if e in ctx.classes] + [
    e for e in ctx.classes if e not in ("LOVE", "FEAR")
]
emotion = c2.selectbox("Emotion", order)
with ui.guard():
    held = ui.loaders.design_predictions(ctx.registry, ctx.run_id, design)
    summary = misclassification_summary(held, subject, emotion)
    scenes = misclassified_scenes(held, subject, emotion)
    atyp = atypicality(held, ctx.classes) if held["subject"].nunique() > 1 else None
split = ctx.headline(design).get("split", "?")

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
    st.dataframe(scenes, hide_index=True, height=300,
                 column_config={"most_common_fraction": st.column_config.NumberColumn(format="percent")})  # fmt: skip

st.subheader(f"Atypicality of sub-{subject} vs the other people")
if atyp is None:
    st.info("Atypicality needs at least two people in the design.")
else:
    mine = atyp[atyp["subject"] == subject].set_index("emotion")
    r = mine.loc[emotion]
    c1, c2, c3 = st.columns(3)
    c1.metric(f"{emotion} recall, sub-{subject}", ui.pct(r["accuracy"]))
    c2.metric("Others' mean", ui.pct(r["others_mean"]))
    c3.metric("z / JS distance", f"{r['z']:.2f} / {r['js_distance']:.2f}")
    ui.chance_caption(
        split,
        ctx.chance_k,
        extra="z < −2: decoded much worse than in the others; JS distance: how differently the errors are spread (0 same, 1 disjoint)",
    )
    st.dataframe(mine.round(3), height=230)
