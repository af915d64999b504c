"""The training-curve figure: plain accuracy is drawn against the majority-class chance it names."""

from __future__ import annotations

import pandas as pd

from emocore.reporting import figures


def _curves() -> pd.DataFrame:
    rows = []
    for fold in ("single-subject/sub-01/runs-1", "single-subject/sub-01/runs-2"):
        for epoch in (1, 2):
            rows.append(
                {
                    "fold": fold,
                    "epoch": epoch,
                    "train_acc": 0.3 * epoch,
                    "val_acc": 0.25 * epoch,
                    "train_loss": 1.6 / epoch,
                    "val_loss": 1.7 / epoch,
                }
            )
    return pd.DataFrame(rows)


def test_the_chance_line_sits_at_the_given_level_and_says_what_it_is():
    fig = figures.training_curves(
        _curves(),
        metric="acc",
        chance=0.31,
        chance_label="chance: always the most frequent emotion",
    )
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 0.31
    (note,) = [a for a in fig.layout.annotations if "chance" in a.text]
    assert note.text == "chance: always the most frequent emotion 31 %"
    held_out = [t for t in fig.data if t.name == "single-subject · held out"]
    assert list(held_out[0].y) == [0.25, 0.5]


def test_a_loss_curve_has_no_chance_line():
    fig = figures.training_curves(_curves(), metric="loss", chance=0.31)
    assert not fig.layout.shapes
