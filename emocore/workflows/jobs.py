"""Background training jobs the dashboard starts, watches and cancels (no streamlit here).

A job is one registry run executed by a separate process (:func:`run_job`)::

    python -m emocore.workflows.jobs <run id> --cache <cache> --registry <registry>

started in its own session (so its own process group), with stdout and stderr going to
``runs/<run id>/job.log``. It is not a thread of the page that started it: reloading the page,
closing the browser tab or restarting the Streamlit server leaves it running, and everything the
dashboard needs to follow it (status, progress, message, curves, pid) is in the registry.

One heavy job per machine: :func:`start_job` refuses while another run of this host is queued or
running in a live process, because two trainings would share one GPU (or the two CPU cores of a
laptop) and both crawl. :func:`cancel_job` sends SIGINT to the job's process group, which Python
turns into ``KeyboardInterrupt``, and :func:`emocore.workflows.study.run_study` marks the run
'cancelled'; a job that does not stop is sent SIGTERM, then SIGKILL, and marked 'cancelled' here.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from emocore._io import os_error_message
from emocore.data.cache import open_cache
from emocore.errors import ConfigError, EmocoreError, check_choice, exit_code
from emocore.progress import ProgressBar
from emocore.runs.registry import Registry, RunRecord, host_name, pid_alive, process_alive
from emocore.stats.findings import p_text
from emocore.stats.summaries import percent as _pct
from emocore.training.train import TrainConfig
from emocore.workflows.assess import add_and_assess, check_reference_run, check_subject_label
from emocore.workflows.study import StudyConfig, record_run, resume_study

__all__ = [
    "JOB_KINDS",
    "JobBusyError",
    "JobError",
    "active_jobs",
    "cancel_job",
    "headline_sentences",
    "job_log",
    "job_outcome",
    "job_status",
    "last_job",
    "note_job_step",
    "run_job",
    "retrain_config",
    "retrain_defaults",
    "start_assess_job",
    "start_job",
    "wait_job",
]

logger = logging.getLogger(__name__)

#: Run kinds :func:`start_job` can start; both are executed by ``run_study`` with the stored
#: config. :func:`start_assess_job` starts ``assess`` runs.
JOB_KINDS = ("train", "study")
LOG_NAME = "job.log"
_LOCK_NAME = "jobs.lock"
_ACTIVE = ("queued", "running")
#: What a job says from its start until its process takes over (see :func:`note_job_step`).
STARTING = "launching the job's Python process"
#: How long each signal gets before the next, harder one (SIGINT, SIGTERM, SIGKILL).
_GRACE_S = (15.0, 5.0, 5.0)
#: At most this much of the end of a log is read by :func:`job_log`.
_LOG_TAIL_BYTES = 1 << 20


class JobError(EmocoreError):
    """A background job cannot be started, found or cancelled as asked."""


class JobBusyError(JobError):
    """Another job is already queued or running on this machine."""


def _registry(registry: Registry | str | Path) -> Registry:
    return registry if isinstance(registry, Registry) else Registry(registry)


@contextmanager
def _start_lock(registry: Registry) -> Iterator[None]:
    """Serialise check-then-start between processes, so two clicks cannot start two jobs."""
    try:
        import fcntl  # here: POSIX only
    except ImportError:  # Windows: no flock; the busy check alone still catches most cases
        yield
        return
    registry.check_writable("start a job")
    path = registry.root / _LOCK_NAME
    try:
        handle = open(path, "a+b")
    except OSError as exc:
        raise JobError(os_error_message(exc, "start a job", choose="another registry")) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _live_local(record: RunRecord) -> bool:
    """Whether the run's process runs on this machine now (runs of other hosts cannot be told):
    a process that now holds the recorded pid but started at another time is not the run's."""
    return (
        record.pid is not None
        and record.host in (None, host_name())
        and record.status in _ACTIVE
        and process_alive(record.pid, record.pid_start)
    )


def active_jobs(registry: Registry | str | Path) -> list[RunRecord]:
    """Queued and running runs, newest first, after failing those whose process has died (a
    damaged row is listed as it could be read, not raised: it must not hide the others)."""
    reg = _registry(registry)
    reg.mark_stale()
    records = [
        reg.get_run(run_id, strict=False)
        for s in _ACTIVE
        for run_id in reg.list_runs(status=s)["id"]
    ]
    return sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)


def _busy_error(record: RunRecord) -> JobBusyError:
    return JobBusyError(
        f"run {record.id} is already {record.status} on this machine (process {record.pid}); "
        "only one training job runs at a time. Wait for it to finish or cancel it (the Retrain "
        f"page's Cancel button, or emocore.workflows.jobs.cancel_job(registry, '{record.id}'))"
    )


def start_job(
    registry: Registry | str | Path,
    cache: str | Path,
    config: StudyConfig,
    *,
    kind: str = "train",
    env: Mapping[str, str] | None = None,
) -> str:
    """Record a queued run of ``config`` and start a process that runs it; return the run id.

    ``env`` adds environment variables for the job (e.g. ``OMP_NUM_THREADS``). Raises
    :class:`JobBusyError` while another job of this machine is queued or running.
    """
    check_choice("kind", kind, JOB_KINDS)
    reg = _registry(registry)
    volumes = open_cache(cache)  # fails here, in the page, rather than in the background
    subjects = list(config.subjects) if config.subjects else volumes.subjects
    missing = sorted(set(subjects) - set(volumes.subjects))
    if missing:
        raise ConfigError(
            f"subject(s) {', '.join(missing)} not in the cache at {volumes.path}; it holds "
            f"{', '.join(volumes.subjects)}"
        )
    with _start_lock(reg):
        busy = next((r for r in active_jobs(reg) if _live_local(r)), None)
        if busy is not None:
            raise _busy_error(busy)
        run = record_run(reg, volumes, config, kind=kind)
        command = _job_command(run.id, cache, reg)
        _spawn(reg, run.id, command, env)
    return run.id


def start_assess_job(
    registry: Registry | str | Path,
    cache: str | Path,
    run_id: str,
    subject: str,
    *,
    bids: str | Path | None = None,
    annotations: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    force: bool = False,
    exploratory: bool = False,
) -> str:
    """Start ``emocore assess`` of ``subject`` against run ``run_id`` in the background.

    With ``bids`` (and ``annotations``) the person is first added to the cache from that
    dataset. A person already assessed against the run keeps the earlier assessment unless
    ``force`` (which replaces it); ``exploratory`` also tests the run's other designs (see
    :func:`emocore.workflows.assess.assess_subject`). Returns the id of the queued ``assess`` run the job
    fills in; it is followed and cancelled like a training job, and refused while another job
    of this machine is active.
    """
    reg = _registry(registry)
    subject = check_subject_label(subject)
    check_reference_run(reg, run_id)  # a completed study or train run
    if bids is not None and annotations is None:
        raise ConfigError("adding a person from a dataset needs the annotations folder too")
    with _start_lock(reg):
        busy = next((r for r in active_jobs(reg) if _live_local(r)), None)
        if busy is not None:
            raise _busy_error(busy)
        run = reg.create_run(
            kind="assess",
            subjects=[subject],
            config={
                "run": run_id,
                "subject": subject,
                "bids": str(Path(bids).resolve()) if bids else None,
                "annotations": str(Path(annotations).resolve()) if annotations else None,
                "force": bool(force),
                "exploratory": bool(exploratory),
            },
            parent=run_id,
            sources=[Path(cache), reg.run_dir(run_id)],
        )
        command = _job_command(run.id, cache, reg)
        _spawn(reg, run.id, command, env)
    return run.id


def _job_command(run_id: str, cache: str | Path, reg: Registry) -> list[str]:
    """The command of a job process: this module's entry point (see :func:`run_job`)."""
    return [
        sys.executable,
        "-m",
        "emocore.workflows.jobs",
        run_id,
        "--cache",
        str(Path(cache).resolve()),
        "--registry",
        str(reg.root.resolve()),
    ]


def _spawn(
    reg: Registry, run_id: str, command: list[str], env: Mapping[str, str] | None
) -> subprocess.Popen:
    """Start ``command`` for run ``run_id`` in its own session, logging to the run's job.log."""
    log_path = reg.run_dir(run_id) / LOG_NAME
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    try:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                start_new_session=True,  # own process group: a page reload never reaches it
                close_fds=True,
            )
    except OSError as exc:
        reg.set_status(run_id, "failed", error=f"the job process could not start: {exc}")
        raise JobError(
            f"could not start the job for run {run_id} ({exc}); check that {sys.executable} "
            "runs and that the registry folder is writable"
        ) from exc
    reg.update(run_id, pid=process.pid, message=STARTING)
    reg.add_artifact(run_id, LOG_NAME, log_path, "log")
    # Reap the child when it ends so it never lingers as a zombie of a long-lived server. The
    # thread only waits; the job does not depend on it (or on this process) to run.
    threading.Thread(target=process.wait, name=f"emocore-job-{run_id}", daemon=True).start()
    logger.info("started job %s (pid %d), log in %s", run_id, process.pid, log_path)
    return process


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the job's process group; just the process if it does not lead its own group."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:  # e.g. an `emocore train` typed in a terminal: leave the shell's group alone
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _runs_emocore(pid: int) -> bool:
    """Whether ``pid`` is (still) an emocore process, not another one that reused the number."""
    try:
        return b"emocore" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no /proc (macOS) or no access: trust the registry
        return True


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def cancel_job(
    registry: Registry | str | Path, run_id: str, *, grace_s: float | None = None
) -> RunRecord:
    """Stop a queued or running job and return its record, then 'cancelled'.

    SIGINT first (the run records itself as cancelled), then SIGTERM and SIGKILL after
    ``grace_s`` seconds each (default 15, 5 and 5). A run that completed meanwhile keeps its
    'completed'. Cancelling a run that has already finished raises :class:`JobError`.
    """
    reg = _registry(registry)
    record = reg.get_run(run_id, strict=False)  # a damaged row can still be stopped
    reg.check_writable("cancel a job")
    if record.finished:
        raise JobError(
            f"run {run_id} is already {record.status}; only queued or running runs can be "
            "cancelled (delete it instead to remove it)"
        )
    if record.host not in (None, host_name()) and record.pid is not None:
        raise JobError(
            f"run {run_id} runs on {record.host}, not on this machine ({host_name()}); cancel it there"
        )
    graces = _GRACE_S if grace_s is None else (grace_s,) * 3
    how = "before its process started" if record.pid is None else "after its process ended"
    # never signal a process that merely reuses the recorded pid
    if (
        record.pid is not None
        and process_alive(record.pid, record.pid_start)
        and _runs_emocore(record.pid)
    ):
        for sig, grace in zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), graces, strict=True):
            if sig != signal.SIGINT:
                # SIGTERM and SIGKILL end the process without running its handlers: record the
                # cancellation first, so mark_stale never sees a dead 'running' run and fails it.
                _mark_cancelled(reg, run_id, f"cancelled: the job ignored SIGINT; sent {sig.name}")
            logger.info("cancelling run %s: %s to process %d", run_id, sig.name, record.pid)
            _signal(record.pid, sig)
            how = f"with {sig.name}"
            if _wait_gone(record.pid, grace):
                break
        else:
            raise JobError(
                f"process {record.pid} of run {run_id} survived SIGKILL; it may be stuck in the "
                "kernel (e.g. on a hung disk): check `ps` and the machine"
            )
    _mark_cancelled(reg, run_id, f"cancelled by {record.user or 'a user'} ({how})")
    return reg.get_run(run_id)


def _mark_cancelled(reg: Registry, run_id: str, reason: str) -> None:
    """'cancelled' with ``reason``, unless the run finished first (then it keeps its status)."""
    current = reg.get_run(run_id, strict=False)
    if current.status == "cancelled":
        if not current.error:  # KeyboardInterrupt has no text of its own
            reg.update(run_id, error=reason)
        return
    if current.finished:
        logger.info("run %s became %s before it could be cancelled", run_id, current.status)
        return
    try:
        reg.set_status(run_id, "cancelled", error=reason)
    except EmocoreError:  # it finished between the read and the write
        if not reg.get_run(run_id, strict=False).finished:
            raise


def wait_job(
    registry: Registry | str | Path,
    run_id: str,
    *,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
) -> RunRecord:
    """Wait until a job has finished (or its process has died) and return its record."""
    reg = _registry(registry)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        record = reg.get_run(run_id)
        if record.finished:
            return record
        if record.pid is not None and run_id in reg.mark_stale():
            return reg.get_run(run_id)
        if deadline is not None and time.monotonic() >= deadline:
            raise JobError(
                f"run {run_id} is still {record.status} after {timeout_s:g} s "
                f"({record.progress:.0%}, '{record.message or ''}'); see its {LOG_NAME}"
            )
        time.sleep(poll_s)


def last_job(registry: Registry | str | Path, *, kind: str) -> str | None:
    """The newest run of ``kind`` that ran as a background job (it has the job log that
    :func:`start_job` or :func:`start_assess_job` opens), or None: what a page that starts jobs
    shows after a reload, when its session no longer knows the job it started. Runs of the
    command line have no job log."""
    check_choice("kind", kind, (*JOB_KINDS, "assess"))
    reg = _registry(registry)
    return next(
        (str(r) for r in reg.list_runs(kind=kind)["id"] if (reg.run_dir(r) / LOG_NAME).is_file()),
        None,
    )


def job_log(registry: Registry | str | Path, run_id: str, tail: int = 200) -> str:
    """The last ``tail`` lines of a job's log ('' for a run not started as a job, or none yet)."""
    if isinstance(tail, bool) or not isinstance(tail, int) or tail < 0:
        raise ConfigError(f"'tail' must be a number of lines >= 0; {tail!r} was provided")
    reg = _registry(registry)
    reg.get_run(run_id)  # an unknown id raises, naming the closest ones
    path = reg.run_dir(run_id) / LOG_NAME
    if tail == 0 or not path.is_file():
        return ""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _LOG_TAIL_BYTES))
        text = handle.read().decode("utf-8", errors="replace")
    # A job's progress bar is off (stderr is no terminal), but keep only the last state of any
    # carriage-return-updated line that slipped in.
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.rstrip("\n").split("\n")]
    return "\n".join(lines[-tail:])


# -- what a job is doing, and what it found ---------------------------------------------------
def note_job_step(registry: Registry | str | Path, run_id: str, message: str) -> bool:
    """Record what the job process of ``run_id`` is doing before the run itself takes over (e.g.
    "loading PyTorch"), so a page does not show "starting" for the seconds a process needs.

    Only the process the job was started as writes (its pid is the run's, and the run is still
    queued): a second ``--resume`` of a run that another process holds must not overwrite that
    process's message. Returns whether the message was recorded.
    """
    reg = _registry(registry)
    record = reg.get_run(run_id)
    if record.status != "queued" or record.pid != os.getpid():
        return False
    reg.update(run_id, message=message)
    return True


def _age_s(stamp: str, now: datetime | None) -> float | None:
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None
    return max(0.0, ((now or datetime.now(timezone.utc)) - then).total_seconds())


def job_status(record: RunRecord, *, now: datetime | None = None) -> str:
    """One line saying what an active job is doing, e.g.
    "20260101-120000-ab12 (train, single-subject): starting for 9 s — loading PyTorch" or
    "... : running, 42 % — single-subject sub-01 runs 1+3+5+7 (fold 1/2): epoch 1/2: ..."."""
    what = record.design or ("assessment" if record.kind == "assess" else "all designs")
    head = f"{record.id} ({record.kind}, {what})"
    if record.status == "queued":
        age = _age_s(record.created_at, now)
        state = "starting" if record.pid is not None else "queued"
        state += f" for {age:.0f} s" if age is not None else ""
    elif record.status == "running":
        state = f"running, {100 * record.progress:.0f} %"
    else:
        state = record.status
    return f"{head}: {state}" + (f" — {record.message}" if record.message else "")


def headline_sentences(results: Sequence[Mapping[str, Any]], *, model: str = "cnn") -> list[str]:
    """A run's headline per design in words, with its split and chance, e.g. "single-subject:
    balanced accuracy 64.0 % (run-wise 2-fold, permutation chance 20.0 %, p = 0.012)"."""
    lines = []
    for r in results:
        if r.get("model", "cnn") != model:
            continue
        split = str(r.get("split") or "split not recorded") + (" — LEAKY" if r.get("leaky") else "")
        lines.append(
            f"{r.get('design')}: balanced accuracy {_pct(r.get('balanced_accuracy'))} ({split}, "
            f"permutation chance {_pct(r.get('chance_balanced_accuracy'))}, "
            f"p = {p_text(r.get('p_value'))})".replace("p = <", "p <")
        )
    return lines


def job_outcome(registry: Registry | str | Path, run_id: str) -> str:
    """How a finished job ended, in one line: its headline accuracy per design with split and
    chance when it completed, its error otherwise."""
    record = _registry(registry).get_run(run_id)
    if record.status != "completed":
        why = f": {record.error}" if record.error else ""
        return f"Run {run_id} {record.status}{why}"
    lines = headline_sentences((record.metrics or {}).get("results") or [])
    return f"Run {run_id} completed" + (". " + "; ".join(lines) if lines else "")


def retrain_defaults(study: Mapping[str, Any] | None) -> StudyConfig:
    """The settings a retrain of ``study`` (a run's study.json) starts from: its recorded config,
    on the people it was run on and with every fold; emocore's defaults without a study."""
    if not study:
        return StudyConfig()
    config = StudyConfig.from_dict(dict(study.get("config") or {}))
    subjects = study.get("subjects") or config.subjects
    return replace(config, folds=None, subjects=tuple(subjects) if subjects else None)


def _refit(base: StudyConfig, designs: tuple[str, ...], chosen: Sequence[str]) -> bool | tuple:
    """StudyConfig.refit for refitting ``chosen`` of ``designs``: base's own value when it means
    the same (so an unchanged form passes the recorded config back as it was), else False for
    none, True for all, the tuple otherwise. LOSO keeps its held-out-person models either way."""
    kept = tuple(d for d in designs if d in chosen)
    fitted = [d for d in designs if d != "loso"]
    same = all((d in kept) == base.refits(d) for d in fitted)
    base_fits = not isinstance(base.refit, tuple) or set(base.refit) <= set(designs)
    if same and base_fits:
        return base.refit
    if not any(d in kept for d in fitted):
        return False
    return True if all(d in kept for d in fitted) else kept


def retrain_config(base: StudyConfig, **changes: Any) -> StudyConfig:
    """``base`` with ``changes`` applied, study and training options alike (``epochs=2,
    n_permutations=100``); a ConfigError names an unknown option. ``refit`` may be the designs
    to refit: none is False, all of the study's designs True."""
    study_keys = {f.name for f in fields(base)} - {"train"}
    train_keys = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(changes) - study_keys - train_keys)
    if unknown:
        raise ConfigError(
            f"unknown retrain option(s) {unknown}; the options are "
            f"{', '.join(sorted(study_keys | train_keys))}"
        )
    study = {k: v for k, v in changes.items() if k in study_keys}
    train = {k: v for k, v in changes.items() if k in train_keys}
    if "designs" in study and "refit" not in study and isinstance(base.refit, tuple):
        study["refit"] = base.refit  # the designs kept, of those refitted before
    if isinstance(study.get("refit"), (list, tuple)):
        study["refit"] = _refit(base, tuple(study.get("designs", base.designs)), study["refit"])
    if "subjects" in study and study["subjects"] is not None:
        if not study["subjects"]:
            raise ConfigError("no subject chosen; choose at least one person to train on")
        study["subjects"] = tuple(study["subjects"])
    if "designs" in study:
        study["designs"] = tuple(study["designs"])
    return replace(base, **study, train=replace(base.train, **train))


# -- the job process --------------------------------------------------------------------------
def run_job(registry: Registry | str | Path, run_id: str, cache: str | Path) -> None:
    """Execute the queued run ``run_id`` in this process: a ``train`` or ``study`` run with the
    config it recorded (:func:`emocore.workflows.study.resume_study`), or an ``assess`` run (adding
    the person from a dataset first when it names one). Progress goes to stderr (the job's log)
    and to the registry, where the dashboard follows it."""
    reg = _registry(registry)
    record = reg.get_run(run_id)
    note_job_step(reg, run_id, "the job process started: loading PyTorch")
    bar = ProgressBar(record.kind)
    if record.kind == "assess":
        config = record.config
        add_and_assess(
            cache,
            reg,
            config["run"],
            config["subject"],
            bids=config.get("bids"),
            annotations=config.get("annotations"),
            progress=bar,
            assess_id=run_id,
            force=bool(config.get("force")),
            exploratory=bool(config.get("exploratory")),
        )
        return
    note_job_step(reg, run_id, f"opening the cache at {cache}")
    resume_study(reg, run_id, open_cache(cache), progress=bar)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m emocore.workflows.jobs RUN_ID --cache CACHE --registry REGISTRY``: what a job process
    runs (the dashboard starts it; a person does not need to)."""
    parser = argparse.ArgumentParser(
        prog="python -m emocore.workflows.jobs", description=main.__doc__
    )
    parser.add_argument("run_id")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--registry", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run_job(args.registry, args.run_id, args.cache)
    except KeyboardInterrupt as exc:  # cancel_job's SIGINT; the run is marked cancelled
        print(f"emocore job {args.run_id}: interrupted", file=sys.stderr)
        return exit_code(exc)
    except (EmocoreError, OSError) as exc:
        print(f"emocore job {args.run_id}: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
