"""Every dashboard page through app.py (AppTest): renders, shows split + chance, fails gracefully."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from emocore.runs.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "overview": "pages/overview.py",
    "subject": "pages/subject.py",
    "emotion-accuracy": "pages/emotion-accuracy.py",
    "brain-viewer": "pages/brain-viewer.py",
    "misclassified": "pages/misclassified.py",
    "representations": "pages/representations.py",
    "annotations": "pages/annotations.py",
    "retrain": "pages/retrain.py",
    "assess": "pages/assess.py",
    "report": "pages/report.py",
}
ACCURACY_PAGES = ("subject", "emotion-accuracy", "misclassified")


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    if name != "overview":
        at.switch_page(PAGES[name])
        at.run()
    return at


def texts(at: AppTest, *kinds: str) -> str:
    parts = []
    for kind in kinds:
        parts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    return "\n".join(parts)


def no_exception(at: AppTest, name: str) -> None:
    assert not at.exception, f"{name}: {[e.value for e in at.exception]}"


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders(name: str, demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    at = open_page(name)
    no_exception(at, name)
    assert not at.error, f"{name}: {[e.value for e in at.error]}"
    assert at.title, f"{name} has no title"


@pytest.mark.parametrize("name", ACCURACY_PAGES)
def test_accuracy_pages_name_split_and_chance(name: str, demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    at = open_page(name)
    captions = texts(at, "caption")
    assert "Split:" in captions and "chance" in captions, captions


def test_overview_shows_source_models_and_notice(demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    at = open_page("overview")
    assert "Research use only" in texts(at, "warning")
    assert "Demo cohort" in texts(at, "markdown")
    assert any(m.label == "People in the cache" and m.value == "2" for m in at.metric)
    table = at.dataframe[0].value
    assert {"design · split", "chance", "balanced accuracy", "95 % interval", "p"} <= set(
        table.columns
    )
    assert (
        table["chance"].str.contains("perm.").all()
        and table["p"].str.match(r"(< 0\.001|[01]\.\d{3})$").all()
    )
    assert len(table.columns) <= 8, "the headline table must fit a 1280-px window"


def _as_before_bids_names(home: Path) -> None:
    """Rename the run's saliency maps to the names runs had before BIDS derivatives
    (``saliency/<design>/<model>_<EMOTION>.nii.gz``, no sidecars) and record those names."""
    reg = Registry(home / "registry")
    folder = reg.run_dir(reg.list_runs()["id"][0])
    study = json.loads((folder / "study.json").read_text())
    for design, models in study["saliency"].items():
        for model, maps in models.items():
            for emotion, entry in maps.items():
                old = f"{model}_{emotion}.nii.gz"
                (folder / "saliency" / design / entry["file"]).rename(
                    folder / "saliency" / design / old
                )
                entry["file"] = old
    for leftover in (folder / "saliency").rglob("*.json"):
        leftover.unlink()
    (folder / "study.json").write_text(json.dumps(study))


@pytest.mark.parametrize("before_bids", [False, True], ids=["bids-names", "old-names"])
def test_brain_viewer_shows_the_saliency_maps(
    before_bids: bool, home_copy: Path, emocore_env
) -> None:
    if before_bids:
        _as_before_bids_names(home_copy)
    emocore_env(home_copy)
    at = open_page("brain-viewer")
    no_exception(at, "brain-viewer")
    assert "No saliency map" not in texts(at, "info")
    assert any(s.value.startswith("Mean saliency per emotion") for s in at.subheader)
    assert "Maximum-intensity projections" in texts(at, "caption")


def test_report_page_builds_and_offers_the_html(home_copy: Path, emocore_env) -> None:
    emocore_env(home_copy)
    at = open_page("report")
    next(b for b in at.button if b.label.startswith("Build report")).click().run()
    no_exception(at, "report")
    assert "Saved to" in texts(at, "success")
    reg = Registry(home_copy / "registry")
    run_id = reg.list_runs()["id"][0]
    html = (reg.run_dir(run_id) / "reports" / "sub-01.html").read_text()
    assert "sub-01" in html and "chance" in html
    assert at.get("download_button"), "no download button after building the report"
    from emocore.reporting.report import chromium_path

    if chromium_path() is not None:  # the PDF is printed with the report
        assert (reg.run_dir(run_id) / "reports" / "sub-01.pdf").read_bytes()[:4] == b"%PDF"
        labels = [b.proto.label for b in at.get("download_button")]
        assert "Download sub-01.pdf" in labels, labels


def test_report_page_says_when_pdf_is_unavailable(
    home_copy: Path, emocore_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emocore.reporting.report

    monkeypatch.setattr(emocore.reporting.report, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setenv("PATH", "/nonexistent")
    emocore_env(home_copy)
    at = open_page("report")
    next(b for b in at.button if b.label.startswith("Build report")).click().run()
    no_exception(at, "report")
    assert "PDF export is not available on this machine" in texts(at, "info")


def test_retrain_offers_the_form(demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    at = open_page("retrain")
    assert any("Epochs" in n.label for n in at.number_input)
    assert any(b.label.startswith("Start") for b in at.button)
    assert "completed" in at.dataframe[-1].value["status"].tolist()


# -- error states ------------------------------------------------------------------------------
def test_empty_home_offers_the_demo_button(tmp_path: Path, emocore_env) -> None:
    emocore_env(tmp_path / "empty")
    at = open_page("overview")
    no_exception(at, "overview")
    assert any(b.label.startswith("Build the demo") for b in at.button)
    assert not (tmp_path / "empty").exists(), "opening the dashboard must not create folders"


@pytest.mark.parametrize("name", [n for n in PAGES if n != "overview"])
def test_empty_home_other_pages_explain(name: str, tmp_path: Path, emocore_env) -> None:
    emocore_env(tmp_path / "empty")
    at = open_page(name)
    no_exception(at, name)
    assert at.info or at.warning, f"{name} shows no explanation on an empty home"
    assert not at.error, f"{name}: {[e.value for e in at.error]}"


@pytest.mark.parametrize("name", ["subject", "emotion-accuracy", "report"])
def test_corrupt_study_json_is_named(name: str, home_copy: Path, emocore_env) -> None:
    emocore_env(home_copy)
    study = next((home_copy / "registry" / "runs").glob("*/study.json"))
    study.write_text("{ not json")
    at = open_page(name)
    no_exception(at, name)
    assert any("study.json" in e.value for e in at.error), texts(at, "error", "info")


@pytest.mark.parametrize("name", ["overview", "brain-viewer"])
def test_missing_cache_is_named(name: str, home_copy: Path, emocore_env) -> None:
    emocore_env(home_copy)
    shutil.rmtree(home_copy / "cache")
    at = open_page(name)
    no_exception(at, name)
    shown = texts(at, "error", "info", "warning")
    assert "manifest.json" in shown, shown


def test_overview_lists_a_corrupt_run_without_failing(home_copy: Path, emocore_env) -> None:
    emocore_env(home_copy)
    study = next((home_copy / "registry" / "runs").glob("*/study.json"))
    study.write_text(json.dumps([1, 2]))
    at = open_page("overview")
    no_exception(at, "overview")
    assert any("study.json" in e.value for e in at.error)


def test_subject_inference_is_labelled_in_sample(home_copy: Path, emocore_env) -> None:
    emocore_env(home_copy)
    at = open_page("subject")
    assert "held-out" in texts(at, "header", "subheader")
    # the page opens on the design shown (loso: the fold model that held sub-01 out); their own
    # single-subject model was trained on these volumes
    assert next(s for s in at.selectbox if s.label == "Stored model").value == "loso/sub-01"
    choose(at, "Stored model", "single-subject/sub-01")
    next(b for b in at.button if b.label.startswith("Run ")).click().run()
    no_exception(at, "subject")
    assert any("In-sample" in w.value for w in at.warning), texts(at, "warning", "info", "error")
    # the caption says how fast it ran and what the fast path did (CPU here: fp32, folded BN)
    caption = texts(at, "caption")
    assert "volumes/s) on cpu" in caption and "batch norm folded" in caption, caption


# -- single-case findings ----------------------------------------------------------------------
PLANTED = "sub-05's LOVE volumes were decoded as SADNESS"


def choose(at: AppTest, label: str, value: str) -> AppTest:
    next(s for s in at.selectbox if s.label == label).set_value(value).run()
    return at


def verdict_sentence(home: Path, subject: str) -> str:
    """The verdict sentence the run holds for ``subject`` (what every page must show first)."""
    from emocore.runs.results import RunResults

    registry = Registry(home / "registry")
    verdict = RunResults(registry, registry.list_runs()["id"][0]).verdict(subject)
    assert verdict is not None
    return str(verdict["sentence"])


def leading(at: AppTest, n: int = 3) -> list[tuple[str, str]]:
    """The first ``n`` elements of the main area after the title, as (type, text)."""
    shown = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            if len(shown) >= n + 1:
                return
            if child.type in ("vertical", "horizontal", "column", "flex_container"):
                walk(child)
            else:
                value = "" if child.type in ("dataframe", "plotly_chart") else child.value
                shown.append((child.type, str(value or "")))

    walk(at.main)
    assert shown and shown[0][0] == "title", shown
    return shown[1 : n + 1]


def test_subject_page_states_the_finding(findings_home: Path, emocore_env) -> None:
    emocore_env(findings_home)
    # a typical person (sub-01, the first): no evidence, in the primary analysis (loso)
    at = open_page("subject")
    no_exception(at, "subject")
    assert next(s for s in at.selectbox if s.label == "Design").value == "loso"
    shown = texts(at, "markdown")
    assert "sub-01's emotions were decoded correctly" in shown, shown
    assert (
        "No evidence of atypical decoding for sub-01 at α = 0.05 in the primary analysis" in shown
    )
    assert "atypical at" not in texts(at, "warning")
    assert "No evidence of atypical decoding for sub-01" in texts(at, "info")  # the verdict
    # the planted person: the flagged findings first, each with its chart
    at = choose(at, "Subject", "05")
    no_exception(at, "subject")
    flagged = texts(at, "warning")
    assert PLANTED in flagged and "atypical at α = 0.05" in flagged, flagged
    shown = texts(at, "markdown", "caption")
    assert "3 of 26 tests of sub-05 atypical at α = 0.05 in the primary analysis (loso" in shown
    assert "in the verdict's order fixed in advance" in shown and "Holm" not in shown
    assert "one fold: no spread" in shown and "Split: **leave-one-subject-out**" in shown
    # the flags of the other design are named, as exploratory
    assert "Exploratory (not part of the verdict" in shown and "single-subject (CNN)" in shown
    assert len(at.get("plotly_chart")) >= 4  # cohort, one per flagged finding, timeline
    assert "LOVE decoded correctly" in set(at.dataframe[0].value["measure"])
    # the other design, one click away: labelled exploratory, Holm-adjusted
    design = next(s for s in at.selectbox if s.label == "Design")
    assert (
        design.format_func("single-subject")
        == "single-subject (exploratory: not part of the verdict)"
    )
    at = choose(at, "Design", "single-subject")
    no_exception(at, "subject")
    shown = texts(at, "markdown", "caption")
    assert "2 of 26 tests of sub-05 atypical at α = 0.05 in single-subject" in shown, shown
    assert "**single-subject** is exploratory: not part of the verdict" in shown
    assert "Exploratory: Holm-adjusted" in shown and "fold-to-fold SD of balanced accuracy" in shown
    # the verdict still leads, from the primary analysis
    assert leading(at, 2)[1] == ("warning", verdict_sentence(findings_home, "05"))


def test_misclassified_page_shows_recall_and_top_confusion(
    findings_home: Path, emocore_env
) -> None:
    emocore_env(findings_home)
    at = choose(open_page("misclassified"), "Subject", "05")
    no_exception(at, "misclassified")
    boxes = {b.label: b.value for b in at.selectbox}
    assert boxes["Design"] == "loso" and boxes["Emotion"] == "LOVE"  # the verdict's
    flagged = texts(at, "warning")
    assert PLANTED in flagged and "of sub-05's LOVE volumes were decoded correctly" in flagged, (
        flagged
    )
    captions = texts(at, "caption")
    assert "one fold: no spread" in captions, captions
    assert "Split: **leave-one-subject-out**" in captions
    assert "Atypicality" not in texts(at, "subheader")
    # the statistics (and the Jensen-Shannon distance) are in the details, not in front
    assert "Jensen-Shannon" not in texts(at, "markdown", "warning")
    details = next(e for e in at.expander if e.label == "The statistics behind these sentences")
    inside = texts(details, "caption", "markdown")
    assert "Jensen-Shannon distance" in inside and "t(6) = 12.25" in inside, inside


def test_overview_lists_the_flagged_people(findings_home: Path, emocore_env) -> None:
    """First under the title: who is flagged, for what, with the sentence; the others in one
    line; the exploratory flags apart, collapsed; paths and the cache key in details."""
    emocore_env(findings_home)
    at = open_page("overview")
    no_exception(at, "overview")
    first = leading(at, 4)
    assert first[0][0] == "warning" and "Research use only" in first[0][1]  # the notice
    assert first[1][1].startswith("Verdicts of run")
    assert first[2][0] == "dataframe", first
    table = at.dataframe[0].value
    assert table[["person", "verdict", "for what"]].to_dict("records") == [
        {
            "person": "sub-05",
            "verdict": "atypical decoding",
            "for what": "LOVE decoded as SADNESS · LOVE decoded correctly less often (+ 1 more)",
        }
    ]
    assert first[3] == ("warning", verdict_sentence(findings_home, "05"))
    clear = texts(at, "info")
    assert "No evidence of atypical decoding** for 7 people (sub-01, sub-02" in clear, clear
    assert "What it could have found, with 7 others" in clear
    assert "Primary analysis, named before the results: leave-one-subject-out CNN" in texts(
        at, "caption"
    )
    exploratory = next(e for e in at.expander if e.label.startswith("Exploratory flags"))
    assert "exploratory: not part of the verdict" in exploratory.label
    flags = exploratory.dataframe[0].value
    assert set(flags["design"]) == {"single-subject"} and set(flags["subject"]) == {"sub-05"}
    assert {"split", "others' range", "adjusted p", "sentence"} <= set(flags.columns)
    assert "Holm-adjusted within each person" in texts(exploratory, "markdown")
    # folders and the cache key are in details, below
    source = next(m.value for m in at.markdown if m.value.startswith("**Data source:**"))
    assert "`" not in source and "key" not in texts(at, "caption")
    where = next(e for e in at.expander if e.label.startswith("Where the data is"))
    assert "key `" in texts(where, "markdown")


@pytest.mark.parametrize("name", ["subject", "misclassified", "emotion-accuracy", "brain-viewer"])
def test_every_page_about_a_person_leads_with_the_same_verdict(
    name: str, findings_home: Path, emocore_env
) -> None:
    """/<page>?subject=05: the verdict (as the run holds it) right under the title, then the
    primary analysis named; the design shown is the primary analysis' (loso)."""
    emocore_env(findings_home)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params["subject"] = "05"
    at.switch_page(PAGES[name]).run()
    no_exception(at, name)
    assert leading(at, 2) == [
        ("markdown", "#### Verdict on sub-05"),
        ("warning", verdict_sentence(findings_home, "05")),
    ]
    assert "Primary analysis, named before the results: leave-one-subject-out CNN" in texts(
        at, "caption"
    )
    designs = [s for s in [*at.selectbox, *at.sidebar.selectbox] if s.label == "Design"]
    assert designs and all(d.value == "loso" for d in designs)
    if name == "emotion-accuracy":  # the primary analysis' tab first, the others exploratory
        tabs = [t.label for t in at.tabs]
        assert tabs[0] == "loso (primary)" and tabs[1] == "single-subject (exploratory)", tabs


def test_no_evidence_is_an_information_not_an_all_clear(findings_home: Path, emocore_env) -> None:
    emocore_env(findings_home)
    at = open_page("misclassified")  # sub-01
    sentence = verdict_sentence(findings_home, "01")
    assert sentence.startswith("No evidence of atypical decoding for sub-01")
    assert leading(at, 2) == [("markdown", "#### Verdict on sub-01"), ("info", sentence)]
    assert not at.success and "What it could have found" in sentence


def test_two_people_are_too_few_for_single_case_tests(demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    at = open_page("overview")
    assert "Not tested: sub-01, sub-02. sub-01 was not tested" in texts(at, "info")
    assert "Too few people for single-case tests" in texts(at, "markdown")  # the exploratory
    at.switch_page(PAGES["misclassified"]).run()
    no_exception(at, "misclassified")
    shown = texts(at, "info")
    assert "sub-01 was not tested: a single-case test needs at least 5" in shown  # the verdict
    assert "too little power here and nothing is flagged" in shown


@pytest.mark.parametrize("name", ["overview", "subject", "misclassified"])
def test_a_run_from_before_the_findings_says_so(name: str, old_run_home: Path, emocore_env) -> None:
    """A run from before verdicts still gets one, computed from its held-out predictions, and
    says that it predates named primary analyses; its other designs have no tests to show."""
    emocore_env(old_run_home)
    at = open_page(name)
    no_exception(at, name)
    assert not at.error, [e.value for e in at.error]
    captions = texts(at, "caption")
    assert "this run predates named primary analyses, so the default is used: every person" in (
        captions
    ), captions
    if name == "overview":
        assert at.dataframe[0].value["person"].tolist() == ["sub-05"]
        return
    assert leading(at, 2) == [
        ("markdown", "#### Verdict on sub-01"),
        ("info", verdict_sentence(old_run_home, "01")),
    ]
    at = choose(at, "Design", "single-subject")
    no_exception(at, name)
    notice = texts(at, "info")
    assert "predates single-case findings" in notice and "emocore study" in notice, notice


# -- assessing a new person ------------------------------------------------------------------
@pytest.fixture(scope="module")
def newcomer_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished study of sub-01 and sub-02; sub-03 is in the dataset, not in the cache."""
    from emocore.data.prepare import prepare_cache
    from emocore.data.synthetic import SynthConfig, generate_cohort
    from emocore.training.train import TrainConfig
    from emocore.workflows.demo import demo_paths
    from emocore.workflows.study import StudyConfig, run_study

    root = tmp_path_factory.mktemp("emocore-newcomer")
    paths = demo_paths(root)
    generate_cohort(paths["cohort"], SynthConfig(n_subjects=3, grid_mm=12.0))
    cache = prepare_cache(
        paths["cohort"], paths["annotations"], paths["cache"], subjects=["01", "02"]
    )
    config = StudyConfig(
        designs=("single-subject", "loso"),
        n_folds=2,
        n_permutations=20,
        baseline=False,
        saliency=False,
        train=TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu"),
    )
    run_study(cache, Registry(paths["registry"]), config)
    return root


def test_assess_page_adds_and_assesses_a_new_person(newcomer_home: Path, emocore_env) -> None:
    from emocore.workflows import jobs

    emocore_env(newcomer_home)
    at = open_page("assess")
    no_exception(at, "assess")
    person = next(b for b in at.selectbox if b.label == "Person")
    assert person.options == ["sub-03"]  # only the person outside the cohort is offered
    next(b for b in at.button if b.label.startswith("Assess")).click().run()
    no_exception(at, "assess")
    registry = Registry(newcomer_home / "registry")
    job = registry.list_runs(kind="assess")["id"][0]
    assert jobs.wait_job(registry, job, timeout_s=240).status == "completed", jobs.job_log(
        registry, job
    )
    at.run()
    no_exception(at, "assess")
    shown = texts(at, "markdown", "info", "caption")
    assert "sub-03" in shown
    assert "at least 5" in shown  # two people in the cohort: too few for single-case tests
    assert "03" in json.loads((newcomer_home / "cache" / "manifest.json").read_text())["subjects"]
    # the person's verdict, from the assessment, leads what the page says of them
    verdict = json.loads(
        (registry.run_dir(registry.list_runs(kind="study")["id"][0]) / "assessments" / "sub-03"
         / "assessment.json").read_text()
    )["verdict"]  # fmt: skip
    assert "#### Verdict on sub-03" in texts(at, "markdown")
    assert verdict["sentence"] in texts(at, "info")
    # not assessed twice by accident: the page says so, and replacing is a separate button
    assert "sub-03 was already assessed against run" in shown and "assess again to replace" in shown
    again = next(b for b in at.button if b.label.startswith("Assess sub-03 again"))
    again.click().run()
    no_exception(at, "assess")
    second = registry.list_runs(kind="assess")["id"][0]
    assert second != job and registry.get_run(second).config["force"] is True
    assert jobs.wait_job(registry, second, timeout_s=240).status == "completed", jobs.job_log(
        registry, second
    )
    folder = registry.run_dir(registry.list_runs(kind="study")["id"][0])
    stored = json.loads((folder / "assessments" / "sub-03" / "assessment.json").read_text())
    assert stored["assess_run_id"] == second  # replaced, not reused


def test_every_change_of_the_subject_picker_sticks_and_follows_to_other_pages(
    findings_home: Path, emocore_env
) -> None:
    """An unkeyed picker whose index followed the last choice dropped every second change."""
    emocore_env(findings_home)
    at = open_page("misclassified")

    def picker():
        return next(s for s in at.selectbox if s.label == "Subject")

    for subject in ("03", "05", "07", "02"):
        picker().select(subject).run()
        no_exception(at, "misclassified")
        assert picker().value == subject
        assert f"volumes of sub-{subject} (n=" in texts(at, "markdown")
    at.switch_page(PAGES["subject"])
    at.run()
    assert picker().value == "02"


def test_training_curves_are_balanced_against_one_over_k(demo_home: Path, emocore_env) -> None:
    emocore_env(demo_home)
    at = open_page("emotion-accuracy")
    no_exception(at, "emotion-accuracy")
    assert "Held-out balanced accuracy per epoch, against chance 1/5 classes" in texts(
        at, "caption"
    )
    assert "What each outer fold used" in texts(at, "markdown")


def test_a_run_recorded_before_balanced_curves_falls_back(home_copy: Path, emocore_env) -> None:
    """curves.tsv without val_balanced_acc (an older run): plain accuracy, majority chance."""
    import pandas as pd

    reg = Registry(home_copy / "registry")
    path = reg.run_dir(reg.list_runs(kind="study")["id"][0]) / "curves.tsv"
    old = pd.read_csv(path, sep="\t").drop(columns="val_balanced_acc", errors="ignore")
    old.to_csv(path, sep="\t", index=False)
    emocore_env(home_copy)
    at = open_page("emotion-accuracy")
    no_exception(at, "emotion-accuracy")
    assert "recorded before balanced accuracy was logged per epoch" in texts(at, "caption")


def test_emotion_accuracy_reads_a_run_without_curves(findings_home: Path, emocore_env) -> None:
    """A run that logged no training curves (evaluated from stored predictions) still shows its
    held-out result: a sentence where the curves would be, not an error over the whole page; the
    cell table opens on the person's most frequent error, not an empty cell."""
    emocore_env(findings_home)
    at = open_page("emotion-accuracy")
    no_exception(at, "emotion-accuracy")
    assert not at.error, [e.value for e in at.error]
    assert "logged no training curves" in texts(at, "caption")
    boxes = {b.label: b.value for b in at.selectbox}
    assert boxes["True emotion"] != boxes["Predicted as"]
    assert "· 0 volumes;" not in texts(at, "caption")
