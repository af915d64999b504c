"""The run registry: records, status life cycle, curves, artifacts, concurrency, moving the root."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from emocore import __version__
from emocore.errors import ConfigError, RegistryError
from emocore.runs.registry import SCHEMA_VERSION, Registry


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid no longer exists
    return proc.pid


# -- records ------------------------------------------------------------------------------------
def test_create_get_list_update_round_trip(reg: Registry) -> None:
    run = reg.create_run(
        kind="train",
        design="single-subject",
        split="leave-one-run-out",
        subjects=("01", "02"),
        config={"epochs": 3, "lr": 1e-3},
        data_hash="abc123",
        notes="first try",
    )
    assert run.id.count("-") == 2 and len(run.id) == len("20261124-153012-a1b2")
    assert (run.kind, run.status, run.progress, run.leaky) == ("train", "queued", 0.0, False)
    assert run.subjects == ["01", "02"] and run.config == {"epochs": 3, "lr": 1e-3}
    assert run.emocore_version == __version__ and run.user and run.host
    assert run.created_at.endswith("Z") and not run.finished
    assert reg.run_dir(run.id).is_dir()
    assert json.loads(json.dumps(run.to_dict())) == run.to_dict()

    reg.update(run.id, progress=0.5, message="epoch 2", metrics={"accuracy": 0.7}, pid=1234)
    got = reg.get_run(run.id)
    assert (got.progress, got.message, got.metrics, got.pid) == (
        0.5,
        "epoch 2",
        {"accuracy": 0.7},
        1234,
    )
    assert got.updated_at >= got.created_at == run.created_at

    study = reg.create_run(kind="study", split="random", leaky=True)
    sub = reg.create_run(kind="train", design="loso", parent=study.id)
    table = reg.list_runs()
    assert list(table.id) == [sub.id, study.id, run.id]  # newest first, even within one second
    assert table.leaky.tolist() == [False, True, False]
    assert list(reg.list_runs(kind="train").id) == [sub.id, run.id]
    assert list(reg.list_runs(design="loso").id) == [sub.id]
    assert list(reg.list_runs(parent=study.id).id) == [sub.id]
    assert list(reg.list_runs(status="completed").id) == []
    assert reg.get_run(sub.id).parent == study.id


def test_empty_registry_lists_an_empty_table_with_columns(reg: Registry) -> None:
    table = reg.list_runs()
    assert table.empty and {"id", "status", "progress", "disk_bytes"} <= set(table.columns)


def test_unknown_run_id_is_explained_with_suggestions(reg: Registry) -> None:
    run = reg.create_run(kind="train")
    with pytest.raises(RegistryError, match=r"no run 'nope' in .*registry; `emocore runs` lists"):
        reg.get_run("nope")
    with pytest.raises(RegistryError, match=f"did you mean '{run.id}'"):
        reg.get_run(run.id[:-1] + "x")  # a typo
    with pytest.raises(RegistryError, match=f"did you mean '{run.id}'"):
        reg.get_run(run.id[:15])  # a prefix
    for call in (
        lambda: reg.update("nope", notes="x"),
        lambda: reg.curves("nope"),
        lambda: reg.artifacts("nope"),
        lambda: reg.log_epoch("nope", epoch=1),
        lambda: reg.delete_run("nope"),
        lambda: reg.create_run(kind="train", parent="nope"),
    ):
        with pytest.raises(RegistryError, match="no run 'nope'"):
            call()


def test_bad_fields_and_values_name_what_is_allowed(reg: Registry) -> None:
    run = reg.create_run(kind="train")
    with pytest.raises(ConfigError, match=r"cannot update \['created_at'\].*progress, message"):
        reg.update(run.id, created_at="yesterday")
    with pytest.raises(ConfigError, match=r"'progress' must be a number from 0 to 1; 1\.5"):
        reg.update(run.id, progress=1.5)
    with pytest.raises(ConfigError, match="did you mean 'cross-subject'"):
        reg.update(run.id, design="cross-subjects")
    with pytest.raises(ConfigError, match="'subjects' must be a list of strings"):
        reg.update(run.id, subjects="01")
    with pytest.raises(ConfigError, match="'metrics' must be a dict"):
        reg.update(run.id, metrics=[0.5])
    with pytest.raises(ConfigError, match="'kind' must be one of .*did you mean 'train'"):
        reg.create_run(kind="trian")
    with pytest.raises(ConfigError, match="'status' must be one of"):
        reg.list_runs(status="done")
    with pytest.raises(ConfigError, match="is not a run id"):
        reg.run_dir("../elsewhere")
    assert reg.get_run(run.id).updated_at == run.updated_at  # nothing was written


# -- status -------------------------------------------------------------------------------------
def test_status_life_cycle(reg: Registry) -> None:
    run = reg.create_run(kind="train")
    with pytest.raises(ConfigError, match="'status' must be one of .*did you mean 'completed'"):
        reg.set_status(run.id, "complete")
    with pytest.raises(RegistryError, match="is queued and cannot become completed"):
        reg.set_status(run.id, "completed")

    reg.update(run.id, status="running", pid=os.getpid(), progress=0.3)
    reg.set_status(run.id, "running")  # the same status again is fine
    reg.set_status(run.id, "failed", error="CUDA out of memory")
    failed = reg.get_run(run.id)
    assert (failed.status, failed.error, failed.finished) == ("failed", "CUDA out of memory", True)

    reg.set_status(run.id, "running")  # resume clears the old error
    assert reg.get_run(run.id).error is None
    reg.set_status(run.id, "completed")
    done = reg.get_run(run.id)
    assert (done.status, done.progress) == ("completed", 1.0)
    with pytest.raises(RegistryError, match="is completed and cannot become running.*final"):
        reg.set_status(run.id, "running")

    other = reg.create_run(kind="evaluate")
    reg.set_status(other.id, "cancelled", error="stopped from the dashboard")
    assert reg.get_run(other.id).status == "cancelled"


# -- curves -------------------------------------------------------------------------------------
def test_curves_keep_order_and_replace_a_relogged_epoch(reg: Registry) -> None:
    run = reg.create_run(kind="train")
    assert reg.curves(run.id).empty
    for fold in ("run-1", "run-2"):
        for epoch in (1, 2):
            reg.log_epoch(
                run.id, fold=fold, epoch=epoch, train_loss=1.0 / epoch, train_acc=0.5, seconds=0.1
            )
    reg.log_epoch(run.id, fold="run-1", epoch=2, train_loss=0.25, val_acc=0.4)  # after a resume
    curves = reg.curves(run.id)
    assert list(zip(curves.fold, curves.epoch, strict=True)) == [
        ("run-1", 1),
        ("run-1", 2),
        ("run-2", 1),
        ("run-2", 2),
    ]
    assert curves.train_loss.tolist() == [1.0, 0.25, 1.0, 0.5]
    assert curves.val_acc.isna().tolist() == [True, False, True, True]
    assert curves.val_loss.dtype == float
    with pytest.raises(ConfigError, match="must be numbers"):
        reg.log_epoch(run.id, epoch=3, train_loss="low")


# -- artifacts ----------------------------------------------------------------------------------
def test_artifact_bytes_and_disk_usage(reg: Registry, tmp_path: Path) -> None:
    run = reg.create_run(kind="train")
    other = reg.create_run(kind="train")
    folder = reg.run_dir(run.id)
    ckpt = folder / "models" / "sub-01.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"x" * 1000)
    (folder / "predictions.tsv").write_text("ab\n")
    maps = folder / "saliency"
    maps.mkdir()
    (maps / "fear.nii.gz").write_bytes(b"y" * 30)
    (maps / "love.nii.gz").write_bytes(b"y" * 20)

    assert reg.add_artifact(run.id, "sub-01", ckpt, "checkpoint") == 1000
    reg.add_artifact(run.id, "predictions", folder / "predictions.tsv", "predictions")
    assert reg.add_artifact(run.id, "saliency", maps, "saliency") == 50
    (reg.run_dir(other.id) / "m.pt").write_bytes(b"z" * 7)
    reg.add_artifact(other.id, "m", reg.run_dir(other.id) / "m.pt", "checkpoint")

    assert reg.disk_usage(run.id) == {
        "checkpoint": 1000,
        "saliency": 50,
        "predictions": 3,
        "total": 1053,
    }
    assert list(reg.disk_usage(run.id)) == ["checkpoint", "saliency", "predictions", "total"]
    assert reg.disk_usage() == {"checkpoint": 1007, "saliency": 50, "predictions": 3, "total": 1060}
    table = reg.list_runs()
    assert dict(zip(table.id, table.disk_bytes, strict=True)) == {run.id: 1053, other.id: 7}

    ckpt.write_bytes(b"x" * 10)  # rewritten by the next epoch, added again: re-measured
    reg.add_artifact(run.id, "sub-01", ckpt, "checkpoint")
    arts = reg.artifacts(run.id)
    assert arts.set_index("name").bytes.to_dict() == {
        "predictions": 3,
        "saliency": 50,
        "sub-01": 10,
    }
    assert arts.set_index("name").path["sub-01"] == f"runs/{run.id}/models/sub-01.pt"

    (tmp_path / "elsewhere.pt").write_bytes(b"1")
    with pytest.raises(ConfigError, match="must lie inside the run's folder"):
        reg.add_artifact(run.id, "x", tmp_path / "elsewhere.pt", "checkpoint")
    with pytest.raises(ConfigError, match="must lie inside the run's folder"):
        reg.add_artifact(run.id, "x", reg.run_dir(other.id) / "m.pt", "checkpoint")
    with pytest.raises(RegistryError, match="does not exist; write it before"):
        reg.add_artifact(run.id, "x", folder / "missing.pt", "checkpoint")
    with pytest.raises(ConfigError, match="did you mean 'checkpoint'"):
        reg.add_artifact(run.id, "x", ckpt, "checkpiont")


def test_paths_are_relative_so_the_root_can_be_moved(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "a")
    run = reg.create_run(kind="train", config={"epochs": 1})
    (reg.run_dir(run.id) / "m.pt").write_bytes(b"12")
    reg.add_artifact(run.id, "m", reg.run_dir(run.id) / "m.pt", "checkpoint")
    reg.log_epoch(run.id, epoch=1, train_loss=0.5)

    with sqlite3.connect(reg.db) as con:  # no absolute path anywhere in the database
        for table in ("runs", "curves", "artifacts"):
            for row in con.execute(f"SELECT * FROM {table}"):
                assert not any(str(tmp_path) in str(v) for v in row)

    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = Registry(tmp_path / "b")
    art = moved.artifacts(run.id)
    assert art.path.iloc[0] == f"runs/{run.id}/m.pt"
    assert Path(art.abspath.iloc[0]).read_bytes() == b"12"
    assert moved.get_run(run.id).config == {"epochs": 1} and len(moved.curves(run.id)) == 1
    assert moved.run_dir(run.id) == tmp_path / "b" / "runs" / run.id


# -- deleting -----------------------------------------------------------------------------------
def test_delete_run_removes_rows_folders_and_sub_runs(reg: Registry) -> None:
    study = reg.create_run(kind="study")
    sub = reg.create_run(kind="train", parent=study.id)
    keep = reg.create_run(kind="train")
    (reg.run_dir(sub.id) / "m.pt").write_bytes(b"123")
    reg.add_artifact(sub.id, "m", reg.run_dir(sub.id) / "m.pt", "checkpoint")
    reg.log_epoch(sub.id, epoch=1, train_loss=0.1)

    assert reg.delete_run(study.id) == [study.id, sub.id]
    assert not reg.run_dir(study.id).exists() and not reg.run_dir(sub.id).exists()
    assert list(reg.list_runs().id) == [keep.id]
    assert reg.disk_usage() == {"total": 0}
    assert sorted(p.name for p in (reg.root / "runs").iterdir()) == [keep.id]  # no trash left
    with pytest.raises(RegistryError, match="no run"):
        reg.get_run(sub.id)


def test_delete_refuses_a_run_whose_process_is_alive(reg: Registry) -> None:
    run = reg.create_run(kind="train", status="running", pid=os.getpid())
    with pytest.raises(RegistryError, match=f"is running in process {os.getpid()}; cancel it"):
        reg.delete_run(run.id)
    assert reg.run_dir(run.id).is_dir() and reg.get_run(run.id).status == "running"


# -- stale runs ---------------------------------------------------------------------------------
def test_mark_stale_fails_runs_whose_process_died(reg: Registry) -> None:
    dead_pid = _dead_pid()
    dead = reg.create_run(kind="train", status="running", pid=dead_pid)
    reg.update(dead.id, message="epoch 3 of 10")
    queued = reg.create_run(kind="train", pid=dead_pid)
    alive = reg.create_run(kind="train", status="running", pid=os.getpid())
    no_pid = reg.create_run(kind="train", status="running")
    finished = reg.create_run(kind="train", status="running", pid=dead_pid)
    reg.set_status(finished.id, "completed")
    elsewhere = reg.create_run(kind="train", status="running", pid=dead_pid)
    with sqlite3.connect(reg.db) as con:
        con.execute("UPDATE runs SET host = 'gpu-node-7' WHERE id = ?", (elsewhere.id,))

    assert sorted(reg.mark_stale()) == sorted([dead.id, queued.id])
    failed = reg.get_run(dead.id)
    assert failed.status == "failed"
    assert f"pid {dead_pid}" in failed.error and "died" in failed.error
    assert "epoch 3 of 10" in failed.error and f"--resume {dead.id}" in failed.error
    assert reg.get_run(queued.id).status == "failed"
    for rid, status in ((alive.id, "running"), (no_pid.id, "running"), (finished.id, "completed")):
        assert reg.get_run(rid).status == status
    assert reg.get_run(elsewhere.id).status == "running"  # cannot check another host's pids
    assert reg.mark_stale() == []


# -- concurrency --------------------------------------------------------------------------------
def _writer(root: str, run_id: str, n: int) -> None:
    reg = Registry(root)
    reg.update(run_id, status="running", pid=os.getpid())
    for epoch in range(n):
        reg.log_epoch(run_id, fold="f", epoch=epoch, train_loss=1.0 / (epoch + 1))
        reg.update(run_id, progress=(epoch + 1) / n, message=f"epoch {epoch + 1}")
    reg.set_status(run_id, "completed")


def test_another_process_writes_while_we_read_and_write(reg: Registry) -> None:
    run = reg.create_run(kind="train")
    side = reg.create_run(kind="bench")
    proc = mp.get_context("spawn").Process(target=_writer, args=(str(reg.root), run.id, 60))
    proc.start()
    seen, i = [], 0
    while proc.is_alive() or i == 0:
        seen.append(reg.get_run(run.id).progress)
        reg.curves(run.id)
        reg.list_runs()
        reg.update(side.id, notes=f"poll {i}")  # a second writer
        i += 1
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert seen == sorted(seen)  # progress only grows, never a torn read
    done = reg.get_run(run.id)
    assert (done.status, done.progress, done.message) == ("completed", 1.0, "epoch 60")
    assert len(reg.curves(run.id)) == 60
    assert reg.get_run(side.id).notes == f"poll {i - 1}"


def test_one_registry_object_can_be_shared_by_threads(reg: Registry) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                run = reg.create_run(kind="predict")
                reg.log_epoch(run.id, epoch=1, train_loss=0.1)
                reg.get_run(run.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(reg.list_runs()) == 20 and reg.list_runs().id.is_unique


# -- schema -------------------------------------------------------------------------------------
def test_schema_version_wal_and_a_newer_registry_is_refused(reg: Registry) -> None:
    with sqlite3.connect(reg.db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RegistryError, match="newer than this emocore's.*upgrade emocore"):
        Registry(reg.root)


def test_a_version_1_registry_is_migrated(tmp_path: Path) -> None:
    from emocore.runs.database import SCHEMA_V1 as _SCHEMA_V1

    root = tmp_path / "old"
    root.mkdir()
    with sqlite3.connect(root / "registry.sqlite") as con:
        for statement in _SCHEMA_V1:
            con.execute(statement)
        con.execute(
            "INSERT INTO runs (id, created_at, updated_at, kind, status) VALUES "
            "('20250101-000000-abcd', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', 'train', "
            "'completed')"
        )
        for loss in (0.9, 0.4):  # version 1 let a resumed run log an epoch twice
            con.execute(
                "INSERT INTO curves (run_id, fold, epoch, train_loss) VALUES "
                "('20250101-000000-abcd', 'f', 1, ?)",
                (loss,),
            )
        con.execute("PRAGMA user_version = 1")
    reg = Registry(root)
    assert reg.curves("20250101-000000-abcd").train_loss.tolist() == [0.4]
    old = reg.get_run("20250101-000000-abcd")
    assert (old.subjects, old.config, old.metrics) == ([], {}, {})


def test_a_damaged_database_is_reported_with_a_fix(tmp_path: Path) -> None:
    (tmp_path / "registry.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RegistryError, match="could not be used.*move it aside"):
        Registry(tmp_path)


def test_the_most_complete_study_comes_first_and_runs_say_what_they_are(tmp_path):
    from emocore.runs.registry import most_complete_first, run_label

    reg = Registry(tmp_path / "reg")
    full = reg.create_run(
        kind="study",
        subjects=[f"{i:02d}" for i in range(1, 11)],
        config={"designs": ["single-subject", "cross-subject"], "train": {"epochs": 2}},
        status="completed",
    )
    tiny = reg.create_run(  # a later one-person, one-epoch retrain
        kind="train",
        design="single-subject",
        subjects=["01"],
        config={"designs": ["single-subject"], "train": {"epochs": 1}},
        status="completed",
    )
    runs = reg.list_runs()
    assert runs["id"].iloc[0] == tiny.id  # newest first in the registry
    assert most_complete_first(runs)["id"].tolist() == [full.id, tiny.id]
    label = run_label(runs.set_index("id").loc[full.id].to_dict())
    assert label.startswith("study · single-subject + cross-subject · 10 people · 2 epochs · 20")
    assert "nan" not in run_label(runs.set_index("id").loc[tiny.id].to_dict())


def test_the_pickers_run_label_is_short_and_says_when_kind_and_design() -> None:
    """The sidebar cut "study · single-subject + cross-sub…" off at 1280 px (about 190 px of
    text: some 32 characters)."""
    from emocore.runs.registry import run_short_label

    made = "2026-11-29T20:48:12.123456Z"
    study = {"kind": "study", "created_at": made, "subjects": ["01", "02"]}
    labels = {
        run_short_label(
            {**study, "config": {"designs": ["single-subject", "cross-subject", "loso"]}}
        ),
        run_short_label({**study, "config": {"designs": ["single-subject", "cross-subject"]}}),
        run_short_label({**study, "kind": "train", "design": "single-subject"}),
        run_short_label({**study, "kind": "train", "config": {"designs": ["loso"]}}),
    }
    assert labels == {
        "11-29 20:48 · study · 3 designs",
        "11-29 20:48 · study · 2 designs",
        "11-29 20:48 · train · single",
        "11-29 20:48 · train · LOSO",
    }
    assert all(len(label) <= 32 for label in labels)
    assert run_short_label({"id": "20261129-204812-ab12", "kind": "study"}).startswith(
        "20261129-204812-ab12 · study"
    )


def test_a_version_2_registry_gains_balanced_accuracy_and_keeps_its_curves(tmp_path: Path) -> None:
    """A registry written before val_balanced_acc still opens and reads; new epochs log it."""
    from emocore.runs.database import CURVE_COLUMNS
    from emocore.runs.database import MIGRATIONS as _MIGRATIONS
    from emocore.runs.database import SCHEMA_V1 as _SCHEMA_V1

    root = tmp_path / "v2"
    root.mkdir()
    with sqlite3.connect(root / "registry.sqlite") as con:
        for statement in (*_SCHEMA_V1, *_MIGRATIONS[2]):
            con.execute(statement)
        con.execute(
            "INSERT INTO runs (id, created_at, updated_at, kind, status) VALUES "
            "('20250101-000000-abcd', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', 'study', "
            "'completed')"
        )
        con.execute(
            "INSERT INTO curves VALUES ('20250101-000000-abcd', 'f', 1, 1.5, 0.3, 1.6, 0.31, 2.0)"
        )
        con.execute("PRAGMA user_version = 2")
    reg = Registry(root)
    old = reg.curves("20250101-000000-abcd")
    assert list(old.columns) == CURVE_COLUMNS and old["val_acc"].tolist() == [0.31]
    assert old["val_balanced_acc"].isna().all()
    reg.log_epoch("20250101-000000-abcd", fold="f", epoch=2, val_acc=0.4, val_balanced_acc=0.35)
    reg.log_epoch("20250101-000000-abcd", fold="f", epoch=2, val_acc=0.4, val_balanced_acc=0.36)
    curves = Registry(root).curves("20250101-000000-abcd")
    assert curves["val_balanced_acc"].tolist()[1] == 0.36 and len(curves) == 2
    with sqlite3.connect(root / "registry.sqlite") as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
