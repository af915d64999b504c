"""The single-case strip chart: every label has a place of its own and stays inside the plot."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from emocore.reporting import figures


def _strip(values: list[float], chance: float | None = 0.2) -> go.Figure:
    table = pd.DataFrame(
        {"subject": [f"{i:02d}" for i in range(1, len(values) + 1)], "value": values}
    )
    return figures.single_case_dots(
        table, subject="01", measure="m", design="single-subject", split="s", chance=chance
    )


def _labels(fig: go.Figure) -> dict:
    return {a.text.split(" ")[0]: a for a in fig.layout.annotations}


@pytest.mark.parametrize(
    ("value", "anchor", "side"), [(0.0, "left", "middle right"), (1.0, "right", "middle left")]
)
def test_labels_at_an_edge_hang_inwards(value: float, anchor: str, side: str) -> None:
    fig = _strip([value, value])
    labels = _labels(fig)
    assert labels["others'"].text == f"others' mean {100 * value:.0f} %"
    assert labels["others'"].xanchor == anchor
    me = fig.data[1]
    assert me.textposition == side and me.cliponaxis is False
    assert me.text[0] == f"sub-01 {100 * value:.0f} %"


def test_labels_at_one_value_sit_on_separate_rows() -> None:
    """The person, the others' mean and chance all at 20 %: three rows, none on another."""
    fig = _strip([0.2, 0.2])
    labels = _labels(fig)
    mean_y, chance_y, me_y = labels["others'"].y, labels["chance"].y, fig.data[1].y[0]
    assert me_y < min(fig.data[0].y) < mean_y < chance_y
    assert labels["chance"].xanchor == "center" and labels["chance"].text == "chance 20 %"
    # the lines stop above the person's row, so none runs through the person's label
    assert all(shape.y0 > me_y for shape in fig.layout.shapes)
    lo, hi = fig.layout.yaxis.range
    assert lo < me_y and hi > chance_y


@pytest.mark.parametrize(("n", "name"), [(1, "the 1 other"), (7, "the 7 others")])
def test_the_legend_counts_the_others_in_words(n: int, name: str) -> None:
    assert _strip([0.5] * (n + 1)).data[0].name == name


def test_without_chance_there_is_one_label_row() -> None:
    fig = _strip([0.3, 0.4, 0.5], chance=None)
    assert [a.text for a in fig.layout.annotations] == ["others' mean 45 %"]
