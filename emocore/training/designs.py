"""Study designs: one model per person, one for everybody, and each person unseen (LOSO).

A design trains one model per cross-validation fold and pools the held-out predictions into one
table, so every volume is predicted by a model that never saw it (or, with the leaky ``random``
split, by one that saw its neighbours). Only the final model of each design and person is kept on
disk: a refit on all of that design's data for single-subject and cross-subject, and the model
that did not see the person for LOSO.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emocore._io import atomic_write_text, read_table
from emocore.constants import EMOTIONS
from emocore.data.cache import VolumeCache
from emocore.data.dataset import VolumeSource, select
from emocore.data.splits import Fold, SplitPlan, make_splits
from emocore.errors import ConfigError, check_choice
from emocore.models.engine import FastOptions
from emocore.progress import EpochHook, Progress
from emocore.training.train import (
    TrainConfig,
    TrainResult,
    predict_proba,
    save_checkpoint,
    train_model,
)
from emocore.training.tuning import choose_epochs, inner_group

__all__ = [
    "DESIGNS",
    "DesignResult",
    "models_of",
    "plan_design",
    "run_design",
    "prediction_table",
]

logger = logging.getLogger(__name__)

DESIGNS = ("single-subject", "cross-subject", "loso")

#: progress(fraction 0..1, message)
#: on_epoch(record) where record has design, model, fold, epoch and the curve values

META_COLUMNS = [
    "subject",
    "run",
    "volume",
    "movie_time",
    "label_time",
    "scene",
    "scene_location",
    "agreement",
]


@dataclass
class DesignResult:
    design: str
    split: str
    leaky: bool
    classes: list[str]
    predictions: pd.DataFrame
    plans: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # model name -> split description
    checkpoints: dict[str, Path] = field(default_factory=dict)  # model name -> final checkpoint
    train_volumes_per_s: float = 0.0
    peak_gpu_memory_gib: float | None = None  # largest over the design's trainings (None on CPU)
    seconds: float = 0.0
    #: per model name and fold ("final" for the refit): the epochs trained and how they were set
    #: ({"epochs": 12, "how": "inner fold"} or {"epochs": 50, "how": "fixed"})
    tuning: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' if n != 1 else ''}"


def prediction_table(
    meta: pd.DataFrame, probs: np.ndarray, classes: Sequence[str], **extra: Any
) -> pd.DataFrame:
    """The per-volume prediction table: metadata, true and predicted class, class probabilities."""
    out = meta[[c for c in META_COLUMNS if c in meta.columns]].copy()
    out["true"] = np.asarray(classes)[meta["y"].to_numpy()]
    out["pred"] = np.asarray(classes)[probs.argmax(axis=1)] if len(probs) else []
    for i, c in enumerate(classes):
        out[f"prob_{c}"] = probs[:, i] if len(probs) else []
    for k, v in extra.items():
        out[k] = v
    return out


def models_of(design: str, meta: pd.DataFrame, split: str) -> list[tuple[str, pd.DataFrame, str]]:
    """(model name, rows it is cross-validated on, split) for each model of a design."""
    if design == "single-subject":
        return [
            (f"sub-{s}", meta[meta["subject"] == s].reset_index(drop=True), split)
            for s in sorted(meta["subject"].unique())
        ]
    if design == "cross-subject":
        return [("all", meta, split)]
    if design == "loso":
        return [("loso", meta, "random" if split == "random" else "leave-one-subject-out")]
    check_choice("design", design, DESIGNS)
    raise AssertionError("unreachable")


def plan_design(
    cache: VolumeCache,
    design: str,
    *,
    subjects: Sequence[str] | None = None,
    split: str = "leave-one-run-out",
    n_folds: int | None = None,
    classes: Sequence[str] = EMOTIONS,
    seed: int = 0,
    folds: Sequence[str] | None = None,
) -> list[tuple[str, pd.DataFrame, SplitPlan]]:
    """The models of ``design`` and the folds of each, as (name, rows, plan); nothing is trained.

    Raises ConfigError for a selection or split the data cannot support, so callers can check a
    whole study before they record a run for it.
    """
    classes = list(classes)
    meta = select(cache, subjects=subjects, classes=classes)
    if meta.empty:
        raise ConfigError(
            f"no volumes labelled {classes} for subjects {subjects or cache.subjects}; check the label options"
        )
    if design == "loso" and meta["subject"].nunique() < 2:
        raise ConfigError("the loso design needs at least 2 subjects; select more subjects")
    plans = [
        (
            name,
            rows,
            make_splits(
                rows,
                s,
                n_folds=n_folds if s != "leave-one-subject-out" else None,
                seed=seed,
            ),
        )
        for name, rows, s in models_of(design, meta, split)
    ]
    if folds:
        names = [f.name for _, _, p in plans for f in p.folds]
        unknown = sorted(set(folds) - set(names))
        if unknown:
            raise ConfigError(
                f"no fold named {', '.join(unknown)} in the {design} design; its folds are "
                f"{', '.join(dict.fromkeys(names))}"
            )
    return plans


@dataclass
class _DesignRun:
    """One call of :func:`run_design` while it trains: what it was asked for, how many trainings
    it has done (for the progress bar), and what the finished folds and models gave so far."""

    cache: VolumeCache
    design: str
    train_config: TrainConfig
    classes: list[str]
    loso: bool  # LOSO proper (not the leaky random split): each fold's model is a final model
    jobs: int  # trainings in all: the folds run, plus the refits
    progress: Progress | None
    on_epoch: EpochHook | None
    ckpt_dir: Path | None
    work: Path | None
    done: int = 0
    tables: list[pd.DataFrame] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    total_seconds: float = 0.0
    result_plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkpoints: dict[str, Path] = field(default_factory=dict)
    tuning: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def inner(self) -> bool:
        """Whether each outer fold chooses its epoch count on an inner fold."""
        return self.train_config.epoch_selection == "inner"

    def step(self, message: str) -> Progress:
        """Progress of the current training, as a share of the whole design."""

        def inner(frac: float, msg: str) -> None:
            if self.progress is not None:
                self.progress((self.done + frac) / self.jobs, f"{self.design} {message}: {msg}")

        return inner

    def hook(self, model_name: str, fold: str) -> Callable[[dict[str, Any]], None]:
        """The epoch hook of one training: its records say which design, model and fold."""

        def inner(record: dict[str, Any]) -> None:
            if self.on_epoch is not None:
                self.on_epoch({"design": self.design, "model": model_name, "fold": fold, **record})

        return inner

    def final_checkpoint(
        self, path: Path, res: Any, trained_on: list[str], config: TrainConfig, **info: Any
    ) -> Path:
        """Save a model the design keeps, with what it was trained on."""
        extra = {
            "classes": self.classes,
            "design": self.design,
            "trained_on": trained_on,
            "cache_key": self.cache.key,
            **info,
        }
        return save_checkpoint(
            path,
            res.model,
            config=config,
            classes_n=len(self.classes),
            epoch=config.epochs,
            history=res.history,
            extra=extra,
        )

    def fold_config(
        self, label: str, tr: pd.DataFrame, plan: SplitPlan, choice_file: Path | None
    ) -> tuple[TrainConfig, dict[str, Any]]:
        """The training config of one outer fold and how its epochs were set: the fixed count,
        or the count an inner fold of the outer training rows chose (kept in ``choice_file``
        so a resumed run trains the same count without choosing again)."""
        train_config = self.train_config
        if not self.inner:
            return train_config, {"epochs": train_config.epochs, "how": "fixed"}
        if choice_file is not None and choice_file.exists():
            chosen = json.loads(choice_file.read_text(encoding="utf-8"))
        else:
            self.step(label)(
                0.0, f"choosing the epochs (at most {train_config.epochs}) on an inner fold"
            )
            choice = choose_epochs(
                self.cache,
                tr,
                train_config,
                group=inner_group(plan.split),
                n_classes=len(self.classes),
            )
            chosen = {"epochs": choice.epochs, "how": "inner fold", **choice.to_dict()}
            if choice_file is not None:
                atomic_write_text(choice_file, json.dumps(chosen))
        return replace(train_config, epochs=int(chosen["epochs"])), chosen

    def run_fold(self, name: str, rows: pd.DataFrame, plan: SplitPlan, fi: int, fold: Fold) -> None:
        """Cross-validate one fold of model ``name``: train on its training rows, predict its
        held-out rows (a fold a resumed run already finished is read back instead)."""
        work, ckpt_dir, classes = self.work, self.ckpt_dir, self.classes
        label = f"{name} {fold.name} (fold {fi + 1}/{len(plan.folds)})"
        tr, te = rows.iloc[fold.train], rows.iloc[fold.test]
        done_file = work / f"{name}__{fi}.tsv" if work is not None else None
        final = ckpt_dir / f"{fold.name}.pt" if self.loso and ckpt_dir is not None else None
        choice_file = work / f"{name}__{fi}.epochs.json" if work is not None else None
        if done_file is not None and done_file.exists() and (final is None or final.exists()):
            self.tables.append(read_table(done_file))
            self.tuning[name][fold.name] = self.fold_config(label, tr, plan, choice_file)[1]
            self.done += 1
            return
        fold_ckpt = work / f"{name}__{fi}.pt" if work is not None else None
        config, self.tuning[name][fold.name] = self.fold_config(label, tr, plan, choice_file)
        self.step(label)(0.0, f"loading its volumes, then {_epochs(config.epochs)}")
        train_src, test_src = VolumeSource(self.cache, tr), VolumeSource(self.cache, te)
        res = train_model(
            train_src,
            test_src,
            config,
            n_classes=len(classes),
            progress=self.step(label),
            on_epoch=self.hook(name, fold.name),
            checkpoint=fold_ckpt,
            resume=fold_ckpt is not None,
        )
        self.count(res)
        # held-out sets are small: compiling for them costs more than it saves, unless asked
        probs = predict_proba(
            res.model,
            test_src,
            device=self.train_config.device,
            amp=self.train_config.amp,
            options=FastOptions(compile="on" if self.train_config.compile == "on" else "off"),
        )
        held = fold.name.removeprefix("sub-")
        seen = (te["subject"] != held).to_numpy() if self.loso else np.ones(len(te), bool)
        table = prediction_table(
            te, probs, classes, fold=fi, fold_name=fold.name, seen=seen, model=name
        )
        self.tables.append(table)
        if final is not None:
            self.checkpoints[fold.name] = self.final_checkpoint(
                final, res, sorted(tr["subject"].unique().tolist()), config, held_out=fold.name
            )
        if done_file is not None:
            atomic_write_text(done_file, table.to_csv(sep="\t", index=False))
            fold_ckpt.unlink(missing_ok=True)  # type: ignore[union-attr]
        self.done += 1

    def count(self, res: TrainResult) -> None:
        """Add a fold's training speed, peak GPU memory and time to the design's."""
        self.speeds.append(res.volumes_per_s)
        if res.peak_gpu_memory_gib is not None:
            self.peaks.append(res.peak_gpu_memory_gib)
        self.total_seconds += res.seconds

    def refit(self, name: str, rows: pd.DataFrame) -> None:
        """Train model ``name``'s final model on all of its rows and keep it."""
        config = self.train_config
        if self.inner:  # the median of the folds' choices: no fold is left to choose on
            chosen = [t["epochs"] for t in self.tuning[name].values()]
            config = replace(config, epochs=max(1, round(float(np.median(chosen)))))
        self.tuning[name]["final"] = {
            "epochs": config.epochs,
            "how": "median of the folds' choices" if self.inner else "fixed",
        }
        self.step(f"{name} final model")(0.0, f"loading its volumes, then {_epochs(config.epochs)}")
        res = train_model(
            VolumeSource(self.cache, rows),
            None,
            config,
            n_classes=len(self.classes),
            progress=self.step(f"{name} final model"),
            on_epoch=self.hook(name, "final"),
        )
        if self.ckpt_dir is not None:
            self.checkpoints[name] = self.final_checkpoint(
                self.ckpt_dir / f"{name}.pt",
                res,
                sorted(rows["subject"].unique().tolist()),
                config,
            )
        self.done += 1

    def result(self, plans: list[tuple[str, pd.DataFrame, SplitPlan]]) -> DesignResult:
        """The design's pooled held-out predictions and what its trainings recorded."""
        predictions = pd.concat(self.tables, ignore_index=True)
        predictions.insert(0, "design", self.design)
        leaky = any(p.leaky for _, _, p in plans)
        split_name = plans[0][2].split
        predictions["split"] = split_name
        return DesignResult(
            design=self.design,
            split=split_name,
            leaky=leaky,
            classes=self.classes,
            predictions=predictions,
            plans=self.result_plans,
            checkpoints=self.checkpoints,
            train_volumes_per_s=float(np.mean(self.speeds)) if self.speeds else 0.0,
            peak_gpu_memory_gib=max(self.peaks) if self.peaks else None,
            seconds=self.total_seconds,
            tuning=self.tuning,
        )


def run_design(
    cache: VolumeCache,
    design: str,
    train_config: TrainConfig,
    *,
    subjects: Sequence[str] | None = None,
    split: str = "leave-one-run-out",
    n_folds: int | None = None,
    classes: Sequence[str] = EMOTIONS,
    refit: bool = True,
    checkpoint_dir: str | Path | None = None,
    progress: Progress | None = None,
    on_epoch: EpochHook | None = None,
    work_dir: str | Path | None = None,
    folds: Sequence[str] | None = None,
) -> DesignResult:
    """Cross-validate ``design`` on the cache and keep its final model(s) in ``checkpoint_dir``.

    With ``work_dir``, every fold checkpoints each epoch and stores its predictions when done, so
    calling again with the same arguments (``--resume``) skips finished folds and continues the
    interrupted one from its last epoch. Fold checkpoints are deleted once the fold is done.

    ``folds`` runs only the folds of those names (``sub-03`` for a LOSO fold): one fold per job,
    e.g. a Slurm array, merged afterwards by ``emocore evaluate --run A --run B ...``. No final
    model on all the data is fitted then.
    """
    classes = list(classes)
    plans = plan_design(
        cache,
        design,
        subjects=subjects,
        split=split,
        n_folds=n_folds,
        classes=classes,
        seed=train_config.seed,
        folds=folds,
    )
    loso = design == "loso" and split != "random"
    if folds:
        refit = False
    run = _DesignRun(
        cache=cache,
        design=design,
        train_config=train_config,
        classes=classes,
        loso=loso,
        jobs=sum(
            sum(1 for f in p.folds if not folds or f.name in folds) + (refit and not loso)
            for _, _, p in plans
        ),
        progress=progress,
        on_epoch=on_epoch,
        ckpt_dir=Path(checkpoint_dir) if checkpoint_dir is not None else None,
        work=Path(work_dir) if work_dir is not None else None,
    )
    for name, rows, plan in plans:
        run.result_plans[name] = plan.describe()
        run.tuning[name] = {}
        for fi, fold in enumerate(plan.folds):
            if folds and fold.name not in folds:
                continue
            run.run_fold(name, rows, plan, fi, fold)
        if refit and not loso:
            run.refit(name, rows)
    return run.result(plans)
