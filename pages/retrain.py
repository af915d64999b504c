"""Retrain: start a training job in the background, follow its progress and curves, cancel it."""

import streamlit as st

from emocore import jobs, ui
from emocore.registry import DESIGNS

s = ui.page("Retrain")
cache, problem = ui.loaders.cache_or_none(s)
if cache is None:
    st.info(f"Nothing to train on: {problem}")
    st.stop()

with st.form("retrain", enter_to_submit=False):
    subjects = st.multiselect(
        "Subjects", cache.subjects, default=cache.subjects, format_func=lambda x: f"sub-{x}"
    )
    c1, c2, c3 = st.columns(3)
    design = c1.selectbox("Design", DESIGNS, index=1)
    split = c2.selectbox(
        "Split",
        ["leave-one-run-out", "random"],
        help="LOSO always leaves one person out; 'random' splits single volumes and is leaky (inflated accuracy).",
    )
    n_folds = c3.number_input("Folds (run groups)", 2, 8, 4)
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input("Epochs", 1, 1000, 10)
    lr = c2.number_input("Learning rate", 1e-5, 0.5, 1e-3, format="%.5f")
    include_none = c3.checkbox("Also decode NONE (6 classes)")
    start = st.form_submit_button("Start training", type="primary")
if start:
    from emocore.experiment import StudyConfig
    from emocore.train import TrainConfig

    with ui.guard():
        config = StudyConfig(designs=(design,), subjects=tuple(subjects) or None, split=split, n_folds=int(n_folds),
                             include_none=include_none, n_permutations=200,
                             train=TrainConfig(epochs=int(epochs), lr=float(lr)))  # fmt: skip
        try:
            st.session_state["emocore_job"] = jobs.start_job(s.registry, s.cache, config)
            st.success(
                f"Started run {st.session_state['emocore_job']}; it lands in the registry at {s.registry}."
            )
        except jobs.JobBusyError as exc:
            st.warning(str(exc))

with ui.guard():  # a damaged registry.sqlite is named, not a traceback
    reg = ui.loaders.registry(s)
if reg is None:
    st.stop()
ui.job_monitor(reg, followed_key="emocore_job")
st.subheader("Recent runs")
st.dataframe(
    reg.list_runs().head(10)[
        ["id", "kind", "status", "design", "split", "progress", "message", "error"]
    ],
    hide_index=True,
)
