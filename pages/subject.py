"""Subject: the person's verdict first; then their held-out predictions over the movie, next to
the others, and the single-case tests behind the verdict (other designs: exploratory)."""

import streamlit as st

from emocore import ui
from emocore.device import gpu_summary
from emocore.reporting import figures
from emocore.stats.findings import p_is, person_summary, person_table
from emocore.ui.tables import PERSON_COLUMNS
from emocore.workflows.inference import seen_in_training, subject_predictions

s = ui.page("Subject")
ctx = ui.require_run(s)
subject = ui.subject_picker(ctx)
ui.verdict_banner(ctx, subject)
design = ui.design_picker(ctx, where=st.columns(2)[0])

with ui.guard():
    held = ctx.results.predictions(design)
    scores = ctx.results.per_subject(design)
mine = held[held["subject"] == subject]
head = ctx.headline(design)
split = head.get("split", "?")

st.subheader(f"sub-{subject}, {design}: held-out (cross-validated) predictions")
ui.exploratory_caption(ctx, design)
if mine.empty:
    st.info(f"sub-{subject} has no held-out predictions in the {design} design of this run.")
    st.stop()
ui.collapse_warning(held, design=design, subject=subject)
me = scores[scores["subject"] == subject].iloc[0]
c1, c2 = st.columns(2)
with c1:
    st.metric(f"sub-{subject} balanced accuracy", ui.pct(me["balanced_accuracy"]))
    ui.chance_caption(
        split, ctx.chance_k, what=f"1/{len(ctx.classes)} classes", extra=f"{len(mine)} volumes"
    )
with c2:
    st.metric("Cohort balanced accuracy (pooled)", ui.pct(head.get("balanced_accuracy")))
    ui.chance_caption(
        split,
        head.get("chance_balanced_accuracy"),
        what="permutation",
        extra=p_is(head.get("p_value")),
    )
st.plotly_chart(
    figures.subject_vs_cohort(me, scores, ctx.classes, subject=subject, chance=ctx.chance_k)
)

found = ui.run_findings(ctx)
if found is not None and found.is_primary(design):
    st.subheader(f"The tests behind the verdict on sub-{subject}, against the other people")
elif found is not None:
    st.subheader(f"Is sub-{subject} unusual in {design}? Exploratory single-case tests (CNN)")
if found is not None and not ui.no_findings_note(ctx, found, design):
    ui.finding_block(
        ctx,
        found,
        found.headline(subject, design),
        subject=subject,
        design=design,
        key="subject",
        summary=person_summary(found, subject, design),
    )
    mine_tests = found.person(subject, design)
    with st.expander(f"All {len(mine_tests)} tests of sub-{subject} in {design}, flagged first"):
        st.dataframe(person_table(mine_tests), hide_index=True, column_config=PERSON_COLUMNS)

windows = ui.movie_windows(s, mine)
ui.timeline_view(
    mine,
    windows,
    title=f"sub-{subject}: true vs predicted (held out, {split})",
    key="subject-timeline",
)

st.subheader(f"Every volume of sub-{subject}, NONE included, through a stored model")
models = ctx.results.models
if not models:
    st.caption(f"Run {ctx.run_id} stored no models; only its held-out predictions are shown.")
# the model of the design shown that decoded this person (their own, or the LOSO fold that held
# them out), else the run's preferred one for them
shown = next((m for m in (f"{design}/sub-{subject}", f"{design}/all") if m in models), None)
preferred = shown or ctx.results.preferred_model(subject)
model = st.selectbox("Stored model", models, index=models.index(preferred)) if preferred else None
if model:
    with ui.guard():
        vc = ui.loaders.cache(s)
        # only while the cache still holds the data it was made from (a stored table of a
        # relabelled or damaged cache is not shown)
        stored = subject_predictions(ctx.results, model, vc, subject, volumes="all", compute=False)
        gpu = gpu_summary()
        if stored is None and st.button(
            f"Run {model} on every volume of sub-{subject} ({'GPU' if gpu['available'] else 'CPU'})",
            disabled=ctx.registry.read_only,
            help="The registry is read-only: the predictions cannot be stored with the run."
            if ctx.registry.read_only
            else None,
        ):
            bar = st.progress(0.0, text="loading the model")
            engine = ui.loaders.inference_engine(ctx.results, model, vc.grid_shape)
            progress = ui.progress_callback(bar)
            stored = subject_predictions(
                ctx.results, model, vc, subject, engine=engine, progress=progress, volumes="all"
            )
            ui.inference_caption(stored)
    if stored is not None:
        seen = seen_in_training(stored)
        if seen:
            st.warning(
                "In-sample: the model was trained on these volumes. These numbers overstate how well it decodes new data; use the held-out view above."
            )
        else:
            st.info(
                f"Out-of-sample: sub-{subject} was not in this model's training set, so its "
                "labelled volumes here are the same data as the held-out view above; what is "
                "new is the model's answer on the NONE volumes."
            )
        model_classes = [c.removeprefix("prob_") for c in stored.columns if c.startswith("prob_")]
        with ui.guard():
            ui.every_volume_block(
                stored, classes=model_classes, split="in-sample" if seen else "new person"
            )
            ui.timeline_view(
                stored,
                windows,
                key="subject-every-volume",
                title=f"sub-{subject}: {model} on every volume "
                f"({'in-sample' if seen else 'new person'})",
            )
