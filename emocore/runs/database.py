"""The registry's SQLite file: its tables and their migrations, and how it is opened.

Concurrency: the database runs in WAL mode with a 10 s busy timeout and every call opens its own
short-lived connection, so one ``Registry`` object may be shared between threads (Streamlit's
``st.cache_resource``) and a background training process can write progress while the dashboard
or ``emocore runs`` reads. Writes take the write lock up front (``BEGIN IMMEDIATE``), so a
read-check-write such as a status transition cannot interleave with another writer. WAL needs a
local disk: SQLite documents that it does not work on network filesystems.

Read-only registries (an archive, a read-only mount, a folder of another user): when the folder
or ``registry.sqlite`` cannot be written, the registry is opened read-only (SQLite's ``mode=ro``,
or ``immutable=1`` when no write-ahead log is there to read). Listing, showing and reading runs
work; anything that writes raises a RegistryError naming the folder
(:meth:`RegistryDatabase.check_writable`).
``Registry(root, create=False)`` opens an existing registry only: commands that read runs never
create an empty registry where a mistyped ``--registry`` points.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emocore import __version__
from emocore.errors import RegistryError

__all__ = [
    "ARTIFACT_COLUMNS",
    "CURVE_COLUMNS",
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "RegistryDatabase",
]

# The registry's messages keep the logger name they had before the registry was split into
# modules: the CLI's log lines show it, and callers filter on it.
logger = logging.getLogger("emocore.runs.registry")

#: Bumped whenever the tables change; older registries are migrated on open, newer ones refused.
SCHEMA_VERSION = 4
#: The oldest schema a read-only registry can be read in (it cannot be migrated); the columns
#: added since are read as missing.
_READ_ONLY_MIN_VERSION = 2
#: The registry's SQLite file, directly below its root.
DB_NAME = "registry.sqlite"
#: The files SQLite keeps next to the database (write-ahead log, shared memory, rollback journal).
_DB_COMPANIONS = ("-wal", "-shm", "-journal")
_BUSY_TIMEOUT_S = 10.0

# Version 1 tables, kept verbatim: a fresh registry is built as version 1 and then migrated, so
# new and migrated databases are the same. There are no SQL foreign keys or CHECKs (SQLite cannot
# add them to an existing table); the Python layer checks run ids, kinds and statuses instead.
SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, user TEXT,
        host TEXT, kind TEXT NOT NULL, design TEXT, split TEXT, leaky INTEGER NOT NULL DEFAULT 0,
        subjects TEXT, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, message TEXT,
        pid INTEGER, config TEXT, data_hash TEXT, emocore_version TEXT, metrics TEXT, error TEXT,
        parent TEXT, notes TEXT)""",
    """CREATE TABLE IF NOT EXISTS curves (
        run_id TEXT NOT NULL, fold TEXT NOT NULL, epoch INTEGER NOT NULL, train_loss REAL,
        train_acc REAL, val_loss REAL, val_acc REAL, seconds REAL)""",
    "CREATE INDEX IF NOT EXISTS curves_run ON curves(run_id)",
    """CREATE TABLE IF NOT EXISTS artifacts (
        run_id TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,
        bytes INTEGER NOT NULL, PRIMARY KEY (run_id, name))""",
)
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 2: one row per (run, fold, epoch) so a resumed run re-logs instead of duplicating; indexes
    # for the dashboard's newest-first, by-status and by-parent queries.
    2: (
        """DELETE FROM curves WHERE rowid NOT IN
           (SELECT MAX(rowid) FROM curves GROUP BY run_id, fold, epoch)""",
        "CREATE UNIQUE INDEX IF NOT EXISTS curves_key ON curves(run_id, fold, epoch)",
        "CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at)",
        "CREATE INDEX IF NOT EXISTS runs_status ON runs(status)",
        "CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent)",
    ),
    # 3: held-out balanced accuracy per epoch (train.py's val_balanced_acc), so curves can be
    # drawn against chance 1/K; rows logged before it read as NaN.
    3: ("ALTER TABLE curves ADD COLUMN val_balanced_acc REAL",),
    # 4: the start time of the recorded process, so a reused process id is not taken for the
    # run's process (see emocore.runs.processes.process_start).
    4: ("ALTER TABLE runs ADD COLUMN pid_start TEXT",),
}

CURVE_COLUMNS = [
    "run_id",
    "fold",
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "seconds",
    "val_balanced_acc",
]
ARTIFACT_COLUMNS = ["run_id", "name", "path", "kind", "bytes"]


class RegistryDatabase:
    """The connections to a registry's ``registry.sqlite``: opening it (creating and migrating
    the tables, or reading it read-only), one short-lived connection per call, write
    transactions, and errors that say what is wrong with the file and how to fix it.

    :class:`emocore.runs.registry.Registry` builds on it and sets ``root``, ``db`` and
    ``read_only`` before calling :meth:`_check_db_file` and :meth:`_open`.
    """

    root: Path
    db: Path
    #: True when the folder or its database cannot be written: then only reading works.
    read_only: bool

    def _check_db_file(self) -> None:
        """Refuse a database path that is a folder, or an emptied database beside run folders.

        A 0-byte ``registry.sqlite`` (a full disk, a failed copy) would otherwise open as a new,
        empty registry and list 0 runs while ``runs/`` still holds their folders. A 0-byte file
        with no run folders is a registry that was never written to: it is set up as new.
        """
        if self.db.is_dir():
            raise RegistryError(
                f"{self.db} is a directory, not the registry's SQLite file; move it aside (or "
                "choose another --registry) and open the folder again"
            )
        wal = self.db.with_name(self.db.name + "-wal")
        if not self.db.is_file() or self.db.stat().st_size > 0:
            return
        if wal.is_file() and wal.stat().st_size > 0:
            return  # SQLite rebuilds the database from its write-ahead log
        folder = self.root / "runs"
        runs = sorted(
            p.name
            for p in (folder.iterdir() if folder.is_dir() else ())
            if p.is_dir() and p.name[:1] != "."
        )
        if runs:
            shown = ", ".join(runs[:3]) + (", ..." if len(runs) > 3 else "")
            raise RegistryError(
                f"{self.db} is empty (0 bytes) but {self.root / 'runs'} holds {len(runs)} run "
                f"folder(s) ({shown}): the registry's database was lost, e.g. on a full disk. "
                f"Restore {DB_NAME} from a backup; or, to start afresh without those runs, move "
                f"{self.root / 'runs'} and the empty {DB_NAME} aside and open the folder again"
            )

    def _fail(self, exc: sqlite3.Error) -> RegistryError:
        text = str(exc)
        if self.db.is_dir():
            return RegistryError(
                f"{self.db} is a directory, not the registry's SQLite file ({text}); move it "
                "aside (or choose another --registry) and open the folder again"
            )
        if "locked" in text or "busy" in text:
            fix = (
                f"another process held it for more than {_BUSY_TIMEOUT_S:.0f} s; try again, and "
                "keep the registry on a local disk (SQLite's WAL mode does not work on network "
                "filesystems)"
            )
        elif "not a database" in text or "malformed" in text:
            fix = "the file is damaged or not a registry; move it aside and open the folder again"
        elif self.read_only:
            fix = self._open_problem() or (
                f"the registry is read-only and SQLite could not read it as it is; copy the "
                f"folder {self.root} to a writable place and open the copy"
            )
        elif "readonly" in text or "unable to open" in text:
            fix = self._open_problem() or (
                "make the folder and the file writable, or choose another --registry"
            )
        else:
            fix = "check the disk and the file permissions"
        return RegistryError(f"the run registry {self.db} could not be used ({text}); {fix}")

    def _open_problem(self) -> str | None:
        """Why SQLite cannot open the database when permissions are not the reason, with the fix:
        a folder, or a link that leads nowhere, where SQLite needs one of its files."""
        for path in [self.db] + [self.db.with_name(self.db.name + e) for e in _DB_COMPANIONS]:
            if path.is_symlink() and not path.exists():
                return (
                    f"{path} is a symbolic link to {os.readlink(path)}, which leads nowhere (a "
                    "loop or a missing target); remove the link or point it at the file"
                )
            if path.is_dir():
                return (
                    f"{path} is a directory where SQLite keeps one of the registry's files; move "
                    "it aside (or choose another --registry) and open the folder again"
                )
        return None

    def _read_only_uri(self) -> str:
        """The URI that opens the database for reading only. With a write-ahead log beside it
        (a copy taken while runs were recorded), ``mode=ro`` reads the log too; without one,
        ``immutable=1`` tells SQLite not to create the ``-shm`` file it cannot write here."""
        path = urllib.parse.quote(str(self.db.absolute()))
        wal = self.db.with_name(self.db.name + "-wal")
        shm = self.db.with_name(self.db.name + "-shm")
        live = wal.is_file() and wal.stat().st_size > 0 and shm.is_file()
        return f"file:{path}?mode=ro" + ("" if live else "&immutable=1")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh autocommit connection: one per call, so threads and processes never share one."""
        try:
            if self.read_only:
                con = sqlite3.connect(
                    self._read_only_uri(), timeout=_BUSY_TIMEOUT_S, isolation_level=None, uri=True
                )
            else:
                con = sqlite3.connect(self.db, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        con.row_factory = sqlite3.Row
        try:
            con.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            yield con
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        finally:
            con.close()

    def check_writable(self, doing: str = "record or change runs") -> None:
        """A RegistryError naming the folder when the registry is read-only (see ``read_only``)."""
        if self.read_only:
            raise RegistryError(
                f"the run registry {self.root} is read-only (an archive, a read-only mount or "
                f"another user's folder), so emocore cannot {doing} there; listing and showing "
                f"its runs work. Make {self.root} and its {DB_NAME} writable, or copy the folder "
                "to a writable place and use the copy (--registry)"
            )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its first statement."""
        self.check_writable()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _open(self) -> None:
        if self.read_only:
            with self._connect() as con:
                version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RegistryError(
                    f"{self.db} has schema version {version}, newer than this emocore's "
                    f"{SCHEMA_VERSION} (emocore {__version__}); upgrade emocore to read it"
                )
            if version < _READ_ONLY_MIN_VERSION:
                raise RegistryError(
                    f"{self.db} was written by an early emocore (schema version {version}) and "
                    f"is read-only, so it cannot be upgraded in place; copy the folder "
                    f"{self.root} to a writable place and open the copy (it is upgraded there)"
                )
            return
        with self._connect() as con:
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning(
                    "the registry %s runs in %s mode, not WAL; readers may wait for writers",
                    self.db,
                    mode,
                )
            if con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
        with self._write() as con:  # re-read under the lock: another process may have migrated
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RegistryError(
                    f"{self.db} has schema version {version}, newer than this emocore's "
                    f"{SCHEMA_VERSION} (emocore {__version__}); upgrade emocore or use another "
                    "--registry folder"
                )
            if version == 0:
                for statement in SCHEMA_V1:
                    con.execute(statement)
                version = 1
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    con.execute(statement)
                logger.info("migrated the registry %s to schema version %d", self.db, target)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
