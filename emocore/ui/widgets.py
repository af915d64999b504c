"""Shared widgets: page header, research notice, error guard, run/subject pickers, captions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from emocore.engine import describe_path
from emocore.errors import EmocoreError
from emocore.registry import Registry
from emocore.report import RESEARCH_NOTICE
from emocore.settings import Settings
from emocore.ui import loaders

__all__ = [
    "inference_caption",
    "RunContext",
    "chance_caption",
    "completed_runs",
    "design_picker",
    "guard",
    "page",
    "pct",
    "progress_callback",
    "require_run",
    "research_notice",
    "subject_picker",
]

_RUN_KEY = "emocore_run"
_SUBJECT_KEY = "emocore_subject"
_DESIGN_KEY = "emocore_design"


def pct(x: Any) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if value != value else f"{100 * value:.1f} %"


def research_notice(*, prominent: bool = False) -> None:
    if prominent:
        st.warning(RESEARCH_NOTICE, icon="⚠️")
    else:
        st.sidebar.caption(f"⚠️ {RESEARCH_NOTICE}")


@contextmanager
def guard() -> Iterator[None]:
    """Show an EmocoreError as ``st.error`` with its message (no traceback) and stop the page."""
    try:
        yield
    except EmocoreError as exc:
        st.error(str(exc))
        st.stop()


def page(title: str, *, prominent_notice: bool = False) -> Settings:
    """Title, research-use notice and the settings; every page starts with it."""
    st.title(title)
    research_notice(prominent=prominent_notice)
    with guard():
        return loaders.settings()


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
    settings: Settings
    registry: Registry
    run_id: str
    study: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return list(self.study["classes"])

    @property
    def designs(self) -> list[str]:
        return [d for d in self.study["config"]["designs"]]

    def headline(self, design: str, model: str = "cnn") -> dict[str, Any]:
        rows = [
            r
            for r in self.study.get("results", [])
            if r["design"] == design and r["model"] == model
        ]
        return rows[0] if rows else {}

    @property
    def chance_k(self) -> float:
        return 1.0 / len(self.classes)


def completed_runs(reg: Registry) -> pd.DataFrame:
    runs = reg.list_runs(status="completed")
    return runs[runs["kind"].isin(["study", "train"])]


def _pick(
    label: str, options: list[str], key: str, fmt: Callable[[str], str] = str, where: Any = None
) -> str:
    """A selectbox whose choice is kept in session_state across pages."""
    where = where or st.sidebar
    current = st.session_state.get(key)
    index = options.index(current) if current in options else 0
    choice = where.selectbox(label, options, index=index, format_func=fmt)
    st.session_state[key] = choice
    return choice


def require_run(s: Settings) -> RunContext:
    """Sidebar run picker; stops the page with a clear message when there is no finished run."""
    with guard():
        reg = loaders.registry(s)
        runs = completed_runs(reg) if reg is not None else pd.DataFrame()
    if reg is None or runs.empty:
        st.info(
            f"No finished study in the registry at {s.registry} yet. Build the demo on the "
            "Overview page, or train a model on the Retrain page."
        )
        st.stop()
    labels = {r.id: f"{r.id} · {r.kind} · {r.design or 'all designs'}" for r in runs.itertuples()}
    run_id = _pick("Run", list(labels), _RUN_KEY, labels.get)
    with guard():
        study = loaders.study(reg, run_id)
    return RunContext(s, reg, run_id, study)


def subject_picker(ctx: RunContext, *, where: Any = None) -> str:
    return _pick("Subject", list(ctx.study["subjects"]), _SUBJECT_KEY, lambda s: f"sub-{s}", where)


def design_picker(ctx: RunContext, *, where: Any = None, options: list[str] | None = None) -> str:
    return _pick("Design", options or ctx.designs, _DESIGN_KEY, str, where or st)
