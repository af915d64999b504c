"""Train/test splits that keep neighbouring volumes and shared stimuli on one side.

Volumes are autocorrelated and the 8 runs repeat each other's last 16 s, so emocore never splits
single volumes at random except to reproduce the poster (``random``, flagged ``leaky``):

* ``leave-one-run-out``: each fold tests one run (or, with ``n_folds < 8``, an interleaved group
  of runs: with 4 folds, runs {1, 5}, {2, 6}, ...; the plan is then named ``run-wise 4-fold``). Training volumes acquired during a test run's
  span of the movie (the 8-volume overlaps) are dropped, so no stimulus is on both sides.
* ``leave-one-subject-out``: each fold tests one person on a model trained on the others. The movie
  is the same for everybody, so stimulus-locked signal unrelated to emotion is shared between
  training and test; a model can profit from recognising the scene. On the synthetic cohort there
  is no such signal; on real data read LOSO numbers with that in mind.
* ``random``: volumes shuffled into k folds. Leaky: kept to show how much it inflates accuracy.

Folds are index arrays into the metadata table given, which must have the columns
``subject``, ``run`` and ``movie_time``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emocore.constants import TR_S
from emocore.errors import ConfigError, check_choice

__all__ = ["SPLITS", "Fold", "SplitPlan", "check_split", "make_splits"]

SPLITS = ("leave-one-run-out", "leave-one-subject-out", "random")


@dataclass(frozen=True)
class Fold:
    name: str
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class SplitPlan:
    split: str
    leaky: bool
    folds: tuple[Fold, ...]
    n_trimmed: int = 0  # training volumes dropped because their stimulus is in a test run

    def describe(self) -> dict:
        return {
            "split": self.split,
            "leaky": self.leaky,
            "n_folds": len(self.folds),
            "folds": [f.name for f in self.folds],
            "n_trimmed": self.n_trimmed,
        }


def check_split(split: str) -> str:
    """The canonical name of ``split`` (aliases loro and loso allowed); ConfigError otherwise."""
    if split in SPLITS:
        return split
    aliases = {
        "loro": "leave-one-run-out",
        "run": "leave-one-run-out",
        "loso": "leave-one-subject-out",
        "subject": "leave-one-subject-out",
    }
    if split in aliases:
        return aliases[split]
    check_choice("split", split, SPLITS + tuple(aliases))
    raise AssertionError("unreachable")


def _run_folds(meta: pd.DataFrame, n_folds: int | None) -> tuple[list[Fold], int]:
    runs = np.sort(meta["run"].unique())
    k = len(runs) if n_folds is None else int(n_folds)
    if not 2 <= k <= len(runs):
        raise ConfigError(
            f"n_folds must be between 2 and the number of runs ({len(runs)}); {n_folds} was given"
        )
    run_arr = meta["run"].to_numpy()
    times = meta["movie_time"].to_numpy(dtype=float)
    folds, trimmed = [], 0
    for f in range(k):
        test_runs = runs[f::k]
        is_test = np.isin(run_arr, test_runs)
        shared = np.zeros(len(meta), bool)
        for r in test_runs:
            t = times[run_arr == r]
            if len(t):  # every volume acquired while run r's part of the movie played
                shared |= (times >= t.min() - TR_S / 2) & (times <= t.max() + TR_S / 2)
        train_mask = ~is_test & ~shared
        trimmed += int((~is_test & shared).sum())
        name = "runs " + "+".join(str(int(r)) for r in test_runs)
        folds.append(Fold(name, np.flatnonzero(train_mask), np.flatnonzero(is_test)))
    return folds, trimmed


def make_splits(
    meta: pd.DataFrame,
    split: str = "leave-one-run-out",
    *,
    n_folds: int | None = None,
    seed: int = 0,
) -> SplitPlan:
    """Folds for ``meta`` (one row per volume) under ``split``; see the module docstring."""
    split = check_split(split)
    if len(meta) == 0:
        raise ConfigError(
            "no labelled volumes to split; check the subject, run and class selection"
        )
    if split == "leave-one-run-out":
        if meta["run"].nunique() < 2:
            raise ConfigError(
                "leave-one-run-out needs volumes from at least 2 runs; select more runs"
            )
        folds, trimmed = _run_folds(meta, n_folds)
        # Name what was done: with fewer folds than runs, several runs are held out at a time.
        name = split if len(folds) == meta["run"].nunique() else f"run-wise {len(folds)}-fold"
        plan = SplitPlan(name, False, tuple(folds), trimmed)
    elif split == "leave-one-subject-out":
        subjects = sorted(meta["subject"].unique())
        if len(subjects) < 2:
            raise ConfigError(
                "leave-one-subject-out needs at least 2 subjects; select more subjects"
            )
        subj = meta["subject"].to_numpy()
        folds = [
            Fold(f"sub-{s}", np.flatnonzero(subj != s), np.flatnonzero(subj == s)) for s in subjects
        ]
        plan = SplitPlan(split, False, tuple(folds))
    else:
        k = 5 if n_folds is None else int(n_folds)
        if not 2 <= k <= len(meta):
            raise ConfigError(
                f"n_folds must be between 2 and the number of volumes; {n_folds} was given"
            )
        order = np.random.default_rng(seed).permutation(len(meta))
        parts = np.array_split(order, k)
        folds = [
            Fold(
                f"random {i + 1}/{k}",
                np.sort(np.concatenate(parts[:i] + parts[i + 1 :])),
                np.sort(p),
            )
            for i, p in enumerate(parts)
        ]
        plan = SplitPlan(split, True, tuple(folds))
    for fold in plan.folds:
        if len(fold.train) == 0 or len(fold.test) == 0:
            raise ConfigError(
                f"fold '{fold.name}' of {split} has no training or no test volumes; select more data"
            )
    return plan
