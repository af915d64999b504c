"""A run's prediction tables, read back whole: what a run records of each table it writes and
the check that a copy read later holds all of it.

A table cut short (a full disk, an interrupted copy) still parses: it just has fewer rows, and
every score computed from it would be about the rows left. :func:`table_rows` is what a study
records in study.json (``tables``); :func:`check_rows` compares a table read back with it (or,
for runs made before it was recorded, with the volume counts of metrics.json). Only pandas is
needed, so the dashboard and the HTML report use it without loading torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from emocore.errors import EmocoreError

__all__ = ["check_rows", "expected_rows", "table_rows"]


def table_rows(frame: pd.DataFrame) -> dict[str, Any]:
    """What a run records of a prediction table it wrote (study.json ``tables``): its rows, in
    all and per design, so a reader can tell a cut-off copy from the file that was written."""
    per = frame["design"].astype(str).value_counts() if "design" in frame.columns else {}
    return {"rows": len(frame), "rows_per_design": {str(d): int(n) for d, n in dict(per).items()}}


def expected_rows(
    study: Mapping[str, Any] | None, metrics: Mapping[str, Any] | None, table: str
) -> dict[str, int] | None:
    """Rows per design that the run wrote to ``table`` ("predictions.tsv" or "baseline.tsv"):
    from study.json's ``tables`` or, for runs made before it was recorded, from the volume
    counts of metrics.json; None when neither says."""
    try:
        recorded = (study or {}).get("tables", {}).get(table, {}).get("rows_per_design")
        if isinstance(recorded, Mapping):
            return {str(d): int(n) for d, n in recorded.items()}
        family = "linear" if table == "baseline.tsv" else "cnn"
        counts = {
            str(design): int(families[family]["summary"]["n_volumes"])
            for design, families in (metrics or {}).items()
            if isinstance(families, Mapping) and family in families
        }
    except (AttributeError, KeyError, TypeError, ValueError):  # an odd file checks nothing
        return None
    return counts or None


def check_rows(path: str | Path, frame: pd.DataFrame, expected: Mapping[str, int] | None):
    """``frame`` (read from ``path``) once it holds every row the run wrote; EmocoreError
    naming the file when it was cut short (a full disk, a partial copy) or rows are missing.

    A file cut inside a row is caught by its missing last newline, one cut between rows by
    the row counts per design in ``expected`` (see :func:`expected_rows`).
    """
    path = Path(path)
    fix = (
        "the file was cut short (a full disk or an interrupted copy?) or edited; restore it "
        "from a backup or re-run the study"
    )
    try:
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            complete = handle.read(1) == b"\n"
    except OSError:
        complete = True  # empty or unreadable: the counts below, or the reader, say so
    if not complete:
        raise EmocoreError(f"{path} ends inside a row: {fix}")
    if expected is None:
        return frame
    found = frame["design"].astype(str).value_counts() if "design" in frame.columns else {}
    found = dict(found)
    differ = {d: (int(found.get(d, 0)), n) for d, n in expected.items() if found.get(d, 0) != n}
    if differ:
        said = ", ".join(f"{d}: {got} of {n}" for d, (got, n) in differ.items())
        raise EmocoreError(
            f"{path} holds {len(frame)} rows but the run wrote {sum(expected.values())} "
            f"({said}): {fix}"
        )
    return frame
