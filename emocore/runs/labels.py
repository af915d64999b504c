"""Runs in words for pickers and tables: what a run covers (:func:`run_label`), a short label
for the sidebar (:func:`run_short_label`), and the fullest runs first (:func:`most_complete_first`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["most_complete_first", "run_label", "run_short_label"]


def _run_shape(config: Any, subjects: Any, design: Any) -> tuple[list[str], int, int | None]:
    """A run's designs, how many people it covers and its epochs (None when not recorded)."""
    config = config if isinstance(config, dict) else {}
    designs = config.get("designs") or ([design] if isinstance(design, str) else [])
    people = len(subjects) if isinstance(subjects, (list, tuple)) else 0
    epochs = (config.get("train") or {}).get("epochs")
    return [str(d) for d in designs], people, epochs if isinstance(epochs, int) else None


def run_label(run: Mapping[str, Any]) -> str:
    """What a run is, in a few words: kind, designs, people, epochs and date (a picker's label),
    e.g. "study · single-subject + cross-subject · 10 people · 2 epochs · 2026-11-29 20:48"."""
    designs, people, epochs = _run_shape(run.get("config"), run.get("subjects"), run.get("design"))
    parts = [str(run.get("kind") or "run"), " + ".join(designs) or "?", f"{people} people"]
    if epochs is not None:
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    created = str(run.get("created_at") or "")
    parts.append(created[:16].replace("T", " ") if created else str(run.get("id")))
    return " · ".join(parts)


_SHORT_DESIGNS = {"single-subject": "single", "cross-subject": "cross", "loso": "LOSO"}


def run_short_label(run: Mapping[str, Any]) -> str:
    """A run in a few characters, for the sidebar's run picker (about 190 px of text at 1280 px
    wide, where :func:`run_label` was cut off): when it was made (UTC, month-day and time), its
    kind, its design or how many designs, e.g. "11-29 20:48 · study · 2 designs" or
    "11-30 05:20 · train · single". :func:`run_label` says the rest."""
    designs, _, _ = _run_shape(run.get("config"), run.get("subjects"), run.get("design"))
    if len(designs) == 1:
        what = _SHORT_DESIGNS.get(designs[0], designs[0])
    else:
        what = f"{len(designs)} designs" if designs else "?"
    created = str(run.get("created_at") or "")
    when = created[5:16].replace("T", " ") if created else str(run.get("id"))
    return " · ".join([when, str(run.get("kind") or "run"), what])


def most_complete_first(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs ordered by how much they cover (designs x people, then epochs), newest first among
    equals: a dashboard opens on the fullest study, not on the last one-person retrain."""
    if runs.empty:
        return runs
    shapes = [
        _run_shape(c, s, d)
        for c, s, d in zip(runs["config"], runs["subjects"], runs["design"], strict=True)
    ]
    key = pd.DataFrame(
        {
            "_cover": [len(d) * p for d, p, _ in shapes],
            "_epochs": [e or 0 for _, _, e in shapes],
            "_created": runs["created_at"].astype(str).to_numpy(),
        },
        index=runs.index,
    )
    order = key.sort_values(["_cover", "_epochs", "_created"], ascending=False, kind="stable")
    return runs.loc[order.index]
