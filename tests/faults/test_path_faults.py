"""Names that become paths stay inside their root (issue 10, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emocore.cli import main
from emocore.errors import EXIT_CODES, ConfigError
from emocore.runs.registry import Registry
from emocore.runs.results import RunResults
from tests.faults.conftest import checksums

BAD_NAMES = [
    "..",
    ".",
    "../x",
    "a/b",
    "a\\b",
    "",
    ".hidden",
    "-rf",
    "a b",
    "/etc/passwd",
    "x" * 101,
]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


@pytest.mark.parametrize("run_id", BAD_NAMES)
def test_run_dir_refuses_names_that_leave_runs(registry: Registry, run_id: str) -> None:
    with pytest.raises(
        ConfigError, match=r"is not a run id: it must be one name.*`emocore runs` lists the runs"
    ):
        registry.run_dir(run_id)


@pytest.mark.parametrize(
    "model",
    ["../../../../outside/good", "single-subject/../../x", "loso/", "single-subject", "x/sub-01"],
)
def test_model_path_refuses_names_that_leave_the_run(registry: Registry, model: str) -> None:
    run = registry.create_run(kind="train")
    with pytest.raises(ConfigError, match=r"model|--model") as info:
        RunResults(registry, run.id).model_path(model)
    assert repr(model.partition("/")[2]) in str(info.value) or repr(model) in str(info.value)
    assert "single-subject/sub-01" in str(info.value) or "'sub-01'" in str(info.value)


@pytest.mark.parametrize("subject", ["../../../x", "01/../02", "sub-01", ""])
def test_stored_predictions_refuse_bad_subject_labels(registry: Registry, subject: str) -> None:
    run = registry.create_run(kind="train")
    with pytest.raises(ConfigError, match=rf"--subject {subject!r} is not a subject label"):
        RunResults(registry, run.id).inference_path("single-subject/sub-01", subject)


def test_predict_cannot_load_or_write_outside_the_registry(
    tiny_cache, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "registry"
    run = Registry(root).create_run(kind="train", status="completed")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "good.pt").write_bytes(b"not yours")
    before = checksums(outside)
    code = main(
        ["predict", "--registry", str(root), "--cache", str(tiny_cache.path), "--run", run.id]
        + ["--model", "../../../../outside/good", "--subject", "01", "--device", "cpu"]
    )
    err = capsys.readouterr().err
    assert code == EXIT_CODES["config"], err
    assert "--model '../../../../outside/good' is not a model name" in err
    assert "<design>/<name>" in err
    assert checksums(outside) == before and not (outside / "good").exists()
