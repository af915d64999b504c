"""A newly scanned person against a trained cohort: the clinical use of a study.

:func:`assess_subject` takes a finished study run and a person who is in the cache but was not in
the run's cohort (added afterwards with ``emocore prepare``), and answers "is this person's
decoding unusual compared with the cohort's?" with the study's **primary analysis**
(:mod:`emocore.verdict`), without touching the cohort's models:

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

The verdict (:func:`emocore.verdict.newcomer_verdict`) tests the person in the primary
analysis' fixed order and says what it could have detected. With ``exploratory`` the study's
other testable designs are run too and reported apart (Holm-adjusted, never in the verdict).

Everything is written below the cohort run's folder, ``assessments/sub-XX/``:
``assessment.json`` (the verdict, the findings, per-design status and provenance),
``predictions.tsv`` (the person's predictions; LOSO rows carry the ``model`` that made them) and
``models/`` (the person's own single-subject model). The assessment is also a run of kind
``assess`` in the registry (its parent is the cohort run), so its progress, log and status are
followed like any training job's. A person already assessed against the run is not assessed
again unless asked (``force``): the stored assessment is returned, marked ``reused``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emocore import __version__
from emocore._io import atomic_write_json, atomic_write_text
from emocore.data.cache import VolumeCache
from emocore.errors import ConfigError, RegistryError
from emocore.progress import Progress
from emocore.registry import Registry, recording_outcome
from emocore.results import RunResults
from emocore.single_case import FINDING_KEYS, atypical_findings, confusion_counts, fold_stability

__all__ = [
    "assess_subject",
    "add_and_assess",
    "dataset_folders",
    "new_people",
    "chosen_entities",
]

logger = logging.getLogger(__name__)


NOT_TESTED = {
    "cross-subject": "not tested: the cohort's cross-subject values come from a model trained on "
    "other runs of the same people, so a new person would be compared with people the model "
    "knew; the leave-one-subject-out design compares like with like",
}


def dataset_folders(root: str | Path, cache: VolumeCache | None = None) -> list[Path]:
    """Dataset folders a person can be added from, all inside ``root`` (the allowed data root).

    The cache's own source dataset first (when it lies inside ``root``), then every folder at
    most two levels below ``root`` that holds ``sub-*`` folders or a ``derivatives`` folder.
    Nothing outside ``root`` is listed.
    """
    root = Path(root).resolve()
    found: list[Path] = []
    if cache is not None:
        source = cache.manifest.get("source", {}).get("root")
        if source and Path(source).resolve().is_relative_to(root):
            found.append(Path(source).resolve())
    if root.is_dir():
        for depth in ("*", "*/*"):
            for folder in sorted(root.glob(depth)):
                if not folder.is_dir() or folder.is_symlink():
                    continue
                if (folder / "derivatives").is_dir() or any(folder.glob("sub-*")):
                    if folder.resolve().is_relative_to(root) and folder.resolve() not in found:
                        found.append(folder.resolve())
    return found


def chosen_entities(cache: VolumeCache | None) -> dict[str, str]:
    """The BIDS entities (task, acq, space, desc) the cache's files were chosen by, so that a
    new person's files are chosen the same way; {} without a cache."""
    if cache is None:
        return {}
    from emocore.data.prepare import PrepareOptions

    options = PrepareOptions.from_manifest(cache.manifest.get("options") or {})
    return {k: v for k, v in options.entities.items() if v is not None}


def new_people(
    dataset: str | Path, cohort: Sequence[str], entities: Mapping[str, str] | None = None
) -> list[str]:
    """People of ``dataset`` who are not in ``cohort`` (labels without ``sub-``), sorted.

    ``entities`` (see :func:`chosen_entities`) choose among copies of a run, as prepare does."""
    from emocore.data.bids import discover_dataset

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
    from emocore.evaluate import records

    out = atypical_findings(
        cohort, classes, design=design, alpha=alpha, extra=(subject, person_counts)
    )
    rows = records(out[out["subject"] == subject])
    return [
        {key: row[key] for key in (*FINDING_KEYS, *row.keys() - set(FINDING_KEYS))} for row in rows
    ]


def _entries(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Test rows as JSON-safe dicts with the finding keys first."""
    from emocore.evaluate import records

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
    from emocore.inference import subject_predictions

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

    Returns the assessment (also written to ``assessments/sub-XX/assessment.json``): ``run_id``,
    ``assess_run_id``, ``subject``, ``alpha``, ``primary`` (the study's), ``verdict`` (see
    :data:`emocore.verdict.VERDICT_KEYS`), ``designs`` (per design: ``role`` ``primary`` or
    ``exploratory``, ``status`` ``assessed`` or ``not tested`` with a ``reason``, ``models``,
    ``n_volumes``, ``balanced_accuracy``), ``atypical`` (one entry per design, model family,
    emotion and measure, with the keys of :data:`emocore.single_case.FINDING_KEYS` and
    ``sentence``), ``stability``, ``seconds`` and ``reused`` (True when an earlier assessment
    was returned instead: pass ``force`` to replace it). ``assess_id`` fills in an existing
    queued ``assess`` run (a dashboard job). The cohort's models, predictions and metrics are
    never changed.
    """
    from emocore.designs import run_design
    from emocore.metrics import balanced_accuracy
    from emocore.study import StudyConfig
    from emocore.verdict import newcomer_verdict

    subject = str(subject).removeprefix("sub-")
    record = registry.get_run(run_id)
    if record.status != "completed":
        raise RegistryError(
            f"run {run_id} is {record.status}; assess a person against a completed study"
        )
    run = RunResults(registry, run_id)
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
        logger.info("sub-%s was already assessed against run %s", subject, run_id)
        if assess_id is not None:  # a dashboard job asked for it: it ends with the earlier one
            registry.update(assess_id, message="already assessed: the earlier assessment stands")
            registry.set_status(assess_id, "completed")
        return {**earlier, "reused": True}
    if subject not in cache.subjects:
        raise ConfigError(
            f"sub-{subject} is not in the cache at {cache.path}; add the person first with "
            f"`emocore prepare --bids DATASET --annotations ANNOTATIONS --cache {cache.path} "
            f"--subject {subject}` (the people already in the cache are kept)"
        )
    if not cache.recognises(study["cache"]["key"]):
        raise ConfigError(
            f"the cache at {cache.path} no longer holds the data run {run_id} was trained on "
            f"(key {study['cache']['key']}); a cohort member or the labels changed. Use the cache "
            "the run was trained on, with the person added by `emocore prepare`"
        )
    config = StudyConfig.from_dict(study["config"])
    alpha = config.alpha if alpha is None else float(alpha)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1); {alpha} was given")
    train_config = replace(config.train, device=device) if device else config.train
    classes = list(study["classes"])
    folder = run.folder
    cohort = run.predictions()
    out = run.assessment_dir(subject)

    if assess_id is None:
        assess_id = registry.create_run(
            kind="assess",
            subjects=[subject],
            config={"run": run_id, "subject": subject, "alpha": alpha},
            data_hash=cache.key,
            parent=run_id,
            sources=[cache.path, folder],
        ).id
    registry.update(assess_id, status="running", pid=os.getpid(), error=None)
    designs = [primary.design] + (
        [d for d in config.designs if d != primary.design] if exploratory else []
    )
    t0 = time.perf_counter()

    def report(i: int) -> Progress:
        def inner(fraction: float, message: str) -> None:
            registry.update(assess_id, progress=(i + fraction) / len(designs), message=message)
            if progress is not None:
                progress((i + fraction) / len(designs), message)

        return inner

    with recording_outcome(registry, assess_id):
        summary: dict[str, Any] = {}
        findings: list[dict[str, Any]] = []
        stability: list[dict[str, Any]] = []
        tables: list[pd.DataFrame] = []
        verdict: dict[str, Any] | None = None
        for i, design in enumerate(designs):
            role = "primary" if design == primary.design else "exploratory"
            rows = cohort[cohort["design"] == design]
            if design in NOT_TESTED:
                summary[design] = {
                    "role": role,
                    "status": "not tested",
                    "reason": NOT_TESTED[design],
                }
                continue
            if design == "single-subject":
                res = run_design(
                    cache,
                    "single-subject",
                    train_config,
                    subjects=[subject],
                    split=config.split,
                    n_folds=config.n_folds,
                    classes=classes,
                    refit=config.refits("single-subject"),
                    checkpoint_dir=out / "models" / "single-subject",
                    progress=report(i),
                )
                table = res.predictions
                person = confusion_counts(table, classes)[1][0]
                models = [f"single-subject/sub-{subject} (trained for this assessment)"]
                stability += [
                    {"design": design, "model": "cnn", **r}
                    for r in fold_stability(table, classes).to_dict("records")
                ]
            else:  # loso
                table = _loso_predictions(
                    run,
                    cache,
                    subject,
                    device=train_config.device,
                    progress=report(i),
                )
                if table.empty:
                    if role == "primary":
                        raise ConfigError(
                            f"run {run_id} stored no leave-one-subject-out models, so its "
                            "primary analysis cannot decode a new person; re-run the study "
                            "with --designs loso"
                        )
                    summary[design] = {
                        "role": role,
                        "status": "not tested",
                        "reason": "the run stored no leave-one-subject-out models",
                    }
                    continue
                models = sorted(table["model"].unique())
                person = np.mean(
                    [confusion_counts(t, classes)[1][0] for _, t in table.groupby("model")],
                    axis=0,
                )
            tables.append(table.assign(design=design))
            if role == "primary":
                flagged_cohort = [v["subject"] for v in run.verdicts if v["status"] == "flagged"]
                verdict, tested = newcomer_verdict(
                    rows,
                    person,
                    subject,
                    classes,
                    primary,
                    alpha=alpha,
                    focus=config.focus,
                    exclude=flagged_cohort,
                )
                found = _entries(tested)
            else:
                found = _findings_for(rows, person, subject, classes, design=design, alpha=alpha)
            findings += found
            summary[design] = {
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
        if tables:
            atomic_write_text(
                out / "predictions.tsv",
                pd.concat(tables, ignore_index=True).to_csv(sep="\t", index=False),
            )
        result = {
            "run_id": run_id,
            "assess_run_id": assess_id,
            "subject": subject,
            "alpha": alpha,
            "classes": classes,
            "primary": primary.to_dict(),
            "verdict": verdict,
            "designs": summary,
            "atypical": findings,
            "stability": stability,
            "cache": {"path": str(cache.path), "key": cache.key},
            "emocore_version": __version__,
            "seconds": round(time.perf_counter() - t0, 1),
            "reused": False,
        }
        atomic_write_json(out / "assessment.json", result)
        registry.add_artifact(
            run_id, f"assessment/sub-{subject}", out / "assessment.json", "metrics"
        )
        registry.update(
            assess_id,
            metrics={
                "verdict": verdict["status"] if verdict else None,
                "flagged": len(verdict["flagged"]) if verdict else 0,
                "designs": {d: v["status"] for d, v in summary.items()},
            },
            progress=1.0,
            message="done",
        )
        registry.set_status(assess_id, "completed")
    return result


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
    from contextlib import nullcontext

    from emocore.data.cache import open_cache
    from emocore.registry import recording_outcome

    registry.get_run(run_id)  # an unknown run fails before any data is read
    subject = str(subject).removeprefix("sub-")
    if not force and RunResults(registry, run_id).assessment(subject) is not None:
        bids = None  # the earlier assessment stands: nothing to add to the cache
    if bids is not None:
        from emocore.data.prepare import PrepareOptions, prepare

        if annotations is None:
            raise ConfigError(
                "--bids needs --annotations (the observer annotations the cache used)"
            )
        with recording_outcome(registry, assess_id) if assess_id else nullcontext():
            if assess_id:
                registry.update(assess_id, status="running", message=f"adding sub-{subject}")
            options = PrepareOptions.from_manifest(open_cache(cache).manifest["options"])
            prepare(bids, annotations, cache, options=options, subjects=[subject])
    return assess_subject(
        open_cache(cache),
        registry,
        run_id,
        subject,
        alpha=alpha,
        device=device,
        progress=progress,
        assess_id=assess_id,
        force=force,
        exploratory=exploratory,
    )
