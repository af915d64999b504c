"""The claims emocore makes about its own numbers, checked on synthetic cohorts.

* With an emotion signal (3.5 % at the patterns' peaks), the CNN beats permutation chance on a run-wise split, fear is decoded
  better than love, and the atypical person's love volumes are mostly called sadness.
* Without any emotion signal (drift and noise kept), run-wise and leave-one-subject-out accuracy
  stay within 3 points of chance, while the poster's random split over volumes inflates it.

These train real models on demo-sized cohorts: a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import pytest

from emocore.data.prepare import prepare_cache
from emocore.data.synthetic import SynthConfig, generate_cohort
from emocore.stats.evaluate import evaluate_predictions
from emocore.training.designs import run_design
from emocore.training.train import TrainConfig

pytestmark = pytest.mark.slow

DEMO_TRAIN = TrainConfig(epochs=3, class_weights=True, seed=0)


def _cache(tmp_path_factory, name: str, **cfg):
    root = tmp_path_factory.mktemp(name)
    generate_cohort(root / "cohort", SynthConfig(**cfg))
    return prepare_cache(root / "cohort", root / "cohort" / "annotations" / "raw", root / "cache")


def _evaluate(
    cache,
    design: str,
    split: str = "leave-one-run-out",
    train: TrainConfig = DEMO_TRAIN,
    n_folds: int = 4,
):
    res = run_design(cache, design, train, split=split, n_folds=n_folds, refit=False)
    return res, evaluate_predictions(
        res.predictions,
        classes=res.classes,
        split=res.split,
        design=design,
        leaky=res.leaky,
        n_permutations=200,
    )


@pytest.fixture(scope="module")
def signal_cache(tmp_path_factory):
    # A clearer signal than the demo's default 2 %: at 2 % the 3-epoch CNN sits only about 10
    # points above chance within a person, too close to the margin for a test to be stable.
    return _cache(tmp_path_factory, "signal", amplitude=3.5)


@pytest.fixture(scope="module")
def null_cache(tmp_path_factory):
    return _cache(tmp_path_factory, "null", signal=0.0)


def test_signal_beats_chance_fear_over_love_atypical_love_as_sadness(signal_cache):
    res, ev = _evaluate(signal_cache, "single-subject")
    s = ev["summary"]
    assert s["split"] == "run-wise 4-fold" and not s["leaky"]
    assert s["balanced_accuracy"] > s["chance"]["balanced_accuracy_permutation"] + 0.1
    assert s["p_value"]["balanced_accuracy"] < 0.01
    assert s["per_class_accuracy"]["FEAR"] > s["per_class_accuracy"]["LOVE"]
    atypical = [
        m for m in ev["misclassification"] if m["subject"] == "04" and m["emotion"] == "LOVE"
    ][0]
    # The planted person's LOVE pattern is mostly their SADNESS pattern, so their model's most
    # frequent wrong answer on LOVE volumes is SADNESS (whether LOVE or SADNESS comes out on top
    # overall is close to a coin flip when the two patterns are 85 % alike).
    wrong = {k: v for k, v in atypical["distribution"].items() if k != "LOVE"}
    assert max(wrong, key=wrong.get) == "SADNESS", atypical["sentence"]
    typical = [
        m for m in ev["misclassification"] if m["subject"] != "04" and m["emotion"] == "LOVE"
    ]
    # Above the typical people's average, not each of them: with 4 people and a 3-epoch model a
    # typical person's rate moves by 20 points or more with the preprocessing (measured: 3 %, 6 %
    # and 39 % for sub-01 with the mean removed, detrending, detrending + high-pass). The
    # calibrated claim, the single-case test on 10 people, is in test_findings_science.py.
    typical_sad = [m["distribution"].get("SADNESS", 0) for m in typical]
    assert atypical["distribution"]["SADNESS"] > sum(typical_sad) / len(typical_sad), typical_sad


def test_no_signal_stays_at_chance_and_the_random_split_inflates(null_cache):
    # Two folds, not four, for the within-person splits: a third of the training (the suite's
    # time), and the claim is the same: honest splits stay at chance, the random one does not.
    _, loro = _evaluate(null_cache, "single-subject", n_folds=2)
    _, loso = _evaluate(null_cache, "loso")
    for ev in (loro, loso):
        s = ev["summary"]
        assert abs(s["balanced_accuracy"] - s["chance"]["balanced_accuracy_permutation"]) <= 0.03, (
            s["split"]
        )
        assert s["p_value"]["balanced_accuracy"] > 0.01
    res, leaky = _evaluate(null_cache, "single-subject", split="random", n_folds=2)
    s = leaky["summary"]
    assert res.leaky and s["leaky"] is True and s["split"] == "random"
    # With no emotion signal, the leaky split still "finds" one: neighbouring, autocorrelated
    # volumes on both sides of the split. (3 epochs here; longer training inflates it further.)
    # The claim is the significance where there is nothing to find, and that the honest split
    # scores lower on the same data. (A fixed margin of 3 points held with the packages of
    # 2026-11 (random 0.231, run-wise 0.190) and not with those of 2026-12-07 (0.225 vs 0.204,
    # the same on landed main): the size of the inflation at 3 epochs is not the claim.)
    assert s["p_value"]["balanced_accuracy"] < 0.01
    assert s["balanced_accuracy"] > loro["summary"]["balanced_accuracy"]


def test_same_seed_same_cpu_same_metrics(signal_cache):
    """Same seed, same data, same CPU: the same predictions, probabilities and metrics (one
    person's run folds: determinism does not need the whole cohort)."""
    train = TrainConfig(epochs=1, seed=3)

    def once():
        res = run_design(
            signal_cache, "single-subject", train, subjects=["01"], n_folds=2, refit=False
        )
        ev = evaluate_predictions(
            res.predictions,
            classes=res.classes,
            split=res.split,
            design="single-subject",
            leaky=res.leaky,
            n_permutations=200,
        )
        return res.predictions, ev["summary"]

    (pred_a, a), (pred_b, b) = once(), once()
    assert pred_a.equals(pred_b)
    assert a == b
