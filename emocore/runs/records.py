"""One run as the registry stores it: its kinds and statuses, the :class:`RunRecord` read back
from a row, the checks and encodings of the fields written to a row, and what to do with a run
that was interrupted (:func:`redo_hint`, :func:`check_resumable`).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from emocore._io import json_safe
from emocore.errors import ConfigError, RegistryError, check_choice

__all__ = [
    "ACTIVE",
    "ARTIFACT_KINDS",
    "DESIGNS",
    "KINDS",
    "RESUMABLE_KINDS",
    "RUN_COLUMNS",
    "STATUSES",
    "TRANSITIONS",
    "UPDATABLE",
    "RunRecord",
    "check_resumable",
    "encode_field",
    "record_from_row",
    "redo_hint",
]

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
#: The fields of a run that :meth:`emocore.runs.registry.Registry.update` may change (id, kind,
#: user, host and the times are fixed); :func:`encode_field` checks and encodes each.
UPDATABLE = (
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
#: The statuses of a run that is not finished: it may still change by itself.
ACTIVE = ("queued", "running")


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
        return self.status not in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON types (lists and dicts are copies)."""
        return asdict(self)


#: The columns of the ``runs`` table, in RunRecord's order.
RUN_COLUMNS = [f.name for f in fields(RunRecord) if f.name != "unreadable"]


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


def encode_field(name: str, value: Any) -> Any:
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


def record_from_row(row: sqlite3.Row) -> RunRecord:
    """The row as a RunRecord; what cannot be read is left empty and said in ``unreadable``."""
    present = set(row.keys())
    d: dict[str, Any] = {k: row[k] if k in present else None for k in RUN_COLUMNS}
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
