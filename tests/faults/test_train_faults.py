"""Faults while training: a full disk while a checkpoint is written (issue 10, item 1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from emocore.errors import EXIT_CODES, CheckpointError
from emocore.models.cnn3d import SeedCNN
from emocore.runs.registry import Registry
from emocore.training.train import TrainConfig, save_checkpoint
from tests.faults.conftest import checksums, tiny_study

CONFIG = TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu", compile="off")


def _net() -> SeedCNN:
    return SeedCNN((7, 8, 9), 3, widths=CONFIG.widths, hidden=CONFIG.hidden)


def _full_disk_save(real_save):
    """torch.save that writes part of the file and then fails as on a full disk."""

    def save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04" + b"\0" * 1000)  # the start of a zip, then nothing
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing "
            "file data/3: file write failed; No space left on device"
        )

    return save


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name]


def test_full_disk_keeps_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    path = save_checkpoint(
        tmp_path / "models" / "a.pt", _net(), config=CONFIG, classes_n=3, epoch=1
    )
    before = checksums(tmp_path)
    monkeypatch.setattr(torch, "save", _full_disk_save(torch.save))
    with pytest.raises(CheckpointError, match=r"disk is full") as info:
        save_checkpoint(path, _net(), config=CONFIG, classes_n=3, epoch=2)
    message = str(info.value)
    assert str(path.parent) in message and "MiB free" in message and "Free space" in message
    assert _temp_files(tmp_path) == []
    assert checksums(tmp_path) == before


def test_other_write_failure_is_a_checkpoint_error(tmp_path: Path, monkeypatch) -> None:
    def broken(obj, f, *args, **kwargs):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(CheckpointError, match=r"could not save a\.pt in .*RuntimeError"):
        save_checkpoint(tmp_path / "a.pt", _net(), config=CONFIG, classes_n=3, epoch=1)
    assert _temp_files(tmp_path) == []


def test_full_disk_during_training_fails_the_run(tiny_cache, tmp_path: Path, monkeypatch) -> None:
    from emocore.workflows.study import run_study

    registry = Registry(tmp_path / "registry")
    old = registry.create_run(kind="train", design="single-subject", status="completed")
    (registry.run_dir(old.id) / "study.json").write_text('{"done": true}\n')
    before = checksums(registry.run_dir(old.id))
    monkeypatch.setattr(torch, "save", _full_disk_save(torch.save))
    with pytest.raises(CheckpointError, match=r"disk is full.*Free space there and --resume"):
        run_study(tiny_cache, registry, tiny_study(), kind="train")
    assert _temp_files(registry.root) == []
    reopened = Registry(registry.root)
    runs = reopened.list_runs()
    assert len(runs) == 2
    failed = runs[runs["id"] != old.id].iloc[0]
    assert failed["status"] == "failed"
    assert "disk is full" in failed["error"] and str(registry.root) in failed["error"]
    assert checksums(registry.run_dir(old.id)) == before


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A real 1 MiB tmpfs; skipped where the machine does not allow mounting one."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_real_full_tmpfs(small_tmpfs: Path) -> None:
    path = save_checkpoint(small_tmpfs / "a.pt", _net(), config=CONFIG, classes_n=3, epoch=1)
    before = checksums(small_tmpfs)
    filler = small_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk to the last block, unbuffered
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(CheckpointError, match=r"could not save a\.pt in .*(disk is full|Error)"):
        save_checkpoint(path, _net(), config=CONFIG, classes_n=3, epoch=2)
    filler.unlink()
    assert _temp_files(small_tmpfs) == []
    assert checksums(small_tmpfs) == before


# -- damaged checkpoints (item 8) -------------------------------------------------------------
def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _drop(key: str):
    return lambda s: {k: v for k, v in s.items() if k != key}


def _set(key: str, value):
    return lambda s: {**s, key: value}


def _config(**changes):
    return lambda s: {**s, "config": {**s["config"], **changes}}


BAD_CHECKPOINTS = {
    "no model": (_drop("model"), "it lacks the key 'model'"),
    "no config": (_drop("config"), "it lacks the key 'config'"),
    "no in_shape": (_drop("in_shape"), "it lacks the key 'in_shape'"),
    "no n_classes": (_drop("n_classes"), "it lacks the key 'n_classes'"),
    "config a list": (_set("config", [1, 2]), "'config' is list, not dict"),
    "in_shape 2-D": (_set("in_shape", [7, 8]), "'in_shape' is [7, 8], not three positive sides"),
    "one class": (_set("n_classes", 1), "'n_classes' is 1, fewer than two classes"),
    "model not tensors": (_set("model", {"w": "x"}), "'model' holds values that are not tensors"),
    "epochs text": (_config(epochs="ten"), "its training config cannot be read"),
    "widths text": (_config(widths="wide"), "its training config cannot be read"),
    "lr text": (_config(lr="fast"), "its training config cannot be read"),
    "extra a list": (_set("extra", []), "'extra' is list, not dict"),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_damaged_checkpoint_is_a_checkpoint_error(tmp_path: Path, case: str) -> None:
    from emocore.training.train import load_checkpoint

    path = save_checkpoint(tmp_path / "a.pt", _net(), config=CONFIG, classes_n=3, epoch=1)
    change, said = BAD_CHECKPOINTS[case]
    torch.save(change(_state(path)), path)
    before = checksums(tmp_path)
    with pytest.raises(CheckpointError, match=r"a\.pt is damaged: ") as info:
        load_checkpoint(path, grid_shape=(7, 8, 9))
    assert said in str(info.value) and "retrain the model" in str(info.value)
    assert checksums(tmp_path) == before


def test_checkpoint_whose_weights_do_not_fit_is_a_checkpoint_error(tmp_path: Path) -> None:
    from emocore.training.train import load_checkpoint

    path = save_checkpoint(tmp_path / "a.pt", _net(), config=CONFIG, classes_n=3, epoch=1)
    torch.save(_config(hidden=-5)(_state(path)), path)
    with pytest.raises(CheckpointError, match=r"a\.pt does not fit the seed network"):
        load_checkpoint(path)


def test_predict_with_a_damaged_checkpoint_exits_2(tiny_cache, tmp_path: Path, capsys) -> None:
    from emocore.cli import main

    registry = Registry(tmp_path / "registry")
    run = registry.create_run(kind="train", status="completed")
    path = registry.run_dir(run.id) / "models" / "single-subject" / "sub-01.pt"
    save_checkpoint(path, _net(), config=CONFIG, classes_n=3, epoch=1)
    torch.save(_config(epochs="ten")(_state(path)), path)
    code = main(
        ["predict", "--registry", str(registry.root), "--cache", str(tiny_cache.path)]
        + ["--run", run.id, "--model", "single-subject/sub-01", "--subject", "01"]
        + ["--device", "cpu"]
    )
    err = capsys.readouterr().err
    assert (
        code == EXIT_CODES["data"]
        and f"{path} is damaged: its training config cannot be read" in err
    ), err
