"""The run registry: one SQLite file and one folder per run, read by the CLI and the dashboard.

Layout below the registry root (created if missing)::

    registry.sqlite      runs, per-epoch curves and artifacts (schema version in user_version)
    runs/<run id>/       the files of one run (checkpoints, predictions, saliency, reports),
                         marked as a BIDS derivative dataset by a dataset_description.json that
                         names emocore, its version and the folders the run read (cache, runs)

Every path stored in the database is relative to the root, in POSIX form, so the folder can be
moved or copied to another machine and opened there.

Concurrency: the database runs in WAL mode with a 10 s busy timeout and every call opens its own
short-lived connection, so one ``Registry`` object may be shared between threads (Streamlit's
``st.cache_resource``) and a background training process can write progress while the dashboard
or ``emocore runs`` reads. Writes take the write lock up front (``BEGIN IMMEDIATE``), so a
read-check-write such as a status transition cannot interleave with another writer. WAL needs a
local disk: SQLite documents that it does not work on network filesystems.

Status life cycle (:data:`TRANSITIONS`)::

    queued -> running | failed | cancelled
    running -> completed | failed | cancelled
    failed, cancelled -> running          (resume)
    completed                             (final)

Setting the status a run already has is allowed and changes nothing but the error text.

Read-only registries (an archive, a read-only mount, a folder of another user): when the folder
or ``registry.sqlite`` cannot be written, the registry is opened read-only (SQLite's ``mode=ro``,
or ``immutable=1`` when no write-ahead log is there to read). Listing, showing and reading runs
work; anything that writes raises a RegistryError naming the folder (:meth:`Registry.check_writable`).
``Registry(root, create=False)`` opens an existing registry only: commands that read runs never
create an empty registry where a mistyped ``--registry`` points.

Process ids are recorded with the process's start time (``pid_start``: the boot id and the start
tick of ``/proc/PID/stat``), so a run whose process died is told apart from an unrelated process
that was later given the same id.
"""

from __future__ import annotations

import difflib
import getpass
import json
import logging
import math
import os
import secrets
import shutil
import socket
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from emocore import __version__
from emocore._io import check_path_name, json_safe
from emocore.errors import ConfigError, DataError, EmocoreError, RegistryError, check_choice

__all__ = [
    "ARTIFACT_KINDS",
    "DESIGNS",
    "KINDS",
    "SCHEMA_VERSION",
    "STATUSES",
    "TRANSITIONS",
    "Registry",
    "RunRecord",
    "host_name",
    "most_complete_first",
    "pid_alive",
    "process_alive",
    "recording_outcome",
    "run_label",
    "run_short_label",
    "redo_hint",
    "check_resumable",
    "RESUMABLE_KINDS",
]

logger = logging.getLogger(__name__)

KINDS = ("study", "train", "evaluate", "predict", "bench", "assess")
STATUSES = ("queued", "running", "completed", "failed", "cancelled")
#: Same values as ``emocore.training.designs.DESIGNS``; repeated here so the registry never imports torch.
DESIGNS = ("single-subject", "cross-subject", "loso")
ARTIFACT_KINDS = (
    "checkpoint",
    "predictions",
    "saliency",
    "embeddings",
    "report",
    "metrics",
    "curves",
    "log",
    "other",
)
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "failed", "cancelled"}),
    "running": frozenset({"completed", "failed", "cancelled"}),
    "failed": frozenset({"running"}),
    "cancelled": frozenset({"running"}),
    "completed": frozenset(),
}
_ACTIVE = ("queued", "running")
#: What a run folder of each kind holds, for its dataset_description.json.
_RUN_CONTENTS = {
    "study": "cross-validated predictions, metrics, final models, saliency maps and embeddings",
    "train": "cross-validated predictions, metrics, final models, saliency maps and embeddings",
    "evaluate": "metrics recomputed from the predictions of its source runs",
    "predict": "predictions of a trained model on new volumes",
    "bench": "training speed measurements",
    "assess": "one new person's predictions and findings against a finished study",
}

#: Bumped whenever the tables change; older registries are migrated on open, newer ones refused.
SCHEMA_VERSION = 4
#: The oldest schema a read-only registry can be read in (it cannot be migrated); the columns
#: added since are read as missing.
_READ_ONLY_MIN_VERSION = 2
_DB_NAME = "registry.sqlite"
#: The files SQLite keeps next to the database (write-ahead log, shared memory, rollback journal).
_DB_COMPANIONS = ("-wal", "-shm", "-journal")
_BUSY_TIMEOUT_S = 10.0

# Version 1 tables, kept verbatim: a fresh registry is built as version 1 and then migrated, so
# new and migrated databases are the same. There are no SQL foreign keys or CHECKs (SQLite cannot
# add them to an existing table); the Python layer checks run ids, kinds and statuses instead.
_SCHEMA_V1 = (
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
_MIGRATIONS: dict[int, tuple[str, ...]] = {
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
    # run's process (see _pid_start).
    4: ("ALTER TABLE runs ADD COLUMN pid_start TEXT",),
}

_UPDATABLE = (
    "status",
    "progress",
    "message",
    "pid",
    "metrics",
    "error",
    "notes",
    "design",
    "split",
    "leaky",
    "subjects",
    "config",
    "data_hash",
    "parent",
)
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
_ARTIFACT_COLUMNS = ["run_id", "name", "path", "kind", "bytes"]


@dataclass(frozen=True)
class RunRecord:
    """One run as stored, JSON fields decoded. ``to_dict()`` is ready for ``json.dumps``."""

    id: str
    created_at: str
    updated_at: str
    user: str | None
    host: str | None
    kind: str
    design: str | None
    split: str | None
    leaky: bool
    subjects: list[str]
    status: str
    progress: float
    message: str | None
    pid: int | None
    config: dict[str, Any]
    data_hash: str | None
    emocore_version: str | None
    metrics: dict[str, Any]
    error: str | None
    parent: str | None
    notes: str | None
    #: When the process ``pid`` started ("<boot id>:<start tick>"); None when not known.
    pid_start: str | None = None
    #: Why this row cannot be read in full (e.g. its ``config`` is not JSON), else None. Only
    #: :meth:`Registry.list_runs` and ``get_run(..., strict=False)`` return such records.
    unreadable: str | None = None

    @property
    def finished(self) -> bool:
        """True once the run can no longer change by itself (completed, failed or cancelled)."""
        return self.status not in _ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON types (lists and dicts are copies)."""
        return asdict(self)


#: The columns of the ``runs`` table, in RunRecord's order.
_RUN_COLUMNS = [f.name for f in fields(RunRecord) if f.name != "unreadable"]


# -- small helpers ----------------------------------------------------------------------------
def _now() -> str:
    """UTC, ISO 8601 with microseconds: sorts as text and orders runs made in the same second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name and no passwd entry in some containers
        return "unknown"


def host_name() -> str:
    """This machine's name as runs record it (``unknown`` when it has none)."""
    try:
        return socket.gethostname() or "unknown"
    except OSError:
        return "unknown"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine; a zombie (ended, unreaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:  # e.g. Windows with an invalid pid
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): trust kill()
        return True


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "?"


def _pid_start(pid: int | None) -> str | None:
    """When process ``pid`` started, as "<boot id>:<start tick>" (field 22 of /proc/PID/stat,
    in clock ticks since boot); None without /proc (macOS) or for no such process. Two processes
    that were given the same id one after the other differ here."""
    if pid is None:
        return None
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"{_boot_id()}:{int(after_name[19])}"  # field 22; fields 1 and 2 precede ")"
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid: int, started: str | None) -> bool:
    """Whether the process recorded as ``pid`` (started at ``started``, see :func:`_pid_start`)
    still runs on this machine: a live process that now holds the id but started at another
    time is another process, and the recorded one is dead. Without a recorded start (older
    rows, no /proc) the id alone decides."""
    if not pid_alive(pid):
        return False
    if started is None:
        return True
    now = _pid_start(pid)
    return now is None or now == started


def _to_json(name: str, value: Any, *, mapping: bool) -> str:
    if mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{name}' must be a dict; {type(value).__name__} was provided")
        value = dict(value)
    else:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(
                f"'{name}' must be a list of strings such as ['01', '02']; {value!r} was provided"
            )
        value = [str(v) for v in value]
    # default=str keeps what callers already store (a Path in a config becomes its text); NaN
    # and infinity are stored as null, so every stored field is strict JSON.
    return json.dumps(json_safe(value), sort_keys=mapping, default=str, allow_nan=False)


def _encode(name: str, value: Any) -> Any:
    """Check one updatable field and turn it into what the ``runs`` table stores."""
    if name == "progress":
        try:
            p = float(value)
        except (TypeError, ValueError):
            p = math.nan
        if not -1e-9 <= p <= 1 + 1e-9:
            raise ConfigError(f"'progress' must be a number from 0 to 1; {value!r} was provided")
        return min(max(p, 0.0), 1.0)
    if name == "status":
        check_choice("status", value, STATUSES)
        return value
    if name == "design":
        check_choice("design", value, DESIGNS, optional=True)
        return value
    if name == "leaky":
        return int(bool(value))
    if name == "pid":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"'pid' must be a process id (int) or None; {value!r} was provided")
        if value is not None and value <= 0:
            raise ConfigError(f"'pid' must be a positive process id; {value!r} was provided")
        return value
    if name in ("config", "metrics"):
        return _to_json(name, {} if value is None else value, mapping=True)
    if name == "subjects":
        return _to_json(name, [] if value is None else value, mapping=False)
    if name == "split" and value is not None and not str(value).strip():
        raise ConfigError("'split' must name the split (e.g. 'leave-one-run-out') or be None")
    return None if value is None else str(value)


def _decoded(name: str, text: Any, empty: dict | list) -> tuple[Any, str | None]:
    """A JSON field of a row, or ``empty`` and what is wrong with it."""
    if text is None or text == "":
        return type(empty)(), None
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        return type(empty)(), f"its '{name}' is not JSON ({exc})"
    if not isinstance(value, type(empty)):
        wanted = "object" if isinstance(empty, dict) else "list"
        return type(empty)(), f"its '{name}' holds {type(value).__name__}, not a JSON {wanted}"
    return value, None


def _record(row: sqlite3.Row) -> RunRecord:
    """The row as a RunRecord; what cannot be read is left empty and said in ``unreadable``."""
    present = set(row.keys())
    d: dict[str, Any] = {k: row[k] if k in present else None for k in _RUN_COLUMNS}
    problems = []
    for name, empty in (("subjects", []), ("config", {}), ("metrics", {})):
        d[name], problem = _decoded(name, d[name], empty)
        problems.append(problem)
    try:
        d["progress"] = float(d["progress"] or 0.0)
    except (TypeError, ValueError):
        problems.append(f"its 'progress' is {d['progress']!r}, not a number")
        d["progress"] = 0.0
    if d["status"] not in STATUSES:
        problems.append(f"its 'status' is {d['status']!r}, not one of {', '.join(STATUSES)}")
    if d["kind"] not in KINDS:
        problems.append(f"its 'kind' is {d['kind']!r}, not one of {', '.join(KINDS)}")
    if d["pid"] is not None and not isinstance(d["pid"], int):
        problems.append(f"its 'pid' is {d['pid']!r}, not a process id")
        d["pid"] = None
    d["leaky"] = bool(d["leaky"])
    d["id"] = str(d["id"])
    d["unreadable"] = "; ".join(p for p in problems if p) or None
    return RunRecord(**d)


#: The kinds of run that ``train --resume`` goes on with (from their checkpoints).
RESUMABLE_KINDS = ("train", "study")


def redo_hint(run: Mapping[str, Any] | RunRecord) -> str:
    """How to go on after a run of this kind was interrupted, as a sentence with the command.

    Train and study runs resume from their checkpoints (``emocore train --resume ID``, whatever
    command started them: the recorded config is reused). An assess or evaluate run has nothing
    to resume: it is done again with the command that makes it, from what the run recorded.
    ``run`` is a :class:`RunRecord` or a registry row (its ``config`` may still be JSON text;
    unreadable JSON gives the command with placeholders).
    """
    get = (lambda k: getattr(run, k, None)) if isinstance(run, RunRecord) else run.__getitem__
    run_id, kind = get("id"), get("kind")
    config: Any = get("config")
    if isinstance(config, (str, bytes)):
        try:
            config = json.loads(config)
        except ValueError:
            config = None
    config = config if isinstance(config, dict) else {}
    if kind in RESUMABLE_KINDS:
        return f"Resume it with `emocore train --resume {run_id}` or start a new run"
    if kind == "assess":
        subjects: Any = get("subjects")
        if isinstance(subjects, (str, bytes)):
            try:
                subjects = json.loads(subjects)
            except ValueError:
                subjects = None
        subject = config.get("subject") or (
            subjects[0] if isinstance(subjects, list) and subjects else "XX"
        )
        parent = config.get("run") or get("parent") or "PARENT"
        return (
            f"An assessment cannot be resumed: redo it with `emocore assess --run {parent} "
            f"--subject {subject} --force` (with the same --cache)"
        )
    if kind == "evaluate":
        sources = config.get("source_runs") or [config.get("source_run") or get("parent") or "RUN"]
        options = " ".join(f"--run {r}" for r in sources)
        if config.get("permutations"):
            options += f" --permutations {config['permutations']}"
        if config.get("linear"):
            options += " --linear"
        return f"An evaluation cannot be resumed: redo it with `emocore evaluate {options}`"
    return f"A {kind} run cannot be resumed: start it again"


def check_resumable(run: RunRecord) -> RunRecord:
    """``run`` if ``--resume`` can go on with it (a train or study run); else a RegistryError
    saying what kind of run it is and how to redo it (:func:`redo_hint`): resuming an assess
    run would start an unrelated training inside it."""
    if run.kind not in RESUMABLE_KINDS:
        article = "an" if run.kind[:1] in "aeiou" else "a"
        raise RegistryError(
            f"run {run.id} is {article} {run.kind} run: --resume goes on with an interrupted "
            f"train or study run only (it would start a training inside this one). "
            + redo_hint(run)
        )
    return run


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.stat().st_size


def _writable(path: Path) -> bool:
    """Whether this process may write ``path``, as its effective ids and capabilities decide
    (a read-only mount says no even to root)."""
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


class Registry:
    """Runs, their curves and their files below ``root`` (created if missing, unless
    ``create=False``). A registry whose folder or database cannot be written is opened
    read-only (``read_only``): it is read as usual and refuses every write, naming the folder.

    >>> registry = Registry("registry")                                      # doctest: +SKIP
    >>> run = registry.create_run(kind="train", design="single-subject", subjects=["01"])
    >>> registry.update(run.id, status="running", pid=os.getpid())
    >>> registry.log_epoch(run.id, fold="run-1", epoch=1, train_loss=1.2, val_acc=0.3)
    >>> registry.set_status(run.id, "completed")
    """

    def __init__(self, root: str | Path, *, create: bool = True) -> None:
        self.root = Path(root).expanduser()
        self.db = self.root / _DB_NAME
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(
                f"the registry root {self.root} is a file, not a folder; choose another --registry"
            )
        runs = self.root / "runs"
        if runs.exists() and not runs.is_dir():
            raise RegistryError(
                f"{runs} is a file, not the folder of the registry's runs; move it aside (or "
                "choose another --registry) and open the folder again"
            )
        if not create and not (self.db.is_file() or self.db.is_symlink() or self.db.is_dir()):
            raise RegistryError(
                f"no run registry at {self.root} ({_DB_NAME} is not there); check --registry: "
                "it is the folder that `emocore train` or `emocore study` recorded runs in"
            )
        #: True when the folder or its database cannot be written: then only reading works.
        self.read_only = self.root.is_dir() and not (
            _writable(self.root) and (not self.db.is_file() or _writable(self.db))
        )
        if self.read_only and not self.db.is_file():
            raise RegistryError(
                f"the registry folder {self.root} is read-only and holds no {_DB_NAME}: there "
                "are no runs to read, and none can be recorded; make it writable or choose "
                "another --registry"
            )
        if not self.read_only:
            try:
                runs.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RegistryError(
                    f"cannot create the registry folder {self.root} ({exc}); choose a writable "
                    "--registry"
                ) from exc
        self._check_db_file()
        self._open()

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # -- connections ---------------------------------------------------------------------------
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
                f"Restore {_DB_NAME} from a backup; or, to start afresh without those runs, move "
                f"{self.root / 'runs'} and the empty {_DB_NAME} aside and open the folder again"
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
                f"its runs work. Make {self.root} and its {_DB_NAME} writable, or copy the folder "
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
                for statement in _SCHEMA_V1:
                    con.execute(statement)
                version = 1
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    con.execute(statement)
                logger.info("migrated the registry %s to schema version %d", self.db, target)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- runs ----------------------------------------------------------------------------------
    def _unknown(self, con: sqlite3.Connection, run_id: str) -> RegistryError:
        ids = [r[0] for r in con.execute("SELECT id FROM runs ORDER BY created_at DESC")]
        close = [i for i in ids if run_id and i.startswith(run_id)][:3] or (
            difflib.get_close_matches(run_id, ids, n=3, cutoff=0.6)
        )
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return RegistryError(
            f"no run '{run_id}' in {self.root}; `emocore runs` lists the runs{hint}"
        )

    def _row(self, con: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._unknown(con, run_id)
        return row

    def create_run(
        self,
        *,
        kind: str,
        design: str | None = None,
        split: str | None = None,
        leaky: bool = False,
        subjects: Sequence[str] = (),
        config: Mapping[str, Any] | None = None,
        data_hash: str | None = None,
        parent: str | None = None,
        status: str = "queued",
        notes: str | None = None,
        pid: int | None = None,
        sources: Sequence[str | Path] = (),
    ) -> RunRecord:
        """Record a new run and create its folder; ``parent`` groups it under a study run.

        The folder gets a ``dataset_description.json`` (see :meth:`describe_run`) whose
        ``SourceDatasets`` are ``sources``: the folders the run reads (its cache, source runs).
        """
        check_choice("kind", kind, KINDS)
        check_choice("status", status, STATUSES)
        values = {
            "design": _encode("design", design),
            "split": _encode("split", split),
            "leaky": _encode("leaky", leaky),
            "subjects": _encode("subjects", subjects),
            "config": _encode("config", config),
            "pid": _encode("pid", pid),
        }
        now = _now()
        with self._write() as con:
            if parent is not None:
                self._row(con, parent)
            run_id = _new_id()
            while (
                con.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
                or self.run_dir(run_id).exists()
            ):
                run_id = _new_id()
            con.execute(
                "INSERT INTO runs (id, created_at, updated_at, user, host, kind, design, split, "
                "leaky, subjects, status, progress, message, pid, config, data_hash, "
                "emocore_version, metrics, error, parent, notes, pid_start) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    now,
                    now,
                    _user(),
                    host_name(),
                    kind,
                    values["design"],
                    values["split"],
                    values["leaky"],
                    values["subjects"],
                    status,
                    1.0 if status == "completed" else 0.0,
                    None,
                    values["pid"],
                    values["config"],
                    data_hash,
                    __version__,
                    "{}",
                    None,
                    parent,
                    notes,
                    _pid_start(values["pid"]),
                ),
            )
            # Inside the transaction: if the folder cannot be made, no row is left behind.
            try:
                self.run_dir(run_id).mkdir(parents=True)
            except OSError as exc:
                raise RegistryError(
                    f"cannot create the run folder {self.run_dir(run_id)} ({exc}); check that "
                    f"{self.root} is writable and not full"
                ) from exc
        logger.info("registered %s run %s", kind, run_id)
        self.describe_run(run_id, sources=sources, kind=kind)
        return self.get_run(run_id)

    def describe_run(
        self, run_id: str, *, sources: Sequence[str | Path] = (), kind: str | None = None
    ) -> Path | None:
        """(Re)write the run folder's BIDS ``dataset_description.json``; return its path.

        ``sources`` become ``SourceDatasets`` (``file://`` URIs of the folders the run read).
        A description is metadata next to the results, so failing to write it (a full disk, a
        read-only folder) must not fail the run: the error is logged as a warning and None is
        returned. Without ``kind`` the run is looked up (an unknown ``run_id`` raises
        RegistryError); :meth:`create_run` passes it.
        """
        from emocore.data.derivatives import DESCRIPTION_FILE, write_dataset_description

        if kind is None:
            kind = self.get_run(run_id).kind
        folder = self.run_dir(run_id)
        try:
            return write_dataset_description(
                folder,
                name=f"emocore {kind} run {run_id}",
                source_datasets=sources,
                description=f"emocore {kind} run: " + _RUN_CONTENTS.get(kind, "its results"),
            )
        except (OSError, ValueError, EmocoreError) as exc:
            logger.warning(
                "could not write %s of run %s (%s); the run goes on without it",
                folder / DESCRIPTION_FILE,
                run_id,
                exc,
            )
            return None

    def get_run(self, run_id: str, *, strict: bool = True) -> RunRecord:
        """The run ``run_id``; an unknown id raises RegistryError naming the closest ids.

        A row that cannot be read in full (a field that is not JSON) raises a RegistryError
        saying what is wrong and that the database holds it; with ``strict=False`` it is returned
        with the readable fields and the problem in ``unreadable`` (``emocore runs --show``)."""
        with self._connect() as con:
            record = _record(self._row(con, run_id))
        if strict and record.unreadable:
            raise self._unreadable(record)
        return record

    def _unreadable(self, record: RunRecord) -> RegistryError:
        return RegistryError(
            f"the row of run {record.id} in the registry database {self.db} is damaged: "
            f"{record.unreadable}. Restore {_DB_NAME} from a backup, or remove the run from the "
            f"registry with `emocore runs --forget {record.id}` (its folder "
            f"{self.root / 'runs' / record.id} is kept)"
        )

    def folder_problem(self, run_id: str) -> str | None:
        """What is wrong with the folder of run ``run_id`` (missing, not a folder), with what
        to do; None when it is there."""
        try:
            folder = self.run_dir(run_id)
        except ConfigError as exc:  # a damaged row's id
            return f"its id cannot name a folder ({exc})"
        if folder.is_dir():
            return None
        what = "is not a folder" if folder.exists() else "is missing"
        return (
            f"the folder of run {run_id}, {folder}, {what}: the run's files were deleted or "
            "moved, though the registry still lists the run. Restore the folder from a backup, "
            f"or remove the run from the registry with `emocore runs --forget {run_id}`"
        )

    def check_run_folder(self, run_id: str) -> Path:
        """The run's folder; a DataError (:meth:`folder_problem`) when it is gone."""
        problem = self.folder_problem(run_id)
        if problem:
            raise DataError(problem)
        return self.run_dir(run_id)

    def list_runs(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        design: str | None = None,
        parent: str | None = None,
    ) -> pd.DataFrame:
        """Runs, newest first: the RunRecord fields (JSON decoded) plus ``disk_bytes``.

        Missing values are None (not NaN), so a row goes to strict JSON as it is. A row that
        cannot be read in full is listed with what could be read and says why in ``unreadable``.
        """
        check_choice("kind", kind, KINDS, optional=True)
        check_choice("status", status, STATUSES, optional=True)
        check_choice("design", design, DESIGNS, optional=True)
        where, args = [], []
        for column, value in (
            ("kind", kind),
            ("status", status),
            ("design", design),
            ("parent", parent),
        ):
            if value is not None:
                where.append(f"r.{column} = ?")
                args.append(value)
        sql = (
            "SELECT r.*, COALESCE((SELECT SUM(a.bytes) FROM artifacts a WHERE a.run_id = r.id), 0)"
            " AS disk_bytes FROM runs r"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY r.created_at DESC, r.id DESC"
        )
        with self._connect() as con:
            rows = [
                {**_record(r).to_dict(), "disk_bytes": int(r["disk_bytes"])}
                for r in con.execute(sql, args)
            ]
        # dtype=object keeps a missing design, pid or error as None, not NaN (which is not JSON).
        frame = pd.DataFrame(
            rows, columns=[*_RUN_COLUMNS, "unreadable", "disk_bytes"], dtype=object
        )
        return frame.astype({"progress": float, "disk_bytes": "int64", "leaky": bool})

    def update(self, run_id: str, **fields: Any) -> None:
        """Change some fields of a run; ``status`` follows :data:`TRANSITIONS`.

        ``metrics`` and ``config`` replace the stored dicts (read, merge and write back to
        merge). Setting ``status`` to 'completed' also sets ``progress`` to 1; setting it to
        'running' clears an old ``error``.
        """
        bad = sorted(set(fields) - set(_UPDATABLE))
        if bad:
            raise ConfigError(
                f"cannot update {bad} of a run; the fields that can change are "
                f"{', '.join(_UPDATABLE)} (id, kind, user, host and the times are fixed)"
            )
        values = {k: _encode(k, v) for k, v in fields.items()}
        if values.get("parent") == run_id:
            raise ConfigError(f"run '{run_id}' cannot be its own parent")
        if "pid" in values:
            values["pid_start"] = _pid_start(values["pid"])
        with self._write() as con:
            row = self._row(con, run_id)
            if values.get("parent") is not None:
                self._row(con, values["parent"])
            new = values.get("status")
            if new is not None and new != row["status"]:
                if row["status"] not in TRANSITIONS:
                    raise self._unreadable(_record(row))
                if new not in TRANSITIONS[row["status"]]:
                    allowed = sorted(TRANSITIONS[row["status"]]) or ["none: it is final"]
                    raise RegistryError(
                        f"run '{run_id}' is {row['status']} and cannot become {new} (from "
                        f"{row['status']} it may become {', '.join(allowed)}); start a new run "
                        "instead"
                    )
                if new == "completed":
                    values.setdefault("progress", 1.0)
                if new == "running":
                    values.setdefault("error", None)
            values["updated_at"] = _now()
            con.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
                [*values.values(), run_id],
            )
        if "status" in values:
            logger.info("run %s is %s", run_id, values["status"])

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        """Move a run along its life cycle; ``error`` says why it failed or was cancelled."""
        fields: dict[str, Any] = {"status": status}
        if error is not None:
            fields["error"] = error
        self.update(run_id, **fields)

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run's files (it need not exist yet)."""
        check_path_name(
            "a run id",
            run_id,
            inside=self.root / "runs",
            example="20250101-120000-ab12",
            hint="; `emocore runs` lists the runs",
        )
        return self.root / "runs" / run_id

    def delete_run(self, run_id: str) -> list[str]:
        """Delete a run, the runs grouped under it (sub-runs, evaluations), their rows and folders.

        Returns the deleted ids. Refuses while any of them is queued or running in a live process.
        """
        self.check_writable("delete runs")
        with self._connect() as con:
            doomed = [_record(self._row(con, run_id))]
            i = 0
            while i < len(doomed):
                doomed += [
                    _record(r)
                    for r in con.execute("SELECT * FROM runs WHERE parent = ?", (doomed[i].id,))
                ]
                i += 1
        here = host_name()
        for rec in doomed:
            if rec.status in _ACTIVE and rec.pid is not None and rec.host in (None, here):
                if process_alive(rec.pid, rec.pid_start):
                    raise RegistryError(
                        f"run '{rec.id}' is {rec.status} in process {rec.pid}; cancel it (or let "
                        f"it finish) before deleting {run_id}"
                    )
        ids = [r.id for r in doomed]
        # Rename the folders out of the way first: a rename is atomic, so a failure here leaves
        # everything as it was, and a failure after the rows are gone leaves only a .trash folder.
        moved: list[tuple[Path, Path]] = []
        try:
            for rid in ids:
                folder = self.run_dir(rid)
                if folder.exists():
                    trash = folder.with_name(f".trash-{rid}-{secrets.token_hex(3)}")
                    folder.rename(trash)
                    moved.append((folder, trash))
            with self._write() as con:
                marks = ",".join("?" * len(ids))
                freed = con.execute(
                    f"SELECT COALESCE(SUM(bytes), 0) FROM artifacts WHERE run_id IN ({marks})", ids
                ).fetchone()[0]
                for table, column in (
                    ("curves", "run_id"),
                    ("artifacts", "run_id"),
                    ("runs", "id"),
                ):
                    con.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)
        except (OSError, RegistryError) as exc:
            for folder, trash in reversed(moved):
                trash.rename(folder)
            if isinstance(exc, RegistryError):
                raise
            raise RegistryError(
                f"cannot delete run '{run_id}': {exc}; close programs using its files and retry"
            ) from exc
        for _, trash in moved:
            shutil.rmtree(trash, ignore_errors=True)
            if trash.exists():
                logger.warning("could not remove all of %s; delete it by hand", trash)
        logger.info("deleted run(s) %s, freeing %d recorded bytes", ", ".join(ids), freed)
        return ids

    def forget_run(self, run_id: str) -> RunRecord:
        """Remove run ``run_id``'s rows (run, curves, artifacts) from the database and nothing
        else: no file is deleted and the runs grouped under it stay. For a run whose folder is
        gone, or whose row is damaged (its folder is kept for a later look). Refused while the
        run is queued or running in a live process of this machine. Returns what was forgotten.
        """
        with self._connect() as con:
            record = _record(self._row(con, run_id))
        if (
            record.status in _ACTIVE
            and record.pid is not None
            and record.host in (None, host_name())
        ):
            if process_alive(record.pid, record.pid_start):
                raise RegistryError(
                    f"run '{run_id}' is {record.status} in process {record.pid}; cancel it (or "
                    "let it finish) before forgetting it"
                )
        with self._write() as con:
            for table, column in (("curves", "run_id"), ("artifacts", "run_id"), ("runs", "id")):
                con.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,))
        logger.info("forgot run %s (its folder, if any, was left as it is)", run_id)
        return record

    def claim(self, run_id: str, pid: int | None = None) -> RunRecord:
        """Record ``pid`` (default: this process) as the process of run ``run_id``, unless another
        live process of this machine holds it: then a RegistryError says which and what to do.

        Liveness is decided as :meth:`mark_stale` decides it. The check and the write are one
        transaction, so of two processes resuming one run at once exactly one gets it. A run
        recorded on another host cannot be checked from here: it is claimed with a warning (a
        job resumed on another node after its own died is the usual reason).
        """
        pid = os.getpid() if pid is None else pid
        here = host_name()
        with self._write() as con:
            row = self._row(con, run_id)
            held = row["pid"]
            started = row["pid_start"] if "pid_start" in row.keys() else None
            if row["status"] in _ACTIVE and held is not None and held != pid:
                if row["host"] in (None, here) and process_alive(int(held), started):
                    last = f"; its last message was '{row['message']}'" if row["message"] else ""
                    raise RegistryError(
                        f"run '{run_id}' is {row['status']} in process {held} on this machine"
                        f"{last}. A second process would train the same run and overwrite its "
                        "checkpoints: wait for it to finish, or stop it first (the Retrain "
                        f"page's Cancel button, or `kill {held}`), then --resume {run_id}"
                    )
                if row["host"] not in (None, here):
                    logger.warning(
                        "run %s is recorded as %s in process %s on %s, which cannot be checked "
                        "from %s; taking it over (if that process still runs, both train it)",
                        run_id,
                        row["status"],
                        held,
                        row["host"],
                        here,
                    )
            con.execute(
                "UPDATE runs SET pid = ?, pid_start = ?, updated_at = ? WHERE id = ?",
                (pid, _pid_start(pid), _now(), run_id),
            )
        return self.get_run(run_id)

    def mark_stale(self) -> list[str]:
        """Fail the queued or running runs of this host whose process has died; return their ids.

        Meant for dashboard start-up and ``emocore runs``. Runs started on another host are left
        alone (their process cannot be checked from here), as are runs without a pid. The update
        is conditional on the status and pid read, so a run that finishes meanwhile keeps its
        'completed'. Process ids are reused by the system: a process that now holds the run's pid
        but started at another time than the one recorded (``pid_start``) is not the run's, and
        the run is failed. A read-only registry is left as it is (nothing is returned).
        """
        if self.read_only:
            return []
        here = host_name()
        with self._connect() as con:
            rows = con.execute(
                "SELECT * FROM runs WHERE status IN ('queued', 'running') AND pid IS NOT NULL"
            ).fetchall()
        stale = []
        for row in rows:
            if not isinstance(row["pid"], int) or row["host"] not in (None, here):
                continue
            if process_alive(row["pid"], row["pid_start"]):
                continue
            last = f"; its last message was '{row['message']}'" if row["message"] else ""
            error = (
                f"the process (pid {row['pid']} on {here}) died without finishing the run: it was "
                f"killed, ran out of memory or the machine restarted{last}. " + redo_hint(row)
            )
            with self._write() as con:
                cur = con.execute(
                    "UPDATE runs SET status = 'failed', error = ?, updated_at = ? "
                    "WHERE id = ? AND status = ? AND pid = ?",
                    (error, _now(), row["id"], row["status"], row["pid"]),
                )
            if cur.rowcount:
                logger.warning("run %s: %s", row["id"], error)
                stale.append(row["id"])
        return stale

    # -- curves --------------------------------------------------------------------------------
    def log_epoch(
        self,
        run_id: str,
        *,
        fold: str = "all",
        epoch: int,
        train_loss: float | None = None,
        train_acc: float | None = None,
        val_loss: float | None = None,
        val_acc: float | None = None,
        seconds: float | None = None,
        val_balanced_acc: float | None = None,
    ) -> None:
        """Record one epoch of one fold; logging the same (fold, epoch) again replaces it.

        ``val_acc`` is plain accuracy on the held-out volumes (chance: the majority share),
        ``val_balanced_acc`` their balanced accuracy (chance: 1/K)."""
        names = CURVE_COLUMNS[3:]
        given = (train_loss, train_acc, val_loss, val_acc, seconds, val_balanced_acc)
        try:
            numbers = [None if v is None else float(v) for v in given]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"epoch values must be numbers or None ({exc})") from exc
        updates = ", ".join(f"{n} = excluded.{n}" for n in names)
        with self._write() as con:
            self._row(con, run_id)
            con.execute(
                f"INSERT INTO curves ({', '.join(CURVE_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(CURVE_COLUMNS))}) "
                f"ON CONFLICT (run_id, fold, epoch) DO UPDATE SET {updates}",
                (run_id, str(fold), int(epoch), *numbers),
            )

    def curves(self, run_id: str) -> pd.DataFrame:
        """Per-epoch rows of a run, in the order they were first logged."""
        with self._connect() as con:
            self._row(con, run_id)
            # SELECT *: a read-only registry of an older schema lacks the newer columns
            rows = [
                dict(r)
                for r in con.execute(
                    "SELECT * FROM curves WHERE run_id = ? ORDER BY rowid", (run_id,)
                )
            ]
        frame = pd.DataFrame(rows).reindex(columns=CURVE_COLUMNS)
        return frame.astype({c: float for c in CURVE_COLUMNS[3:]} | {"epoch": "int64"})

    # -- artifacts -----------------------------------------------------------------------------
    def add_artifact(self, run_id: str, name: str, path: str | Path, kind: str) -> int:
        """Record a file or folder inside the run's folder under ``name``; return its bytes.

        Adding the same name again (a checkpoint rewritten each epoch) re-measures it.
        """
        check_choice("kind", kind, ARTIFACT_KINDS)
        if not name or not str(name).strip():
            raise ConfigError("an artifact needs a non-empty 'name' (e.g. 'model' or 'sub-01')")
        run_dir = self.run_dir(run_id).resolve()
        target = Path(path).resolve()
        if not target.is_relative_to(run_dir):
            raise ConfigError(
                f"artifact {path} must lie inside the run's folder {run_dir}; write it there "
                "(Registry.run_dir) so the registry can be moved as one folder"
            )
        if not target.exists():
            raise RegistryError(f"artifact {target} does not exist; write it before adding it")
        size = _size(target)
        relative = target.relative_to(self.root.resolve()).as_posix()
        with self._write() as con:
            self._row(con, run_id)
            con.execute(
                "INSERT INTO artifacts VALUES (?,?,?,?,?) ON CONFLICT (run_id, name) DO UPDATE "
                "SET path = excluded.path, kind = excluded.kind, bytes = excluded.bytes",
                (run_id, str(name), relative, kind, size),
            )
        return size

    def artifacts(self, run_id: str) -> pd.DataFrame:
        """A run's artifacts: name, kind, bytes, ``path`` (relative to the root) and ``abspath``."""
        with self._connect() as con:
            self._row(con, run_id)
            rows = [
                dict(r)
                for r in con.execute(
                    "SELECT * FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
                )
            ]
        frame = pd.DataFrame(rows, columns=_ARTIFACT_COLUMNS).astype({"bytes": "int64"})
        frame["abspath"] = [str(self.root / p) for p in frame["path"]]
        return frame

    def disk_usage(self, run_id: str | None = None) -> dict[str, int]:
        """Recorded artifact bytes by kind, largest first, plus 'total' (one run, or all runs)."""
        sql = "SELECT kind, SUM(bytes) FROM artifacts"
        with self._connect() as con:
            if run_id is not None:
                self._row(con, run_id)
            rows = con.execute(
                sql + (" WHERE run_id = ?" if run_id is not None else "") + " GROUP BY kind",
                (run_id,) if run_id is not None else (),
            ).fetchall()
        usage = {k: int(v) for k, v in sorted(rows, key=lambda kv: (-kv[1], kv[0]))}
        usage["total"] = sum(usage.values())
        return usage


def _run_shape(config: Any, subjects: Any, design: Any) -> tuple[list[str], int, int | None]:
    config = config if isinstance(config, dict) else {}
    designs = config.get("designs") or ([design] if isinstance(design, str) else [])
    people = len(subjects) if isinstance(subjects, (list, tuple)) else 0
    epochs = (config.get("train") or {}).get("epochs")
    return [str(d) for d in designs], people, epochs if isinstance(epochs, int) else None


def run_label(run: Mapping[str, Any]) -> str:
    """What a run is, in a few words: kind, designs, people, epochs and date (a picker's label),
    e.g. "study · single-subject + cross-subject · 10 people · 2 epochs · 2026-11-29 20:48"."""
    designs, people, epochs = _run_shape(run.get("config"), run.get("subjects"), run.get("design"))
    parts = [str(run.get("kind") or "run"), " + ".join(designs) or "?", f"{people} people"]
    if epochs is not None:
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    created = str(run.get("created_at") or "")
    parts.append(created[:16].replace("T", " ") if created else str(run.get("id")))
    return " · ".join(parts)


_SHORT_DESIGNS = {"single-subject": "single", "cross-subject": "cross", "loso": "LOSO"}


def run_short_label(run: Mapping[str, Any]) -> str:
    """A run in a few characters, for the sidebar's run picker (about 190 px of text at 1280 px
    wide, where :func:`run_label` was cut off): when it was made (UTC, month-day and time), its
    kind, its design or how many designs, e.g. "11-29 20:48 · study · 2 designs" or
    "11-30 05:20 · train · single". :func:`run_label` says the rest."""
    designs, _, _ = _run_shape(run.get("config"), run.get("subjects"), run.get("design"))
    if len(designs) == 1:
        what = _SHORT_DESIGNS.get(designs[0], designs[0])
    else:
        what = f"{len(designs)} designs" if designs else "?"
    created = str(run.get("created_at") or "")
    when = created[5:16].replace("T", " ") if created else str(run.get("id"))
    return " · ".join([when, str(run.get("kind") or "run"), what])


def most_complete_first(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs ordered by how much they cover (designs x people, then epochs), newest first among
    equals: a dashboard opens on the fullest study, not on the last one-person retrain."""
    if runs.empty:
        return runs
    shapes = [
        _run_shape(c, s, d)
        for c, s, d in zip(runs["config"], runs["subjects"], runs["design"], strict=True)
    ]
    key = pd.DataFrame(
        {
            "_cover": [len(d) * p for d, p, _ in shapes],
            "_epochs": [e or 0 for _, _, e in shapes],
            "_created": runs["created_at"].astype(str).to_numpy(),
        },
        index=runs.index,
    )
    order = key.sort_values(["_cover", "_epochs", "_created"], ascending=False, kind="stable")
    return runs.loc[order.index]


@contextmanager
def recording_outcome(registry: Any, run_id: str) -> Iterator[None]:
    """Record how the block ended for run ``run_id``: 'cancelled' on KeyboardInterrupt, 'failed'
    on any error (its message, with the type for errors that are not emocore's), then re-raise.

    A function rather than a method, so a stand-in registry (the no-op one of non-zero ranks)
    works too.
    """
    try:
        yield
    except (EmocoreError, KeyboardInterrupt) as exc:
        cancelled = isinstance(exc, KeyboardInterrupt)
        registry.set_status(run_id, "cancelled" if cancelled else "failed", error=str(exc))
        raise
    except Exception as exc:
        registry.set_status(run_id, "failed", error=f"{exc.__class__.__name__}: {exc}")
        raise
