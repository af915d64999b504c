"""Column layouts of the dashboard's wide tables, so the columns that matter (95 % interval, p,
"predicted as", a run's status, a volume's probabilities) show without horizontal scrolling in a
1280-px window, and the tuning table shown beside the CNN-vs-linear comparison."""

from __future__ import annotations

from typing import Any

import streamlit as st

from emocore.summaries import tuning_table

__all__ = [
    "CELL_COLUMNS",
    "FLAGGED_COLUMNS",
    "RESULTS_COLUMNS",
    "RUNS_COLUMNS",
    "SCENES_COLUMNS",
    "tuning_block",
]

_Text = st.column_config.TextColumn

#: :func:`emocore.summaries.results_table` (Overview, Emotion accuracy).
RESULTS_COLUMNS: dict[str, Any] = {  # fixed widths, < 800 px in all: no sideways scrolling
    "run": _Text("run", width=145, help="The run's id (`emocore runs`)"),
    "design · split": _Text("design · split", width=195),
    "model": _Text("model", width=55),
    "balanced accuracy": _Text("bal. acc.", width=70, help="Balanced accuracy, held out"),
    "95 % interval": _Text("95 % interval", width=105, help="Block-bootstrap 95 % interval"),
    "p": _Text("p", width=60, help="Permutation test of balanced accuracy"),
    "chance": _Text("chance", width=160, help="Permutation chance · theoretical 1/K"),
    "recall per emotion": _Text("recall per emotion", width=150),
}

#: :func:`emocore.findings.flagged_table` (Overview): the sentence says it all, so it is last;
#: fixed widths, < 800 px in all.
FLAGGED_COLUMNS: dict[str, Any] = {
    "design": _Text("design", width=110),
    "split": None,  # the design names it; the sentence and the run's table too
    "model": _Text("model", width=50),
    "subject": _Text("person", width=60),
    "emotion": None,  # in the measure
    "measure": _Text("measure", width=115),
    "value": _Text("value", width=60),
    "others' range": _Text("others' range", width=95),
    "Holm p": _Text("Holm p", width=60),
    "sentence": _Text("finding", width=235, help="Hover a cell to read the whole sentence"),
}

#: :func:`emocore.summaries.scenes_table` (Misclassified scenes).
SCENES_COLUMNS: dict[str, Any] = {  # in the page's right column (3/5 of ~820 px)
    "where": _Text("run · movie time", width=125),
    "scene": _Text("scene", width=135, help="Scene number (location)"),
    "volumes": st.column_config.NumberColumn("volumes", width=55),
    "predicted as": _Text("predicted as", width=145, help="Most common wrong prediction"),
}


#: :func:`emocore.summaries.runs_table` (Overview's "All runs"): fixed widths, < 780 px in all
#: (an expander's padding leaves a table 784 px at 1280).
RUNS_COLUMNS: dict[str, Any] = {
    "run": _Text("run", width=145, help="The run's id (`emocore runs`)"),
    "kind": _Text("kind", width=60),
    "status": _Text("status", width=115, help="With its progress while it runs"),
    "design · split": _Text("design · split", width=220, help="A study lists its designs"),
    "created": _Text("created (UTC)", width=115),
    "note": _Text("note", width=110, help="A failed run's error, else the job's last message"),
}

#: :func:`emocore.summaries.cell_volumes_table` (Emotion accuracy, "The volumes behind a cell"):
#: fixed widths, < 800 px in all.
CELL_COLUMNS: dict[str, Any] = {
    "where": _Text("run · movie time", width=115),
    "volume": st.column_config.NumberColumn(
        "volume", width=60, help="Volume number in its run: open it in the Brain viewer"
    ),
    "scene": _Text("scene", width=150, help="Scene number (location)"),
    "agreement": _Text("agreement", width=80, help="Share of observers who gave the true label"),
    "P(predicted)": _Text("P(predicted)", width=90, help="The model's probability of its answer"),
    "P(true)": _Text("P(true)", width=70, help="The model's probability of the true emotion"),
    "fold": _Text("fold", width=120, help="The cross-validation fold that predicted the volume"),
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
    widths = {"model": 80, "fold": 130} | {c: 270 for c in table.columns[2:]}
    st.dataframe(
        table,
        hide_index=True,
        height=min(38 + 35 * len(table), 250),
        column_config={c: _Text(c, width=w) for c, w in widths.items()},
    )
    st.caption(
        f"{design}: CNN epochs and the linear baseline's C per outer fold; 'fixed (poster "
        "setting)' = not tuned, 'inner fold(s)' = chosen on the fold's training rows only."
    )
