"""Atomic file writes: a killed job or a full disk never leaves half a file behind.

Every writer here puts the data in a temporary file *in the same folder* (so the final rename
stays on one filesystem), flushes and fsyncs it, then ``os.replace``-s it over the target. On any
failure the temporary file is removed and the previous version of the target, if any, survives
untouched. Readers therefore see either the old file or the new one, never a mixture.

:func:`atomic_path` is the same guarantee for writers that insist on a file name of their own
(``torch.save``, ``numpy.save``, ``nibabel.save``).

A rename replaces whatever has the target's name, so every writer first looks at what is there
(:func:`write_target`): a device, a FIFO, a socket or a folder is refused (a rename would swap
``/dev/null`` for a regular file), and a symbolic link is written *through*: the file it leads
to is replaced atomically and the link is kept.

:func:`check_path_name` guards names that become parts of a path (run ids, model and design
names, subject labels): one plain folder or file name, so a path built from it stays inside its
root.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emocore.errors import ConfigError, EmocoreError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "read_table",
    "atomic_path",
    "check_path_name",
    "check_writable",
    "current_umask",
    "write_target",
    "os_error_message",
    "json_safe",
    "records",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
]

logger = logging.getLogger(__name__)

#: One folder or file name: letters, digits, '.', '_' and '-', starting with a letter or digit.
_PATH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_path_name(
    what: str, value: object, *, inside: str | Path, example: str, hint: str = ""
) -> str:
    """``value`` if it is one plain name that keeps a path built from it inside ``inside``.

    Refuses separators, '..', a leading '.' or '-', spaces and anything else that is not a
    letter, digit, '.', '_' or '-' (at most 100 characters), with a ConfigError naming the bad
    value, ``what`` it should be ("a run id") and what is allowed (``example`` shows a good one,
    ``hint`` is appended).
    """
    if isinstance(value, str) and _PATH_NAME.fullmatch(value):
        return value
    raise ConfigError(
        f"{value!r} is not {what}: it must be one name of letters, digits, '.', '_' and '-' that "
        f"starts with a letter or digit (no '/', '\\', '..' or spaces), such as {example!r}, so "
        f"that it stays inside {inside}{hint}"
    )


def _free_space(path: Path) -> str:
    for folder in (path, *path.parents):
        try:
            return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free"
        except OSError:
            continue
    return "free space unknown"


def os_error_message(
    exc: OSError, doing: str, *, choose: str = "another folder", near: str | Path | None = None
) -> str:
    """'cannot <doing>: <file>: <reason>; <fix>', the fix chosen by the error number.

    For the errors a careless user or a failing disk produce (no permission, read-only or full
    disk, a link loop, a file where a folder should be), so that the CLI and the dashboard can
    say what to do instead of showing a traceback. ``choose`` names the way out ("another
    --cache"); ``near`` is the folder to speak of when the error names no file (a failed write).
    """
    name = exc.filename if exc.filename is not None else ""
    path = Path(os.fsdecode(name)) if name else None
    where = f"{path}: " if path and not doing.endswith(str(path)) else ""
    if path is None and near is not None:
        path = Path(near)
    reason = exc.strerror or exc.__class__.__name__
    code = exc.errno
    try:
        folder = path if path is not None and path.is_dir() else path and path.parent
    except OSError:  # the folder above cannot even be looked into: that folder is the problem
        folder = path.parent if path is not None else None
    if code in (errno.EACCES, errno.EPERM):
        fix = f"make {folder or 'it'} accessible to you (chmod u+rwX), or choose {choose}"
    elif code == errno.EROFS:
        fix = f"that disk is mounted read-only; choose {choose} on a writable disk"
    elif code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        free = _free_space(folder) if folder is not None else "free space unknown"
        fix = f"the disk (or your quota) is full ({free}); free space or choose {choose}"
    elif code == errno.ELOOP:
        fix = f"a symbolic link there points back to itself; remove or fix it, or choose {choose}"
    elif code in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        fix = f"a file or folder of another kind is in the way; move it, or choose {choose}"
    elif code == errno.ENOENT:
        fix = f"check the path, or choose {choose}"
    else:
        fix = f"check the disk and the permissions, or choose {choose}"
    return f"cannot {doing}: {where}{reason}; {fix}"


def check_writable(path: str | Path, option: str) -> Path:
    """``path`` once a file can be written there (or its missing folders made): checked before
    the work whose result goes there, so an unwritable ``--out`` fails in a second, not after
    the whole computation; nothing is left behind. A ConfigError names the option, the file and
    the fix."""
    target = Path(path)
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file", str(target))
        # a FIFO or a device is refused; a symbolic link's file is written, in its own folder
        folder = write_target(target, choose=f"another {option}", what=f"{option} ").parent
        while not folder.exists() and folder != folder.parent:  # the folders to be made
            folder = folder.parent
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder", str(folder))
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(
            os_error_message(exc, f"write {option} {target}", choose=f"another {option}")
        ) from exc
    return target


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def write_target(path: str | Path, *, choose: str = "another file name", what: str = "") -> Path:
    """The file an atomic write to ``path`` replaces: ``path`` itself when nothing or a regular
    file is there, or the regular file a symbolic link at ``path`` leads to.

    Anything else is refused with a ConfigError naming the path, what is there and the way out
    (``choose``; ``what`` prefixes the path, e.g. "--out "): the rename would replace a device
    (``/dev/null`` made a TSV file), a FIFO or a socket with a regular file, and a folder cannot
    be renamed over.

    Symbolic links are written through rather than refused: a link named as an output is how a
    user keeps the file elsewhere (``labels.tsv -> /shared/labels.tsv``), and writing through is
    what the shell's ``>`` and an ordinary ``open(path, "w")`` do; renaming over the link would
    silently cut it and leave the file it named stale. The file the link leads to is replaced
    atomically (the temporary file goes next to *it*, on its filesystem) and the link stays a
    link. A link that leads nowhere (dangling, or a loop) is refused: writing would create a file
    at a place nobody named. The look and the rename are not one step; a file swapped in between
    by another process is not guarded against (the usual window of any check-then-write).
    """
    target = Path(path)
    try:
        info = os.lstat(target)
    except OSError:  # nothing there (or its folder cannot be looked into: the write will say so)
        return target
    shown = f"{what}{target}"
    if stat.S_ISLNK(info.st_mode):
        try:
            real = Path(os.path.realpath(target, strict=True))
            info = os.stat(real)
        except (OSError, RuntimeError) as exc:  # RuntimeError: a loop, before Python 3.13
            raise ConfigError(
                f"cannot write {shown}: it is a symbolic link that leads nowhere (a missing "
                f"target or a loop: {exc}); point the link at a file, remove it, or choose "
                f"{choose}"
            ) from exc
        shown = f"{shown} (a symbolic link to {real})"
        target = real
    if stat.S_ISREG(info.st_mode):
        return target
    kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
    raise ConfigError(
        f"cannot write {shown}: it is {kind}, not a regular file, and writing the file would "
        f"replace it (emocore never writes over a folder, device, pipe or socket); choose "
        f"{choose} (a new file, or a regular file to replace)"
    )


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX); best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (/proc), else set back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # the only portable way to read it; restored at once
    os.umask(mask)
    return mask


def _temp_in(path: Path) -> tuple[int, Path]:
    """A temporary file next to ``path`` with the mode a plain ``open`` would give it.

    ``mkstemp`` makes it 0600 whatever the umask, and the rename would carry that mode over to
    the target: a bundle or label table other group members could not read.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except (OSError, AttributeError):  # Windows has no fchmod; its files have no such modes
        pass
    return fd, Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path`` atomically.

    The caller writes the whole file to the yielded path (and may close it any way it likes);
    it is fsynced and renamed when the ``with`` block ends. If the block raises, the temporary
    file is deleted, ``path`` is left as it was and the exception propagates::

        with atomic_path(run_dir / "model.pt") as tmp:
            torch.save(state, tmp)
    """
    target = write_target(path)  # a link's file, never the link; no device, FIFO or folder
    fd, tmp = _temp_in(target)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN and infinite floats as None and numpy scalars and arrays as plain Python.

    For text that must be strict JSON (``json.dumps(..., allow_nan=False)``): a missing value is
    ``null``, never ``NaN``, which JSON does not have. Other types are returned as they are.
    """
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy scalars and arrays
        return json_safe(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is not None and type(obj).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    return obj


def records(frame: Any) -> list[dict[str, Any]]:
    """A pandas DataFrame's rows as JSON-safe dicts (NaN -> None)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created); return the path.

    A symbolic link at ``path`` is written through, anything but a regular file refused
    (:func:`write_target`)."""
    target = write_target(path)
    fd, tmp = _temp_in(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically, without newline translation; return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (trailing newline) to ``path`` atomically; return the path.

    Values JSON has no type for (a ``Path``, a date) are written as their ``str``. NaN and
    infinity are refused with ``ValueError`` (they are not JSON; write None instead). The text is
    built before anything touches the disk, so a refused object leaves the previous file as it was.
    """
    try:
        text = json.dumps(obj, indent=indent, default=str, allow_nan=False)
    except ValueError as exc:
        raise ValueError(
            f"cannot write {Path(path).name} as JSON: {exc}; replace NaN and infinite values "
            "with None first"
        ) from exc
    return atomic_write_text(path, text + "\n")


def read_table(path: str | Path) -> pd.DataFrame:
    """A TSV table written by emocore: ``subject`` kept as text, only empty cells missing."""
    import pandas as pd  # here: pandas costs 0.3 s, and `emocore --help` imports this module

    path = Path(path)
    if not path.is_file():
        raise EmocoreError(f"{path} is missing; the run may have failed or still be running")
    try:
        return pd.read_csv(
            path, sep="\t", keep_default_na=False, na_values=[""], dtype={"subject": str}
        )
    except (OSError, ValueError) as exc:  # empty, not UTF-8, not a table (ParserError too)
        raise EmocoreError(
            f"{path} is damaged ({exc.__class__.__name__}: {exc}); restore it from a backup or "
            "re-run the study"
        ) from exc
