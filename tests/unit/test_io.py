"""Atomic writes: the new content or the old one, never half a file, never a stray temp file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from emocore import _io
from emocore._io import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text


def _leftovers(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_writes_create_parents_and_replace_old_content(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "data.bin"
    assert atomic_write_bytes(target, b"old") == target
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert _leftovers(target.parent, "data.bin") == []


def test_text_keeps_newlines_and_json_round_trips(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "t.tsv", "a\tb\r\nc\n")
    assert (tmp_path / "t.tsv").read_bytes() == b"a\tb\r\nc\n"
    obj = {"subjects": ["01", "02"], "path": Path("cache/x"), "n": 3}
    atomic_write_json(tmp_path / "m.json", obj)
    text = (tmp_path / "m.json").read_text()
    assert text.endswith("\n")
    assert json.loads(text) == {"subjects": ["01", "02"], "path": "cache/x", "n": 3}


def test_failure_mid_write_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "manifest.json"
    atomic_write_text(target, "previous")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io.os, "fsync", disk_full)  # after the bytes went out, before the rename
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, "x" * 100_000)
    assert target.read_text() == "previous"
    assert _leftovers(tmp_path, "manifest.json") == []


def test_failed_rename_removes_the_temporary_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "labels.tsv"
    atomic_write_text(target, "old")

    def no_replace(src: str, dst: str) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(_io.os, "replace", no_replace)
    with pytest.raises(PermissionError):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, "labels.tsv") == []


def test_interrupt_during_write_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    """A KeyboardInterrupt (not an Exception) must clean up too."""
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old")
    real_fdopen = os.fdopen

    class Half:
        def __init__(self, handle) -> None:
            self.handle = handle

        def __enter__(self) -> Half:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> None:
            self.handle.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(_io.os, "fdopen", lambda fd, mode: Half(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"0123456789")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path, "data.bin") == []


def test_json_refuses_nan_before_touching_the_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"accuracy": 0.5})
    with pytest.raises(ValueError, match=r"metrics\.json.*None"):
        atomic_write_json(target, {"accuracy": float("nan")})
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    assert _leftovers(tmp_path, "metrics.json") == []


def test_atomic_path_for_writers_that_want_a_file_name(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"weights")
        assert not target.exists()
    assert target.read_bytes() == b"weights"

    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"weights"
    assert _leftovers(tmp_path, "model.pt") == []
