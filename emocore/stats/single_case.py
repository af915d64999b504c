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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from emocore.errors import ConfigError, check_choice
from emocore.stats import gatekeeping, metrics

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
]

ALPHA = 0.05
#: Fewest other people for a single-case test to be run at all.
MIN_OTHERS = 5
#: The emotions the clinical question names first (the poster's love finding; fear the most
#: consistently decoded emotion of studyforrest): they get most of a verdict's alpha.
FOCUS: tuple[str, ...] = ("LOVE", "FEAR")
#: Keys of one finding, in order (``train/study/assess --json`` -> ``atypical``; a verdict's
#: ``flagged``). ``statistic``/``df`` are the t of the person's own rate against the others'
#: (``p_raw``); ``statistic_relative`` the t of the difference test (``p_relative``); ``p`` the
#: finding's p (the larger of the two for a recall or confusion); ``p_adjusted`` after the
#: ``procedure``'s correction; ``z_cc`` the effect size of the person's rate with its 95 %
#: interval ``z_cc_ci95``.
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
    "statistic_name",
    "p_raw",
    "statistic_relative",
    "p_relative",
    "z_cc",
    "z_cc_ci95",
    "procedure",
)
TEST_NAME = "Crawford-Howell t-test on arcsine rates"
#: ``statistic_name`` where the others' sample SD was used, and where the sampling-noise floor
#: replaced it (then it is a more conservative t, not Crawford & Howell's).
STAT_CH = "Crawford-Howell t"
STAT_FLOORED = "t with the others' SD floored at sampling noise (conservative)"
PROCEDURES = ("holm", "verdict")


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


def z_cc_interval(z: float | np.ndarray, n: int | np.ndarray, *, level: float = 0.95) -> np.ndarray:
    """Interval of the case-controls effect size ``Z_CC = (x - m) / s`` (Crawford & Garthwaite
    2002; Crawford, Garthwaite & Porter 2010), for one value or an array of them.

    ``z * sqrt(n)`` follows a non-central t with ``n - 1`` degrees of freedom and
    non-centrality ``delta * sqrt(n)``; the limits are the non-centralities at which the
    observed value is the upper and lower ``(1 - level) / 2`` quantile, divided by
    ``sqrt(n)``. Returns ``(..., 2)`` (lower, upper); NaN where it cannot be computed (fewer
    than 2 controls, a missing ``z``). scipy has the non-central t's CDF (``nctdtr``) but no
    inverse in its non-centrality, so the limits are found by bisection, all at once.
    """
    z = np.asarray(z, dtype=float)
    n = np.broadcast_to(np.asarray(n, dtype=float), z.shape)
    ok = np.isfinite(z) & (n >= 2)
    root_n = np.sqrt(np.where(ok, n, 2.0))
    df = np.where(ok, n, 2.0) - 1
    c = np.where(ok, z, 0.0) * root_n
    tail = (1.0 - level) / 2.0

    def cdf(delta: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            value = special.nctdtr(df, delta, c)
        # the CDF fails far in the tails: the normal approximation of Abramowitz & Stegun
        # (26.7.10) takes over there
        approx = special.ndtr((c * (1 - 1 / (4 * df)) - delta) / np.sqrt(1 + c * c / (2 * df)))
        return np.where(np.isfinite(value), value, approx)

    def limit(target: float) -> np.ndarray:
        # the CDF at c falls as delta grows: bisect between brackets that surely hold the root
        lo, hi = c - 12.0 - np.abs(c), c + 12.0 + np.abs(c)
        for _ in range(45):
            mid = (lo + hi) / 2
            above = cdf(mid) > target
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        return (lo + hi) / 2

    out = np.stack([limit(1.0 - tail), limit(tail)], axis=-1) / root_n[..., None]
    return np.where(ok[..., None], out, np.nan)


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


@dataclass(frozen=True)
class Measure:
    """One tested measure: ``kind`` is ``balanced_accuracy``, ``recall`` or ``confusion``;
    ``emotion`` and ``predicted_as`` are class indices (-1 where they do not apply)."""

    kind: str
    emotion: int = -1
    predicted_as: int = -1

    @property
    def lower(self) -> bool:
        """A deficit is a low score (balanced accuracy, recall) rather than a high one."""
        return self.kind != "confusion"

    def key(self, classes: Sequence[str]) -> str:
        """``balanced_accuracy``, ``recall`` or ``E->F`` (the table's ``measure`` column)."""
        if self.kind == "confusion":
            return f"{classes[self.emotion]}->{classes[self.predicted_as]}"
        return self.kind


def measure_list(k: int) -> list[Measure]:
    """The measures of ``k`` classes in the order every table lists them: balanced accuracy,
    the ``k`` recalls, then the ``k (k - 1)`` confusions row by row."""
    return [
        Measure("balanced_accuracy"),
        *(Measure("recall", e) for e in range(k)),
        *(Measure("confusion", e, f) for e in range(k) for f in range(k) if e != f),
    ]


def _scores(counts: np.ndarray, design_effect: np.ndarray) -> dict[str, np.ndarray]:
    """Every measure of every person, as arrays of shape (people, measures).

    ``counts`` is (people, K, K): true class x predicted class. Keys: ``value`` (the raw
    rate), ``raw`` (its arcsine; for balanced accuracy the mean arcsine recall), ``var_raw``
    (its sampling variance, inflated by the design effect), ``rel`` (the difference from the
    person's other emotions; NaN for balanced accuracy), ``var_rel`` and ``n`` (volumes behind
    the raw value).
    """
    counts = np.asarray(counts, dtype=float)
    n_sub, k, _ = counts.shape
    n = counts.sum(axis=2)  # (S, K) volumes per true class
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / np.where(n > 0, n, np.nan)[:, :, None]
    t = anscombe_arcsine(counts, n[:, :, None])  # (S, K, K)
    v = _sampling_var(n) * design_effect[None, :]  # (S, K)
    diag = np.arange(k)
    t_rec = t[:, diag, diag]
    nan = np.full(n_sub, np.nan)
    cols: dict[str, list[np.ndarray]] = {
        key: [] for key in ("value", "raw", "var_raw", "rel", "var_rel", "n")
    }

    def add(**arrays: np.ndarray) -> None:
        for key, value in arrays.items():
            cols[key].append(np.asarray(value, dtype=float))

    k_ok = np.maximum(np.isfinite(t_rec).sum(axis=1), 1)
    add(
        value=np.nanmean(rates[:, diag, diag], axis=1),
        raw=np.nanmean(t_rec, axis=1),
        var_raw=np.nansum(v, axis=1) / k_ok**2,
        rel=nan,
        var_rel=nan,
        n=n.sum(axis=1),
    )
    for e in range(k):
        others = [j for j in range(k) if j != e]
        k_rest = np.maximum(np.isfinite(t_rec[:, others]).sum(axis=1), 1)
        add(
            value=rates[:, e, e],
            raw=t_rec[:, e],
            var_raw=v[:, e],
            rel=t_rec[:, e] - np.nanmean(t_rec[:, others], axis=1),
            var_rel=v[:, e] + np.nansum(v[:, others], axis=1) / k_rest**2,
            n=n[:, e],
        )
    for e in range(k):
        for f in range(k):
            if e == f:
                continue
            # how often the person's other emotions were taken for f: a model that calls
            # everything f is not specific to e
            rest = [j for j in range(k) if j not in (e, f)]
            k_col = np.maximum(np.isfinite(t[:, rest, f]).sum(axis=1), 1)
            add(
                value=rates[:, e, f],
                raw=t[:, e, f],
                var_raw=v[:, e],
                rel=t[:, e, f] - np.nanmean(t[:, rest, f], axis=1),
                var_rel=v[:, e] + np.nansum(v[:, rest], axis=1) / k_col**2,
                n=n[:, e],
            )
    return {key: np.stack(vals, axis=1) for key, vals in cols.items()}


@dataclass(frozen=True)
class Reference:
    """The others' distribution of every measure (arrays of shape (measures,)), against which a
    person is tested: ``n`` others, the mean and spread (SD, floored) of the raw and relative
    scores, whether the floor replaced the sample SD, and the others' raw rates
    (``value_mean``, ``value_sd``, ``value_min``, ``value_max``)."""

    n: np.ndarray
    mean_raw: np.ndarray
    spread_raw: np.ndarray
    floored_raw: np.ndarray
    mean_rel: np.ndarray
    spread_rel: np.ndarray
    floored_rel: np.ndarray
    value_mean: np.ndarray
    value_sd: np.ndarray
    value_min: np.ndarray
    value_max: np.ndarray


def _spread(
    score: np.ndarray, var: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    o = np.where(ok, score, np.nan)
    mean = np.nanmean(o, axis=0)
    sd = np.nanstd(o, axis=0, ddof=1)
    floor = np.sqrt(np.nanmean(np.where(ok, var, np.nan), axis=0))
    floored = ~(sd >= floor)  # also where the sample SD is undefined
    return mean, np.fmax(sd, floor), floored & np.isfinite(floor)


def reference(scores: dict[str, np.ndarray]) -> Reference:
    """The :class:`Reference` of the people in ``scores`` (rows of :func:`_scores`)."""
    ok = np.isfinite(scores["raw"])
    ok_rel = ok & np.isfinite(scores["rel"])
    value = np.where(ok, scores["value"], np.nan)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # nan-aware means and SDs over no person or one warn; they are NaN, and untested
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_raw, spread_raw, floored_raw = _spread(scores["raw"], scores["var_raw"], ok)
        mean_rel, spread_rel, floored_rel = _spread(scores["rel"], scores["var_rel"], ok_rel)
        empty = len(value) == 0
        return Reference(
            n=ok.sum(axis=0),
            mean_raw=mean_raw,
            spread_raw=spread_raw,
            floored_raw=floored_raw,
            mean_rel=mean_rel,
            spread_rel=spread_rel,
            floored_rel=floored_rel,
            value_mean=np.nanmean(value, axis=0),
            value_sd=np.nanstd(value, axis=0, ddof=1),
            value_min=np.full(value.shape[1], np.nan) if empty else np.nanmin(value, axis=0),
            value_max=np.full(value.shape[1], np.nan) if empty else np.nanmax(value, axis=0),
        )


def _t_p(
    x: np.ndarray, mean: np.ndarray, spread: np.ndarray, n: np.ndarray, lower: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crawford-Howell t, its one-sided p (in the deficit's direction) and Z_CC."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - mean) / spread
        t = z / np.sqrt((n + 1) / np.maximum(n, 1))
    df = np.maximum(n - 1, 1)
    # scipy.special.stdtr is the t distribution's CDF without scipy.stats' checks (the
    # verdict's power simulations call this thousands of times); the upper tail is CDF(-t)
    p = special.stdtr(df, np.where(lower, t, -t))
    return t, np.where(np.isfinite(t), p, np.nan), z


def case_tests(
    scores: dict[str, np.ndarray],
    ref: Reference,
    measures: Sequence[Measure],
    *,
    min_others: int = MIN_OTHERS,
    p_only: bool = False,
) -> dict[str, np.ndarray]:
    """The tests of people (rows of ``scores``) against ``ref``, shape (people, measures).

    Keys: ``t_raw``, ``p_raw``, ``z_raw`` (the person's rate against the others'), ``t_rel``,
    ``p_rel``, ``z_rel`` (the difference from the person's other emotions against the others'
    differences), ``p`` (balanced accuracy: ``p_raw``; otherwise the larger of the two, both
    criteria of a dissociation) and ``testable``. With ``p_only`` just ``p`` (what power
    simulations need; both criteria share their degrees of freedom, so the larger p is the
    tail of the less extreme t, and one t-distribution call serves both).
    """
    lower = np.array([m.lower for m in measures])
    if p_only:
        with np.errstate(invalid="ignore", divide="ignore"):
            factor = np.sqrt((ref.n + 1) / np.maximum(ref.n, 1))
            t_raw = (scores["raw"] - ref.mean_raw) / (ref.spread_raw * factor)
            t_rel = (scores["rel"] - ref.mean_rel) / (ref.spread_rel * factor)
        overall = np.array([m.kind == "balanced_accuracy" for m in measures])
        # the deficit's direction: low for recall and balanced accuracy, high for confusion
        deficit = np.where(lower, 1.0, -1.0)
        worst = np.where(overall, t_raw * deficit, np.maximum(t_raw * deficit, t_rel * deficit))
        p = special.stdtr(np.maximum(ref.n - 1, 1), worst)
        ok = np.isfinite(worst) & (ref.n >= max(min_others, 2))
        return {"p": np.where(ok, p, np.nan)}
    t_raw, p_raw, z_raw = _t_p(scores["raw"], ref.mean_raw, ref.spread_raw, ref.n, lower)
    t_rel, p_rel, z_rel = _t_p(scores["rel"], ref.mean_rel, ref.spread_rel, ref.n, lower)
    overall = np.array([m.kind == "balanced_accuracy" for m in measures])
    p = np.where(overall, p_raw, np.fmax(p_raw, p_rel))
    p = np.where(overall | np.isfinite(p_rel), p, np.nan)
    testable = np.isfinite(p) & (ref.n >= max(min_others, 2))
    return {
        "t_raw": t_raw,
        "p_raw": p_raw,
        "z_raw": z_raw,
        "t_rel": t_rel,
        "p_rel": p_rel,
        "z_rel": z_rel,
        "p": np.where(testable, p, np.nan),
        "testable": testable,
    }


def verdict_graph(
    classes: Sequence[str], focus: Sequence[str] = FOCUS
) -> tuple[gatekeeping.Graph, list[int]]:
    """The order a verdict tests one person's measures in, as a graph, and each measure's step.

    Fixed before any result is seen (measures as in :func:`measure_list`):

    1. **overall**: balanced accuracy, "decoded worse overall", starts with 10 % of ``alpha``;
    2. **the emotions of the clinical question** (``focus``: LOVE, FEAR) share 80 %: for each,
       how often it was decoded correctly (its recall) and where its volumes went (its four
       confusions) start with equal shares;
    3. **the other emotions**: their recalls share the last 10 %, and their confusions open
       once the recall is found.

    Within one emotion, a finding hands its share to the emotion's other measures; a finding
    on balanced accuracy hands its share to the focus emotions' recalls. The confusions of a
    focus emotion start with a share of their own, not behind its recall, because an E->F
    effect moves only part of its mass out of the recall: behind a recall gate, 35 % vs 10 %
    LOVE->SADNESS with 9 others was found in 0 % of simulated cohorts, with shares of their
    own in 10 % (the poster's volume counts; see README.md). Without a focus emotion among
    ``classes`` every emotion is in step 3 and its recalls share 90 %.
    """
    k = len(classes)
    measures = measure_list(k)
    index = {(m.kind, m.emotion, m.predicted_as): i for i, m in enumerate(measures)}
    focus_idx = [classes.index(e) for e in focus if e in classes]
    rest_idx = [e for e in range(k) if e not in focus_idx]
    h = len(measures)
    w = np.zeros(h)
    g = np.zeros((h, h))
    steps = [1] * h
    w[0] = 0.1
    for e in range(k):
        rec = index[("recall", e, -1)]
        conf = [index[("confusion", e, f)] for f in range(k) if f != e]
        family = [rec, *conf]
        if e in focus_idx:
            for i in family:
                w[i] = 0.8 / (len(focus_idx) * len(family))
            g[0, rec] = 1.0 / len(focus_idx)
        else:
            w[rec] = (0.1 if focus_idx else 0.9) / len(rest_idx)
            if not focus_idx:
                g[0, rec] = 1.0 / len(rest_idx)
        for i in family:
            steps[i] = 2 if e in focus_idx else 3
            for j in family:
                if i != j:
                    g[i, j] = 1.0 / (len(family) - 1)
    return gatekeeping.Graph(w, g), steps


def single_case_tests(
    counts: np.ndarray,
    classes: Sequence[str],
    subjects: Sequence[str],
    *,
    alpha: float = ALPHA,
    min_others: int = MIN_OTHERS,
    design_effect: float | Sequence[float] | np.ndarray = 1.0,
    procedure: str = "holm",
    focus: Sequence[str] = FOCUS,
    extra_counts: np.ndarray | None = None,
    extra_subject: str | None = None,
    only: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Test every subject against the others on every measure; one row per subject x measure.

    ``counts[s, e, f]`` = subject ``s``'s volumes of true class ``e`` predicted as ``f``. Columns:
    ``subject``, ``emotion`` (``ALL`` for balanced accuracy; the true emotion otherwise),
    ``measure`` (``balanced_accuracy``, ``recall`` or ``E->F``), ``predicted_as`` (F for a
    confusion, else ``None``), ``n_volumes``, ``value`` (the raw rate), ``others_mean``,
    ``others_sd``, ``others_min``, ``others_max`` (of the others' raw rates), ``n_others``, the
    tests (see :data:`FINDING_KEYS`), ``step`` (the measure's step in a verdict's order),
    ``flagged`` and ``too_few_others``. See the module docstring for what is tested.

    ``procedure`` ``holm`` corrects over each person's tests with Holm's method (exploratory
    designs); ``verdict`` with the fixed order of :func:`verdict_graph` (the primary analysis).

    ``design_effect`` (one number, or one per true class) inflates the binomial sampling
    variance of the floor: neighbouring volumes are predicted alike, so ``n`` volumes carry the
    information of about ``n / design_effect`` independent ones (:func:`design_effect`).

    ``extra_counts`` (K, K) with ``extra_subject`` adds a person tested against all of
    ``subjects`` (a newly assessed person), who is not among anybody else's others. ``only``
    limits the rows to these people (everybody still serves as the others).
    """
    counts = np.asarray(counts, dtype=float)
    classes = [str(c) for c in classes]
    subjects = [str(s) for s in subjects]
    k = len(classes)
    if counts.ndim != 3 or counts.shape[1] != counts.shape[2] or counts.shape[1] != k:
        raise ConfigError(f"counts must have shape (subjects, {k}, {k}); got {counts.shape}")
    if counts.shape[0] != len(subjects):
        raise ConfigError(f"{len(subjects)} subjects named for {counts.shape[0]} count matrices")
    if not 0 < alpha < 1:
        raise ConfigError(f"'alpha' must be in (0, 1); {alpha!r} was given")
    check_choice("procedure", procedure, PROCEDURES)
    deff = np.broadcast_to(np.asarray(design_effect, dtype=float), (k,))
    if not np.all(np.isfinite(deff)) or np.any(deff < 1):
        raise ConfigError(f"'design_effect' must be >= 1; {design_effect!r} was given")

    measures = measure_list(k)
    graph, steps = verdict_graph(classes, focus)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = _scores(counts, deff)
    people: list[tuple[str, dict[str, np.ndarray], np.ndarray]] = []
    for s, subject in enumerate(subjects):
        keep = np.arange(len(subjects)) != s
        people.append((subject, {key: v[s] for key, v in scores.items()}, keep))
    if extra_counts is not None:
        extra = _scores(np.asarray(extra_counts, dtype=float)[None], deff)
        people.append(
            (
                str(extra_subject),
                {key: v[0] for key, v in extra.items()},
                np.ones(len(subjects), bool),
            )
        )
    if only is not None:
        wanted = {str(o) for o in only}
        people = [person for person in people if person[0] in wanted]
    rows: list[dict[str, Any]] = []
    for subject, mine, keep in people:
        ref = reference({key: v[keep] for key, v in scores.items()})
        tests = case_tests(
            {key: v[None] for key, v in mine.items()}, ref, measures, min_others=min_others
        )
        tests = {key: v[0] for key, v in tests.items()}
        p_adj = (
            holm(tests["p"]) if procedure == "holm" else gatekeeping.adjusted_p(tests["p"], graph)
        )
        rows += _subject_rows(
            subject, mine, ref, tests, p_adj, measures, steps, classes, alpha, min_others, procedure
        )
    return pd.DataFrame(rows)


def _subject_rows(
    subject: str,
    mine: dict[str, np.ndarray],
    ref: Reference,
    tests: dict[str, np.ndarray],
    p_adj: np.ndarray,
    measures: list[Measure],
    steps: list[int],
    classes: list[str],
    alpha: float,
    min_others: int,
    procedure: str,
) -> list[dict[str, Any]]:
    """One person's rows of :func:`single_case_tests`."""
    rows: list[dict[str, Any]] = []
    intervals = z_cc_interval(tests["z_raw"], ref.n)
    for j, m in enumerate(measures):
        testable = bool(tests["testable"][j])
        n_o = int(ref.n[j])
        ci = intervals[j] if testable and np.all(np.isfinite(intervals[j])) else None
        relative = m.kind != "balanced_accuracy"
        rows.append(
            {
                "subject": subject,
                "emotion": "ALL" if m.emotion < 0 else classes[m.emotion],
                "measure": m.key(classes),
                "predicted_as": classes[m.predicted_as] if m.predicted_as >= 0 else None,
                "n_volumes": int(mine["n"][j]) if np.isfinite(mine["n"][j]) else 0,
                "value": _num(mine["value"][j]),
                "others_mean": _num(ref.value_mean[j]),
                "others_sd": _num(ref.value_sd[j]),
                "others_min": _num(ref.value_min[j]),
                "others_max": _num(ref.value_max[j]),
                "n_others": n_o,
                "statistic": _num(tests["t_raw"][j]) if testable else None,
                "df": n_o - 1 if testable else None,
                "p": _num(tests["p"][j]),
                "p_adjusted": _num(p_adj[j]) if testable else None,
                "flagged": bool(testable and p_adj[j] <= alpha),
                "statistic_name": (
                    (STAT_FLOORED if ref.floored_raw[j] else STAT_CH) if testable else None
                ),
                "p_raw": _num(tests["p_raw"][j]) if testable else None,
                "statistic_relative": (_num(tests["t_rel"][j]) if testable and relative else None),
                "p_relative": _num(tests["p_rel"][j]) if testable and relative else None,
                "statistic_relative_name": (
                    (STAT_FLOORED if ref.floored_rel[j] else STAT_CH)
                    if testable and relative
                    else None
                ),
                "z_cc": _num(tests["z_raw"][j]) if testable else None,
                "z_cc_ci95": [float(ci[0]), float(ci[1])] if ci is not None else None,
                "procedure": procedure,
                "step": steps[j] if procedure == "verdict" else None,
                "too_few_others": bool(np.isfinite(mine["raw"][j]) and n_o < max(min_others, 2)),
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


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def _p(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def _against(row: dict[str, Any]) -> str:
    n_o = row["n_others"]
    span = (
        f"{_pct(row['others_min'])}-{_pct(row['others_max'])}".replace(" %-", "-")
        if row.get("others_min") is not None
        else "n/a"
    )
    return f"against {span} in the {n_o} other{'s' if n_o != 1 else ''}"


def finding_what(row: dict[str, Any]) -> str:
    """The finding's numbers in plain words, e.g. "82 % of sub-10's LOVE volumes were decoded
    as SADNESS, against 4-26 % in the 9 others"."""
    who = f"sub-{row['subject']}"
    measure = row["measure"]
    if measure == "balanced_accuracy":
        return (
            f"{who}'s emotions were decoded correctly {_pct(row['value'])} of the time on "
            f"average, {_against(row)}"
        )
    if measure == "recall":
        return (
            f"{_pct(row['value'])} of {who}'s {row['emotion']} volumes were decoded correctly, "
            f"{_against(row)}"
        )
    return (
        f"{_pct(row['value'])} of {who}'s {row['emotion']} volumes were decoded as "
        f"{row['predicted_as']}, {_against(row)}"
    )


def finding_sentence(row: dict[str, Any], *, alpha: float = ALPHA) -> str:
    """One plain sentence: what the person's rate was, the others', and whether it is flagged.

    E.g. "82 % of sub-10's LOVE volumes were decoded as SADNESS, against 4-26 % in the 9 others:
    atypical at α = 0.05". The statistics are in :func:`finding_details`.
    """
    what = finding_what(row)
    if row.get("p") is None:
        if row.get("too_few_others"):
            return (
                f"{what}: not tested (needs at least {MIN_OTHERS} other people; too little power)"
            )
        return f"{what}: not tested"
    if row["flagged"]:
        return f"{what}: atypical at α = {alpha:g}"
    return f"{what}: not flagged at α = {alpha:g} (no evidence it is atypical)"


def _present(value: Any) -> bool:
    """Whether a table value is there: not None and not NaN (pandas turns None into NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _p_is(p: Any) -> str:
    text = _p(p if _present(p) else None)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _t(name: Any, t: Any, df: Any, p: Any) -> str:
    """E.g. "t(8) = 5.10, p < 0.001 [Crawford-Howell t]"."""
    label = f" [{name}]" if _present(name) else ""
    return f"t({int(df)}) = {float(t):.2f}, {_p_is(p)}{label}"


def finding_details(row: dict[str, Any]) -> str:
    """The statistics behind a finding, for a details line: both criteria's t and p, the
    effect size Z_CC with its interval, and the corrected p with its procedure."""
    if not _present(row.get("p")) or not _present(row.get("statistic")):
        return "not tested"
    p_raw = row.get("p_raw") if _present(row.get("p_raw")) else row["p"]
    parts = [
        f"own rate against the others' ({TEST_NAME}): "
        + _t(row.get("statistic_name"), row["statistic"], row["df"], p_raw)
    ]
    if _present(row.get("statistic_relative")):
        against = (
            "the person's other emotions"
            if row["measure"] == "recall"
            else f"how often the person's other emotions were decoded as {row['predicted_as']}"
        )
        parts.append(
            f"relative to {against} (difference test): "
            + _t(
                row.get("statistic_relative_name"),
                row["statistic_relative"],
                row["df"],
                row.get("p_relative"),
            )
        )
    z, ci = row.get("z_cc"), row.get("z_cc_ci95")
    if _present(z):
        interval = (
            f" (95 % CI {ci[0]:.2f} to {ci[1]:.2f})"
            if isinstance(ci, (list, tuple)) and len(ci) == 2
            else ""
        )
        parts.append(f"effect size Z_CC = {float(cast(float, z)):.2f}{interval}")
    step = row.get("step")
    how = (
        "in the verdict's fixed order"
        + (f", step {int(cast(int, step))}" if _present(step) else "")
        if row.get("procedure") == "verdict"
        else "Holm-adjusted over the person's tests in this design"
    )
    parts.append(f"adjusted {_p_is(row.get('p_adjusted'))} ({how})")
    return "; ".join(parts)


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
