from __future__ import annotations

import multiprocessing as mp
import shutil
import subprocess
import sys

import pytest

from emocore.errors import ConfigError, RegistryError
from emocore.registry import Registry


def test_create_get_list_update_round_trip(tmp_path):
    reg = Registry(tmp_path / "reg")
    run = reg.create_run(
        kind="train",
        design="single-subject",
        split="leave-one-run-out",
        subjects=["01", "02"],
        config={"epochs": 3},
        data_hash="abc",
    )
    assert run.status == "queued" and run.subjects == ["01", "02"] and run.config == {"epochs": 3}
    assert run.emocore_version and run.user
    reg.update(run.id, progress=0.5, message="epoch 2", metrics={"accuracy": 0.7})
    reg.set_status(run.id, "completed")
    got = reg.get_run(run.id)
    assert (got.status, got.progress, got.metrics) == ("completed", 0.5, {"accuracy": 0.7})
    second = reg.create_run(kind="study", leaky=True)
    table = reg.list_runs()
    assert list(table.id) == [second.id, run.id]
    assert list(reg.list_runs(kind="train").id) == [run.id]
    assert bool(reg.get_run(second.id).leaky) is True


def test_unknown_run_id_is_explained_with_a_suggestion(tmp_path):
    reg = Registry(tmp_path)
    run = reg.create_run(kind="train")
    with pytest.raises(RegistryError, match=r"no run 'nope'.*emocore runs"):
        reg.get_run("nope")
    with pytest.raises(RegistryError, match=f"did you mean '{run.id}'"):
        reg.get_run(run.id[:-1] + "x")


def test_bad_fields_and_values(tmp_path):
    reg = Registry(tmp_path)
    run = reg.create_run(kind="train")
    with pytest.raises(ConfigError, match="cannot update"):
        reg.update(run.id, created_at="yesterday")
    with pytest.raises(ConfigError, match="'status' must be one of"):
        reg.set_status(run.id, "done")
    with pytest.raises(ConfigError, match="'kind' must be one of"):
        reg.create_run(kind="party")


def test_curves_artifacts_and_disk_usage(tmp_path):
    reg = Registry(tmp_path)
    run = reg.create_run(kind="train")
    for e in (1, 2):
        reg.log_epoch(
            run.id,
            fold="runs 1",
            epoch=e,
            train_loss=1.0 / e,
            train_acc=0.5,
            val_loss=None,
            val_acc=None,
            seconds=0.1,
        )
    curves = reg.curves(run.id)
    assert list(curves.epoch) == [1, 2] and curves.train_loss.iloc[1] == 0.5
    ckpt = reg.run_dir(run.id) / "models" / "m.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x" * 1000)
    (reg.run_dir(run.id) / "p.tsv").write_text("a\n")
    reg.add_artifact(run.id, "model", ckpt, "checkpoint")
    reg.add_artifact(run.id, "predictions", reg.run_dir(run.id) / "p.tsv", "predictions")
    assert reg.disk_usage(run.id) == {"checkpoint": 1000, "predictions": 2, "total": 1002}
    with pytest.raises(ConfigError, match="must lie inside the run's folder"):
        reg.add_artifact(run.id, "x", tmp_path / "elsewhere.pt", "checkpoint")


def test_registry_folder_can_be_moved(tmp_path):
    reg = Registry(tmp_path / "a")
    run = reg.create_run(kind="train")
    (reg.run_dir(run.id) / "m.pt").write_bytes(b"12")
    reg.add_artifact(run.id, "m", reg.run_dir(run.id) / "m.pt", "checkpoint")
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = Registry(tmp_path / "b")
    art = moved.artifacts(run.id)
    assert art.path.iloc[0] == f"runs/{run.id}/m.pt"
    assert open(art.abspath.iloc[0], "rb").read() == b"12"


def _writer(root: str, run_id: str) -> None:
    reg = Registry(root)
    for e in range(50):
        reg.log_epoch(run_id, fold="f", epoch=e, train_loss=0.1)
        reg.update(run_id, progress=e / 50)


def test_another_process_writes_while_we_read(tmp_path):
    reg = Registry(tmp_path)
    run = reg.create_run(kind="train")
    proc = mp.get_context("spawn").Process(target=_writer, args=(str(tmp_path), run.id))
    proc.start()
    while proc.is_alive():
        reg.get_run(run.id)
        reg.curves(run.id)
    proc.join()
    assert proc.exitcode == 0 and len(reg.curves(run.id)) == 50


def test_mark_stale_fails_runs_whose_process_died(tmp_path):
    reg = Registry(tmp_path)
    run = reg.create_run(kind="train", status="running")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    reg.update(run.id, pid=dead.pid)
    alive = reg.create_run(kind="train", status="running")
    reg.update(alive.id, pid=subprocess.os.getpid())
    assert reg.mark_stale() == [run.id]
    assert (
        reg.get_run(run.id).status == "failed"
        and "ended without finishing" in reg.get_run(run.id).error
    )
    assert reg.get_run(alive.id).status == "running"


def test_delete_run_removes_rows_and_folder(tmp_path):
    reg = Registry(tmp_path)
    run = reg.create_run(kind="train")
    reg.delete_run(run.id)
    assert not reg.run_dir(run.id).exists()
    with pytest.raises(RegistryError):
        reg.get_run(run.id)
