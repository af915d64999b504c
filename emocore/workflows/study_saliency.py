"""A study's saliency step: per design, where each final model looks for each emotion.

:func:`design_saliency` writes ``saliency/<design>/`` of a study's bundle (see
:mod:`emocore.workflows.study`): a BIDS derivative dataset of mean |attribution| maps with their
sanity checks and JSON sidecars, and the linear decoder's activation patterns beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from emocore._io import atomic_write_json
from emocore.data.cache import VolumeCache
from emocore.data.dataset import VolumeSource, select
from emocore.data.derivatives import (
    file_uri,
    saliency_relpath,
    sidecar_path,
    write_dataset_description,
)
from emocore.errors import EmocoreError
from emocore.interpret.patterns import (
    correlation_against_randomised,
    linear_patterns,
    save_linear_patterns,
)
from emocore.interpret.saliency import (
    DEFAULT_METHOD,
    IG_STEPS,
    describe_method,
    pooling_words,
    saliency_auc,
    save_nifti,
)
from emocore.interpret.saliency_checks import CheckedMaps, check_sentences, saliency_checks
from emocore.training.baseline import FIXED_C
from emocore.training.designs import DesignResult
from emocore.training.train import load_checkpoint

__all__ = ["STUDY_IG_MAX_STEPS", "design_saliency", "ground_truth_dir"]


def ground_truth_dir(cache: VolumeCache) -> Path | None:
    """The synthetic cohort's ground_truth/ folder, when the cache was made from one."""
    root = cache.source_path("root")  # older manifests stored it relative
    gt = root / "ground_truth" / "patterns" if root is not None else None
    return gt if gt is not None and gt.is_dir() else None


#: The most integrated-gradients steps a study's maps may take to pass the completeness check
#: (8, 16, 32: each doubling recomputes the map, so a map costs up to 7 times an 8-step one,
#: plus the randomised model's map). Maps that still miss the tolerance say so in their record.
STUDY_IG_MAX_STEPS = 32


@dataclass(frozen=True)
class _MapJob:
    """What every map of one design's saliency step shares: the data, the design, the folder
    the maps go to and the settings of the maps and of the linear patterns."""

    cache: VolumeCache
    design: str
    out: Path
    classes: list[str]
    device: str
    run_id: str
    method: str
    max_per_class: int
    linear_C: float
    seed: int
    with_patterns: bool
    gt: Path | None  # the synthetic cohort's planted patterns, None on real data


@dataclass(frozen=True)
class _ModelMaps:
    """One final model's maps per emotion with their checks, the volumes they explain, and the
    linear decoder's patterns on the volumes the model learnt from."""

    name: str
    ckpt: Path
    held: str | None  # the person a LOSO model did not see
    trained_on: list[str] | None
    subjects: list[str]  # whose volumes the maps explain
    meta: pd.DataFrame
    truths: dict[str, tuple[np.ndarray, Path]]
    checked: CheckedMaps
    patterns: dict[str, np.ndarray]
    pattern_files: dict[str, Path]

    @property
    def subject(self) -> str | None:
        """The one person the maps are about, or None for several people's volumes."""
        return self.subjects[0] if len(self.subjects) == 1 else None


def design_saliency(
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
    job = _MapJob(
        cache=cache,
        design=result.design,
        out=out,
        classes=classes,
        device=device,
        run_id=run_id,
        method=method,
        max_per_class=max_per_class,
        linear_C=linear_C,
        seed=seed,
        with_patterns=with_patterns,
        gt=ground_truth_dir(cache),
    )
    write_dataset_description(
        out,
        name=f"emocore saliency maps, {result.design} design, run {run_id}",
        source_datasets=[cache.path],
        description=(
            f"{pooling_words(method)} saliency per emotion of the {result.design} design's final "
            "models; a JSON sidecar next to each map says what it holds"
        ),
    )
    scores: dict[str, Any] = {}
    written: dict[str, str] = {}  # each map's file -> the model that wrote it
    for name, ckpt in result.checkpoints.items():
        maps = _explain(job, name, ckpt)
        scores[name] = {}
        for emotion, volume in maps.checked.maps.items():
            scores[name][emotion] = _write_map(job, maps, emotion, volume, written)
    return scores


def _explain(job: _MapJob, name: str, ckpt: Path) -> _ModelMaps:
    """The checked maps of one final model on the people it is about (the person a LOSO model
    held out, else the people it learnt from), and the linear patterns beside them (written)."""
    cache, classes = job.cache, job.classes
    model, state = load_checkpoint(ckpt, grid_shape=cache.grid_shape, classes=classes)
    held = state["extra"].get("held_out")
    trained_on = state["extra"].get("trained_on")
    subjects = [held.removeprefix("sub-")] if held else trained_on
    meta = select(cache, subjects=subjects, classes=classes)
    subject = subjects[0] if len(subjects) == 1 else None
    truths = _truths(job.gt, subject, classes, cache.grid_shape)
    checked = saliency_checks(
        model,
        VolumeSource(cache, meta),
        classes,
        mask=cache.mask,
        truths={e: t for e, (t, _) in truths.items()},
        method=job.method,
        device=job.device,
        max_per_class=job.max_per_class,
        seed=job.seed,
        randomisation_seed=job.seed + 1,  # not the seed the model itself started from
        max_steps=STUDY_IG_MAX_STEPS,
        keep_volumes=job.with_patterns,  # the pattern correlation's null resamples them
    )
    # the linear decoder's patterns on the volumes the CNN model learnt from (a study
    # without the linear baseline has no linear decoder, and skips them)
    patterns = (
        linear_patterns(
            cache, select(cache, subjects=trained_on, classes=classes), classes, C=job.linear_C
        )
        if job.with_patterns
        else {}
    )
    pattern_files = save_linear_patterns(
        patterns,
        cache.affine,
        job.out,
        subject=subject,
        sidecar={
            "Design": job.design,
            "Model": name,
            "C": job.linear_C,
            "Run": job.run_id,
            "TrainedOn": [f"sub-{s}" for s in trained_on or []],
        },
    )
    return _ModelMaps(
        name=name,
        ckpt=ckpt,
        held=held,
        trained_on=trained_on,
        subjects=subjects,
        meta=meta,
        truths=truths,
        checked=checked,
        patterns=patterns,
        pattern_files=pattern_files,
    )


def _write_map(
    job: _MapJob, maps: _ModelMaps, emotion: str, volume: np.ndarray, written: dict[str, str]
) -> dict[str, Any]:
    """Write one emotion's map and its sidecar; return its entry in study.json."""
    check = maps.checked.records[emotion]
    relpath = saliency_relpath(maps.subject, emotion)
    if relpath in written:  # two models of one design on the same people's volumes
        raise EmocoreError(
            f"models {written[relpath]} and {maps.name} of the {job.design} design would "
            f"both write saliency/{job.design}/{relpath}; give them different people"
        )
    written[relpath] = maps.name
    path = save_nifti(volume, job.cache.affine, job.out / relpath)
    truth, truth_path = maps.truths.get(emotion, (None, None))
    atomic_write_json(sidecar_path(path), _sidecar(job, maps, emotion, check, truth_path), indent=2)
    return {
        "file": relpath,
        "method": job.method,
        "auc_vs_truth": check.get("auc"),
        "truth": truth_path.name if truth_path else None,
        "checks": _check_entry(check),
        "linear_pattern": _linear_entry(job, maps, emotion, truth),
    }


def _sidecar(
    job: _MapJob,
    maps: _ModelMaps,
    emotion: str,
    check: dict[str, Any],
    truth_path: Path | None,
) -> dict[str, Any]:
    """The JSON sidecar of one map: which model, method and volumes made it, its checks."""
    subject = maps.subject
    available = int((maps.meta["label"] == emotion).sum())
    n_volumes = min(available, job.max_per_class)
    how = describe_method(job.method, steps=check.get("ig_steps") or IG_STEPS)
    return {
        "Description": (
            f"Where the {job.design} model {maps.name} looks when it scores {emotion}: "
            f"{pooling_words(job.method)} attribution over {n_volumes} of "
            f"{'sub-' + subject if subject else 'its people'}'s {emotion} volumes"
        ),
        "Emotion": emotion,
        "Design": job.design,
        "Model": maps.name,
        "Checkpoint": _below(maps.ckpt, job.out.parents[1]),
        "TrainedOn": [f"sub-{s}" for s in maps.trained_on or []],
        "HeldOut": maps.held,
        "ExplainedSubjects": [f"sub-{s}" for s in maps.subjects],
        "NumberOfVolumes": n_volumes,
        "EmotionVolumesAvailable": available,
        **how,
        "Run": job.run_id,
        "Cache": {"URL": file_uri(job.cache.path), "Key": job.cache.key},
        "AUCvsTruth": check.get("auc"),
        "Truth": truth_path.name if truth_path else None,
        "SanityChecks": check,
        "SanityChecksInWords": [
            {
                "Check": w["check"],
                "Passed": w["passed"],
                "Sentence": w["sentence"],
                "Details": w["details"],
            }
            for w in check_sentences(check)
        ],
    }


def _linear_entry(
    job: _MapJob, maps: _ModelMaps, emotion: str, truth: np.ndarray | None
) -> dict[str, Any] | None:
    """The linear pattern of ``emotion`` beside the CNN's map: its file, its spatial correlation
    with the map against the randomised model's, and its AUC against the planted truth; None
    without a pattern or kept volumes."""
    pattern = maps.patterns.get(emotion)
    checked = maps.checked
    if pattern is None or not checked.volumes or not checked.randomised_volumes:
        return None
    mask = job.cache.mask
    return {
        "file": _below(maps.pattern_files[emotion], job.out),
        **correlation_against_randomised(
            checked.volumes[emotion],
            checked.randomised_volumes[emotion],
            pattern[mask],
            seed=job.seed,
        ),
        "auc_vs_truth": (saliency_auc(np.abs(pattern), truth, mask) if truth is not None else None),
    }


def _truths(
    gt: Path | None, subject: str | None, classes: Sequence[str], grid: tuple[int, ...]
) -> dict[str, tuple[np.ndarray, Path]]:
    """The planted pattern of each emotion on a synthetic cohort (the person's own, else the
    cohort's), with its file; {} on real data."""
    if gt is None:
        return {}
    # imported here, as emocore.interpret.saliency does to write NIfTI: nibabel is slow to import
    # and only a synthetic cohort has planted patterns to read
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
