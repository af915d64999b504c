"""A damaged registry file is refused, not read as empty (issue 10, items 5 and 6)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from emocore.errors import EXIT_CODES, RegistryError
from emocore.runs.registry import Registry
from tests.faults.conftest import checksums


def _registry_with_runs(root: Path, n: int = 2) -> list[str]:
    registry = Registry(root)
    ids = []
    for i in range(n):
        run = registry.create_run(kind="train", design="loso" if i else None)
        (registry.run_dir(run.id) / "study.json").write_text(json.dumps({"run": i}) + "\n")
        ids.append(run.id)
    return ids


def test_emptied_database_beside_run_folders_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    ids = _registry_with_runs(root)
    for extra in ("registry.sqlite-wal", "registry.sqlite-shm"):
        (root / extra).unlink(missing_ok=True)
    (root / "registry.sqlite").write_bytes(b"")  # what a full disk or a failed copy leaves
    before = checksums(root)
    with pytest.raises(RegistryError, match=r"registry\.sqlite is empty \(0 bytes\)") as info:
        Registry(root)
    message = str(info.value)
    assert "holds 2 run folder(s)" in message and ids[0] in message
    assert "Restore registry.sqlite from a backup" in message and "move" in message
    assert checksums(root) == before  # nothing was initialised over the lost database


def test_empty_database_without_run_folders_starts_afresh(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    (root / "registry.sqlite").write_bytes(b"")
    (root / "runs").mkdir()
    (root / "runs" / ".trash-old-abc").mkdir()  # a deletion's leftover is not a run
    registry = Registry(root)
    assert registry.list_runs().empty
    run = registry.create_run(kind="train")
    assert Registry(root).get_run(run.id).status == "queued"


def test_database_that_is_a_directory_says_so(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    (root / "registry.sqlite").mkdir(parents=True)
    with pytest.raises(RegistryError, match=r"registry\.sqlite is a directory") as info:
        Registry(root)
    assert "writable" not in str(info.value)
    assert "move it aside" in str(info.value)


def test_listed_runs_keep_missing_values_as_none(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    _registry_with_runs(root)
    runs = Registry(root).list_runs()
    rows = runs.to_dict("records")
    assert {r["design"] for r in rows} == {None, "loso"}
    assert all(r["pid"] is None and r["error"] is None for r in rows)
    json.dumps(rows, allow_nan=False)  # strict JSON as they are


def test_nan_in_stored_metrics_is_stored_as_null(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    run = registry.create_run(kind="train", config={"alpha": math.inf})
    registry.update(run.id, metrics={"balanced_accuracy": math.nan, "per_class": [0.5, math.nan]})
    record = registry.get_run(run.id)
    assert record.metrics == {"balanced_accuracy": None, "per_class": [0.5, None]}
    assert record.config == {"alpha": None}


def _wal_dir(root: Path) -> str:
    Registry(root)
    (root / "registry.sqlite-wal").unlink(missing_ok=True)
    (root / "registry.sqlite-wal").mkdir()
    return "registry.sqlite-wal is a directory where SQLite keeps one of the registry's files"


def _db_dir(root: Path) -> str:
    (root / "registry.sqlite").mkdir(parents=True)
    return "registry.sqlite is a directory, not the registry's SQLite file; move it aside"


def _dangling(root: Path) -> str:
    root.mkdir()
    (root / "registry.sqlite").symlink_to(root / "gone" / "registry.sqlite")
    return "registry.sqlite is a symbolic link to"


def _loop(root: Path) -> str:
    root.mkdir()
    (root / "registry.sqlite").symlink_to("registry.sqlite")
    return "which leads nowhere (a loop or a missing target)"


def _runs_file(root: Path) -> str:
    root.mkdir()
    (root / "runs").write_text("not a folder")
    return "runs is a file, not the folder of the registry's runs; move it aside"


@pytest.mark.parametrize("make", [_wal_dir, _db_dir, _dangling, _loop, _runs_file])
def test_odd_registry_files_are_named_without_make_writable(tmp_path: Path, capsys, make) -> None:
    from emocore.cli import main

    root = tmp_path / "registry"
    said = make(root)
    before = checksums(root)
    assert main(["runs", "--registry", str(root)]) == EXIT_CODES["registry"]
    err = capsys.readouterr().err
    assert said in err and "writable" not in err, err
    assert checksums(root) == before


def test_database_turned_into_a_directory_while_open_says_so(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    for name in ("registry.sqlite", "registry.sqlite-wal", "registry.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    (root / "registry.sqlite").mkdir()
    with pytest.raises(RegistryError, match=r"registry\.sqlite is a directory") as info:
        registry.list_runs()
    assert "writable" not in str(info.value)
