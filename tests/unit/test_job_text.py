"""What the Retrain page starts and says: retrain settings from a recorded study, a job's status
line while it starts, its outcome with split and chance (emocore.workflows.jobs, no processes)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from emocore.errors import ConfigError
from emocore.runs.registry import Registry
from emocore.training.train import TrainConfig
from emocore.workflows.jobs import (
    headline_sentences,
    job_outcome,
    job_status,
    note_job_step,
    retrain_config,
    retrain_defaults,
)
from emocore.workflows.study import StudyConfig

DEMO_LIKE = StudyConfig(
    designs=("single-subject", "cross-subject"),
    n_folds=2,
    refit=("cross-subject",),
    n_permutations=1000,
    folds=None,
    train=TrainConfig(epochs=2, class_weights=True),
)
RESULT = {
    "model": "cnn",
    "design": "single-subject",
    "split": "run-wise 2-fold",
    "leaky": False,
    "balanced_accuracy": 0.6412,
    "chance_balanced_accuracy": 0.2003,
    "p_value": 0.0009,
}


def study_json(config: StudyConfig, subjects=("01", "02", "03")) -> dict:
    return {"config": config.to_dict(), "subjects": list(subjects), "classes": ["A", "B"]}


def test_retrain_defaults_are_the_recorded_config_on_its_people_with_every_fold() -> None:
    one_fold = replace(DEMO_LIKE, designs=("loso",), refit=True, folds=("sub-02",))
    base = retrain_defaults(study_json(one_fold))
    assert base == replace(one_fold, subjects=("01", "02", "03"), folds=None)
    assert base.train.class_weights and base.n_permutations == 1000
    assert retrain_defaults(None) == StudyConfig()


def test_retrain_config_applies_study_and_training_changes() -> None:
    base = retrain_defaults(study_json(DEMO_LIKE))
    assert retrain_config(base) == base
    # an unchanged form passes every setting back as recorded, refit included
    same = retrain_config(
        base,
        designs=["single-subject", "cross-subject"],
        subjects=["01", "02", "03"],
        refit=["cross-subject"],
        epochs=2,
    )
    assert same.to_dict() == base.to_dict()
    changed = retrain_config(base, epochs=1, lr=0.01, n_permutations=200, subjects=["02"])
    assert changed.train == replace(base.train, epochs=1, lr=0.01)
    assert (changed.n_permutations, changed.subjects) == (200, ("02",))
    # refit follows the designs kept: none left is False, all is True
    assert retrain_config(base, designs=["single-subject"]).refit is False
    assert retrain_config(base, refit=["single-subject", "cross-subject"]).refit is True
    assert retrain_config(base, refit=[]).refit is False


def test_retrain_config_names_what_is_wrong() -> None:
    base = retrain_defaults(study_json(DEMO_LIKE))
    with pytest.raises(ConfigError, match=r"unknown retrain option\(s\) \['epoch'\]"):
        retrain_config(base, epoch=3)
    with pytest.raises(ConfigError, match="no subject chosen"):
        retrain_config(base, subjects=[])
    with pytest.raises(ConfigError, match="designs must be some of"):
        retrain_config(base, designs=[])


def test_headline_names_split_and_permutation_chance() -> None:
    linear = {**RESULT, "model": "linear", "balanced_accuracy": 0.5}
    leaky = {**RESULT, "design": "cross-subject", "split": "random", "leaky": True, "p_value": 0.2}
    assert headline_sentences([RESULT, linear, leaky]) == [
        "single-subject: balanced accuracy 64.1 % (run-wise 2-fold, permutation chance 20.0 %, "
        "p < 0.001)",
        "cross-subject: balanced accuracy 64.1 % (random — LEAKY, permutation chance 20.0 %, "
        "p = 0.200)",
    ]
    assert headline_sentences([linear], model="linear")[0].startswith(
        "single-subject: balanced accuracy 50.0 % (run-wise"
    )
    assert headline_sentences([]) == []
    missing = {"design": "loso", "balanced_accuracy": None}
    assert headline_sentences([missing]) == [
        "loso: balanced accuracy n/a (split not recorded, permutation chance n/a, p = n/a)"
    ]


def test_a_job_outcome_is_its_headline_or_its_error(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    done = reg.create_run(kind="train", design="single-subject").id
    reg.update(done, status="running", metrics={"results": [RESULT]})
    reg.set_status(done, "completed")
    assert job_outcome(reg, done) == (
        f"Run {done} completed. single-subject: balanced accuracy 64.1 % (run-wise 2-fold, "
        "permutation chance 20.0 %, p < 0.001)"
    )
    assessed = reg.create_run(kind="assess").id  # no headline of its own
    reg.update(assessed, status="running")
    reg.set_status(assessed, "completed")
    assert job_outcome(reg, assessed) == f"Run {assessed} completed"
    failed = reg.create_run(kind="train").id
    reg.set_status(failed, "failed", error="out of memory")
    assert job_outcome(reg, failed) == f"Run {failed} failed: out of memory"


def test_the_status_line_says_what_a_starting_job_does(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    run = reg.create_run(kind="train", design="single-subject")
    now = datetime.strptime(run.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert job_status(run, now=now + timedelta(seconds=3)) == (
        f"{run.id} (train, single-subject): queued for 3 s"
    )
    reg.update(run.id, pid=os.getpid(), message="the job process started: loading PyTorch")
    starting = reg.get_run(run.id)
    assert job_status(starting, now=now + timedelta(seconds=12.4)) == (
        f"{run.id} (train, single-subject): starting for 12 s — the job process started: "
        "loading PyTorch"
    )
    reg.update(run.id, status="running", progress=0.25, message="fold 1/2: epoch 1/2")
    assert job_status(reg.get_run(run.id)).endswith(": running, 25 % — fold 1/2: epoch 1/2")


def test_only_the_job_process_notes_its_steps(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    run = reg.create_run(kind="train").id
    assert not note_job_step(reg, run, "loading PyTorch")  # no process recorded yet
    reg.update(run, pid=os.getpid() + 1)  # another process holds it (a second --resume)
    assert not note_job_step(reg, run, "loading PyTorch")
    reg.update(run, pid=os.getpid())
    assert note_job_step(reg, run, "loading PyTorch")
    assert reg.get_run(run).message == "loading PyTorch"
    reg.update(run, status="running", message="fold 1/2")
    assert not note_job_step(reg, run, "opening the cache")  # the run has taken over
    assert reg.get_run(run).message == "fold 1/2"
