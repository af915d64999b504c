"""Subject page (issue 11): the timeline zooms to a run and says what its marks mean; the stored
model runs on every volume of the person, NONE included, and shows its metrics."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from emocore.data.cache import open_cache
from emocore.reporting.figures import TIMELINE_LEGEND
from emocore.runs.results import read_table
from tests.app.test_pages import no_exception, open_page, texts


def timeline_spec(at: AppTest, title: str) -> dict:
    """The plotly spec of the first chart whose title contains ``title``."""
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if str(spec["layout"].get("title", {}).get("text", "")).count(title):
            return spec
    raise AssertionError(f"no chart titled {title!r}")


def xs(trace: dict) -> list[float]:
    """A trace's x values (plotly sends numpy arrays as base64 ``{"dtype", "bdata"}``)."""
    x = trace.get("x")
    if isinstance(x, dict):
        return np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]).tolist()
    return [v for v in x or [] if v is not None]


def test_timeline_zooms_to_run_3_and_explains_its_marks(demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    labels = open_cache(demo_home / "cache").labels
    run3 = labels.loc[labels["run"] == 3, "movie_time"]
    at = open_page("subject")
    no_exception(at, "subject")
    assert TIMELINE_LEGEND in texts(at, "caption")
    zoom = next(s for s in at.selectbox if s.label == "Zoom the timeline to")
    assert zoom.value == "whole movie" and "run 1" in zoom.options and "run 3" in zoom.options
    zoom.set_value("run 3").run()
    no_exception(at, "subject")
    spec = timeline_spec(at, "sub-01: true vs predicted (held out")
    assert "run 3" in spec["layout"]["title"]["text"]
    lo, hi = spec["layout"]["xaxis"]["range"]
    pad = 0.02 * (run3.max() - run3.min()) + 1  # a margin of about 1 % each side
    assert run3.min() - pad <= lo <= run3.min() and run3.max() <= hi <= run3.max() + pad, (lo, hi)
    shown = [x for trace in spec["data"] for x in xs(trace)]
    assert shown and run3.min() <= min(shown) and max(shown) <= run3.max()
    names = {trace.get("name") for trace in spec["data"]}
    assert {"correct", "misclassified"} <= names, names


def drawn_rows(spec: dict) -> list[str]:
    """The upper panel's rows, bottom to top, as plotly draws them: the axis's category array
    when it sets one, else the categories in the order the traces bring them."""
    axis = spec["layout"].get("yaxis", {})
    if axis.get("categoryorder") == "array":
        return list(axis["categoryarray"])
    rows: list[str] = []
    for trace in spec["data"]:
        if trace.get("yaxis", "y") == "y" and trace.get("mode") == "markers":
            rows += [y for y in trace.get("y") or [] if isinstance(y, str) and y not in rows]
    return rows


def test_the_timeline_caption_names_the_rows_as_drawn(demo_home: Path, emocore_env) -> None:
    """The caption said "top row true" while the top row was the prediction."""
    emocore_env(demo_home)
    at = open_page("subject")
    no_exception(at, "subject")
    rows = drawn_rows(timeline_spec(at, "sub-01: true vs predicted (held out"))
    assert rows == ["true", "predicted"], rows
    caption = next(c.value for c in at.caption if "How to read the timeline" in c.value)
    assert f"Top row **{rows[-1]}**" in caption and f"Row below it **{rows[0]}**" in caption


def test_every_volume_includes_none_and_shows_metrics(home_copy: Path, emocore_env) -> None:
    emocore_env(home_copy)
    n_volumes = len(open_cache(home_copy / "cache").labels)
    at = open_page("subject")
    button = next(b for b in at.button if b.label.startswith("Run "))
    assert "every volume" in button.label
    button.click().run()
    no_exception(at, "subject")
    stored = next((home_copy / "registry").rglob("inference/*/*/sub-01.all.tsv"))
    table = read_table(stored)
    assert len(table) == n_volumes  # every volume, not only the labelled ones
    n_none = int((table["true"] == "NONE").sum())
    assert 0 < n_none < n_volumes and "NONE" not in set(table["pred"])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Volumes run"] == f"{n_volumes:,}", metrics
    assert f"{n_volumes - n_none:,} labelled with an emotion + {n_none:,} NONE" in texts(
        at, "caption"
    )
    assert metrics["Balanced accuracy (labelled volumes)"].endswith("%"), metrics
    captions = texts(at, "caption")
    assert "NONE (no emotion labelled)" in captions and "leave the NONE volumes out" in captions
    assert timeline_spec(at, "What the model called the") is not None
    names = {t.get("name") for t in timeline_spec(at, "on every volume")["data"]}
    assert "NONE (no emotion labelled)" in names or "NONE volume (no correct answer)" in names
