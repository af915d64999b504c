"""One prepare at a time per cache: the lock file, and a symbolic link to the cache followed."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from emocore.errors import CacheError

logger = logging.getLogger(__name__)


#: The lock file inside a cache folder (hidden: it is not one of the cache's files).
LOCK_NAME = ".prepare.lock"


#: Why a lock file may not be made where prepare can still run: no permission, a read-only or
#: full disk (a read-only cache can be found up to date; a full one is refused by its own check).
_UNLOCKABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, getattr(errno, "EDQUOT", -1))


def _lock_path(cache: Path) -> Path:
    """The file prepare locks for ``cache``: inside the folder once it exists; before the first
    build, beside where the folder will be (the build renames a finished folder into place)."""
    return cache / LOCK_NAME if cache.is_dir() else cache.parent / f".{cache.name}{LOCK_NAME}"


@contextlib.contextmanager
def cache_lock(cache: Path) -> Iterator[None]:
    """Hold ``cache`` for this prepare: a second prepare of the same cache (another process,
    another person) waits here until this one has written its manifest, then reads that manifest
    and adds to it. Without it, two additions each read the manifest of before and the manifest
    written last keeps only its own person (issue 22, item 4).

    An exclusive ``flock`` on :func:`_lock_path`. The file is removed when the lock is let go and
    a rebuild renames the whole folder away, so a process that obtains the lock checks that the
    file it locked is still the one at the lock's path (the path may now be inside the new
    folder) and otherwise locks again. Where no lock file can be made (a read-only cache or disk,
    which this prepare cannot change either, or a full one; or Windows, without ``fcntl``) it
    goes on unlocked.
    """
    try:
        import fcntl  # here: POSIX only
    except ImportError:  # Windows: no flock; prepares there are not serialised
        yield
        return
    made: list[Path] = []  # folders made for the lock file, removed again if left empty
    while True:
        path = _lock_path(cache)
        missing = [f for f in (path.parent, *path.parent.parents) if not f.exists()]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            made += [f for f in missing if f not in made]
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:  # prepare's own checks then say what is wrong with the disk
            if exc.errno not in _UNLOCKABLE:
                raise
            logger.debug("cannot make the lock file %s (%s): preparing unlocked", path, exc)
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.warning("waiting for another prepare of the cache at %s to finish", cache)
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _lock_path(cache) == path and _same_file(path, fd):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was removed or the folder replaced meanwhile: lock again
    try:
        yield
    finally:
        try:  # nobody else removes a lock file they do not hold: ours if it is still there
            if _same_file(path, fd):
                path.unlink()
            for folder in sorted(made, key=lambda f: len(f.parts), reverse=True):
                folder.rmdir()  # only if empty: a failed first build leaves no folders behind
        except OSError:
            pass
        finally:
            os.close(fd)  # lets the lock go


def _same_file(path: Path, fd: int) -> bool:
    try:
        there, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


def real_cache_path(cache: Path) -> Path:
    """``cache`` with a symbolic link followed; a loop or a dangling link is refused up front
    (the build would otherwise run to its end and fail at the final rename)."""
    if not cache.is_symlink():
        return cache
    try:
        return cache.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a loop, before Python 3.13
        raise CacheError(
            f"--cache {cache} is a symbolic link that leads nowhere ({exc}): a loop or a missing "
            "target. Remove the link or point it at a folder, or choose another --cache"
        ) from exc
