"""What a model's held-out predictions say about the model itself, before anything is read into
one person's errors.

A CNN that answers one emotion for nearly every volume (an undertrained or collapsed model: the
demo's one-epoch models do this) has a balanced accuracy at chance, and every "misclassification"
it makes is that one answer. Its LOVE -> SADNESS confusions then describe the model, not the
person, and a page that shows them without saying so invites the wrong reading.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from emocore.stats.summaries import subject_rows

__all__ = ["COLLAPSE_SHARE", "Collapse", "collapse", "collapse_sentence", "largest_confusion"]

#: A model that gives one answer for at least this share of its held-out volumes has collapsed.
#: With five emotions the most frequent true emotion covers about a third of the volumes
#: (31.4 % in the studyforrest labels), so 90 % is far beyond any honest bias towards it.
COLLAPSE_SHARE = 0.9


class Collapse(NamedTuple):
    label: str  # the one answer
    share: float  # of the held-out volumes given that answer
    n: int  # held-out volumes


def collapse(predictions: pd.DataFrame, *, subject: str | None = None) -> Collapse | None:
    """The one answer a model gives for at least :data:`COLLAPSE_SHARE` of its held-out volumes
    (of ``subject``'s volumes when given), or None when its answers vary."""
    frame = predictions
    if subject is not None and "subject" in frame:
        frame = subject_rows(frame, subject)
    if frame.empty or "pred" not in frame:
        return None
    shares = frame["pred"].value_counts(normalize=True)
    if float(shares.iloc[0]) < COLLAPSE_SHARE:
        return None
    return Collapse(str(shares.index[0]), float(shares.iloc[0]), len(frame))


def collapse_sentence(found: Collapse, *, what: str) -> str:
    """One warning sentence: ``what`` names the model ("the single-subject CNN of sub-01")."""
    return (
        f"{what} answered {found.label} for {100 * found.share:.0f} % of its {found.n} held-out "
        f"volumes: it has not learned to tell the emotions apart, so its errors (such as other "
        f"emotions taken for {found.label}) describe the model, not the person. Train longer "
        "(more epochs, or `--epochs auto`) before reading them."
    )


def largest_confusion(
    predictions: pd.DataFrame, *, subject: str, classes: list[str], true: str | None = None
) -> tuple[str, str] | None:
    """The (true, predicted) pair of different emotions with the most of ``subject``'s held-out
    volumes (with ``true`` that emotion), or None when there is no such error among ``classes``:
    the confusion-matrix cell worth opening first."""
    frame = subject_rows(predictions, subject)
    if true is not None:
        frame = frame[frame["true"] == true]
    wrong = frame[(frame["true"] != frame["pred"]) & frame["true"].isin(classes)]
    wrong = wrong[wrong["pred"].isin(classes)]
    if wrong.empty:
        return None
    true, pred = wrong.groupby(["true", "pred"]).size().idxmax()
    return str(true), str(pred)
