"""Movie time is written one way on every page, chart and report (emocore.constants.movie_clock)."""

from __future__ import annotations

import math

import pytest

from emocore.constants import MOVIE_END_S, movie_clock


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (22, "0:22"), (938.4, "15:38"), (3599.6, "1:00:00"), (6282, "1:44:42")],
)
def test_minutes_and_seconds_then_hours(seconds: float, text: str) -> None:
    assert movie_clock(seconds) == text


def test_the_movies_end_reads_in_hours_and_missing_times_read_as_unknown() -> None:
    assert movie_clock(MOVIE_END_S) == "1:58:06"
    for missing in (None, math.nan, "soon", math.inf):
        assert movie_clock(missing) == "?"
