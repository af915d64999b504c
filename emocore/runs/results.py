"""One finished run's folder, opened once: :class:`RunResults`.

Every reader of a run goes through here (the CLI, the report, assessments, inference and the
dashboard's cached loader), so a missing or damaged file gets one message wherever it is read,
and tables are read with one convention: ``subject`` stays text ("01", not 1) and only an empty
cell is missing (a subject labelled "NA" stays "NA").

A run folder holds::

    study.json          config, classes, headline results, provenance; read in the current
                        format whatever emocore wrote it (emocore.runs.schema)
    metrics.json        per design and model family: summary, per-subject scores,
                        misclassifications, single-case findings, fold stability
    predictions.tsv     held-out CNN predictions (baseline.tsv: the linear decoder's)
    curves.tsv          training curves; embeddings.tsv
    models/<design>/<name>.pt           final models (recorded in the registry as checkpoints)
    inference/<design>/<name>/sub-XX.tsv  stored predictions of a model for one person
    saliency/<design>/...               saliency maps (see emocore.data.derivatives)
    assessments/sub-XX/assessment.json  a new person assessed against the cohort
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from emocore._io import check_path_name, read_table
from emocore.data.derivatives import saliency_map_path
from emocore.errors import ConfigError, EmocoreError, RegistryError, check_choice
from emocore.runs.bundle import check_rows, expected_rows
from emocore.runs.registry import DESIGNS, Registry, RunRecord
from emocore.runs.schema import StudyRecord, upgrade_study
from emocore.stats.findings import run_findings, with_primary_rows
from emocore.stats.single_case import FOCUS
from emocore.stats.summaries import misclassification_summary, per_subject_metrics
from emocore.stats.verdict import (
    Primary,
    cohort_verdicts,
    default_primary,
    primary_findings,
    verdict_of,
)

__all__ = [
    "RunResults",
    "TABLES",
    "VOLUME_SETS",
    "read_json",
    "read_table",
]

#: Tables of a run folder, by short name (``<name>.tsv``).
TABLES: tuple[str, ...] = ("predictions", "baseline", "curves", "embeddings")

#: Which volumes a stored inference covers: ``"labelled"`` (the volumes of the model's classes,
#: as in training) or ``"all"`` (every volume of the person, NONE included).
VOLUME_SETS: tuple[str, ...] = ("labelled", "all")


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object of a run; a missing or damaged file raises EmocoreError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmocoreError(
            f"{path} is missing; the run may still be running or have failed (see its status)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # unreadable, not JSON, cut off
        raise EmocoreError(
            f"{path} is damaged ({exc}); restore it from a backup or re-run the study"
        ) from exc
    if not isinstance(data, dict):
        raise EmocoreError(f"{path} holds {type(data).__name__}, not an object; re-run the study")
    return data


def _study_problem(study: dict[str, Any]) -> str | None:
    classes = study.get("classes")
    if not (
        isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)
    ):
        return "'classes' is missing or not a list of class names"
    if not isinstance(study.get("config"), dict):
        return "'config' is missing or not an object"
    alpha = study.get("alpha")  # an older file gets the default from upgrade_study
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        return f"'alpha' is {alpha!r}, not a level in (0, 1)"
    return None


class RunResults:
    """A run of the registry and what its folder holds, each file read at most once.

    Create one per question-answering pass (a CLI command, a page run through the dashboard's
    cached loader); the files are read lazily and kept, so a re-run study needs a new object.
    """

    def __init__(self, registry: Registry, run_id: str) -> None:
        self.registry = registry
        self.record: RunRecord = registry.get_run(run_id)  # RegistryError for an unknown id
        self.run_id = self.record.id
        # a run whose folder was deleted or moved is named as such, not as "still running"
        self.folder: Path = registry.check_run_folder(self.run_id)
        self._tables: dict[str, pd.DataFrame] = {}

    def __repr__(self) -> str:
        return f"RunResults({self.run_id!r}, {self.record.status})"

    # -- study.json and metrics.json ----------------------------------------------------------
    @cached_property
    def study(self) -> dict[str, Any]:
        """study.json in the current format (a file of an older emocore is read through
        :func:`~emocore.runs.schema.upgrade_study`); EmocoreError naming the file when it is
        missing, damaged, lacks what readers need (``classes``, ``config``) or was written by a
        newer emocore."""
        path = self.folder / "study.json"
        if not path.exists():
            raise EmocoreError(
                f"run {self.run_id} has no study.json (status: {self.record.status}); it may "
                "still be running or have failed"
            )
        fix = (
            f"restore it from a backup, or re-run the study (`emocore runs --delete "
            f"{self.run_id}` removes the run)"
        )
        try:
            study = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise EmocoreError(f"{path} cannot be read ({exc.strerror or exc}); {fix}") from exc
        except ValueError as exc:  # not UTF-8, not JSON, cut off
            raise EmocoreError(f"{path} is damaged: it is not JSON ({exc}); {fix}") from exc
        if not isinstance(study, dict):
            raise EmocoreError(
                f"{path} is damaged: it holds {type(study).__name__}, not a JSON object; {fix}"
            )
        current = upgrade_study(study, path)  # a file of a newer emocore is refused, naming the fix
        problem = _study_problem(current)
        if problem:
            raise EmocoreError(f"{path} is damaged: {problem}; {fix}")
        return current

    @cached_property
    def study_record(self) -> StudyRecord:
        """study.json as a :class:`~emocore.runs.schema.StudyRecord` (the same content as
        :attr:`study`, in the current format); EmocoreError naming the file for keys the current
        format does not have (a ConfigError)."""
        return StudyRecord.from_dict(self.study, self.folder / "study.json")

    @property
    def classes(self) -> list[str]:
        return list(self.study["classes"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.study["config"])

    @property
    def designs(self) -> list[str]:
        return list(self.config.get("designs", []))

    def headline(self, design: str, model: str = "cnn") -> dict[str, Any]:
        """The headline row of ``design`` (accuracy with its split and chance); {} if none."""
        return next(
            (
                r
                for r in self.study.get("results", [])
                if r.get("design") == design and r.get("model") == model
            ),
            {},
        )

    @cached_property
    def metrics(self) -> dict[str, Any] | None:
        """metrics.json, or None for a run that has none (study.json then carries the summary)."""
        path = self.folder / "metrics.json"
        return read_json(path) if path.is_file() else None

    def evaluation(self, design: str, family: str = "cnn") -> dict[str, Any]:
        """metrics.json's evaluation of one design and model family ({} when it has none)."""
        ev = ((self.metrics or {}).get(design) or {}).get(family)
        return ev if isinstance(ev, dict) else {}

    def per_subject(self, design: str, family: str = "cnn") -> pd.DataFrame:
        """Per-subject accuracy and per-emotion recall as the run evaluated them (metrics.json);
        computed from the predictions only for a run that did not record them."""
        rows = self.evaluation(design, family).get("per_subject")
        if rows:
            frame = pd.DataFrame(rows)
            frame["subject"] = frame["subject"].astype(str)
            return frame
        return per_subject_metrics(
            self.predictions(design, baseline=family == "linear"), classes=self.classes
        )

    def misclassification(self, design: str, subject: str, emotion: str) -> dict[str, Any]:
        """What the model answered for ``subject``'s volumes of ``emotion`` (metrics.json);
        computed from the predictions only for a run that did not record it."""
        for entry in self.evaluation(design).get("misclassification", []):
            if str(entry.get("subject")) == str(subject) and entry.get("emotion") == emotion:
                return entry
        return misclassification_summary(self.predictions(design), subject, emotion)

    @cached_property
    def primary(self) -> Any:
        """The run's primary analysis (:class:`~emocore.stats.verdict.Primary`): as recorded, or for a
        run from before primary analyses the default for its designs (``how``: ``older run``,
        filled in by :func:`~emocore.runs.schema.upgrade_study`)."""
        recorded = Primary.from_dict(self.study.get("primary"))
        # upgrade_study gave a run from before primary analyses its default; a study.json with
        # no design to fall back on has none: default_primary names the problem
        return recorded if recorded is not None else default_primary(self.designs)

    @cached_property
    def _verdicts(self) -> tuple[list[dict[str, Any]], Any]:
        """(verdicts, the primary analysis' findings as a table): as the run recorded them, or
        computed from its held-out predictions for a run that predates verdicts."""
        primary = self.primary
        if "verdicts" in self.study:
            return list(self.study["verdicts"] or []), None
        try:
            table = self.predictions(primary.design, baseline=primary.model == "linear")
        except EmocoreError:
            return [], None
        if table.empty:
            return [], None
        alpha = float(self.study["alpha"])  # upgrade_study: older runs' default level
        focus = tuple(self.config.get("focus") or FOCUS)
        rows = primary_findings(table, self.classes, primary, alpha=alpha, focus=focus)
        verdicts = cohort_verdicts(
            table, self.classes, primary, alpha=alpha, focus=focus, findings=rows
        )
        return verdicts, pd.DataFrame(rows)

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        """One verdict per person of the primary analysis (see :mod:`emocore.stats.verdict`)."""
        return self._verdicts[0]

    def verdict(self, subject: str) -> dict[str, Any] | None:
        """The verdict on ``subject``: a cohort member's, or an assessed newcomer's."""
        found = verdict_of(self.verdicts, subject)
        if found is None and str(subject) in self.assessed:
            found = (self.assessment(str(subject)) or {}).get("verdict")
        return found

    @cached_property
    def findings(self) -> Any:
        """The run's single-case findings and fold stability (:class:`~emocore.stats.findings.RunFindings`)."""
        found = run_findings(self.study, self.metrics, primary=self.primary)
        recomputed = self._verdicts[1]
        return found if recomputed is None else with_primary_rows(found, recomputed)

    # -- tables ----------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """One of :data:`TABLES`. Prediction tables are checked against the rows the run wrote,
        so a cut-off file is an error naming it, not fewer scores. Do not modify the result."""
        if name not in TABLES:
            check_choice("table", name, TABLES)
        if name not in self._tables:
            path = self.folder / f"{name}.tsv"
            frame = read_table(path)
            if name in ("predictions", "baseline"):
                try:
                    metrics = self.metrics
                except EmocoreError:
                    metrics = None  # study.json's record, when there is one, is enough
                check_rows(path, frame, expected_rows(self.study, metrics, path.name))
            self._tables[name] = frame
        return self._tables[name]

    def has_table(self, name: str) -> bool:
        return (self.folder / f"{name}.tsv").is_file()

    def predictions(self, design: str | None = None, *, baseline: bool = False) -> pd.DataFrame:
        """Held-out predictions (of the linear baseline with ``baseline``), of one design or all."""
        frame = self.table("baseline" if baseline else "predictions")
        return frame if design is None else frame[frame["design"] == design]

    # -- models and what was computed with them ---------------------------------------------
    @cached_property
    def models(self) -> list[str]:
        """Final models as ``<design>/<name>`` (e.g. ``single-subject/sub-01``): the checkpoints
        the registry recorded for this run whose files are in the run's folder (looked up there,
        so a registry moved or copied elsewhere still finds them)."""
        arts = self.registry.artifacts(self.run_id)
        if arts.empty:
            return []
        names = arts.loc[arts["kind"] == "checkpoint", "name"].astype(str)
        return sorted(
            name
            for name in names
            if name.count("/") == 1 and (self.folder / "models" / f"{name}.pt").is_file()
        )

    def _model_name(self, model: object) -> tuple[str, str]:
        """``model`` as (design, name); ConfigError unless it is ``<design>/<name>``."""
        design, _, name = model.partition("/") if isinstance(model, str) else ("", "", "")
        if design not in DESIGNS or not name:
            raise ConfigError(
                f"--model {model!r} is not a model name: it must be <design>/<name> with a "
                f"design of {', '.join(repr(d) for d in DESIGNS)} (e.g. single-subject/sub-01); "
                f"run {self.run_id} has: {', '.join(self.models) or 'none'}"
            )
        where = self.folder / "models" / design
        check_path_name(
            f"a model name (in --model {model!r})", name, inside=where, example="sub-01"
        )
        return design, name

    def model_path(self, model: str) -> Path:
        """The checkpoint of ``model`` (``<design>/<name>``); it must exist."""
        design, name = self._model_name(model)
        path = self.folder / "models" / design / f"{name}.pt"
        if not path.is_file():
            raise RegistryError(
                f"run {self.run_id} has no model '{model}'; it has: "
                f"{', '.join(self.models) or 'none'}"
            )
        return path

    def preferred_model(self, subject: str) -> str | None:
        """The model to show for ``subject``: their own single-subject model, else the LOSO
        model that held them out, else the cross-subject model; None when the run kept none."""
        for design in ("single-subject", "loso", "cross-subject"):
            for model in self.models:
                if model.startswith(f"{design}/") and model.endswith((f"/sub-{subject}", "/all")):
                    return model
        return self.models[0] if self.models else None

    def inference_path(self, model: str, subject: str, *, volumes: str = "labelled") -> Path:
        """Where the predictions of ``model`` for ``subject`` are kept: ``sub-XX.tsv`` for the
        labelled volumes, ``sub-XX.all.tsv`` for every volume."""
        check_choice("volumes", volumes, VOLUME_SETS)
        design, name = self._model_name(model)
        folder = self.folder / "inference" / design / name
        if not isinstance(subject, str) or not subject.isalnum() or not subject.isascii():
            raise ConfigError(
                f"--subject {subject!r} is not a subject label: it must be letters and digits "
                f"only, as in BIDS (e.g. 01 for sub-01), so that it stays inside {folder}"
            )
        suffix = "" if volumes == "labelled" else f".{volumes}"
        return folder / f"sub-{subject}{suffix}.tsv"

    def saliency_path(self, design: str, name: str, emotion: str) -> Path | None:
        """The saliency map of one model for one emotion that study.json records; None if none."""
        entries = self.study.get("saliency") if (self.folder / "study.json").is_file() else None
        entry = ((entries or {}).get(design) or {}).get(name, {}).get(emotion)
        return saliency_map_path(self.folder / "saliency" / design, name, emotion, entry)

    def map_entry(self, design: str, name: str, emotion: str) -> dict[str, Any]:
        """What study.json records of one saliency map: its file, AUC against planted truth,
        sanity ``checks`` and the ``linear_pattern`` beside it ({} when the run saved none)."""
        entry = ((self.study.get("saliency") or {}).get(design) or {}).get(name, {}).get(emotion)
        return entry if isinstance(entry, dict) else {}

    def linear_pattern_path(self, design: str, name: str, emotion: str) -> Path | None:
        """The linear decoder's activation pattern saved beside a CNN map; None if there is none."""
        pattern = self.map_entry(design, name, emotion).get("linear_pattern") or {}
        rel = pattern.get("file")
        if not rel:
            return None
        path = self.folder / "saliency" / design / rel
        check_path_name("a pattern file", path.name, inside=path.parent, example="x.nii.gz")
        return path if path.is_file() else None

    # -- people assessed against the run ----------------------------------------------------
    def assessment_dir(self, subject: str) -> Path:
        folder = self.folder / "assessments"
        check_path_name("a subject label", str(subject), inside=folder, example="09")
        return folder / f"sub-{subject}"

    def assessment(self, subject: str) -> dict[str, Any] | None:
        """The stored assessment of ``subject`` against this run, or None if there is none."""
        path = self.assessment_dir(subject) / "assessment.json"
        return read_json(path) if path.is_file() else None

    @property
    def assessed(self) -> list[str]:
        """Subjects (without ``sub-``) assessed against this run, sorted."""
        folder = self.folder / "assessments"
        if not folder.is_dir():
            return []
        return sorted(
            p.name.removeprefix("sub-")
            for p in folder.iterdir()
            if p.name.startswith("sub-") and (p / "assessment.json").is_file()
        )


def seen_in_training(table: pd.DataFrame) -> bool:
    """Whether a stored inference table's person was in the model's training set (its ``seen``
    column, written from the checkpoint's ``trained_on``)."""
    if "seen" not in table.columns or table.empty:
        return False
    return bool(table["seen"].astype(str).str.lower().eq("true").any())
