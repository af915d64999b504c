"""Run designs end to end and record them: training, evaluation, baseline, saliency, registry.

:func:`run_study` is what ``emocore study``, ``emocore train`` and the dashboard's Retrain page
call. Each call is one run in the registry; its folder is the results bundle::

    study.json         what was run (config, split, chance) and the headline numbers per design
    metrics.json       full evaluation per design and model family (cnn, linear)
    predictions.tsv    held-out predictions of every design (column ``design``)
    baseline.tsv       the linear decoder's held-out predictions on the same folds
    curves.tsv         per-epoch train / held-out loss and accuracy of every fold
    models/<design>/   final checkpoints (one per design and person)
    dataset_description.json  BIDS derivative metadata: emocore, its version, the cache read
    saliency/<design>/ a BIDS derivative dataset per design: mean |attribution| per emotion as
                       sub-XX/sub-XX_desc-<emotion>_saliency.nii.gz (one person's volumes) or
                       desc-<emotion>_saliency.nii.gz (several people's), each with a .json
                       sidecar (model, method, steps, baseline, units, cache, run); AUC against
                       planted truth in study.json
    embeddings.tsv     PCA of the cross-subject model's hidden layer, with silhouette scores
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from emocore import __version__
from emocore._io import atomic_write_json, atomic_write_text
from emocore.constants import CLASSES, EMOTIONS
from emocore.data.cache import VolumeCache
from emocore.data.dataset import VolumeSource, select
from emocore.data.derivatives import (
    file_uri,
    saliency_relpath,
    sidecar_path,
    write_dataset_description,
)
from emocore.data.splits import check_split
from emocore.errors import (
    ConfigError,
    EmocoreError,
    RegistryError,
    check_choice,
    check_known_keys,
    listed,
)
from emocore.interpret.patterns import (
    correlation_against_randomised,
    linear_patterns,
    save_linear_patterns,
)
from emocore.interpret.saliency import (
    DEFAULT_METHOD,
    IG_STEPS,
    METHODS,
    describe_method,
    embeddings,
    saliency_auc,
    save_nifti,
)
from emocore.interpret.saliency_checks import check_sentences, saliency_checks
from emocore.progress import Progress, part
from emocore.runs.bundle import table_rows
from emocore.runs.registry import Registry, RunRecord, check_resumable, recording_outcome
from emocore.runs.results import RunResults
from emocore.stats.evaluate import evaluate_predictions
from emocore.stats.single_case import ALPHA, FINDING_KEYS, FOCUS
from emocore.stats.verdict import Primary, cohort_verdicts, default_primary
from emocore.training.baseline import C_GRID, FIXED_C, LinearResult, fit_linear
from emocore.training.designs import DESIGNS, DesignResult, plan_design, run_design
from emocore.training.train import TrainConfig, load_checkpoint

__all__ = [
    "StudyConfig",
    "run_study",
    "record_run",
    "resume_study",
    "ground_truth_dir",
    "merge_fold_runs",
    "evaluate_runs",
    "atypical_entries",
    "stability_entries",
    "study_verdicts",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """What a study runs; saved in study.json and the registry."""

    designs: tuple[str, ...] = DESIGNS
    subjects: tuple[str, ...] | None = None
    split: str = "leave-one-run-out"
    n_folds: int | None = None
    include_none: bool = False
    refit: bool | tuple[str, ...] = True  # a final model on all data: every design, none, or these
    baseline: bool = True
    linear_C: float | str = FIXED_C  # the linear baseline's C; "auto": chosen on inner folds
    saliency: bool = True
    saliency_volumes: int = 16  # volumes per emotion each saliency map averages over
    #: the attribution method of the maps (emocore.interpret.saliency.METHODS); configs recorded before
    #: this field existed made integrated gradients, and read so (from_dict)
    saliency_method: str = DEFAULT_METHOD
    n_permutations: int = 1000
    alpha: float = 0.05  # level of every verdict (and of the exploratory, Holm-adjusted tests)
    #: the primary analysis, "DESIGN:MODEL" (e.g. "loso:cnn"); None: the documented default
    #: (emocore.stats.verdict.default_primary): the only design and model whose tests make verdicts
    primary: str | None = None
    #: the emotions of the clinical question: the verdict's order gives them most of alpha
    focus: tuple[str, ...] = FOCUS
    folds: tuple[str, ...] | None = None  # only these folds (e.g. one LOSO subject per job)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.subjects is not None:  # each person once, in the order given (issue 22)
            object.__setattr__(self, "subjects", tuple(dict.fromkeys(self.subjects)))
        bad = [d for d in self.designs if d not in DESIGNS]
        if bad or not self.designs:
            raise ConfigError(
                f"designs must be some of {list(DESIGNS)}; {list(self.designs)} was given"
            )
        if self.folds and len(self.designs) != 1:
            raise ConfigError(
                f"folds select folds of one design; {len(self.designs)} designs were given "
                "(use `emocore train --design loso --fold sub-03`)"
            )
        if self.n_folds is not None and (
            isinstance(self.n_folds, bool) or not isinstance(self.n_folds, int) or self.n_folds < 2
        ):
            raise ConfigError(
                f"'n_folds' must be >= 2 (each fold needs other folds to train on) or None for "
                f"one fold per run; {self.n_folds!r} was given. Pass --n-folds 2 or more"
            )
        check_split(self.split)
        if self.n_permutations < 1:
            raise ConfigError(
                f"--permutations (n_permutations) must be at least 1 (chance levels and p-values "
                f"need them); {self.n_permutations} was given"
            )
        if isinstance(self.refit, (list, tuple)):
            object.__setattr__(self, "refit", tuple(self.refit))
            bad = [d for d in self.refit if d not in self.designs]
            if bad:
                raise ConfigError(
                    f"refit names designs the study does not run: {bad}; it runs "
                    f"{list(self.designs)}"
                )
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be in (0, 1); {self.alpha} was given")
        object.__setattr__(self, "focus", tuple(str(e).upper() for e in self.focus))
        unknown = [e for e in self.focus if e not in CLASSES]
        if unknown:
            raise ConfigError(
                f"focus names emotions the study does not decode: {unknown}; choose among "
                f"{list(EMOTIONS)} (e.g. --focus LOVE,FEAR)"
            )
        self.primary_analysis()  # a primary analysis the designs cannot produce fails here
        if isinstance(self.saliency_volumes, bool) or not (
            isinstance(self.saliency_volumes, int) and self.saliency_volumes >= 1
        ):
            raise ConfigError(
                "saliency_volumes (volumes per emotion a saliency map averages) must be a whole "
                f"number >= 1; {self.saliency_volumes!r} was given"
            )
        check_choice("saliency_method", self.saliency_method, METHODS)
        if self.linear_C != "auto" and not (
            isinstance(self.linear_C, (int, float))
            and not isinstance(self.linear_C, bool)
            and self.linear_C > 0
        ):
            raise ConfigError(
                f"linear_C must be a positive number or 'auto' (chosen on inner folds); "
                f"{self.linear_C!r} was given"
            )

    def primary_analysis(self) -> Primary:
        """The study's primary analysis: ``primary`` when given, else the documented default
        for its designs (:func:`emocore.stats.verdict.default_primary`)."""
        chosen = Primary.parse(self.primary) if self.primary else default_primary(self.designs)
        chosen.check(self.designs, baseline=self.baseline)
        return chosen

    def is_primary(self, design: str, family: str) -> bool:
        p = self.primary_analysis()
        return p.design == design and p.model == family

    def refits(self, design: str) -> bool:
        """Whether ``design`` keeps a final model trained on all of its data."""
        return design in self.refit if isinstance(self.refit, tuple) else bool(self.refit)

    @property
    def classes(self) -> list[str]:
        return list(CLASSES if self.include_none else EMOTIONS)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyConfig:
        """A study's recorded config; keys this version does not have are refused, naming them
        (no field has been removed since the first version, so an old study.json loads)."""
        check_known_keys(d, cls.__dataclass_fields__, "a study's config")
        known = dict(d)
        known.setdefault("saliency_method", "integrated-gradients")  # what older studies made
        known["train"] = TrainConfig.from_dict(known.get("train", {}))
        known["designs"] = tuple(known.get("designs", DESIGNS))
        for key in ("subjects", "folds", "focus"):
            if known.get(key):
                known[key] = tuple(known[key])
        if "focus" in known and not known["focus"]:
            known["focus"] = ()
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        d["designs"] = list(self.designs)
        d["subjects"] = list(self.subjects) if self.subjects else None
        d["folds"] = list(self.folds) if self.folds else None
        d["focus"] = list(self.focus)
        if isinstance(self.refit, tuple):
            d["refit"] = list(self.refit)
        return d


def ground_truth_dir(cache: VolumeCache) -> Path | None:
    """The synthetic cohort's ground_truth/ folder, when the cache was made from one."""
    root = cache.source_path("root")  # older manifests stored it relative
    gt = root / "ground_truth" / "patterns" if root is not None else None
    return gt if gt is not None and gt.is_dir() else None


#: The most integrated-gradients steps a study's maps may take to pass the completeness check
#: (8, 16, 32: each doubling recomputes the map, so a map costs up to 7 times an 8-step one,
#: plus the randomised model's map). Maps that still miss the tolerance say so in their record.
STUDY_IG_MAX_STEPS = 32


def _headline(design: str, ev: dict[str, Any]) -> dict[str, Any]:
    s = ev["summary"]
    return {
        "design": design,
        "split": s["split"],
        "leaky": s["leaky"],
        "n_volumes": s["n_volumes"],
        "accuracy": s["accuracy"],
        "balanced_accuracy": s["balanced_accuracy"],
        "chance_balanced_accuracy": s["chance"]["balanced_accuracy_permutation"],
        "chance_balanced_accuracy_theoretical": s["chance"]["balanced_accuracy_theoretical"],
        "p_value": s["p_value"]["balanced_accuracy"],
        "ci95": s["ci95"]["balanced_accuracy"],
        "per_class_accuracy": s["per_class_accuracy"],
        # How chance, p and the interval were obtained (older studies lack these keys).
        "permutation": {
            "scheme": s["permutation"]["scheme"],
            "shifts": s["permutation"].get("shifts"),
            "null95": s["permutation"]["null95"]["balanced_accuracy"],
        },
        "bootstrap": s["bootstrap"]["block"],
    }


def _saliency(
    cache: VolumeCache,
    result: DesignResult,
    out: Path,
    classes: list[str],
    device: str,
    *,
    run_id: str,
    method: str = DEFAULT_METHOD,
    max_per_class: int = 16,
    linear_C: float = FIXED_C,
    seed: int = 0,
    with_patterns: bool = True,
) -> dict[str, Any]:
    """Mean saliency per emotion for each final model, on the volumes that model is about, with
    its sanity checks, and the linear decoder's activation pattern beside it.

    ``out`` (``saliency/<design>/``) becomes a BIDS derivative dataset of its own, with a
    ``dataset_description.json``: BIDS has no entity for "which design" and a ``desc`` label is
    one alphanumeric word, so the design is the dataset and the file names carry only BIDS
    entities. One person's map is ``sub-XX/sub-XX_desc-<emotion>_saliency.nii.gz`` (the
    single-subject model of XX, or the LOSO model that held XX out); a map over several people's
    volumes (the cross-subject model) has no ``sub`` entity and sits at the folder's root (see
    :func:`emocore.data.derivatives.saliency_filename`). Each map has a JSON sidecar saying which
    model, method and volumes made it and what its numbers are.

    Each map (SmoothGrad by default, :data:`emocore.interpret.saliency.DEFAULT_METHOD`) is checked
    (:func:`emocore.interpret.saliency_checks.saliency_checks`): the same map from a copy of the model with
    re-drawn weights, all at once and block by block from the output down, must look different
    (Adebayo et al. 2018); on a synthetic cohort the trained map must find the planted pattern
    better than the randomised one (bootstrap over the map's volumes), with the input alone's
    AUC beside it; integrated gradients also raise their steps until the attributions add up to
    the score change (completeness). The sidecar says each check in words
    (``SanityChecksInWords``). Next to it, ``..._desc-<emotion>_linearpattern.nii.gz`` is the
    Haufe et al. (2014) activation pattern of a linear decoder fitted on the same people's
    volumes (the field's usual information map), with its spatial correlation to the CNN's map
    and, as that correlation's null, the randomised CNN's (:func:`emocore.interpret.patterns.
    correlation_against_randomised`).
    """
    gt = ground_truth_dir(cache)
    write_dataset_description(
        out,
        name=f"emocore saliency maps, {result.design} design, run {run_id}",
        source_datasets=[cache.path],
        description=(
            f"mean absolute {method} saliency per emotion of the {result.design} design's final "
            "models; a JSON sidecar next to each map says what it holds"
        ),
    )
    scores: dict[str, Any] = {}
    written: dict[str, str] = {}
    for name, ckpt in result.checkpoints.items():
        model, state = load_checkpoint(ckpt, grid_shape=cache.grid_shape, classes=classes)
        held = state["extra"].get("held_out")
        trained_on = state["extra"].get("trained_on")
        subjects = [held.removeprefix("sub-")] if held else trained_on
        meta = select(cache, subjects=subjects, classes=classes)
        subject = subjects[0] if len(subjects) == 1 else None
        truths = _truths(gt, subject, classes, cache.grid_shape)
        checked = saliency_checks(
            model,
            VolumeSource(cache, meta),
            classes,
            mask=cache.mask,
            truths={e: t for e, (t, _) in truths.items()},
            method=method,
            device=device,
            max_per_class=max_per_class,
            seed=seed,
            randomisation_seed=seed + 1,  # not the seed the model itself started from
            max_steps=STUDY_IG_MAX_STEPS,
            keep_volumes=with_patterns,  # the pattern correlation's null resamples them
        )
        # the linear decoder's patterns on the volumes the CNN model learnt from (a study
        # without the linear baseline has no linear decoder, and skips them)
        patterns = (
            linear_patterns(
                cache, select(cache, subjects=trained_on, classes=classes), classes, C=linear_C
            )
            if with_patterns
            else {}
        )
        pattern_files = save_linear_patterns(
            patterns,
            cache.affine,
            out,
            subject=subject,
            sidecar={
                "Design": result.design,
                "Model": name,
                "C": linear_C,
                "Run": run_id,
                "TrainedOn": [f"sub-{s}" for s in trained_on or []],
            },
        )
        scores[name] = {}
        for emotion, volume in checked.maps.items():
            check = checked.records[emotion]
            how = describe_method(method, steps=check.get("ig_steps") or IG_STEPS)
            words = check_sentences(check)
            relpath = saliency_relpath(subject, emotion)
            if relpath in written:  # two models of one design on the same people's volumes
                raise EmocoreError(
                    f"models {written[relpath]} and {name} of the {result.design} design would "
                    f"both write saliency/{result.design}/{relpath}; give them different people"
                )
            written[relpath] = name
            path = save_nifti(volume, cache.affine, out / relpath)
            truth, truth_path = truths.get(emotion, (None, None))
            auc = check.get("auc")
            n_volumes = min(int((meta["label"] == emotion).sum()), max_per_class)
            atomic_write_json(
                sidecar_path(path),
                {
                    "Description": (
                        f"Where the {result.design} model {name} looks when it scores {emotion}: "
                        f"mean absolute {method} attribution over {n_volumes} of "
                        f"{'sub-' + subject if subject else 'its people'}'s {emotion} volumes"
                    ),
                    "Emotion": emotion,
                    "Design": result.design,
                    "Model": name,
                    "Checkpoint": _below(ckpt, out.parents[1]),
                    "TrainedOn": [f"sub-{s}" for s in state["extra"].get("trained_on") or []],
                    "HeldOut": held,
                    "ExplainedSubjects": [f"sub-{s}" for s in subjects],
                    "NumberOfVolumes": n_volumes,
                    "EmotionVolumesAvailable": int((meta["label"] == emotion).sum()),
                    **how,
                    "Run": run_id,
                    "Cache": {"URL": file_uri(cache.path), "Key": cache.key},
                    "AUCvsTruth": auc,
                    "Truth": truth_path.name if truth_path else None,
                    "SanityChecks": check,
                    "SanityChecksInWords": [
                        {
                            "Check": w["check"],
                            "Passed": w["passed"],
                            "Sentence": w["sentence"],
                            "Details": w["details"],
                        }
                        for w in words
                    ],
                },
                indent=2,
            )
            pattern = patterns.get(emotion)
            linear = None
            if pattern is not None and checked.volumes and checked.randomised_volumes:
                linear = {
                    "file": _below(pattern_files[emotion], out),
                    **correlation_against_randomised(
                        checked.volumes[emotion],
                        checked.randomised_volumes[emotion],
                        pattern[cache.mask],
                        seed=seed,
                    ),
                    "auc_vs_truth": (
                        saliency_auc(np.abs(pattern), truth, cache.mask)
                        if truth is not None
                        else None
                    ),
                }
            scores[name][emotion] = {
                "file": relpath,
                "method": method,
                "auc_vs_truth": auc,
                "truth": truth_path.name if truth_path else None,
                "checks": _check_entry(check),
                "linear_pattern": linear,
            }
    return scores


def _truths(
    gt: Path | None, subject: str | None, classes: Sequence[str], grid: tuple[int, ...]
) -> dict[str, tuple[np.ndarray, Path]]:
    """The planted pattern of each emotion on a synthetic cohort (the person's own, else the
    cohort's), with its file; {} on real data."""
    if gt is None:
        return {}
    import nibabel as nib

    found = {}
    for emotion in classes:
        candidates = [gt / f"sub-{subject}_{emotion}.nii.gz"] if subject else []
        candidates.append(gt / f"{emotion}.nii.gz")
        path = next((p for p in candidates if p.exists()), None)
        if path is not None:
            truth = np.asarray(cast(nib.Nifti1Image, nib.load(path)).dataobj, dtype=np.float32)
            if truth.shape == tuple(grid):
                found[emotion] = (truth, path)
    return found


def _check_entry(record: dict[str, Any]) -> dict[str, Any]:
    """A map's sanity checks as ``saliency_checks`` reports them: the record of
    :func:`emocore.interpret.saliency_checks.check_record`, except that ``completeness_delta`` is the
    mean gap |sum of attributions - (f(x) - f(baseline))| / |f(x) - f(baseline)| over the
    map's volumes (``completeness_delta_max`` the worst), None except for integrated gradients."""
    delta = record.get("completeness_delta")
    entry = {
        "method": record.get("method"),
        "completeness_delta": delta["mean"] if isinstance(delta, dict) else delta,
        "completeness_delta_max": delta["max"] if isinstance(delta, dict) else None,
    }
    entry.update({k: v for k, v in record.items() if k not in entry})
    return entry


def _below(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form if it is inside, else its name only."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


#: Volumes the representation's silhouette scores are computed on at most (seeded sample).
SILHOUETTE_SAMPLE = 4000


def _embeddings(
    cache: VolumeCache, ckpt: Path, classes: list[str], device: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    model, _ = load_checkpoint(ckpt, grid_shape=cache.grid_shape, classes=classes)
    meta = select(cache, classes=classes)
    emb = embeddings(model, VolumeSource(cache, meta), device=device)
    pcs = PCA(n_components=2, random_state=0).fit_transform(emb)
    table = meta[["subject", "run", "volume", "movie_time", "label"]].copy()
    table["pc1"], table["pc2"] = pcs[:, 0], pcs[:, 1]
    quality: dict[str, Any] = {"n": len(emb)}
    # the silhouette costs n^2 distances: above SILHOUETTE_SAMPLE volumes it is the score of a
    # seeded random sample of them (scikit-learn's sample_size), recorded as silhouette_sample
    sample = SILHOUETTE_SAMPLE if len(emb) > SILHOUETTE_SAMPLE else None
    quality["silhouette_sample"] = sample
    for by in ("label", "subject"):
        labels = meta[by].to_numpy()
        quality[f"silhouette_by_{'emotion' if by == 'label' else 'subject'}"] = (
            float(silhouette_score(emb, labels, sample_size=sample, random_state=0))
            if len(set(labels)) > 1 and len(emb) > len(set(labels))
            else None
        )
    return table, quality


def _evaluate(
    table: pd.DataFrame, result: DesignResult, config: StudyConfig, family: str
) -> dict[str, Any]:
    """One model family's held-out predictions of a design, evaluated with the study's settings:
    the primary analysis' tests in the verdict's order, every other one Holm-adjusted and
    exploratory."""
    return evaluate_predictions(
        table,
        classes=result.classes,
        split=result.split,
        design=result.design,
        leaky=result.leaky,
        n_permutations=config.n_permutations,
        seed=config.train.seed,
        model=family,
        alpha=config.alpha,
        procedure="verdict" if config.is_primary(result.design, family) else "holm",
        focus=config.focus,
    )


def study_verdicts(
    tables: dict[tuple[str, str], pd.DataFrame],
    metrics: dict[str, Any],
    classes: Sequence[str],
    primary: Primary,
    *,
    alpha: float,
    focus: Sequence[str] = FOCUS,
) -> list[dict[str, Any]]:
    """One verdict per person of the primary analysis (``tables`` maps (design, family) to its
    held-out predictions; ``metrics`` holds its evaluated findings); [] when the study did not
    produce it (e.g. a job that ran some folds only)."""
    table = tables.get((primary.design, primary.model))
    ev = (metrics.get(primary.design) or {}).get(primary.model)
    if table is None or not isinstance(ev, dict) or table.empty:
        return []
    return cohort_verdicts(
        table,
        classes,
        primary,
        alpha=alpha,
        focus=focus,
        findings=pd.DataFrame(ev.get("findings") or []),
    )


def _pattern_C(setting: float | str, chosen: dict[str, Any] | None) -> float:
    """The C of the linear patterns: the study's fixed C, or with tuning the C the outer folds
    chose most often (ties: the smaller, stronger regularisation)."""
    if setting != "auto":
        return float(setting)
    values = sorted(float(v["C"]) for v in (chosen or {}).values())
    if not values:
        return FIXED_C
    return max(values, key=lambda c: (values.count(c), -c))


def _fold_settings(
    tuning: dict[str, dict[str, dict[str, Any]]], max_epochs: int
) -> dict[str, dict[str, Any]]:
    """A design's per-model, per-fold settings as ``{"<model> <fold>": {"epochs": n, "how": ...}}``
    (the inner-fold curve is left out: it is in the run's folder while the run is going).
    ``at_limit`` marks a chosen count equal to the maximum: more epochs might have been better."""
    out = {}
    for model, per_fold in tuning.items():
        for fold, chosen in per_fold.items():
            entry = {k: v for k, v in chosen.items() if k in ("epochs", "how", "inner_fold")}
            if chosen.get("how") == "inner fold":
                entry["at_limit"] = int(chosen["epochs"]) >= max_epochs
            out[f"{model} {fold}"] = entry
    return out


def _linear_settings(fitted: LinearResult) -> dict[str, dict[str, Any]]:
    """The linear baseline's per-fold C; with tuning, ``at_limit`` marks a C at either end of
    the grid (the best C may lie beyond it)."""
    out = {}
    for model, per_fold in fitted.tuning.items():
        for fold, chosen in per_fold.items():
            entry: dict[str, Any] = {**chosen, "how": "fixed"}
            if fitted.setting == "tuned":
                entry["how"] = "inner folds"
                entry["at_limit"] = float(chosen["C"]) in (min(C_GRID), max(C_GRID))
            out[f"{model} {fold}"] = entry
    return out


def record_run(
    registry: Registry, cache: VolumeCache, config: StudyConfig, *, kind: str = "study"
) -> RunRecord:
    """A queued run of ``config`` on ``cache`` in the registry (what :func:`run_study` and the
    dashboard's jobs record before training starts)."""
    return registry.create_run(
        kind=kind,
        design=config.designs[0] if len(config.designs) == 1 else None,
        split=config.split,
        leaky=config.split == "random",
        subjects=list(config.subjects) if config.subjects else cache.subjects,
        config=config.to_dict(),
        data_hash=cache.key,
        sources=[cache.path],
    )


def resume_study(
    registry: Registry,
    run_id: str,
    cache: VolumeCache,
    *,
    progress: Progress | None = None,
) -> RunResults:
    """Run (or go on with) a queued or interrupted run with the config it recorded: finished
    folds are kept, an interrupted fold goes on from its last epoch."""
    record = check_resumable(registry.get_run(run_id))  # an assess run: how to redo it
    if record.status == "completed":
        raise RegistryError(f"run {record.id} is already complete; nothing to resume")
    config = StudyConfig.from_dict(record.config)
    return run_study(cache, registry, config, kind=record.kind, progress=progress, run_id=run_id)


def run_study(  # noqa: C901, PLR0915
    cache: VolumeCache,
    registry: Registry,
    config: StudyConfig,
    *,
    kind: str = "study",
    progress: Progress | None = None,
    run_id: str | None = None,
) -> RunResults:
    """Run every design of ``config`` on ``cache``, write the bundle, record the run; return the
    finished run's :class:`~emocore.runs.results.RunResults`.

    With ``run_id`` an existing queued run (e.g. created by the dashboard) is filled in.
    """
    if run_id is not None:  # refused while another live process runs it (--resume twice)
        registry.claim(run_id)
    classes = config.classes
    subjects = list(config.subjects) if config.subjects else cache.subjects
    missing = sorted(set(subjects) - set(cache.subjects))
    if missing:
        raise ConfigError(
            f"subject(s) {listed(missing)} not in the cache at {cache.path}; it holds "
            f"{listed(cache.subjects)}"
        )
    # Plan every design's folds before a run is recorded: a bad option fails with no run left
    # (a run queued by the dashboard is marked failed, so it does not stay queued).
    try:
        for design in config.designs:
            plan_design(
                cache,
                design,
                subjects=subjects,
                split=config.split,
                n_folds=config.n_folds,
                classes=classes,
                seed=config.train.seed,
                folds=config.folds,
            )
    except ConfigError as exc:
        if run_id is not None:
            registry.set_status(run_id, "failed", error=str(exc))
        raise
    if run_id is None:
        run_id = record_run(registry, cache, config, kind=kind).id
    else:  # queued elsewhere (dashboard) or resumed: record the cache this process reads
        registry.describe_run(run_id, sources=[cache.path], kind=kind)
    out = registry.run_dir(run_id)
    registry.update(
        run_id,
        status="running",
        pid=os.getpid(),
        error=None,
        message=f"{config.designs[0]}: preparing the first fold",
    )
    t0 = time.perf_counter()
    n_steps = len(config.designs) + 1

    def report(i: int, label: str) -> Progress:
        def inner(frac: float, msg: str) -> None:
            registry.update(run_id, progress=(i + frac) / n_steps, message=msg)
            if progress is not None:
                progress((i + frac) / n_steps, msg)

        return inner

    def on_epoch(rec: dict[str, Any]) -> None:
        registry.log_epoch(
            run_id,
            fold=f"{rec['design']}/{rec['model']}/{rec['fold']}",
            epoch=rec["epoch"],
            train_loss=rec["train_loss"],
            train_acc=rec["train_acc"],
            val_loss=rec["val_loss"],
            val_acc=rec["val_acc"],
            val_balanced_acc=rec.get("val_balanced_acc"),
            seconds=rec["seconds"],
        )

    with recording_outcome(registry, run_id):
        predictions, baselines = [], []
        tables: dict[tuple[str, str], pd.DataFrame] = {}
        metrics: dict[str, Any] = {}
        headline: list[dict[str, Any]] = []
        extras: dict[str, Any] = {
            "saliency": {},
            "embeddings": None,
            "train_volumes_per_s": {},
            "peak_gpu_memory_gib": {},
            "tuning": {},
            "saliency_checks": {},
        }
        for i, design in enumerate(config.designs):
            res = run_design(
                cache,
                design,
                config.train,
                subjects=subjects,
                split=config.split,
                n_folds=config.n_folds,
                classes=classes,
                refit=config.refits(design),
                checkpoint_dir=out / "models" / design,
                # training takes the design's share up to 95 %: the baseline (97 %) and the
                # saliency maps (99 %) come after it, so the bar never steps back
                progress=part(report(i, design), 0.0, 0.95),
                on_epoch=on_epoch,
                work_dir=out / "work" / design,
                folds=config.folds,
            )
            for name, path in res.checkpoints.items():
                registry.add_artifact(run_id, f"{design}/{name}", path, "checkpoint")
            predictions.append(res.predictions)
            tables[(design, "cnn")] = res.predictions
            extras["train_volumes_per_s"][design] = round(res.train_volumes_per_s, 1)
            extras["peak_gpu_memory_gib"][design] = res.peak_gpu_memory_gib
            ev = _evaluate(res.predictions, res, config, "cnn")
            metrics[design] = {"cnn": ev, "plans": res.plans}
            extras["tuning"][design] = {"cnn": _fold_settings(res.tuning, config.train.epochs)}
            headline.append({"model": "cnn", **_headline(design, ev)})
            if config.baseline:
                report(i, design)(0.97, "linear baseline on the same folds")
                meta = select(cache, subjects=subjects, classes=classes)
                fitted = fit_linear(
                    cache,
                    meta,
                    design,
                    classes=classes,
                    split=config.split,
                    n_folds=config.n_folds,
                    seed=config.train.seed,
                    folds=config.folds,
                    C=config.linear_C,
                )
                base = fitted.predictions
                baselines.append(base)
                tables[(design, "linear")] = base
                extras["tuning"][design]["linear"] = _linear_settings(fitted)
                bev = _evaluate(base, res, config, "linear")
                metrics[design]["linear"] = bev
                headline.append({"model": "linear", **_headline(design, bev)})
            if config.saliency and res.checkpoints:
                report(i, design)(0.99, "saliency maps")
                extras["saliency"][design] = _saliency(
                    cache,
                    res,
                    out / "saliency" / design,
                    classes,
                    config.train.device,
                    run_id=run_id,
                    method=config.saliency_method,
                    max_per_class=config.saliency_volumes,
                    linear_C=_pattern_C(config.linear_C, extras["tuning"][design].get("linear")),
                    seed=config.train.seed,
                    with_patterns=config.baseline,
                )
                extras["saliency_checks"][design] = {
                    model: {emotion: entry["checks"] for emotion, entry in maps.items()}
                    for model, maps in extras["saliency"][design].items()
                }
        report(len(config.designs), "")(0.0, "embeddings")
        emb_ckpt = next(
            (
                p
                for d in ("cross-subject", "single-subject", "loso")
                for n, p in _checkpoints(out, d)
            ),
            None,
        )
        if emb_ckpt is not None:
            table, quality = _embeddings(cache, emb_ckpt, classes, config.train.device)
            atomic_write_text(out / "embeddings.tsv", table.to_csv(sep="\t", index=False))
            extras["embeddings"] = {"model": str(emb_ckpt.relative_to(out)), **quality}
        all_pred = pd.concat(predictions, ignore_index=True)
        atomic_write_text(out / "predictions.tsv", all_pred.to_csv(sep="\t", index=False))
        registry.add_artifact(run_id, "predictions", out / "predictions.tsv", "predictions")
        extras["tables"] = {"predictions.tsv": table_rows(all_pred)}
        if baselines:
            all_base = pd.concat(baselines, ignore_index=True)
            atomic_write_text(out / "baseline.tsv", all_base.to_csv(sep="\t", index=False))
            extras["tables"]["baseline.tsv"] = table_rows(all_base)
        atomic_write_text(out / "curves.tsv", registry.curves(run_id).to_csv(sep="\t", index=False))
        atomic_write_json(out / "metrics.json", metrics)
        primary = config.primary_analysis()
        report(len(config.designs), "")(0.5, "verdicts: what each person's test could detect")
        verdicts = study_verdicts(
            tables, metrics, classes, primary, alpha=config.alpha, focus=config.focus
        )
        study = {
            "run_id": run_id,
            "emocore_version": __version__,
            "cache": {
                "path": str(cache.path),
                "key": cache.key,
                "grid": list(cache.grid_shape),
                "options": cache.manifest["options"],
            },
            "config": config.to_dict(),
            "classes": classes,
            "subjects": subjects,
            "results": headline,
            "alpha": config.alpha,
            "primary": primary.to_dict(),
            "verdicts": verdicts,
            "atypical": atypical_entries(metrics),
            "stability": stability_entries(metrics),
            "seconds": round(time.perf_counter() - t0, 1),
            **extras,
        }
        atomic_write_json(out / "study.json", study)
        shutil.rmtree(
            out / "work", ignore_errors=True
        )  # fold checkpoints of --resume, no longer needed
        report(len(config.designs), "")(1.0, "done")
        registry.update(
            run_id,
            metrics={"results": headline, "seconds": study["seconds"]},
            progress=1.0,
            message="done",
        )
        registry.set_status(run_id, "completed")
    return RunResults(registry, run_id)


def atypical_entries(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Every single-case test of a study, one entry per design, model family, subject, emotion
    and measure, with exactly the keys of :data:`emocore.stats.single_case.FINDING_KEYS` plus the
    finding's ``sentence`` (what ``--json`` prints as ``atypical``)."""
    return [
        {key: finding.get(key) for key in (*FINDING_KEYS, "sentence")}
        for design in metrics.values()
        for family, ev in design.items()
        if family != "plans"
        for finding in ev.get("findings", [])
    ]


def stability_entries(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Each subject's fold-to-fold spread of balanced accuracy, per design and model family."""
    return [
        {"design": design, "model": family, **row}
        for design, families in metrics.items()
        for family, ev in families.items()
        if family != "plans"
        for row in ev.get("stability", [])
    ]


def _checkpoints(out: Path, design: str) -> list[tuple[str, Path]]:
    folder = out / "models" / design
    return [(p.stem, p) for p in sorted(folder.glob("*.pt"))] if folder.is_dir() else []


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A study config without what may differ between jobs of one cross-validation."""
    d = {k: v for k, v in config.items() if k != "folds"}
    d["train"] = {k: v for k, v in d.get("train", {}).items() if k not in ("device", "compile")}
    return d


def merge_fold_runs(
    registry: Registry, run_ids: Sequence[str], *, table: str = "predictions.tsv"
) -> pd.DataFrame:
    """Held-out predictions of several runs that each ran some folds of one design, as one table.

    The runs must share the cache, classes and config (apart from ``folds``, the device and
    torch.compile), and no fold may appear twice: otherwise the pooled numbers would not be
    one cross-validation, and a :class:`~emocore.errors.ConfigError` says which run differs.
    """
    runs = [RunResults(registry, r) for r in run_ids]
    first = runs[0].study
    ref_config, ref_key = _comparable(first["config"]), first["cache"]["key"]
    frames: list[pd.DataFrame] = []
    owner: dict[tuple[Any, ...], str] = {}
    for run in runs:
        run_id, study = run.run_id, run.study
        if study["cache"]["key"] != ref_key:
            raise ConfigError(
                f"run {run_id} used another cache ({study['cache']['key']}) than run "
                f"{run_ids[0]} ({ref_key}); only runs on the same data can be evaluated together"
            )
        config = _comparable(study["config"])
        if config != ref_config:
            differ = sorted(
                k for k in set(config) | set(ref_config) if config.get(k) != ref_config.get(k)
            )
            raise ConfigError(
                f"run {run_id} was configured differently from run {run_ids[0]} "
                f"({', '.join(differ)}); evaluate together only folds of one study setup"
            )
        frame = run.table(table.removesuffix(".tsv"))
        for key in (
            frame[["design", "model", "fold_name"]].drop_duplicates().itertuples(index=False)
        ):
            if key in owner:
                raise ConfigError(
                    f"fold {key.fold_name} of {key.design}/{key.model} is in run {owner[key]} "
                    f"and run {run_id}; pass each fold once"
                )
            owner[key] = run_id
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def evaluate_runs(
    registry: Registry,
    run_ids: Sequence[str],
    *,
    n_permutations: int = 1000,
    linear: bool = False,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Evaluate the held-out predictions of finished runs again, recorded as an ``evaluate`` run.

    One run is re-scored (e.g. with more permutations); several runs that each ran some folds of
    one design (``--folds``, one job per fold) are merged first (:func:`merge_fold_runs`) and
    scored as one cross-validation. With ``linear`` the linear baseline's predictions are scored.
    Returns ``run_id``, ``source_run``, ``source_runs``, ``classes`` and ``designs`` (per design the
    evaluation of :func:`~emocore.stats.evaluate.evaluate_predictions` plus its ``folds``).
    """
    if n_permutations < 1:  # checked before a run is recorded
        raise ConfigError(
            "n_permutations must be at least 1 (chance levels and p-values need them); "
            f"{n_permutations} was given"
        )
    sources = [registry.get_run(r) for r in dict.fromkeys(run_ids)]
    source = sources[0]
    classes = RunResults(registry, source.id).classes
    table = "baseline.tsv" if linear else "predictions.tsv"
    if len(sources) == 1:
        pred = RunResults(registry, source.id).table(table.removesuffix(".tsv"))
    else:
        pred = merge_fold_runs(registry, [r.id for r in sources], table=table)
    run = registry.create_run(
        kind="evaluate",
        split=source.split,
        leaky=source.leaky,
        subjects=sorted({s for r in sources for s in r.subjects}),
        config={
            "source_run": source.id,
            "source_runs": [r.id for r in sources],
            "permutations": n_permutations,
            "linear": linear,
        },
        data_hash=source.data_hash,
        parent=source.id,
        status="running",
        sources=[registry.run_dir(r.id) for r in sources],
    )
    out: dict[str, Any] = {
        "run_id": run.id,
        "source_run": source.id,
        "source_runs": [r.id for r in sources],
        "classes": classes,
        "designs": {},
    }
    config = StudyConfig.from_dict(RunResults(registry, source.id).config)
    primary = config.primary_analysis()
    family = "linear" if linear else "cnn"
    out["primary"] = primary.to_dict()
    out["verdicts"] = []
    with recording_outcome(registry, run.id):  # a failure fails the run, never leaves it running
        for design, rows in pred.groupby("design", sort=False):
            split = str(rows["split"].iloc[0])
            is_primary = (primary.design, primary.model) == (design, family)
            ev = evaluate_predictions(
                rows,
                classes=classes,
                split=split,
                design=str(design),
                leaky=split == "random",
                n_permutations=n_permutations,
                seed=seed,
                model=family,
                alpha=alpha,
                procedure="verdict" if is_primary else "holm",
                focus=config.focus,
            )
            ev["folds"] = sorted(rows["fold_name"].astype(str).unique().tolist())
            out["designs"][design] = ev
            if is_primary:
                out["verdicts"] = cohort_verdicts(
                    rows,
                    classes,
                    primary,
                    alpha=alpha,
                    focus=config.focus,
                    findings=pd.DataFrame(ev["findings"]),
                )
        registry.update(
            run.id, metrics={d: v["summary"] for d, v in out["designs"].items()}, progress=1.0
        )
        registry.set_status(run.id, "completed")
    return out
