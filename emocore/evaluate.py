"""Everything the dashboard and the report show about one design's held-out predictions.

:func:`evaluate_predictions` wraps :mod:`emocore.summaries` into one JSON-ready dict: the
headline numbers with their split and chance level, per-subject results, seen vs unseen
subjects, misclassification summaries for every subject and emotion, and atypicality scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from emocore.summaries import (
    atypicality,
    misclassification_summary,
    per_subject_metrics,
    seen_vs_unseen,
    summarize_predictions,
)

__all__ = ["evaluate_predictions", "records"]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts (NaN -> None)."""
    out = []
    for row in frame.to_dict("records"):
        out.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
    return out


def evaluate_predictions(
    table: pd.DataFrame,
    *,
    classes: Sequence[str],
    split: str,
    design: str,
    leaky: bool,
    n_permutations: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Summary (with chance and p-value), per-subject metrics, misclassifications, atypicality."""
    classes = list(classes)
    out: dict[str, Any] = {
        "summary": summarize_predictions(
            table,
            classes=classes,
            split=split,
            design=design,
            leaky=leaky,
            n_permutations=n_permutations,
            n_boot=n_permutations,
            seed=seed,
        ),
        "per_subject": records(per_subject_metrics(table, classes=classes)),
    }
    if "seen" in table.columns:
        out["seen_vs_unseen"] = records(seen_vs_unseen(table, classes=classes))
    subjects = sorted(table["subject"].unique())
    out["misclassification"] = [
        misclassification_summary(table, s, e) for s in subjects for e in classes
    ]
    out["atypicality"] = records(atypicality(table, classes)) if len(subjects) > 1 else []
    return out
