"""Nested cross-validation: inner folds stay inside the outer training fold and keep its grouping;
the linear baseline's C and the CNN's epoch count are chosen on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import emocore.training.baseline as baseline
import emocore.training.tuning as tuning
from emocore.data.splits import make_splits
from emocore.errors import ConfigError
from emocore.training.baseline import FIXED_C, fit_linear, linear_baseline
from emocore.training.train import TrainConfig
from emocore.training.tuning import best_epoch, choose_epochs, inner_folds, inner_group
from tests.conftest import ArrayCache, planted_volumes

SMALL_GRID = (1e-3, 1e-1, 10.0)


class MaskedCache(ArrayCache):
    """ArrayCache with the brain mask the linear baseline reads (everything inside)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        super().__init__(arrays)
        self.mask = np.ones(self.grid_shape, bool)


def cohort(
    kind: str,
    *,
    subjects=("01",),
    n_runs: int = 4,
    per_run: int = 40,
    shape=(3, 4, 5),
    seed: int = 0,
):
    """Two classes in every run of every person, volumes of ``kind``:

    * ``correlated``: a strong noise component shared by all voxels, the signal on five voxels;
      only a contrast between voxels cancels the shared noise, which heavy regularisation
      (a direction close to the class-mean difference) cannot find: large C is right.
    * ``diffuse``: independent noise and a weak shift of every voxel, with about as many voxels
      as training volumes: little regularisation overfits, small C is right.
    """
    rng = np.random.default_rng(seed)
    arrays, metas = {}, []
    p = int(np.prod(shape))
    for s in subjects:
        n = n_runs * per_run
        y = np.tile(np.repeat([0, 1], per_run // 2), n_runs)
        run = np.repeat(np.arange(1, n_runs + 1), per_run)
        sign = (2.0 * y - 1)[:, None]
        if kind == "correlated":
            x = rng.normal(0, 5, (n, 1)) + rng.normal(0, 0.3, (n, p))
            x[:, :5] += 0.5 * sign
        else:
            x = rng.normal(0, 1, (n, p)) + 0.12 * sign
        arrays[s] = x.reshape(n, *shape).astype(np.float16)
        metas.append(
            pd.DataFrame(
                {
                    "subject": s,
                    "row": np.arange(n),
                    "y": y,
                    "run": run,
                    "volume": np.arange(n),
                    "movie_time": 1000.0 * run + 2.0 * (np.arange(n) % per_run),
                }
            )
        )
    return MaskedCache(arrays), pd.concat(metas, ignore_index=True)


def _accuracy(table: pd.DataFrame) -> float:
    return float((table["true"] == table["pred"]).mean())


# -- inner folds ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("split", "group"),
    [("leave-one-run-out", "run"), ("leave-one-subject-out", "subject"), ("random", "random")],
)
def test_inner_folds_stay_inside_the_outer_training_fold(split, group):
    _, meta = cohort("diffuse", subjects=("01", "02", "03", "04"), per_run=10)
    plan = make_splits(meta, split, seed=0)
    assert inner_group(plan.split) == group
    for outer in plan.folds:
        train_rows = meta.iloc[outer.train]
        outer_test = set(meta.index[outer.test])
        for inner in inner_folds(train_rows, group=group, n_folds=3):
            tr = set(train_rows.index[inner.train])  # back to labels of the whole table
            te = set(train_rows.index[inner.test])
            assert tr and te and not tr & te
            assert not (tr | te) & outer_test, f"{outer.name}/{inner.name} saw outer test rows"


def test_inner_folds_keep_runs_and_people_apart():
    _, meta = cohort("diffuse", subjects=("01", "02", "03", "04", "05"), per_run=10)
    for outer in make_splits(meta, "leave-one-run-out").folds:  # runs pooled over people
        rows = meta.iloc[outer.train].reset_index(drop=True)
        folds = inner_folds(rows, group="run", n_folds=2)
        assert len(folds) == 2
        for inner in folds:
            assert not set(rows.run.iloc[inner.train]) & set(rows.run.iloc[inner.test])
    for outer in make_splits(meta, "loso").folds:
        rows = meta.iloc[outer.train].reset_index(drop=True)
        folds = inner_folds(rows, group="subject", n_folds=3)
        assert len(folds) == 3
        held = [set(rows.subject.iloc[f.test]) for f in folds]
        assert set().union(*held) == set(rows.subject)  # every training person held out once
        for inner, people in zip(folds, held, strict=True):
            assert not set(rows.subject.iloc[inner.train]) & people
            assert inner.name == "+".join(f"sub-{s}" for s in sorted(people))


def test_inner_run_folds_drop_training_volumes_that_share_the_test_runs_movie():
    _, meta = cohort("diffuse", per_run=10)
    meta.loc[meta.run == 2, "movie_time"] -= 8.0  # run 2 repeats the end of run 1
    meta.loc[meta.run == 1, "movie_time"] = 1990.0 + 2.0 * np.arange(10)
    rows = meta[meta.run != 4].reset_index(drop=True)
    first = inner_folds(rows, group="run", n_folds=3)[0]  # holds out run 1
    assert set(rows.run.iloc[first.test]) == {1}
    t = rows.movie_time.iloc[first.test]
    kept = rows.movie_time.iloc[first.train]
    assert not ((kept >= t.min() - 1) & (kept <= t.max() + 1)).any()


def test_inner_folds_need_two_groups_and_a_known_grouping():
    _, meta = cohort("diffuse", per_run=10)
    with pytest.raises(ConfigError, match="at least 2 training runs"):
        inner_folds(meta[meta.run == 1], group="run")
    with pytest.raises(ConfigError, match="at least 2 training people"):
        inner_folds(meta, group="subject")
    with pytest.raises(ConfigError, match="'group' must be one of"):
        inner_folds(meta, group="scene")


# -- linear baseline: C by nested cross-validation -------------------------------------------
def test_tuning_picks_large_C_where_regularisation_hurts_and_beats_the_fixed_setting():
    cache, meta = cohort("correlated")
    kw = dict(classes=["A", "B"], folds=["runs 1", "runs 2"])
    tuned = fit_linear(cache, meta, "single-subject", C="auto", C_grid=SMALL_GRID, **kw)
    fixed = fit_linear(cache, meta, "single-subject", C=FIXED_C, **kw)
    assert tuned.setting == "tuned" and fixed.setting == "fixed"
    chosen = [v["C"] for v in tuned.tuning["sub-01"].values()]
    assert list(tuned.tuning["sub-01"]) == ["runs 1", "runs 2"] and min(chosen) >= 1.0
    assert fixed.tuning == {"sub-01": {"runs 1": {"C": 0.01}, "runs 2": {"C": 0.01}}}
    assert _accuracy(tuned.predictions) > _accuracy(fixed.predictions) + 0.2
    scores = tuned.inner_scores["sub-01"]["runs 1"]
    assert set(scores) == set(SMALL_GRID) and max(scores, key=scores.get) == chosen[0]
    assert len(tuned.inner_folds["sub-01"]["runs 1"]) == 3


def test_tuning_picks_small_C_where_there_is_little_to_learn_per_voxel():
    cache, meta = cohort("diffuse")
    res = fit_linear(
        cache, meta, "single-subject", classes=["A", "B"], C_grid=SMALL_GRID, folds=["runs 1"]
    )
    assert res.tuning["sub-01"]["runs 1"]["C"] <= 0.01


def test_outer_test_volumes_do_not_change_what_a_fold_chooses():
    cache, meta = cohort("correlated")
    kw = dict(classes=["A", "B"], C_grid=SMALL_GRID, folds=["runs 1"])
    before = fit_linear(cache, meta, "single-subject", **kw)
    # scramble the held-out run: new volumes, flipped labels
    arrays = {"01": cache.arrays["01"].copy()}
    test = (meta.run == 1).to_numpy()
    arrays["01"][test] = np.random.default_rng(5).normal(0, 9, arrays["01"][test].shape)
    scrambled = meta.assign(y=np.where(test, 1 - meta.y, meta.y))
    after = fit_linear(MaskedCache(arrays), scrambled, "single-subject", **kw)
    assert after.tuning == before.tuning and after.inner_scores == before.inner_scores


def test_loso_tunes_on_training_people_only(monkeypatch):
    cache, meta = cohort("correlated", subjects=("01", "02", "03"), n_runs=2, per_run=20)
    seen = []
    real = baseline._tuned

    def spy(X, y, rows, **kw):
        seen.append((set(rows.subject), kw["group"]))
        return real(X, y, rows, **kw)

    monkeypatch.setattr(baseline, "_tuned", spy)
    res = fit_linear(cache, meta, "loso", classes=["A", "B"], C_grid=SMALL_GRID)
    assert seen == [({"02", "03"}, "subject"), ({"01", "03"}, "subject"), ({"01", "02"}, "subject")]
    assert list(res.tuning["loso"]) == ["sub-01", "sub-02", "sub-03"]
    assert len(res.inner_folds["loso"]["sub-01"]) == 2  # one inner fold per training person


def test_linear_baseline_keeps_its_signature_and_fixed_result():
    cache, meta = cohort("diffuse")
    table = linear_baseline(cache, meta, "single-subject", classes=["A", "B"])
    fixed = fit_linear(cache, meta, "single-subject", classes=["A", "B"], C=0.01)
    pd.testing.assert_frame_equal(table, fixed.predictions)
    assert len(table) == len(meta) and set(table["fold_name"]) == {f"runs {r}" for r in range(1, 5)}


def test_C_option_is_checked():
    cache, meta = cohort("diffuse", per_run=10)
    with pytest.raises(ConfigError, match="'C' must be a positive number or 'auto'; 'tune'"):
        fit_linear(cache, meta, "single-subject", classes=["A", "B"], C="tune")
    with pytest.raises(ConfigError, match="'C' must be a positive number"):
        fit_linear(cache, meta, "single-subject", classes=["A", "B"], C=0.0)


# -- CNN: epoch count by early stopping on an inner fold --------------------------------------
def test_best_epoch_is_the_earliest_maximum():
    assert best_epoch([0.2, 0.5, 0.5, 0.3]) == 2
    assert best_epoch([0.4]) == 1
    with pytest.raises(ConfigError, match="no inner-validation scores"):
        best_epoch([])


CNN = TrainConfig(
    epochs=3, batch_size=16, widths=(4, 8, 8), hidden=16, device="cpu", seed=1, compile="off"
)


def _planted(n_per_class: int = 40):
    cache, meta = planted_volumes(n_per_class, 3)
    return cache, meta.assign(movie_time=1000.0 * meta.run + 2.0 * meta.row)


def test_choose_epochs_trains_on_inner_runs_and_returns_the_curves_argmax(monkeypatch):
    cache, meta = _planted()
    outer = make_splits(meta, "leave-one-run-out").folds[3]  # tests run 4
    train_rows = meta.iloc[outer.train]
    calls = []
    real = tuning.train_model

    def spy(train, val, config, **kw):
        calls.append((set(train.meta.run), set(val.meta.run), set(val.meta.row), config.epochs))
        return real(train, val, config, **kw)

    monkeypatch.setattr(tuning, "train_model", spy)
    choice = choose_epochs(cache, train_rows, CNN, group="run", n_classes=3, max_epochs=4)
    ((train_runs, val_runs, val_rows, epochs),) = calls
    assert epochs == 4 and not train_runs & val_runs and 4 not in train_runs | val_runs
    assert val_rows.isdisjoint(meta.row.iloc[outer.test])
    assert choice.inner_fold == "runs 1" and choice.group == "run"
    assert len(choice.curve) == 4 and all(0 <= v <= 1 for v in choice.curve)
    assert choice.epochs == int(np.argmax(choice.curve)) + 1
    assert choice.curve[choice.epochs - 1] == max(choice.curve)
    assert choice.to_dict()["epochs"] == choice.epochs


def test_choose_epochs_prefers_fewer_epochs_on_a_tie(monkeypatch):
    cache, meta = _planted(10)
    curve = [0.3, 0.6, 0.6, 0.5]

    class Fake:
        history = [{"epoch": i + 1, "val_balanced_acc": v} for i, v in enumerate(curve)]

    monkeypatch.setattr(tuning, "train_model", lambda *a, **k: Fake())
    choice = choose_epochs(cache, meta, CNN, group="run", n_classes=3)
    assert choice.epochs == 2 and choice.curve == curve


def test_choose_epochs_holds_out_people_across_people(monkeypatch):
    cache, meta = _planted(12)
    two = ArrayCache({"01": cache.arrays["01"], "02": cache.arrays["01"][::-1].copy()})
    both = pd.concat([meta, meta.assign(subject="02")], ignore_index=True)
    calls = []
    real = tuning.train_model

    def spy(train, val, config, **kw):
        calls.append((set(train.meta.subject), set(val.meta.subject)))
        return real(train, val, config, **kw)

    monkeypatch.setattr(tuning, "train_model", spy)
    choice = choose_epochs(two, both, CNN, group="subject", n_classes=3, max_epochs=1)
    assert calls == [({"02"}, {"01"})] and choice.inner_fold == "sub-01"
    assert choice.epochs == 1 and len(choice.curve) == 1
