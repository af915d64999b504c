"""A newly scanned person against a trained cohort: the clinical use of a study.

:func:`assess_subject` takes a finished study run and a person who is in the cache but was not in
the run's cohort (added afterwards with ``emocore prepare``), and answers "is this person's
decoding unusual compared with the cohort's?" with the study's **primary analysis**
(:mod:`emocore.stats.verdict`), without touching the cohort's models:

* **leave-one-subject-out** (the default primary analysis): every stored LOSO model of the run
  (each trained on the cohort minus one person, so none saw the new person) decodes the new
  person. The cohort's values come from the same kind of model on a person it never saw, so the
  new person is compared like with like. The person's confusion counts are the mean over those
  models: averaging removes some model-to-model noise from the person's value, which can only
  make the test more conservative.
* **single-subject**: the person's own model is trained and cross-validated with the run's exact
  configuration and folds, as each cohort member's was.
* **cross-subject** cannot be a newcomer's analysis: the cohort's values come from a model that
  trained on other runs of the same people, so a new person would be compared with people the
  model knew.

The verdict (:func:`emocore.stats.verdict.newcomer_verdict`) tests the person in the primary
analysis' fixed order and says what it could have detected. With ``exploratory`` the study's
other testable designs are run too and reported apart (Holm-adjusted, never in the verdict).

An assessment is a run of kind ``assess`` in the registry (its parent is the cohort run), so its
progress, log and status are followed like any training job's, and it writes into its own run
folder: ``assessment.json`` (the verdict, the findings, per-design status and provenance),
``predictions.tsv`` (the person's predictions; LOSO rows carry the ``model`` that made them) and
``models/`` (the person's own single-subject model). When it completes, its ``assessment.json``
and ``predictions.tsv`` are copied to the cohort run's ``assessments/sub-XX/``, where the
dashboard and the report read the person's current assessment. A person already assessed against
the run is not assessed again unless asked (``force``): the stored assessment is returned, marked
``reused``. A forced assessment replaces the current one in ``assessments/sub-XX/`` only; the
earlier run keeps its own files (a current assessment whose files are not all in its run's
folder, e.g. one made before assessments had run folders, is moved to ``assessments/replaced/``). One person is assessed against one run by one process at a time:
a second, concurrent assessment is refused, naming the process that holds it.
"""

from __future__ import annotations

import filecmp
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emocore import __version__
from emocore._io import atomic_write_json, atomic_write_text, records
from emocore.data.bids import discover_dataset
from emocore.data.cache import VolumeCache, open_cache
from emocore.data.prepare import PrepareOptions, prepare
from emocore.errors import ConfigError, EmocoreError, RegistryError
from emocore.progress import Progress
from emocore.runs.registry import Registry, RunRecord, host_name, recording_outcome
from emocore.runs.results import RunResults, read_json
from emocore.stats.metrics import balanced_accuracy
from emocore.stats.single_case import (
    FINDING_KEYS,
    atypical_findings,
    confusion_counts,
    fold_stability,
)
from emocore.stats.verdict import Primary, newcomer_verdict
from emocore.training import designs
from emocore.training.train import TrainConfig
from emocore.workflows.inference import subject_predictions
from emocore.workflows.study_config import StudyConfig

__all__ = [
    "REFERENCE_KINDS",
    "assess_subject",
    "check_reference_run",
    "check_subject_label",
    "add_and_assess",
    "dataset_folders",
    "holds_bold_runs",
    "new_people",
    "chosen_entities",
]

logger = logging.getLogger(__name__)


#: The kinds of run a person can be assessed against: those that hold a cohort and its models.
REFERENCE_KINDS = ("study", "train")
_LABEL = re.compile(r"[A-Za-z0-9]+")


def check_subject_label(subject: object) -> str:
    """``subject`` without ``sub-``, when it is a BIDS subject label (letters and digits only);
    else a ConfigError. The label names the person's files and folders (``sub-XX``), so a label
    such as ``../../x`` must never get as far as a path."""
    label = str(subject).removeprefix("sub-")
    if not _LABEL.fullmatch(label):
        raise ConfigError(
            f"--subject {str(subject)!r} is not a BIDS subject label: a label is letters and "
            "digits only, as in the dataset's sub-<label>/ folders (e.g. --subject 09 for sub-09)"
        )
    return label


def check_reference_run(registry: Registry, run_id: str) -> RunRecord:
    """The run ``run_id`` when a person can be assessed against it: a completed study or train
    run (:data:`REFERENCE_KINDS`); else a RegistryError saying what it is and which run to use."""
    record = registry.get_run(run_id)
    if record.kind not in REFERENCE_KINDS:
        article = "an" if record.kind[:1] in "aeiou" else "a"
        parent = ""
        if record.parent:
            try:
                if registry.get_run(record.parent).kind in REFERENCE_KINDS:
                    parent = (
                        f"; this one was made from run {record.parent}: use --run {record.parent}"
                    )
            except EmocoreError:  # its parent is gone or unreadable: no suggestion
                pass
        raise RegistryError(
            f"run {run_id} is {article} {record.kind} run, which holds no cohort to assess a "
            "person against: an assessment needs a completed study or train run (`emocore runs "
            f"--kind study` lists them){parent}"
        )
    if record.status != "completed":
        raise RegistryError(
            f"run {run_id} is {record.status}; assess a person against a completed study"
        )
    return record


_LOCK_SUFFIX = ".lock"


@contextmanager
def _assessing(run: RunResults, subject: str) -> Iterator[None]:
    """Hold the right to assess ``subject`` against ``run`` in this process, or refuse at once
    with a RegistryError naming the process that holds it: two assessments of one person
    against one run would each take the other's result for their own. The lock (an ``flock``
    on ``assessments/.sub-XX.lock``) goes with the process, so a killed assessment frees it."""
    try:
        import fcntl  # here: POSIX only
    except ImportError:  # Windows: no flock; the reuse check alone remains
        yield
        return
    folder = run.folder / "assessments"
    folder.mkdir(exist_ok=True)
    path = folder / f".sub-{subject}{_LOCK_SUFFIX}"
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RegistryError(
                f"sub-{subject} is being assessed against run {run.run_id} right now ({holder}); "
                "a second assessment at the same time would write over the first. Wait for it "
                "to finish (`emocore runs` shows it), then see its verdict by running the same "
                "command again without --force"
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {host_name()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _publish(run: RunResults, subject: str, own: Path) -> Path:
    """Copy the assessment in ``own`` (its run folder) to the cohort's ``assessments/sub-XX/``,
    replacing the current one there without losing it; return the folder."""
    target = run.assessment_dir(subject)
    staging = target.with_name(f".sub-{subject}.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("assessment.json", "predictions.tsv"):
        if (own / name).is_file():
            shutil.copy2(own / name, staging / name)
    if target.exists():
        _retire(run, subject, target)
    staging.rename(target)
    return target


def _retire(run: RunResults, subject: str, current: Path) -> None:
    """Take the current ``assessments/sub-XX/`` out of the way. It is deleted only when every
    file in it is a byte-identical copy of one in the folder of the assessment run that made it;
    otherwise (an assessment made before run folders held its files, a run folder deleted since,
    a file added by hand) the folder is kept in ``assessments/replaced/``."""
    try:
        earlier = str(read_json(current / "assessment.json").get("assess_run_id") or "")
    except EmocoreError:
        earlier = ""
    try:
        source: Path | None = run.registry.run_dir(earlier) if earlier else None
    except ConfigError:  # not a run id
        source = None
    files = [p for p in current.rglob("*") if p.is_file() or p.is_symlink()]
    if source is not None and all(
        (source / f.relative_to(current)).is_file()
        and filecmp.cmp(f, source / f.relative_to(current), shallow=False)
        for f in files
    ):
        shutil.rmtree(current)
        return
    keep = run.folder / "assessments" / "replaced" / f"sub-{subject}-{earlier or 'unknown'}"
    while keep.exists():
        keep = keep.with_name(keep.name + "-again")
    keep.parent.mkdir(parents=True, exist_ok=True)
    current.rename(keep)
    logger.info("the earlier assessment of sub-%s is kept in %s", subject, keep)


NOT_TESTED = {
    "cross-subject": "not tested: the cohort's cross-subject values come from a model trained on "
    "other runs of the same people, so a new person would be compared with people the model "
    "knew; the leave-one-subject-out design compares like with like",
}


#: Where a dataset folder keeps BOLD runs, in the layouts prepare reads (see
#: :mod:`emocore.data.bids`): raw BIDS or fMRIPrep, and ds000113's aligned derivative.
_BOLD_PATTERNS = (
    "sub-*/func/*_bold.nii*",
    "sub-*/ses-*/func/*_bold.nii*",
    "derivatives/*/sub-*/func/*_bold.nii*",
    "derivatives/*/sub-*/ses-*/func/*_bold.nii*",
)


def holds_bold_runs(folder: str | Path) -> bool:
    """Whether ``folder`` holds at least one BOLD run (``*_bold.nii[.gz]`` in a ``func`` folder
    of a ``sub-*`` folder, or of one below ``derivatives/*/``): a dataset a person can be added
    from. The first match ends the search, so a large dataset is not walked."""
    folder = Path(folder)
    return any(next(folder.glob(pattern), None) is not None for pattern in _BOLD_PATTERNS)


def dataset_folders(root: str | Path, cache: VolumeCache | None = None) -> list[Path]:
    """Dataset folders a person can be added from, all inside ``root`` (the allowed data root).

    The cache's own source dataset first (when it lies inside ``root`` and still holds BOLD
    runs), then every folder at most two levels below ``root`` that holds BOLD runs
    (:func:`holds_bold_runs`). A volume cache (its ``sub-XX.npy`` arrays are no BOLD runs), a
    run registry and folders without any BOLD run are left out; nothing outside ``root`` is
    listed.
    """
    root = Path(root).resolve()
    found: list[Path] = []
    cache_dir = Path(cache.path).resolve() if cache is not None else None
    if cache is not None:
        source = cache.source_path("root")  # older manifests stored it relative
        if source is not None and source.resolve().is_relative_to(root):
            if holds_bold_runs(source.resolve()):
                found.append(source.resolve())
    if root.is_dir():
        for depth in ("*", "*/*"):
            for folder in sorted(root.glob(depth)):
                if not folder.is_dir() or folder.is_symlink():
                    continue
                here = folder.resolve()
                if here == cache_dir or here in found or not here.is_relative_to(root):
                    continue
                if (here / "registry.sqlite").exists() or (here / "manifest.json").is_file():
                    continue  # a run registry or a volume cache, never a dataset
                if holds_bold_runs(here):
                    found.append(here)
    return found


def chosen_entities(cache: VolumeCache | None) -> dict[str, str]:
    """The BIDS entities (task, acq, space, desc) the cache's files were chosen by, so that a
    new person's files are chosen the same way; {} without a cache."""
    if cache is None:
        return {}
    options = PrepareOptions.from_manifest(cache.manifest.get("options") or {})
    return {k: v for k, v in options.entities.items() if v is not None}


def new_people(
    dataset: str | Path, cohort: Sequence[str], entities: Mapping[str, str] | None = None
) -> list[str]:
    """People of ``dataset`` who are not in ``cohort`` (labels without ``sub-``), sorted.

    ``entities`` (see :func:`chosen_entities`) choose among copies of a run, as prepare does."""
    chosen = dict(entities or {})
    found = discover_dataset(
        dataset,
        expected_volumes=None,
        task=chosen.get("task"),
        acq=chosen.get("acq"),
        space=chosen.get("space"),
        desc=chosen.get("desc"),
    )
    return sorted(set(found.subject_labels) - {str(s) for s in cohort})


def _findings_for(
    cohort: pd.DataFrame,
    person_counts: np.ndarray,
    subject: str,
    classes: list[str],
    *,
    design: str,
    alpha: float,
) -> list[dict[str, Any]]:
    """The single-case tests of ``subject`` (counts given) against the cohort's table."""

    out = atypical_findings(
        cohort, classes, design=design, alpha=alpha, extra=(subject, person_counts)
    )
    rows = records(out[out["subject"] == subject])
    return [
        {key: row[key] for key in (*FINDING_KEYS, *row.keys() - set(FINDING_KEYS))} for row in rows
    ]


def _entries(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Test rows as JSON-safe dicts with the finding keys first."""

    return [
        {key: row[key] for key in (*FINDING_KEYS, *row.keys() - set(FINDING_KEYS))}
        for row in records(rows)
    ]


def _loso_predictions(
    run: RunResults,
    cache: VolumeCache,
    subject: str,
    *,
    device: str,
    progress: Progress,
) -> pd.DataFrame:
    models = [m for m in run.models if m.startswith("loso/")]
    tables = []
    for i, model in enumerate(models):
        progress(i / max(len(models), 1), f"decoding sub-{subject} with {model}")
        table = subject_predictions(run, model, cache, subject, device=device)
        assert table is not None
        tables.append(table.assign(model=model))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _primary_for_newcomers(run: RunResults) -> Any:
    """The run's primary analysis, or a ConfigError saying why it cannot assess a newcomer."""
    primary = run.primary
    if primary.design in NOT_TESTED:
        raise ConfigError(
            f"run {run.run_id}'s primary analysis is {primary.design}: "
            f"{NOT_TESTED[primary.design]}. Assess against a study whose primary analysis is "
            "loso:cnn (the default when the study runs --designs loso)"
        )
    if primary.model != "cnn":
        raise ConfigError(
            f"run {run.run_id}'s primary analysis uses the {primary.model} decoder, whose fold "
            "models are not stored; assess against a study whose primary analysis is a CNN "
            "(--primary loso:cnn)"
        )
    return primary


def assess_subject(
    cache: VolumeCache,
    registry: Registry,
    run_id: str,
    subject: str,
    *,
    alpha: float | None = None,
    device: str | None = None,
    progress: Progress | None = None,
    assess_id: str | None = None,
    force: bool = False,
    exploratory: bool = False,
) -> dict[str, Any]:
    """Assess ``subject`` (in the cache, not in run ``run_id``'s cohort) against the cohort.

    Returns the assessment (written to the assess run's folder and copied to the cohort's
    ``assessments/sub-XX/assessment.json``): ``run_id``,
    ``assess_run_id``, ``subject``, ``alpha``, ``primary`` (the study's), ``verdict`` (see
    :data:`emocore.stats.verdict.VERDICT_KEYS`), ``designs`` (per design: ``role`` ``primary`` or
    ``exploratory``, ``status`` ``assessed`` or ``not tested`` with a ``reason``, ``models``,
    ``n_volumes``, ``balanced_accuracy``), ``atypical`` (one entry per design, model family,
    emotion and measure, with the keys of :data:`emocore.stats.single_case.FINDING_KEYS` and
    ``sentence``), ``stability``, ``seconds`` and ``reused`` (True when an earlier assessment
    was returned instead: pass ``force`` to replace it). ``assess_id`` fills in an existing
    queued ``assess`` run (a dashboard job). The cohort's models, predictions and metrics are
    never changed. A second assessment of the same person against the same run while this one
    runs is refused (RegistryError).
    """
    subject = check_subject_label(subject)
    check_reference_run(registry, run_id)
    run = RunResults(registry, run_id)
    with _assessing(run, subject):
        return _assess(
            cache,
            registry,
            run,
            subject,
            alpha=alpha,
            device=device,
            progress=progress,
            assess_id=assess_id,
            force=force,
            exploratory=exploratory,
        )


def _assess(
    cache: VolumeCache,
    registry: Registry,
    run: RunResults,
    subject: str,
    *,
    alpha: float | None,
    device: str | None,
    progress: Progress | None,
    assess_id: str | None,
    force: bool,
    exploratory: bool,
) -> dict[str, Any]:
    """:func:`assess_subject` once the label, the run and the lock are settled."""
    run_id = run.run_id
    study = run.study
    if subject in study["subjects"]:
        raise ConfigError(
            f"sub-{subject} is in run {run_id}'s cohort, so its models saw this person; its "
            "verdict is already in the run (Subject page, `emocore runs --show`). Assess "
            "people who were not in the cohort"
        )
    primary = _primary_for_newcomers(run)
    earlier = run.assessment(subject)
    if earlier is not None and not force:
        return _reuse(registry, run_id, subject, earlier, assess_id)
    _check_cache(cache, run, subject)
    config = StudyConfig.from_dict(study["config"])
    alpha = config.alpha if alpha is None else float(alpha)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1); {alpha} was given")
    cohort = run.predictions()
    if assess_id is None:
        assess_id = registry.create_run(
            kind="assess",
            subjects=[subject],
            config={"run": run_id, "subject": subject, "alpha": alpha},
            data_hash=cache.key,
            parent=run_id,
            sources=[cache.path, run.folder],
        ).id
    registry.update(assess_id, status="running", pid=os.getpid(), error=None)
    job = _Assessment(
        cache=cache,
        registry=registry,
        run=run,
        subject=subject,
        config=config,
        train_config=replace(config.train, device=device) if device else config.train,
        classes=list(study["classes"]),
        alpha=alpha,
        primary=primary,
        assess_id=assess_id,
        out=registry.check_run_folder(assess_id),  # this assessment's own files go here
        designs=[primary.design]
        + ([d for d in config.designs if d != primary.design] if exploratory else []),
        progress=progress,
    )
    with recording_outcome(registry, assess_id):
        for i, design in enumerate(job.designs):
            job.assess_design(i, design, cohort[cohort["design"] == design])
        result = job.write()
    return result


def _reuse(
    registry: Registry,
    run_id: str,
    subject: str,
    earlier: dict[str, Any],
    assess_id: str | None,
) -> dict[str, Any]:
    """The person's earlier assessment, marked ``reused`` (a queued dashboard job that asked
    for it ends, completed, with it)."""
    logger.info("sub-%s was already assessed against run %s", subject, run_id)
    if assess_id is not None:  # a dashboard job asked for it: it ends with the earlier one
        registry.update(
            assess_id,
            status="running",
            pid=os.getpid(),
            message="already assessed: the earlier assessment stands",
        )
        registry.set_status(assess_id, "completed")
    return {**earlier, "reused": True}


def _check_cache(cache: VolumeCache, run: RunResults, subject: str) -> None:
    """A ConfigError unless the cache holds the person and still the data the run trained on."""
    if subject not in cache.subjects:
        raise ConfigError(
            f"sub-{subject} is not in the cache at {cache.path}; add the person first with "
            f"`emocore prepare --bids DATASET --annotations ANNOTATIONS --cache {cache.path} "
            f"--subject {subject}` (the people already in the cache are kept)"
        )
    key = run.study["cache"]["key"]
    if not cache.recognises(key):
        raise ConfigError(
            f"the cache at {cache.path} no longer holds the data run {run.run_id} was trained on "
            f"(key {key}); a cohort member or the labels changed. Use the cache "
            "the run was trained on, with the person added by `emocore prepare`"
        )


@dataclass
class _Assessment:
    """One assessment while it runs: the person, the cohort run and its settings, the run
    this assessment is recorded as, and what the designs have given so far."""

    cache: VolumeCache
    registry: Registry
    run: RunResults
    subject: str
    config: StudyConfig
    train_config: TrainConfig
    classes: list[str]
    alpha: float
    primary: Primary
    assess_id: str
    out: Path
    designs: list[str]  # the primary analysis' design first, then the exploratory ones
    progress: Progress | None
    t0: float = field(default_factory=time.perf_counter)
    summary: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    stability: list[dict[str, Any]] = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)
    verdict: dict[str, Any] | None = None

    def report(self, i: int) -> Progress:
        """Progress within design ``i``, recorded in the registry and passed on."""
        n = len(self.designs)

        def inner(fraction: float, message: str) -> None:
            self.registry.update(self.assess_id, progress=(i + fraction) / n, message=message)
            if self.progress is not None:
                self.progress((i + fraction) / n, message)

        return inner

    def assess_design(self, i: int, design: str, rows: pd.DataFrame) -> None:
        """Decode the person with ``design`` and test the result against the cohort's ``rows``
        (the verdict for the primary analysis, Holm-adjusted findings otherwise)."""
        role = "primary" if design == self.primary.design else "exploratory"
        if design in NOT_TESTED:
            self.summary[design] = {
                "role": role,
                "status": "not tested",
                "reason": NOT_TESTED[design],
            }
            return
        if design == "single-subject":
            table, person, models = self._own_model(i)
        else:  # loso
            table = _loso_predictions(
                self.run,
                self.cache,
                self.subject,
                device=self.train_config.device,
                progress=self.report(i),
            )
            if table.empty:
                if role == "primary":
                    raise ConfigError(
                        f"run {self.run.run_id} stored no leave-one-subject-out models, so its "
                        "primary analysis cannot decode a new person; re-run the study "
                        "with --designs loso"
                    )
                self.summary[design] = {
                    "role": role,
                    "status": "not tested",
                    "reason": "the run stored no leave-one-subject-out models",
                }
                return
            models = sorted(table["model"].unique())
            person = np.mean(
                [confusion_counts(t, self.classes)[1][0] for _, t in table.groupby("model")],
                axis=0,
            )
        self.tables.append(table.assign(design=design))
        self._test(design, role, rows, table, person, models)

    def _own_model(self, i: int) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
        """The person's own single-subject model, cross-validated as the cohort's were: its
        predictions, the person's confusion counts and the model's name."""
        # looked up at call time, so a test that replaces designs.run_design replaces it here too
        config, subject, classes = self.config, self.subject, self.classes
        res = designs.run_design(
            self.cache,
            "single-subject",
            self.train_config,
            subjects=[subject],
            split=config.split,
            n_folds=config.n_folds,
            classes=classes,
            refit=config.refits("single-subject"),
            checkpoint_dir=self.out / "models" / "single-subject",
            progress=self.report(i),
        )
        table = res.predictions
        person = confusion_counts(table, classes)[1][0]
        self.stability += [
            {"design": "single-subject", "model": "cnn", **r}
            for r in fold_stability(table, classes).to_dict("records")
        ]
        return table, person, [f"single-subject/sub-{subject} (trained for this assessment)"]

    def _test(
        self,
        design: str,
        role: str,
        rows: pd.DataFrame,
        table: pd.DataFrame,
        person: np.ndarray,
        models: list[str],
    ) -> None:
        """Test the person's counts against the cohort's rows and record the design's summary."""
        classes, subject = self.classes, self.subject
        if role == "primary":
            flagged_cohort = [v["subject"] for v in self.run.verdicts if v["status"] == "flagged"]
            self.verdict, tested = newcomer_verdict(
                rows,
                person,
                subject,
                classes,
                self.primary,
                alpha=self.alpha,
                focus=self.config.focus,
                exclude=flagged_cohort,
            )
            found = _entries(tested)
        else:
            found = _findings_for(rows, person, subject, classes, design=design, alpha=self.alpha)
        self.findings += found
        verdict = self.verdict
        self.summary[design] = {
            "role": role,
            "status": "assessed",
            "models": models,
            "n_volumes": int(len(table) // max(len(models), 1)),
            "balanced_accuracy": float(
                np.mean(
                    [
                        balanced_accuracy(t["true"], t["pred"], classes)
                        for _, t in table.groupby("model")
                    ]
                )
            ),
            "n_others": int(rows["subject"].nunique())
            - (len(verdict["excluded"]) if role == "primary" and verdict else 0),
        }

    def write(self) -> dict[str, Any]:
        """Write assessment.json and predictions.tsv, publish them in the cohort run's folder
        and mark the assessment completed; return the assessment."""
        out, registry, assess_id, run_id = self.out, self.registry, self.assess_id, self.run.run_id
        if self.tables:
            atomic_write_text(
                out / "predictions.tsv",
                pd.concat(self.tables, ignore_index=True).to_csv(sep="\t", index=False),
            )
        result = self.result()
        atomic_write_json(out / "assessment.json", result)
        registry.add_artifact(assess_id, "assessment", out / "assessment.json", "metrics")
        if self.tables:
            registry.add_artifact(assess_id, "predictions", out / "predictions.tsv", "predictions")
        if (out / "models").is_dir():
            registry.add_artifact(assess_id, "models", out / "models", "checkpoint")
        current = _publish(self.run, self.subject, out)
        registry.add_artifact(
            run_id, f"assessment/sub-{self.subject}", current / "assessment.json", "metrics"
        )
        verdict = self.verdict
        registry.update(
            assess_id,
            metrics={
                "verdict": verdict["status"] if verdict else None,
                "flagged": len(verdict["flagged"]) if verdict else 0,
                "designs": {d: v["status"] for d, v in self.summary.items()},
            },
            progress=1.0,
            message="done",
        )
        registry.set_status(assess_id, "completed")
        return result

    def result(self) -> dict[str, Any]:
        """The assessment as assessment.json holds it."""
        return {
            "run_id": self.run.run_id,
            "assess_run_id": self.assess_id,
            "subject": self.subject,
            "alpha": self.alpha,
            "classes": self.classes,
            "primary": self.primary.to_dict(),
            "verdict": self.verdict,
            "designs": self.summary,
            "atypical": self.findings,
            "stability": self.stability,
            "cache": {"path": str(self.cache.path), "key": self.cache.key},
            "emocore_version": __version__,
            "seconds": round(time.perf_counter() - self.t0, 1),
            "reused": False,
        }


def add_and_assess(
    cache: str | Path,
    registry: Registry,
    run_id: str,
    subject: str,
    *,
    bids: str | Path | None = None,
    annotations: str | Path | None = None,
    alpha: float | None = None,
    device: str | None = None,
    progress: Progress | None = None,
    assess_id: str | None = None,
    force: bool = False,
    exploratory: bool = False,
) -> dict[str, Any]:
    """Add ``subject`` to the cache from the dataset ``bids`` (with the cache's own options and
    the ``annotations`` it used), when one is given, then :func:`assess_subject` them. A
    person already assessed against the run is not added again (``force`` does both)."""
    # what is asked is checked before any data is read or anything is written
    subject = check_subject_label(subject)
    if bids is not None and annotations is None:
        raise ConfigError("--bids needs --annotations (the observer annotations the cache used)")
    # a dashboard job's queued run records why it ended, whatever the step
    with recording_outcome(registry, assess_id) if assess_id else nullcontext():
        check_reference_run(registry, run_id)  # an unknown run fails before any data is read
        registry.check_writable("record an assessment")
        run = RunResults(registry, run_id)
        with _assessing(run, subject):
            if not force and run.assessment(subject) is not None:
                bids = None  # the earlier assessment stands: nothing to add to the cache
            if bids is not None:
                if assess_id:
                    registry.update(assess_id, status="running", message=f"adding sub-{subject}")
                assert annotations is not None  # checked above, before anything was read
                options = PrepareOptions.from_manifest(open_cache(cache).manifest["options"])
                prepare(bids, annotations, cache, options=options, subjects=[subject])
            return _assess(
                open_cache(cache),
                registry,
                run,
                subject,
                alpha=alpha,
                device=device,
                progress=progress,
                assess_id=assess_id,
                force=force,
                exploratory=exploratory,
            )
