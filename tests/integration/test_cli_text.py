"""What `emocore predict` and `emocore runs --show` print for a reader (text unless --json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.runs.registry import Registry


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Two people, a finished single-subject + LOSO study of one epoch: (home, run id)."""
    import torch

    from emocore.data.prepare import prepare_cache
    from emocore.data.synthetic import SynthConfig, generate_cohort
    from emocore.training.train import TrainConfig
    from emocore.workflows.demo import demo_paths
    from emocore.workflows.study import StudyConfig, run_study

    root = tmp_path_factory.mktemp("cli-text")
    paths = demo_paths(root)
    generate_cohort(paths["cohort"], SynthConfig(n_subjects=2, grid_mm=12.0))
    cache = prepare_cache(paths["cohort"], paths["annotations"], paths["cache"])
    config = StudyConfig(
        designs=("single-subject", "loso"),
        n_folds=2,
        n_permutations=20,
        saliency=False,
        train=TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu"),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: two threads against other work crawl
    try:
        run_id = run_study(cache, Registry(paths["registry"]), config).run_id
    finally:
        torch.set_num_threads(threads)
    return root, run_id


def predict(home: tuple[Path, str], capsys, model: str, subject: str, *more: str) -> str:
    root, run_id = home
    argv = [
        "predict",
        "--run",
        run_id,
        "--model",
        model,
        "--subject",
        subject,
        "--cache",
        str(root / "cache"),
        "--registry",
        str(root / "registry"),
        "--permutations",
        "20",
        "--device",
        "cpu",
        *more,
    ]
    assert main(argv) == 0
    return capsys.readouterr().out


def test_predict_names_the_split_and_whether_the_person_was_in_training(home, capsys) -> None:
    run_id = home[1]
    seen = predict(home, capsys, "single-subject/sub-01", "01")
    assert seen.startswith(f"sub-01 with single-subject/sub-01 of run {run_id}: balanced accuracy")
    assert "split: in-sample. sub-01 WAS in this model's training set" in seen
    assert "not a measure of accuracy" in seen
    assert (
        "held-out estimate of this design in the run (all its people): single-subject: "
        "balanced accuracy"
        in seen
        and "(run-wise 2-fold, permutation chance" in seen
    ), seen
    unseen = predict(home, capsys, "loso/sub-02", "02")
    assert "split: unseen subject. sub-02 was NOT in this model's training set" in unseen
    assert "not a measure of accuracy" not in unseen
    as_json = json.loads(predict(home, capsys, "loso/sub-02", "02", "--json"))
    assert (as_json["split"], as_json["in_sample"]) == ("unseen subject", False)


def test_runs_show_prints_text_unless_json(home, capsys) -> None:
    root, run_id = home
    argv = ["runs", "--registry", str(root / "registry"), "--show", run_id]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"run {run_id}: study · single-subject + loso · 2 people · 1 epoch")
    assert "  status      completed (100 %) — done" in text
    assert "designs single-subject + loso; folds 2; 5 emotions; epochs 1" in text
    assert "permutations 20, alpha 0.05, baseline on, saliency off" in text
    assert "  results     single-subject: balanced accuracy" in text
    assert "loso: balanced accuracy" in text and "(leave-one-subject-out, permutation" in text
    assert "[linear baseline]" in text and "single-subject/sub-01" in text
    assert not text.lstrip().startswith("{")
    assert main([*argv, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["id"] == run_id and record["status"] == "completed"


def test_runs_show_of_a_run_without_config_or_results(tmp_path: Path, capsys) -> None:
    root = tmp_path / "registry"
    run = Registry(root).create_run(kind="predict")
    assert main(["runs", "--registry", str(root), "--show", run.id]) == 0
    text = capsys.readouterr().out
    assert f"run {run.id}: predict · ? · 0 people" in text and "status      queued (0 %)" in text
    assert "results" not in text and "disk        0.0 MB" in text


def test_runs_lists_an_assess_run_without_none(tmp_path: Path, capsys) -> None:
    """An assess run records no split of its own: the list printed "None" for it."""
    root = tmp_path / "registry"
    reg = Registry(root)
    study = reg.create_run(kind="study", split="leave-one-run-out", subjects=["01", "02"])
    assess = reg.create_run(kind="assess", subjects=["03"], parent=study.id)
    assert main(["runs", "--registry", str(root)]) == 0
    text = capsys.readouterr().out
    assert "None" not in text, text
    line = next(line for line in text.splitlines() if line.startswith(assess.id))
    assert line.split()[1:4] == ["assess", "all", "—"], line
    assert "leave-one-run-out" in next(ln for ln in text.splitlines() if ln.startswith(study.id))
