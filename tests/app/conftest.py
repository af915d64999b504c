"""A tiny finished demo home (2 people at 12 mm, one small study), built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cohort/, cache/ and registry/ with one completed study, in the layout `emocore demo` makes."""
    from tests.conftest import build_tiny_home

    return build_tiny_home(tmp_path_factory.mktemp("emocore-home"))


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
