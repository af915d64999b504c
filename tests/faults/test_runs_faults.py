"""`emocore runs` after a killed run and with missing values (issue 10, items 4 and 6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.errors import EXIT_CODES
from emocore.runs.registry import Registry
from tests.faults.conftest import checksums


def _dead_pid() -> int:
    """The pid of a process killed with SIGKILL (and reaped), like a training job killed by OOM."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.pid


def _killed_run(root: Path) -> str:
    registry = Registry(root)
    run = registry.create_run(kind="train", design="single-subject")
    registry.update(run.id, status="running", pid=_dead_pid(), message="fold runs 1+3, epoch 2")
    return run.id


def test_runs_shows_a_killed_run_as_failed_with_the_reason(tmp_path: Path, capsys) -> None:
    root = tmp_path / "registry"
    run_id = _killed_run(root)
    assert main(["runs", "--registry", str(root)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(run_id))
    assert "failed" in line and "running" not in line
    assert f"run {run_id} was marked failed: the process (pid" in out
    assert "died without finishing the run" in out and f"--resume {run_id}" in out
    record = Registry(root).get_run(run_id)
    assert record.status == "failed" and "epoch 2" in record.error


def test_runs_json_names_the_killed_run(tmp_path: Path, capsys) -> None:
    root = tmp_path / "registry"
    run_id = _killed_run(root)
    assert main(["runs", "--registry", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["marked_failed"] == [run_id]
    assert out["runs"][0]["status"] == "failed" and "died" in out["runs"][0]["error"]


def test_runs_show_marks_the_killed_run_too(tmp_path: Path, capsys) -> None:
    root = tmp_path / "registry"
    run_id = _killed_run(root)
    assert main(["runs", "--registry", str(root), "--show", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "failed"


def test_runs_json_is_strict_with_null_for_missing_values(tmp_path: Path, capsys) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    registry.create_run(kind="study")  # no design
    registry.create_run(kind="train", design="loso")
    assert main(["runs", "--registry", str(root), "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in `emocore runs --json`")

    runs = json.loads(text, parse_constant=refuse)["runs"]
    assert sorted(str(r["design"]) for r in runs) == ["None", "loso"]


def test_print_json_turns_nan_into_null(capsys) -> None:
    import numpy as np

    from emocore.cli.common import print_result

    print_result({"a": float("nan"), "b": [np.float32("inf"), np.int64(3)], "c": None}, True)
    assert json.loads(capsys.readouterr().out) == {"a": None, "b": [None, 3], "c": None}


# -- --resume of a run whose process still runs (item 7) --------------------------------------
@pytest.fixture
def live_pid():
    """The pid of a process that stays alive for the test (a training job in another shell)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _running_run(root: Path, pid: int, status: str = "running") -> str:
    from tests.faults.conftest import tiny_study

    registry = Registry(root)
    run = registry.create_run(kind="train", design="single-subject", config=tiny_study().to_dict())
    registry.update(run.id, status=status, pid=pid, message="fold run-1, epoch 1/3")
    return run.id


@pytest.mark.parametrize("status", ["running", "queued"])
def test_resume_of_a_live_run_is_refused_and_the_run_left_alone(
    tiny_cache, tmp_path: Path, capsys, live_pid: int, status: str
) -> None:
    root = tmp_path / "registry"
    run_id = _running_run(root, live_pid, status)
    before = Registry(root).get_run(run_id)
    files = checksums(root / "runs")
    argv = ["train", "--resume", run_id, "--cache", str(tiny_cache.path), "--registry", str(root)]
    assert main(argv) == EXIT_CODES["registry"]
    err = capsys.readouterr().err
    assert f"run '{run_id}' is {status} in process {live_pid} on this machine" in err, err
    assert "'fold run-1, epoch 1/3'" in err and f"kill {live_pid}" in err
    assert f"then --resume {run_id}" in err
    after = Registry(root).get_run(run_id)
    assert (after.status, after.pid, after.error) == (before.status, live_pid, None)
    assert checksums(root / "runs") == files


def test_claim_is_refused_to_a_second_process_and_given_after_a_death(
    tmp_path: Path, live_pid: int
) -> None:
    from emocore.errors import RegistryError

    root = tmp_path / "registry"
    run_id = _running_run(root, live_pid)
    registry = Registry(root)
    with pytest.raises(RegistryError, match=rf"is running in process {live_pid}"):
        registry.claim(run_id)
    assert registry.claim(run_id, pid=live_pid).pid == live_pid  # the holder itself: fine
    dead = _running_run(root, _dead_pid())
    assert registry.claim(dead).pid == os.getpid()  # a killed run may be resumed


def test_a_run_of_another_host_is_taken_over_with_a_warning(tmp_path: Path, caplog) -> None:
    import sqlite3

    root = tmp_path / "registry"
    run_id = _running_run(root, 424242)
    with sqlite3.connect(root / "registry.sqlite") as con:
        con.execute("UPDATE runs SET host = 'node-7' WHERE id = ?", (run_id,))
    with caplog.at_level("WARNING", logger="emocore.runs.registry"):
        assert Registry(root).claim(run_id).pid == os.getpid()
    assert "on node-7, which cannot be checked" in caplog.text
