"""Retrain: the study picked in the sidebar, with every setting shown; follow, open or cancel it."""

import streamlit as st

from emocore import ui
from emocore.errors import EmocoreError
from emocore.runs.registry import run_label
from emocore.stats.summaries import runs_table
from emocore.ui.forms import retrain_form
from emocore.ui.tables import RUNS_COLUMNS
from emocore.workflows import jobs

s = ui.page("Retrain")
cache, problem = ui.loaders.cache_or_none(s)
if cache is None:
    st.info(f"Nothing to train on: {problem}")
    st.stop()

with ui.guard():  # a damaged registry.sqlite is named, not a traceback
    ui.loaders.registry(s)
try:  # the study to retrain: the run picked in the sidebar (the most complete one by default)
    ctx = ui.pick_run(s)
except EmocoreError as exc:  # its study.json cannot be read: start from emocore's defaults
    st.warning(f"{exc}. The form below starts from emocore's defaults instead.")
    ctx = None
with ui.guard():
    base = jobs.retrain_defaults(ctx.study if ctx else None)
source = (
    f"run {ctx.run_id} ({run_label(ctx.registry.get_run(ctx.run_id).to_dict())})"
    if ctx
    else "emocore (no finished study yet)"
)
config = retrain_form(base, cache.subjects, source=source)
if config is not None:
    with ui.guard():
        try:
            st.session_state["emocore_job"] = jobs.start_job(s.registry, s.cache, config)
            st.success(
                f"Started run {st.session_state['emocore_job']}; it lands in the registry at {s.registry}."
            )
        except jobs.JobBusyError as exc:
            st.warning(str(exc))

reg = ui.loaders.registry(s)  # None until a first job creates it
if reg is None:
    st.stop()
ui.job_monitor(reg, followed_key="emocore_job", kind="train")  # survives a reload
st.subheader("Recent runs")
st.dataframe(
    runs_table(reg.list_runs().head(10), folder_problem=reg.folder_problem),
    hide_index=True,
    column_config=RUNS_COLUMNS,
)
