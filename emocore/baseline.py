"""A linear decoder on exactly the CNN's folds, to show what the CNN adds (or does not).

Logistic regression on the masked, per-fold standardised voxels (scikit-learn), with the same
split plans, classes and prediction table as :mod:`emocore.study`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from emocore.data.cache import VolumeCache
from emocore.data.splits import make_splits
from emocore.study import _models_of, prediction_table

__all__ = ["linear_baseline"]


def _masked(cache: VolumeCache, rows: pd.DataFrame) -> np.ndarray:
    mask = cache.mask.reshape(-1)
    out = np.empty((len(rows), int(mask.sum())), dtype=np.float32)
    subj = rows["subject"].to_numpy()
    r = rows["row"].to_numpy()
    for s in np.unique(subj):
        where = np.flatnonzero(subj == s)
        out[where] = cache.read(str(s), r[where]).reshape(len(where), -1)[:, mask]
    return out


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
    C: float = 0.01,
) -> pd.DataFrame:
    """Held-out predictions of an L2 logistic regression for ``design`` (same folds as the CNN)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tables = []
    for name, rows, s in _models_of(design, meta, split):
        plan = make_splits(
            rows, s, n_folds=n_folds if s != "leave-one-subject-out" else None, seed=seed
        )
        X = _masked(cache, rows)
        y = rows["y"].to_numpy()
        for fi, fold in enumerate(plan.folds):
            if folds and fold.name not in folds:
                continue
            scaler = StandardScaler().fit(X[fold.train])
            clf = LogisticRegression(C=C, max_iter=300)
            clf.fit(scaler.transform(X[fold.train]), y[fold.train])
            probs = np.zeros((len(fold.test), len(classes)), dtype=np.float32)
            probs[:, clf.classes_] = clf.predict_proba(scaler.transform(X[fold.test]))
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
    return out
