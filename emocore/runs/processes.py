"""Which machine and which process a run was recorded in, and whether that process still runs.

A run records its process id with the process's start time (:func:`process_start`: the boot id
and the start tick of ``/proc/PID/stat``), so a run whose process died is told apart from an
unrelated process that was later given the same id.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["host_name", "pid_alive", "process_alive", "process_start"]


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


def process_start(pid: int | None) -> str | None:
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
    """Whether the process recorded as ``pid`` (started at ``started``, see :func:`process_start`)
    still runs on this machine: a live process that now holds the id but started at another
    time is another process, and the recorded one is dead. Without a recorded start (older
    rows, no /proc) the id alone decides."""
    if not pid_alive(pid):
        return False
    if started is None:
        return True
    now = process_start(pid)
    return now is None or now == started
