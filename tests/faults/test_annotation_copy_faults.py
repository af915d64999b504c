"""Observer files copied over one another (issue 22, item 8) and a scene list that is a folder are
refused with the files named, instead of changing the labels in silence."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.data.labels import OBSERVER_SETS, build_volume_labels, load_annotations
from emocore.errors import EXIT_CODES, AnnotationError
from tests.conftest import shared_data_dir, write_annotations

AV8 = OBSERVER_SETS["av8"][0]


@pytest.fixture
def annotations(tiny_cache, tmp_path: Path) -> Path:
    """A copy of the synthetic cohort's annotations: twelve observers of several hundred rows."""
    source = tiny_cache.path.parent / "cohort" / "annotations"
    return Path(shutil.copytree(source, tmp_path / "annotations"))


def _labels(raw: Path, out: Path, *extra: str) -> list[str]:
    return ["labels", "--annotations", str(raw), "--out", str(out), *extra]


def test_one_observer_copied_over_another_is_refused(annotations: Path, tmp_path, capsys):
    raw = annotations / "raw"
    shutil.copy(raw / "av1o01.csv", raw / "av1o02.csv")
    out = tmp_path / "labels.tsv"
    code = main(_labels(raw, out))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    rows = len(load_annotations(raw).observers["av1o01"])
    assert f"{raw / 'av1o01.csv'}, {raw / 'av1o02.csv'} hold the same {rows} annotation rows" in err
    assert "would vote 2 times" in err and "Restore the original files" in err
    assert "Traceback" not in err and not out.exists()


def test_every_observer_the_same_is_refused_naming_them_all(annotations: Path, tmp_path: Path):
    raw = annotations / "raw"
    for name in AV8[1:]:
        shutil.copy(raw / "av1o01.csv", raw / f"{name}.csv")
    with pytest.raises(AnnotationError) as info:
        build_volume_labels(load_annotations(raw))
    said = str(info.value)
    assert ", ".join(str(raw / f"{o}.csv") for o in AV8) + " hold the same" in said
    assert "would vote 8 times" in said


def test_prepare_refuses_a_copied_observer_before_reading_any_run(
    tiny_cache, annotations: Path, tmp_path: Path, capsys
) -> None:
    raw = annotations / "raw"
    shutil.copy(raw / "av1o05.csv", raw / "av1o09.csv")
    cohort = tiny_cache.path.parent / "cohort"
    argv = ["prepare", "--bids", str(cohort), "--annotations", str(raw)]
    code = main([*argv, "--cache", str(tmp_path / "cache"), "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"{raw / 'av1o05.csv'}, {raw / 'av1o09.csv'} hold the same" in err
    assert not (tmp_path / "cache").exists()


def test_a_few_identical_rows_are_a_warning_not_an_error(tmp_path: Path, caplog) -> None:
    """Hand-made sets of a few episodes (a pilot, a test) agree row for row by design."""
    raw = write_annotations(tmp_path / "ann")  # nine observers, the same five rows each
    with caplog.at_level(logging.WARNING, logger="emocore.data.labels"):
        table = build_volume_labels(load_annotations(raw))
    assert len(table) == 3599 and (table["label"] == "FEAR").any()
    assert f"{raw / 'av1o01.csv'}, {raw / 'av1o02.csv'}" in caplog.text
    assert "hold the same 5 annotation row(s)" in caplog.text


def test_the_real_annotations_have_no_copies() -> None:
    folder = shared_data_dir()
    if folder is None:
        pytest.skip("the real studyforrest annotations (../shared/data) are not here")
    annotations = load_annotations(folder)
    for observers in OBSERVER_SETS:
        table = build_volume_labels(annotations, observers=observers)
        assert len(table) == 3599


# -- the scene list --------------------------------------------------------------------------
def test_a_scene_list_that_is_a_folder_is_refused(annotations: Path, tmp_path, capsys) -> None:
    scenes = annotations / "movie_scenes.csv"
    scenes.unlink()
    scenes.mkdir()
    out = tmp_path / "labels.tsv"
    code = main(_labels(annotations / "raw", out))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"the scene list {scenes} is a folder; it must be the CSV file" in err
    assert "put the file in its place" in err and not out.exists()


def test_a_scene_list_that_leads_nowhere_is_refused(annotations: Path) -> None:
    scenes = annotations / "movie_scenes.csv"
    scenes.unlink()
    scenes.symlink_to(annotations / "gone.csv")
    with pytest.raises(AnnotationError, match=rf"the scene list {scenes} is not a file"):
        load_annotations(annotations / "raw")
