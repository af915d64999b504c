"""Assess a new person: someone scanned after the study, tested against the study's cohort with
its primary analysis; the person's verdict first, as on every page about a person."""

import streamlit as st

from emocore import ui
from emocore.workflows import assess, jobs

s = ui.page("Assess a new person")
ctx = ui.require_run(s)
st.markdown(
    f"Add a person who was **not** in run **{ctx.run_id}**'s cohort and test them against it "
    f"with the run's primary analysis ({ctx.results.primary.label}): the run's stored "
    "leave-one-subject-out models decode them (none saw the person), and their tests run in the "
    "verdict's order fixed in advance. The run's other designs can be added, as exploratory "
    "tests outside the verdict. The cohort's models are never changed."
)
cache, problem = ui.loaders.cache_or_none(s)
if cache is None:
    st.info(f"No cache to add the person to: {problem}")
    st.stop()
in_cache = set(cache.subjects)
with ui.guard():
    folders = assess.dataset_folders(s.home, cache)
if not folders:
    st.info(
        f"No folder inside {s.home} (the data root) holds BOLD runs "
        "(sub-XX/[ses-*/]func/*_bold.nii.gz, or the same below derivatives/*/). Put the "
        "person's dataset there and reload this page."
    )
    st.stop()
with st.form("assess", enter_to_submit=False):
    folder = st.selectbox(
        "Dataset folder (inside the data root)",
        folders,
        format_func=lambda p: str(p.relative_to(s.home.resolve())),
    )
    with ui.guard():
        people = ui.loaders.new_people(folder, ctx.study["subjects"], cache)
    among = f"among this folder's people outside run {ctx.run_id}'s cohort"
    linked = ui.linked_subject(people, among=among) if people else None  # ?subject=11
    subject = st.selectbox(
        "Person",
        people,
        index=people.index(linked) if linked else 0,
        format_func=lambda x: f"sub-{x}",
    )
    exploratory = st.checkbox(
        f"Also test the run's other designs ({ui.EXPLORATORY})",
        help="Trains the person's own single-subject model when the run has that design: slower.",
    )
    start = st.form_submit_button("Assess against the cohort", type="primary", disabled=not people)
if not people:
    st.info(
        f"Everyone in this dataset folder is already in run {ctx.run_id}'s cohort. To assess a "
        f"newly scanned person, put their dataset (sub-XX/... in the same layout) in a folder "
        f"inside {s.home} and reload this page."
    )


def start_job(person: str, *, force: bool) -> None:
    with ui.guard():
        try:
            st.session_state["emocore_assess_job"] = jobs.start_assess_job(
                s.registry,
                s.cache,
                ctx.run_id,
                person,
                bids=folder if person not in in_cache else None,
                annotations=s.annotations,
                force=force,
                exploratory=exploratory,
            )
            st.success(f"Started the assessment of sub-{person}.")
        except jobs.JobBusyError as exc:
            st.warning(str(exc))


already = bool(subject) and subject in ctx.results.assessed
if already:  # never assessed twice by accident: the earlier verdict stands until replaced
    st.info(
        f"sub-{subject} was already assessed against run {ctx.run_id}: the verdict below is that "
        "assessment's (assess again to replace it).",
        icon="ℹ️",
    )
    if st.button(f"Assess sub-{subject} again, replacing the earlier assessment"):
        start_job(subject, force=True)
elif start and subject:
    start_job(subject, force=False)

found = ui.run_findings(ctx) if ctx.results.assessed else None
if already:
    ui.assessment_block(ctx, found, subject)

ui.job_monitor(ctx.registry, followed_key="emocore_assess_job")

others = [p for p in ctx.results.assessed if not (already and p == subject)]
st.subheader(f"{'Other people' if already else 'People'} assessed against run {ctx.run_id}")
if not others:
    st.caption("Nobody yet." if not already else "Nobody else.")
for person in others:
    ui.assessment_block(ctx, found, person)
