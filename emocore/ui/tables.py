"""Column layouts of the dashboard's wide tables, so the columns that matter (95 % interval, p,
"predicted as", a run's status, a volume's probabilities) show without horizontal scrolling in a
1280-px window, and the tuning table shown beside the CNN-vs-linear comparison."""

from __future__ import annotations

from typing import Any

import streamlit as st

from emocore.stats.summaries import tuning_table

__all__ = [
    "CELL_COLUMNS",
    "FLAGGED_COLUMNS",
    "VERDICT_COLUMNS",
    "PERSON_COLUMNS",
    "RESULTS_COLUMNS",
    "RUNS_COLUMNS",
    "SCENES_COLUMNS",
    "tuning_block",
]

_Text = st.column_config.TextColumn

#: :func:`emocore.stats.summaries.results_table` (Overview, Emotion accuracy): fixed widths, < 800 px
#: in all, each wide enough for its longest realistic cell and its header
#: (tests/app/test_tables.py estimates both).
RESULTS_COLUMNS: dict[str, Any] = {
    "run": _Text("run", width=159, help="The run's id (`emocore runs`)"),
    "design · split": _Text(
        "design · split",
        width=223,
        help="The design, then who was held out: leave-one-run-out, run-wise k-fold (k groups "
        "of runs), leave-one-subject-out; random volumes are leaky (overstate accuracy)",
    ),
    "model": _Text("model", width=56),
    "balanced accuracy": _Text("bal. acc.", width=74, help="Balanced accuracy, held out"),
    "95 % interval": _Text(
        "95 % CI",
        width=86,
        help="95 % interval of the balanced accuracy, in %: people and runs resampled "
        "(one person: their runs)",
    ),
    "p": _Text("p", width=64, help="Permutation test of balanced accuracy"),
    "chance": _Text(
        "chance",
        width=138,
        help="Permutation chance (balanced accuracy with the labels shifted in time, each run by "
        "one shift common to everybody, who all heard the same movie), then the theoretical "
        "chance 1/K for K emotions",
    ),
    "recall per emotion": _Text(
        "correct per emotion",
        width=146,
        help="Share of each emotion's volumes decoded correctly (recall), in the order named below",
    ),
}

#: :func:`emocore.stats.findings.flagged_table` (Overview's exploratory flags): the finding in words
#: ("LOVE decoded as SADNESS") with its numbers; the whole sentence is too long for a cell, so
#: it is hidden here and printed on the Subject and Misclassified scenes pages. Fixed widths,
#: < 800 px in all.
FLAGGED_COLUMNS: dict[str, Any] = {
    "design": _Text("design", width=110),
    "split": None,  # the design names it; the run's table too
    "model": _Text("model", width=56),
    "subject": _Text("person", width=60),
    "emotion": None,  # in the finding
    "finding": _Text(
        "finding",
        width=290,
        help="What was atypical: an emotion's volumes decoded as another, an emotion decoded "
        "correctly less often, or a lower balanced accuracy. Open the person on the Subject or "
        "Misclassified scenes page for the whole sentence and its statistics",
    ),
    "measure": None,  # the finding says it in words
    "value": _Text("value", width=64, help="The person's rate"),
    "others' range": _Text("others' range", width=104, help="Lowest–highest of the others"),
    "adjusted p": _Text(
        "adjusted p",
        width=86,
        help="p of the one-sided test, adjusted for the person's other tests: Holm within the "
        "design in exploratory analyses, the verdict's fixed order in the primary analysis",
    ),
    "sentence": None,  # too long for a cell: the Subject and Misclassified pages print it
}

#: :func:`emocore.stats.findings.verdict_table` (Overview, first thing under the title): who is
#: flagged and for what; the sentence is printed under the table, the subject is in the person.
VERDICT_COLUMNS: dict[str, Any] = {
    "person": _Text("person", width=64),
    "verdict": _Text(
        "verdict",
        width=134,
        help="From the primary analysis only, tested in an order fixed in advance: the chance "
        "of flagging a typical person for anything is at most α",
    ),
    "for what": _Text(
        "for what",
        width=600,
        help="The atypical findings in words (the first two, the most specific first); the "
        "sentence under the table gives them all, with the numbers",
    ),
    "sentence": None,  # printed in full under the table
    "subject": None,  # the person column names them
}

#: :func:`emocore.stats.findings.person_table` (Subject's "All tests", in an expander): fixed
#: widths, < 780 px in all.
PERSON_COLUMNS: dict[str, Any] = {
    "emotion": None,  # the measure names it ("LOVE decoded correctly", "LOVE decoded as SADNESS")
    "measure": _Text("measure", width=239),
    "value": _Text("value", width=64, help="The person's rate"),
    "others' mean": _Text("others' mean", width=102),
    "others' range": _Text("others' range", width=104, help="Lowest–highest of the others"),
    "others": None,  # the same for every test of the person: the summary above names it
    "t": _Text(
        "t",
        width=56,
        help="Crawford-Howell t of the person's own rate (one-sided: worse than the others), "
        "with the number of others minus 1 degrees of freedom",
    ),
    "df": None,  # the number of others minus 1: the summary above names the others
    "p": _Text("p", width=64),
    "adjusted p": _Text(
        "adjusted p",
        width=86,
        help="Adjusted for the person's other tests: the verdict's fixed order in the primary "
        "analysis, Holm in an exploratory one",
    ),
    "flagged": _Text("flagged", width=64, help="Atypical at the run's α (adjusted p below it)"),
}

#: :func:`emocore.stats.summaries.scenes_table` (Misclassified scenes), in the page's right column
#: (3/5 of ~820 px, about 480 px): fixed widths, < 480 px in all.
SCENES_COLUMNS: dict[str, Any] = {
    "where": _Text(
        "run · start",
        width=112,
        help="Run, then the movie time of the span's first volume (a span is consecutive "
        "volumes: n says how long it lasts)",
    ),
    "scene": _Text("scene", width=178, help="Scene number (location)"),
    "volumes": st.column_config.NumberColumn(
        "n", width=40, help="Misclassified volumes in the span"
    ),
    "predicted as": _Text("predicted as", width=148, help="Most common wrong prediction"),
}


#: :func:`emocore.stats.summaries.runs_table` (Overview's "All runs"): fixed widths, < 780 px in all
#: (an expander's padding leaves a table 784 px at 1280).
RUNS_COLUMNS: dict[str, Any] = {
    "run": _Text("run", width=159, help="The run's id (`emocore runs`)"),
    "kind": _Text("kind", width=72),
    "status": _Text("status", width=112, help="With its progress while it runs"),
    "design · split": _Text("design · split", width=244, help="A study lists its designs"),
    "created": _Text("created (UTC)", width=126),
    "note": _Text("note", width=66, help="A failed run's error, else the job's last message"),
}

#: :func:`emocore.stats.summaries.cell_volumes_table` (Emotion accuracy, "The volumes behind a cell"):
#: fixed widths, < 800 px in all.
CELL_COLUMNS: dict[str, Any] = {
    "where": _Text("run · movie time", width=126),
    "volume": st.column_config.NumberColumn(
        "volume", width=64, help="Volume number in its run: open it in the Brain viewer"
    ),
    "scene": _Text("scene", width=180, help="Scene number (location)"),
    "agreement": _Text("agreement", width=86, help="Share of observers who gave the true label"),
    "P(predicted)": _Text("P(predicted)", width=96, help="The model's probability of its answer"),
    "P(true)": _Text("P(true)", width=64, help="The model's probability of the true emotion"),
    "fold": _Text("fold", width=104, help="The cross-validation fold that predicted the volume"),
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
