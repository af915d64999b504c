"""Fixtures of the fault-injection tests: one tiny synthetic cache shared by the whole folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


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
    from emocore.experiment import StudyConfig
    from emocore.train import TrainConfig

    defaults = dict(
        designs=("single-subject",),
        n_folds=2,
        n_permutations=5,
        baseline=False,
        saliency=False,
        train=TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu", compile="off"),
    )
    return StudyConfig(**{**defaults, **options})
