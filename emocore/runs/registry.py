"""The run registry: one SQLite file and one folder per run, read by the CLI and the dashboard.

Layout below the registry root (created if missing)::

    registry.sqlite      runs, per-epoch curves and artifacts (schema version in user_version)
    runs/<run id>/       the files of one run (checkpoints, predictions, saliency, reports),
                         marked as a BIDS derivative dataset by a dataset_description.json that
                         names emocore, its version and the folders the run read (cache, runs)

Every path stored in the database is relative to the root, in POSIX form, so the folder can be
moved or copied to another machine and opened there.

The SQLite file (its schema, migrations, connections, concurrency and read-only opening) is
:mod:`emocore.runs.database`; a run's record and field checks are :mod:`emocore.runs.records`;
process checks are :mod:`emocore.runs.processes`; runs in words are :mod:`emocore.runs.labels`.
The names callers use are importable from here as before.

Status life cycle (:data:`TRANSITIONS`)::

    queued -> running | failed | cancelled
    running -> completed | failed | cancelled
    failed, cancelled -> running          (resume)
    completed                             (final)

Setting the status a run already has is allowed and changes nothing but the error text.

Process ids are recorded with the process's start time (``pid_start``: the boot id and the start
tick of ``/proc/PID/stat``), so a run whose process died is told apart from an unrelated process
that was later given the same id.
"""

from __future__ import annotations

import difflib
import getpass
import logging
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from emocore import __version__
from emocore._io import check_path_name
from emocore.data.derivatives import DESCRIPTION_FILE, write_dataset_description
from emocore.errors import ConfigError, DataError, EmocoreError, RegistryError, check_choice
from emocore.runs.database import (
    ARTIFACT_COLUMNS,
    CURVE_COLUMNS,
    DB_NAME,
    SCHEMA_VERSION,
    RegistryDatabase,
)
from emocore.runs.labels import most_complete_first, run_label, run_short_label
from emocore.runs.processes import host_name, pid_alive, process_alive, process_start
from emocore.runs.records import (
    ACTIVE,
    ARTIFACT_KINDS,
    DESIGNS,
    KINDS,
    RESUMABLE_KINDS,
    RUN_COLUMNS,
    STATUSES,
    TRANSITIONS,
    UPDATABLE,
    RunRecord,
    check_resumable,
    encode_field,
    record_from_row,
    redo_hint,
)

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

#: What a run folder of each kind holds, for its dataset_description.json.
_RUN_CONTENTS = {
    "study": "cross-validated predictions, metrics, final models, saliency maps and embeddings",
    "train": "cross-validated predictions, metrics, final models, saliency maps and embeddings",
    "evaluate": "metrics recomputed from the predictions of its source runs",
    "predict": "predictions of a trained model on new volumes",
    "bench": "training speed measurements",
    "assess": "one new person's predictions and findings against a finished study",
}


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


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.stat().st_size


def _writable(path: Path) -> bool:
    """Whether this process may write ``path``, as its effective ids and capabilities decide
    (a read-only mount says no even to root)."""
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


class Registry(RegistryDatabase):
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
        self.db = self.root / DB_NAME
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
                f"no run registry at {self.root} ({DB_NAME} is not there); check --registry: "
                "it is the folder that `emocore train` or `emocore study` recorded runs in"
            )
        #: True when the folder or its database cannot be written: then only reading works.
        self.read_only = self.root.is_dir() and not (
            _writable(self.root) and (not self.db.is_file() or _writable(self.db))
        )
        if self.read_only and not self.db.is_file():
            raise RegistryError(
                f"the registry folder {self.root} is read-only and holds no {DB_NAME}: there "
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
            "design": encode_field("design", design),
            "split": encode_field("split", split),
            "leaky": encode_field("leaky", leaky),
            "subjects": encode_field("subjects", subjects),
            "config": encode_field("config", config),
            "pid": encode_field("pid", pid),
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
                    process_start(values["pid"]),
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
            record = record_from_row(self._row(con, run_id))
        if strict and record.unreadable:
            raise self._unreadable(record)
        return record

    def _unreadable(self, record: RunRecord) -> RegistryError:
        return RegistryError(
            f"the row of run {record.id} in the registry database {self.db} is damaged: "
            f"{record.unreadable}. Restore {DB_NAME} from a backup, or remove the run from the "
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
                {**record_from_row(r).to_dict(), "disk_bytes": int(r["disk_bytes"])}
                for r in con.execute(sql, args)
            ]
        # dtype=object keeps a missing design, pid or error as None, not NaN (which is not JSON).
        frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, "unreadable", "disk_bytes"], dtype=object)
        return frame.astype({"progress": float, "disk_bytes": "int64", "leaky": bool})

    def update(self, run_id: str, **fields: Any) -> None:
        """Change some fields of a run; ``status`` follows :data:`TRANSITIONS`.

        ``metrics`` and ``config`` replace the stored dicts (read, merge and write back to
        merge). Setting ``status`` to 'completed' also sets ``progress`` to 1; setting it to
        'running' clears an old ``error``.
        """
        bad = sorted(set(fields) - set(UPDATABLE))
        if bad:
            raise ConfigError(
                f"cannot update {bad} of a run; the fields that can change are "
                f"{', '.join(UPDATABLE)} (id, kind, user, host and the times are fixed)"
            )
        values = {k: encode_field(k, v) for k, v in fields.items()}
        if values.get("parent") == run_id:
            raise ConfigError(f"run '{run_id}' cannot be its own parent")
        if "pid" in values:
            values["pid_start"] = process_start(values["pid"])
        with self._write() as con:
            row = self._row(con, run_id)
            if values.get("parent") is not None:
                self._row(con, values["parent"])
            new = values.get("status")
            if new is not None and new != row["status"]:
                if row["status"] not in TRANSITIONS:
                    raise self._unreadable(record_from_row(row))
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
            doomed = [record_from_row(self._row(con, run_id))]
            i = 0
            while i < len(doomed):
                doomed += [
                    record_from_row(r)
                    for r in con.execute("SELECT * FROM runs WHERE parent = ?", (doomed[i].id,))
                ]
                i += 1
        here = host_name()
        for rec in doomed:
            if rec.status in ACTIVE and rec.pid is not None and rec.host in (None, here):
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
            record = record_from_row(self._row(con, run_id))
        if (
            record.status in ACTIVE
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
            if row["status"] in ACTIVE and held is not None and held != pid:
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
                (pid, process_start(pid), _now(), run_id),
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
        frame = pd.DataFrame(rows, columns=ARTIFACT_COLUMNS).astype({"bytes": "int64"})
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
