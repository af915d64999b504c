"""Overview: first who is flagged and for what (the verdicts of the chosen run's primary
analysis); then where the data comes from, the cohort, the models and their accuracy vs chance,
and, apart and collapsed, the flags of the exploratory designs."""

import pandas as pd
import streamlit as st

from emocore import ui
from emocore.data.prepare import cleaning_sentence
from emocore.device import gpu_summary
from emocore.errors import EmocoreError
from emocore.stats.summaries import family_comparison, results_table, runs_table
from emocore.ui.tables import RUNS_COLUMNS

s = ui.page("emocore — Overview", prominent_notice=True)
if not s.has_cache:
    fresh = not s.home.is_dir() or not any(s.home.iterdir())
    if fresh:
        said = (
            "**There is no data to show yet.** Press **Build the demo** below to make a practice "
            "data set and model (a few minutes), or, to see your own study, ask whoever prepared "
            "its data for the folder and enter it as `home` in `emocore.toml`, then reload this "
            "page."
        )
    elif s.is_demo:
        said = (
            f"**The demo's prepared data is missing** (no `manifest.json` in `{s.cache}`): press "
            "**Build the demo** below to make it again."
        )
    else:
        said = (
            f"**The data folder `{s.home}` holds files but no data prepared for emocore** (no "
            f"`manifest.json` in `{s.cache}`): ask whoever prepared your study's data for its "
            "folder and enter it as `home` in `emocore.toml`, then reload this page."
        )
    st.info(said, icon="ℹ️")
    empty = fresh or s.is_demo
    with st.expander("What is missing (for whoever sets emocore up)"):
        st.markdown("\n".join(f"- {problem}" for problem in s.check()))
    if empty and st.button("Build the demo cohort, cache and model", type="primary"):
        from emocore.workflows import jobs
        from emocore.workflows.demo import build_demo, demo_study_config

        bar = st.progress(0.0, text="starting")
        with ui.guard():
            paths = build_demo(s.home, train=False, progress=ui.progress_callback(bar))
            run_id = jobs.start_job(
                paths["registry"], paths["cache"], demo_study_config(), kind="study"
            )
            st.session_state["demo_job"] = run_id
        st.rerun()
    st.stop()

with ui.guard():  # a damaged registry.sqlite is named, not a traceback
    reg = ui.loaders.registry(s)
try:
    ctx = ui.pick_run(s)
except EmocoreError as exc:  # its study.json cannot be read: named here, the runs listed below
    st.error(str(exc))
    ctx = None
if ctx is not None:  # first, above the fold: who is flagged, for what, in one sentence each
    ui.verdicts_overview(ctx)

source = "Demo cohort (synthetic, ds000113 layout)" if s.is_demo else "Your study's data"
st.subheader("Data")
st.markdown(f"**Data source:** {source}")
with ui.guard():
    cache = ui.loaders.cache(s)
    opts = cache.manifest.get("options", {})
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("People in the cache", len(cache.subjects))
    c2.metric("Volumes per person", len(cache.labels))
    c3.metric("Grid (voxels)", " × ".join(map(str, cache.grid_shape)))
    c4.metric("Hemodynamic lag", f"{opts.get('lag_s', '?')} s")
    st.caption(
        f"Labels: recipe **{opts.get('recipe')}**, observers {opts.get('observers') or 'default'} · "
        f"each run: {cleaning_sentence(opts)}"
    )
with st.expander("Where the data is: folders and cache key"):
    st.markdown(
        f"- home `{s.home}`\n- cache `{s.cache}` (key `{cache.key}`)\n- registry `{s.registry}`"
    )

st.subheader("Models in the registry")
if reg is not None:
    from emocore.workflows import jobs

    for job in jobs.active_jobs(reg.root):
        st.progress(
            job.progress,
            text=f"Training in the background: run {job.id} ({job.kind}) — {job.message or job.status}. Follow it on the Retrain page; reload to refresh.",
        )
if reg is None:
    st.info(
        f"No run registry at {s.registry} yet: train a model on the Retrain page or run `emocore demo --train`."
    )
else:
    rows, comparisons = [], []
    for run_id in ui.completed_runs(reg)["id"]:
        try:
            study = ui.loaders.run_results(reg, run_id).study
        except EmocoreError as exc:
            if ctx is not None or run_id != st.session_state.get("emocore_run"):
                st.error(str(exc))  # the chosen run's is named above
            continue
        k = len(study["classes"])
        comparisons += [(run_id, c) for c in family_comparison(study.get("results", []))]
        rows.append(results_table(study.get("results", []), n_classes=k, run_id=run_id))
    if rows:
        st.dataframe(
            pd.concat(rows, ignore_index=True), hide_index=True, column_config=ui.RESULTS_COLUMNS
        )
        st.caption(
            "Every accuracy is held out and shown with its split and chance level (permutation "
            "and 1/K); p from the permutation test. 'Leaky' splits (random volumes) overstate accuracy."
        )
        for run_id, sentence in comparisons:
            st.markdown(f"Run {run_id}, {sentence}")
    if ctx is not None:
        ui.exploratory_flags(ctx)
    runs = runs_table(reg.list_runs(), folder_problem=reg.folder_problem)
    with st.expander(f"All runs ({len(runs)})"):
        st.dataframe(runs, hide_index=True, column_config=RUNS_COLUMNS)
        st.caption("Newest first; `emocore runs --show <run id>` prints all of a run's fields.")

gpu = gpu_summary()
if gpu["available"]:
    st.success(f"GPU: {gpu['name']} ({gpu.get('memory_gib')} GiB), torch {gpu['torch']}")
else:
    st.info(f"No GPU: inference and training run on the CPU (torch {gpu['torch']}).")
