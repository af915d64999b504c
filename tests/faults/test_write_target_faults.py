"""`--out` and every atomic write look at what is already there (issue 22, item 1): a device,
FIFO, socket or folder is refused, naming the path and the fix, and left as it was; a symbolic
link to a regular file is written through, the link kept."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from emocore._io import atomic_path, atomic_write_bytes, atomic_write_text, check_writable
from emocore.cli import main
from emocore.errors import EXIT_CODES, ConfigError
from tests.conftest import write_annotations


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _device(path: Path) -> Path:
    """A character device like /dev/full (1, 7); making one needs root (CAP_MKNOD)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc})")
    return path


def _socket(path: Path) -> Path:
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
    except OSError as exc:  # a path too long for AF_UNIX
        pytest.skip(f"cannot bind a unix socket at {path} ({exc})")
    finally:
        server.close()
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    return path


MAKERS = {
    "FIFO": (_fifo, "a named pipe (FIFO)", stat.S_ISFIFO),
    "device": (_device, "a character device", stat.S_ISCHR),
    "socket": (_socket, "a socket", stat.S_ISSOCK),
    "folder": (_folder, "a folder", stat.S_ISDIR),
}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("kind", list(MAKERS))
@pytest.mark.parametrize("writer", ["bytes", "text", "path"])
def test_atomic_writes_refuse_what_is_not_a_regular_file(
    tmp_path: Path, kind: str, writer: str
) -> None:
    make, said, is_kind = MAKERS[kind]
    target = make(tmp_path / "x")
    with pytest.raises(
        ConfigError, match=re.escape(f"cannot write {target}: it is {said}")
    ) as info:
        if writer == "bytes":
            atomic_write_bytes(target, b"new")
        elif writer == "text":
            atomic_write_text(target, "new")
        else:
            with atomic_path(target) as tmp:
                tmp.write_bytes(b"new")
    assert "not a regular file" in str(info.value) and "choose another" in str(info.value)
    assert is_kind(os.lstat(target).st_mode), f"the {kind} was replaced"
    assert _leftovers(tmp_path) == []


def test_labels_out_on_a_fifo_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    raw = write_annotations(tmp_path / "ann")
    fifo = _fifo(tmp_path / "labels.tsv")
    code = main(["labels", "--annotations", str(raw), "--out", str(fifo)])
    err = capsys.readouterr().err
    assert code == EXIT_CODES["config"]
    assert f"cannot write --out {fifo}: it is a named pipe (FIFO)" in err
    assert "choose another --out" in err and "Traceback" not in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_labels_out_on_a_device_is_refused_and_the_device_kept(tmp_path: Path, capsys) -> None:
    raw = write_annotations(tmp_path / "ann")
    device = _device(tmp_path / "dev")
    code = main(["labels", "--annotations", str(raw), "--out", str(device)])
    err = capsys.readouterr().err
    assert code == EXIT_CODES["config"]
    assert f"--out {device}: it is a character device" in err
    assert stat.S_ISCHR(os.lstat(device).st_mode) and os.lstat(device).st_rdev == os.makedev(1, 7)


def test_labels_out_through_a_symlink_writes_its_file_and_keeps_the_link(
    tmp_path: Path, capsys
) -> None:
    raw = write_annotations(tmp_path / "ann")
    shared = tmp_path / "shared"
    shared.mkdir()
    real = shared / "labels.tsv"
    real.write_text("old table\n")
    link = tmp_path / "labels.tsv"
    link.symlink_to(real)
    assert main(["labels", "--annotations", str(raw), "--out", str(link), "--json"]) == 0
    capsys.readouterr()
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("run\tvolume\tmovie_time")  # the new table, in its file
    assert _leftovers(tmp_path) == [] and _leftovers(shared) == []


def test_a_relative_symlink_is_written_through_too(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "m.json").write_text("{}")
    link = tmp_path / "m.json"
    link.symlink_to(Path("data") / "m.json")
    assert atomic_write_text(link, '{"a": 1}\n') == link
    assert link.is_symlink() and (tmp_path / "data" / "m.json").read_text() == '{"a": 1}\n'


@pytest.mark.parametrize("lead", ["missing", "loop", "fifo"])
def test_a_symlink_that_leads_nowhere_or_to_a_fifo_is_refused(tmp_path: Path, lead: str) -> None:
    link = tmp_path / "out.tsv"
    if lead == "missing":
        link.symlink_to(tmp_path / "gone" / "out.tsv")
        said = "a symbolic link that leads nowhere"
    elif lead == "loop":
        link.symlink_to(link)
        said = "a symbolic link that leads nowhere"
    else:
        link.symlink_to(_fifo(tmp_path / "pipe"))
        said = r"\(a symbolic link to .*pipe\): it is a named pipe \(FIFO\)"
    with pytest.raises(ConfigError, match=f"cannot write --out {link}.*{said}"):
        check_writable(link, "--out")
    with pytest.raises(ConfigError, match=said):
        atomic_write_text(link, "x")
    assert link.is_symlink() and not (tmp_path / "gone").exists()
    assert _leftovers(tmp_path) == []
