"""Shared widgets: page header, research notice, error guard, run/subject pickers, captions."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from emocore.errors import EmocoreError
from emocore.models.engine import describe_path
from emocore.reporting import figures
from emocore.runs.registry import Registry, most_complete_first, run_label, run_short_label
from emocore.runs.results import RunResults
from emocore.stats.findings import (
    EXPLORATORY,
    ROLE_CAPTION,
    TEST_CAPTION,
    RunFindings,
    flagged_elsewhere,
    js_sentence,
    measure_label,
    power_note,
    predates_message,
    stability_sentence,
)
from emocore.stats.model_checks import collapse, collapse_sentence
from emocore.stats.summaries import percent
from emocore.ui import loaders
from emocore.ui.brand import notice_text
from emocore.ui.navigation import ensure_app_frame
from emocore.ui.settings import Settings
from emocore.workflows import jobs

__all__ = [
    "collapse_warning",
    "inference_caption",
    "job_monitor",
    "linked_subject",
    "open_run_button",
    "person_labels",
    "plain",
    "RunContext",
    "chance_caption",
    "completed_runs",
    "design_label",
    "design_picker",
    "exploratory_caption",
    "primary_design",
    "primary_first",
    "finding_block",
    "no_findings_note",
    "guard",
    "page",
    "pick_run",
    "run_findings",
    "pct",
    "progress_callback",
    "require_run",
    "research_notice",
    "subject_picker",
]

_RUN_KEY = "emocore_run"
_SUBJECT_KEY = "emocore_subject"
_DESIGN_KEY = "emocore_design"
_PAGE_KEY = "emocore_page"  # the page shown now: {"path", "title"}
_FROM_KEY = "emocore_came_from"  # the page shown before it
_RUN_PAGES_KEY = "emocore_run_pages"  # paths of the pages that showed a run (pick_run)
_OPENED_KEY = "emocore_opened_run"  # {"page", "text"}: open_run_button's note for that page
_URL_WRITTEN_KEY = "emocore_subject_in_url"  # the person subject_picker last put in the address
URL_SUBJECT = "subject"  # the address's person: /subject?subject=10 (or sub-10)
OVERVIEW = "pages/overview.py"


pct = percent  # the one percent format of pages, report and job messages

_LABEL = re.compile(r"[A-Za-z0-9]+")  # a BIDS label: what a person's label may be
_MARKDOWN = re.compile(r"([\\`*_\[\]$|~#])")


def plain(text: object) -> str:
    """``text`` (from an address, the registry or a file) safe inside a Streamlit message: the
    characters Markdown acts on are escaped and line breaks become spaces, so it reads as typed.
    Streamlit already shows HTML tags as text."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


def person_labels(labels: Sequence[object]) -> tuple[list[str], list[str]]:
    """``labels`` split into BIDS subject labels (letters and digits only) and the rest: a
    person is only ever picked, linked or decoded by a valid label."""
    good = [str(x) for x in labels if _LABEL.fullmatch(str(x))]
    return good, [str(x) for x in labels if not _LABEL.fullmatch(str(x))]


def research_notice(*, prominent: bool = False) -> None:
    """The research-use notice of assets/NOTICE.md: in full on the Overview; its first line in
    the sidebar on every page (the whole text there pushed the run and subject pickers out of
    sight and their menus failed to open in a browser test)."""
    text = notice_text()
    if prominent:
        st.warning(text, icon="⚠️")
    st.sidebar.caption(f"⚠️ {text.split(chr(10) + chr(10))[0]}")


@contextmanager
def guard() -> Iterator[None]:
    """Show an EmocoreError as ``st.error`` with its message (no traceback) and stop the page."""
    try:
        yield
    except EmocoreError as exc:
        st.error(str(exc))
        st.stop()


def _current_script() -> str | None:
    """The script of the page being run, as st.navigation registered it.

    Streamlit has no public call for this; it reads the script run context and gives None if
    that ever changes (then "the page the user came from" falls back to the Overview).
    """
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx  # here: private API

        ctx = get_script_run_ctx()
        info = ctx.pages_manager.get_pages().get(ctx.page_script_hash) if ctx else None
        return str(info["script_path"]) if info and info.get("script_path") else None
    except Exception:  # an internal API: never let it break a page
        return None


def _track_page(title: str) -> None:
    """Remember the page shown before this one, for buttons that go back to it."""
    path = _current_script()
    last = st.session_state.get(_PAGE_KEY)
    if path is not None and (last or {}).get("path") != path:
        st.session_state[_FROM_KEY] = last
        st.session_state[_PAGE_KEY] = {"path": path, "title": title.split(" — ")[-1]}


def page(title: str, *, prominent_notice: bool = False) -> Settings:
    """Title, research-use notice and the settings; every page starts with it."""
    ensure_app_frame()  # a cold deep link runs a page without app.py
    _track_page(title)
    st.title(title)
    _opened_notice()
    research_notice(prominent=prominent_notice)
    with guard():
        return loaders.settings()


def collapse_warning(predictions: pd.DataFrame, *, design: str, subject: str | None = None) -> None:
    """Warn when the design's CNN (on ``subject``'s volumes, when given) gives one answer for
    nearly every held-out volume (:mod:`emocore.stats.model_checks`)."""
    found = collapse(predictions, subject=subject)
    if found is None:
        return
    what = (
        f"On sub-{subject}'s volumes, the {design} CNN"
        if subject is not None
        else f"The {design} CNN"
    )
    st.warning(collapse_sentence(found, what=what), icon=":material/warning:")


def chance_caption(split: str, chance: float | None, *, what: str = "", extra: str = "") -> None:
    """The caption under every accuracy number: which split, which chance level."""
    text = f"Split: **{split}** · chance **{pct(chance)}**"
    if what:
        text += f" ({what})"
    st.caption(text + (f" · {extra}" if extra else ""))


def inference_caption(table: pd.DataFrame | None) -> None:
    """Under freshly computed predictions: how long they took and what the fast path did."""
    if table is None or not table.attrs.get("seconds"):
        return
    rate = table.attrs.get("volumes_per_s") or 0
    st.caption(
        f"{len(table):,} volumes in {table.attrs['seconds']:.1f} s ({rate:,.0f} volumes/s) on "
        + describe_path(table.attrs.get("engine", {}))
    )


def progress_callback(bar: Any) -> Callable[[float, str], None]:
    def update(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message[:120])

    return update


# -- runs and subjects -----------------------------------------------------------------------
@dataclass(frozen=True)
class RunContext:
    """The run a page shows: the settings, the registry and the run's results."""

    settings: Settings
    results: RunResults

    @property
    def registry(self) -> Registry:
        return self.results.registry

    @property
    def run_id(self) -> str:
        return self.results.run_id

    @property
    def study(self) -> dict[str, Any]:
        return self.results.study

    @property
    def classes(self) -> list[str]:
        return self.results.classes

    @property
    def designs(self) -> list[str]:
        return self.results.designs

    def headline(self, design: str, model: str = "cnn") -> dict[str, Any]:
        return self.results.headline(design, model)

    @property
    def chance_k(self) -> float:
        return 1.0 / len(self.classes)


def completed_runs(reg: Registry) -> pd.DataFrame:
    """Finished studies and trainings, the most complete first (see :func:`most_complete_first`)."""
    runs = reg.list_runs(status="completed")
    return most_complete_first(runs[runs["kind"].isin(["study", "train"])])


def _pick(
    label: str,
    options: list[str],
    key: str,
    fmt: Callable[[str], str] = str,
    where: Any = None,
    *,
    carry_default: bool = True,
) -> str:
    """A selectbox whose choice is kept in session_state across pages.

    The widget has its own key, seeded from ``key`` (which outlives pages that do not draw the
    widget). An unkeyed selectbox whose ``index`` follows the last choice changes identity with
    every choice, and Streamlit then dropped every second change. With ``carry_default`` False
    only a choice the user made is carried to other pages; until then each page opens on its
    first option.
    """
    where = where or st.sidebar
    widget = f"{key}__widget"
    current = st.session_state.get(key)
    # a change runs the callback (widget -> key) before the script; the script then seeds the
    # widget from key, which is also what carries the choice to the next page
    st.session_state[widget] = current if current in options else options[0]

    def keep() -> None:
        st.session_state[key] = st.session_state[widget]

    choice = where.selectbox(label, options, key=widget, format_func=fmt, on_change=keep)
    if carry_default:
        st.session_state[key] = choice
    return choice


def pick_run(s: Settings) -> RunContext | None:
    """Sidebar run picker; None when the registry holds no finished study (EmocoreError when the
    chosen run's study.json cannot be read)."""
    reg = loaders.registry(s)
    runs = completed_runs(reg) if reg is not None else pd.DataFrame()
    if reg is None or runs.empty:
        return None
    records = {r.id: r._asdict() for r in runs.itertuples()}
    # short enough for the sidebar; the id's end where two would read the same
    labels = {run: run_short_label(r) for run, r in records.items()}
    same = [run for run in labels if list(labels.values()).count(labels[run]) > 1]
    labels.update({run: f"{labels[run]} · {run[-4:]}" for run in same})
    run_id = _pick("Run", list(labels), _RUN_KEY, lambda run: labels.get(run, run))
    st.sidebar.caption(f"Run {run_id}: {run_label(records[run_id])}")
    here = st.session_state.get(_PAGE_KEY)
    if here:
        st.session_state.setdefault(_RUN_PAGES_KEY, set()).add(here["path"])
    results = loaders.run_results(reg, run_id)
    results.study  # noqa: B018 -- read it here: a damaged study.json is named by the picker
    return RunContext(s, results)


def require_run(s: Settings) -> RunContext:
    """Sidebar run picker; stops the page with a clear message when there is no finished run."""
    with guard():
        ctx = pick_run(s)
    if ctx is None:
        st.info(
            f"No finished study in the registry at {s.registry} yet. Build the demo on the "
            "Overview page, or train a model on the Retrain page."
        )
        st.stop()
    return ctx


def _person_in(wanted: str, options: Sequence[str]) -> str | None:
    """``wanted`` ("10", "sub-10", "1" for "01") as one of ``options``, else None."""
    name = wanted.strip().removeprefix("sub-")
    if name in options:
        return name
    if name.isdigit():
        return next((o for o in options if o.isdigit() and int(o) == int(name)), None)
    return None


def linked_subject(options: Sequence[str], *, among: str) -> str | None:
    """The person a link names (``?subject=10`` or ``?subject=sub-10``) when one of ``options``;
    None when the URL names nobody, or someone else: then a warning says who is available
    (``among`` says where the others are, e.g. "in run 2026...")."""
    wanted = st.query_params.get(URL_SUBJECT)
    if not wanted:
        return None
    person = _person_in(wanted, options)
    if person is None:
        asked = plain(wanted if wanted.startswith("sub-") else f"sub-{wanted}")
        st.warning(
            f"The link asks for {asked}, who is not {among}. People available: "
            f"{', '.join(f'sub-{p}' for p in options) or 'none'}. Pick one in the sidebar, or "
            f"use e.g. ?{URL_SUBJECT}={options[0] if options else '01'} in the address."
        )
    return person


def subject_picker(ctx: RunContext, *, where: Any = None, assessed: bool = False) -> str:
    """The run's people; with ``assessed``, also the people assessed against it later.

    A link picks the person (``/subject?subject=10``) and the choice is written back to the
    address, so the address of any page with this picker can be shared."""
    options = list(ctx.study["subjects"])
    if assessed:
        options += [p for p in ctx.results.assessed if p not in options]
    options, odd = person_labels(options)
    if odd:  # a damaged or hand-edited study.json: never picked, linked or decoded
        st.warning(
            f"Run {ctx.run_id} lists {len(odd)} person label(s) that are not BIDS labels (letters "
            f"and digits only), left out here: {', '.join(plain(repr(x)) for x in odd[:5])}. "
            f"Check {ctx.results.folder / 'study.json'}."
        )
    if not options:
        st.info(f"Run {ctx.run_id} holds no person to show.")
        st.stop()

    def label(s: str) -> str:
        return f"sub-{s}" + ("" if s in ctx.study["subjects"] else " (assessed)")

    # the address differs from what this picker last wrote there: a link (or an edited address)
    if st.query_params.get(URL_SUBJECT) != st.session_state.get(_URL_WRITTEN_KEY):
        linked = linked_subject(options, among=f"in run {ctx.run_id}")
        if linked is not None:
            st.session_state[_SUBJECT_KEY] = linked
    choice = _pick("Subject", options, _SUBJECT_KEY, label, where)
    st.query_params[URL_SUBJECT] = choice
    st.session_state[_URL_WRITTEN_KEY] = choice
    return choice


def primary_design(ctx: RunContext) -> str | None:
    """The design of the run's primary analysis (the verdicts'), None if it cannot be named."""
    try:
        return str(ctx.results.primary.design)
    except EmocoreError:  # a study.json without designs: the pages say so elsewhere
        return None


def primary_first(ctx: RunContext, designs: Sequence[str] | None = None) -> list[str]:
    """``designs`` (the run's by default) with the primary analysis' first: pages open on it."""
    designs = list(ctx.designs if designs is None else designs)
    primary = primary_design(ctx)
    return ([primary] if primary in designs else []) + [d for d in designs if d != primary]


def design_label(ctx: RunContext, design: str, *, short: bool = False) -> str:
    """A design as a selector or tab names it: "loso (primary analysis: the verdict)", or
    "single-subject (exploratory: not part of the verdict)"; ``short`` for tabs."""
    if design == primary_design(ctx):
        return f"{design} (primary)" if short else f"{design} (primary analysis: the verdict)"
    return f"{design} (exploratory)" if short else f"{design} ({EXPLORATORY})"


def design_picker(ctx: RunContext, *, where: Any = None, options: list[str] | None = None) -> str:
    """The design to show: the primary analysis first, so every page opens on it; the others
    one click away, labelled exploratory. A design the user picks is carried to the other
    pages; until then each opens on the primary analysis."""
    return _pick(
        "Design",
        primary_first(ctx, options or ctx.designs),
        _DESIGN_KEY,
        lambda d: design_label(ctx, d),
        where or st,
        carry_default=False,
    )


def exploratory_caption(ctx: RunContext, design: str) -> None:
    """Under results of a design that is not the primary analysis: say they are exploratory."""
    if design == primary_design(ctx):
        return
    st.caption(
        f":material/science: **{design}** is {EXPLORATORY}: the verdict above comes from the "
        f"primary analysis ({ctx.results.primary.label}) only.",
    )


# -- single-case findings --------------------------------------------------------------------
def run_findings(ctx: RunContext) -> RunFindings | None:
    """The run's single-case findings; None, with a notice saying why and how to get them, when
    the run predates them (or its metrics.json cannot be read: the error names the file)."""
    try:
        found = ctx.results.findings
    except EmocoreError as exc:
        st.error(str(exc))
        return None
    if not found.available:
        st.info(predates_message(ctx.run_id))
        return None
    return found


def no_findings_note(ctx: RunContext, found: RunFindings, design: str) -> bool:
    """Say so (and return True) when the run recorded no single-case findings of ``design``: a
    run from before them has only its primary analysis' tests, computed when it is opened."""
    if found.has(design):
        return False
    st.info(predates_message(ctx.run_id, design=design))
    return True


def finding_block(
    ctx: RunContext,
    found: RunFindings,
    rows: list[dict[str, Any]],
    *,
    subject: str,
    design: str,
    key: str,
    summary: str | None = None,
    model: str = "cnn",
) -> None:
    """Findings of one person: ``summary`` (e.g. how many tests, how many flagged), each sentence
    with, beside it, the others' values of its measure and the person's marked; instead of the
    summary a power note when too few others; whether the tests are the verdict's (the primary
    analysis) or exploratory; the statistics behind each sentence in an expander; fold
    stability; flags in the run's other, exploratory, analyses."""
    split = found.split(design)
    role = found.role(design, model)
    note = power_note(rows, design=design)
    if note:
        st.info(note)
    elif summary:
        st.markdown(summary)
    for i, row in enumerate(rows):
        left, right = st.columns([2, 3])
        (left.warning if row["flagged"] else left.markdown)(row["sentence"])
        right.plotly_chart(
            figures.single_case_dots(
                found.values(row["design"], row["model"], row["emotion"], row["measure"]),
                subject=subject,
                measure=measure_label(row),
                design=design,
                split=split,
                chance=ctx.chance_k,
            ),
            key=f"{key}-{i}",
        )
    chance_caption(
        split, ctx.chance_k, what=f"1/{len(ctx.classes)} classes", extra=ROLE_CAPTION[role]
    )
    with st.expander("The statistics behind these sentences"):
        for row in rows:
            if row.get("details"):
                st.markdown(f"- **{measure_label(row)}**: {row['details']}")
            js = js_sentence(row)
            if js:
                st.caption(js)
        st.caption(f"{TEST_CAPTION}.")
    st.caption(
        stability_sentence(
            found.stability_of(subject, design), subject=subject, design=design, split=split
        )
    )
    elsewhere = flagged_elsewhere(found, subject, design, model=model)
    if elsewhere:
        st.caption(f":material/science: {elsewhere}")


# -- background jobs -------------------------------------------------------------------------
def job_monitor(reg: Registry, *, followed_key: str, kind: str | None = None) -> None:
    """The running jobs with progress, log and a cancel button (refreshed every 2 s while one
    runs), then the outcome of the job this page started (``st.session_state[followed_key]``;
    with ``kind``, after a reload, the newest background job of that kind in the registry)."""
    with guard():
        was_active = bool(jobs.active_jobs(reg))

    @st.fragment(run_every=2 if was_active else None)
    def live() -> None:
        active = jobs.active_jobs(reg)
        if was_active and not active:
            st.rerun()
        for rec in active:
            # "starting for 9 s — loading PyTorch", then the fold and epoch (jobs.job_status)
            st.progress(rec.progress, text=jobs.job_status(rec))
            if st.button(f"Cancel {rec.id}", key=f"cancel-{rec.id}"):
                with guard():
                    jobs.cancel_job(reg, rec.id)
                st.rerun()
            curves = reg.curves(rec.id)
            if len(curves):
                st.plotly_chart(figures.training_curves(curves), key=f"curves-{rec.id}")
            with st.expander("Job log (last lines)"):
                st.code(jobs.job_log(reg, rec.id, tail=30) or "(empty)")

    st.subheader("Running jobs")
    live()
    if not was_active:
        st.caption("No job is running.")
    followed = st.session_state.get(followed_key)
    if not followed and kind is not None:  # a reload forgot it: the registry has not
        with guard():
            followed = jobs.last_job(reg, kind=kind)
    if followed and not was_active:
        try:
            rec = reg.get_run(followed)
            outcome = jobs.job_outcome(reg, followed)
        except EmocoreError as exc:  # e.g. deleted meanwhile: say so, keep the page
            st.warning(str(exc))
            return
        if rec.status != "completed":
            st.warning(outcome)
            return
        st.success(outcome)
        if rec.kind in ("study", "train"):
            open_run_button(followed, what=run_label(rec.to_dict()))


def open_run_button(run_id: str, *, what: str = "") -> None:
    """A button that makes ``run_id`` the picked run and shows it on the page the user came
    from (if it shows runs), else on the Overview, which says so at its top (``what`` describes
    the run there, e.g. :func:`emocore.runs.registry.run_label`)."""
    here = st.session_state.get(_PAGE_KEY) or {}
    came = st.session_state.get(_FROM_KEY) or {}
    shows_runs = st.session_state.get(_RUN_PAGES_KEY, set())
    target = came if came.get("path") in shows_runs and came.get("path") != here.get("path") else {}
    if st.button(f"Open run {run_id} on {target.get('title') or 'Overview'}", type="primary"):
        st.session_state[_RUN_KEY] = run_id
        st.session_state[_OPENED_KEY] = {
            "page": Path(target.get("path") or OVERVIEW).name,
            "text": f"Now showing run {run_id}"
            + (f" ({what})" if what else "")
            + f", opened from {here.get('title') or 'Retrain'}; the sidebar's Run picks another.",
        }
        st.switch_page(target.get("path") or OVERVIEW)


def _opened_notice() -> None:
    """Say, once, on the page that :func:`open_run_button` switched to, that the run changed."""
    opened = st.session_state.get(_OPENED_KEY)
    path = _current_script()
    if opened and (path is None or Path(path).name == opened["page"]):
        del st.session_state[_OPENED_KEY]
        st.info(opened["text"], icon=":material/swap_horiz:")
