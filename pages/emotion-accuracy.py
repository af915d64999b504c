"""Emotion accuracy: the person's verdict first; then subjects x emotions per design (the primary
analysis first, the others exploratory), confusion, training curves, CNN vs linear."""

import pandas as pd
import streamlit as st

from emocore import ui
from emocore.reporting import figures
from emocore.stats import summaries
from emocore.stats.findings import p_is
from emocore.stats.model_checks import largest_confusion
from emocore.ui.tables import CELL_COLUMNS

s = ui.page("Emotion accuracy")
ctx = ui.require_run(s)
subject = ui.subject_picker(ctx)  # the person of the verdict and of the cell table below
ui.verdict_banner(ctx, subject)
with ui.guard():
    metrics = ctx.results.metrics or {}
    curves = ctx.results.table("curves") if ctx.results.has_table("curves") else None

designs = ui.primary_first(ctx)  # the primary analysis' tab first, open
tabs = st.tabs([ui.design_label(ctx, d, short=True) for d in designs])
for design, tab in zip(designs, tabs, strict=True):
    summary = metrics[design]["cnn"]["summary"]
    chance = summary["chance"]["balanced_accuracy_permutation"]
    with tab:
        ui.exploratory_caption(ctx, design)
        with ui.guard():
            ui.collapse_warning(ctx.results.predictions(design), design=design)
        c1, c2 = st.columns(2)
        c1.metric("Balanced accuracy (CNN, held out)", ui.pct(summary["balanced_accuracy"]))
        with c1:
            ui.chance_caption(
                summary["split"],
                chance,
                what="permutation",
                extra=f"{p_is(summary['p_value']['balanced_accuracy'])}, "
                f"{summary['n_volumes']} volumes",
            )
        c2.metric("Accuracy", ui.pct(summary["accuracy"]))
        with c2:
            ui.chance_caption(
                summary["split"], summary["chance"]["accuracy_majority"], what="majority class"
            )
        per_subject = pd.DataFrame(metrics[design]["cnn"]["per_subject"])
        st.plotly_chart(
            figures.accuracy_heatmap(
                per_subject,
                ctx.classes,
                split=summary["split"],
                chance=ctx.chance_k,
                title=f"{design}: share decoded correctly, per person and emotion",
            ),
            key=f"heatmap-{design}",
        )
        st.plotly_chart(
            figures.confusion_figure(
                summary["confusion"],
                summary["classes"],
                split=summary["split"],
                chance=ctx.chance_k,
                title=f"{design}: confusion",
            ),
            key=f"confusion-{design}",
        )

st.subheader(f"The volumes behind a cell: sub-{subject} (pick the person in the sidebar)")
c1, c2, c3 = st.columns([2, 1, 1])  # room for "single-subject (exploratory: ...)"
design = ui.design_picker(ctx, where=c1)
ui.exploratory_caption(ctx, design)
with ui.guard():
    held = ctx.results.predictions(design)
# open on the person's most frequent error, not on an empty cell
first = largest_confusion(held, subject=subject, classes=ctx.classes)
true = c2.selectbox("True emotion", ctx.classes, index=ctx.classes.index(first[0]) if first else 0)
wrong = largest_confusion(held, subject=subject, classes=ctx.classes, true=true)
pred = c3.selectbox(
    "Predicted as",
    ctx.classes,
    index=ctx.classes.index(wrong[1])
    if wrong
    else (ctx.classes.index(true) + 1) % len(ctx.classes),
)
cell = summaries.cell_volumes_table(held, subject=subject, true=true, pred=pred)
st.dataframe(cell, hide_index=True, height=220, column_config=CELL_COLUMNS)
ui.chance_caption(
    ctx.headline(design).get("split", "?"),
    ctx.chance_k,
    extra=f"{len(cell)} volumes; open one in the Brain viewer",
)

st.subheader("Training curves")
ui.training_curves_block(ctx, metrics, curves)

st.subheader("CNN vs linear baseline (same folds)")
results = ctx.study.get("results", [])
st.plotly_chart(figures.model_comparison(results))
st.dataframe(
    summaries.results_table(results, n_classes=len(ctx.classes), recall=True),
    hide_index=True,
    column_config=ui.RESULTS_COLUMNS,
)
st.caption(
    f"Held out; p from the permutation test; chance: permutation and 1/{len(ctx.classes)} "
    f"classes. Share of each emotion decoded correctly (recall), in the order "
    f"{summaries.recall_order(results)}."
)
ui.tuning_block(ctx, key="emotion-accuracy")
