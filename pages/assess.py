"""Assess a new person: someone scanned after the study, tested against the study's cohort."""

import streamlit as st

from emocore import assess, jobs, ui
from emocore.findings import person_summary, with_assessment

s = ui.page("Assess a new person")
ctx = ui.require_run(s)
st.markdown(
    f"Add a person who was **not** in run **{ctx.run_id}**'s cohort and test them against it. "
    "The job decodes them with the run's leave-one-subject-out models, when it has them (none "
    "saw the person), trains their own single-subject model with the run's settings and folds, "
    "when the run has that design, and runs the single-case tests. The cohort's models are "
    "never changed."
)
cache, problem = ui.loaders.cache_or_none(s)
if cache is None:
    st.info(f"No cache to add the person to: {problem}")
    st.stop()
with ui.guard():
    folders = assess.dataset_folders(s.home, cache)
if not folders:
    st.info(f"No dataset folder inside {s.home} (the data root). Put the person's dataset there.")
    st.stop()
with st.form("assess", enter_to_submit=False):
    folder = st.selectbox(
        "Dataset folder (inside the data root)",
        folders,
        format_func=lambda p: str(p.relative_to(s.home.resolve())),
    )
    with ui.guard():
        people = ui.loaders.new_people(folder, ctx.study["subjects"], cache)
    subject = st.selectbox("Person", people, format_func=lambda x: f"sub-{x}")
    start = st.form_submit_button("Assess against the cohort", type="primary", disabled=not people)
if not people:
    st.info(
        f"Everyone in this dataset folder is already in run {ctx.run_id}'s cohort. To assess a "
        f"newly scanned person, put their dataset (sub-XX/... in the same layout) in a folder "
        f"inside {s.home} and reload this page."
    )
if start and subject:
    with ui.guard():
        try:
            st.session_state["emocore_assess_job"] = jobs.start_assess_job(
                s.registry,
                s.cache,
                ctx.run_id,
                subject,
                bids=folder if subject not in cache.subjects else None,
                annotations=s.annotations,
            )
            st.success(f"Started the assessment of sub-{subject}.")
        except jobs.JobBusyError as exc:
            st.warning(str(exc))

ui.job_monitor(ctx.registry, followed_key="emocore_assess_job")

st.subheader(f"People assessed against run {ctx.run_id}")
assessed = ctx.results.assessed
if not assessed:
    st.caption("Nobody yet.")
found = ui.run_findings(ctx) if assessed else None
for person in assessed:
    with ui.guard():
        result = ctx.results.assessment(person)
    st.markdown(f"#### sub-{person}")
    if result is None:  # removed since the list was read
        st.caption("Its assessment.json is gone; assess the person again.")
        continue
    for design, info in result["designs"].items():
        if info["status"] != "assessed":
            st.caption(f"{design}: {info['reason']}")
            continue
        merged = with_assessment(found, result) if found is not None else None
        if merged is None:
            continue
        ui.finding_block(
            ctx,
            merged,
            merged.headline(person, design),
            subject=person,
            design=design,
            key=f"assess-{person}-{design}",
            summary=person_summary(merged, person, design),
        )
