"""BIDS derivative metadata and file names: valid labels, strict JSON, atomic writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import emocore
from emocore.derivatives import (
    BIDS_VERSION,
    file_uri,
    saliency_filename,
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
