"""The verdict on one person, as every page shows it first (see :mod:`emocore.stats.verdict`)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from emocore.data.synthetic import planted_subjects
from emocore.errors import EmocoreError
from emocore.stats.findings import (
    EXPLORATORY,
    ROLE_CAPTION,
    TEST_CAPTION,
    RunFindings,
    flagged_table,
    no_evidence_line,
    person_summary,
    run_summary,
    verdict_emotion,
    verdict_table,
    with_assessment,
)
from emocore.stats.verdict import Primary, planted_note, verdict_details
from emocore.ui import loaders
from emocore.ui.tables import FLAGGED_COLUMNS, VERDICT_COLUMNS
from emocore.ui.widgets import RunContext, finding_block, guard, run_findings

__all__ = [
    "verdict_banner",
    "verdicts_overview",
    "exploratory_flags",
    "assessment_block",
    "primary_caption",
    "opening_emotion",
    "EXPLORATORY",
]

#: How many flagged people's sentences the Overview prints under its table.
_SENTENCES = 3


def primary_caption(primary: Primary) -> str:
    """What the primary analysis is and why, in one line."""
    why = primary.to_dict()["why"]
    if primary.how == "older run":  # to_dict gives "chosen with --primary" for it: the default's
        why = Primary(primary.design, primary.model).to_dict()["why"]
        why = "this run predates named primary analyses, so the default is used: " + why
    return f"Primary analysis, named before the results: {primary.label} ({why})."


def _planted(ctx: RunContext) -> list[str] | None:
    cache, _ = loaders.cache_or_none(ctx.settings)
    if cache is None:
        return None
    root = cache.source_path("root")  # older manifests stored it relative
    return planted_subjects(root) if root is not None else None


def verdict_banner(ctx: RunContext, subject: str) -> dict[str, Any] | None:
    """The person's verdict: the sentence (flagged in a warning box, otherwise an information
    box, never a green "all clear"), the primary analysis, a note on planted people of a
    synthetic cohort, and the statistics behind it in an expander. Returns the verdict."""
    try:
        verdict = ctx.results.verdict(subject)
        primary = ctx.results.primary
    except EmocoreError as exc:
        st.error(str(exc))
        return None
    st.markdown(f"#### Verdict on sub-{subject}")
    if verdict is None and subject in ctx.results.assessed:
        st.info(
            f"sub-{subject} was assessed against run {ctx.run_id} before assessments gave a "
            "verdict: assess the person again (replacing the earlier assessment) to get one."
        )
        return None
    if verdict is None:
        st.info(
            f"sub-{subject} has no verdict in run {ctx.run_id}: its primary analysis "
            f"({primary.label}) holds no held-out predictions of this person."
        )
        return None
    if verdict["status"] == "flagged":
        st.warning(verdict["sentence"], icon="⚠️")
    else:
        st.info(verdict["sentence"], icon="ℹ️")
    note = planted_note(_planted(ctx), subject)
    if note:
        st.caption(note)
    st.caption(primary_caption(primary) + f" Other designs are {EXPLORATORY}.")
    with st.expander("How the verdict was tested, and what it could have found"):
        st.markdown(verdict_details(verdict))
    return verdict


def opening_emotion(ctx: RunContext, subject: str) -> str | None:
    """The emotion a page about ``subject`` opens on: their verdict's first flagged emotion,
    else (no evidence) LOVE, the clinical question's first; None without a tested verdict."""
    try:
        verdict = ctx.results.verdict(subject)
    except EmocoreError:  # the banner above has said what is wrong
        return None
    return verdict_emotion(verdict, ctx.classes)


def verdicts_overview(ctx: RunContext) -> None:
    """The Overview's first section: who the primary analysis flags and for what (a table and
    each flagged person's sentence), the people with no evidence of atypical decoding in one
    line with what the test could have found, the planted people of a synthetic cohort, and
    what the primary analysis is."""
    try:
        verdicts = ctx.results.verdicts
        primary = ctx.results.primary
    except EmocoreError as exc:
        st.error(str(exc))
        return
    st.subheader(f"Verdicts of run {ctx.run_id}: who is flagged, for what")
    if not verdicts:
        st.info(
            f"Run {ctx.run_id} has no verdicts: its primary analysis ({primary.label}) holds no "
            "held-out predictions."
        )
        return
    flagged = verdict_table(verdicts, status="flagged")
    alpha = verdicts[0].get("alpha")
    if len(flagged):
        st.dataframe(flagged, hide_index=True, column_config=VERDICT_COLUMNS)
        for sentence in flagged["sentence"].head(_SENTENCES):
            st.warning(sentence, icon="⚠️")
        if len(flagged) > _SENTENCES:
            st.caption(
                f"{len(flagged) - _SENTENCES} more flagged people: each person's sentence leads "
                "every page about them."
            )
    elif any(v["status"] != "not tested" for v in verdicts):
        st.markdown(f"**Nobody is flagged** in the primary analysis at α = {alpha:g}.")
    line = no_evidence_line(verdicts)
    if line:
        st.info(line, icon="ℹ️")
    untested = [v for v in verdicts if v["status"] == "not tested"]
    if untested:
        who = ", ".join(f"sub-{v['subject']}" for v in untested)
        st.info(f"Not tested: {who}. {untested[0]['sentence']}", icon="ℹ️")
    note = planted_note(_planted(ctx))
    if note:
        st.caption(note)
    st.caption(
        primary_caption(primary) + " Every page about a person leads with their verdict. "
        f"Other designs are {EXPLORATORY}; their flags are listed apart, below."
    )


def exploratory_flags(ctx: RunContext) -> None:
    """The run's flags in its other designs and model families, in a collapsed expander of
    their own: labelled exploratory, never part of a verdict."""
    found = run_findings(ctx)
    if found is None:
        return
    flagged = flagged_table(found, role="exploratory")
    with st.expander(f"Exploratory flags in other designs ({len(flagged)}): {EXPLORATORY}"):
        st.markdown(run_summary(found, role="exploratory"))
        if len(flagged):
            st.dataframe(flagged, hide_index=True, column_config=FLAGGED_COLUMNS)
        st.caption(f"{ROLE_CAPTION['exploratory']}. {TEST_CAPTION}.")


def assessment_block(ctx: RunContext, found: RunFindings | None, person: str) -> None:
    """A person assessed against the run: their verdict first, then each design's tests (the
    primary analysis', then the exploratory ones, labelled)."""
    verdict_banner(ctx, person)
    with guard():
        result = ctx.results.assessment(person)
    if result is None:  # removed since the list was read
        st.caption("Its assessment.json is gone; assess the person again.")
        return
    merged = with_assessment(found, result) if found is not None else None
    designs = sorted(result["designs"].items(), key=lambda d: d[1].get("role") != "primary")
    for design, info in designs:
        primary = info.get("role", "primary" if merged and merged.is_primary(design) else "")
        what = "the verdict's tests" if primary == "primary" else EXPLORATORY
        if info["status"] != "assessed":
            st.caption(f"{design} ({what}): {info['reason']}")
            continue
        if merged is None:
            continue
        st.markdown(f"**{design}** ({what})")
        finding_block(
            ctx,
            merged,
            merged.headline(person, design),
            subject=person,
            design=design,
            key=f"assess-{person}-{design}",
            summary=person_summary(merged, person, design),
        )
