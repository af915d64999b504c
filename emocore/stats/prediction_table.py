"""Checks and small helpers shared by the functions that read a prediction table
(:mod:`emocore.stats.summaries` describes its columns): a table that lacks columns or rows is
refused with what to do, classes are found when not given, one person's rows are selected, and
the rows are put in time order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from emocore.constants import CLASSES
from emocore.errors import ConfigError

__all__ = [
    "check_table",
    "json_float",
    "resolve_classes",
    "select_subject",
    "sort_in_time",
    "subject_label",
    "subject_rows",
    "subject_run_groups",
]


def check_table(table: pd.DataFrame, required: Sequence[str], what: str) -> None:
    """Refuse anything but a non-empty DataFrame with the ``required`` columns: a ConfigError
    that names ``what`` needed the table and how to fix it."""
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(
            f"{what} needs a prediction table as a pandas DataFrame; got {type(table).__name__}"
        )
    if len(table) == 0:
        raise ConfigError(
            f"{what}: the prediction table is empty; predict at least one volume first "
            "(check that the split's test set is not empty)"
        )
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ConfigError(
            f"{what}: the prediction table lacks the column(s) {missing}; it has "
            f"{list(table.columns)}. Write tables with emocore's prediction step or add them"
        )


def resolve_classes(table: pd.DataFrame, classes: Sequence[str] | None) -> list[str]:
    """``classes`` if given, else the ``prob_<CLASS>`` columns, else the known classes seen."""
    if classes is not None:
        class_list = list(classes)
        if not class_list:
            raise ConfigError("'classes' is empty; pass e.g. emocore.constants.EMOTIONS")
        return class_list
    from_probs = [c[len("prob_") :] for c in table.columns if str(c).startswith("prob_")]
    if from_probs:
        return from_probs
    present = set(table["true"]).union(table["pred"])
    known = [c for c in CLASSES if c in present]
    return known + sorted(str(c) for c in present - set(CLASSES))


def subject_label(subject: str | int) -> str:
    """A subject's label without ``sub-`` ("sub-01" -> "01")."""
    text = str(subject)
    return text[len("sub-") :] if text.startswith("sub-") else text


def subject_rows(table: pd.DataFrame, subject: str | int) -> pd.DataFrame:
    """The rows of one person ("01" or "sub-01"); none when the table has no such person."""
    return table[table["subject"].astype(str) == subject_label(subject)]


def select_subject(table: pd.DataFrame, subject: str | int) -> pd.DataFrame:
    """The rows of one person; a ConfigError naming the people present when there are none."""
    rows = subject_rows(table, subject)
    if rows.empty:
        available = sorted(table["subject"].astype(str).unique())
        raise ConfigError(
            f"subject {subject_label(subject)!r} has no rows in the prediction table; subjects "
            f"present: {available}"
        )
    return rows


def json_float(value: Any) -> float | None:
    """Plain float for JSON; ``NaN`` and infinities become ``None``."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def sort_in_time(table: pd.DataFrame) -> pd.DataFrame:
    """The rows by subject, run and volume (those of the three that the table has)."""
    keys = [c for c in ("subject", "run", "volume") if c in table.columns]
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def subject_run_groups(table: pd.DataFrame) -> np.ndarray:
    """Each row's "subject/run": the groups the labels are circularly shifted within."""
    return (table["subject"].astype(str) + "/" + table["run"].astype(str)).to_numpy()
