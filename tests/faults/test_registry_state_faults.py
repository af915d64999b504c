"""The registry in the states a second fault pass left it in (issue 22, item 9 and "registry
states"): a deleted run folder, one damaged row, a read-only archive, a process id reused by
another process, and commands that created a registry before refusing their options."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.errors import EXIT_CODES, DataError, RegistryError
from emocore.runs.registry import Registry
from tests.faults.conftest import checksums, read_only


@pytest.fixture
def registry(finished_run, tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the registry holding one finished train run."""
    root, run_id = finished_run
    return Path(shutil.copytree(root, tmp_path / "registry")), run_id


def runs(root: Path, *extra: str) -> list[str]:
    return ["runs", "--registry", str(root), *extra]


# -- a run folder deleted by hand (item 9) ----------------------------------------------------
def test_show_of_a_run_whose_folder_was_deleted_says_its_files_are_gone(registry, capsys) -> None:
    root, run_id = registry
    folder = root / "runs" / run_id
    shutil.rmtree(folder)
    assert main(runs(root, "--show", run_id)) == 0
    out = capsys.readouterr().out
    assert "ITS FILES ARE GONE" in out
    assert f"files       MISSING: the folder of run {run_id}, {folder}, is missing" in out
    assert f"`emocore runs --forget {run_id}`" in out
    assert "0.7 MB" not in out and "predictions.tsv" in out  # recorded, shown as missing
    artifact_lines = [line for line in out.splitlines() if f"runs/{run_id}/" in line]
    assert artifact_lines and all("missing" in line for line in artifact_lines)
    assert main(runs(root, "--show", run_id, "--json")) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "is missing" in shown["folder_problem"]
    assert not any(a["exists"] for a in shown["artifacts"])
    assert main(runs(root)) == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith(run_id))
    assert row.rstrip().endswith("missing")
    assert f"run {run_id}: the folder of run {run_id}" in listing


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_reading_a_run_whose_folder_was_deleted_names_the_folder(
    registry, tiny_cache, capsys, command: str
) -> None:
    root, run_id = registry
    folder = root / "runs" / run_id
    shutil.rmtree(folder)
    argv = {
        "evaluate": ["evaluate", "--run", run_id, "--permutations", "5"],
        "predict": [
            "predict",
            "--run",
            run_id,
            "--model",
            "single-subject/sub-01",
            "--subject",
            "01",
            "--cache",
            str(tiny_cache.path),
        ],
    }[command] + ["--registry", str(root)]
    assert main(argv) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert f"the folder of run {run_id}, {folder}, is missing" in err, err
    assert "may still be running" not in err and f"--forget {run_id}" in err
    assert len(Registry(root).list_runs()) == 1  # no evaluation recorded


def test_forget_removes_the_run_from_the_registry_and_deletes_no_file(registry, capsys) -> None:
    root, run_id = registry
    kept = root / "runs" / run_id
    moved = Path(shutil.move(kept, root.parent / "elsewhere"))  # moved away, not deleted
    before = checksums(moved)
    assert main(runs(root, "--forget", run_id)) == 0
    assert "was already gone" in capsys.readouterr().out
    assert Registry(root).list_runs().empty
    assert checksums(moved) == before
    with pytest.raises(RegistryError, match=f"no run '{run_id}'"):
        Registry(root).get_run(run_id)


def test_forget_keeps_the_folder_of_a_run_it_forgets(registry, capsys) -> None:
    root, run_id = registry
    before = checksums(root / "runs")
    assert main(runs(root, "--forget", run_id)) == 0
    assert "was kept" in capsys.readouterr().out
    assert checksums(root / "runs") == before and Registry(root).list_runs().empty


def test_results_of_a_run_without_its_folder_raise_a_data_error(registry) -> None:
    from emocore.runs.results import RunResults

    root, run_id = registry
    shutil.rmtree(root / "runs" / run_id)
    with pytest.raises(DataError, match="is missing: the run's files were deleted or moved"):
        RunResults(Registry(root), run_id)


# -- one damaged row (item 9) -----------------------------------------------------------------
def _damage_config(root: Path, run_id: str, text: str = '{"designs": [') -> None:
    with sqlite3.connect(root / "registry.sqlite") as con:
        con.execute("UPDATE runs SET config = ? WHERE id = ?", (text, run_id))


def _second_run(root: Path) -> str:
    return Registry(root).create_run(kind="study", subjects=["01"], status="completed").id


def test_runs_lists_the_other_runs_and_marks_a_damaged_row(registry, capsys) -> None:
    root, run_id = registry
    other = _second_run(root)
    _damage_config(root, run_id)
    assert main(runs(root)) == 0
    out = capsys.readouterr().out
    assert any(line.startswith(other) for line in out.splitlines())
    row = next(line for line in out.splitlines() if line.startswith(run_id))
    assert "UNREADABLE" in row
    assert f"run {run_id} is unreadable: its row in {root / 'registry.sqlite'} is damaged" in out
    assert "its 'config' is not JSON" in out and "Traceback" not in out


def test_runs_json_marks_a_damaged_row_with_the_reason(registry, capsys) -> None:
    root, run_id = registry
    other = _second_run(root)
    _damage_config(root, run_id, "[1, 2]")  # JSON, but not an object
    assert main(runs(root, "--json")) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    assert rows[other]["unreadable"] is None
    assert rows[run_id]["unreadable"] == "its 'config' holds list, not a JSON object"


def test_show_of_a_damaged_row_names_the_database_and_the_fix(registry, capsys) -> None:
    root, run_id = registry
    _damage_config(root, run_id)
    assert main(runs(root, "--show", run_id)) == 0
    out = capsys.readouterr().out
    assert f"DAMAGED     its row in the registry database {root / 'registry.sqlite'}" in out
    assert "its 'config' is not JSON" in out and f"--forget {run_id}" in out
    assert main(runs(root, "--show", run_id, "--json")) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["unreadable"].startswith("its 'config' is not JSON")
    assert shown["database"] == str(root / "registry.sqlite")


def test_commands_that_use_a_damaged_run_say_what_is_wrong(registry, tiny_cache, capsys) -> None:
    root, run_id = registry
    _damage_config(root, run_id)
    with pytest.raises(RegistryError, match=r"registry\.sqlite is damaged: its 'config' is not"):
        Registry(root).get_run(run_id)
    argv = ["train", "--resume", run_id, "--cache", str(tiny_cache.path), "--registry", str(root)]
    assert main(argv) == EXIT_CODES["registry"]
    err = capsys.readouterr().err
    assert f"the row of run {run_id} in the registry database" in err and "Traceback" not in err


# -- a read-only registry (an archive) --------------------------------------------------------
# Read-only is real here: the folders lose their write bits, and as root the test drops
# CAP_DAC_OVERRIDE for the duration (conftest.read_only), so the modes bind as for any user.
def _locked(root: Path):
    return read_only(root, root / "runs", *sorted((root / "runs").iterdir()))


def test_a_read_only_registry_is_listed_and_shown(registry, capsys) -> None:
    root, run_id = registry
    before = checksums(root)
    with _locked(root):
        assert main(runs(root)) == 0
        listing = capsys.readouterr().out
        assert main(runs(root, "--json")) == 0
        listed = json.loads(capsys.readouterr().out)
        assert main(runs(root, "--show", run_id)) == 0
        shown = capsys.readouterr().out
    assert any(line.startswith(run_id) for line in listing.splitlines())
    assert f"(the registry {root} is read-only: shown as it is)" in listing
    assert [r["id"] for r in listed["runs"]] == [run_id]
    assert f"run {run_id}: train" in shown and "completed" in shown
    assert checksums(root) == before  # no -wal or -shm file was created either


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--run", "{run}", "--permutations", "5"],
        ["runs", "--delete", "{run}"],
        ["runs", "--forget", "{run}"],
    ],
    ids=["evaluate", "delete", "forget"],
)
def test_writing_to_a_read_only_registry_is_refused_naming_the_folder(
    registry, capsys, argv: list[str]
) -> None:
    root, run_id = registry
    before = checksums(root)
    with _locked(root):
        code = main([a.format(run=run_id) for a in argv] + ["--registry", str(root)])
    err = capsys.readouterr().err
    assert code == EXIT_CODES["registry"], err
    assert f"the run registry {root} is read-only" in err
    assert f"Make {root} and its registry.sqlite writable, or copy the folder" in err
    assert checksums(root) == before


def test_a_read_only_copy_taken_while_runs_were_recorded_reads_its_write_ahead_log(
    tmp_path: Path,
) -> None:
    source = tmp_path / "live"
    registry = Registry(source)
    holder = sqlite3.connect(source / "registry.sqlite")  # keeps the log from being folded in
    try:
        holder.execute("SELECT 1 FROM runs").fetchall()
        run = registry.create_run(kind="study", status="completed")
        assert (source / "registry.sqlite-wal").stat().st_size > 0
        copy = Path(shutil.copytree(source, tmp_path / "archive"))
    finally:
        holder.close()
    with _locked(copy):
        archived = Registry(copy)
        assert archived.read_only
        assert archived.list_runs()["id"].tolist() == [run.id]


def test_the_read_only_test_setup_really_refuses_writes(registry) -> None:
    """The guard of the tests above: inside it, a file cannot be created in the folder."""
    root, _ = registry
    with _locked(root), pytest.raises(PermissionError):
        (root / "probe").write_text("x")


# -- a process id given to another process ----------------------------------------------------
@pytest.fixture
def other_process():
    """A live process that is not the run's: the system gave it the id of the run's dead one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _running_with(root: Path, pid: int, *, started: str | None) -> str:
    registry = Registry(root)
    run = registry.create_run(kind="train", design="single-subject")
    registry.update(run.id, status="running", pid=pid, message="epoch 1/3")
    if started is not None:  # what the run's own process had recorded
        with sqlite3.connect(root / "registry.sqlite") as con:
            con.execute("UPDATE runs SET pid_start = ? WHERE id = ?", (started, run.id))
    return run.id


def test_the_start_time_of_a_runs_process_is_recorded(tmp_path: Path, other_process) -> None:
    root = tmp_path / "registry"
    run_id = _running_with(root, other_process.pid, started=None)
    stat = Path(f"/proc/{other_process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert Registry(root).get_run(run_id).pid_start.endswith(f":{stat[19]}")


def test_a_run_whose_pid_now_belongs_to_another_process_is_failed(
    tmp_path: Path, other_process
) -> None:
    from emocore.workflows import jobs

    root = tmp_path / "registry"
    reused = _running_with(root, other_process.pid, started="an-earlier-boot:12345")
    live = _running_with(root, other_process.pid, started=None)  # that process's own run
    assert Registry(root).mark_stale() == [reused]
    record = Registry(root).get_run(reused)
    assert record.status == "failed" and "died without finishing the run" in record.error
    assert [r.id for r in jobs.active_jobs(root)] == [live]
    assert other_process.poll() is None  # the other process was left alone


def test_a_reused_pid_does_not_block_a_new_dashboard_job(
    tmp_path: Path, tiny_cache, other_process, monkeypatch
) -> None:
    from emocore.workflows import jobs
    from tests.faults.conftest import tiny_study

    root = tmp_path / "registry"
    _running_with(root, other_process.pid, started="an-earlier-boot:12345")
    spawned: list[str] = []
    monkeypatch.setattr(jobs, "_spawn", lambda reg, run_id, command, env: spawned.append(run_id))
    run_id = jobs.start_job(root, tiny_cache.path, tiny_study())
    assert spawned == [run_id]
    # the control: while the run's own process runs, a second job is refused
    blocker = tmp_path / "busy"
    _running_with(blocker, other_process.pid, started=None)
    with pytest.raises(jobs.JobBusyError, match=f"process {other_process.pid}"):
        jobs.start_job(blocker, tiny_cache.path, tiny_study())


def test_cancel_never_signals_a_process_that_reused_the_pid(
    tmp_path: Path, other_process, monkeypatch
) -> None:
    from emocore.workflows import jobs

    root = tmp_path / "registry"
    registry = Registry(root)
    run = registry.create_run(kind="train", design="single-subject")
    registry.update(run.id, pid=other_process.pid)  # queued: mark_stale is not asked
    with sqlite3.connect(root / "registry.sqlite") as con:
        con.execute("UPDATE runs SET pid_start = 'an-earlier-boot:1' WHERE id = ?", (run.id,))
    monkeypatch.setattr(jobs, "_runs_emocore", lambda pid: True)  # even if it looked like one
    assert jobs.cancel_job(root, run.id, grace_s=0.2).status == "cancelled"
    assert other_process.poll() is None


# -- options checked before anything is created -----------------------------------------------
def test_a_bad_option_creates_no_registry(tiny_cache, tmp_path: Path, capsys) -> None:
    cache = str(tiny_cache.path)
    for argv in (
        ["train", "--cache", cache, "--permutations", "0"],
        ["study", "--cache", cache, "--epochs", "0"],
        ["train", "--cache", str(tmp_path / "no-cache")],
        ["evaluate", "--run", "20260101-000000-abcd", "--permutations", "0"],
    ):
        target = tmp_path / "registry"
        code = main([*argv, "--registry", str(target)])
        err = capsys.readouterr().err
        assert code in (EXIT_CODES["config"], EXIT_CODES["data"]), err
        assert not target.exists(), argv
    assert "--permutations must be at least 1" in err


@pytest.mark.parametrize("command", ["runs", "evaluate", "predict", "assess", "resume"])
def test_commands_that_read_runs_never_create_a_registry(
    tiny_cache, tmp_path: Path, capsys, command: str
) -> None:
    target = tmp_path / "typo"
    run = "20260101-000000-abcd"
    cache = ["--cache", str(tiny_cache.path)]
    argv = {
        "runs": ["runs"],
        "evaluate": ["evaluate", "--run", run],
        "predict": ["predict", "--run", run, "--model", "loso/sub-01", "--subject", "01", *cache],
        "assess": ["assess", "--run", run, "--subject", "09", *cache],
        "resume": ["train", "--resume", run, *cache],
    }[command]
    assert main([*argv, "--registry", str(target)]) == EXIT_CODES["registry"]
    err = capsys.readouterr().err
    assert f"no run registry at {target} (registry.sqlite is not there)" in err
    assert not target.exists()


def test_a_new_registry_is_still_created_by_a_training(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "new")
    assert registry.list_runs().empty and not registry.read_only
    assert (tmp_path / "new" / "registry.sqlite").is_file()
    with pytest.raises(RegistryError, match="no run registry at"):
        Registry(tmp_path / "other", create=False)
    assert not (tmp_path / "other").exists()
    assert os.access(tmp_path / "new", os.W_OK)
