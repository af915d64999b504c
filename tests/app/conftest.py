"""A tiny finished demo home (2 people at 12 mm, one small study), built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cohort/, cache/ and registry/ with one completed study, in the layout `emocore demo` makes."""
    from emocore.data.prepare import prepare_cache
    from emocore.data.synthetic import SynthConfig, generate_cohort
    from emocore.demo import demo_paths
    from emocore.experiment import StudyConfig, run_study
    from emocore.registry import Registry
    from emocore.train import TrainConfig

    root = tmp_path_factory.mktemp("emocore-home")
    paths = demo_paths(root)
    generate_cohort(paths["cohort"], SynthConfig(n_subjects=2, grid_mm=12.0))
    cache = prepare_cache(paths["cohort"], paths["annotations"], paths["cache"])
    config = StudyConfig(
        n_folds=2,
        n_permutations=50,
        train=TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu"),
    )
    run_study(cache, Registry(paths["registry"]), config)
    return root


@pytest.fixture
def home_copy(demo_home: Path, tmp_path: Path) -> Path:
    """A private copy of the demo home, for tests that damage it."""
    return Path(shutil.copytree(demo_home, tmp_path / "home"))


@pytest.fixture
def emocore_env(monkeypatch: pytest.MonkeyPatch):
    """Point the app at a home folder (and nothing else), with no emocore.toml in the way."""

    def use(home: Path) -> Path:
        for var in ("EMOCORE_CACHE", "EMOCORE_REGISTRY", "EMOCORE_ANNOTATIONS"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("EMOCORE_HOME", str(home))
        monkeypatch.chdir(ROOT)
        return home

    return use
