"""Figure details a reader relies on: where labels sit, what error bars are, tick spacing, the
order of emotions in legends, and axes in % and clock time."""

from __future__ import annotations

import pandas as pd

from emocore.constants import EMOTION_COLORS, EMOTIONS
from emocore.reporting import figures

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
    others = fig.data[0]
    assert others.name == "others (2): mean ± SD"
    cols = [f"accuracy_{e}" for e in EMOTIONS]
    assert list(others.error_y.array) == list(_COHORT[cols].iloc[1:].std())
    assert "SD" in others.hovertemplate and "over the 2 other people" in others.hovertemplate


def test_the_person_is_compared_with_the_others_never_a_mean_that_includes_them() -> None:
    """issue 20: "others (n)" everywhere a person is compared, the person left out."""
    cols = [f"accuracy_{e}" for e in EMOTIONS]
    fig = figures.subject_vs_cohort(
        _COHORT.iloc[0], _COHORT, list(EMOTIONS), subject="01", chance=0.2
    )
    others = _COHORT[cols].iloc[1:]
    assert list(fig.data[0].y) == list(others.mean())  # not the mean of all three
    assert others.mean().iloc[0] != _COHORT[cols].mean().iloc[0]
    assert fig.layout.title.text == "sub-01 vs others (2), per emotion"
    mean, sd, n = figures.others_recall(_COHORT, list(EMOTIONS), subject="02")
    assert n == 2 and list(mean) == list(_COHORT[cols].iloc[[0, 2]].mean())
    # a table of the others only (no subject column) is taken as it is
    mean, sd, n = figures.others_recall(others, list(EMOTIONS), subject="01")
    assert n == 2 and list(sd) == list(others.std())


def _one_epoch() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"fold": f"{design}/{fold}", "epoch": 1, "train_acc": 0.5, "val_acc": 0.3}
            for design, fold in (("single-subject", "sub-01/runs-1"), ("loso", "sub-01"))
        ]
    )


def test_one_epoch_has_whole_epoch_ticks_and_visible_distinct_markers() -> None:
    fig = figures.training_curves(_one_epoch(), metric="acc")
    x = fig.layout.xaxis
    assert x.dtick == 1 and x.tickformat == "d" and tuple(x.range) == (0.5, 1.5)
    lines = [t for t in fig.data if t.showlegend is not False]
    assert all("markers" in t.mode for t in lines)
    symbols = {t.name: t.marker.symbol for t in lines}
    assert symbols["single-subject · held out"] != symbols["loso · held out"]
    assert symbols["loso · train"] != symbols["loso · held out"]


def test_many_epochs_get_a_round_tick_step() -> None:
    curves = pd.concat([_one_epoch().assign(epoch=e) for e in range(1, 41)], ignore_index=True)
    x = figures.training_curves(curves, metric="acc").layout.xaxis
    assert x.dtick == 5 and x.range is None


def test_recall_colour_bar_is_readable_with_one_person_and_names_chance() -> None:
    fig = figures.accuracy_heatmap(
        _COHORT.iloc[:1], list(EMOTIONS), split="s", chance=0.2, title="Recall"
    )
    bar = fig.data[0].colorbar
    assert bar.lenmode == "pixels" and bar.len >= 200
    assert fig.layout.height - 100 >= bar.len  # the plot area holds it (margins 60 + 40)
    assert "white = chance 20 %" in bar.title.text
    many = figures.accuracy_heatmap(_COHORT, list(EMOTIONS), split="s", chance=0.2, title="R")
    assert many.data[0].colorbar.len >= bar.len


_APP_ORDER = ["HAPPINESS", "FEAR", "SADNESS", "LOVE", "ANGER", "NONE"]


def _labels() -> pd.DataFrame:
    rows = [
        {"label": cls, "agreement": 0.25 * (i % 4 + 1), "movie_time": 2.0 * i}
        for i, cls in enumerate(sorted(_APP_ORDER * 2))
    ]
    return pd.DataFrame(rows)


def test_legends_list_emotions_in_the_app_order_none_last() -> None:
    histogram = figures.agreement_histogram(_labels())
    assert [t.name for t in histogram.data] == _APP_ORDER
    assert histogram.layout.legend.traceorder == "normal"  # not reversed for stacked bars
    timeline = figures.label_timeline(_labels())
    assert [t.name for t in timeline.data] == _APP_ORDER
    emb = pd.DataFrame(
        {
            "label": sorted(_APP_ORDER[:5]),
            "subject": ["01"] * 5,
            "run": [1] * 5,
            "volume": range(5),
            "pc1": range(5),
            "pc2": range(5),
        }
    )
    scatter = figures.embedding_scatter(emb, silhouette=-0.0364)
    assert [t.name for t in scatter.data] == _APP_ORDER[:5]
    assert scatter.layout.title.text.endswith("-0.036")


def test_agreement_axes_are_in_percent() -> None:
    histogram = figures.agreement_histogram(_labels())
    assert histogram.layout.xaxis.tickformat == ".0%"
    assert histogram.layout.xaxis.title.text == "observers agreeing with the volume's label (%)"
    timeline = figures.label_timeline(_labels())
    assert timeline.layout.yaxis.tickformat == ".0%"
    assert timeline.layout.yaxis.title.text == "observers agreeing (%)"


def test_movie_time_reads_as_clock_time_in_ticks_and_hover() -> None:
    labels = pd.DataFrame(
        {"label": ["FEAR", "LOVE"], "agreement": [0.5, 1.0], "movie_time": [0.0, 7086.0]}
    )
    fig = figures.label_timeline(labels)
    x = fig.layout.xaxis
    assert x.title.text == figures.MOVIE_TIME_TITLE
    assert list(x.ticktext) == ["0:00", "20:00", "40:00", "1:00:00", "1:20:00", "1:40:00"]
    assert list(x.tickvals) == [0, 1200, 2400, 3600, 4800, 6000]
    assert list(fig.data[1].customdata) == ["1:58:06"]
    assert "%{customdata}" in fig.data[1].hovertemplate


def test_a_zoomed_timeline_ticks_within_its_window() -> None:
    table = pd.DataFrame(
        {
            "movie_time": [886.0 + 2 * i for i in range(300)],
            "true": ["FEAR"] * 300,
            "pred": ["FEAR"] * 150 + ["LOVE"] * 150,
            "prob_FEAR": [0.6] * 300,
            "prob_LOVE": [0.4] * 300,
        }
    )
    fig = figures.timeline(table, title="t", x_range=(886.0, 1484.0))
    x = fig.layout.xaxis2
    assert x.title.text == figures.MOVIE_TIME_TITLE
    assert list(x.ticktext) == ["16:00", "18:00", "20:00", "22:00", "24:00"]
    assert all(886 <= v <= 1484 for v in x.tickvals)
    assert fig.data[0].customdata[0] == "14:46"


def test_cooccurrence_names_every_category_and_its_scale_in_words() -> None:
    names = [f"CATEGORY{i:02d}" for i in range(22)]
    matrix = pd.DataFrame(
        [[(i * j) % 500 for j in range(22)] for i in range(22)], index=names, columns=names
    )
    fig = figures.cooccurrence_heatmap(matrix)
    assert fig.layout.xaxis.dtick == 1 and fig.layout.yaxis.dtick == 1
    assert fig.layout.xaxis.tickangle == -45
    bar = fig.data[0].colorbar
    assert "log10" not in bar.title.text and "(log scale)" in bar.title.text
    assert list(bar.ticktext) == ["0", "1", "10", "100"]


def test_saliency_projections_share_one_scale_with_a_colour_bar_per_row() -> None:
    import numpy as np

    maps = {
        "FEAR": np.full((4, 5, 3), 0.5),
        "HAPPINESS": np.full((4, 5, 3), 2.0),
    }
    fig = figures.saliency_mips(maps)
    assert {t.zmax for t in fig.data} == {2.0} and {t.zmin for t in fig.data} == {0}
    bars = [t for t in fig.data if t.showscale]
    assert len(bars) == 2  # one per row, in the row's emotion colour
    assert [t.colorscale[-1][1] for t in bars] == [
        EMOTION_COLORS["FEAR"],
        EMOTION_COLORS["HAPPINESS"],
    ]
    assert bars[0].colorbar.y > bars[1].colorbar.y  # each beside its own row
    assert "one colour scale for all emotions" in fig.layout.title.text


def test_the_pie_writes_shares_with_one_decimal_as_the_sentence_does():
    from emocore.reporting.figures import misclassification_pie

    fig = misclassification_pie(
        {"SADNESS": 40, "LOVE": 6, "FEAR": 1, "HAPPINESS": 1}, subject="05", emotion="LOVE"
    )
    assert fig.data[0].texttemplate == "%{percent:.1%}"
    assert "%{percent:.1%}" in fig.data[0].hovertemplate
