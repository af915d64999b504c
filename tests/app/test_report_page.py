"""The Report page through app.py: it leads with the verdict, and the report it builds opens
with it too (page 1), names the run's own cache key and compares with "others (n)"."""

from __future__ import annotations

import json
import re
from pathlib import Path

from emocore.data.cache import VolumeCache
from emocore.data.synthetic import planted_subjects
from emocore.runs.registry import Registry
from tests.app.test_pages import no_exception, open_page, texts


def _build(at, subject: str):
    next(s for s in at.selectbox if s.label == "Subject").set_value(subject).run()
    next(b for b in at.button if b.label.endswith("report")).click().run()
    no_exception(at, "report")
    return at


def test_report_page_leads_with_the_verdict_and_its_report_too(
    findings_home: Path, emocore_env
) -> None:
    emocore_env(findings_home)
    at = _build(open_page("report"), "05")
    registry = Registry(findings_home / "registry")
    run_id = registry.list_runs()["id"][0]
    study = json.loads((registry.run_dir(run_id) / "study.json").read_text())
    verdict = next(v for v in study["verdicts"] if v["subject"] == "05")
    # the page: the same verdict sentence, before the report's buttons
    assert verdict["sentence"] in texts(at, "warning")
    assert "Saved to" in texts(at, "success")
    html = (registry.run_dir(run_id) / "reports" / "sub-05.html").read_text()
    page1 = html[: html.index("<section id='findings'>")]
    sentence = verdict["sentence"].replace("'", "&#39;")
    assert re.search(r'<p class="sentence"><b>([^<]*)</b>', page1).group(1) == sentence
    assert "What the test could have found" in page1
    # the home's cohort is synthetic: page 1 says who was planted
    cache = VolumeCache(findings_home / "cache")
    planted = planted_subjects(cache.manifest["source"]["root"])
    assert planted is not None
    assert f"Synthetic data (planted: {', '.join('sub-' + p for p in planted)})" in page1
    # provenance: the key the run recorded, which is this cache's (no change to report)
    assert f"<td>{study['cache']['key']}</td>" in html and "has changed since" not in html
    assert "others (7)" in html and "cohort mean" not in html
    assert "<script" not in html.lower()


def test_the_subject_pages_chart_compares_with_the_others_too(
    findings_home: Path, emocore_env
) -> None:
    """The Subject page draws the report's comparison with plotly: the same "others (n)"."""
    emocore_env(findings_home)
    at = open_page("subject")
    next(s for s in at.selectbox if s.label == "Subject").set_value("05").run()
    no_exception(at, "subject")
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    bars = next(s for s in specs if "vs others (7)" in str(s["layout"]["title"]["text"]))
    assert [t["name"] for t in bars["data"]] == ["others (7): mean ± SD", "sub-05"]
