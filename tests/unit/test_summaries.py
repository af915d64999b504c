"""Tests of emocore.stats.summaries on small synthetic prediction tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from emocore.constants import EMOTIONS
from emocore.errors import ConfigError
from emocore.stats import summaries

CLASSES = list(EMOTIONS)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


def make_table(
    rng: np.random.Generator,
    *,
    subjects: tuple[str, ...] = ("01", "02", "03"),
    n_runs: int = 2,
    n_volumes: int = 60,
    hit_rate: float = 0.7,
    classes: list[str] = CLASSES,
) -> pd.DataFrame:
    """Prediction table with emotion episodes of 6-15 volumes and scenes of 25 volumes."""
    rows = []
    for fold, subject in enumerate(subjects):
        for run in range(1, n_runs + 1):
            labels: list[str] = []
            while len(labels) < n_volumes:
                labels += [classes[int(rng.integers(len(classes)))]] * int(rng.integers(6, 16))
            for volume, true in enumerate(labels[:n_volumes]):
                hit = rng.random() < hit_rate
                pred = true if hit else classes[int(rng.integers(len(classes)))]
                probs = np.full(len(classes), 0.1 / (len(classes) - 1))
                probs[classes.index(pred)] = 0.9
                rows.append(
                    {
                        "subject": subject,
                        "run": run,
                        "volume": volume,
                        "movie_time": 1000.0 * run + 2.0 * volume,
                        "scene": 10 * run + volume // 25,
                        "scene_location": f"place {(volume // 25) % 3}",
                        "true": true,
                        "pred": pred,
                        **{f"prob_{c}": float(p) for c, p in zip(classes, probs, strict=True)},
                        "fold": fold,
                    }
                )
    return pd.DataFrame(rows)


def hand_table(
    truth: list[str], pred: list[str], subject: str = "01", run: int = 1
) -> pd.DataFrame:
    n = len(truth)
    return pd.DataFrame(
        {
            "subject": [subject] * n,
            "run": [run] * n,
            "volume": list(range(n)),
            "movie_time": [2.0 * v for v in range(n)],
            "scene": [1] * n,
            "scene_location": ["forest"] * n,
            "true": truth,
            "pred": pred,
            "fold": [0] * n,
        }
    )


# --------------------------------------------------------------------------- summarize_predictions


def test_summary_keys_are_stable_and_json_safe(rng: np.random.Generator) -> None:
    table = make_table(rng)
    summary = summaries.summarize_predictions(
        table, classes=CLASSES, split="test", design="leave-one-subject-out", n_permutations=200
    )
    assert tuple(summary) == summaries.SUMMARY_KEYS
    assert set(summary["chance"]) == {
        "balanced_accuracy_theoretical",
        "balanced_accuracy_permutation",
        "accuracy_majority",
        "accuracy_permutation",
    }
    assert set(summary["p_value"]) == set(summary["ci95"]) == {"balanced_accuracy", "accuracy"}
    assert summary["permutation"]["scheme"] == summaries.PERMUTATION_SCHEME
    assert "exact" in summary["permutation"]["shifts"]
    assert summary["permutation"]["n"] == 200
    assert summary["bootstrap"] == {"n": 1000, "block": summaries.BOOTSTRAP_BLOCK}
    assert (summary["split"], summary["design"], summary["leaky"]) == (
        "test",
        "leave-one-subject-out",
        False,
    )
    json.dumps(summary, allow_nan=False)


def test_summary_numbers_match_hand_counts() -> None:
    # Unequal classes: 4 HAPPINESS, 2 FEAR, 1 SADNESS, no LOVE, no ANGER.
    truth = ["HAPPINESS"] * 4 + ["FEAR"] * 2 + ["SADNESS"]
    pred = ["HAPPINESS", "HAPPINESS", "FEAR", "SADNESS", "FEAR", "HAPPINESS", "SADNESS"]
    summary = summaries.summarize_predictions(
        hand_table(truth, pred), classes=CLASSES, split="test", design="demo", n_permutations=50
    )
    assert summary["n_volumes"] == 7
    assert summary["accuracy"] == pytest.approx(4 / 7)
    assert summary["balanced_accuracy"] == pytest.approx(2 / 3)
    assert summary["per_class_accuracy"] == {
        "HAPPINESS": 0.5,
        "FEAR": 0.5,
        "SADNESS": 1.0,
        "LOVE": None,
        "ANGER": None,
    }
    assert summary["confusion"][0] == [2, 1, 1, 0, 0]
    assert summary["confusion"][3] == [0, 0, 0, 0, 0]
    assert summary["chance"]["balanced_accuracy_theoretical"] == pytest.approx(0.2)
    assert summary["chance"]["accuracy_majority"] == pytest.approx(4 / 7)
    lo, hi = summary["ci95"]["accuracy"]
    assert lo == pytest.approx(4 / 7) and hi == pytest.approx(4 / 7)  # one block only


def test_summary_separates_signal_from_noise(rng: np.random.Generator) -> None:
    good = summaries.summarize_predictions(
        make_table(rng, hit_rate=0.8), classes=CLASSES, split="test", design="d", n_permutations=300
    )
    noise = summaries.summarize_predictions(
        make_table(rng, hit_rate=0.0), classes=CLASSES, split="test", design="d", n_permutations=300
    )
    assert good["p_value"]["balanced_accuracy"] < 0.01
    assert noise["p_value"]["balanced_accuracy"] > 0.01  # uniform under no signal
    lo, hi = good["ci95"]["balanced_accuracy"]
    assert lo <= good["balanced_accuracy"] <= hi
    assert noise["chance"]["balanced_accuracy_permutation"] == pytest.approx(0.2, abs=0.05)


def test_summary_is_reproducible_and_records_leaky(rng: np.random.Generator) -> None:
    table = make_table(rng)
    kwargs = dict(classes=CLASSES, split="test", design="random", leaky=True, n_permutations=100)
    first = summaries.summarize_predictions(table, **kwargs)
    second = summaries.summarize_predictions(table.sample(frac=1.0, random_state=1), **kwargs)
    assert first == second  # row order does not matter; the seed fixes the draws
    assert first["leaky"] is True


def test_summary_rejects_bad_tables() -> None:
    with pytest.raises(ConfigError, match="prediction table is empty"):
        summaries.summarize_predictions(
            hand_table([], []), classes=CLASSES, split="test", design="d"
        )
    with pytest.raises(ConfigError, match=r"lacks the column\(s\) \['pred'\]"):
        summaries.summarize_predictions(
            hand_table(["LOVE"], ["LOVE"]).drop(columns="pred"),
            classes=CLASSES,
            split="t",
            design="d",
        )
    doubled = pd.concat([hand_table(["LOVE"], ["LOVE"])] * 2)
    with pytest.raises(ConfigError, match="appear more than once"):
        summaries.summarize_predictions(doubled, classes=CLASSES, split="t", design="d")
    with pytest.raises(ConfigError, match=r"not in 'classes': \['NONE'\]"):
        summaries.summarize_predictions(
            hand_table(["NONE"], ["LOVE"]), classes=CLASSES, split="t", design="d"
        )


# --------------------------------------------------------------------------- per subject


def two_subjects() -> pd.DataFrame:
    first = hand_table(["LOVE", "LOVE", "FEAR"], ["LOVE", "FEAR", "FEAR"], subject="02")
    second = hand_table(["LOVE", "ANGER"], ["SADNESS", "SADNESS"], subject="01")
    return pd.concat([first, second], ignore_index=True)


def test_per_subject_metrics_hand_computed() -> None:
    table = two_subjects()
    result = summaries.per_subject_metrics(table, classes=CLASSES)
    assert list(result["subject"]) == ["01", "02"]
    assert list(result["n"]) == [2, 3]
    assert result.loc[1, "accuracy"] == pytest.approx(2 / 3)
    assert result.loc[1, "balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert result.loc[0, "accuracy"] == 0.0
    assert result.loc[1, "accuracy_LOVE"] == 0.5
    assert math.isnan(result.loc[1, "accuracy_HAPPINESS"])
    assert {f"accuracy_{c}" for c in CLASSES} <= set(result.columns)
    assert result["seen"].isna().all()


def test_per_subject_seen_and_seen_vs_unseen() -> None:
    table = two_subjects()
    table["seen"] = table["subject"] == "02"
    per_subject = summaries.per_subject_metrics(table, classes=CLASSES)
    assert list(per_subject["seen"]) == [False, True]
    comparison = summaries.seen_vs_unseen(table, classes=CLASSES)
    assert list(comparison["seen"]) == [True, False]
    assert list(comparison["n_volumes"]) == [3, 2]
    assert comparison.loc[0, "accuracy"] == pytest.approx(2 / 3)
    assert comparison.loc[1, "balanced_accuracy"] == 0.0
    assert comparison.loc[0, "mean_subject_balanced_accuracy"] == pytest.approx(0.75)


def test_seen_vs_unseen_needs_the_column() -> None:
    with pytest.raises(ConfigError, match="no 'seen' column"):
        summaries.seen_vs_unseen(two_subjects())


def test_per_subject_metrics_empty_table() -> None:
    with pytest.raises(ConfigError, match="empty"):
        summaries.per_subject_metrics(hand_table([], []), classes=CLASSES)


def test_classes_default_to_probability_columns(rng: np.random.Generator) -> None:
    table = make_table(rng, subjects=("01",), n_runs=1)
    result = summaries.per_subject_metrics(table)
    assert [c for c in result.columns if c.startswith("accuracy_")] == [
        f"accuracy_{c}" for c in CLASSES
    ]


# --------------------------------------------------------------------------- misclassification


def poster_table() -> pd.DataFrame:
    """sub-18's 19 LOVE volumes: 8 predicted SADNESS, 6 LOVE, 5 HAPPINESS; plus some FEAR."""
    pred = ["SADNESS"] * 8 + ["LOVE"] * 6 + ["HAPPINESS"] * 5
    order = np.random.default_rng(0).permutation(19)
    truth = ["LOVE"] * 19 + ["FEAR"] * 3
    return hand_table(truth, [pred[i] for i in order] + ["FEAR"] * 3, subject="18")


def test_misclassification_sentence_reproduces_the_poster() -> None:
    summary = summaries.misclassification_summary(poster_table(), "18", "LOVE")
    assert summary["sentence"] == (
        "LOVE volumes of sub-18 (n=19): SADNESS 42.1 %, LOVE 31.6 %, HAPPINESS 26.3 %"
    )
    assert summary["n"] == 19
    assert list(summary["distribution"]) == ["SADNESS", "LOVE", "HAPPINESS"]
    assert sum(summary["distribution"].values()) == pytest.approx(1.0)
    assert summary["counts"] == {"SADNESS": 8, "LOVE": 6, "HAPPINESS": 5}


def test_misclassification_accepts_sub_prefix_and_handles_absent_emotion() -> None:
    assert summaries.misclassification_summary(poster_table(), "sub-18", "LOVE")["n"] == 19
    summary = summaries.misclassification_summary(poster_table(), "18", "ANGER")
    assert summary["n"] == 0 and summary["distribution"] == {}
    assert summary["sentence"] == "ANGER volumes of sub-18 (n=0): none in this table"


def test_misclassification_unknown_subject_lists_subjects() -> None:
    with pytest.raises(ConfigError, match=r"subject '07' has no rows.*\['18'\]"):
        summaries.misclassification_summary(poster_table(), "07", "LOVE")


def test_misclassified_scenes_finds_spans() -> None:
    truth = ["LOVE"] * 10
    pred = [
        "LOVE",
        "SADNESS",
        "SADNESS",
        "HAPPINESS",
        "LOVE",
        "LOVE",
        "FEAR",
        "FEAR",
        "LOVE",
        "FEAR",
    ]
    table = hand_table(truth, pred, subject="05")
    table.loc[6:, "scene"] = 2
    table.loc[6:, "scene_location"] = "bus"
    spans = summaries.misclassified_scenes(table, "05", "LOVE")
    assert list(spans["n_volumes"]) == [3, 2, 1]
    assert list(spans["scene"]) == [1, 2, 2]
    assert list(spans["scene_location"]) == ["forest", "bus", "bus"]
    assert list(spans["start_movie_time"]) == [2.0, 12.0, 18.0]
    assert list(spans["end_movie_time"]) == [6.0, 14.0, 18.0]
    assert list(spans["most_common_prediction"]) == ["SADNESS", "FEAR", "FEAR"]
    assert spans.loc[0, "most_common_fraction"] == pytest.approx(2 / 3)
    # A larger gap tolerance joins the two bus spans.
    assert list(summaries.misclassified_scenes(table, "05", "LOVE", max_gap=2)["n_volumes"]) == [
        3,
        3,
    ]


def test_misclassified_scenes_empty_when_all_right() -> None:
    spans = summaries.misclassified_scenes(hand_table(["LOVE"] * 3, ["LOVE"] * 3), "01", "LOVE")
    assert len(spans) == 0 and "most_common_prediction" in spans.columns


def test_family_comparison_says_who_wins_only_when_intervals_part() -> None:
    def result(design, model, ba, ci):
        return {
            "design": design,
            "model": model,
            "balanced_accuracy": ba,
            "ci95": ci,
            "split": "run-wise 2-fold",
            "chance_balanced_accuracy": 0.19,
        }

    lines = summaries.family_comparison(
        [
            result("single-subject", "cnn", 0.31, [0.28, 0.34]),
            result("single-subject", "linear", 0.66, [0.62, 0.70]),
            result("cross-subject", "cnn", 0.81, [0.78, 0.84]),
            result("cross-subject", "linear", 0.80, [0.77, 0.83]),
            result("loso", "cnn", 0.5, [0.4, 0.6]),
        ]
    )
    assert lines[0] == (
        "single-subject: the linear baseline beats the CNN (31 % vs 66 % balanced accuracy, "
        "split run-wise 2-fold, chance 19 %)."
    )
    assert lines[1].startswith("cross-subject: the CNN and the linear baseline are level")
    assert len(lines) == 2  # loso has no linear result
