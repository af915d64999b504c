"""Nested cross-validation: choose a setting on inner folds of one outer fold's training data.

An outer fold's test volumes are never looked at. Its training rows are split again, grouped the
way the outer split groups them, and a setting is scored on those inner folds only:

* ``group="run"`` (the outer split is leave-one-run-out or run-wise k-fold): inner folds hold out
  training runs (interleaved, as :func:`emocore.data.splits.make_splits` does), and inner training
  volumes acquired during an inner test run's stretch of the movie are dropped, exactly as in the
  outer split. In the cross-subject design a run is held out for everybody at once.
* ``group="subject"`` (leave-one-subject-out): inner folds hold out training people
  (scikit-learn's :class:`~sklearn.model_selection.GroupKFold` on the subject column).
* ``group="random"`` (the poster's leaky split): inner folds are random volume folds, leaky too.

The linear baseline tunes ``C`` on all inner folds (:mod:`emocore.training.baseline`); the CNN chooses its
epoch count on one inner fold (:func:`choose_epochs`), because each inner fit is a full training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from emocore.data.cache import VolumeCache
from emocore.data.dataset import VolumeSource
from emocore.data.splits import Fold, check_split, make_splits
from emocore.errors import ConfigError, check_choice
from emocore.progress import Progress
from emocore.training.train import TrainConfig, train_model

__all__ = [
    "INNER_GROUPS",
    "INNER_FOLDS",
    "EpochChoice",
    "inner_group",
    "inner_folds",
    "inner_cv",
    "best_epoch",
    "choose_epochs",
]

INNER_GROUPS = ("run", "subject", "random")
#: inner folds per outer fold, unless asked otherwise (fewer when there are fewer groups)
INNER_FOLDS = 3


def inner_group(split: str) -> str:
    """The inner grouping that matches an outer split: ``run``, ``subject`` or ``random``.

    Accepts a split option (``leave-one-run-out``, ``loso``, ...) or the name a plan carries
    (``run-wise 4-fold``).
    """
    if split.startswith("run-wise"):
        return "run"
    canonical = check_split(split)
    return {
        "leave-one-run-out": "run",
        "leave-one-subject-out": "subject",
        "random": "random",
    }[canonical]


def _check_group(group: str) -> None:
    check_choice("group", group, INNER_GROUPS)


def inner_folds(
    rows: pd.DataFrame, *, group: str, n_folds: int = INNER_FOLDS, seed: int = 0
) -> tuple[Fold, ...]:
    """Inner folds over ``rows``, one outer fold's training rows; indices are positions in ``rows``.

    ``n_folds`` is capped at the number of groups (runs or people) present; at least two groups
    are needed, otherwise ConfigError says so.
    """
    _check_group(group)
    if n_folds < 2:
        raise ConfigError(f"n_folds for inner folds must be at least 2; {n_folds} was given")
    rows = rows.reset_index(drop=True)
    if group == "run":
        n_runs = rows["run"].nunique()
        if n_runs < 2:
            raise ConfigError(
                f"inner run folds need at least 2 training runs; this outer fold trains on "
                f"{n_runs}. Use more runs (fewer outer folds) or a fixed setting"
            )
        return make_splits(rows, "leave-one-run-out", n_folds=min(n_folds, n_runs)).folds
    if group == "subject":
        from sklearn.model_selection import GroupKFold  # here: only inner folds by group need it

        subjects = rows["subject"].astype(str).to_numpy()
        n_subjects = len(np.unique(subjects))
        if n_subjects < 2:
            raise ConfigError(
                "inner subject folds need at least 2 training people; this outer fold trains on "
                f"{n_subjects}. Select more subjects or use a fixed setting"
            )
        splitter = GroupKFold(n_splits=min(n_folds, n_subjects))
        folds = []
        for train, test in splitter.split(np.zeros(len(rows)), groups=subjects):
            name = "+".join(f"sub-{s}" for s in sorted(np.unique(subjects[test])))
            folds.append(Fold(name, np.sort(train), np.sort(test)))
        # GroupKFold balances fold sizes in its own order; list the folds by their people
        return tuple(sorted(folds, key=lambda f: sorted(np.unique(subjects[f.test]))))
    return make_splits(rows, "random", n_folds=min(n_folds, len(rows)), seed=seed).folds


def inner_cv(folds: Sequence[Fold]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds as scikit-learn's ``cv`` argument takes them: (train, test) index pairs."""
    return [(f.train, f.test) for f in folds]


@dataclass(frozen=True)
class EpochChoice:
    """The epoch count chosen on an inner fold, and the evidence.

    ``curve[i]`` is the inner-validation balanced accuracy after epoch ``i + 1``; ``epochs`` is
    the first epoch at which the curve reaches its maximum.
    """

    epochs: int
    curve: list[float]
    inner_fold: str
    group: str

    def to_dict(self) -> dict:
        return {
            "epochs": self.epochs,
            "curve": [round(v, 6) for v in self.curve],
            "inner_fold": self.inner_fold,
            "group": self.group,
        }


def best_epoch(curve: Sequence[float]) -> int:
    """1-based epoch of the curve's maximum; ties go to the fewest epochs (the earliest maximum)."""
    if len(curve) == 0:
        raise ConfigError("no inner-validation scores to choose an epoch count from")
    return int(np.argmax(np.asarray(curve, dtype=float))) + 1


def choose_epochs(
    cache: VolumeCache,
    train_rows: pd.DataFrame,
    config: TrainConfig,
    *,
    group: str,
    n_classes: int,
    max_epochs: int | None = None,
    n_folds: int = INNER_FOLDS,
    progress: Progress | None = None,
) -> EpochChoice:
    """Choose an epoch count for one outer fold by early stopping on an inner fold.

    ``train_rows`` are the outer fold's training rows (the outer test rows must not be in them).
    They are split into ``n_folds`` inner folds grouped by ``group`` (see :func:`inner_folds`);
    the first inner fold is held out, a fresh network is trained on the rest for ``max_epochs``
    (``config.epochs`` when None) with ``config``'s other settings and seed, and its balanced
    accuracy on the held-out part is recorded after every epoch. The chosen count is the epoch
    with the highest inner balanced accuracy; on a tie the fewest epochs win. The caller then
    trains on all of ``train_rows`` for that many epochs.
    """
    rows = train_rows.reset_index(drop=True)
    fold = inner_folds(rows, group=group, n_folds=n_folds, seed=config.seed)[0]
    cfg = config if max_epochs is None else replace(config, epochs=int(max_epochs))
    res = train_model(
        VolumeSource(cache, rows.iloc[fold.train]),
        VolumeSource(cache, rows.iloc[fold.test]),
        cfg,
        n_classes=n_classes,
        progress=progress,
    )
    curve = [float(h["val_balanced_acc"]) for h in res.history]
    return EpochChoice(best_epoch(curve), curve, fold.name, group)
