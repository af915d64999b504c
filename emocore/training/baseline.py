"""A linear decoder on exactly the CNN's folds, to show what the CNN adds (or does not).

Logistic regression on the masked, per-fold standardised voxels (scikit-learn), with the same
split plans, classes and prediction table as :mod:`emocore.training.designs`. Its regularisation ``C`` is
either fixed (the poster-style setting, ``C = 0.01``, named ``"fixed"``) or chosen per outer fold
by nested cross-validation (``C="auto"``): a grid search on inner folds built from that outer
fold's training rows only, grouped like the outer split (:mod:`emocore.training.tuning`), scored by
balanced accuracy, with the scaler fitted inside every inner fold.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emocore.data.cache import VolumeCache
from emocore.data.splits import make_splits
from emocore.errors import ConfigError
from emocore.training.designs import models_of, prediction_table
from emocore.training.tuning import INNER_FOLDS, inner_cv, inner_folds, inner_group

__all__ = [
    "C_GRID",
    "FIXED_C",
    "LinearResult",
    "fit_linear",
    "linear_baseline",
    "linear_pipeline",
    "masked_rows",
]

#: the poster-style setting, kept available as "fixed"
FIXED_C = 0.01
#: the values of C tried by nested cross-validation, strongest regularisation first
C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-4, 2, 7))


@dataclass
class LinearResult:
    """Held-out predictions of the linear baseline and the setting each outer fold used.

    ``tuning[model][fold] = {"C": value}`` for every outer fold that was fitted (model names as in
    :mod:`emocore.training.designs`: ``sub-01``, ``all``, ``loso``). ``setting`` is ``"fixed"`` or
    ``"tuned"``. With tuning, ``inner_scores[model][fold]`` maps each C of the grid to its mean
    inner balanced accuracy, and ``inner_folds[model][fold]`` names the inner folds used.
    """

    predictions: pd.DataFrame
    tuning: dict[str, dict[str, dict[str, float]]]
    setting: str
    inner_scores: dict[str, dict[str, dict[float, float]]] = field(default_factory=dict)
    inner_folds: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def masked_rows(cache: VolumeCache, rows: pd.DataFrame) -> np.ndarray:
    """The in-mask voxels of the cache's volumes named by ``rows``, (n rows, voxels) float32."""
    mask = cache.mask.reshape(-1)
    out = np.empty((len(rows), int(mask.sum())), dtype=np.float32)
    subj = rows["subject"].to_numpy()
    r = rows["row"].to_numpy()
    for s in np.unique(subj):
        where = np.flatnonzero(subj == s)
        out[where] = cache.read(str(s), r[where]).reshape(len(where), -1)[:, mask]
    return out


def linear_pipeline(C: float):
    """The linear decoder: z-scored voxels into an L2-penalised logistic regression (inverse
    penalty ``C``)."""
    # here: scikit-learn loads in 0.5 s, and only the baseline needs it
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300))


def _check_C(C: float | str) -> None:
    if isinstance(C, str):
        if C != "auto":
            raise ConfigError(f"'C' must be a positive number or 'auto'; '{C}' was provided")
    elif not C > 0:
        raise ConfigError(f"'C' must be a positive number or 'auto'; {C} was provided")


def _tuned(
    X: np.ndarray,
    y: np.ndarray,
    rows: pd.DataFrame,
    *,
    group: str,
    grid: Sequence[float],
    n_inner: int,
    seed: int,
    n_jobs: int | None = None,
):
    """A grid search over C on inner folds of (X, y), refitted on all of it with the best C.

    GridSearchCV ranks ties equal and takes the first of them, i.e. the smallest C (the grid is
    ascending), so a tie goes to the stronger regularisation.
    """
    from sklearn.model_selection import GridSearchCV  # here: as above

    folds = inner_folds(rows, group=group, n_folds=n_inner, seed=seed)
    search = GridSearchCV(
        linear_pipeline(FIXED_C),
        {"logisticregression__C": sorted(float(c) for c in grid)},
        scoring="balanced_accuracy",
        cv=inner_cv(folds),
        refit=True,
        n_jobs=n_jobs,
    )
    with warnings.catch_warnings():
        # an inner test fold may lack a class some model predicts; sklearn warns, the score stands
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        search.fit(X, y)
    scores = {
        float(c): float(m)
        for c, m in zip(
            search.cv_results_["param_logisticregression__C"],
            search.cv_results_["mean_test_score"],
            strict=True,
        )
    }
    best = float(search.best_params_["logisticregression__C"])
    return search.best_estimator_, best, scores, [f.name for f in folds]


def fit_linear(
    cache: VolumeCache,
    meta: pd.DataFrame,
    design: str,
    *,
    classes: Sequence[str],
    split: str = "leave-one-run-out",
    n_folds: int | None = None,
    folds: Sequence[str] | None = None,
    seed: int = 0,
    C: float | str = "auto",
    C_grid: Sequence[float] = C_GRID,
    inner_n_folds: int = INNER_FOLDS,
    n_jobs: int | None = None,
) -> LinearResult:
    """Held-out predictions of an L2 logistic regression for ``design`` (same folds as the CNN).

    ``C="auto"`` chooses C per outer fold from ``C_grid`` on ``inner_n_folds`` inner folds of
    that fold's training rows (grouped by run, person or at random, like the outer split; the
    outer test rows are never seen), by mean inner balanced accuracy; the pipeline (scaler and
    classifier) is then refitted on all the outer training rows. A number fits that C everywhere.
    ``n_jobs`` runs the inner fits in parallel (scikit-learn's convention; None is one process).

    Cost: tuning fits ``len(C_grid) * inner_n_folds + 1`` models per outer fold instead of one,
    and lbfgs needs more iterations at large C.
    """
    _check_C(C)
    tune = C == "auto"
    if tune and len(C_grid) == 0:
        raise ConfigError("'C_grid' is empty; give at least one value of C")
    tables = []
    tuning: dict[str, dict[str, dict[str, float]]] = {}
    scores: dict[str, dict[str, dict[float, float]]] = {}
    used_inner: dict[str, dict[str, list[str]]] = {}
    for name, rows, s in models_of(design, meta, split):
        plan = make_splits(
            rows, s, n_folds=n_folds if s != "leave-one-subject-out" else None, seed=seed
        )
        group = inner_group(plan.split)
        X = masked_rows(cache, rows)
        y = rows["y"].to_numpy()
        for fi, fold in enumerate(plan.folds):
            if folds and fold.name not in folds:
                continue
            if tune:
                model, chosen, fold_scores, inner_names = _tuned(
                    X[fold.train],
                    y[fold.train],
                    rows.iloc[fold.train],
                    group=group,
                    grid=C_grid,
                    n_inner=inner_n_folds,
                    seed=seed,
                    n_jobs=n_jobs,
                )
                scores.setdefault(name, {})[fold.name] = fold_scores
                used_inner.setdefault(name, {})[fold.name] = inner_names
            else:
                chosen = float(C)  # type: ignore[arg-type]
                model = linear_pipeline(chosen).fit(X[fold.train], y[fold.train])
            tuning.setdefault(name, {})[fold.name] = {"C": chosen}
            probs = np.zeros((len(fold.test), len(classes)), dtype=np.float32)
            probs[:, model.classes_] = model.predict_proba(X[fold.test])
            te = rows.iloc[fold.test]
            loso = s == "leave-one-subject-out"
            seen = (
                (te["subject"] != fold.name.removeprefix("sub-")).to_numpy()
                if loso
                else np.ones(len(te), bool)
            )
            tables.append(
                prediction_table(
                    te, probs, classes, fold=fi, fold_name=fold.name, seen=seen, model=name
                )
            )
    out = pd.concat(tables, ignore_index=True)
    out.insert(0, "design", design)
    out["split"] = plan.split
    return LinearResult(
        predictions=out,
        tuning=tuning,
        setting="tuned" if tune else "fixed",
        inner_scores=scores,
        inner_folds=used_inner,
    )


def linear_baseline(
    cache: VolumeCache,
    meta: pd.DataFrame,
    design: str,
    *,
    classes: Sequence[str],
    split: str = "leave-one-run-out",
    n_folds: int | None = None,
    folds: Sequence[str] | None = None,
    seed: int = 0,
    C: float | str = FIXED_C,
) -> pd.DataFrame:
    """The prediction table of :func:`fit_linear` (fixed ``C = 0.01`` unless told otherwise)."""
    return fit_linear(
        cache,
        meta,
        design,
        classes=classes,
        split=split,
        n_folds=n_folds,
        folds=folds,
        seed=seed,
        C=C,
    ).predictions
