"""A finished run's single-case findings, as the dashboard pages and the report show them.

Every evaluation holds ``findings`` (one single-case test per subject x measure, see
:func:`emocore.single_case.atypical_findings`), ``stability`` (each subject's fold-to-fold spread
of balanced accuracy) and ``alpha`` (``metrics.json`` -> design -> model family). Runs made before
the tests existed lack them: :func:`run_findings` then returns a :class:`RunFindings` that is not
``available``, and :func:`predates_message` says how to get them.

Everything here is pure (dicts in, tables and sentences out): the pages read the files through
:mod:`emocore.ui.loaders`, the report through :func:`emocore.report.read_json`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from emocore.evaluate import records
from emocore.single_case import ALPHA, FINDING_KEYS, MIN_OTHERS, TEST_NAME

__all__ = [
    "COLUMNS",
    "RunFindings",
    "run_findings",
    "predates_message",
    "measure_label",
    "p_text",
    "power_note",
    "person_summary",
    "run_summary",
    "stability_sentence",
    "js_sentence",
    "person_table",
    "flagged_table",
    "TEST_CAPTION",
]

#: Columns of :attr:`RunFindings.table` (metrics.json has them all; study.json ``atypical`` has
#: :data:`~emocore.single_case.FINDING_KEYS` and ``sentence``, the rest are then missing).
COLUMNS: tuple[str, ...] = (
    *FINDING_KEYS,
    "predicted_as",
    "n_volumes",
    "others_min",
    "others_max",
    "too_few_others",
    "js_distance",
    "sentence",
)
_STABILITY_COLUMNS = (
    "design",
    "model",
    "subject",
    "n_folds",
    "fold_balanced_accuracy_mean",
    "fold_balanced_accuracy_sd",
)
#: What the test is, for captions under a finding.
TEST_CAPTION = (
    f"{TEST_NAME}, one-sided (worse than the others); a recall or a confusion is tested relative "
    "to the person's other emotions, so being decoded worse overall is one finding (balanced "
    "accuracy); Holm-adjusted over the person's tests in one design and model family; held-out "
    "predictions"
)
_SPECIAL = ("balanced_accuracy", "recall")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float | None:
    """``value`` as a float, or None where it is missing (None or NaN)."""
    return None if _missing(value) else float(value)


@dataclass(frozen=True)
class RunFindings:
    """The single-case tests of one run: every finding, fold stability, the level and splits.

    ``available`` is False for runs made before single-case findings existed; the tables are
    then empty. ``splits`` maps each design to its split (e.g. ``leave-one-run-out``).
    """

    table: pd.DataFrame
    stability: pd.DataFrame
    alpha: float = ALPHA
    available: bool = True
    splits: dict[str, str] = field(default_factory=dict)

    def split(self, design: str) -> str:
        return self.splits.get(design, "?")

    def person(
        self, subject: str, design: str, *, model: str = "cnn", emotion: str | None = None
    ) -> pd.DataFrame:
        """One person's findings in one design and model family: flagged first, then by Holm p."""
        t = self.table
        sel = (t["subject"] == str(subject)) & (t["design"] == design) & (t["model"] == model)
        if emotion is not None:
            sel &= t["emotion"] == emotion
        return _ranked(t[sel])

    def headline(self, subject: str, design: str, *, model: str = "cnn") -> list[dict[str, Any]]:
        """What to say first about a person: the flagged findings, else balanced accuracy."""
        mine = self.person(subject, design, model=model)
        flagged = mine.loc[mine["flagged"]]
        if len(flagged):
            return records(flagged)
        return records(mine[mine["measure"] == "balanced_accuracy"])

    def emotion_findings(
        self, subject: str, design: str, emotion: str, *, model: str = "cnn"
    ) -> list[dict[str, Any]]:
        """The recall finding of ``emotion`` and its most significant confusion (smallest p;
        the most frequent wrong answer when nothing could be tested)."""
        mine = self.person(subject, design, model=model, emotion=emotion)
        recall = mine[mine["measure"] == "recall"]
        confusions = mine[~mine["measure"].isin(_SPECIAL)]
        if confusions["p"].notna().any():
            top = confusions.sort_values("p", kind="stable", na_position="last").head(1)
        else:
            top = confusions.sort_values("value", ascending=False, kind="stable").head(1)
        return records(recall) + records(top)

    def values(self, design: str, model: str, emotion: str, measure: str) -> pd.DataFrame:
        """Every person's value of one measure (columns ``subject``, ``value``): the chart's dots."""
        t = self.table
        sel = (
            (t["design"] == design)
            & (t["model"] == model)
            & (t["emotion"] == emotion)
            & (t["measure"] == measure)
        )
        return t.loc[sel, ["subject", "value"]].dropna().reset_index(drop=True)

    def stability_of(
        self, subject: str, design: str, *, model: str = "cnn"
    ) -> dict[str, Any] | None:
        s = self.stability
        sel = (s["subject"] == str(subject)) & (s["design"] == design) & (s["model"] == model)
        rows = records(s[sel])
        return rows[0] if rows else None

    def flagged(self) -> pd.DataFrame:
        """Every flagged finding of the run, by design, model family and person."""
        f = self.table.loc[self.table["flagged"]]
        return f.sort_values(["design", "model", "subject", "p_adjusted"], kind="stable")

    def tested(self) -> pd.DataFrame:
        """The (design, model, subject) triples that had at least one test."""
        t = self.table[self.table["p"].notna()]
        return t[["design", "model", "subject"]].drop_duplicates().reset_index(drop=True)


def _ranked(frame: pd.DataFrame) -> pd.DataFrame:
    order = frame.assign(_unflagged=~frame["flagged"]).sort_values(
        ["_unflagged", "p_adjusted", "p"], kind="stable", na_position="last"
    )
    return order.drop(columns="_unflagged")


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns)).astype(object)
    frame = frame.where(frame.notna(), None)
    if "flagged" in frame:
        frame["flagged"] = pd.Series(
            [bool(v) if v is not None else False for v in frame["flagged"]],
            index=frame.index,
            dtype=bool,
        )
        frame["subject"] = frame["subject"].astype(str)
        for column in (
            "value",
            "others_mean",
            "others_sd",
            "others_min",
            "others_max",
            "p",
            "p_adjusted",
            "statistic",
            "js_distance",
        ):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    else:
        frame["subject"] = frame["subject"].astype(str)
    return frame


def run_findings(study: dict[str, Any], metrics: dict[str, Any] | None = None) -> RunFindings:
    """The findings of a run from its ``study.json`` and (when there is one) ``metrics.json``.

    ``metrics.json`` holds every column (the others' range, ``js_distance``, ...); without it the
    study's ``atypical`` entries are used. A run with neither ``findings`` nor ``atypical``
    predates single-case findings: the result is not ``available``.
    """
    splits = {
        r["design"]: r.get("split", "?")
        for r in study.get("results", [])
        if r.get("model", "cnn") == "cnn"
    }
    findings: list[dict[str, Any]] = []
    stability: list[dict[str, Any]] = []
    alpha = study.get("alpha")
    found = False
    for design, families in (metrics or {}).items():
        if not isinstance(families, dict):
            continue
        for family, ev in families.items():
            if family == "plans" or not isinstance(ev, dict) or "findings" not in ev:
                continue
            found = True
            findings += [{"design": design, "model": family, **f} for f in ev["findings"]]
            stability += [{"design": design, "model": family, **r} for r in ev.get("stability", [])]
            alpha = ev.get("alpha", alpha)
            split = (ev.get("summary") or {}).get("split")
            if split and family == "cnn":
                splits[design] = split
    if not found and "atypical" in study:
        found = True
        findings = list(study.get("atypical") or [])
        stability = list(study.get("stability") or [])
    return RunFindings(
        table=_frame(findings, COLUMNS),
        stability=_frame(stability, _STABILITY_COLUMNS),
        alpha=float(alpha) if alpha is not None else ALPHA,
        available=found,
        splits=splits,
    )


# -- sentences -------------------------------------------------------------------------------
def predates_message(run_id: str) -> str:
    return (
        f"Run {run_id} predates single-case findings: it was made before emocore tested each "
        "person against the others, so it has no findings to show. Re-run `emocore study` with "
        f"the same options to get them here (`emocore evaluate --run {run_id} --json` prints them "
        "from the stored predictions without training)."
    )


def p_text(p: Any) -> str:
    """A p-value as text: ``< 0.001``, else three decimals; ``n/a`` when missing."""
    if _missing(p):
        return "n/a"
    return "< 0.001" if float(p) < 0.001 else f"{float(p):.3f}"


def p_is(p: Any) -> str:
    """``p = 0.012`` or ``p < 0.001``: :func:`p_text` with its relation, for running text."""
    text = p_text(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _pct(x: Any, digits: int = 1) -> str:
    return "n/a" if _missing(x) else f"{100 * float(x):.{digits}f} %"


def _range(row: dict[str, Any]) -> str:
    lo, hi = _number(row.get("others_min")), _number(row.get("others_max"))
    if lo is None or hi is None:
        return "n/a"
    return f"{100 * lo:.1f}–{100 * hi:.1f} %"


def measure_label(row: dict[str, Any]) -> str:
    """The measure of a finding in words, e.g. "share of LOVE volumes decoded as SADNESS"."""
    measure, emotion = row["measure"], row.get("emotion")
    if measure == "balanced_accuracy":
        return "balanced accuracy (all emotions)"
    if measure == "recall":
        return f"{emotion} recall (share of {emotion} volumes decoded as {emotion})"
    target = row.get("predicted_as") or str(measure).split("->")[-1]
    return f"share of {emotion} volumes decoded as {target}"


def _people(n: int) -> str:
    return f"{n} other {'person' if n == 1 else 'people'}"


def power_note(rows: list[dict[str, Any]], *, design: str) -> str | None:
    """Says that nothing could be tested when the person has fewer than MIN_OTHERS others."""
    short = [
        r
        for r in rows
        if r.get("too_few_others")
        or (_missing(r.get("p")) and int(r.get("n_others") or 0) < MIN_OTHERS)
    ]
    if not short:
        return None
    n = int(short[0].get("n_others") or 0)
    return (
        f"Only {_people(n)} in the {design} design: a single-case test needs at least "
        f"{MIN_OTHERS}, so it has too little power here and nothing is flagged."
    )


def person_summary(found: RunFindings, subject: str, design: str, *, model: str = "cnn") -> str:
    """One line on a person in one design and family: how many tests, how many flagged."""
    mine = found.person(subject, design, model=model)
    tested = mine[mine["p"].notna()]
    where = f"{design}, {model.upper() if model == 'cnn' else model}, split {found.split(design)}"
    if mine.empty:
        return f"sub-{subject} has no single-case tests in {where}."
    if tested.empty:
        n = int(mine["n_others"].max() or 0)
        return (
            f"sub-{subject} was not tested in {where}: {_people(n)}; a single-case test needs "
            f"at least {MIN_OTHERS} (too little power), so nothing is flagged."
        )
    n_flag = int(tested["flagged"].sum())
    if n_flag == 0:
        return (
            f"No atypical finding for sub-{subject} at α = {found.alpha:g} in {where} "
            f"({len(tested)} tests against {_people(int(tested['n_others'].max()))}, "
            "Holm-adjusted)."
        )
    return (
        f"{n_flag} of {len(tested)} tests of sub-{subject} atypical at α = {found.alpha:g} in "
        f"{where} (Holm-adjusted):"
    )


def run_summary(found: RunFindings) -> str:
    """One line on a whole run: flagged findings, or that no person was flagged and how many
    people x designs were tested, or that there were too few people."""
    tested = found.tested()
    if tested.empty:
        n = found.table["subject"].nunique()
        return (
            f"Too few people for single-case tests: a person is compared with at least "
            f"{MIN_OTHERS} others, and this run has {n} {'person' if n == 1 else 'people'}."
        )
    people = tested["subject"].nunique()
    designs = tested["design"].nunique()
    families = tested["model"].nunique()
    scope = (
        f"{people} people × {designs} design{'s' if designs != 1 else ''} × {families} model "
        f"famil{'ies' if families != 1 else 'y'} tested"
    )
    flagged = found.flagged()
    if flagged.empty:
        return f"No person was flagged at α = {found.alpha:g} ({scope})."
    who = flagged["subject"].nunique()
    return (
        f"{len(flagged)} finding{'s' if len(flagged) != 1 else ''} flagged at α = "
        f"{found.alpha:g} in {who} {'person' if who == 1 else 'people'} ({scope}; Holm-adjusted "
        "within each person, design and model family)."
    )


def stability_sentence(row: dict[str, Any] | None, *, subject: str, design: str, split: str) -> str:
    """How stable the person's model is: the fold-to-fold SD of its balanced accuracy."""
    head = f"Stability of sub-{subject}'s decoding ({design}, split: {split})"
    if row is None:
        return f"{head}: not recorded."
    n = int(row.get("n_folds") or 0)
    sd, mean = row.get("fold_balanced_accuracy_sd"), row.get("fold_balanced_accuracy_mean")
    if n <= 1 or _missing(sd):
        return f"{head}: one fold: no spread (every volume of this person was held out at once)."
    return (
        f"{head}: fold-to-fold SD of balanced accuracy {_pct(sd)} over {n} folds (mean "
        f"{_pct(mean)}). A large SD means the numbers depend on which runs were held out."
    )


def js_sentence(row: dict[str, Any]) -> str | None:
    """The Jensen-Shannon description on a recall finding (not a test)."""
    js = _number(row.get("js_distance"))
    if js is None:
        return None
    return (
        f"Jensen-Shannon distance between what the model answered for sub-{row['subject']}'s "
        f"{row['emotion']} volumes and for the others' (pooled): {js:.2f} (0 = same "
        "answers, 1 = disjoint; a description, not a test)."
    )


# -- tables ----------------------------------------------------------------------------------
def _short_measure(row: dict[str, Any]) -> str:
    """A measure in a few words that name its emotion: "LOVE recall", "LOVE->SADNESS",
    "balanced accuracy"."""
    measure = str(row["measure"])
    if measure == "recall":
        return f"{row.get('emotion')} recall"
    return measure.replace("_", " ")


def person_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One person's findings for display: rates in %, p-values as text, no raw numbers; the
    measure names its emotion ("LOVE recall"), so the page can hide the emotion column
    (:data:`emocore.ui.tables.PERSON_COLUMNS`)."""
    rows = []
    for r in records(frame):
        tested = not _missing(r.get("statistic"))
        rows.append(
            {
                "emotion": r["emotion"],
                "measure": _short_measure(r),
                "value": _pct(r["value"]),
                "others' mean": _pct(r["others_mean"]),
                "others' range": _range(r),
                "others": r["n_others"],
                "t": f"{float(r['statistic']):.2f}" if tested else "n/a",
                "df": str(int(r["df"])) if tested and not _missing(r.get("df")) else "n/a",
                "p": p_text(r["p"]),
                "Holm p": p_text(r["p_adjusted"]),
                "flagged": "yes" if r["flagged"] else "no",
            }
        )
    return pd.DataFrame(rows)


def _finding_words(row: dict[str, Any]) -> str:
    """What was atypical, in words short enough for a table cell: "LOVE decoded as SADNESS",
    "LOVE recall", "balanced accuracy"."""
    measure = str(row["measure"])
    if measure in ("recall", "balanced_accuracy"):
        return _short_measure(row)
    target = row.get("predicted_as") or measure.split("->")[-1]
    return f"{row.get('emotion')} decoded as {target}"


def flagged_table(found: RunFindings) -> pd.DataFrame:
    """Every flagged finding of a run for display (design, split, model, person, emotion, the
    finding in words ("LOVE decoded as SADNESS"), measure, value, others' range, Holm p, and
    the whole sentence, which no table cell holds: the Subject and Misclassified scenes pages
    print it)."""
    rows = [
        {
            "design": r["design"],
            "split": found.split(r["design"]),
            "model": r["model"],
            "subject": f"sub-{r['subject']}",
            "emotion": r["emotion"],
            "finding": _finding_words(r),
            "measure": r["measure"].replace("_", " "),
            "value": _pct(r["value"]),
            "others' range": _range(r),
            "Holm p": p_text(r["p_adjusted"]),
            "sentence": r["sentence"],
        }
        for r in records(found.flagged())
    ]
    return pd.DataFrame(rows)


def with_assessment(found: RunFindings, assessment: dict[str, Any]) -> RunFindings:
    """The run's findings with a newly assessed person's findings and stability added, so the
    person's rows sit beside the cohort's (their charts mark the person among the cohort)."""
    table = _frame(list(assessment.get("atypical") or []), COLUMNS)
    stability = _frame(list(assessment.get("stability") or []), _STABILITY_COLUMNS)
    return RunFindings(
        table=pd.concat([found.table, table], ignore_index=True),
        stability=pd.concat([found.stability, stability], ignore_index=True),
        alpha=float(assessment.get("alpha", found.alpha)),
        available=True,
        splits=found.splits,
    )


def flagged_elsewhere(
    found: RunFindings, subject: str, design: str, *, model: str = "cnn"
) -> str | None:
    """A line naming the person's flagged findings in the run's other designs and model
    families (so a page showing one design does not hide them), or None when there are none."""
    f = found.flagged()
    f = f[(f["subject"] == str(subject)) & ~((f["design"] == design) & (f["model"] == model))]
    if f.empty:
        return None
    parts = [
        f"{d} ({'CNN' if m == 'cnn' else m}): "
        + ", ".join(
            "recall of " + r.emotion if r.measure == "recall" else str(r.measure)
            for r in rows.itertuples()
        )
        for (d, m), rows in f.groupby(["design", "model"], sort=True)
    ]
    return f"sub-{subject} is also flagged in " + "; ".join(parts) + "."
