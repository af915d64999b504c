"""Everything the dashboard and the report show about one design's held-out predictions.

:func:`evaluate_predictions` wraps :mod:`emocore.stats.summaries` into one JSON-ready dict: the
headline numbers with their split and chance level, per-subject results, seen vs unseen
subjects, misclassification summaries for every subject and emotion, single-case tests of every
subject against the others (:mod:`emocore.stats.single_case`) and how stable each subject's decoding is
across folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from emocore._io import records
from emocore.stats.single_case import ALPHA, FOCUS, atypical_findings, fold_stability
from emocore.stats.summaries import (
    misclassification_summary,
    per_subject_metrics,
    seen_vs_unseen,
    summarize_predictions,
)

__all__ = ["evaluate_predictions"]


def evaluate_predictions(
    table: pd.DataFrame,
    *,
    classes: Sequence[str],
    split: str,
    design: str,
    leaky: bool,
    n_permutations: int = 1000,
    seed: int = 0,
    model: str = "cnn",
    alpha: float = ALPHA,
    procedure: str = "holm",
    focus: Sequence[str] = FOCUS,
) -> dict[str, Any]:
    """Summary (with chance and p-value), per-subject metrics, misclassifications, findings.

    ``findings`` holds every single-case test of every subject (``design``, ``model``,
    ``subject``, ``emotion``, ``measure``, ``value``, ``others_*``, ``statistic``, ``df``,
    ``p``, ``p_adjusted``, ``flagged``, ``js_distance``, ``sentence``; see
    :func:`emocore.stats.single_case.atypical_findings`), ``stability`` each subject's fold-to-fold
    spread of balanced accuracy, and ``alpha`` the level the findings were flagged at.
    ``procedure`` is ``verdict`` for the study's primary analysis (its findings are the
    verdict's tests, in their fixed order; ``role`` ``primary``) and ``holm`` for the rest
    (``role`` ``exploratory``: never part of a verdict).
    """
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
    out["alpha"] = alpha
    out["role"] = "primary" if procedure == "verdict" else "exploratory"
    out["findings"] = records(
        atypical_findings(
            table,
            classes,
            design=design,
            model=model,
            alpha=alpha,
            procedure=procedure,
            focus=focus,
        )
    )
    out["stability"] = records(fold_stability(table, classes))
    return out
