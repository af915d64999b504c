"""A tiny finished demo home (2 people at 12 mm, one small study), built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_home(tiny_home: Path) -> Path:
    """cohort/, cache/ and registry/ with one completed study, in the layout `emocore demo` makes
    (shared with the browser tests, which copy it)."""
    return tiny_home


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


@pytest.fixture(scope="session")
def findings_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose one finished run holds single-case findings (eight people, sub-05 taking LOVE
    for SADNESS), with a tiny cache so the Overview page opens; no training (seconds)."""
    from emocore.data.prepare import prepare_cache
    from emocore.data.synthetic import SynthConfig, generate_cohort
    from emocore.runs.registry import Registry
    from emocore.workflows.demo import demo_paths
    from tests.conftest import write_findings_run

    root = tmp_path_factory.mktemp("emocore-findings-home")
    paths = demo_paths(root)
    generate_cohort(paths["cohort"], SynthConfig(n_subjects=2, grid_mm=12.0))
    cache = prepare_cache(paths["cohort"], paths["annotations"], paths["cache"])
    write_findings_run(Registry(paths["registry"]), cache_key=cache.key)
    return root


@pytest.fixture
def old_run_home(findings_home: Path, tmp_path: Path) -> Path:
    """The findings home with its run made to look like one from before single-case findings."""
    from emocore.runs.registry import Registry
    from tests.conftest import strip_findings

    home = Path(shutil.copytree(findings_home, tmp_path / "home"))
    registry = Registry(home / "registry")
    strip_findings(registry, registry.list_runs()["id"][0])
    return home
