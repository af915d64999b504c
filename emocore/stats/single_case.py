"""Single-case statistics: is one person's decoding unusual compared with the other people's?

The clinician's question is about one person against a small reference cohort (5 to 20 others).
Clinical neuropsychology answers it with Crawford & Howell's (1998) modified t-test, which treats
the controls as a sample rather than a population::

    t = (x - m) / (s * sqrt((n + 1) / n)),   df = n - 1

with ``x`` the person's score and ``m``, ``s`` the mean and SD of the ``n`` controls.
:func:`crawford_howell` is that reference test. Applied to decoding rates as they are it flags
typical people: a rate is a proportion of a few dozen volumes, often near 0 or 1, and when the
others' rates sit at 0 or 1 their SD is tiny, so any count of one or two becomes "atypical".

:func:`single_case_tests` therefore applies the same t-test to numbers that respect how the rates
arise:

* **Variance-stabilised rates.** A count ``k`` of ``n`` volumes becomes Anscombe's (1948) arcsine
  ``asin(sqrt((k + 3/8) / (n + 3/4)))``, whose binomial sampling variance is about
  ``1 / (4 n + 2)`` whatever the rate, so people near 0 or 1 are on the same footing as people
  near 1/2.
* **A floor on the spread.** The others' spread is at least the sampling variance of their own
  counts (between-person variance + sampling variance >= sampling variance); with a handful of
  people the sample SD falls below it by chance, most often when many rates are tied at 0. The
  test uses ``s = max(sample SD, sampling SD)``, which can only make it more conservative. Where
  the floor is used the statistic is no longer Crawford & Howell's t, and ``statistic_name``
  says so.
* **Specific, not weaker overall: both criteria of a dissociation** (Crawford & Garthwaite
  2005). Balanced accuracy (emotion ``ALL``) is the one test of "decoded worse overall". A
  recall of one emotion, or the rate at which emotion E is taken for F, is a finding only when

  1. the person's own rate is abnormal against the others' rates (``p_raw``: lower recall,
     higher confusion), **and**
  2. it is abnormal relative to the person's other emotions (``p_relative``): recall minus the
     mean of the person's other recalls; the E->F rate minus the rate at which the person's
     other emotions are taken for F. This is Crawford & Garthwaite's unstandardised difference
     test (the Crawford-Howell t on difference scores), fitting here because both rates are on
     one scale.

  The finding's p is the larger of the two (an intersection-union test: at level ``alpha``
  without any correction for requiring both). A person decoded worse on every emotion gets one
  finding (``ALL``), not one per emotion; a person whose E->F rate is typical, while their other
  emotions are rarely taken for F, gets none.
* **One-sided, in the direction of a deficit**: recall and balanced accuracy lower, a confusion
  rate higher than in the others.
* **Effect size**: Crawford, Garthwaite & Porter's (2010) ``Z_CC = (x - m) / s`` of the person's
  rate, with the 95 % interval of Crawford & Garthwaite (2002) from the non-central t
  distribution (:func:`z_cc_interval`).
* **Multiplicity.** ``procedure="holm"``: Holm's correction over one person's tests in one design
  and model family (5 recalls, 20 confusion rates, balanced accuracy = 26 tests with 5
  emotions), used for exploratory designs. ``procedure="verdict"``: the primary analysis's
  order fixed in advance (:func:`verdict_graph`, tested with :mod:`emocore.stats.gatekeeping`): overall
  balanced accuracy; where the volumes of the clinical question's emotions (LOVE, FEAR) went,
  and how often they were decoded correctly; then the other emotions. Either way the chance that a person is flagged for anything is
  at most ``alpha``. With fewer than :data:`MIN_OTHERS` other people the test has too little
  power to mean anything, and nothing is flagged.

The false-positive rate and the power are checked by simulation in
``tests/unit/test_single_case.py`` and ``tests/unit/test_verdict.py``: null cohorts (rates near
0 and 1, between-person spread, a response shared by everybody, runs of identical predictions as
temporal autocorrelation makes them) flag at most ``alpha`` of the people.

Where the parts live: the building blocks (Crawford-Howell t, Z_CC interval, arcsine rates,
Holm) in :mod:`emocore.stats.crawford`; the tests on a cohort's confusion counts and the
verdict's order in :mod:`emocore.stats.cohort_tests`; a finding in words in
:mod:`emocore.stats.finding_text`. This module starts from a prediction table (confusion counts,
design effect, findings, fold stability) and re-exports the names of the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from emocore.errors import ConfigError
from emocore.stats import metrics
from emocore.stats.cohort_tests import (
    ALPHA,
    FINDING_KEYS,
    FOCUS,
    MIN_OTHERS,
    TEST_NAME,
    Measure,
    Reference,
    case_tests,
    measure_list,
    measure_scores,
    number_or_none,
    reference,
    single_case_tests,
    verdict_graph,
)
from emocore.stats.crawford import anscombe_arcsine, crawford_howell, holm, z_cc_interval
from emocore.stats.finding_text import finding_details, finding_sentence, finding_what

__all__ = [
    "ALPHA",
    "MIN_OTHERS",
    "FOCUS",
    "FINDING_KEYS",
    "TEST_NAME",
    "crawford_howell",
    "z_cc_interval",
    "anscombe_arcsine",
    "holm",
    "Measure",
    "measure_list",
    "Reference",
    "reference",
    "case_tests",
    "verdict_graph",
    "single_case_tests",
    "confusion_counts",
    "design_effect",
    "atypical_findings",
    "finding_what",
    "finding_sentence",
    "finding_details",
    "fold_stability",
    "measure_scores",
]

# ---------------------------------------------------------------------------------------------
# From a prediction table
# ---------------------------------------------------------------------------------------------


def confusion_counts(table: pd.DataFrame, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Subjects (sorted) and their confusion counts, shape (subjects, K, K), true x predicted."""
    missing = [c for c in ("subject", "true", "pred") if c not in table.columns]
    if missing:
        raise ConfigError(f"the prediction table lacks the column(s) {missing}")
    groups = table.groupby(table["subject"].astype(str), sort=True)
    subjects = [str(s) for s in groups.groups]
    counts = (
        np.stack(
            [
                metrics.confusion_matrix(r["true"].to_numpy(), r["pred"].to_numpy(), list(classes))
                for _, r in groups
            ]
        )
        if subjects
        else np.zeros((0, len(classes), len(classes)))
    )
    return subjects, counts.astype(float)


#: Largest neighbour correlation used: keeps the design effect finite (at most 20).
_MAX_RHO = 0.95


def design_effect(table: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """Variance inflation of a rate from runs of alike predictions, one per true class.

    Consecutive volumes of one subject and run with the same true class ``e`` form pairs. Their
    agreement beyond chance, ``rho = (P(same prediction) - P_chance) / (1 - P_chance)`` with
    ``P_chance`` the sum of squared prediction shares of the subject's ``e`` volumes (Cohen's
    kappa between neighbours, the lag-1 autocorrelation of the predicted class), is pooled over
    subjects. The design effect is ``1 / (1 - rho)``, the mean length of a run of alike
    predictions: exact for predictions that come in blocks, about half of ``(1 + rho) / (1 - rho)``
    for an AR(1)-like series. It only sets the floor of the others' spread, so the test stays
    calibrated either way (checked by simulation for both). It is 1 for independent predictions
    and grows as predictions come in longer runs (scenes). Classes
    without neighbour pairs get 1. Needs the columns ``subject``, ``run``, ``volume``, ``true``
    and ``pred``; without ``run`` and ``volume`` every class gets 1.
    """
    classes = list(classes)
    out = np.ones(len(classes))
    if not {"run", "volume"} <= set(table.columns) or len(table) < 2:
        return out
    t = table.sort_values(["subject", "run", "volume"], kind="stable")
    subj = t["subject"].astype(str).to_numpy()
    run, vol = t["run"].to_numpy(), t["volume"].to_numpy()
    true, pred = t["true"].astype(str).to_numpy(), t["pred"].astype(str).to_numpy()
    pair = (subj[1:] == subj[:-1]) & (run[1:] == run[:-1]) & (np.diff(vol) == 1)
    pair &= true[1:] == true[:-1]
    same = pred[1:] == pred[:-1]
    for e, emotion in enumerate(classes):
        sel = pair & (true[:-1] == emotion)
        if not sel.any():
            continue
        observed = float(same[sel].mean())
        chance_num = 0.0
        for s in np.unique(subj[:-1][sel]):
            shares = pd.Series(pred[(subj == s) & (true == emotion)]).value_counts(normalize=True)
            chance_num += float((shares**2).sum()) * int((sel & (subj[:-1] == s)).sum())
        chance = chance_num / int(sel.sum())
        if chance >= 1.0:
            continue
        rho = min(max((observed - chance) / (1.0 - chance), 0.0), _MAX_RHO)
        out[e] = 1.0 / (1.0 - rho)
    return out


def atypical_findings(
    table: pd.DataFrame,
    classes: Sequence[str],
    *,
    design: str,
    model: str = "cnn",
    alpha: float = ALPHA,
    min_others: int = MIN_OTHERS,
    extra: tuple[str, np.ndarray] | None = None,
    procedure: str = "holm",
    focus: Sequence[str] = FOCUS,
    only: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every single-case test of every subject in one design's held-out prediction table.

    The columns of :func:`single_case_tests` with ``design`` and ``model`` in front, plus
    ``js_distance`` (a description, not a test: Jensen-Shannon distance, base 2, between what the
    model answered for this person's volumes of the emotion and what it answered for the others'
    pooled; on ``recall`` rows), ``sentence`` (:func:`finding_sentence`) and ``details``
    (:func:`finding_details`).

    ``extra`` = (subject, confusion counts) adds a person known only by counts (a newly assessed
    person), tested against everybody in ``table``; the design effect still comes from
    ``table``. ``procedure``: ``holm`` (exploratory) or ``verdict`` (the primary analysis's
    fixed order, see :func:`verdict_graph`). ``only`` limits the rows to these people.
    """
    classes = list(classes)
    subjects, counts = confusion_counts(table, classes)
    if len(subjects) == 0 and extra is None:
        return pd.DataFrame(columns=[*FINDING_KEYS, "sentence"])
    out = single_case_tests(
        counts,
        classes,
        subjects,
        alpha=alpha,
        min_others=min_others,
        design_effect=design_effect(table, classes),
        procedure=procedure,
        focus=focus,
        extra_counts=None if extra is None else extra[1],
        extra_subject=None if extra is None else str(extra[0]),
        only=only,
    )
    if extra is not None:
        subjects = [*subjects, str(extra[0])]
        counts = np.concatenate([counts, np.asarray(extra[1], dtype=float)[None]], axis=0)
    out.insert(0, "model", model)
    out.insert(0, "design", design)
    pooled = counts.sum(axis=0)
    js = {}
    for s, subject in enumerate(subjects):
        for e, emotion in enumerate(classes):
            own, rest = counts[s, e], pooled[e] - counts[s, e]
            if own.sum() > 0 and rest.sum() > 0:
                js[(subject, emotion)] = float(
                    jensenshannon(own / own.sum(), rest / rest.sum(), base=2)
                )
    out["js_distance"] = pd.Series(
        [
            js.get((r.subject, r.emotion)) if r.measure == "recall" else None
            for r in out.itertuples(index=False)
        ],
        dtype=object,
    )
    records_ = out.to_dict("records")
    out["sentence"] = [finding_sentence(r, alpha=alpha) for r in records_]
    out["details"] = [finding_details(r) for r in records_]
    return out


def fold_stability(table: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """How stable each person's decoding is across cross-validation folds.

    One row per subject: ``n_folds`` (folds that predicted the person's volumes),
    ``fold_balanced_accuracy_mean`` and ``fold_balanced_accuracy_sd`` (``None`` with one fold,
    e.g. leave-one-subject-out). A large SD means the person's numbers depend on which runs were
    held out, and a finding about them deserves caution.
    """
    if "fold" not in table.columns:
        return pd.DataFrame(
            columns=[
                "subject",
                "n_folds",
                "fold_balanced_accuracy_mean",
                "fold_balanced_accuracy_sd",
            ]
        )
    rows = []
    for subject, part in table.groupby(table["subject"].astype(str), sort=True):
        scores = [
            metrics.balanced_accuracy(f["true"].to_numpy(), f["pred"].to_numpy(), list(classes))
            for _, f in part.groupby("fold", sort=True)
        ]
        scores = [s for s in scores if np.isfinite(s)]
        rows.append(
            {
                "subject": subject,
                "n_folds": len(scores),
                "fold_balanced_accuracy_mean": number_or_none(np.mean(scores)) if scores else None,
                "fold_balanced_accuracy_sd": number_or_none(np.std(scores, ddof=1))
                if len(scores) > 1
                else None,
            }
        )
    return pd.DataFrame(rows)
