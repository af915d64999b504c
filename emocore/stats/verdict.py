"""One verdict per person: the primary analysis, named before the results, and what it could find.

A study runs several designs and two model families, and each could say something about each
person. Reading a flag from any of them would flag typical people far more often than the level
claims, and different pages would lead with different answers. So every study names one
**primary analysis** (``primary`` in study.json) before it trains:

* by default **leave-one-subject-out with the CNN** (:data:`DEFAULT_PRIMARY`): every person is
  decoded by a model that never saw them, and a newly scanned person is decoded by the same
  stored models (each trained on the cohort minus one person), so a newcomer and the cohort
  are compared on equal terms. Without a LOSO design the default falls back to single-subject
  (each person's own model, cross-validated over runs: equal terms too) and then to
  cross-subject (equal for the cohort, not for a newcomer), and says so;
* ``--primary DESIGN:MODEL`` chooses another before the run starts.

Everything else is **exploratory**: shown one click away, labelled, never part of a verdict.

A person's verdict (:func:`person_verdict`) comes from one family of tests in the primary
analysis, tested in an order fixed in advance (:func:`emocore.stats.single_case.verdict_graph`):
overall balanced accuracy; the emotions of the clinical question (LOVE, FEAR): where their
volumes went, and how often they were decoded correctly; then the other emotions. The chance
that a person is flagged for anything at all is at most ``alpha``. A recall or confusion is flagged only when the person's
own rate is abnormal **and** it is abnormal relative to their other emotions (Crawford &
Garthwaite 2005).

Every verdict also says **what the test could have found** (:func:`detectable_effects`): for
each measure of the order's first steps, the rate that would be flagged with 80 % probability
given these others, this person's volume counts and the predictions' autocorrelation, found by
simulating the person with the same statistic and the same order. A verdict with no flag says
"no evidence of atypical decoding" and that rate, never "typical".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from emocore._io import json_safe
from emocore.errors import ConfigError
from emocore.stats import gatekeeping
from emocore.stats.single_case import (
    ALPHA,
    FINDING_KEYS,
    FOCUS,
    MIN_OTHERS,
    Measure,
    atypical_findings,
    case_tests,
    confusion_counts,
    design_effect,
    finding_what,
    measure_list,
    measure_scores,
    reference,
    verdict_graph,
)

__all__ = [
    "DEFAULT_PRIMARY",
    "DESIGN_WORDS",
    "EXPLORATORY",
    "POWER",
    "VERDICT_KEYS",
    "Primary",
    "default_primary",
    "primary_findings",
    "detectable_effects",
    "person_verdict",
    "cohort_verdicts",
    "newcomer_verdict",
    "verdict_of",
    "planted_note",
    "verdict_details",
]

#: How a design or model family that is not the primary analysis is labelled wherever shown.
EXPLORATORY = "exploratory: not part of the verdict"
#: The rate a verdict reports as detectable is flagged with this probability.
POWER = 0.8
#: Keys of one verdict (``study --json`` -> ``verdicts``, ``assess --json`` -> ``verdict``).
VERDICT_KEYS: tuple[str, ...] = (
    "subject",
    "primary",
    "status",
    "flagged",
    "sentence",
    "detectable_effect",
    "alpha",
    "n_others",
)
#: Each design in words, for sentences.
DESIGN_WORDS = {
    "loso": "leave-one-subject-out",
    "single-subject": "single-subject",
    "cross-subject": "cross-subject",
}
_MODELS = ("cnn", "linear")
_FALLBACK = ("loso", "single-subject", "cross-subject")
_WHY = {
    "loso": (
        "every person is decoded by a model that never saw them, and a newly scanned person by "
        "the same stored models, so newcomers and the cohort are compared on equal terms"
    ),
    "single-subject": (
        "each person's own model, cross-validated over runs, as a newcomer's would be; the "
        "study has no leave-one-subject-out design, the default primary analysis"
    ),
    "cross-subject": (
        "the study has neither a leave-one-subject-out nor a single-subject design; the "
        "cross-subject model saw other runs of every cohort member, so a newly scanned person "
        "cannot be compared on equal terms (assess refuses)"
    ),
}


@dataclass(frozen=True)
class Primary:
    """The primary analysis: one design and model family, and how it was chosen."""

    design: str
    model: str = "cnn"
    how: str = "default"

    def __post_init__(self) -> None:
        if self.design not in DESIGN_WORDS:
            raise ConfigError(
                f"the primary analysis' design must be one of {list(DESIGN_WORDS)}; "
                f"{self.design!r} was given (e.g. --primary loso:cnn)"
            )
        if self.model not in _MODELS:
            raise ConfigError(
                f"the primary analysis' model must be one of {list(_MODELS)}; {self.model!r} "
                "was given (e.g. --primary loso:cnn)"
            )

    @classmethod
    def parse(cls, text: str) -> Primary:
        """``DESIGN:MODEL`` (``loso:cnn``) or ``DESIGN`` (the CNN), as ``--primary`` takes it."""
        design, _, model = str(text).strip().partition(":")
        return cls(design.strip(), (model or "cnn").strip(), how="chosen")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Primary | None:
        if not d or not d.get("design"):
            return None
        return cls(str(d["design"]), str(d.get("model") or "cnn"), str(d.get("how") or "default"))

    @property
    def label(self) -> str:
        """E.g. "leave-one-subject-out CNN"."""
        return f"{DESIGN_WORDS[self.design]} {'CNN' if self.model == 'cnn' else 'linear decoder'}"

    def to_dict(self) -> dict[str, Any]:
        why = "chosen with --primary" if self.how == "chosen" else _WHY[self.design]
        return {"design": self.design, "model": self.model, "how": self.how, "why": why}

    def check(self, designs: Sequence[str], *, baseline: bool = True) -> None:
        """ConfigError unless a study of ``designs`` (with or without the linear baseline)
        produces this analysis."""
        if self.design not in designs:
            raise ConfigError(
                f"the primary analysis {self.design}:{self.model} needs the {self.design} "
                f"design, and the study runs {list(designs)}: add it to --designs or choose "
                f"another with --primary (e.g. --primary {designs[0]}:cnn)"
            )
        if self.model == "linear" and not baseline:
            raise ConfigError(
                f"the primary analysis {self.design}:linear needs the linear baseline; drop "
                "--no-baseline or choose the CNN"
            )


#: The default primary analysis when the study runs its design.
DEFAULT_PRIMARY = Primary("loso", "cnn")


def default_primary(designs: Sequence[str]) -> Primary:
    """The documented default for a study of ``designs``: LOSO CNN, else single-subject, else
    cross-subject (see the module docstring)."""
    for design in _FALLBACK:
        if design in designs:
            return Primary(design, "cnn")
    raise ConfigError(f"no design to analyse among {list(designs)}")


# -- the tests of the primary analysis ------------------------------------------------------
def primary_findings(
    table: pd.DataFrame,
    classes: Sequence[str],
    primary: Primary,
    *,
    alpha: float = ALPHA,
    focus: Sequence[str] = FOCUS,
    extra: tuple[str, np.ndarray] | None = None,
    only: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every person's tests in the primary analysis (its held-out ``table``), in the verdict's
    fixed order (:func:`emocore.stats.single_case.atypical_findings` with ``procedure="verdict"``);
    ``only`` these people's when given."""
    return atypical_findings(
        table,
        classes,
        design=primary.design,
        model=primary.model,
        alpha=alpha,
        extra=extra,
        procedure="verdict",
        focus=focus,
        only=only,
    )


# -- what the test could have found ----------------------------------------------------------
def _typical(counts: np.ndarray) -> np.ndarray:
    """The others' mean rate matrix (true x predicted); rows without volumes are uniform."""
    k = counts.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / counts.sum(axis=2, keepdims=True)
    mean = np.nanmean(rates, axis=0) if len(counts) else np.full((k, k), np.nan)
    return np.where(np.isfinite(mean), mean, 1.0 / k)


def _scale_row(row: np.ndarray, j: int, x: float) -> np.ndarray:
    """``row`` with entry ``j`` set to ``x`` and the rest rescaled to sum to ``1 - x``."""
    out = row.copy()
    rest = np.arange(len(row)) != j
    mass = row[rest].sum()
    out[rest] = row[rest] * (1 - x) / mass if mass > 0 else (1 - x) / rest.sum()
    out[j] = x
    return out


def _with_effect(base: np.ndarray, m: Measure, x: float) -> np.ndarray:
    """The typical rate matrix with one effect of size ``x`` planted: balanced accuracy ``x``
    (mass moved evenly off the diagonal), recall ``x``, or the E->F rate ``x``."""
    k = len(base)
    p = base.copy()
    if m.kind == "balanced_accuracy":
        ba0 = float(np.mean(np.diag(base)))
        lam = x / ba0 if ba0 > 0 else 0.0
        wrong = (1 - np.eye(k)) / (k - 1)
        return lam * base + (1 - lam) * wrong
    if m.kind == "recall":
        p[m.emotion] = _scale_row(base[m.emotion], m.emotion, x)
    else:
        p[m.emotion] = _scale_row(base[m.emotion], m.predicted_as, x)
    return p


def _draw(p: np.ndarray, n: np.ndarray, deff: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` count matrices of a person with rates ``p``, ``n`` volumes per class, whose
    predictions come in runs: ``n / deff`` independent draws per class, scaled back to ``n``."""
    rng = np.random.default_rng(seed)
    k = len(p)
    out = np.zeros((size, k, k))
    for e in range(k):
        if n[e] <= 0:
            continue
        n_eff = max(1, int(round(n[e] / deff[e])))
        out[:, e] = rng.multinomial(n_eff, p[e] / p[e].sum(), size=size) * (n[e] / n_eff)
    return out


def detectable_effects(
    others: np.ndarray,
    n_volumes: np.ndarray,
    classes: Sequence[str],
    *,
    deff: np.ndarray | float = 1.0,
    alpha: float = ALPHA,
    focus: Sequence[str] = FOCUS,
    power: float = POWER,
    n_sim: int = 300,
    seed: int = 0,
    steps: Sequence[int] = (1, 2),
) -> list[dict[str, Any]]:
    """The smallest effect the verdict flags with probability ``power``, per measure.

    ``others`` (O, K, K) are the others' confusion counts, ``n_volumes`` (K,) the person's
    volumes per emotion, ``deff`` the design effect of the predictions' runs
    (:func:`emocore.stats.single_case.design_effect`). For each measure of the order's ``steps`` a
    person like the typical other (their mean rates) is given one effect (a lower balanced
    accuracy, a lower recall, a higher E->F rate), simulated ``n_sim`` times, and run through
    the same tests and the same order; the effect is found by bisection. Each entry:
    ``measure``, ``emotion``, ``predicted_as``, ``direction`` (``below``/``above``), ``rate``
    (None when not even the extreme reaches ``power``), ``power_at_extreme``, ``others_mean``,
    ``n_volumes``, ``n_others``, ``power`` and ``sentence``.
    """
    classes = [str(c) for c in classes]
    k = len(classes)
    others = np.asarray(others, dtype=float)
    n_volumes = np.asarray(n_volumes, dtype=float)
    deff = np.broadcast_to(np.asarray(deff, dtype=float), (k,))
    measures = measure_list(k)
    graph, order = verdict_graph(classes, focus)
    n_others = len(others)
    if n_others < MIN_OTHERS:
        return []
    ref = reference(measure_scores(others, deff))
    base = _typical(others)
    chosen = [j for j in range(len(measures)) if order[j] in steps]

    def chance_flagged(xs: Sequence[float]) -> np.ndarray:
        """P(flagged) of each chosen measure with its effect at ``xs``: one batch of tests."""
        counts = np.concatenate(
            [
                _draw(_with_effect(base, measures[j], x), n_volumes, deff, n_sim, seed + j)
                for j, x in zip(chosen, xs, strict=True)
            ]
        )
        flagged = gatekeeping.rejected(
            case_tests(measure_scores(counts, deff), ref, measures, p_only=True)["p"], graph, alpha
        )
        return np.array(
            [flagged[i * n_sim : (i + 1) * n_sim, j].mean() for i, j in enumerate(chosen)]
        )

    typical, extreme, direction = [], [], []
    for j in chosen:
        m = measures[j]
        if m.kind == "balanced_accuracy":
            typical.append(float(np.mean(np.diag(base))))
        elif m.kind == "recall":
            typical.append(float(base[m.emotion, m.emotion]))
        else:
            typical.append(float(base[m.emotion, m.predicted_as]))
        extreme.append(1.0 if m.kind == "confusion" else 0.0)
        direction.append("above" if m.kind == "confusion" else "below")
    at_extreme = chance_flagged(extreme)
    # bisection between the typical rate (power about alpha) and the extreme, all measures at
    # once: 8 halvings leave the rate within 0.4 percentage points
    near, far = np.array(typical), np.array(extreme)
    for _ in range(8):
        mid = (near + far) / 2
        reached = chance_flagged(mid) >= power
        far = np.where(reached, mid, far)
        near = np.where(reached, near, mid)
    out = []
    for i, j in enumerate(chosen):
        m = measures[j]
        n_e = int(n_volumes.sum() if m.emotion < 0 else n_volumes[m.emotion])
        ok = n_e > 0 and at_extreme[i] >= power
        entry = {
            "measure": m.key(classes),
            "emotion": "ALL" if m.emotion < 0 else classes[m.emotion],
            "predicted_as": classes[m.predicted_as] if m.predicted_as >= 0 else None,
            "step": order[j],
            "direction": direction[i],
            "rate": float(far[i]) if ok else None,
            "power_at_extreme": float(at_extreme[i]) if n_e > 0 else 0.0,
            "others_mean": typical[i],
            "n_volumes": n_e,
            "n_others": n_others,
            "power": power,
        }
        entry["sentence"] = _detectable_sentence(entry)
        out.append(entry)
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def _measure_words(entry: dict[str, Any]) -> str:
    if entry["measure"] == "balanced_accuracy":
        return "a balanced accuracy (all emotions)"
    if entry["measure"] == "recall":
        return f"a share of {entry['emotion']} volumes decoded correctly"
    return f"a share of {entry['emotion']} volumes decoded as {entry['predicted_as']}"


def _detectable_sentence(entry: dict[str, Any]) -> str:
    """E.g. "with 9 others and 49 LOVE volumes, a share of LOVE volumes decoded as SADNESS
    above 41 % (others' mean 10 %) would be flagged with 80 % probability"."""
    what = _measure_words(entry)
    volumes = (
        f"{entry['n_volumes']} volumes"
        if entry["emotion"] == "ALL"
        else f"{entry['n_volumes']} {entry['emotion']} volumes"
    )
    head = f"with {entry['n_others']} others and {volumes}"
    mean = f"others' mean {_pct(entry['others_mean'])}"
    chance = f"{100 * entry['power']:.0f} % probability"
    if entry["rate"] is None:
        extreme = "0 %" if entry["direction"] == "below" else "100 %"
        return (
            f"{head}, even {what} of {extreme} ({mean}) would be flagged with only "
            f"{100 * entry['power_at_extreme']:.0f} % probability: the test cannot reach "
            f"{chance} for this measure"
        )
    end = 0.0 if entry["direction"] == "below" else 1.0
    if abs(entry["rate"] - end) < 1e-9:  # nothing short of the extreme reaches it
        return f"{head}, only {what} of {_pct(end)} ({mean}) would be flagged with {chance}"
    return (
        f"{head}, {what} {entry['direction']} {_pct(entry['rate'])} ({mean}) would be flagged "
        f"with {chance}"
    )


# -- verdicts --------------------------------------------------------------------------------
def _kind_rank(row: dict[str, Any]) -> int:
    return {"balanced_accuracy": 2, "recall": 1}.get(str(row["measure"]), 0)


def person_verdict(
    subject: str,
    rows: pd.DataFrame,
    primary: Primary,
    *,
    detectable: list[dict[str, Any]],
    alpha: float = ALPHA,
    split: str | None = None,
) -> dict[str, Any]:
    """The verdict on one person from their rows of :func:`primary_findings`.

    Keys: :data:`VERDICT_KEYS` plus ``split``, ``procedure`` and ``details`` (the statistics
    of every flagged finding). ``status`` is ``flagged``, ``no evidence`` or ``not tested``.
    """
    subject = str(subject)
    mine = rows[rows["subject"].astype(str) == subject]
    tested = mine[mine["p"].notna()]
    n_others = int(mine["n_others"].max()) if len(mine) else 0
    where = f"{primary.label}, {n_others} others, α = {alpha:g}"
    flagged = [
        {
            key: r.get(key)
            for key in (
                *FINDING_KEYS,
                "predicted_as",
                "others_min",
                "others_max",
                "n_volumes",
                "step",
                "sentence",
                "details",
            )
        }
        for r in sorted(
            mine[mine["flagged"].astype(bool)].to_dict("records"),
            key=lambda r: (_kind_rank(r), r.get("p_adjusted") or 1.0),
        )
    ]
    if tested.empty:
        status = "not tested"
        sentence = (
            f"sub-{subject} was not tested: a single-case test needs at least {MIN_OTHERS} "
            f"other people, and the {primary.label} has {n_others}."
        )
    elif flagged:
        status = "flagged"
        sentence = (
            f"Atypical decoding for sub-{subject} ({where}): "
            + "; ".join(finding_what(f) for f in flagged)
            + "."
        )
    else:
        status = "no evidence"
        focus = [d for d in detectable if d["measure"] == "recall"]
        could = "; ".join(d["sentence"] for d in focus) if focus else ""
        sentence = f"No evidence of atypical decoding for sub-{subject} ({where})." + (
            f" What it could have found: {could}." if could else ""
        )
    return json_safe(
        {
            "subject": subject,
            "primary": primary.to_dict(),
            "status": status,
            "flagged": flagged,
            "sentence": sentence,
            "detectable_effect": detectable,
            "alpha": alpha,
            "n_others": n_others,
            "split": split,
            "procedure": (
                "one family per person in an order fixed in advance (balanced accuracy; where "
                "LOVE and FEAR volumes went, and how often they were decoded correctly; the other "
                "emotions), graphical procedure of Bretz et al. (2009): the chance of flagging a "
                "typical person for anything is at most α"
            ),
        }
    )


def cohort_verdicts(
    table: pd.DataFrame,
    classes: Sequence[str],
    primary: Primary,
    *,
    alpha: float = ALPHA,
    focus: Sequence[str] = FOCUS,
    findings: pd.DataFrame | None = None,
    n_sim: int = 300,
) -> list[dict[str, Any]]:
    """One verdict per person of the primary analysis' held-out prediction ``table``.

    ``findings`` are the table's :func:`primary_findings` when already computed."""
    classes = list(classes)
    if findings is None:
        findings = primary_findings(table, classes, primary, alpha=alpha, focus=focus)
    subjects, counts = confusion_counts(table, classes)
    deff = design_effect(table, classes)
    split = str(table["split"].iloc[0]) if "split" in table.columns and len(table) else None
    out = []
    for s, subject in enumerate(subjects):
        others = np.delete(counts, s, axis=0)
        detectable = detectable_effects(
            others,
            counts[s].sum(axis=1),
            classes,
            deff=deff,
            alpha=alpha,
            focus=focus,
            n_sim=n_sim,
            seed=s,
        )
        out.append(
            person_verdict(
                subject, findings, primary, detectable=detectable, alpha=alpha, split=split
            )
        )
    return out


def newcomer_verdict(
    cohort: pd.DataFrame,
    person_counts: np.ndarray,
    subject: str,
    classes: Sequence[str],
    primary: Primary,
    *,
    alpha: float = ALPHA,
    focus: Sequence[str] = FOCUS,
    n_sim: int = 300,
    exclude: Sequence[str] = (),
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The verdict on a newly assessed person (known by their confusion counts) against the
    cohort's held-out table of the primary analysis, and the person's rows of tests.

    ``exclude`` names cohort members left out of the reference: the people the study's own
    verdicts flagged. A control sample should not hold people the same test found atypical
    (clinical norms leave out people with a known condition): one such person among ten
    others inflates the others' spread so much that a newcomer with the same atypical decoding
    goes unseen (the demo's sub-12 behind sub-10: LOVE->SADNESS detectable only above 83 %
    with sub-10 in the reference). The cohort's verdicts came first, so this is decided
    before the newcomer is seen; the simulation in ``tests/unit/test_verdict.py`` checks the
    newcomer's false-positive rate with it. The verdict records ``excluded``.
    """
    classes = list(classes)
    left_out = sorted({str(x) for x in exclude} & set(cohort["subject"].astype(str)))
    reference_table = cohort[~cohort["subject"].astype(str).isin(left_out)]
    rows = primary_findings(
        reference_table,
        classes,
        primary,
        alpha=alpha,
        focus=focus,
        extra=(subject, person_counts),
        only=[str(subject)],
    )
    rows = rows[rows["subject"].astype(str) == str(subject)]
    _, counts = confusion_counts(reference_table, classes)
    detectable = detectable_effects(
        counts,
        np.asarray(person_counts, dtype=float).sum(axis=1),
        classes,
        deff=design_effect(cohort, classes),
        alpha=alpha,
        focus=focus,
        n_sim=n_sim,
    )
    split = str(cohort["split"].iloc[0]) if "split" in cohort.columns and len(cohort) else None
    verdict = person_verdict(
        subject, rows, primary, detectable=detectable, alpha=alpha, split=split
    )
    verdict["excluded"] = left_out
    if left_out:
        who = ", ".join(f"sub-{x}" for x in left_out)
        verdict["sentence"] += (
            f" ({who} {'is' if len(left_out) == 1 else 'are'} left out of the reference: "
            "flagged by the study's own verdicts.)"
        )
    return verdict, rows


def verdict_of(verdicts: Sequence[dict[str, Any]], subject: str) -> dict[str, Any] | None:
    """The verdict on ``subject`` among ``verdicts`` (None when the person has none)."""
    return next((v for v in verdicts if str(v.get("subject")) == str(subject)), None)


def planted_note(planted: Sequence[str] | None, subject: str | None = None) -> str | None:
    """On a synthetic cohort, which people were planted as atypical (the generator made their
    LOVE response mostly their SADNESS response), so nobody reads a demo finding as a real
    one; None on real data (``planted`` None)."""
    if planted is None:
        return None
    people = ", ".join(f"sub-{p}" for p in planted) or "nobody"
    about = ""
    if subject is not None:
        about = (
            f" sub-{subject} was planted."
            if str(subject) in {str(p) for p in planted}
            else f" sub-{subject} was not planted."
        )
    return (
        f"Synthetic data: the generator planted {people} as atypical (their LOVE response is "
        f"mostly their SADNESS response).{about}"
    )


def verdict_details(verdict: dict[str, Any]) -> str:
    """The statistics behind a verdict as Markdown: each flagged finding's tests, the order,
    and what the test could have detected for each measure of its first steps."""
    lines = [f"**How it was tested.** {verdict.get('procedure', '')}."]
    for f in verdict.get("flagged") or []:
        lines.append(f"- **{f.get('measure')}** ({f.get('emotion')}): {f.get('details', '')}")
    found = verdict.get("detectable_effect") or []
    if found:
        lines.append(
            f"**What it could have found** (each with {100 * found[0]['power']:.0f} % "
            "probability, for a person otherwise like the others' mean):"
        )
        lines += [f"- {d['sentence']}" for d in found]
    return "\n".join(lines)
