"""The manifest records the folders prepare read as absolute paths, so a dashboard started in
another folder finds the annotations (issue 22, "also found"); caches made before, which hold
paths relative to where prepare ran, are read through the absolute folders their
dataset_description.json lists, or get a message saying what to set."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from emocore.data.cache import open_cache
from emocore.data.prepare import prepare
from emocore.ui.settings import Settings


@pytest.fixture(scope="module")
def prepared_here(tiny_cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny cohort prepared from work/ with relative --bids/--annotations/--cache."""
    work = tmp_path_factory.mktemp("relative") / "work"
    shutil.copytree(tiny_cache.path.parent / "cohort", work / "cohort")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        prepare(Path("cohort"), Path("cohort/annotations/raw"), Path("cache"))
    return work


@pytest.fixture
def relative_cache(prepared_here: Path, tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A copy of ``prepared_here`` (work/cohort, work/cache); the test runs in another folder."""
    work = Path(shutil.copytree(prepared_here, tmp_path / "work"))
    manifest = work / "cache" / "manifest.json"  # the copy's own absolute paths
    manifest.write_text(manifest.read_text().replace(str(prepared_here), str(work)))
    description = work / "cache" / "dataset_description.json"
    description.write_text(description.read_text().replace(str(prepared_here), str(work)))
    monkeypatch.chdir(tmp_path)  # the dashboard starts somewhere else
    return work, work / "cache"


def _settings(cache: Path, cwd: Path) -> Settings:
    return Settings.from_env({"EMOCORE_HOME": str(cwd), "EMOCORE_CACHE": str(cache)}, cwd=cwd)


def _make_relative(cache: Path, drop_description: bool = False) -> None:
    """The manifest as emocore wrote it before: paths as typed, relative to where it ran."""
    path = cache / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["source"].update(
        root="cohort",
        folder="cohort/derivatives/non-linear_anatomical_alignment",
        annotations="cohort/annotations/raw",
    )
    path.write_text(json.dumps(manifest))
    if drop_description:
        (cache / "dataset_description.json").unlink()


def test_the_manifest_records_absolute_paths(relative_cache, tmp_path: Path) -> None:
    work, cache = relative_cache
    source = open_cache(cache).manifest["source"]
    assert source["root"] == str(work / "cohort")
    assert source["annotations"] == str(work / "cohort" / "annotations" / "raw")
    assert source["folder"] == str(work / "cohort" / "derivatives/non-linear_anatomical_alignment")
    settings = _settings(cache, tmp_path)
    assert settings.annotations == work / "cohort" / "annotations" / "raw"
    assert not [p for p in settings.check() if "annotation" in p]


def test_an_older_relative_manifest_is_found_through_its_description(
    relative_cache, tmp_path: Path
) -> None:
    work, cache = relative_cache
    _make_relative(cache)
    assert os.getcwd() != str(work)
    assert open_cache(cache).source_path("annotations") == work / "cohort" / "annotations" / "raw"
    assert open_cache(cache).source_path("root") == work / "cohort"
    settings = _settings(cache, tmp_path)
    assert settings.annotations == work / "cohort" / "annotations" / "raw"
    assert settings.annotations_note is None


def test_an_older_relative_manifest_that_cannot_be_found_says_what_to_set(
    relative_cache, tmp_path: Path
) -> None:
    _, cache = relative_cache
    _make_relative(cache, drop_description=True)
    problems = _settings(cache, tmp_path).check()
    said = next(p for p in problems if "annotation" in p)
    assert f"the cache's manifest ({cache / 'manifest.json'}) records the annotation" in said
    assert "'cohort/annotations/raw', relative to the folder `emocore prepare` ran in" in said
    assert "set EMOCORE_ANNOTATIONS" in said and "re-run `emocore prepare`" in said


def test_prepare_records_absolute_paths_in_an_older_manifest(relative_cache) -> None:
    work, cache = relative_cache
    _make_relative(cache)
    result = prepare(work / "cohort", work / "cohort" / "annotations" / "raw", cache)
    assert result.action == "unchanged"
    source = json.loads((cache / "manifest.json").read_text())["source"]
    assert source["root"] == str(work / "cohort")
    assert source["annotations"] == str(work / "cohort" / "annotations" / "raw")
    assert Path(source["folder"]).is_absolute()
