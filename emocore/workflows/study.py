"""Run designs end to end and record them: training, evaluation, baseline, saliency, registry.

:func:`run_study` is what ``emocore study``, ``emocore train`` and the dashboard's Retrain page
call. Each call is one run in the registry; its folder is the results bundle::

    study.json         what was run (config, split, chance) and the headline numbers per design
                       (its format and schema_version: emocore.runs.schema.StudyRecord)
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

The study's config is :class:`~emocore.workflows.study_config.StudyConfig` and its saliency step
:func:`~emocore.workflows.study_saliency.design_saliency`; both are importable from here too.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emocore import __version__
from emocore._io import atomic_write_json, atomic_write_text
from emocore.data.cache import VolumeCache
from emocore.data.dataset import VolumeSource, select
from emocore.errors import ConfigError, RegistryError, listed
from emocore.interpret.saliency import embeddings
from emocore.progress import Progress, part
from emocore.runs.bundle import table_rows
from emocore.runs.registry import Registry, RunRecord, check_resumable, recording_outcome
from emocore.runs.results import RunResults
from emocore.runs.schema import STUDY_SCHEMA_VERSION
from emocore.stats.evaluate import evaluate_predictions
from emocore.stats.single_case import ALPHA, FINDING_KEYS, FOCUS
from emocore.stats.verdict import Primary, cohort_verdicts
from emocore.training.baseline import C_GRID, FIXED_C, LinearResult, fit_linear
from emocore.training.designs import DesignResult, plan_design, run_design
from emocore.training.train import load_checkpoint
from emocore.workflows.study_config import StudyConfig
from emocore.workflows.study_saliency import design_saliency, ground_truth_dir

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
    "headline_row",
]

logger = logging.getLogger(__name__)


def headline_row(design: str, ev: dict[str, Any]) -> dict[str, Any]:
    """One row of study.json's ``results``: a design's accuracy for one model family (from
    :func:`emocore.stats.evaluate.evaluate_predictions`) with its split, permutation chance, p
    and interval, and how each was obtained."""
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


#: Volumes the representation's silhouette scores are computed on at most (seeded sample).
SILHOUETTE_SAMPLE = 4000


def _embeddings(
    cache: VolumeCache, ckpt: Path, classes: list[str], device: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    # here: scikit-learn loads in 0.5 s, and only the embeddings need it
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


def run_study(
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
    subjects = _study_subjects(cache, config)
    _plan_designs(cache, registry, config, subjects, run_id)
    run_id, out = _start_run(registry, cache, config, kind=kind, run_id=run_id)
    run = _StudyRun(
        cache=cache,
        registry=registry,
        config=config,
        run_id=run_id,
        out=out,
        subjects=subjects,
        progress=progress,
    )
    with recording_outcome(registry, run_id):
        for i, design in enumerate(config.designs):
            res = run.train_design(i, design)
            if config.baseline:
                run.add_baseline(i, design, res)
            if config.saliency and res.checkpoints:
                run.add_saliency(i, design, res)
        run.add_embeddings()
        run.write_tables()
        run.finish(run.write_study())
    return RunResults(registry, run_id)


def _study_subjects(cache: VolumeCache, config: StudyConfig) -> list[str]:
    """The people the study runs on: the config's, else all in the cache (each must be in it)."""
    subjects = list(config.subjects) if config.subjects else cache.subjects
    missing = sorted(set(subjects) - set(cache.subjects))
    if missing:
        raise ConfigError(
            f"subject(s) {listed(missing)} not in the cache at {cache.path}; it holds "
            f"{listed(cache.subjects)}"
        )
    return subjects


def _plan_designs(
    cache: VolumeCache,
    registry: Registry,
    config: StudyConfig,
    subjects: list[str],
    run_id: str | None,
) -> None:
    """Plan every design's folds before a run is recorded: a bad option fails with no run left
    (a run queued by the dashboard is marked failed, so it does not stay queued)."""
    try:
        for design in config.designs:
            plan_design(
                cache,
                design,
                subjects=subjects,
                split=config.split,
                n_folds=config.n_folds,
                classes=config.classes,
                seed=config.train.seed,
                folds=config.folds,
            )
    except ConfigError as exc:
        if run_id is not None:
            registry.set_status(run_id, "failed", error=str(exc))
        raise


def _start_run(
    registry: Registry,
    cache: VolumeCache,
    config: StudyConfig,
    *,
    kind: str,
    run_id: str | None,
) -> tuple[str, Path]:
    """The study's run (recorded now, or the queued or resumed one), marked running; with its
    folder."""
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
    return run_id, out


def _empty_extras() -> dict[str, Any]:
    """study.json's per-design records before any design has run."""
    return {
        "saliency": {},
        "embeddings": None,
        "train_volumes_per_s": {},
        "peak_gpu_memory_gib": {},
        "tuning": {},
        "saliency_checks": {},
    }


@dataclass
class _StudyRun:
    """One call of :func:`run_study` once its run is recorded: where it writes, how it reports,
    and what the designs have given so far (the bundle's tables, metrics and headline numbers)."""

    cache: VolumeCache
    registry: Registry
    config: StudyConfig
    run_id: str
    out: Path
    subjects: list[str]
    progress: Progress | None
    t0: float = field(default_factory=time.perf_counter)
    predictions: list[pd.DataFrame] = field(default_factory=list)
    baselines: list[pd.DataFrame] = field(default_factory=list)
    tables: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    headline: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=_empty_extras)

    @property
    def classes(self) -> list[str]:
        return self.config.classes

    def report(self, i: int) -> Progress:
        """Progress within step ``i`` (a design; the last step writes the bundle), recorded in
        the registry and passed on."""
        n_steps = len(self.config.designs) + 1

        def inner(frac: float, msg: str) -> None:
            self.registry.update(self.run_id, progress=(i + frac) / n_steps, message=msg)
            if self.progress is not None:
                self.progress((i + frac) / n_steps, msg)

        return inner

    def on_epoch(self, rec: dict[str, Any]) -> None:
        """Log one epoch of a fold in the registry (curves.tsv is read from there)."""
        self.registry.log_epoch(
            self.run_id,
            fold=f"{rec['design']}/{rec['model']}/{rec['fold']}",
            epoch=rec["epoch"],
            train_loss=rec["train_loss"],
            train_acc=rec["train_acc"],
            val_loss=rec["val_loss"],
            val_acc=rec["val_acc"],
            val_balanced_acc=rec.get("val_balanced_acc"),
            seconds=rec["seconds"],
        )

    def train_design(self, i: int, design: str) -> DesignResult:
        """Cross-validate the CNN of ``design``, keep its final models and evaluate it."""
        config, out = self.config, self.out
        res = run_design(
            self.cache,
            design,
            config.train,
            subjects=self.subjects,
            split=config.split,
            n_folds=config.n_folds,
            classes=self.classes,
            refit=config.refits(design),
            checkpoint_dir=out / "models" / design,
            # training takes the design's share up to 95 %: the baseline (97 %) and the
            # saliency maps (99 %) come after it, so the bar never steps back
            progress=part(self.report(i), 0.0, 0.95),
            on_epoch=self.on_epoch,
            work_dir=out / "work" / design,
            folds=config.folds,
        )
        for name, path in res.checkpoints.items():
            self.registry.add_artifact(self.run_id, f"{design}/{name}", path, "checkpoint")
        self.predictions.append(res.predictions)
        self.tables[(design, "cnn")] = res.predictions
        self.extras["train_volumes_per_s"][design] = round(res.train_volumes_per_s, 1)
        self.extras["peak_gpu_memory_gib"][design] = res.peak_gpu_memory_gib
        ev = _evaluate(res.predictions, res, config, "cnn")
        self.metrics[design] = {"cnn": ev, "plans": res.plans}
        self.extras["tuning"][design] = {"cnn": _fold_settings(res.tuning, config.train.epochs)}
        self.headline.append({"model": "cnn", **headline_row(design, ev)})
        return res

    def add_baseline(self, i: int, design: str, res: DesignResult) -> None:
        """Fit and evaluate the linear decoder on the folds of ``design``."""
        config = self.config
        self.report(i)(0.97, "linear baseline on the same folds")
        meta = select(self.cache, subjects=self.subjects, classes=self.classes)
        fitted = fit_linear(
            self.cache,
            meta,
            design,
            classes=self.classes,
            split=config.split,
            n_folds=config.n_folds,
            seed=config.train.seed,
            folds=config.folds,
            C=config.linear_C,
        )
        base = fitted.predictions
        self.baselines.append(base)
        self.tables[(design, "linear")] = base
        self.extras["tuning"][design]["linear"] = _linear_settings(fitted)
        bev = _evaluate(base, res, config, "linear")
        self.metrics[design]["linear"] = bev
        self.headline.append({"model": "linear", **headline_row(design, bev)})

    def add_saliency(self, i: int, design: str, res: DesignResult) -> None:
        """The saliency maps of the design's final models, and their checks."""
        config = self.config
        self.report(i)(0.99, "saliency maps")
        maps = design_saliency(
            self.cache,
            res,
            self.out / "saliency" / design,
            self.classes,
            config.train.device,
            run_id=self.run_id,
            method=config.saliency_method,
            max_per_class=config.saliency_volumes,
            linear_C=_pattern_C(config.linear_C, self.extras["tuning"][design].get("linear")),
            seed=config.train.seed,
            with_patterns=config.baseline,
        )
        self.extras["saliency"][design] = maps
        self.extras["saliency_checks"][design] = {
            model: {emotion: entry["checks"] for emotion, entry in per_model.items()}
            for model, per_model in maps.items()
        }

    def add_embeddings(self) -> None:
        """embeddings.tsv from the first kept model (cross-subject, else single-subject, else
        LOSO), if the study kept one."""
        self.report(len(self.config.designs))(0.0, "embeddings")
        out = self.out
        emb_ckpt = next(
            (
                p
                for d in ("cross-subject", "single-subject", "loso")
                for n, p in _checkpoints(out, d)
            ),
            None,
        )
        if emb_ckpt is not None:
            table, quality = _embeddings(
                self.cache, emb_ckpt, self.classes, self.config.train.device
            )
            atomic_write_text(out / "embeddings.tsv", table.to_csv(sep="\t", index=False))
            self.extras["embeddings"] = {"model": str(emb_ckpt.relative_to(out)), **quality}

    def write_tables(self) -> None:
        """predictions.tsv, baseline.tsv, curves.tsv and metrics.json."""
        out = self.out
        all_pred = pd.concat(self.predictions, ignore_index=True)
        atomic_write_text(out / "predictions.tsv", all_pred.to_csv(sep="\t", index=False))
        self.registry.add_artifact(
            self.run_id, "predictions", out / "predictions.tsv", "predictions"
        )
        self.extras["tables"] = {"predictions.tsv": table_rows(all_pred)}
        if self.baselines:
            all_base = pd.concat(self.baselines, ignore_index=True)
            atomic_write_text(out / "baseline.tsv", all_base.to_csv(sep="\t", index=False))
            self.extras["tables"]["baseline.tsv"] = table_rows(all_base)
        curves = self.registry.curves(self.run_id)
        atomic_write_text(out / "curves.tsv", curves.to_csv(sep="\t", index=False))
        atomic_write_json(out / "metrics.json", self.metrics)

    def write_study(self) -> dict[str, Any]:
        """The verdicts of the primary analysis and study.json; returns what was written."""
        config, cache = self.config, self.cache
        primary = config.primary_analysis()
        self.report(len(config.designs))(0.5, "verdicts: what each person's test could detect")
        verdicts = study_verdicts(
            self.tables, self.metrics, self.classes, primary, alpha=config.alpha, focus=config.focus
        )
        study = {
            "schema_version": STUDY_SCHEMA_VERSION,  # see emocore.runs.schema
            "run_id": self.run_id,
            "emocore_version": __version__,
            "cache": {
                "path": str(cache.path),
                "key": cache.key,
                "grid": list(cache.grid_shape),
                "options": cache.manifest["options"],
            },
            "config": config.to_dict(),
            "classes": self.classes,
            "subjects": self.subjects,
            "results": self.headline,
            "alpha": config.alpha,
            "primary": primary.to_dict(),
            "verdicts": verdicts,
            "atypical": atypical_entries(self.metrics),
            "stability": stability_entries(self.metrics),
            "seconds": round(time.perf_counter() - self.t0, 1),
            **self.extras,
        }
        atomic_write_json(self.out / "study.json", study)
        return study

    def finish(self, study: dict[str, Any]) -> None:
        """Drop the fold checkpoints of --resume and mark the run completed."""
        shutil.rmtree(
            self.out / "work", ignore_errors=True
        )  # fold checkpoints of --resume, no longer needed
        self.report(len(self.config.designs))(1.0, "done")
        self.registry.update(
            self.run_id,
            metrics={"results": self.headline, "seconds": study["seconds"]},
            progress=1.0,
            message="done",
        )
        self.registry.set_status(self.run_id, "completed")


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
