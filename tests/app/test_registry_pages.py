"""The dashboard on a registry in a bad state, through app.py (AppTest; issue 22): a run whose
folder was deleted, a read-only archive, a person label with HTML in it, and the Assess page's
dataset folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from emocore.runs.registry import Registry
from tests.app.test_pages import PAGES, ROOT, no_exception, texts
from tests.faults.conftest import checksums, read_only


@pytest.fixture
def home(findings_home: Path, tmp_path: Path) -> Path:
    """A private copy of the findings home (one finished study of eight people, no training)."""
    return Path(shutil.copytree(findings_home, tmp_path / "home"))


def visit(name: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params.update(query)
    at.switch_page(PAGES[name]).run()
    no_exception(at, name)
    return at


def _only_run(home: Path) -> tuple[Registry, str]:
    registry = Registry(home / "registry")
    return registry, str(registry.list_runs()["id"][0])


@pytest.mark.parametrize("name", ["overview", "subject"])
def test_a_run_whose_folder_was_deleted_is_named_with_its_folder(
    home: Path, emocore_env, name: str
) -> None:
    emocore_env(home)
    registry, run_id = _only_run(home)
    shutil.rmtree(registry.run_dir(run_id))
    errors = texts(visit(name), "error")
    assert f"the folder of run {run_id}, {registry.run_dir(run_id)}, is missing" in errors
    assert f"emocore runs --forget {run_id}" in errors
    assert "may still be running" not in errors


def test_a_read_only_registry_is_browsed(home: Path, emocore_env) -> None:
    """Read-only for real: the folders lose their write bits and, as root, the test drops
    CAP_DAC_OVERRIDE while the pages run (tests/faults/conftest.read_only)."""
    emocore_env(home)
    root = home / "registry"
    before = checksums(root)
    with read_only(root, root / "runs", *(root / "runs").iterdir()):
        for name in ("overview", "subject"):
            at = visit(name)
            assert not at.error, [e.value for e in at.error]
            assert at.title and at.title[0].value.endswith(name.capitalize())
    assert checksums(root) == before  # nothing written, no -wal or -shm file either


def _html_person(home: Path) -> str:
    """The run with sub-05 relabelled '<b>x</b>' in every file (a hand-edited or forged run),
    and one stored model, so that the Subject page reaches its stored-model section."""
    registry, run_id = _only_run(home)
    folder = registry.run_dir(run_id)
    for name in ("study.json", "metrics.json", "predictions.tsv", "baseline.tsv"):
        path = folder / name
        text = path.read_text()
        if name.endswith(".json"):
            text = text.replace('"05"', '"<b>x</b>"')
        else:
            text = "\n".join(
                "\t".join("<b>x</b>" if cell == "05" else cell for cell in line.split("\t"))
                for line in text.split("\n")
            )
        path.write_text(text)
    model = folder / "models" / "loso" / "sub-01.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"not read by this page")
    registry.add_artifact(run_id, "loso/sub-01", model, "checkpoint")
    return run_id


def test_the_subject_page_says_an_html_person_is_not_there(home: Path, emocore_env) -> None:
    emocore_env(home)
    run_id = _html_person(home)
    at = visit("subject", subject="<b>x</b>")
    assert not at.error, [e.value for e in at.error]  # was: "--subject '<b>x</b>' is not a..."
    warnings = texts(at, "warning")
    assert f"The link asks for sub-<b>x</b>, who is not in run {run_id}" in warnings
    assert "left out here: '<b>x</b>'" in warnings
    assert next(s for s in at.selectbox if s.label == "Subject").value == "01"
    assert "<b>x</b>" not in next(s for s in at.selectbox if s.label == "Subject").options


def test_the_assess_page_offers_only_folders_with_bold_runs(home: Path, emocore_env) -> None:
    emocore_env(home)
    at = visit("assess")
    box = next(s for s in at.selectbox if s.label.startswith("Dataset folder"))
    assert list(box.options) == ["cohort"]  # shown relative to the home: not cache/ or registry/
