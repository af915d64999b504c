"""Fixtures of the fault-injection tests: one tiny synthetic cache shared by the whole folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import pytest

from emocore.runs.registry import Registry


def checksums(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` (relative POSIX path -> hex digest)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory):
    """Two synthetic people on a coarse 12 mm grid, prepared once (a few seconds)."""
    from emocore.data.prepare import prepare_cache
    from emocore.data.synthetic import SynthConfig, generate_cohort

    root = tmp_path_factory.mktemp("faults-home")
    generate_cohort(root / "cohort", SynthConfig(n_subjects=2, grid_mm=12.0))
    return prepare_cache(root / "cohort", root / "cohort" / "annotations" / "raw", root / "cache")


def tiny_study(**options):
    """A study config that trains in seconds on the CPU."""
    from emocore.training.train import TrainConfig
    from emocore.workflows.study import StudyConfig

    defaults = dict(
        designs=("single-subject",),
        n_folds=2,
        n_permutations=5,
        baseline=False,
        saliency=False,
        train=TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu", compile="off"),
    )
    return StudyConfig(**{**defaults, **options})


# -- permissions ------------------------------------------------------------------------------
_CAP_VERSION_3 = 0x20080522
_DAC_CAPS = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def _caps(libc, header, data, *, set_them: bool) -> None:
    import ctypes

    call = libc.capset if set_them else libc.capget
    if call(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget/capset failed")


@contextlib.contextmanager
def file_modes_apply():
    """Make file modes bind this process as they bind an ordinary user, then restore.

    Root ignores read and write bits (CAP_DAC_OVERRIDE), so a chmod-ed folder would not stop it.
    As root, the two DAC capabilities are dropped from this thread's *effective* set (they stay
    permitted, so they are raised again on exit); elsewhere nothing is needed. Skips the test
    where neither works (no libc capset).
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        yield
        return
    import ctypes
    import ctypes.util

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        header, data = Header(_CAP_VERSION_3, 0), (Data * 2)()
        _caps(libc, header, data, set_them=False)
        saved = data[0].effective
        data[0].effective = saved & ~_DAC_CAPS
        _caps(libc, Header(_CAP_VERSION_3, 0), data, set_them=True)
    except (OSError, AttributeError, TypeError) as exc:
        pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE here ({exc})")
    try:
        yield
    finally:
        data[0].effective = saved
        _caps(libc, Header(_CAP_VERSION_3, 0), data, set_them=True)


@contextlib.contextmanager
def read_only(*folders: Path, mode: int = 0o555):
    """``folders`` (not what is below them) without write permission, binding even root."""
    before = {f: f.stat().st_mode & 0o7777 for f in folders}
    for f in folders:
        f.chmod(mode)
    try:
        with file_modes_apply():
            yield
    finally:
        for f, m in before.items():
            f.chmod(m)


# -- damaged manifests -----------------------------------------------------------------------
#: Ways a manifest.json is damaged (what each does to the parsed manifest), and what is said.
DAMAGE = {
    "binary": lambda m: b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage",
    "cut-off": lambda m: json.dumps(m).encode()[:200],
    "a list": lambda m: b"[1, 2]",
    "no subjects": lambda m: json.dumps({k: v for k, v in m.items() if k != "subjects"}).encode(),
    "no runs": lambda m: json.dumps(
        {**m, "subjects": {"01": {"file": "sub-01.npy", "n_volumes": 3}}}
    ).encode(),
    "bad grid": lambda m: json.dumps({**m, "grid": {**m["grid"], "shape": [4, 4]}}).encode(),
}
SAID = {
    "binary": "it is not JSON",
    "cut-off": "it is not JSON",
    "a list": "it holds list, not a JSON object",
    "no subjects": "it lacks the key 'subjects'",
    "no runs": "subjects.01.runs is not a list of runs",
    "bad grid": "grid.shape is [4, 4], not three positive sides",
}


def damage(cache_dir: Path, how: str) -> Path:
    """Damage the manifest.json of ``cache_dir`` as DAMAGE[how] says; return its path."""
    path = cache_dir / "manifest.json"
    path.write_bytes(DAMAGE[how](json.loads(path.read_text())))
    return path


# -- a finished run ---------------------------------------------------------------------------
def untrained_design(cache, design, train_config, *, subjects=None, classes=(), **_):
    """run_design without training: every held-out volume predicted at random (bookkeeping only)."""
    import numpy as np

    from emocore.data.dataset import select
    from emocore.training.designs import DesignResult, prediction_table

    meta = select(cache, subjects=subjects, classes=classes)
    probs = np.random.default_rng(0).dirichlet(np.ones(len(classes)), len(meta))
    table = prediction_table(
        meta,
        probs,
        classes,
        fold=meta["run"] % 2,
        fold_name="runs",
        seen=False,
        model="sub-01",
        design=design,
        split="leave-one-run-out",
    )
    return DesignResult(design, "leave-one-run-out", False, list(classes), table)


@pytest.fixture(scope="session")
def finished_run(tiny_cache, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A registry holding one finished study, its bundle written by run_study itself (models
    replaced by random predictions: a trained one costs half a minute here)."""
    from emocore.workflows import study as study_module

    root = tmp_path_factory.mktemp("finished-run") / "registry"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study_module, "run_design", untrained_design)
        run_id = study_module.run_study(
            tiny_cache, Registry(root), tiny_study(), kind="train"
        ).run_id
    return root, run_id


# -- a full disk ------------------------------------------------------------------------------
@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str):
    """A real tmpfs of ``size`` (e.g. '12m') at ``folder``; skips where none can be mounted."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Write zeros to ``folder/filler`` until the disk has at most ``leave`` bytes free."""
    import shutil as _shutil

    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while _shutil.disk_usage(folder).free > leave:
            step = max(4096, min(2**20, _shutil.disk_usage(folder).free - leave))
            if not os.write(fd, b"\0" * step):
                break
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler
