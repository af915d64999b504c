"""The dashboard names a damaged file instead of showing a traceback (issue 10)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.faults.conftest import SAID, damage

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An emocore home folder the app is pointed at (and nothing else)."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("EMOCORE_CACHE", "EMOCORE_REGISTRY", "EMOCORE_ANNOTATIONS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EMOCORE_HOME", str(home))
    monkeypatch.chdir(ROOT)
    return home


def open_page(path: str | None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    if path is not None:
        at.switch_page(path)
        at.run()
    return at


def shown(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("error", "info", "warning") for e in at.get(kind))


@pytest.mark.parametrize("how", ["binary", "no subjects"])
@pytest.mark.parametrize("page", [None, "pages/retrain.py"], ids=["overview", "retrain"])
def test_damaged_manifest_is_named_on_overview_and_retrain(
    tiny_cache, home: Path, page: str | None, how: str
) -> None:
    cache = Path(shutil.copytree(tiny_cache.path, home / "cache"))
    path = damage(cache, how)
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert f"{path} is damaged: {SAID[how]}" in shown(at), shown(at)


@pytest.mark.parametrize(
    "page", ["pages/subject.py", "pages/emotion-accuracy.py", "pages/misclassified.py"]
)
def test_cut_off_predictions_are_named_on_the_pages(
    tiny_cache, finished_run, home: Path, page: str
) -> None:
    shutil.copytree(tiny_cache.path, home / "cache")
    root = Path(shutil.copytree(finished_run[0], home / "registry"))
    path = root / "runs" / finished_run[1] / "predictions.tsv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:31]))
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    said = shown(at)
    assert f"{path} holds 30 rows but the run wrote {len(lines) - 1}" in said, said
    assert "the prediction table is empty" not in said


@pytest.mark.parametrize("page", [None, "pages/retrain.py"], ids=["overview", "retrain"])
def test_damaged_registry_database_is_named(tiny_cache, finished_run, home: Path, page) -> None:
    shutil.copytree(tiny_cache.path, home / "cache")
    root = Path(shutil.copytree(finished_run[0], home / "registry"))
    for extra in root.glob("registry.sqlite-*"):
        extra.unlink()
    (root / "registry.sqlite").write_bytes(b"not a database " * 100)
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert f"the run registry {root / 'registry.sqlite'} could not be used" in shown(at)
