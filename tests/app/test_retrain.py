"""The Retrain page through app.py: its form is the retrained study's config, a finished job
shows its headline with split and chance and opens its run, and that run does not become the
default."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from emocore.runs.registry import Registry
from emocore.runs.results import RunResults
from emocore.training.train import TrainConfig
from emocore.workflows.study import StudyConfig

ROOT = Path(__file__).resolve().parents[2]
RETRAIN = "pages/retrain.py"

#: A recorded study whose every setting differs from emocore's defaults where it can.
RECORDED = StudyConfig(
    designs=("single-subject", "cross-subject"),
    subjects=("01", "02"),
    n_folds=2,
    refit=("cross-subject",),
    baseline=False,
    n_permutations=1000,
    alpha=0.01,
    train=TrainConfig(
        epochs=3,
        lr=0.002,
        batch_size=16,
        class_weights=True,
        dropout=0.25,
        seed=7,
        device="cpu",
        compile="off",
        widths=(4, 8, 8),
        hidden=16,
    ),
)


def run_app(page: str | None = None, *, before: str | None = None) -> AppTest:
    """app.py (the Overview), then ``before`` and ``page`` if given."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    for path in (before, page):
        if path:
            at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def widget(at: AppTest, kind: str, label: str):
    return next(w for w in at.get(kind) if w.label == label)


def run_picker(at: AppTest) -> str:
    return widget(at, "selectbox", "Run").value


@pytest.fixture
def recorded_home(home_copy: Path) -> Path:
    """The demo home with its study's recorded config replaced by RECORDED."""
    reg = Registry(home_copy / "registry")
    run_id = reg.list_runs()["id"][0]
    path = reg.run_dir(run_id) / "study.json"
    study = json.loads(path.read_text())
    study["config"] = RECORDED.to_dict()
    path.write_text(json.dumps(study))
    reg.update(run_id, config=RECORDED.to_dict())
    return home_copy


def test_the_form_shows_the_retrained_study_settings_and_passes_them_all(
    recorded_home: Path, emocore_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emocore.workflows import jobs

    emocore_env(recorded_home)
    started: list[StudyConfig] = []

    def start_job(registry, cache, config, **kwargs) -> str:  # records, trains nothing
        started.append(config)
        run = Registry(registry).create_run(kind="train", config=config.to_dict())
        Registry(registry).set_status(run.id, "cancelled", error="a test: never started")
        return run.id

    monkeypatch.setattr(jobs, "start_job", start_job)
    at = run_app(RETRAIN)
    t = RECORDED.train
    shown = {
        ("multiselect", "Designs"): list(RECORDED.designs),
        ("multiselect", "Subjects"): list(RECORDED.subjects),
        ("selectbox", "Split (within a person)"): RECORDED.split,
        ("number_input", "Folds (run groups; empty: one per run)"): RECORDED.n_folds,
        ("checkbox", "Also decode NONE (6 classes)"): RECORDED.include_none,
        ("number_input", "Epochs"): t.epochs,
        ("number_input", "Learning rate"): t.lr,
        ("number_input", "Batch size"): t.batch_size,
        ("number_input", "Dropout"): t.dropout,
        ("checkbox", "Class weights"): True,
        ("number_input", "Seed"): t.seed,
        ("selectbox", "Device"): t.device,
        ("selectbox", "torch.compile"): t.compile,
        ("number_input", "Permutations (chance level)"): 1000,
        ("number_input", "α of the single-case tests"): RECORDED.alpha,
        ("checkbox", "Linear baseline"): False,
        ("checkbox", "Saliency maps"): RECORDED.saliency,
        ("multiselect", "Final model on all the data for"): ["cross-subject"],
    }
    assert {k: widget(at, *k).value for k in shown} == shown
    assert "network widths 4-8-8, 16 hidden units" in " ".join(c.value for c in at.caption)

    widget(at, "number_input", "Epochs").set_value(1)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(started) == 1
    want = replace(RECORDED, train=replace(RECORDED.train, epochs=1))
    assert started[0].to_dict() == want.to_dict()


@pytest.fixture(scope="module")
def retrained_home(
    demo_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str, list[str]]:
    """A copy of the demo home plus a finished one-person, one-design retrain: (home, study id,
    retrain id, the retrain's progress messages). The tests only read it."""
    import torch

    from emocore.data.cache import open_cache
    from emocore.workflows.study import run_study

    home = Path(shutil.copytree(demo_home, tmp_path_factory.mktemp("retrained") / "home"))
    reg = Registry(home / "registry")
    study = reg.list_runs()["id"][0]
    messages: list[str] = []
    config = StudyConfig(
        designs=("single-subject",),
        subjects=("01",),
        n_folds=2,
        n_permutations=20,
        baseline=False,
        saliency=False,
        train=TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu"),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: two threads against other work crawl (x20)
    try:
        retrain = run_study(
            open_cache(home / "cache"),
            reg,
            config,
            kind="train",
            progress=lambda fraction, message: messages.append(message),
        ).run_id
    finally:
        torch.set_num_threads(threads)
    return home, study, retrain, messages


def test_a_finished_retrain_shows_its_headline_and_opens_its_run(
    retrained_home: tuple[Path, str, str, list[str]], emocore_env
) -> None:
    home, study, retrain, messages = retrained_home
    emocore_env(home)
    # what a job's record says while it trains: which fold of how many
    assert any("sub-01 runs 1+3+5+7 (fold 1/2): loading its volumes" in m for m in messages)

    at = run_app(before="pages/subject.py")
    assert run_picker(at) == study
    at.session_state["emocore_job"] = retrain  # the job this session started
    at.switch_page(RETRAIN).run()
    assert not at.exception, [e.value for e in at.exception]
    outcome = " ".join(s.value for s in at.success)
    assert f"Run {retrain} completed. single-subject: balanced accuracy " in outcome, outcome
    assert "(run-wise 2-fold, permutation chance " in outcome, outcome

    # the button opens the run on the page the user came from
    next(b for b in at.button if b.label == f"Open run {retrain} on Subject").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Subject"]
    assert run_picker(at) == retrain
    assert f"Now showing run {retrain} (train · " in " ".join(i.value for i in at.info)

    # a new session still opens on the complete study, not on the newest, smaller run
    assert run_picker(run_app()) == study
    assert len(RunResults(Registry(home / "registry"), retrain).study["subjects"]) == 1


def test_a_retrain_without_a_page_before_opens_on_the_overview(
    retrained_home: tuple[Path, str, str, list[str]], emocore_env
) -> None:
    home, _, retrain, _ = retrained_home
    emocore_env(home)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["emocore_job"] = retrain
    at.switch_page(RETRAIN).run()  # a first visit straight to /retrain
    next(b for b in at.button if b.label == f"Open run {retrain} on Overview").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["emocore — Overview"]
    assert run_picker(at) == retrain


def test_a_finished_retrain_survives_a_reload_and_the_overview_says_the_run_changed(
    retrained_home: tuple[Path, str, str, list[str]], emocore_env, tmp_path: Path
) -> None:
    """The headline and "Open run" lived in session state only, lost on a reload; the Overview
    then showed another run without a word."""
    from emocore.workflows.jobs import LOG_NAME

    home, study, retrain, _ = retrained_home
    home = Path(shutil.copytree(home, tmp_path / "home"))
    emocore_env(home)
    # a run of the command line is not a job of the Retrain page: nothing to show
    at = run_app(RETRAIN)
    assert not at.success and not any(b.label.startswith("Open run") for b in at.button)

    # what jobs.start_job leaves beside a run the page started
    (Registry(home / "registry").run_dir(retrain) / LOG_NAME).write_text("the job's log\n")
    at = run_app(RETRAIN)  # a new session: a reload
    outcome = " ".join(s.value for s in at.success)
    assert f"Run {retrain} completed. single-subject: balanced accuracy " in outcome, outcome
    next(b for b in at.button if b.label == f"Open run {retrain} on Overview").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["emocore — Overview"]
    assert run_picker(at) == retrain
    notice = " ".join(i.value for i in at.info)
    assert f"Now showing run {retrain} (train · single-subject · 1 people" in notice, notice
    assert "opened from Retrain" in notice
    at.run()  # said once
    assert "Now showing run" not in " ".join(i.value for i in at.info)
    assert run_picker(at) == retrain
