"""A killed assess or evaluate run is not "resumed" into a training (issue 22, item 5): `emocore
runs` says how to redo it, and `train --resume` of it is refused with that command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.errors import EXIT_CODES, RegistryError
from emocore.runs.registry import Registry, redo_hint
from emocore.workflows.study import resume_study
from tests.faults.conftest import checksums
from tests.faults.test_runs_faults import _dead_pid


def _killed(registry: Registry, kind: str) -> tuple[str, str]:
    """A study run (the parent) and a killed run of ``kind`` made from it: (parent, killed)."""
    parent = registry.create_run(kind="study", subjects=["01", "02"], status="completed").id
    config = {
        "assess": {"run": parent, "subject": "03", "alpha": 0.05},
        "evaluate": {
            "source_run": parent,
            "source_runs": [parent],
            "permutations": 200,
            "linear": True,
        },
    }[kind]
    subjects = ["03"] if kind == "assess" else ["01", "02"]
    run = registry.create_run(kind=kind, subjects=subjects, config=config, parent=parent)
    registry.update(run.id, status="running", pid=_dead_pid(), message="loso: sub-03 fold 2")
    return parent, run.id


REDO = {
    "assess": "redo it with `emocore assess --run {parent} --subject 03 --force`",
    "evaluate": "redo it with `emocore evaluate --run {parent} --permutations 200 --linear`",
}


@pytest.mark.parametrize("kind", list(REDO))
def test_runs_gives_the_redo_command_of_a_killed_run_of_this_kind(
    tmp_path: Path, capsys, kind: str
) -> None:
    root = tmp_path / "registry"
    parent, run_id = _killed(Registry(root), kind)
    assert main(["runs", "--registry", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id} was marked failed" in out
    assert REDO[kind].format(parent=parent) in out
    assert "--resume" not in out


@pytest.mark.parametrize("kind", list(REDO))
def test_train_resume_of_a_killed_run_of_this_kind_is_refused(
    tmp_path: Path, capsys, kind: str
) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    parent, run_id = _killed(registry, kind)
    registry.mark_stale()
    before = checksums(root / "runs")
    runs_before = registry.list_runs()[["id", "status", "updated_at"]].to_dict("records")
    code = main(
        ["train", "--resume", run_id, "--registry", str(root), "--cache", str(tmp_path / "none")]
    )
    err = capsys.readouterr().err
    assert code == EXIT_CODES["registry"], err
    assert f"run {run_id} is an {kind} run: --resume goes on with an interrupted train" in err
    assert REDO[kind].format(parent=parent) in err and "Traceback" not in err
    # nothing started: no training in the run, no new run, no file written, the cache not opened
    assert Registry(root).list_runs()[["id", "status", "updated_at"]].to_dict("records") == (
        runs_before
    )
    assert checksums(root / "runs") == before


def test_resume_study_refuses_an_assess_run_before_touching_it(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    parent, run_id = _killed(registry, "assess")
    with pytest.raises(RegistryError, match=r"is an assess run.*emocore assess --run"):
        resume_study(registry, run_id, cache=None)  # type: ignore[arg-type]
    after = registry.get_run(run_id)
    assert after.pid != os.getpid() and after.status == "running"  # not claimed, not started


def test_a_killed_training_still_says_resume(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    run = registry.create_run(kind="train", design="single-subject")
    assert redo_hint(registry.get_run(run.id)) == (
        f"Resume it with `emocore train --resume {run.id}` or start a new run"
    )
