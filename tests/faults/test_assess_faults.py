"""Assessing a new person (issue 22, "also found"): a label that is no BIDS label, a run that
holds no cohort, two assessments of one person that wrote over each other, and dataset folders
that hold no BOLD runs offered as datasets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.errors import EXIT_CODES
from emocore.runs.registry import Registry
from tests.faults.conftest import checksums, tiny_study, untrained_design

ROOT = Path(__file__).resolve().parents[2]


def _seeded_design(seed: int):
    """untrained_design with its own seed: each assessment predicts differently."""

    def design(cache, design, train_config, *, subjects=None, classes=(), **_):
        import numpy as np

        result = untrained_design(cache, design, train_config, subjects=subjects, classes=classes)
        table = result.predictions
        probs = np.random.default_rng(seed).dirichlet(np.ones(len(classes)), len(table))
        table[[f"prob_{c}" for c in classes]] = probs
        table["pred"] = [classes[i] for i in probs.argmax(axis=1)]
        return result

    return design


@pytest.fixture(scope="module")
def cohort(tiny_cache, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A finished train run of sub-01 alone (random predictions, no training) on the shared
    tiny cache, which also holds sub-02: the newcomer."""
    from emocore.workflows import study as study_module

    root = tmp_path_factory.mktemp("assess-faults")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study_module, "run_design", untrained_design)
        run_id = study_module.run_study(
            tiny_cache, Registry(root / "registry"), tiny_study(subjects=("01",)), kind="train"
        ).run_id
    return {"root": root, "cache": tiny_cache.path, "run": run_id}


@pytest.fixture
def home(cohort, tmp_path: Path, monkeypatch) -> dict:
    """A private copy of the registry (the cache is shared: these tests never add to it), with
    the newcomer's single-subject "training" replaced by seeded random predictions."""
    from emocore.training import designs

    seeds = iter(range(1, 100))
    monkeypatch.setattr(
        designs,
        "run_design",
        lambda *a, **k: _seeded_design(next(seeds))(*a, **k),
    )
    registry = Path(shutil.copytree(cohort["root"] / "registry", tmp_path / "registry"))
    return {**cohort, "registry": registry}


def assess(h: dict, *extra: str, run: str | None = None, subject: str = "02") -> list[str]:
    return [
        "assess",
        "--run",
        run or h["run"],
        "--subject",
        subject,
        "--cache",
        str(h["cache"]),
        "--registry",
        str(h["registry"]),
        "-q",
        *extra,
    ]


# -- what is assessed against what ------------------------------------------------------------
@pytest.mark.parametrize("label", ["../../x", "sub-../x", "0 2", "<b>x</b>", "02_a"])
def test_a_label_that_is_no_bids_label_is_refused_as_such(home, capsys, label: str) -> None:
    before = checksums(home["registry"])
    assert main(assess(home, subject=label)) == EXIT_CODES["config"]
    err = capsys.readouterr().err
    assert f"--subject {label!r} is not a BIDS subject label" in err, err
    assert "letters and digits only" in err and "--subject 09 for sub-09" in err
    assert checksums(home["registry"]) == before


def test_an_assess_run_cannot_be_the_reference(home, capsys) -> None:
    assert main(assess(home, "--json")) == 0
    assess_id = json.loads(capsys.readouterr().out)["assess_run_id"]
    runs_before = len(Registry(home["registry"]).list_runs())
    assert main(assess(home, run=assess_id)) == EXIT_CODES["registry"]
    err = capsys.readouterr().err
    assert f"run {assess_id} is an assess run, which holds no cohort" in err, err
    assert "needs a completed study or train run" in err
    assert f"this one was made from run {home['run']}: use --run {home['run']}" in err
    assert len(Registry(home["registry"]).list_runs()) == runs_before


def test_a_dashboard_job_checks_the_label_and_the_run_before_it_is_queued(home) -> None:
    from emocore.errors import ConfigError, RegistryError
    from emocore.workflows.jobs import start_assess_job

    with pytest.raises(ConfigError, match="is not a BIDS subject label"):
        start_assess_job(home["registry"], home["cache"], home["run"], "../../x")
    evaluation = Registry(home["registry"]).create_run(
        kind="evaluate", parent=home["run"], status="completed"
    )
    with pytest.raises(RegistryError, match="is an evaluate run, which holds no cohort"):
        start_assess_job(home["registry"], home["cache"], evaluation.id, "02")
    assert len(Registry(home["registry"]).list_runs(kind="assess")) == 0


# -- two assessments of one person ------------------------------------------------------------
def test_each_assessment_keeps_its_own_files_and_force_loses_nothing(home, capsys) -> None:
    registry = Registry(home["registry"])
    assert main(assess(home, "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    first_dir = registry.run_dir(first["assess_run_id"])
    first_files = checksums(first_dir)
    assert {"assessment.json", "predictions.tsv"} <= set(first_files)
    current = registry.run_dir(home["run"]) / "assessments" / "sub-02"
    assert checksums(current) == {
        k: v for k, v in first_files.items() if k in ("assessment.json", "predictions.tsv")
    }

    assert main(assess(home, "--json", "--force")) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["assess_run_id"] != first["assess_run_id"]
    assert checksums(first_dir) == first_files  # the first assessment's files are all there
    second_files = checksums(registry.run_dir(second["assess_run_id"]))
    assert second_files["predictions.tsv"] != first_files["predictions.tsv"]
    assert checksums(current)["predictions.tsv"] == second_files["predictions.tsv"]
    stored = json.loads((current / "assessment.json").read_text())
    assert stored["assess_run_id"] == second["assess_run_id"]
    statuses = registry.list_runs(kind="assess").set_index("id")["status"].to_dict()
    assert statuses == {first["assess_run_id"]: "completed", second["assess_run_id"]: "completed"}


def test_force_moves_an_assessment_from_before_run_folders_aside(home, capsys) -> None:
    """Assessments used to live only in the cohort's assessments/sub-XX/ (with the person's own
    model): a forced one must not delete it."""
    assert main(assess(home, "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    registry = Registry(home["registry"])
    for name in ("assessment.json", "predictions.tsv"):  # as the old layout held it
        (registry.run_dir(first["assess_run_id"]) / name).unlink()
    current = registry.run_dir(home["run"]) / "assessments" / "sub-02"
    (current / "models" / "single-subject").mkdir(parents=True)
    (current / "models" / "single-subject" / "sub-02.pt").write_bytes(b"a checkpoint")
    old = checksums(current)
    assert main(assess(home, "--force")) == 0
    kept = current.parent / "replaced" / f"sub-02-{first['assess_run_id']}"
    assert checksums(kept) == old
    assert "sub-02" in [p.name for p in current.parent.iterdir()]  # the new one is current


def test_a_second_assessment_while_one_runs_is_refused(home, capsys) -> None:
    """A real `emocore assess` of sub-02 runs in another process (held in its training step);
    a second one is refused at once, names that process and writes nothing."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from emocore.training import designs\n"
            "from emocore.cli import main\n"
            "def training(*args, **kwargs):\n"
            "    print('training', flush=True)\n"
            "    time.sleep(60)\n"
            "designs.run_design = training\n"
            "main(sys.argv[1:])\n",
            *assess(home),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "training"
        before = checksums(home["registry"] / "runs")
        assert main(assess(home)) == EXIT_CODES["registry"]
        err = capsys.readouterr().err
        assert f"sub-02 is being assessed against run {home['run']} right now" in err, err
        assert f"process {holder.pid} on" in err and "without --force" in err
        assert checksums(home["registry"] / "runs") == before
        assert Registry(home["registry"]).list_runs(kind="assess")["status"].tolist() == ["running"]
    finally:
        holder.kill()
        holder.wait()
    assert main(assess(home)) == 0  # the lock went with the process


# -- dataset folders ---------------------------------------------------------------------------
def test_only_folders_with_bold_runs_are_offered_as_datasets(tiny_cache, tmp_path: Path) -> None:
    from emocore.workflows.assess import dataset_folders

    root = tiny_cache.path.parent  # cohort/ (the dataset) and cache/ (sub-XX.npy arrays)
    assert dataset_folders(root, tiny_cache) == [(root / "cohort").resolve()]
    (tmp_path / "notes" / "sub-01" / "anat").mkdir(parents=True)  # sub-01, but no BOLD run
    (tmp_path / "empty" / "derivatives").mkdir(parents=True)
    assert dataset_folders(tmp_path) == []

    from emocore.workflows.assess import holds_bold_runs

    assert not holds_bold_runs(tiny_cache.path) and holds_bold_runs(root / "cohort")
