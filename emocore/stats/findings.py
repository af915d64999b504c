"""A finished run's single-case findings, as the dashboard pages and the report show them.

Every evaluation holds ``findings`` (one single-case test per subject x measure, see
:func:`emocore.stats.single_case.atypical_findings`), ``stability`` (each subject's fold-to-fold spread
of balanced accuracy) and ``alpha`` (``metrics.json`` -> design -> model family). Runs made before
the tests existed lack them: :func:`run_findings` then returns a :class:`RunFindings` that is not
``available``, and :func:`predates_message` says how to get them.

Everything here is pure (dicts in, tables and sentences out): the pages read the files through
:mod:`emocore.ui.loaders`, the report through :class:`emocore.runs.results.RunResults`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from emocore._io import records
from emocore.stats.single_case import ALPHA, FINDING_KEYS, FOCUS, MIN_OTHERS, TEST_NAME

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
    "flagged_elsewhere",
    "finding_words",
    "verdict_table",
    "verdict_emotion",
    "no_evidence_line",
    "EXPLORATORY",
    "ROLE_CAPTION",
    "STATUS_WORDS",
    "TEST_CAPTION",
]

#: Columns of :attr:`RunFindings.table` (metrics.json has them all; study.json ``atypical`` has
#: :data:`~emocore.stats.single_case.FINDING_KEYS` and ``sentence``, the rest are then missing).
COLUMNS: tuple[str, ...] = (
    *FINDING_KEYS,
    "predicted_as",
    "n_volumes",
    "others_min",
    "others_max",
    "too_few_others",
    "js_distance",
    "statistic_relative_name",
    "step",
    "sentence",
    "details",
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
    f"{TEST_NAME}, one-sided (worse than the others); a recall or a confusion is a finding only "
    "when the person's own rate is abnormal and it is abnormal relative to their other emotions "
    "(both criteria of a dissociation), so being decoded worse overall is one finding (balanced "
    "accuracy); held-out predictions"
)
#: How each role's tests are corrected, for captions.
ROLE_CAPTION = {
    "primary": (
        "Primary analysis: one family per person, tested in an order fixed in advance (overall; "
        "LOVE and FEAR; the other emotions): the chance of flagging a typical person for "
        "anything is at most α"
    ),
    "exploratory": (
        "Exploratory: Holm-adjusted over the person's tests in this design and model family "
        "only (balanced accuracy, every emotion's recall and every confusion: 26 with five "
        "emotions); not part of the verdict, and flags here are not controlled across designs"
    ),
}
#: How an exploratory design's results are labelled wherever they appear.
EXPLORATORY = "exploratory: not part of the verdict"
#: A verdict's ``status`` in words, for tables (never "typical": a test without a flag found no
#: evidence, it did not show the person to be typical).
STATUS_WORDS = {
    "flagged": "atypical decoding",
    "no evidence": "no evidence of atypical decoding",
    "not tested": "not tested (too few others)",
}
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
    #: (design, model family) of the primary analysis: its findings are the verdicts' tests;
    #: every other design's and family's are exploratory
    primary: tuple[str, str] | None = None

    def split(self, design: str) -> str:
        return self.splits.get(design, "?")

    def is_primary(self, design: str, model: str = "cnn") -> bool:
        return self.primary == (design, model)

    def role(self, design: str, model: str = "cnn") -> str:
        """``primary`` (the verdict's tests) or ``exploratory`` (not part of any verdict)."""
        return "primary" if self.is_primary(design, model) else "exploratory"

    def has(self, design: str, model: str = "cnn") -> bool:
        """Whether the run recorded any finding of ``design`` and ``model`` (a run from before
        single-case findings has those of its primary analysis only, computed when read)."""
        t = self.table
        return bool(((t["design"] == design) & (t["model"] == model)).any())

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

    def flagged(self, role: str | None = None) -> pd.DataFrame:
        """Every flagged finding of the run, by design, model family and person; with ``role``
        only the primary analysis' (``primary``) or only the others' (``exploratory``)."""
        f = self.table.loc[self.table["flagged"]]
        if role is not None:
            mine = self._primary_mask(f)
            f = f[mine] if role == "primary" else f[~mine]
        return f.sort_values(["design", "model", "subject", "p_adjusted"], kind="stable")

    def _primary_mask(self, frame: pd.DataFrame) -> pd.Series:
        if self.primary is None:
            return pd.Series(False, index=frame.index)
        return (frame["design"] == self.primary[0]) & (frame["model"] == self.primary[1])

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
            "p_raw",
            "p_relative",
            "statistic_relative",
            "z_cc",
        ):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    else:
        frame["subject"] = frame["subject"].astype(str)
    return frame


def run_findings(
    study: dict[str, Any], metrics: dict[str, Any] | None = None, *, primary: Any = None
) -> RunFindings:
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
        primary=(primary.design, primary.model) if primary is not None else None,
    )


def with_primary_rows(found: RunFindings, rows: pd.DataFrame) -> RunFindings:
    """``found`` with the primary analysis' findings replaced by ``rows`` (the verdict's tests,
    computed for a run made before verdicts, whose recorded findings of that design were
    Holm-adjusted), so the tables agree with the verdicts shown beside them."""
    if found.primary is None or rows.empty:
        return found
    t = found.table
    keep = t[~((t["design"] == found.primary[0]) & (t["model"] == found.primary[1]))]
    fresh = _frame([r for r in rows.to_dict("records")], COLUMNS)
    return replace(found, table=pd.concat([keep, fresh], ignore_index=True), available=True)


# -- sentences -------------------------------------------------------------------------------
def predates_message(run_id: str, *, design: str | None = None) -> str:
    """What a run from before single-case findings lacks, and how to get it; with ``design``,
    about that design (the verdict's tests of such a run are computed when it is opened, the
    other designs' are not)."""
    what = (
        "so it has no findings to show"
        if design is None
        else f"so its {design} design has no single-case tests to show (the verdict comes from "
        "its primary analysis, tested from the stored predictions when the run is opened)"
    )
    return (
        f"Run {run_id} predates single-case findings: it was made before emocore tested each "
        f"person against the others, {what}. Re-run `emocore study` with the same options to "
        f"get them here (`emocore evaluate --run {run_id} --json` prints them from the stored "
        "predictions without training)."
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
        return f"share of {emotion} volumes decoded correctly"
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


def _where(found: RunFindings, design: str, model: str) -> tuple[str, str]:
    """Where a person's tests were run, and how they were corrected, in words."""
    family = model.upper() if model == "cnn" else model
    where = f"{design}, {family}, split {found.split(design)}"
    if found.is_primary(design, model):
        return f"the primary analysis ({where})", ", in the verdict's order fixed in advance"
    return where, f" ({EXPLORATORY}; Holm-adjusted within this design)"


def person_summary(found: RunFindings, subject: str, design: str, *, model: str = "cnn") -> str:
    """One line on a person in one design and family: how many tests, how many flagged, and
    whether they are the verdict's tests (the primary analysis) or exploratory ones."""
    mine = found.person(subject, design, model=model)
    tested = mine[mine["p"].notna()]
    where, how = _where(found, design, model)
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
            f"No evidence of atypical decoding for sub-{subject} at α = {found.alpha:g} in "
            f"{where}: {len(tested)} tests against {_people(int(tested['n_others'].max()))}"
            f"{how}."
        )
    return (
        f"{n_flag} of {len(tested)} tests of sub-{subject} atypical at α = {found.alpha:g} in "
        f"{where}{how}:"
    )


def run_summary(found: RunFindings, role: str | None = None) -> str:
    """One line on a whole run (with ``role``, on its primary or its exploratory analyses only):
    flagged findings, or that no person was flagged and how many people x designs were tested,
    or that there were too few people."""
    tested = found.tested()
    if role is not None:
        mine = found._primary_mask(tested)
        tested = tested[mine] if role == "primary" else tested[~mine]
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
    flagged = found.flagged(role)
    if flagged.empty:
        return f"No person was flagged at α = {found.alpha:g} ({scope})."
    who = flagged["subject"].nunique()
    how = (
        "in the verdict's order fixed in advance"
        if role == "primary"
        else "Holm-adjusted within each person, design and model family"
    )
    return (
        f"{len(flagged)} finding{'s' if len(flagged) != 1 else ''} flagged at α = "
        f"{found.alpha:g} in {who} {'person' if who == 1 else 'people'} ({scope}; {how})."
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
    """A measure in a few plain words that name its emotion: "LOVE decoded correctly", "LOVE
    decoded as SADNESS", "balanced accuracy"."""
    measure = str(row["measure"])
    if measure == "recall":
        return f"{row.get('emotion')} decoded correctly"
    if measure == "balanced_accuracy":
        return "balanced accuracy"
    target = row.get("predicted_as") or measure.split("->")[-1]
    return f"{row.get('emotion')} decoded as {target}"


def person_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One person's findings for display: rates in %, p-values as text, no raw numbers; the
    measure names its emotion in plain words ("LOVE decoded correctly"), so the page can hide
    the emotion column (:data:`emocore.ui.tables.PERSON_COLUMNS`)."""
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
                "adjusted p": p_text(r["p_adjusted"]),
                "flagged": "yes" if r["flagged"] else "no",
            }
        )
    return pd.DataFrame(rows)


def finding_words(row: dict[str, Any]) -> str:
    """What was atypical, in words short enough for a table cell and saying which way (the tests
    are one-sided): "LOVE decoded as SADNESS", "LOVE decoded correctly less often", "balanced
    accuracy lower"."""
    measure = str(row["measure"])
    if measure == "recall":
        return f"{row.get('emotion')} decoded correctly less often"
    if measure == "balanced_accuracy":
        return "balanced accuracy lower"
    return _short_measure(row)


def flagged_table(found: RunFindings, role: str | None = None) -> pd.DataFrame:
    """Every flagged finding of a run for display (with ``role``, of the primary or of the
    exploratory analyses only): design, split, model, person, emotion, the finding in words
    ("LOVE decoded as SADNESS"), measure, value, others' range, adjusted p, and the whole
    sentence, which no table cell holds: the Subject and Misclassified scenes pages print it."""
    rows = [
        {
            "design": r["design"],
            "split": found.split(r["design"]),
            "model": r["model"],
            "subject": f"sub-{r['subject']}",
            "emotion": r["emotion"],
            "finding": finding_words(r),
            "measure": r["measure"].replace("_", " "),
            "value": _pct(r["value"]),
            "others' range": _range(r),
            "adjusted p": p_text(r["p_adjusted"]),
            "sentence": r["sentence"],
        }
        for r in records(found.flagged(role))
    ]
    return pd.DataFrame(rows)


# -- verdicts, as the Overview lists them ------------------------------------------------------
def _for_what(flagged: list[dict[str, Any]], most: int = 2) -> str:
    """The first ``most`` flagged findings in words (the verdict lists the most specific
    first), and how many more: a table cell, the sentence has them all."""
    words = [finding_words(f) for f in flagged]
    more = f" (+ {len(words) - most} more)" if len(words) > most else ""
    return " · ".join(words[:most]) + more if words else "—"


def verdict_table(
    verdicts: list[dict[str, Any]], *, status: str | None = "flagged"
) -> pd.DataFrame:
    """The verdicts for display, one row per person (only those of ``status``; all with None):
    ``person``, ``verdict`` (:data:`STATUS_WORDS`), ``for what`` (each flagged finding in
    words, e.g. "LOVE decoded as SADNESS"), ``sentence`` (the verdict's one sentence, as every
    page shows it) and ``subject``."""
    rows = [
        {
            "person": f"sub-{v['subject']}",
            "verdict": STATUS_WORDS.get(v["status"], v["status"]),
            "for what": _for_what(v.get("flagged") or []),
            "sentence": v["sentence"],
            "subject": str(v["subject"]),
        }
        for v in verdicts
        if status is None or v["status"] == status
    ]
    columns = ["person", "verdict", "for what", "sentence", "subject"]
    return pd.DataFrame(rows, columns=columns)


def _span(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return (
        f"{100 * lo:.0f} %"
        if round(100 * lo) == round(100 * hi)
        else f"{100 * lo:.0f}–{100 * hi:.0f} %"
    )


def no_evidence_line(verdicts: list[dict[str, Any]]) -> str | None:
    """One line on the people whose verdict found no evidence of atypical decoding: who, and
    what the test could have found for them (each person's rates differ a little: a range), or
    None when nobody's verdict is "no evidence"."""
    clear = [v for v in verdicts if v["status"] == "no evidence"]
    if not clear:
        return None
    who = ", ".join(f"sub-{v['subject']}" for v in clear)
    n = len(clear)
    head = (
        f"**No evidence of atypical decoding** for {n} {'person' if n == 1 else 'people'} "
        f"({who}): not a finding that they are typical."
    )
    reach: dict[str, list[float | None]] = {}
    words: dict[str, str] = {}
    for v in clear:
        for d in v.get("detectable_effect") or []:
            if d["measure"] != "recall":
                continue
            reach.setdefault(d["emotion"], []).append(d.get("rate"))
            words[d["emotion"]] = d["direction"]
    power = next((d["power"] for v in clear for d in v.get("detectable_effect") or []), 0.8)
    parts, unreachable = [], []
    for emotion, rates in reach.items():
        found = [r for r in rates if r is not None]
        if found:
            some = "" if len(found) == len(rates) else f" (for {len(found)} of them)"
            parts.append(f"{emotion} decoded correctly {words[emotion]} {_span(found)}{some}")
        if len(found) < len(rates):
            unreachable.append(emotion if not found else f"{emotion} for the others")
    if not parts and not unreachable:
        return head
    n_others = max(int(v.get("n_others") or 0) for v in clear)
    line = f"{head} What it could have found, with {n_others} others"
    if parts:
        line += f": {'; '.join(parts)} would be flagged with {100 * power:.0f} % probability"
    if unreachable:
        line += (
            f"{'; ' if parts else ': '}for {' and '.join(unreachable)}, not even 0 % decoded "
            f"correctly would be flagged with {100 * power:.0f} % probability"
        )
    return line + ". Each person's page gives their own figures."


def verdict_emotion(verdict: dict[str, Any] | None, classes: list[str]) -> str | None:
    """The emotion a page about the person opens on: the first flagged finding's emotion (the
    verdict lists the most specific findings first), else, for a verdict of no evidence, the
    first emotion of the clinical question (LOVE) among ``classes``; None without a tested
    verdict."""
    if not verdict or verdict.get("status") == "not tested":
        return None
    for f in verdict.get("flagged") or []:
        if f.get("emotion") in classes:
            return str(f["emotion"])
    return next((e for e in FOCUS if e in classes), classes[0] if classes else None)


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
        primary=found.primary,
    )


def flagged_elsewhere(
    found: RunFindings, subject: str, design: str, *, model: str = "cnn"
) -> str | None:
    """A line naming the person's flags in the run's exploratory designs and model families
    other than the one shown (so a page showing one design does not hide them, nor present
    them as the verdict), or None when there are none. The primary analysis' flags are the
    verdict, shown above every page, so they are not repeated here."""
    f = found.flagged("exploratory")
    f = f[(f["subject"] == str(subject)) & ~((f["design"] == design) & (f["model"] == model))]
    if f.empty:
        return None
    parts = [
        f"{d} ({'CNN' if m == 'cnn' else m}): " + ", ".join(finding_words(r) for r in records(rows))
        for (d, m), rows in f.groupby(["design", "model"], sort=True)
    ]
    return (
        "Exploratory (not part of the verdict, and not controlled across designs): "
        f"sub-{subject} is also flagged in " + "; ".join(parts) + "."
    )
