"""Background jobs: real child processes training on a tiny cohort (a few seconds each)."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest

from emocore.data.prepare import prepare_cache
from emocore.data.synthetic import SynthConfig, generate_cohort
from emocore.errors import ConfigError, RegistryError
from emocore.runs.registry import Registry
from emocore.training.train import TrainConfig
from emocore.workflows.demo import demo_paths
from emocore.workflows.jobs import (
    JobBusyError,
    JobError,
    active_jobs,
    cancel_job,
    job_log,
    start_job,
    wait_job,
)
from emocore.workflows.study import StudyConfig

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the suite shares 2 cores


def tiny_config(epochs: int = 1) -> StudyConfig:
    return StudyConfig(
        designs=("single-subject",),
        n_folds=2,
        n_permutations=50,
        baseline=False,
        saliency=False,
        train=TrainConfig(epochs=epochs, widths=(4, 8, 8), hidden=16, device="cpu"),
    )


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    paths = demo_paths(tmp_path_factory.mktemp("jobs"))
    generate_cohort(paths["cohort"], SynthConfig(n_subjects=2, grid_mm=12.0))
    prepare_cache(paths["cohort"], paths["annotations"], paths["cache"])
    return paths["cache"]


@pytest.fixture
def registry(tmp_path: Path):
    reg = Registry(tmp_path / "registry")
    yield reg
    for record in active_jobs(reg):  # never leave a training process behind a failed test
        cancel_job(reg, record.id, grace_s=2)


def gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists() or _signalable(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_training(registry: Registry, run_id: str, timeout_s: float = 60) -> None:
    """Until the job has logged its first epoch, i.e. it is inside the training loop."""
    deadline = time.monotonic() + timeout_s
    while registry.get_run(run_id).status != "running" or registry.curves(run_id).empty:
        assert not registry.get_run(run_id).finished, job_log(registry, run_id)
        assert time.monotonic() < deadline, f"no epoch after {timeout_s} s:\n" + job_log(
            registry, run_id
        )
        time.sleep(0.1)


def _start_and_forget(registry_root: Path, cache: Path) -> str:
    """Start a job from objects that are all dropped when this function returns."""
    return start_job(Registry(registry_root), cache, tiny_config(), env=ONE_THREAD)


@pytest.mark.slow
def test_job_completes_after_its_starter_is_garbage_collected(
    registry: Registry, tiny_cache: Path
) -> None:
    run_id = _start_and_forget(registry.root, tiny_cache)
    gc.collect()
    record = registry.get_run(run_id)
    assert record.pid is not None and record.pid != os.getpid()
    assert record.kind == "train" and record.design == "single-subject"
    assert record.subjects == ["01", "02"] and record.config["train"]["epochs"] == 1

    done = wait_job(registry, run_id, timeout_s=120)

    assert done.status == "completed", job_log(registry, run_id)
    assert done.progress == 1.0
    assert done.metrics["results"][0]["design"] == "single-subject"
    assert "balanced_accuracy" in done.metrics["results"][0]
    assert (registry.run_dir(run_id) / "study.json").is_file()
    assert "is completed" in job_log(registry, run_id)
    assert gone(done.pid)
    assert active_jobs(registry) == []


@pytest.mark.slow
def test_cancel_stops_a_long_job_and_a_second_job_is_refused_meanwhile(
    registry: Registry, tiny_cache: Path
) -> None:
    run_id = start_job(registry, tiny_cache, tiny_config(epochs=500), env=ONE_THREAD)
    with pytest.raises(JobBusyError, match=rf"{run_id}.*cancel"):
        start_job(registry, tiny_cache, tiny_config(), env=ONE_THREAD)
    assert [r.id for r in active_jobs(registry)] == [run_id]  # the refused one left no run
    wait_training(registry, run_id)
    pid = registry.get_run(run_id).pid

    record = cancel_job(registry, run_id)

    assert record.status == "cancelled"
    assert "SIGINT" in record.error  # stopped by the job process's KeyboardInterrupt handler
    assert gone(pid)
    assert registry.get_run(run_id).status == "cancelled"
    assert "interrupted" in job_log(registry, run_id)
    assert active_jobs(registry) == []
    with pytest.raises(JobError, match="already cancelled"):
        cancel_job(registry, run_id)


@pytest.mark.slow
def test_cancel_escalates_when_the_job_ignores_sigint(
    registry: Registry, tiny_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal as signal_module

    import emocore.workflows.jobs as jobs

    run_id = start_job(registry, tiny_cache, tiny_config(epochs=500), env=ONE_THREAD)
    wait_training(registry, run_id)
    pid = registry.get_run(run_id).pid
    sent = []

    def no_sigint(pid_: int, sig: signal_module.Signals) -> None:
        sent.append(sig)
        if sig != signal_module.SIGINT:
            os.killpg(pid_, sig)

    monkeypatch.setattr(jobs, "_signal", no_sigint)
    record = cancel_job(registry, run_id, grace_s=1)

    assert sent == [signal_module.SIGINT, signal_module.SIGTERM]
    assert record.status == "cancelled" and "SIGTERM" in record.error
    assert gone(pid)


def test_cancelling_a_finished_run_is_an_error(registry: Registry) -> None:
    run = registry.create_run(kind="train", status="completed")
    with pytest.raises(JobError, match=rf"run {run.id} is already completed"):
        cancel_job(registry, run.id)
    with pytest.raises(RegistryError, match="no run 'nope'"):
        cancel_job(registry, "nope")


def test_cancel_a_queued_run_without_a_process(registry: Registry) -> None:
    run = registry.create_run(kind="train")
    record = cancel_job(registry, run.id)
    assert record.status == "cancelled"
    assert "before its process started" in record.error


@pytest.mark.slow
def test_a_queued_run_without_a_live_process_does_not_block(
    registry: Registry, tiny_cache: Path
) -> None:
    queued = registry.create_run(kind="train")  # queued, never started: no pid
    dead = registry.create_run(kind="train", pid=2**22 + 12345)  # above Linux's pid_max
    assert [r.id for r in active_jobs(registry)] == [queued.id]
    assert registry.get_run(dead.id).status == "failed"  # active_jobs marked it stale
    run_id = start_job(registry, tiny_cache, tiny_config(), env=ONE_THREAD)
    assert wait_job(registry, run_id, timeout_s=120).status == "completed"


def test_start_job_checks_its_inputs_before_recording_a_run(
    registry: Registry, tiny_cache: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="'kind' must be one of 'train', 'study'; 'bench'"):
        start_job(registry, tiny_cache, tiny_config(), kind="bench")
    with pytest.raises(Exception, match="manifest|cache"):
        start_job(registry, tmp_path / "no-cache", tiny_config())
    config = StudyConfig(designs=("single-subject",), subjects=("07",))
    with pytest.raises(ConfigError, match=r"subject\(s\) 07 not in the cache"):
        start_job(registry, tiny_cache, config)
    assert registry.list_runs().empty


def test_job_log_tail(registry: Registry) -> None:
    run = registry.create_run(kind="train")
    assert job_log(registry, run.id) == ""  # not started as a job
    (registry.run_dir(run.id) / "job.log").write_text(
        "".join(f"line {i}\n" for i in range(300)) + "epoch [###   ] 10%\repoch [######] 20%\n"
    )
    text = job_log(registry, run.id, tail=3)
    assert text.splitlines() == ["line 298", "line 299", "epoch [######] 20%"]
    assert len(job_log(registry, run.id).splitlines()) == 200
    assert job_log(registry, run.id, tail=0) == ""
    with pytest.raises(ConfigError, match="'tail' must be a number of lines >= 0; -1"):
        job_log(registry, run.id, tail=-1)
    with pytest.raises(RegistryError, match="no run"):
        job_log(registry, "missing")
