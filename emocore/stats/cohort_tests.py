"""The single-case tests on a cohort's confusion counts: every measure of every person (balanced
accuracy, recalls, confusions), the others' reference distribution, the two criteria of a
dissociation, and the fixed order of a verdict. :mod:`emocore.stats.single_case` describes the
method; :func:`single_case_tests` runs it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from emocore.errors import ConfigError, check_choice
from emocore.stats import gatekeeping
from emocore.stats.crawford import anscombe_arcsine, holm, sampling_var, z_cc_interval

__all__ = [
    "ALPHA",
    "FINDING_KEYS",
    "FOCUS",
    "MIN_OTHERS",
    "PROCEDURES",
    "STAT_CH",
    "STAT_FLOORED",
    "TEST_NAME",
    "Measure",
    "Reference",
    "case_tests",
    "measure_list",
    "measure_scores",
    "number_or_none",
    "reference",
    "single_case_tests",
    "verdict_graph",
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


def measure_scores(counts: np.ndarray, design_effect: np.ndarray) -> dict[str, np.ndarray]:
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
    v = sampling_var(n) * design_effect[None, :]  # (S, K)
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
    """The :class:`Reference` of the people in ``scores`` (rows of :func:`measure_scores`)."""
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
        scores = measure_scores(counts, deff)
    people: list[tuple[str, dict[str, np.ndarray], np.ndarray]] = []
    for s, subject in enumerate(subjects):
        keep = np.arange(len(subjects)) != s
        people.append((subject, {key: v[s] for key, v in scores.items()}, keep))
    if extra_counts is not None:
        extra = measure_scores(np.asarray(extra_counts, dtype=float)[None], deff)
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
                "value": number_or_none(mine["value"][j]),
                "others_mean": number_or_none(ref.value_mean[j]),
                "others_sd": number_or_none(ref.value_sd[j]),
                "others_min": number_or_none(ref.value_min[j]),
                "others_max": number_or_none(ref.value_max[j]),
                "n_others": n_o,
                "statistic": number_or_none(tests["t_raw"][j]) if testable else None,
                "df": n_o - 1 if testable else None,
                "p": number_or_none(tests["p"][j]),
                "p_adjusted": number_or_none(p_adj[j]) if testable else None,
                "flagged": bool(testable and p_adj[j] <= alpha),
                "statistic_name": (
                    (STAT_FLOORED if ref.floored_raw[j] else STAT_CH) if testable else None
                ),
                "p_raw": number_or_none(tests["p_raw"][j]) if testable else None,
                "statistic_relative": (
                    number_or_none(tests["t_rel"][j]) if testable and relative else None
                ),
                "p_relative": number_or_none(tests["p_rel"][j]) if testable and relative else None,
                "statistic_relative_name": (
                    (STAT_FLOORED if ref.floored_rel[j] else STAT_CH)
                    if testable and relative
                    else None
                ),
                "z_cc": number_or_none(tests["z_raw"][j]) if testable else None,
                "z_cc_ci95": [float(ci[0]), float(ci[1])] if ci is not None else None,
                "procedure": procedure,
                "step": steps[j] if procedure == "verdict" else None,
                "too_few_others": bool(np.isfinite(mine["raw"][j]) and n_o < max(min_others, 2)),
            }
        )
    return rows


def number_or_none(value: Any) -> float | None:
    """A plain float for a table or JSON; None for None, NaN and infinities."""
    if value is None:
        return None
    x = float(value)
    return x if math.isfinite(x) else None
