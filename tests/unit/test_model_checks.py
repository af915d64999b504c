"""A collapsed model is named before its errors are read as a person's (emocore.stats.model_checks)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emocore.constants import EMOTIONS
from emocore.stats.model_checks import (
    COLLAPSE_SHARE,
    collapse,
    collapse_sentence,
    largest_confusion,
)

CLASSES = list(EMOTIONS)


def _table(pred_of, n: int = 100, subjects=("01", "02"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for subject in subjects:
        true = rng.choice(CLASSES, n)
        rows += [{"subject": subject, "true": t, "pred": pred_of(subject, t, rng)} for t in true]
    return pd.DataFrame(rows)


def test_a_model_answering_one_emotion_is_named_with_its_share():
    frame = _table(lambda s, t, rng: "SADNESS" if rng.random() < 0.95 else t)
    found = collapse(frame)
    assert found is not None and found.label == "SADNESS" and found.share >= COLLAPSE_SHARE
    assert found.n == 200
    said = collapse_sentence(found, what="The single-subject CNN")
    assert said.startswith(f"The single-subject CNN answered SADNESS for {100 * found.share:.0f} %")
    assert "describe the model, not the person" in said


def test_a_model_whose_answers_vary_is_not_flagged_even_when_biased():
    # right 40 % of the time, else SADNESS: a strong bias (about 52 % SADNESS), not a collapse
    frame = _table(lambda s, t, rng: t if rng.random() < 0.4 else "SADNESS")
    assert collapse(frame) is None


def test_one_persons_collapsed_model_is_found_by_subject():
    frame = _table(lambda s, t, rng: "LOVE" if s == "02" else t)
    assert collapse(frame) is None  # half the volumes are answered right
    found = collapse(frame, subject="sub-02")
    assert found is not None and found.label == "LOVE" and found.share == 1.0
    assert collapse(frame, subject="01") is None
    assert collapse(frame.iloc[:0]) is None


def test_the_cell_to_open_first_is_the_persons_most_frequent_error():
    frame = pd.DataFrame(
        {
            "subject": ["01"] * 7 + ["02"] * 3,
            "true": ["LOVE", "LOVE", "LOVE", "FEAR", "FEAR", "ANGER", "ANGER"] + ["FEAR"] * 3,
            "pred": ["SADNESS", "SADNESS", "LOVE", "ANGER", "HAPPINESS", "ANGER", "FEAR"]
            + ["ANGER"] * 3,
        }
    )
    assert largest_confusion(frame, subject="01", classes=CLASSES) == ("LOVE", "SADNESS")
    assert largest_confusion(frame, subject="02", classes=CLASSES) == ("FEAR", "ANGER")
    assert largest_confusion(frame, subject="01", classes=CLASSES, true="ANGER") == (
        "ANGER",
        "FEAR",
    )
    right = frame.assign(pred=frame["true"])
    assert largest_confusion(right, subject="01", classes=CLASSES) is None
