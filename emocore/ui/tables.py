"""Column layouts of the dashboard's wide tables, so the columns that matter (95 % interval, p,
"predicted as") show without horizontal scrolling in a 1280-px window, and the tuning table
shown beside the CNN-vs-linear comparison."""

from __future__ import annotations

from typing import Any

import streamlit as st

from emocore.summaries import tuning_table

__all__ = ["FLAGGED_COLUMNS", "RESULTS_COLUMNS", "SCENES_COLUMNS", "tuning_block"]

_Text = st.column_config.TextColumn

#: :func:`emocore.summaries.results_table` (Overview, Emotion accuracy).
RESULTS_COLUMNS: dict[str, Any] = {
    "run": _Text("run", width="small", help="The run's id (`emocore runs`)"),
    "design · split": _Text("design · split", width="medium"),
    "model": _Text("model", width=60),
    "balanced accuracy": _Text("bal. acc.", width=70, help="Balanced accuracy, held out"),
    "95 % interval": _Text("95 % interval", width=100, help="Block-bootstrap 95 % interval"),
    "p": _Text("p", width=55, help="Permutation test of balanced accuracy"),
    "chance": _Text("chance", width="medium", help="Permutation chance · theoretical 1/K"),
    "recall per emotion": _Text("recall per emotion", width="medium"),
}

#: :func:`emocore.findings.flagged_table` (Overview): the sentence says it all, so it is last.
FLAGGED_COLUMNS: dict[str, Any] = {
    "design": _Text("design", width="small"),
    "split": None,  # the design names it; the sentence and the run's table too
    "model": _Text("model", width=50),
    "subject": _Text("person", width=60),
    "emotion": None,  # in the measure
    "measure": _Text("measure", width="small"),
    "value": _Text("value", width=60),
    "others' range": _Text("others' range", width=95),
    "Holm p": _Text("Holm p", width=60),
    "sentence": _Text("finding", width="large"),
}

#: :func:`emocore.summaries.scenes_table` (Misclassified scenes).
SCENES_COLUMNS: dict[str, Any] = {
    "where": _Text("run · movie time", width="small"),
    "scene": _Text("scene", width="small"),
    "volumes": st.column_config.NumberColumn("volumes", width=60),
    "predicted as": _Text("predicted as", width="medium", help="Most common wrong prediction"),
}


def tuning_block(ctx: Any, *, key: str) -> None:
    """What each outer fold used per model family (CNN epochs, linear C) for one design."""
    study = ctx.study
    designs = [d for d in ctx.designs if (study.get("tuning") or {}).get(d)]
    st.markdown("**What each outer fold used**")
    if not designs:
        st.caption(
            "This run was recorded before studies kept their per-fold settings: it trained with "
            "the study's fixed settings (see its config)."
        )
        return
    design = (
        designs[0]
        if len(designs) == 1
        else st.selectbox("Design", designs, key=f"{key}-tuning-design")
    )
    table = tuning_table(study, design)
    st.dataframe(table, hide_index=True, height=min(36 + 35 * len(table), 250))
    st.caption(
        f"{design}: CNN epochs and the linear baseline's C per outer fold; 'fixed (poster "
        "setting)' = not tuned, 'inner fold(s)' = chosen on the fold's training rows only."
    )
