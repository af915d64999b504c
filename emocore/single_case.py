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
  test uses ``s = max(sample SD, sampling SD)``, which can only make it more conservative.
* **Specific, not weaker overall** (the logic of Crawford & Garthwaite's 2005 difference tests).
  Balanced accuracy (emotion ``ALL``) is the one test of "decoded worse overall". Recall of one
  emotion is tested as its difference from the mean of the person's other recalls, and the rate
  at which emotion E is taken for F as its difference from the person's mean confusion rate, so
  a person decoded worse on every emotion gets one finding (``ALL``), not one per emotion.
* **One-sided, in the direction of a deficit**: recall and balanced accuracy lower, a confusion
  rate higher than in the others.
* **Holm's correction** over one person's tests in one design and model family (5 recalls, 20
  confusion rates, balanced accuracy = 26 tests with 5 emotions); a test is flagged when its
  Holm-adjusted p is below ``alpha``. With fewer than :data:`MIN_OTHERS` other people the test
  has too little power to mean anything, and nothing is flagged.

The false-positive rate is checked by simulation in ``tests/unit/test_single_case.py``: null
cohorts (including rates near 0 and 1, between-person spread and runs of identical predictions,
as temporal autocorrelation makes them) flag at most ``alpha`` of the people.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from emocore import metrics
from emocore.errors import ConfigError, check_choice

__all__ = [
    "ALPHA",
    "MIN_OTHERS",
    "FINDING_KEYS",
    "TEST_NAME",
    "crawford_howell",
    "anscombe_arcsine",
    "holm",
    "single_case_tests",
    "confusion_counts",
    "design_effect",
    "atypical_findings",
    "finding_sentence",
    "fold_stability",
]

ALPHA = 0.05
#: Fewest other people for a single-case test to be run at all.
MIN_OTHERS = 5
#: Keys of one finding, in order (``train/study/assess --json`` -> ``atypical``).
FINDING_KEYS: tuple[str, ...] = (
    "design",
    "model",
    "subject",
    "emotion",
    "measure",
    "value",
    "others_mean",
    "others_sd",
    "n_others",
    "statistic",
    "df",
    "p",
    "p_adjusted",
    "flagged",
)
TEST_NAME = "Crawford-Howell t-test on arcsine rates"


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def crawford_howell(
    x: float, controls: Sequence[float], *, alternative: str = "less"
) -> tuple[float, int, float]:
    """Crawford & Howell's (1998) modified t-test of one case against a control sample.

    Returns ``(t, df, p)``: ``t = (x - mean) / (sd * sqrt((n + 1) / n))`` with the sample SD
    (``ddof=1``), ``df = n - 1`` and the p-value of ``alternative`` (``"less"``: the case is
    below the controls; ``"greater"``; ``"two-sided"``). Needs at least two controls with a
    positive SD.
    """
    c = np.asarray(controls, dtype=float)
    c = c[np.isfinite(c)]
    if len(c) < 2:
        raise ConfigError(f"crawford_howell needs at least 2 controls; {len(c)} were given")
    sd = float(c.std(ddof=1))
    if sd <= 0:
        raise ConfigError(
            "crawford_howell: the controls have no spread (SD 0); the test is undefined"
        )
    n = len(c)
    t = (float(x) - float(c.mean())) / (sd * math.sqrt((n + 1) / n))
    return t, n - 1, _t_tail(np.array([t]), n - 1, alternative)[0]


def _t_tail(t: np.ndarray, df: np.ndarray | int, alternative: str) -> np.ndarray:
    if alternative == "less":
        return stats.t.cdf(t, df)
    if alternative == "greater":
        return stats.t.sf(t, df)
    if alternative == "two-sided":
        return np.minimum(1.0, 2 * stats.t.sf(np.abs(t), df))
    check_choice("alternative", alternative, ("less", "greater", "two-sided"))
    raise AssertionError("unreachable")


def anscombe_arcsine(k: np.ndarray | float, n: np.ndarray | float) -> np.ndarray:
    """Anscombe's variance-stabilising transform of ``k`` successes out of ``n``.

    ``asin(sqrt((k + 3/8) / (n + 3/4)))``; its binomial sampling variance is about
    ``1 / (4 n + 2)`` for any rate. ``NaN`` where ``n <= 0``.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.arcsin(np.sqrt(np.clip((k + 0.375) / (n + 0.75), 0.0, 1.0)))
    return np.where(n > 0, out, np.nan)


def _sampling_var(n: np.ndarray) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(n > 0, 1.0 / (4.0 * n + 2.0), np.nan)


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (``NaN`` entries are left out and stay ``NaN``).

    Controls the family-wise error rate under any dependence between the tests.
    """
    values = np.asarray(p, dtype=float)
    out = np.full(values.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(values))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(values[ok], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * values[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


# ---------------------------------------------------------------------------------------------
# The tests on a cohort's confusion counts
# ---------------------------------------------------------------------------------------------


def _measures(
    counts: np.ndarray, design_effect: np.ndarray
) -> tuple[list[tuple[str, int, int]], dict[str, np.ndarray]]:
    """Every measure of every subject: raw value, tested value, its sampling variance, direction.

    ``counts`` is (subjects, K, K): true class x predicted class. Returns the measure list
    ``(measure, true class index, predicted index or -1)`` and arrays of shape (subjects,
    measures): ``value`` (raw rate), ``score`` (what is tested), ``var`` (sampling variance of
    ``score``), ``n`` (volumes behind the raw value) and ``lower`` (1 where a deficit is a low
    score).
    """
    n_sub, k, _ = counts.shape
    n = counts.sum(axis=2)  # (S, K) volumes per true class
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / np.where(n > 0, n, np.nan)[:, :, None]
    t = anscombe_arcsine(counts, n[:, :, None])  # (S, K, K)
    v = _sampling_var(n) * design_effect[None, :]  # (S, K)
    diag = np.arange(k)
    t_rec, v_rec = t[:, diag, diag], v
    # the person's own level of recall: the mean arcsine recall
    level_rec = np.nanmean(t_rec, axis=1)

    measures: list[tuple[str, int, int]] = [("balanced_accuracy", -1, -1)]
    cols: dict[str, list[Any]] = {key: [] for key in ("value", "score", "var", "n", "lower")}

    def add(value, score, var, count, lower):
        cols["value"].append(value)
        cols["score"].append(score)
        cols["var"].append(var)
        cols["n"].append(count)
        cols["lower"].append(np.full(n_sub, lower, dtype=float))

    with np.errstate(invalid="ignore"):
        k_ok = np.maximum(np.isfinite(t_rec).sum(axis=1), 1)
        add(
            np.nanmean(rates[:, diag, diag], axis=1),
            level_rec,
            np.nansum(v_rec, axis=1) / k_ok**2,
            n.sum(axis=1),
            1,
        )
        for e in range(k):
            others = [j for j in range(k) if j != e]
            rest = np.nanmean(t_rec[:, others], axis=1)
            k_rest = np.maximum(np.isfinite(t_rec[:, others]).sum(axis=1), 1)
            measures.append(("recall", e, -1))
            add(
                rates[:, e, e],
                t_rec[:, e] - rest,
                v_rec[:, e] + np.nansum(v_rec[:, others], axis=1) / k_rest**2,
                n[:, e],
                1,
            )
        for e in range(k):
            for f in range(k):
                if e == f:
                    continue
                # how often the person's other emotions were taken for f: a model that calls
                # everything f is not specific to e
                rest = [j for j in range(k) if j not in (e, f)]
                col = np.nanmean(t[:, rest, f], axis=1)
                k_col = np.maximum(np.isfinite(t[:, rest, f]).sum(axis=1), 1)
                measures.append(("confusion", e, f))
                add(
                    rates[:, e, f],
                    t[:, e, f] - col,
                    v[:, e] + np.nansum(v[:, rest], axis=1) / k_col**2,
                    n[:, e],
                    0,
                )
    return measures, {key: np.stack(vals, axis=1) for key, vals in cols.items()}


def single_case_tests(
    counts: np.ndarray,
    classes: Sequence[str],
    subjects: Sequence[str],
    *,
    alpha: float = ALPHA,
    min_others: int = MIN_OTHERS,
    design_effect: float | Sequence[float] | np.ndarray = 1.0,
) -> pd.DataFrame:
    """Test every subject against the others on every measure; one row per subject x measure.

    ``counts[s, e, f]`` = subject ``s``'s volumes of true class ``e`` predicted as ``f``. Columns:
    ``subject``, ``emotion`` (``ALL`` for balanced accuracy; the true emotion otherwise),
    ``measure`` (``balanced_accuracy``, ``recall`` or ``E->F``), ``predicted_as`` (F for a
    confusion, else ``None``), ``n_volumes``, ``value`` (the raw rate), ``others_mean``,
    ``others_sd``, ``others_min``, ``others_max`` (of the others' raw rates), ``n_others``,
    ``statistic`` (t), ``df``, ``p`` (one-sided), ``p_adjusted`` (Holm over the subject's tests),
    ``flagged`` and ``too_few_others``. See the module docstring for what is tested.

    ``design_effect`` (one number, or one per true class) inflates the binomial sampling
    variance of the floor: neighbouring volumes are predicted alike, so ``n`` volumes carry the
    information of about ``n / design_effect`` independent ones (:func:`design_effect`).
    """
    counts = np.asarray(counts, dtype=float)
    classes = [str(c) for c in classes]
    subjects = [str(s) for s in subjects]
    if counts.ndim != 3 or counts.shape[1] != counts.shape[2] or counts.shape[1] != len(classes):
        raise ConfigError(
            f"counts must have shape (subjects, {len(classes)}, {len(classes)}); got {counts.shape}"
        )
    if counts.shape[0] != len(subjects):
        raise ConfigError(f"{len(subjects)} subjects named for {counts.shape[0]} count matrices")
    if not 0 < alpha < 1:
        raise ConfigError(f"'alpha' must be in (0, 1); {alpha!r} was given")
    deff = np.broadcast_to(np.asarray(design_effect, dtype=float), (len(classes),))
    if not np.all(np.isfinite(deff)) or np.any(deff < 1):
        raise ConfigError(f"'design_effect' must be >= 1; {design_effect!r} was given")

    rows: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        # nan-aware means and SDs over no class or one person warn; they are NaN, and untested
        warnings.simplefilter("ignore", RuntimeWarning)
        measures, m = _measures(counts, deff)
        ok = np.isfinite(m["score"])
        for s in range(len(subjects)):
            rows += _subject_rows(s, measures, m, ok, classes, subjects, alpha, min_others)
    return pd.DataFrame(rows)


def _subject_rows(
    s: int,
    measures: list[tuple[str, int, int]],
    m: dict[str, np.ndarray],
    ok: np.ndarray,
    classes: list[str],
    subjects: list[str],
    alpha: float,
    min_others: int,
) -> list[dict[str, Any]]:
    """The tests of subject ``s`` against every other subject (see :func:`single_case_tests`)."""
    value, score, var = m["value"], m["score"], m["var"]
    n_sub = len(subjects)
    rows: list[dict[str, Any]] = []
    others = np.delete(np.arange(n_sub), s)
    o_ok = ok[others]
    n_others = o_ok.sum(axis=0)
    o_score = np.where(o_ok, score[others], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(o_score, axis=0)
        sd = np.nanstd(o_score, axis=0, ddof=1)
        floor = np.sqrt(np.nanmean(np.where(o_ok, var[others], np.nan), axis=0))
        spread = np.fmax(sd, floor)
        t = (score[s] - mean) / (spread * np.sqrt((n_others + 1) / np.maximum(n_others, 1)))
    testable = ok[s] & (n_others >= max(min_others, 2)) & np.isfinite(t)
    lower = m["lower"][s] == 1
    p = np.where(
        lower,
        stats.t.cdf(t, np.maximum(n_others - 1, 1)),
        stats.t.sf(t, np.maximum(n_others - 1, 1)),
    )
    p = np.where(testable, p, np.nan)
    p_adj = holm(p)
    o_value = np.where(o_ok, value[others], np.nan)
    with np.errstate(invalid="ignore"):
        v_mean = np.nanmean(o_value, axis=0)
        v_sd = np.nanstd(o_value, axis=0, ddof=1)
        if len(others):
            v_min, v_max = np.nanmin(o_value, axis=0), np.nanmax(o_value, axis=0)
        else:  # one person alone: nobody to compare with (e.g. one LOSO fold's job)
            v_min = v_max = np.full(value.shape[1], np.nan)
    for j, (measure, e, f) in enumerate(measures):
        rows.append(
            {
                "subject": subjects[s],
                "emotion": "ALL" if e < 0 else classes[e],
                "measure": measure if f < 0 else f"{classes[e]}->{classes[f]}",
                "predicted_as": classes[f] if f >= 0 else None,
                "n_volumes": int(m["n"][s, j]) if np.isfinite(m["n"][s, j]) else 0,
                "value": _num(value[s, j]),
                "others_mean": _num(v_mean[j]),
                "others_sd": _num(v_sd[j]),
                "others_min": _num(v_min[j]),
                "others_max": _num(v_max[j]),
                "n_others": int(n_others[j]),
                "statistic": _num(t[j]) if testable[j] else None,
                "df": int(n_others[j] - 1) if testable[j] else None,
                "p": _num(p[j]),
                "p_adjusted": _num(p_adj[j]),
                "flagged": bool(testable[j] and p_adj[j] < alpha),
                "too_few_others": bool(ok[s, j] and n_others[j] < max(min_others, 2)),
            }
        )
    return rows


def _num(value: Any) -> float | None:
    if value is None:
        return None
    x = float(value)
    return x if math.isfinite(x) else None


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
) -> pd.DataFrame:
    """Every single-case test of every subject in one design's held-out prediction table.

    The columns of :func:`single_case_tests` with ``design`` and ``model`` in front, plus
    ``js_distance`` (a description, not a test: Jensen-Shannon distance, base 2, between what the
    model answered for this person's volumes of the emotion and what it answered for the others'
    pooled; on ``recall`` rows) and ``sentence`` (:func:`finding_sentence`).

    ``extra`` = (subject, confusion counts) adds a person known only by counts (a newly assessed
    person); the design effect still comes from ``table``.
    """
    classes = list(classes)
    subjects, counts = confusion_counts(table, classes)
    if extra is not None:
        subjects = [*subjects, str(extra[0])]
        counts = np.concatenate([counts, np.asarray(extra[1], dtype=float)[None]], axis=0)
    if len(subjects) == 0:
        return pd.DataFrame(columns=[*FINDING_KEYS, "sentence"])
    out = single_case_tests(
        counts,
        classes,
        subjects,
        alpha=alpha,
        min_others=min_others,
        design_effect=design_effect(table, classes),
    )
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
    out["sentence"] = [finding_sentence(r, alpha=alpha) for r in out.to_dict("records")]
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def _p(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def finding_sentence(row: dict[str, Any], *, alpha: float = ALPHA) -> str:
    """One plain sentence: the measure, the person's value, the others', the test, p and verdict.

    E.g. "48 % of sub-05's LOVE volumes were decoded as SADNESS, against 0-16 % in the 7 others
    (Crawford-Howell t-test on arcsine rates, relative to how often the person's other emotions
    were decoded as SADNESS: t(6) = 5.10, p < 0.001, Holm-adjusted p = 0.021): atypical at alpha = 0.05".
    """
    who = f"sub-{row['subject']}"
    n_o = row["n_others"]
    span = (
        f"{_pct(row['others_min'])}-{_pct(row['others_max'])}".replace(" %-", "-")
        if row.get("others_min") is not None
        else "n/a"
    )
    against = f"against {span} in the {n_o} other{'s' if n_o != 1 else ''}"
    measure = row["measure"]
    if measure == "balanced_accuracy":
        what = f"{who}'s balanced accuracy over all emotions was {_pct(row['value'])}, {against}"
        relative = ""
    elif measure == "recall":
        what = (
            f"{_pct(row['value'])} of {who}'s {row['emotion']} volumes were decoded as "
            f"{row['emotion']}, {against}"
        )
        relative = ", relative to the person's other emotions"
    else:
        what = (
            f"{_pct(row['value'])} of {who}'s {row['emotion']} volumes were decoded as "
            f"{row['predicted_as']}, {against}"
        )
        relative = (
            f", relative to how often the person's other emotions were decoded as "
            f"{row['predicted_as']}"
        )
    if row.get("statistic") is None:
        if row.get("too_few_others"):
            return (
                f"{what}: not tested (needs at least {MIN_OTHERS} other people; too little power)"
            )
        return f"{what}: not tested"
    test = (
        f"{TEST_NAME}{relative}: t({row['df']}) = {row['statistic']:.2f}, p = {_p(row['p'])}, "
        f"Holm-adjusted p = {_p(row['p_adjusted'])}"
    ).replace("p = < ", "p < ")
    verdict = f"atypical at α = {alpha:g}" if row["flagged"] else f"not atypical at α = {alpha:g}"
    return f"{what} ({test}): {verdict}"


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
                "fold_balanced_accuracy_mean": _num(np.mean(scores)) if scores else None,
                "fold_balanced_accuracy_sd": _num(np.std(scores, ddof=1))
                if len(scores) > 1
                else None,
            }
        )
    return pd.DataFrame(rows)
