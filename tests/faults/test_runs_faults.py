"""`emocore runs` after a killed run and with missing values (issue 10, items 4 and 6)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from emocore.cli import main
from emocore.registry import Registry


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

    from emocore.cli import _print

    _print({"a": float("nan"), "b": [np.float32("inf"), np.int64(3)], "c": None}, True)
    assert json.loads(capsys.readouterr().out) == {"a": None, "b": [None, 3], "c": None}
