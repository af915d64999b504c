"""The per-subject HTML report, on a hand-made results bundle (no training)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emocore import __version__
from emocore.constants import EMOTIONS
from emocore.errors import ConfigError, EmocoreError
from emocore.registry import Registry
from emocore.report import subject_report_html, write_subject_report
from emocore.results import read_table

SUBJECTS = ["01", "02", "03"]


def _predictions(rng: np.random.Generator, design: str, split: str) -> pd.DataFrame:
    rows = []
    for subject in SUBJECTS:
        for run in (1, 2):
            for volume in range(30):
                true = EMOTIONS[(volume // 6) % 5]
                pred = true if rng.random() < 0.5 else EMOTIONS[rng.integers(5)]
                probs = rng.dirichlet(np.ones(5))
                rows.append(
                    {
                        "design": design,
                        "subject": subject,
                        "run": run,
                        "volume": volume,
                        "movie_time": 900.0 * (run - 1) + 2 * volume,
                        "scene": volume // 10 + 1,
                        "scene_location": f"PLACE {volume // 10}",
                        "true": true,
                        "pred": pred,
                        **{f"prob_{c}": p for c, p in zip(EMOTIONS, probs, strict=True)},
                        "fold": run - 1,
                        "seen": design != "loso",
                        "split": split,
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture
def bundle(tmp_path: Path, rng: np.random.Generator) -> tuple[Registry, str]:
    registry = Registry(tmp_path / "registry")
    run = registry.create_run(kind="study", split="leave-one-run-out", subjects=SUBJECTS)
    folder = registry.run_dir(run.id)
    table = pd.concat(
        [
            _predictions(rng, "single-subject", "leave-one-run-out"),
            _predictions(rng, "loso", "leave-one-subject-out"),
        ]
    )
    table.to_csv(folder / "predictions.tsv", sep="\t", index=False)
    results = [
        {
            "model": "cnn",
            "design": d,
            "split": s,
            "balanced_accuracy": 0.41,
            "chance_balanced_accuracy": 0.19,
            "p_value": 0.002,
        }
        for d, s in (("single-subject", "leave-one-run-out"), ("loso", "leave-one-subject-out"))
    ]
    study = {
        "run_id": run.id,
        "emocore_version": __version__,
        "cache": {
            "path": "cache",
            "key": "abc123-def456",
            "grid": [7, 8, 9],
            "options": {"lag_s": 4.0, "recipe": "poster"},
        },
        "config": {"designs": ["single-subject", "loso"], "train": {"epochs": 2}},
        "classes": list(EMOTIONS),
        "subjects": SUBJECTS,
        "results": results,
    }
    (folder / "study.json").write_text(json.dumps(study))
    registry.update(run.id, status="running")
    registry.set_status(run.id, "completed")
    return registry, run.id


def test_report_names_version_split_chance_and_provenance(bundle) -> None:
    registry, run_id = bundle
    html = subject_report_html(registry, run_id, "02")
    assert html.lstrip().lower().startswith("<!doctype html>")
    for text in (
        "sub-02",
        run_id,
        __version__,
        "abc123-def456",
        "poster",
        "Research use only",
        "leave-one-run-out",
        "leave-one-subject-out",
        "chance",
        "Misclassified scenes",
        "Single-case tests",
        "volumes of sub-02 (n=",
    ):
        assert text in html, text
    assert "sub-01</h1>" not in html


def test_report_is_offline_safe(bundle) -> None:
    registry, run_id = bundle
    html = subject_report_html(registry, run_id, "sub-01")  # the prefix is accepted
    assert not re.search(r"<script[^>]*\bsrc=", html), "the report loads a script from outside"
    assert html.count("Plotly.newPlot") >= 2  # several figures ...
    assert html.count("plotly.js v") <= 2  # ... but the library once


def test_write_report_stores_and_records_it(bundle) -> None:
    registry, run_id = bundle
    path = write_subject_report(registry, run_id, "03")
    assert path == registry.run_dir(run_id) / "reports" / "sub-03.html"
    assert "sub-03" in path.read_text()
    artifacts = registry.artifacts(run_id)
    assert artifacts.set_index("name").loc["report/sub-03", "kind"] == "report"
    assert not list(path.parent.glob(".*.tmp"))


def test_unknown_subject_names_the_ones_there(bundle) -> None:
    registry, run_id = bundle
    with pytest.raises(ConfigError, match=r"sub-09 is not in run .*sub-01, sub-02, sub-03"):
        subject_report_html(registry, run_id, "09")


def test_damaged_or_missing_study_json_is_named(bundle) -> None:
    registry, run_id = bundle
    study = registry.run_dir(run_id) / "study.json"
    study.write_text("{ not json")
    with pytest.raises(EmocoreError, match=r"study\.json is damaged"):
        subject_report_html(registry, run_id, "01")
    study.unlink()
    with pytest.raises(EmocoreError, match=r"has no study\.json"):
        subject_report_html(registry, run_id, "01")


def test_read_table_keeps_subject_labels_as_text(bundle) -> None:
    registry, run_id = bundle
    table = read_table(registry.run_dir(run_id) / "predictions.tsv")
    assert sorted(table["subject"].unique()) == SUBJECTS


# -- single-case findings ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def findings_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, str]:
    """Eight people through the real evaluation (sub-05 takes LOVE for SADNESS); the cohort's
    permutation p set to 1/1001, the value a 1000-permutation study reports at best."""
    from tests.conftest import write_findings_run

    registry = Registry(tmp_path_factory.mktemp("findings") / "registry")
    run_id = write_findings_run(registry)
    path = registry.run_dir(run_id) / "study.json"
    study = json.loads(path.read_text())
    for result in study["results"]:
        result["p_value"] = 1 / 1001
    path.write_text(json.dumps(study))
    return registry, run_id


def _findings_section(html: str) -> str:
    start = html.index("<section id='findings'>")
    return html[start : html.index("</section>", start)]


def test_report_opens_with_the_persons_findings(findings_bundle) -> None:
    registry, run_id = findings_bundle
    html = subject_report_html(registry, run_id, "05")
    section = _findings_section(html)
    # right after the title and the research notice, before anything else
    assert html.index("Research use only") < html.index(section) < html.index("Model and data")
    assert "4 atypical findings for sub-05 at α = 0.05" in section
    for design in ("single-subject", "loso"):
        assert f"2 of 26 tests of sub-05 atypical at α = 0.05 in {design}, CNN" in section
    assert "No atypical finding for sub-05 at α = 0.05 in loso, linear" in section
    assert section.count("<li>") == 4
    assert "% of sub-05&#x27;s LOVE volumes were decoded as SADNESS, against" in section
    assert "{" not in section and "}" not in section, "raw JSON in the findings"
    # each design section has the person's table and fold stability
    assert html.count("Single-case tests: sub-05 against the other people") == 2
    assert "<th>Holm p</th>" in html and "<td>LOVE-&gt;SADNESS</td>" in html
    assert "one fold: no spread" in html and "fold-to-fold SD of balanced accuracy" in html


def test_report_writes_p_values_and_rates_for_people(findings_bundle) -> None:
    registry, run_id = findings_bundle
    html = subject_report_html(registry, run_id, "05")
    body = html[html.index("<body>") : html.index("<script")]  # the text before the figures
    assert not re.search(r"0\.000\d", body), "a p-value written as 0.000999..."
    assert not re.search(r"\d(\.\d+)?e-\d", body), "a number in scientific notation"
    assert "p &lt; 0.001" in body and "p < 0.001" not in body  # written, and escaped
    assert not re.search(r"<td>0\.\d{4,}</td>", body), "a raw rate instead of a percentage"


def test_report_of_a_typical_person_says_no_finding(findings_bundle) -> None:
    registry, run_id = findings_bundle
    section = _findings_section(subject_report_html(registry, run_id, "02"))
    assert "No atypical finding for sub-02 at α = 0.05 (104 tests in 2 designs × 2 model" in section
    assert "<li>" not in section


def test_report_of_a_run_before_the_findings_says_so(bundle) -> None:
    registry, run_id = bundle
    section = _findings_section(subject_report_html(registry, run_id, "02"))
    assert "predates single-case findings" in section and "emocore study" in section


def test_report_provenance_is_a_table_of_settings_not_json(bundle) -> None:
    registry, run_id = bundle
    html = subject_report_html(registry, run_id, "02")
    start = html.index("<h2>Model and data</h2>")
    provenance = html[start : html.index("<h2>", start + 1)]
    assert "{" not in provenance and "&quot;" not in provenance, "raw JSON in the provenance"
    for row in (
        "<th>hemodynamic lag (s)</th><td>4.0</td>",
        "<th>label recipe</th><td>poster</td>",
        "<th>designs</th><td>single-subject, loso</td>",
        "<th>train · epochs</th><td>2</td>",
    ):
        assert row in provenance, row
    assert "@media print" in html and "break-inside:avoid" in html


def test_report_prints_on_a4_and_its_scenes_read_like_the_dashboard(bundle) -> None:
    """Print CSS: A4, plotly's toolbar hidden, a design's heading, recall table and chart kept
    on one page; the misclassified scenes formatted as on the Misclassified scenes page."""
    registry, run_id = bundle
    html = subject_report_html(registry, run_id, "02")
    assert "size:A4" in html and ".modebar-container{display:none" in html
    assert html.count('<div class="keep"><h2>') == 2  # one per design
    scenes = [
        part.split("<h3>Movie timeline</h3>")[0]
        for part in html.split("<h3>Misclassified scenes</h3>")[1:]
    ]
    assert len(scenes) == 2
    shown = [part for part in scenes if "<table" in part]
    assert shown, "no misclassified scenes in the fixture"
    for part in shown:
        assert "<th>predicted as</th>" in part and "most_common" not in part
        assert re.search(r"<td>run \d+ · \d+:\d\d", part), part[:500]
        assert re.search(r"<td>[A-Z]+ \(\d+ %\)</td>", part), part[:500]


def test_settings_rows_reads_like_a_form() -> None:
    from emocore.report import settings_rows

    rows = settings_rows({"class_weights": True, "seed": None, "model": {"depth": 3}, "runs": []})
    assert rows == [
        ("class weights", "yes"),
        ("seed", "not set"),
        ("model · depth", "3"),
        ("runs", "not set"),
    ]
    # the cache's options in words: none of them reads as a fault on paper
    words = dict(
        settings_rows({"nonfinite": "error", "grid_mm": None, "high_pass": 0.008, "subjects": None})
    )
    assert words == {
        "NaN/Inf voxel values": "refused",
        "voxel size (mm)": "the data's own",
        "high-pass cut-off (Hz)": "0.008",
        "people": "everyone in the cache",
    }


# -- PDF -----------------------------------------------------------------------------------------
def test_render_pdf_prints_the_report(bundle, tmp_path: Path) -> None:
    from emocore.report import chromium_path, render_pdf

    if chromium_path() is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    registry, run_id = bundle
    html_path = write_subject_report(registry, run_id, "01")
    pdf = render_pdf(html_path)
    assert pdf == html_path.with_suffix(".pdf")
    data = pdf.read_bytes()
    assert data[:4] == b"%PDF" and len(data) > 5_000, len(data)
    assert not list(pdf.parent.glob(".*.partial"))


def test_render_pdf_without_chromium_is_none(bundle, monkeypatch) -> None:
    import emocore.report as report

    monkeypatch.setattr(report, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setenv("PATH", "/nonexistent")
    registry, run_id = bundle
    assert report.render_pdf(write_subject_report(registry, run_id, "01")) is None


def test_render_pdf_of_a_missing_report_is_named(tmp_path: Path) -> None:
    from emocore.report import render_pdf

    with pytest.raises(ConfigError, match="no report at .*missing.html"):
        render_pdf(tmp_path / "missing.html")
