"""Emotion accuracy: subjects x emotions per design, confusion, training curves, CNN vs linear."""

import pandas as pd
import streamlit as st

from emocore import figures, summaries, ui
from emocore.findings import p_is
from emocore.model_checks import largest_confusion
from emocore.ui.tables import CELL_COLUMNS

s = ui.page("Emotion accuracy")
ctx = ui.require_run(s)
with ui.guard():
    metrics = ctx.results.metrics or {}
    curves = ctx.results.table("curves") if ctx.results.has_table("curves") else None

for design, tab in zip(ctx.designs, st.tabs(ctx.designs), strict=True):
    summary = metrics[design]["cnn"]["summary"]
    chance = summary["chance"]["balanced_accuracy_permutation"]
    with tab:
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
                title=f"{design}: recall per subject and emotion",
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

st.subheader("The volumes behind a cell")
c1, c2, c3, c4 = st.columns(4)
design = ui.design_picker(ctx, where=c1)
subject = c2.selectbox("Subject", ctx.study["subjects"], format_func=lambda x: f"sub-{x}")
with ui.guard():
    held = ctx.results.predictions(design)
# open on the person's most frequent error, not on an empty cell
first = largest_confusion(held, subject=subject, classes=ctx.classes)
true = c3.selectbox("True emotion", ctx.classes, index=ctx.classes.index(first[0]) if first else 0)
wrong = largest_confusion(held, subject=subject, classes=ctx.classes, true=true)
pred = c4.selectbox(
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
    f"classes. Recall per emotion in the order {summaries.recall_order(results)}."
)
ui.tuning_block(ctx, key="emotion-accuracy")
