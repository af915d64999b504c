"""Nested cross-validation through a whole study: what each outer fold chose is recorded in
study.json and printed by the CLI, and the fixed settings stay available, named as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.runs.registry import Registry
from emocore.training.baseline import C_GRID, FIXED_C
from emocore.training.train import TrainConfig
from emocore.workflows.study import StudyConfig, run_study

TINY = dict(widths=(4, 8, 8), hidden=16, device="cpu", compile="off")


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory):
    from emocore.data.prepare import prepare_cache
    from emocore.data.synthetic import SynthConfig, generate_cohort

    root = tmp_path_factory.mktemp("tuning-home")
    generate_cohort(root / "cohort", SynthConfig(n_subjects=2, grid_mm=12.0))
    return prepare_cache(root / "cohort", root / "cohort" / "annotations" / "raw", root / "cache")


def test_tuned_study_records_what_each_outer_fold_chose(tiny_cache, tmp_path: Path) -> None:
    config = StudyConfig(
        designs=("single-subject",),
        subjects=("01",),
        n_folds=2,
        n_permutations=5,
        saliency=False,
        linear_C="auto",
        train=TrainConfig(epochs=3, epoch_selection="inner", **TINY),
    )
    done = run_study(tiny_cache, Registry(tmp_path / "registry"), config)
    tuning = done.study["tuning"]["single-subject"]
    cnn, linear = tuning["cnn"], tuning["linear"]
    # two outer folds, and the person's final model
    assert len([k for k in cnn if not k.endswith(" final")]) == 2
    for key, chosen in cnn.items():
        assert 1 <= chosen["epochs"] <= 3, (key, chosen)
        if key.endswith(" final"):
            assert chosen["how"] == "median of the folds' choices"
        else:
            assert chosen["how"] == "inner fold" and chosen["inner_fold"], chosen
            assert chosen["at_limit"] == (chosen["epochs"] == 3)
    assert len(linear) == 2
    assert all(v["C"] in C_GRID and v["how"] == "inner folds" for v in linear.values()), linear
    assert all(v["at_limit"] == (v["C"] in (C_GRID[0], C_GRID[-1])) for v in linear.values())
    # the final checkpoint says how many epochs it was trained for
    ckpt = done.folder / "models" / "single-subject" / "sub-01.pt"
    import torch

    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == cnn["sub-01 final"]["epochs"]


def test_fixed_settings_are_named_fixed(tiny_cache, tmp_path: Path) -> None:
    config = StudyConfig(
        designs=("single-subject",),
        subjects=("01",),
        n_folds=2,
        n_permutations=5,
        saliency=False,
        refit=False,
        train=TrainConfig(epochs=1, **TINY),
    )
    tuning = run_study(tiny_cache, Registry(tmp_path / "registry"), config).study["tuning"]
    cnn, linear = tuning["single-subject"]["cnn"], tuning["single-subject"]["linear"]
    assert {v["how"] for v in cnn.values()} == {"fixed"} and {
        v["epochs"] for v in cnn.values()
    } == {1}
    assert {v["how"] for v in linear.values()} == {"fixed"}
    assert {v["C"] for v in linear.values()} == {FIXED_C}


def test_cli_epochs_auto_and_linear_C_reach_the_config(tmp_path: Path, capsys) -> None:
    from emocore.cli import build_parser
    from emocore.cli.models import study_config_from_args

    args = build_parser().parse_args(
        ["train", "--cache", "c", "--registry", "r", "--epochs", "auto", "--max-epochs", "7"]
        + ["--linear-C", "auto"]
    )
    config = study_config_from_args(args, ("loso",))
    assert config.train.epoch_selection == "inner" and config.train.epochs == 7
    assert config.linear_C == "auto"
    fixed = study_config_from_args(
        build_parser().parse_args(["train", "--cache", "c", "--registry", "r"]), ("loso",)
    )
    assert fixed.train.epoch_selection == "fixed" and fixed.train.epochs == 50
    assert fixed.linear_C == FIXED_C
    with pytest.raises(SystemExit) as usage:
        main(["train", "--cache", "c", "--registry", str(tmp_path), "--epochs", "many"])
    assert usage.value.code == 2
    assert "a whole number or 'auto'" in capsys.readouterr().err
    assert json.dumps(config.to_dict())  # the choice is saved with the run
