"""Prediction results as display text and tables for the dashboard and the report: a fraction
as percent text, a split's short name, and the study's results, runs, misclassified scenes, the
volumes behind a confusion cell and the tuning choices in few, merged columns that fit a 1280-px
window (their widths are :mod:`emocore.ui.tables`'). Formatting only: the numbers come from
:mod:`emocore.stats.summaries` and the registry.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from emocore.constants import movie_clock
from emocore.stats.findings import p_text
from emocore.stats.prediction_table import check_table, subject_rows

__all__ = [
    "cell_volumes_table",
    "percent",
    "recall_order",
    "results_table",
    "runs_table",
    "scenes_table",
    "split_label",
    "tuning_table",
]


def percent(x: Any) -> str:
    """A fraction as '64.0 %'; 'n/a' for None, NaN or anything that is not a number."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if value != value else f"{100 * value:.1f} %"


def _interval(ci: Any) -> str:
    """A 95 % interval in % without the unit, which the accuracy beside it shows: '72.8–77.2';
    'n/a' without one."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or None in ci:
        return "n/a"
    low, high = percent(ci[0]), percent(ci[1])
    if "n/a" in (low, high):
        return "n/a"
    return f"{low.removesuffix(' %')}–{high.removesuffix(' %')}"


def split_label(split: Any) -> str:
    """A split's name for a table cell: "leave-one-run-out" and "leave-one-subject-out" as
    "leave-1-run-out" and "leave-1-subject-out" (the same words, narrower); others as named
    ("run-wise 2-fold", "random")."""
    return str(split).replace("leave-one-", "leave-1-")


def _place(location: Any) -> str:
    """A scene location in capitals as words ("COLLEGE STADIUM" -> "College Stadium"), which
    take less width in a table cell; other spellings as they are."""
    text = str(location)
    return string.capwords(text) if text.isupper() else text


def results_table(
    results: Sequence[dict[str, Any]],
    *,
    n_classes: int,
    run_id: str | None = None,
    recall: bool = False,
) -> pd.DataFrame:
    """A study's headline ``results`` for display: one row per design and model family with its
    split (:func:`split_label`), balanced accuracy, 95 % interval, p and both chance levels in
    few columns (a leaky split is marked in the design cell), ``run`` first when ``run_id`` is
    given, and with ``recall`` one cell of per-emotion recall in the classes' order
    ("77/79/74/68/75 %").

    Cells are short enough for :data:`emocore.ui.tables.RESULTS_COLUMNS`' widths: the interval
    without its unit ("72.8–77.2"), chance as "15.8 % perm. · 1/5" (permutation chance, then the
    theoretical 1/K)."""

    rows = []
    for r in results:
        design = f"{r.get('design')} · {split_label(r.get('split'))}" + (
            " (leaky)" if r.get("leaky") else ""
        )
        row: dict[str, Any] = {} if run_id is None else {"run": run_id}
        row |= {
            "design · split": design,
            "model": r.get("model"),
            "balanced accuracy": percent(r.get("balanced_accuracy")),
            "95 % interval": _interval(r.get("ci95")),
            "p": p_text(r.get("p_value")),
            "chance": (
                f"{percent(r.get('chance_balanced_accuracy'))} perm. · "
                + (f"1/{n_classes}" if n_classes else "1/K n/a")
            ),
        }
        if recall:
            per_class = r.get("per_class_accuracy") or {}
            values = [f"{100 * v:.0f}" if _finite(v) else "n/a" for v in per_class.values()]
            row["recall per emotion"] = "/".join(values) + " %" if values else "n/a"
        rows.append(row)
    return pd.DataFrame(rows)


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def recall_order(results: Sequence[dict[str, Any]]) -> str:
    """The emotions of :func:`results_table`'s recall cell, in its order ("HAPPINESS · FEAR ...")."""
    for r in results:
        if r.get("per_class_accuracy"):
            return " · ".join(r["per_class_accuracy"])
    return ""


def scenes_table(scenes: pd.DataFrame) -> pd.DataFrame:
    """:func:`misclassified_scenes` for display: the run and the movie time of the span's first
    volume in one cell ("run 2 · 15:38"; a span is consecutive volumes, so its volumes say how
    long it lasts), the scene with its location ("44 (College Stadium)"), volumes, and
    "predicted as" with its share: short enough for the page's right column
    (:data:`emocore.ui.tables.SCENES_COLUMNS`), late in the movie too ("run 8 · 119:50")."""
    rows = [
        {
            "where": f"run {r.run} · {movie_clock(r.start_movie_time)}",
            "scene": f"{r.scene} ({_place(r.scene_location)})",
            "volumes": int(r.n_volumes),
            "predicted as": f"{r.most_common_prediction} ({100 * r.most_common_fraction:.0f} %)",
        }
        for r in scenes.itertuples()
    ]
    return pd.DataFrame(rows, columns=["where", "scene", "volumes", "predicted as"])


def cell_volumes_table(
    predictions: pd.DataFrame, *, subject: str, true: str, pred: str
) -> pd.DataFrame:
    """The volumes of one cell of the confusion matrix (one person's ``true`` volumes predicted as
    ``pred``), in time order, for display: where in the movie ("run 2 · 15:38"), the volume
    number (what the Brain viewer opens), the scene with its location, the observers' agreement
    on the label, the model's probability of the predicted and of the true emotion (%) and the
    fold that predicted it. Empty, with these columns, when no volume is in the cell."""
    check_table(predictions, ("subject", "true", "pred"), "the volumes behind a cell")
    person = subject_rows(predictions, subject)
    cell = person[(person["true"] == true) & (person["pred"] == pred)]
    cell = cell.sort_values([c for c in ("run", "volume") if c in cell], kind="stable")

    def column(name: str) -> list[Any]:
        return cell[name].tolist() if name in cell else [None] * len(cell)

    rows = [
        {
            "where": f"run {run} · {movie_clock(time)}",
            "volume": volume,
            "scene": f"{scene} ({_place(place)})" if _given(place) and place != "" else str(scene),
            "agreement": percent(agreement),
            "P(predicted)": percent(p_pred),
            "P(true)": percent(p_true),
            "fold": fold if _given(fold) else "?",
        }
        for run, time, volume, scene, place, agreement, p_pred, p_true, fold in zip(
            column("run"),
            column("movie_time"),
            column("volume"),
            column("scene"),
            column("scene_location"),
            column("agreement"),
            column(f"prob_{pred}"),
            column(f"prob_{true}"),
            column("fold_name"),
            strict=True,
        )
    ]
    return pd.DataFrame(rows, columns=_CELL_COLUMNS)


_CELL_COLUMNS = ["where", "volume", "scene", "agreement", "P(predicted)", "P(true)", "fold"]


def runs_table(
    runs: pd.DataFrame, *, folder_problem: Callable[[str], str | None] | None = None
) -> pd.DataFrame:
    """The registry's runs (:meth:`emocore.runs.registry.Registry.list_runs`) for display, newest
    first: id, kind, status (with its progress in whole % while a job is under way), what it
    covers ("single-subject · leave-1-run-out", :func:`split_label`, or a study's designs), when
    it was made, in UTC to the minute ("2026-11-30 05:20"), and a note (the error of a failed
    run, else the job's last message; nothing for a completed run, whose message only says so).

    A row the registry cannot read in full (its ``unreadable`` column) has the status
    ``UNREADABLE`` and the reason as its note; with ``folder_problem``
    (:meth:`emocore.runs.registry.Registry.folder_problem`), a run whose folder is gone has the status
    ``files missing`` and what to do as its note, before anyone picks it."""
    rows = []
    for record in runs.to_dict("records"):
        r = {k: v for k, v in record.items() if _given(v)}  # None or NaN: not recorded
        status = str(r.get("status", "?"))
        problem = r.get("unreadable") or (
            folder_problem(str(r["id"])) if folder_problem and r.get("id") else None
        )
        if status in ("queued", "running") and _finite(r.get("progress")):
            status = f"{status} · {100 * float(r['progress']):.0f} %"
        config: dict[str, Any] = r["config"] if isinstance(r.get("config"), dict) else {}
        if r.get("design"):
            covers = f"{r['design']} · {split_label(r.get('split', '?'))}"
        elif config.get("designs"):
            covers = ", ".join(str(d) for d in config["designs"])
        else:
            covers = "—"
        if r.get("leaky"):
            covers += " (leaky)"
        note = r.get("error") or ("" if r.get("status") == "completed" else r.get("message"))
        if problem:
            status = "UNREADABLE" if r.get("unreadable") else "files missing"
            note = str(problem)
        rows.append(
            {
                "run": r.get("id"),
                "kind": r.get("kind"),
                "status": status,
                "design · split": covers,
                "created": _timestamp(r.get("created_at")),
                "note": note or "",
            }
        )
    return pd.DataFrame(rows, columns=_RUNS_COLUMNS)


def _given(value: Any) -> bool:
    """False for None and a float NaN (a missing cell), True for anything else (lists too)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


_RUNS_COLUMNS = ["run", "kind", "status", "design · split", "created", "note"]


def _timestamp(text: Any) -> str:
    """The registry's ISO time ("2026-11-30T05:20:02.438188Z") in UTC to the minute."""
    try:
        stamp = pd.Timestamp(str(text))
    except ValueError:
        return str(text) if text else "?"
    if pd.isna(stamp):
        return "?"
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M")


def tuning_table(study: dict[str, Any], design: str) -> pd.DataFrame:
    """What each outer fold of ``design`` used per model family, from study.json's ``tuning``:
    one row per model and fold, one cell per family ("12 epochs · inner fold", "C = 0.01 ·
    fixed (poster setting)"). Empty for a study recorded before tuning was."""
    families = (study.get("tuning") or {}).get(design) or {}
    cells: dict[str, dict[str, str]] = {}
    for family, folds in families.items():
        for key, chosen in (folds or {}).items():
            how = str(chosen.get("how", "?"))
            how = "fixed (poster setting)" if how == "fixed" else how
            if "epochs" in chosen:
                n = chosen["epochs"]
                value = f"{n} epoch{'' if n == 1 else 's'}"
            elif "C" in chosen:
                value = f"C = {float(chosen['C']):g}"
            else:
                value = "?"
            cells.setdefault(str(key), {})[_FAMILY_NAMES.get(family, family)] = f"{value} · {how}"
    rows = []
    for key, by_family in cells.items():
        model, _, fold = key.partition(" ")
        rows.append({"model": model, "fold": fold or "?", **by_family})
    columns = ["model", "fold", *dict.fromkeys(_FAMILY_NAMES.get(f, f) for f in families)]
    return pd.DataFrame(rows, columns=columns).fillna("—")


_FAMILY_NAMES = {"cnn": "CNN", "linear": "linear"}
