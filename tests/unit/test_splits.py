from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emocore.constants import RUN_N_VOLUMES, RUN_STARTS_S
from emocore.data.splits import make_splits
from emocore.errors import ConfigError


def _meta(subjects=("01", "02")) -> pd.DataFrame:
    rows = []
    for s in subjects:
        for run, (start, n) in enumerate(zip(RUN_STARTS_S, RUN_N_VOLUMES, strict=True), start=1):
            for v in range(0, n, 5):  # every 5th volume keeps it small
                rows.append({"subject": s, "run": run, "volume": v, "movie_time": start + 2.0 * v})
    return pd.DataFrame(rows)


def test_leave_one_run_out_tests_every_run_once_and_shares_no_stimulus():
    meta = _meta()
    plan = make_splits(meta, "leave-one-run-out")
    assert not plan.leaky and len(plan.folds) == 8
    tested = np.concatenate([f.test for f in plan.folds])
    assert sorted(tested) == list(range(len(meta)))
    for fold in plan.folds:
        test, train = meta.iloc[fold.test], meta.iloc[fold.train]
        assert test.run.nunique() == 1 and test.run.iloc[0] not in set(train.run)
        lo, hi = test.movie_time.min(), test.movie_time.max()
        assert not ((train.movie_time >= lo) & (train.movie_time <= hi)).any()
    assert plan.n_trimmed > 0  # the 16-s overlaps were dropped from training


def test_run_kfold_groups_runs_interleaved():
    plan = make_splits(_meta(), "leave-one-run-out", n_folds=4)
    assert plan.split == "run-wise 4-fold"
    assert [f.name for f in plan.folds] == ["runs 1+5", "runs 2+6", "runs 3+7", "runs 4+8"]


def test_leave_one_subject_out():
    meta = _meta(("01", "02", "03"))
    plan = make_splits(meta, "loso")
    assert plan.split == "leave-one-subject-out" and len(plan.folds) == 3
    for fold in plan.folds:
        held = fold.name.removeprefix("sub-")
        assert set(meta.iloc[fold.test].subject) == {held}
        assert held not in set(meta.iloc[fold.train].subject)


def test_random_split_is_flagged_leaky_and_deterministic():
    meta = _meta()
    a, b = make_splits(meta, "random", seed=3), make_splits(meta, "random", seed=3)
    assert a.leaky and a.describe()["leaky"] is True
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a.folds, b.folds, strict=True))


def test_bad_requests_are_explained():
    meta = _meta()
    with pytest.raises(ConfigError, match="did you mean 'random'"):
        make_splits(meta, "randm")
    with pytest.raises(ConfigError, match="at least 2 subjects"):
        make_splits(_meta(("01",)), "leave-one-subject-out")
    with pytest.raises(ConfigError, match="at least 2 runs"):
        make_splits(meta[meta.run == 1], "leave-one-run-out")
    with pytest.raises(ConfigError, match="no labelled volumes"):
        make_splits(meta.iloc[:0], "leave-one-run-out")
    with pytest.raises(ConfigError, match="n_folds must be between 2 and the number of runs"):
        make_splits(meta, "leave-one-run-out", n_folds=9)
