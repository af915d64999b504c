"""Figure details a reader relies on: where labels sit, what error bars are, tick spacing, the
order of emotions in legends, and axes in % and clock time."""

from __future__ import annotations

import pandas as pd

from emocore import figures
from emocore.constants import EMOTIONS

_COHORT = pd.DataFrame(
    {
        "subject": ["01", "02", "03"],
        **{f"accuracy_{e}": [0.2 + 0.1 * i, 0.3, 0.5] for i, e in enumerate(EMOTIONS)},
    }
)


def test_subject_chance_label_sits_right_of_the_bars_and_error_bars_are_named() -> None:
    fig = figures.subject_vs_cohort(
        _COHORT.iloc[0], _COHORT, list(EMOTIONS), subject="01", chance=0.2
    )
    (note,) = [a for a in fig.layout.annotations if "chance" in a.text]
    assert note.xref == "paper" and note.x == 1 and note.xanchor == "left"
    assert note.y == 0.2 and "20 %" in note.text
    assert fig.layout.margin.r >= 60
    cohort = fig.data[0]
    assert cohort.name == "cohort mean ± SD (3 people)"
    assert list(cohort.error_y.array) == list(_COHORT[[f"accuracy_{e}" for e in EMOTIONS]].std())
    assert "SD" in cohort.hovertemplate
