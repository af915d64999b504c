"""BIDS derivative metadata and file names: valid labels, strict JSON, atomic writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import emocore
from emocore.data.derivatives import (
    BIDS_VERSION,
    file_uri,
    saliency_filename,
    saliency_map_path,
    saliency_relpath,
    sidecar_path,
    write_dataset_description,
)
from emocore.errors import ConfigError

#: A BIDS derivative file name: key-label pairs, a suffix, an extension (labels alphanumeric).
BIDS_NAME = re.compile(r"(?:[a-z]+-[A-Za-z0-9]+_)+[A-Za-z0-9]+\.nii\.gz")


def test_dataset_description_has_the_bids_derivative_fields(tmp_path: Path) -> None:
    source = tmp_path / "cache"
    source.mkdir()
    path = write_dataset_description(
        tmp_path / "run", name="emocore run r1", source_datasets=[source], description="a study"
    )
    assert path == tmp_path / "run" / "dataset_description.json"
    body = json.loads(path.read_text())
    assert body == {
        "Name": "emocore run r1",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {"Name": "emocore", "Version": emocore.__version__, "Description": "a study"}
        ],
        "SourceDatasets": [{"URL": source.resolve().as_uri()}],
    }
    assert body["SourceDatasets"][0]["URL"].startswith("file:///")
    assert [p.name for p in path.parent.iterdir()] == ["dataset_description.json"]  # no temp


def test_dataset_description_without_sources_or_description_omits_them(tmp_path: Path) -> None:
    body = json.loads(write_dataset_description(tmp_path, name="cache").read_text())
    assert "SourceDatasets" not in body
    assert body["GeneratedBy"] == [{"Name": "emocore", "Version": emocore.__version__}]


def test_dataset_description_relative_source_becomes_absolute_uri(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    body = json.loads(
        write_dataset_description("out", name="x", source_datasets=["data"]).read_text()
    )
    assert body["SourceDatasets"] == [{"URL": (tmp_path / "data").as_uri()}]
    assert file_uri("data") == (tmp_path / "data").as_uri()


def test_dataset_description_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'name' must be a non-empty string"):
        write_dataset_description(tmp_path, name=" ")
    with pytest.raises(ConfigError, match="'source_datasets' must be a list.*wrap it"):
        write_dataset_description(tmp_path, name="x", source_datasets="cache")  # type: ignore[arg-type]
    assert not (tmp_path / "dataset_description.json").exists()


def test_saliency_names_are_bids_entities() -> None:
    assert saliency_filename("03", "LOVE") == "sub-03_desc-love_saliency.nii.gz"
    assert saliency_filename(None, "HAPPINESS") == "desc-happiness_saliency.nii.gz"
    assert saliency_relpath("03", "FEAR") == "sub-03/sub-03_desc-fear_saliency.nii.gz"
    assert saliency_relpath(None, "FEAR") == "desc-fear_saliency.nii.gz"
    for name in (saliency_filename("01", "ANGER"), saliency_filename(None, "SADNESS")):
        assert BIDS_NAME.fullmatch(name), name


@pytest.mark.parametrize(
    ("subject", "emotion", "bad"),
    [("sub-01", "LOVE", "subject"), ("0_1", "LOVE", "subject"), ("01", "NO NE", "emotion")],
)
def test_saliency_names_refuse_labels_that_are_not_alphanumeric(
    subject: str, emotion: str, bad: str
) -> None:
    with pytest.raises(ConfigError, match=f"{bad} .* is not a BIDS label"):
        saliency_filename(subject, emotion)


def test_sidecar_sits_next_to_the_map() -> None:
    assert sidecar_path("a/sub-01_desc-love_saliency.nii.gz") == Path(
        "a/sub-01_desc-love_saliency.json"
    )
    assert sidecar_path("x.nii") == Path("x.json")
    with pytest.raises(ConfigError, match="not a NIfTI file"):
        sidecar_path("x.tsv")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"nifti")
    return path


def test_saliency_map_path_reads_bids_names_and_the_names_older_runs_used(tmp_path: Path) -> None:
    new = _touch(tmp_path / "loso" / "sub-03" / "sub-03_desc-love_saliency.nii.gz")
    group = _touch(tmp_path / "cross-subject" / "desc-love_saliency.nii.gz")
    old = _touch(tmp_path / "single-subject" / "sub-01_LOVE.nii.gz")
    # what study.json records, and the name implied by the model when no entry is at hand
    entry = {"file": "sub-03/sub-03_desc-love_saliency.nii.gz"}
    assert saliency_map_path(tmp_path / "loso", "sub-03", "LOVE", entry) == new
    assert saliency_map_path(tmp_path / "loso", "sub-03", "LOVE") == new
    assert saliency_map_path(tmp_path / "cross-subject", "all", "LOVE") == group
    # a run made before BIDS names: its study.json entry, or no entry at all
    folder = tmp_path / "single-subject"
    assert saliency_map_path(folder, "sub-01", "LOVE", {"file": "sub-01_LOVE.nii.gz"}) == old
    assert saliency_map_path(folder, "sub-01", "LOVE") == old
    assert saliency_map_path(folder, "sub-01", "FEAR") is None
    assert saliency_map_path(tmp_path / "nowhere", "sub-01", "LOVE") is None


def test_saliency_map_path_never_leaves_the_design_folder(tmp_path: Path) -> None:
    _touch(tmp_path / "secret.nii.gz")
    folder = tmp_path / "loso"
    folder.mkdir()
    for recorded in ("../secret.nii.gz", str(tmp_path / "secret.nii.gz")):
        assert saliency_map_path(folder, "sub-01", "LOVE", {"file": recorded}) is None
    assert saliency_map_path(folder, "../x", "LO VE") is None  # no BIDS name, no old file


def test_a_run_folder_gets_a_description_and_a_failed_write_is_logged(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    from emocore.data import derivatives
    from emocore.runs.registry import Registry

    reg = Registry(tmp_path / "registry")
    run = reg.create_run(kind="study", sources=[tmp_path / "cache"])
    body = json.loads((reg.run_dir(run.id) / "dataset_description.json").read_text())
    assert body["Name"] == f"emocore study run {run.id}"
    assert body["SourceDatasets"] == [{"URL": (tmp_path / "cache").resolve().as_uri()}]

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(derivatives, "atomic_write_json", full_disk)
    with caplog.at_level("WARNING", logger="emocore.runs.registry"):
        other = reg.create_run(kind="evaluate", parent=run.id)  # the run is still recorded
    assert reg.get_run(other.id).kind == "evaluate"
    assert not (reg.run_dir(other.id) / "dataset_description.json").exists()
    assert "No space left on device" in caplog.text and other.id in caplog.text


def test_saliency_methods_say_what_their_numbers_are() -> None:
    from emocore.interpret.saliency import IG_STEPS, describe_method

    ig = describe_method("integrated-gradients")
    assert ig["Steps"] == IG_STEPS and "zero" in ig["Baseline"] and "logit" in ig["Units"]
    assert describe_method("grad-cam", target="pred")["Layer"] == "block3"
    with pytest.raises(ConfigError, match="'method' must be one of"):
        describe_method("lime")
