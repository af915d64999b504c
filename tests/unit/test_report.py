"""The per-subject HTML report, on a hand-made results bundle (no training)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from emocore import __version__
from emocore.constants import EMOTIONS
from emocore.errors import ConfigError, EmocoreError
from emocore.reporting.report import CSP, subject_report_html, write_subject_report
from emocore.runs.registry import Registry
from emocore.runs.results import read_table
from emocore.stats.verdict import EXPLORATORY

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


def test_report_is_offline_safe_and_runs_no_script(bundle) -> None:
    registry, run_id = bundle
    html = subject_report_html(registry, run_id, "sub-01")  # the prefix is accepted
    assert "<script" not in html.lower(), "the report needs no script, and has none"
    # the policy that forbids scripts and requests is the first element of <head>
    head = html[html.index("<head>") + len("<head>") :]
    assert head.startswith(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">')
    assert "default-src 'none'" in CSP and "script-src" not in CSP  # none allowed
    charts = re.findall(r"<img\b[^>]*>", html)
    assert len(charts) == 4  # per design: recall bars and timeline
    assert all('src="data:image/svg+xml;base64,' in c for c in charts), charts
    assert "plotly" not in html.lower()


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


def _page_one(html: str) -> str:
    """The first printed page (its section ends in a page break in print)."""
    start = html.index('<section id="page-1">')
    return html[start : html.index("<section id='findings'>", start)]


def test_report_lists_the_findings_per_design_primary_first(findings_bundle) -> None:
    registry, run_id = findings_bundle
    html = subject_report_html(registry, run_id, "05")
    section = _findings_section(html)
    # after page 1 (the verdict), before the provenance
    assert html.index("</section>") < html.index(section) < html.index("Model and data")
    lines = re.findall(r"<p><span class=\"role (\w+)\">([^<]+)</span> ([^<]+)</p>", section)
    assert [role for role, _, _ in lines] == ["primary"] + ["exploratory"] * 3
    assert lines[0][2].startswith("leave-one-subject-out, CNN: the verdict&#39;s 26 tests against")
    assert "others (7)" in lines[0][2] and "3 flagged (page 1)" in lines[0][2]
    assert all(label == EXPLORATORY for role, label, _ in lines if role == "exploratory")
    # the exploratory families in findings' own words (emocore.stats.findings.person_summary)
    for where in ("in single-subject, CNN", "in single-subject, linear", "in loso, linear"):
        assert sum(where in line for _, _, line in lines[1:]) == 1, where
    # the exploratory flags as sentences; the primary analysis' are the verdict's (page 1)
    assert section.count("<li>") == 2 + 3  # + the statistics of the verdict's 3 findings
    assert "% of sub-05&#39;s LOVE volumes were decoded as SADNESS, against" in section
    assert "How the verdict was tested" in section and "Z_CC" in section
    assert "{" not in section and "}" not in section, "raw JSON in the findings"
    # each design section has the person's table and fold stability, the primary's first
    assert html.count("Single-case tests: sub-05 against the other people") == 2
    assert html.index("<h2>loso") < html.index("<h2>single-subject")
    assert "<th>adjusted p</th>" in html  # in the order (primary) or by Holm (exploratory)
    assert re.search(r"<td>LOVE</td>\s*<td>LOVE[^<]*SADNESS</td>", html)  # the person's table
    assert "one fold: no spread" in html and "fold-to-fold SD of balanced accuracy" in html


def test_report_writes_p_values_and_rates_for_people(findings_bundle) -> None:
    registry, run_id = findings_bundle
    html = subject_report_html(registry, run_id, "05")
    body = html[html.index("<body>") :]
    assert not re.search(r"0\.000\d", body), "a p-value written as 0.000999..."
    assert not re.search(r"\d(\.\d+)?e-\d", body), "a number in scientific notation"
    assert "p &lt; 0.001" in body and "p < 0.001" not in body  # written, and escaped
    assert not re.search(r"<td>0\.\d{4,}</td>", body), "a raw rate instead of a percentage"


def test_report_of_a_typical_person_says_no_evidence(findings_bundle) -> None:
    registry, run_id = findings_bundle
    html = subject_report_html(registry, run_id, "02")
    page1 = _page_one(html)
    assert "No evidence of atypical decoding for sub-02" in page1
    assert 'class="verdict flagged"' not in page1 and "typical." not in page1
    section = _findings_section(html)
    assert "0 flagged (page 1)" in section
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
    assert "size:A4" in html and "#page-1{break-after:page" in html
    assert html.count('<div class="keep"><p class="role-line">') == 2  # one per design
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
    from emocore.reporting.report import settings_rows

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


# -- page 1: the verdict -------------------------------------------------------------------------
class _Cache:
    """A stand-in for the cache a report is built with: its key, its manifest's source root,
    and whether it still holds the data of a run that recorded another key."""

    def __init__(self, key: str, root: Path | str = "", *, recognises: bool = True) -> None:
        self.key = key
        self.manifest = {"source": {"root": str(root), "layout": "synthetic"}, "options": {}}
        self._recognises = recognises

    def recognises(self, key: str | None) -> bool:
        return key == self.key or self._recognises

    def source_path(self, what: str = "root") -> Path | None:
        value = self.manifest["source"].get(what)
        return Path(value) if value else None


def _synthetic_root(tmp_path: Path, planted: list[str]) -> Path:
    root = tmp_path / "cohort"
    (root / "ground_truth").mkdir(parents=True)
    (root / "ground_truth" / "cohort.json").write_text(json.dumps({"atypical": planted}))
    return root


def _verdict(registry: Registry, run_id: str, subject: str) -> dict:
    study = json.loads((registry.run_dir(run_id) / "study.json").read_text())
    return next(v for v in study["verdicts"] if v["subject"] == subject)


def test_page_one_is_the_verdict_the_primary_analysis_and_the_detectable_effect(
    findings_bundle, tmp_path: Path
) -> None:
    registry, run_id = findings_bundle
    cache = _Cache("synthetic-findings", _synthetic_root(tmp_path, ["05", "12"]))
    html = subject_report_html(registry, run_id, "05", cache)  # type: ignore[arg-type]
    page1 = _page_one(html)
    verdict = _verdict(registry, run_id, "05")
    sentence = str(escape(verdict["sentence"]))
    assert verdict["status"] == "flagged" and sentence.startswith("Atypical decoding for sub-05")
    # the verdict sentence first: right after the title and the run's line
    body = page1[page1.index("</h1>") :]
    first = re.search(r"<p class=\"sentence\"><b>(.*?)</b></p>", body)
    assert first is not None and first.group(1) == sentence
    assert body.index(sentence) < body.index("<p", body.index("</h1>") + 30) + 200
    assert 'class="verdict flagged"' in page1
    # the primary analysis in words, and the others named as others (n)
    assert "Primary analysis, named before the results: leave-one-subject-out CNN" in page1
    assert "Compared with others (7)" in page1 and EXPLORATORY in page1
    # every detectable effect of the order's first steps, in one compact list
    found = verdict["detectable_effect"]
    assert {d["emotion"] for d in found} >= {"LOVE", "FEAR"}
    listed = re.search(r'<ul class="compact">(.*?)</ul>', page1, re.S)
    assert listed is not None
    assert re.findall(r"<li>(.*?)</li>", listed.group(1)) == [
        str(escape(d["sentence"])) for d in found
    ]
    # synthetic: who was planted, and whether this person was
    assert "Synthetic data (planted: sub-05, sub-12).</b>" in page1
    assert "sub-05 was planted." in page1
    # the research notice closes page 1; the rest follows
    assert page1.index("What the test could have found") < page1.index("Research use only")
    assert "Model and data" not in page1 and "Findings per design" not in page1


def test_page_one_says_who_was_planted_and_nothing_on_real_data(
    findings_bundle, tmp_path: Path
) -> None:
    registry, run_id = findings_bundle
    synthetic = _Cache("synthetic-findings", _synthetic_root(tmp_path, ["05"]))
    page1 = _page_one(subject_report_html(registry, run_id, "02", synthetic))  # type: ignore[arg-type]
    assert "Synthetic data (planted: sub-05).</b>" in page1 and "sub-02 was not planted." in page1
    real = _Cache("synthetic-findings", tmp_path / "bids")  # no ground truth: real data
    for cache in (real, None):
        html = subject_report_html(registry, run_id, "02", cache)  # type: ignore[arg-type]
        assert "Synthetic data" not in html and "planted" not in _page_one(html)


def test_provenance_is_the_runs_recorded_cache_key(findings_bundle) -> None:
    registry, run_id = findings_bundle

    def provenance(cache) -> str:
        html = subject_report_html(registry, run_id, "03", cache)
        start = html.index("<h2>Model and data</h2>")
        return html[start : html.index("<h3>", start)]

    row = "<th>cache key (data version, as the run recorded it)</th><td>synthetic-findings</td>"
    same = provenance(_Cache("synthetic-findings"))
    assert row in same and "has changed" not in same
    # a person added since: the run's key stays, one line names the cache's new key
    grown = provenance(_Cache("0123abcd", recognises=True))
    assert row in grown and "0123abcd" not in grown.split("</table>")[0]
    assert "the cache has changed since: now 0123abcd, e.g. a person was added" in grown
    assert grown.count("has changed") == 1
    rebuilt = provenance(_Cache("fedc9876", recognises=False))
    assert row in rebuilt and "now fedc9876, and it no longer holds the data" in rebuilt
    assert row in provenance(None)


def test_every_comparison_is_with_the_others_without_the_person(findings_bundle) -> None:
    from emocore.runs.results import RunResults
    from emocore.stats.summaries import per_subject_metrics

    registry, run_id = findings_bundle
    html = subject_report_html(registry, run_id, "05")
    assert "cohort mean" not in html.lower() and "10 people" not in html
    scores = per_subject_metrics(RunResults(registry, run_id).predictions("loso"))
    others = scores[scores["subject"] != "05"]
    with_me = scores["accuracy_LOVE"].mean()
    mean = others["accuracy_LOVE"].mean()
    assert abs(mean - with_me) > 0.05  # the planted person pulls the mean of all down
    loso = html[html.index("<h2>loso") : html.index("<h2>single-subject")]
    assert "Per emotion (recall): sub-05 vs others (7)" in loso
    assert "<th>others (7): mean</th>" in loso
    assert (
        f"<td>LOVE</td>\n      <td>12.5&nbsp;%</td>\n      <td>{100 * mean:.1f}&nbsp;%</td>" in loso
    )
    mine = scores.set_index("subject").loc["05", "balanced_accuracy"]
    assert f"<b>{100 * mine:.1f} %</b>" in loso and "others (7): mean " in loso
    assert "The model over all 8 people pooled" in loso


# -- escaping -----------------------------------------------------------------------------------
EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def evil_bundle(tmp_path: Path, rng: np.random.Generator) -> tuple[Registry, str]:
    """A run whose subject label, verdict, registry config and cache options carry markup."""
    registry = Registry(tmp_path / "registry")
    people = ["01", "02", EVIL]
    run = registry.create_run(kind="study", split="leave-one-subject-out", subjects=people)
    folder = registry.run_dir(run.id)
    table = _predictions(rng, "loso", "leave-one-subject-out")
    table["subject"] = table["subject"].map(dict(zip(SUBJECTS, people, strict=True)))
    table["scene_location"] = "<script>alert('scene')</script>"
    table.to_csv(folder / "predictions.tsv", sep="\t", index=False)
    script = "<script>document.body.innerText='FORGED'</script>"
    verdict = {
        "subject": EVIL,
        "primary": {"design": "loso", "model": "cnn", "how": "default"},
        "status": "flagged",
        "flagged": [
            {
                "measure": "LOVE->SADNESS",
                "emotion": "LOVE",
                "predicted_as": "SADNESS",
                "details": f"t = 9 {script}",
            }
        ],
        "sentence": f"Atypical decoding for sub-{EVIL}: {script}",
        "detectable_effect": [{"sentence": f"a rate above 40 % {script}", "power": 0.8}],
        "alpha": 0.05,
        "n_others": 2,
        "split": "<b>split</b>",
        "procedure": f"in order {EVIL}",
    }
    study = {
        "run_id": run.id,
        "emocore_version": __version__,
        "cache": {"path": "cache", "key": f"key{script}", "options": {"recipe": script}},
        "config": {"designs": ["loso"], "note": EVIL},
        "classes": list(EMOTIONS),
        "subjects": people,
        "results": [{"model": "cnn", "design": "loso", "split": "leave-one-subject-out"}],
        "primary": verdict["primary"],
        "verdicts": [verdict],
    }
    (folder / "study.json").write_text(json.dumps(study))
    registry.update(run.id, status="running")
    registry.set_status(run.id, "completed")
    return registry, run.id


def test_no_value_from_the_data_reaches_the_html_unescaped(evil_bundle, tmp_path: Path) -> None:
    registry, run_id = evil_bundle
    root = _synthetic_root(tmp_path, [EVIL])
    html = subject_report_html(registry, run_id, EVIL, _Cache("other<script>", root))  # type: ignore[arg-type]
    assert "<script" not in html.lower()
    # the only <img> tags are the report's own charts, data-URI SVG images
    tags = re.findall(r"<img\b[^>]*>", html, re.IGNORECASE)
    assert tags and all(
        t.startswith('<img class="chart" alt="') and 'src="data:image/svg+xml;base64,' in t
        for t in tags
    ), tags
    assert html.count("onerror") == html.count("&lt;img src=x onerror=alert(1)&gt;")
    # ... and the values are there, as text
    assert "Atypical decoding for sub-&lt;img src=x onerror=alert(1)&gt;: &lt;script&gt;" in html
    assert "&lt;b&gt;split&lt;/b&gt;" in html and "<b>split</b>" not in html
    assert "Synthetic data (planted: sub-&lt;img" in html
    assert "(&lt;script&gt;alert('scene')&lt;/script&gt;)" in html  # the scene's location


def test_the_pdf_printer_runs_no_script_of_the_page(tmp_path: Path) -> None:
    """A page printed by render_pdf runs none of its scripts, report or not (chromium prints a
    copy that carries the report's policy): a script that would add 200 paragraphs (so pages)
    and an image whose onerror would do the same leave one page."""
    from emocore.reporting.report import _with_csp, chromium_path, render_pdf

    grow = "for(let i=0;i<200;i++){document.body.append(document.createElement('p'),'FORGED')}"
    page = (
        "<!DOCTYPE html><html><head><title>t</title></head><body><p>one page</p>"
        f'<img src=x onerror="{grow}"><script>{grow}</script></body></html>'
    )
    printed = _with_csp(page)
    assert printed.startswith('<!DOCTYPE html><html><head><meta http-equiv="Content-Security')
    assert _with_csp(printed) == printed
    bare = _with_csp("<p>x</p>")
    assert bare.startswith("<meta http-equiv=") and bare.endswith("<p>x</p>")
    if chromium_path() is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    path = tmp_path / "page.html"
    path.write_text(page)
    pdf = render_pdf(path)
    assert pdf is not None
    assert len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes())) == 1


# -- PDF -----------------------------------------------------------------------------------------
def test_render_pdf_prints_the_report(bundle, tmp_path: Path) -> None:
    from emocore.reporting.report import chromium_path, render_pdf

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
    import emocore.reporting.report as report

    monkeypatch.setattr(report, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setenv("PATH", "/nonexistent")
    registry, run_id = bundle
    assert report.render_pdf(write_subject_report(registry, run_id, "01")) is None


def test_render_pdf_of_a_missing_report_is_named(tmp_path: Path) -> None:
    from emocore.reporting.report import render_pdf

    with pytest.raises(ConfigError, match="no report at .*missing.html"):
        render_pdf(tmp_path / "missing.html")
