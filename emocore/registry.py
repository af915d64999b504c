"""The run registry: one SQLite file and one folder per run, read by the CLI and the dashboard.

``<root>/registry.sqlite`` holds a row per run (who, when, what, status, progress, config, data
hash, metrics), per-epoch curves and the run's artifacts with their sizes; ``<root>/runs/<id>/``
holds the files. Paths are stored relative to the root, so the folder can be moved. The database
runs in WAL mode with a busy timeout, so a background training process can write progress while
the dashboard reads.
"""

from __future__ import annotations

import difflib
import getpass
import json
import os
import secrets
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from emocore import __version__
from emocore.errors import ConfigError, RegistryError

__all__ = ["Registry", "RunRecord", "STATUSES", "KINDS"]

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
KINDS = ("study", "train", "evaluate", "predict", "bench")
_SCHEMA_VERSION = 1
_JSON_FIELDS = ("subjects", "config", "metrics")
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
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, user TEXT, host TEXT,
    kind TEXT NOT NULL, design TEXT, split TEXT, leaky INTEGER NOT NULL DEFAULT 0,
    subjects TEXT, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, message TEXT,
    pid INTEGER, config TEXT, data_hash TEXT, emocore_version TEXT, metrics TEXT, error TEXT,
    parent TEXT, notes TEXT
);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL, fold TEXT NOT NULL, epoch INTEGER NOT NULL, train_loss REAL,
    train_acc REAL, val_loss REAL, val_acc REAL, seconds REAL
);
CREATE INDEX IF NOT EXISTS curves_run ON curves(run_id);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,
    bytes INTEGER NOT NULL, PRIMARY KEY (run_id, name)
);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


@dataclass(frozen=True)
class RunRecord:
    """One run as stored; JSON fields decoded."""

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record(row: sqlite3.Row) -> RunRecord:
    d = dict(row)
    for key in _JSON_FIELDS:
        d[key] = json.loads(d[key]) if d[key] else ([] if key == "subjects" else {})
    d["leaky"] = bool(d["leaky"])
    return RunRecord(**d)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (finished, not yet reaped) counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


class Registry:
    """Runs, curves and artifacts below ``root`` (created if missing)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(
                f"cannot create the registry folder {self.root} ({exc}); choose a writable --registry"
            ) from exc
        self.db = self.root / "registry.sqlite"
        with self._connect() as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise RegistryError(
                    f"{self.db} has schema version {version}; this emocore uses {_SCHEMA_VERSION}. Use a new --registry folder"
                )
            con.executescript(_SCHEMA)
            con.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db, timeout=10.0)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=10000")
            with con:
                yield con
        except sqlite3.Error as exc:
            raise RegistryError(
                f"the run registry {self.db} could not be used ({exc}); check the disk and permissions"
            ) from exc
        finally:
            con.close()

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        kind: str,
        design: str | None = None,
        split: str | None = None,
        leaky: bool = False,
        subjects: Sequence[str] = (),
        config: dict[str, Any] | None = None,
        data_hash: str | None = None,
        parent: str | None = None,
        status: str = "queued",
        notes: str | None = None,
    ) -> RunRecord:
        if kind not in KINDS:
            raise ConfigError(f"'kind' must be one of {set(KINDS)}; '{kind}' was provided")
        if status not in STATUSES:
            raise ConfigError(f"'status' must be one of {set(STATUSES)}; '{status}' was provided")
        run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
        now = _now()
        with self._connect() as con:
            con.execute(
                "INSERT INTO runs (id, created_at, updated_at, user, host, kind, design, split, leaky, subjects, status, progress, config, data_hash, emocore_version, metrics, parent, notes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    now,
                    now,
                    _user(),
                    socket.gethostname(),
                    kind,
                    design,
                    split,
                    int(leaky),
                    json.dumps(list(subjects)),
                    status,
                    0.0,
                    json.dumps(config or {}, default=str),
                    data_hash,
                    __version__,
                    json.dumps({}),
                    parent,
                    notes,
                ),
            )
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        with self._connect() as con:
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                ids = [r[0] for r in con.execute("SELECT id FROM runs")]
        if row is None:
            close = difflib.get_close_matches(run_id, ids, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise RegistryError(
                f"no run '{run_id}' in {self.root}; `emocore runs` lists the runs{hint}"
            )
        return _record(row)

    def list_runs(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        design: str | None = None,
        parent: str | None = None,
    ) -> pd.DataFrame:
        """Runs, newest first, as a table (JSON columns decoded)."""
        where, args = [], []
        for col, val in (
            ("kind", kind),
            ("status", status),
            ("design", design),
            ("parent", parent),
        ):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = (
            "SELECT * FROM runs"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY created_at DESC, id DESC"
        )
        with self._connect() as con:
            rows = [_record(r).to_dict() for r in con.execute(sql, args)]
        return pd.DataFrame(rows, columns=list(RunRecord.__dataclass_fields__))

    def update(self, run_id: str, **fields: Any) -> None:
        bad = sorted(set(fields) - set(_UPDATABLE))
        if bad:
            raise ConfigError(f"cannot update {bad}; updatable fields are {list(_UPDATABLE)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ConfigError(
                f"'status' must be one of {set(STATUSES)}; '{fields['status']}' was provided"
            )
        values = {
            k: (json.dumps(v, default=str) if k in _JSON_FIELDS else v) for k, v in fields.items()
        }
        if "leaky" in values:
            values["leaky"] = int(bool(values["leaky"]))
        values["updated_at"] = _now()
        with self._connect() as con:
            cur = con.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
                [*values.values(), run_id],
            )
            if cur.rowcount == 0:
                raise RegistryError(
                    f"no run '{run_id}' in {self.root}; `emocore runs` lists the runs"
                )

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        fields: dict[str, Any] = {"status": status}
        if error is not None:
            fields["error"] = error
        self.update(run_id, **fields)

    def delete_run(self, run_id: str) -> None:
        self.get_run(run_id)
        with self._connect() as con:
            for table, col in (("curves", "run_id"), ("artifacts", "run_id"), ("runs", "id")):
                con.execute(f"DELETE FROM {table} WHERE {col} = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def mark_stale(self) -> list[str]:
        """Runs still 'running' or 'queued' whose process has died become 'failed'; returns their ids."""
        stale = []
        with self._connect() as con:
            rows = con.execute(
                "SELECT id, pid FROM runs WHERE status IN ('running', 'queued') AND pid IS NOT NULL"
            ).fetchall()
        for row in rows:
            if not _pid_alive(int(row["pid"])):
                self.set_status(
                    row["id"],
                    "failed",
                    error=f"the process (pid {row['pid']}) ended without finishing the run",
                )
                stale.append(row["id"])
        return stale

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    # -- curves ------------------------------------------------------------------------------
    def log_epoch(
        self,
        run_id: str,
        *,
        fold: str,
        epoch: int,
        train_loss: float | None = None,
        train_acc: float | None = None,
        val_loss: float | None = None,
        val_acc: float | None = None,
        seconds: float | None = None,
    ) -> None:
        with self._connect() as con:
            con.execute(
                "INSERT INTO curves VALUES (?,?,?,?,?,?,?,?)",
                (run_id, fold, int(epoch), train_loss, train_acc, val_loss, val_acc, seconds),
            )

    def curves(self, run_id: str) -> pd.DataFrame:
        with self._connect() as con:
            rows = [
                dict(r)
                for r in con.execute(
                    "SELECT * FROM curves WHERE run_id = ? ORDER BY rowid", (run_id,)
                )
            ]
        return pd.DataFrame(
            rows,
            columns=[
                "run_id",
                "fold",
                "epoch",
                "train_loss",
                "train_acc",
                "val_loss",
                "val_acc",
                "seconds",
            ],
        )

    # -- artifacts ---------------------------------------------------------------------------
    def add_artifact(self, run_id: str, name: str, path: str | Path, kind: str) -> None:
        path = Path(path).resolve()
        run_dir = self.run_dir(run_id).resolve()
        if not path.is_relative_to(run_dir):
            raise ConfigError(f"artifact {path} must lie inside the run's folder {run_dir}")
        if not path.exists():
            raise RegistryError(f"artifact {path} does not exist")
        size = (
            sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO artifacts VALUES (?,?,?,?,?)",
                (run_id, name, str(path.relative_to(self.root.resolve())), kind, size),
            )

    def artifacts(self, run_id: str) -> pd.DataFrame:
        with self._connect() as con:
            rows = [
                dict(r)
                for r in con.execute(
                    "SELECT * FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
                )
            ]
        frame = pd.DataFrame(rows, columns=["run_id", "name", "path", "kind", "bytes"])
        frame["abspath"] = [str(self.root / p) for p in frame["path"]]
        return frame

    def disk_usage(self, run_id: str | None = None) -> dict[str, int]:
        """Bytes of recorded artifacts by kind (one run or all), plus 'total'."""
        sql = (
            "SELECT kind, SUM(bytes) FROM artifacts"
            + (" WHERE run_id = ?" if run_id else "")
            + " GROUP BY kind"
        )
        with self._connect() as con:
            usage = {k: int(v) for k, v in con.execute(sql, (run_id,) if run_id else ())}
        usage["total"] = sum(usage.values())
        return usage
