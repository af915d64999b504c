"""From a prediction table to numbers that carry their split and chance level.

The prediction table (a ``pandas.DataFrame``) has one row per predicted volume with the columns

===================  ========================================================================
``subject``          subject label without ``sub-`` (str, e.g. ``"01"``)
``run``              run number, from 1 (int)
``volume``           volume index within the run (int)
``movie_time``       movie time of the volume in seconds (float)
``scene``            scene number (int)
``scene_location``   scene location (str)
``true``             true class name (str)
``pred``             predicted class name (str)
``prob_<CLASS>``     predicted probability of each class (float)
``fold``             cross-validation fold that predicted the row (int)
``seen``             optional: the subject was in the training set of the model (bool)
===================  ========================================================================

Each function needs only some of the columns and names the missing ones if they are absent.
Chance levels come from circularly shifting the true labels within each run (see
:mod:`emocore.stats.metrics`); where the table holds several people, each run is shifted by one offset
common to all of them, because everybody heard the same movie. Intervals resample people and runs
(the pigeonhole bootstrap), or one person's runs.

The checks shared by these functions are :mod:`emocore.stats.prediction_table`; the display
tables and texts (percent, split labels, the results, runs, scenes and tuning tables) are
:mod:`emocore.stats.display`, and importable from here as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from emocore.constants import CLASSES
from emocore.errors import ConfigError
from emocore.stats import metrics
from emocore.stats.display import (
    cell_volumes_table,
    percent,
    recall_order,
    results_table,
    runs_table,
    scenes_table,
    split_label,
    tuning_table,
)
from emocore.stats.prediction_table import (
    check_table,
    json_float,
    resolve_classes,
    select_subject,
    sort_in_time,
    subject_label,
    subject_rows,
    subject_run_groups,
)

__all__ = [
    "percent",
    "recall_order",
    "split_label",
    "subject_rows",
    "results_table",
    "runs_table",
    "scenes_table",
    "cell_volumes_table",
    "tuning_table",
    "PERMUTATION_SCHEME",
    "PERMUTATION_SCHEME_ONE",
    "PERMUTATION_SCHEME_OLD",
    "BOOTSTRAP_BLOCK",
    "BOOTSTRAP_BLOCK_ONE",
    "SUMMARY_KEYS",
    "summarize_predictions",
    "per_subject_metrics",
    "seen_vs_unseen",
    "misclassification_summary",
    "misclassified_scenes",
    "family_comparison",
    "timeline_windows",
    "WHOLE_MOVIE",
    "every_volume_summary",
]

logger = logging.getLogger(__name__)

#: ``permutation.scheme`` of a table with several people: they share the movie's timeline.
PERMUTATION_SCHEME = "one circular shift per run, common to all people"
#: ``permutation.scheme`` of one person's table.
PERMUTATION_SCHEME_ONE = "circular shift within run (one person)"
#: The scheme of runs written before the shared-timeline null (still read, never written).
PERMUTATION_SCHEME_OLD = "circular shift within subject x run"
BOOTSTRAP_BLOCK = "people x runs (pigeonhole)"
BOOTSTRAP_BLOCK_ONE = "runs of one person (expanded percentile)"
#: Top-level keys of :func:`summarize_predictions`, in order.
SUMMARY_KEYS: tuple[str, ...] = (
    "n_volumes",
    "classes",
    "split",
    "design",
    "leaky",
    "accuracy",
    "balanced_accuracy",
    "per_class_accuracy",
    "confusion",
    "chance",
    "p_value",
    "ci95",
    "permutation",
    "bootstrap",
)

_LABEL_COLUMNS = ("subject", "true", "pred")
_SCENE_COLUMNS = (
    "subject",
    "run",
    "volume",
    "movie_time",
    "scene",
    "scene_location",
    "true",
    "pred",
)
_SCENE_TABLE_COLUMNS = [
    "run",
    "scene",
    "scene_location",
    "start_movie_time",
    "end_movie_time",
    "n_volumes",
    "most_common_prediction",
    "most_common_fraction",
]


# ---------------------------------------------------------------------------------------------
# Whole-table summary
# ---------------------------------------------------------------------------------------------


def summarize_predictions(
    table: pd.DataFrame,
    *,
    classes: Sequence[str],
    split: str,
    design: str,
    leaky: bool = False,
    n_permutations: int = 1000,
    n_boot: int = 1000,
    min_shift: int = 0,
    chance_min_shift: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy and per-class recall, each with its chance level and interval.

    Parameters
    ----------
    table
        Prediction table (columns ``subject``, ``run``, ``volume``, ``true``, ``pred`` are used),
        one row per predicted volume.
    classes
        Class names in display order (rows/columns of ``confusion``).
    split
        Which volumes the table holds, e.g. ``"test"``; recorded as given.
    design
        The cross-validation design, e.g. ``"leave-one-subject-out"``; recorded as given.
    leaky
        ``True`` if the design lets neighbouring volumes or the same stimulus into both training
        and test (e.g. a random split of single volumes); recorded so no one reads such numbers
        as generalisation.
    n_permutations, min_shift, chance_min_shift
        Circular-shift permutations of the true labels within each run. With several people in
        the table, each run is rotated by one offset common to all of them: everybody heard the
        same movie, so their labels are one sequence and their predictions share the movie's
        response; independent offsets per person would average that shared part away and give a
        null too narrow (see :func:`emocore.stats.metrics.circular_shift_null`). The p-values use
        rotations of at least
        ``min_shift`` volumes (0 = every rotation: an exact test; a positive value makes them
        liberal, see :func:`emocore.stats.metrics.circular_shift_null`). The permutation chance levels
        and ``null95`` use a second null of rotations of at least ``chance_min_shift`` volumes
        (default 10 = 20 s), so near-aligned rotations, which keep part of a real signal, do not
        raise the chance level of a good predictor.
    n_boot
        Bootstrap resamples: people and runs drawn independently (the pigeonhole bootstrap,
        :func:`emocore.stats.metrics.two_way_bootstrap_ci`), or one person's runs.
    seed
        Seed of the permutations and the bootstrap.

    Returns
    -------
    A JSON-serialisable dict (``NaN`` written as ``None``) with exactly these keys:

    * ``n_volumes`` (int), ``classes`` (list of str), ``split`` (str), ``design`` (str),
      ``leaky`` (bool)
    * ``accuracy``, ``balanced_accuracy`` (float)
    * ``per_class_accuracy``: ``{class: recall}``, ``None`` for a class without true volumes
    * ``confusion``: counts as a list of lists, rows = true class, columns = predicted class,
      both in ``classes`` order
    * ``chance``: ``balanced_accuracy_theoretical`` (1 / K), ``balanced_accuracy_permutation``
      (null mean), ``accuracy_majority`` (most frequent true class), ``accuracy_permutation``
      (null mean)
    * ``p_value``: ``balanced_accuracy``, ``accuracy`` — ``(1 + #null >= observed) / (1 + n)``
    * ``ci95``: ``balanced_accuracy``, ``accuracy`` — ``[low, high]`` bootstrap percentiles
    * ``permutation``: ``n``, ``scheme`` (:data:`PERMUTATION_SCHEME` or
      :data:`PERMUTATION_SCHEME_ONE`), ``min_shift`` (volumes, null of the p-values),
      ``chance_min_shift`` (volumes, null of the chance levels and ``null95``), ``shifts`` (which
      rotations each null leaves out, and why, in words), ``null95`` (``{balanced_accuracy:
      [low, high], accuracy: [low, high]}``, central 95 % of the chance null)
    * ``bootstrap``: ``n``, ``block`` (:data:`BOOTSTRAP_BLOCK` or :data:`BOOTSTRAP_BLOCK_ONE`)
    """
    ordered, class_list = _one_prediction_per_volume(table, classes)
    several = ordered["subject"].astype(str).nunique() > 1
    tests, intervals = _nulls_and_intervals(
        ordered,
        n_permutations=n_permutations,
        n_boot=n_boot,
        min_shift=min_shift,
        chance_min_shift=chance_min_shift,
        rng=np.random.default_rng(seed),
    )
    return {
        "n_volumes": len(ordered),
        "classes": [str(c) for c in class_list],
        "split": str(split),
        "design": str(design),
        "leaky": bool(leaky),
        **_scores(ordered, class_list),
        "chance": _chance_levels(ordered, class_list, tests),
        "p_value": {name: json_float(tests[name].p_value) for name in tests},
        "ci95": {name: [json_float(v) for v in intervals[name]] for name in intervals},
        "permutation": _permutation_record(
            tests, n_permutations, min_shift, chance_min_shift, several=several
        ),
        "bootstrap": {
            "n": int(n_boot),
            "block": BOOTSTRAP_BLOCK if several else BOOTSTRAP_BLOCK_ONE,
        },
    }


#: The scores :func:`summarize_predictions` tests against chance and gives intervals for.
_SUMMARY_SCORES = ("balanced_accuracy", "accuracy")


def _one_prediction_per_volume(
    table: pd.DataFrame, classes: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """The table checked (columns, one row per subject, run and volume) and in time order, with
    its classes."""
    check_table(table, ("subject", "run", "volume", "true", "pred"), "summarize_predictions")
    class_list = resolve_classes(table, classes)
    duplicated = table.duplicated(["subject", "run", "volume"])
    if duplicated.any():
        raise ConfigError(
            f"summarize_predictions: {int(duplicated.sum())} (subject, run, volume) rows appear "
            "more than once; summarise one prediction per volume (e.g. select one fold or seed)"
        )
    return sort_in_time(table), class_list


def _nulls_and_intervals(
    ordered: pd.DataFrame,
    *,
    n_permutations: int,
    n_boot: int,
    min_shift: int,
    chance_min_shift: int,
    rng: np.random.Generator,
) -> tuple[dict[str, metrics.PermutationResult], dict[str, Any]]:
    """Each summary score's circular-shift test and its bootstrap interval.

    With several people in the table each run is rotated by one offset common to all of them
    (``shared``); the bootstrap resamples people and runs. The permutations draw from ``rng``
    before the bootstrap: this order fixes the numbers of a seed.
    """
    y_true = ordered["true"].to_numpy()
    y_pred = ordered["pred"].to_numpy()
    runs = ordered["run"].astype(str).to_numpy()
    several = ordered["subject"].astype(str).nunique() > 1
    tests = {
        name: metrics.permutation_test(
            y_true,
            y_pred,
            subject_run_groups(ordered),
            name,
            n_permutations,
            rng,
            min_shift=min_shift,
            chance_min_shift=chance_min_shift,
            shared=runs if several else None,
        )
        for name in _SUMMARY_SCORES
    }
    people = ordered["subject"].astype(str).to_numpy()
    intervals = {
        name: metrics.two_way_bootstrap_ci(y_true, y_pred, people, runs, name, n_boot, rng)
        for name in _SUMMARY_SCORES
    }
    return tests, intervals


def _scores(ordered: pd.DataFrame, class_list: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class recall and the confusion counts, as JSON."""
    y_true = ordered["true"].to_numpy()
    y_pred = ordered["pred"].to_numpy()
    per_class = metrics.per_class_accuracy(y_true, y_pred, class_list)
    confusion = metrics.confusion_matrix(y_true, y_pred, class_list)
    return {
        "accuracy": json_float(metrics.accuracy(y_true, y_pred, class_list)),
        "balanced_accuracy": json_float(metrics.balanced_accuracy(y_true, y_pred, class_list)),
        "per_class_accuracy": {
            str(c): json_float(v) for c, v in zip(class_list, per_class, strict=True)
        },
        "confusion": [[int(v) for v in row] for row in confusion],
    }


def _chance_levels(
    ordered: pd.DataFrame, class_list: list[str], tests: dict[str, metrics.PermutationResult]
) -> dict[str, float | None]:
    """Both scores' chance levels: in theory (1/K, the majority class) and as null means."""
    y_true = ordered["true"].to_numpy()
    return {
        "balanced_accuracy_theoretical": json_float(metrics.theoretical_chance(class_list)),
        "balanced_accuracy_permutation": json_float(tests["balanced_accuracy"].null_mean),
        "accuracy_majority": json_float(metrics.majority_chance(y_true)),
        "accuracy_permutation": json_float(tests["accuracy"].null_mean),
    }


def _permutation_record(
    tests: dict[str, metrics.PermutationResult],
    n_permutations: int,
    min_shift: int,
    chance_min_shift: int,
    *,
    several: bool,
) -> dict[str, Any]:
    """How the nulls were drawn (scheme, shifts, in words too) and the central 95 % of each."""
    return {
        "n": int(n_permutations),
        "scheme": PERMUTATION_SCHEME if several else PERMUTATION_SCHEME_ONE,
        "min_shift": int(min_shift),
        "chance_min_shift": int(chance_min_shift),
        "shifts": _shifts_text(min_shift, chance_min_shift),
        "null95": {
            name: [json_float(tests[name].null_low), json_float(tests[name].null_high)]
            for name in tests
        },
    }


def _shifts_text(min_shift: int, chance_min_shift: int) -> str:
    """Which rotations the p-value's null and the chance level's null leave out, and why."""

    def rotations(m: int) -> str:
        return "every rotation" if m == 0 else f"rotations of at least {m} volumes ({2 * m} s)"

    if min_shift == chance_min_shift:
        return f"p-value, chance level and null95 use {rotations(min_shift)}"
    return (
        f"the p-value uses {rotations(min_shift)}, so the test is exact; the chance level and "
        f"null95 use {rotations(chance_min_shift)}, because a near-aligned rotation keeps part "
        "of a real signal and would raise the chance level of a good model"
    )


# ---------------------------------------------------------------------------------------------
# Per subject
# ---------------------------------------------------------------------------------------------


def per_subject_metrics(
    table: pd.DataFrame, *, classes: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per subject: ``subject``, ``n``, ``accuracy``, ``balanced_accuracy``,
    ``accuracy_<CLASS>`` (recall; ``NaN`` where the subject has no volumes of that class) and
    ``seen`` (``True`` if any row of the subject is marked seen; ``None`` without a ``seen``
    column). Sorted by subject.

    ``classes`` defaults to the table's ``prob_<CLASS>`` columns, else the known classes present.
    """
    check_table(table, _LABEL_COLUMNS, "per_subject_metrics")
    class_list = resolve_classes(table, classes)
    has_seen = "seen" in table.columns
    rows = []
    for subject, rows_of_subject in table.groupby(table["subject"].astype(str), sort=True):
        y_true = rows_of_subject["true"].to_numpy()
        y_pred = rows_of_subject["pred"].to_numpy()
        recalls = metrics.per_class_accuracy(y_true, y_pred, class_list)
        row: dict[str, Any] = {
            "subject": subject,
            "n": len(rows_of_subject),
            "accuracy": metrics.accuracy(y_true, y_pred, class_list),
            "balanced_accuracy": metrics.balanced_accuracy(y_true, y_pred, class_list),
        }
        row.update({f"accuracy_{c}": float(v) for c, v in zip(class_list, recalls, strict=True)})
        row["seen"] = bool(rows_of_subject["seen"].astype(bool).any()) if has_seen else None
        rows.append(row)
    return pd.DataFrame(rows)


def seen_vs_unseen(table: pd.DataFrame, *, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Compare volumes of subjects the model was trained on (``seen``) with new subjects.

    One row per value of ``seen`` present (``True`` first): ``seen``, ``n_subjects``,
    ``n_volumes``, ``accuracy`` and ``balanced_accuracy`` pooled over the volumes, and
    ``mean_subject_balanced_accuracy`` (each subject weighted equally).
    """
    check_table(table, _LABEL_COLUMNS, "seen_vs_unseen")
    if "seen" not in table.columns:
        raise ConfigError(
            "seen_vs_unseen: the prediction table has no 'seen' column; add a boolean 'seen' "
            "(subject was in the model's training set) or use per_subject_metrics instead"
        )
    class_list = resolve_classes(table, classes)
    seen = table["seen"].astype(bool)
    subject_scores = per_subject_metrics(table.drop(columns="seen"), classes=class_list)
    subject_scores = subject_scores.set_index("subject")["balanced_accuracy"]
    rows = []
    for flag in (True, False):
        part = table[seen == flag]
        if len(part) == 0:
            continue
        y_true, y_pred = part["true"].to_numpy(), part["pred"].to_numpy()
        subjects = part["subject"].astype(str).unique()
        rows.append(
            {
                "seen": flag,
                "n_subjects": len(subjects),
                "n_volumes": len(part),
                "accuracy": metrics.accuracy(y_true, y_pred, class_list),
                "balanced_accuracy": metrics.balanced_accuracy(y_true, y_pred, class_list),
                "mean_subject_balanced_accuracy": float(
                    np.nanmean(subject_scores.loc[subjects].to_numpy(dtype=float))
                )
                if subject_scores.loc[subjects].notna().any()
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# One subject, one emotion
# ---------------------------------------------------------------------------------------------


def misclassification_summary(
    table: pd.DataFrame, subject: str | int, emotion: str
) -> dict[str, Any]:
    """What the model answered for one subject's volumes of one true emotion.

    Returns a dict with ``subject`` (label without ``sub-``), ``emotion``, ``n`` (volumes of that
    true emotion), ``counts`` and ``distribution`` (``{predicted class: count / fraction}``, only
    classes predicted at least once, sorted by decreasing count, ties by name; fractions sum to 1)
    and ``sentence``, e.g.
    ``"LOVE volumes of sub-18 (n=19): SADNESS 42.1 %, LOVE 31.6 %, HAPPINESS 26.3 %"``.
    A subject without volumes of ``emotion`` gives ``n = 0``, empty dicts and a sentence saying so.
    """
    check_table(table, _LABEL_COLUMNS, "misclassification_summary")
    rows = select_subject(table, subject)
    label = subject_label(subject)
    predicted = rows.loc[rows["true"] == emotion, "pred"].astype(str)
    n = len(predicted)
    if n == 0:
        return {
            "subject": label,
            "emotion": emotion,
            "n": 0,
            "counts": {},
            "distribution": {},
            "sentence": f"{emotion} volumes of sub-{label} (n=0): none in this table",
        }
    counts = predicted.value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    distribution = {name: count / n for name, count in ranked}
    parts = ", ".join(f"{name} {100.0 * share:.1f} %" for name, share in distribution.items())
    return {
        "subject": label,
        "emotion": emotion,
        "n": n,
        "counts": {name: int(count) for name, count in ranked},
        "distribution": distribution,
        "sentence": f"{emotion} volumes of sub-{label} (n={n}): {parts}",
    }


def misclassified_scenes(
    table: pd.DataFrame, subject: str | int, emotion: str, *, max_gap: int = 1
) -> pd.DataFrame:
    """Movie spans where one subject's volumes of ``emotion`` were predicted as something else.

    The subject's mispredicted ``emotion`` volumes, in (run, volume) order, are cut into spans: a
    new span starts when the run or the scene changes or the volume number jumps by more than
    ``max_gap``. One row per span, sorted by run and time: ``run``, ``scene``,
    ``scene_location``, ``start_movie_time`` and ``end_movie_time`` (movie time of the span's
    first and last volume, s), ``n_volumes``, ``most_common_prediction`` (the most frequent wrong
    class, ties by name) and ``most_common_fraction`` (its share of the span). Empty (with these
    columns) when nothing was mispredicted.
    """
    check_table(table, _SCENE_COLUMNS, "misclassified_scenes")
    max_gap = int(max_gap)
    if max_gap < 1:
        raise ConfigError(f"'max_gap' must be an integer >= 1 volume; {max_gap!r} was provided")
    rows = select_subject(table, subject)
    wrong = rows[(rows["true"] == emotion) & (rows["pred"] != emotion)]
    if len(wrong) == 0:
        return pd.DataFrame(columns=_SCENE_TABLE_COLUMNS)
    wrong = wrong.sort_values(["run", "volume"], kind="stable")
    run = wrong["run"].to_numpy()
    volume = wrong["volume"].to_numpy()
    scene = wrong["scene"].to_numpy()
    new_span = np.ones(len(wrong), dtype=bool)
    new_span[1:] = (run[1:] != run[:-1]) | (scene[1:] != scene[:-1]) | (np.diff(volume) > max_gap)
    span_id = np.cumsum(new_span)
    spans = []
    for _, span in wrong.groupby(span_id, sort=True):
        counts = span["pred"].astype(str).value_counts()
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0]
        spans.append(
            {
                "run": int(span["run"].iloc[0]),
                "scene": span["scene"].iloc[0],
                "scene_location": span["scene_location"].iloc[0],
                "start_movie_time": float(span["movie_time"].iloc[0]),
                "end_movie_time": float(span["movie_time"].iloc[-1]),
                "n_volumes": len(span),
                "most_common_prediction": top[0],
                "most_common_fraction": top[1] / len(span),
            }
        )
    return pd.DataFrame(spans, columns=_SCENE_TABLE_COLUMNS)


# ---------------------------------------------------------------------------------------------
# CNN against the linear baseline
# ---------------------------------------------------------------------------------------------


def family_comparison(results: Sequence[dict[str, Any]]) -> list[str]:
    """One sentence per design that has both a CNN and a linear result (a study's ``results``).

    The two are called different only when their block-bootstrap 95 % intervals of balanced
    accuracy do not overlap; otherwise "level". Each sentence names the split and the
    permutation chance.
    """
    by_design: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        by_design.setdefault(str(r["design"]), {})[str(r["model"])] = r
    out = []
    for design, models in by_design.items():
        cnn, lin = models.get("cnn"), models.get("linear")
        if cnn is None or lin is None:
            continue
        a, b = cnn.get("balanced_accuracy"), lin.get("balanced_accuracy")
        if a is None or b is None:
            continue
        ca, cb = cnn.get("ci95") or [None, None], lin.get("ci95") or [None, None]
        apart = None not in (*ca, *cb) and (ca[0] > cb[1] or cb[0] > ca[1])
        tag = (
            f"{100 * a:.0f} % vs {100 * b:.0f} % balanced accuracy, split {cnn.get('split')}, "
            f"chance {100 * (cnn.get('chance_balanced_accuracy') or 0):.0f} %"
        )
        if apart and b > a:
            verdict = "the linear baseline beats the CNN"
        elif apart:
            verdict = "the CNN beats the linear baseline"
        else:
            verdict = "the CNN and the linear baseline are level (95 % intervals overlap)"
        out.append(f"{design}: {verdict} ({tag}).")
    return out


# ---------------------------------------------------------------------------------------------
# Timeline windows and every-volume predictions
# ---------------------------------------------------------------------------------------------

WHOLE_MOVIE = "whole movie"


def timeline_windows(volumes: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Movie-time spans (first, last volume's ``movie_time``, seconds) a timeline can zoom to.

    ``volumes`` is a table with ``run`` and ``movie_time`` (the cache's label table, or a
    prediction table); with a ``scene`` column (1-based, 0 = before the first scene) each scene
    is a window too. Keys, in order: ``"whole movie"``, ``"run 1"``.., then
    ``"scene 3: VIETNAM (812-950 s)"``. Empty input gives no windows.
    """
    if isinstance(volumes, pd.DataFrame) and volumes.empty:
        return {}
    check_table(volumes, ("run", "movie_time"), "timeline windows")
    times = volumes["movie_time"].astype(float)
    out = {WHOLE_MOVIE: (float(times.min()), float(times.max()))}
    for run, part in volumes.groupby("run", sort=True):
        t = part["movie_time"].astype(float)
        out[f"run {int(run)}"] = (float(t.min()), float(t.max()))
    if "scene" in volumes:
        has_place = "scene_location" in volumes
        for scene, part in volumes.groupby("scene", sort=True):
            if int(scene) <= 0:  # before the first scene of movie_scenes.csv
                continue
            t = part["movie_time"].astype(float)
            place = f": {part['scene_location'].iloc[0]}" if has_place else ""
            key = f"scene {int(scene)}{place} ({t.min():.0f}-{t.max():.0f} s)"
            out[key] = (float(t.min()), float(t.max()))
    return out


def every_volume_summary(table: pd.DataFrame, *, classes: Sequence[str]) -> dict[str, Any]:
    """What a model said about every volume of a person, NONE volumes included.

    A NONE volume (no emotion labelled) has no correct answer, so ``accuracy`` and
    ``balanced_accuracy`` (chance ``1 / len(classes)``) are computed over the labelled volumes
    only; ``none_predictions`` counts what the model called the NONE volumes, per class of
    ``classes`` (a ``pandas.Series``). Keys: ``n_volumes``, ``n_labelled``, ``n_none``,
    ``accuracy``, ``balanced_accuracy``, ``chance``, ``none_predictions``.
    """
    check_table(table, ("true", "pred"), "every-volume summary")
    classes = list(classes)
    none = table["true"].astype(str) == CLASSES[0]
    labelled = table[~none]
    return {
        "n_volumes": len(table),
        "n_labelled": len(labelled),
        "n_none": int(none.sum()),
        "accuracy": metrics.accuracy(labelled["true"], labelled["pred"], classes),
        "balanced_accuracy": metrics.balanced_accuracy(labelled["true"], labelled["pred"], classes),
        "chance": metrics.theoretical_chance(classes),
        "none_predictions": table.loc[none, "pred"]
        .value_counts()
        .reindex(classes, fill_value=0)
        .astype(int),
    }
