"""study.json's format version: older files are read as they were meant, current ones pass
through unchanged, newer ones are refused (emocore.runs.schema, RunResults.study)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from emocore.constants import EMOTIONS
from emocore.errors import EmocoreError
from emocore.runs.registry import Registry
from emocore.runs.results import RunResults
from emocore.runs.schema import STUDY_SCHEMA_VERSION, StudyRecord, study_version, upgrade_study

#: What a study.json of version 1 looked like at its oldest: no schema_version, alpha, primary,
#: verdicts, findings, per-fold settings or checks; headline rows and maps without their model
#: family and method.
VERSION_1 = {
    "run_id": "20261101-000000-abcd",
    "emocore_version": "0.1.0",
    "cache": {"path": "cache", "key": "k1", "grid": [7, 8, 9], "options": {}},
    "config": {"designs": ["single-subject", "loso"], "train": {"epochs": 2}},
    "classes": list(EMOTIONS),
    "subjects": ["01", "02"],
    "results": [
        {"design": "single-subject", "split": "leave-one-run-out", "balanced_accuracy": 0.3},
        {"design": "loso", "split": "leave-one-subject-out", "balanced_accuracy": 0.25},
    ],
    "seconds": 12.5,
    "saliency": {"loso": {"loso": {"LOVE": {"file": "desc-LOVE_saliency.nii.gz"}}}},
    "embeddings": None,
    "train_volumes_per_s": {"loso": 100.0},
}


def test_version_1_is_read_as_older_runs_meant_it() -> None:
    raw = copy.deepcopy(VERSION_1)
    study = upgrade_study(raw)
    assert raw == VERSION_1  # the file's own dict is never changed
    assert study["schema_version"] == STUDY_SCHEMA_VERSION
    assert study["config"]["saliency_method"] == "integrated-gradients"
    assert [r["model"] for r in study["results"]] == ["cnn", "cnn"]
    assert study["saliency"]["loso"]["loso"]["LOVE"]["method"] == "integrated-gradients"
    assert study["alpha"] == 0.05
    # the default primary analysis of its designs, marked as read for an older run
    assert study["primary"]["design"] == "loso"
    assert study["primary"]["model"] == "cnn"
    assert study["primary"]["how"] == "older run"
    for key in ("tuning", "saliency_checks", "peak_gpu_memory_gib"):
        assert study[key] == {}
    assert study["train_volumes_per_s"] == {"loso": 100.0}  # recorded values are kept
    # what an older run never computed stays absent, so readers still tell it apart
    for key in ("verdicts", "atypical", "stability", "tables"):
        assert key not in study
    record = StudyRecord.from_dict(raw)
    assert record.to_dict() == study
    assert record.primary_analysis is not None and record.primary_analysis.how == "older run"


def test_version_1_without_designs_falls_back_on_its_results() -> None:
    raw = copy.deepcopy(VERSION_1)
    del raw["config"]["designs"]
    raw["results"] = raw["results"][:1]
    assert upgrade_study(raw)["primary"]["design"] == "single-subject"
    raw["results"] = []  # nothing to fall back on: no primary analysis is made up
    assert "primary" not in upgrade_study(raw)


def test_recorded_values_are_not_overwritten() -> None:
    raw = copy.deepcopy(VERSION_1)
    raw["config"]["saliency_method"] = "gradient"
    raw["results"].append({"design": "loso", "model": "linear", "balanced_accuracy": 0.2})
    raw["alpha"] = 0.01
    study = upgrade_study(raw)
    assert study["config"]["saliency_method"] == "gradient"
    assert [r["model"] for r in study["results"]] == ["cnn", "cnn", "linear"]
    assert study["alpha"] == 0.01


def _tiny_study(tiny_home: Path) -> tuple[Registry, str, Path]:
    registry = Registry(tiny_home / "registry")
    run_id = str(registry.list_runs()["id"][0])
    return registry, run_id, registry.run_dir(run_id) / "study.json"


def test_a_current_study_json_round_trips_unchanged(tiny_home: Path) -> None:
    registry, run_id, path = _tiny_study(tiny_home)
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == STUDY_SCHEMA_VERSION  # what a study writes now
    assert upgrade_study(raw) is raw
    record = StudyRecord.from_dict(raw, path)
    assert record.to_dict() == raw
    results = RunResults(registry, run_id)
    assert results.study == raw
    assert results.study_record == record
    assert results.study_record.classes == results.classes


@pytest.mark.parametrize("version", [STUDY_SCHEMA_VERSION + 1, 99])
def test_a_newer_study_json_is_refused_naming_the_file(tiny_home, tmp_path, version) -> None:
    home = Path(shutil.copytree(tiny_home / "registry", tmp_path / "registry"))
    registry, run_id, path = _tiny_study(tmp_path)
    study = json.loads(path.read_text())
    study["schema_version"] = version
    path.write_text(json.dumps(study))
    with pytest.raises(EmocoreError) as err:
        RunResults(Registry(home), run_id).study  # noqa: B018
    message = str(err.value)
    assert str(path) in message
    assert f"schema version {version}" in message
    assert "upgrade emocore" in message


@pytest.mark.parametrize("alpha", ["missing", None, 0, 1.5, "0.05"])
def test_a_current_study_json_without_a_usable_alpha_is_named(tiny_home, tmp_path, alpha) -> None:
    """A current file always holds alpha (only older ones get the default): a hand-edited one
    without a level is named as damaged, not read with a KeyError later."""
    home = Path(shutil.copytree(tiny_home / "registry", tmp_path / "registry"))
    registry, run_id, path = _tiny_study(tmp_path)
    study = json.loads(path.read_text())
    assert study["schema_version"] == STUDY_SCHEMA_VERSION
    if alpha == "missing":
        del study["alpha"]
    else:
        study["alpha"] = alpha
    path.write_text(json.dumps(study))
    with pytest.raises(EmocoreError, match="is damaged: 'alpha' is") as err:
        RunResults(Registry(home), run_id).study  # noqa: B018
    assert str(path) in str(err.value)


@pytest.mark.parametrize("version", ["2", 0, True, None, 1.5])
def test_a_damaged_schema_version_is_named(version) -> None:
    with pytest.raises(EmocoreError, match="x/study.json is damaged: its schema_version"):
        study_version({"schema_version": version}, "x/study.json")


def test_unknown_keys_are_refused_by_the_record() -> None:
    raw = {**upgrade_study(copy.deepcopy(VERSION_1)), "mystery": 1}
    with pytest.raises(
        EmocoreError, match="x/study.json holds keys this emocore does not know: mystery"
    ):
        StudyRecord.from_dict(raw, "x/study.json")


def _as_written_by_an_older_emocore(study: dict) -> dict:
    """``study`` without what version 1 files lack: the version, every key added since, and the
    model family of the headline rows (the linear rows came with it) and the maps' method."""
    old = copy.deepcopy(study)
    for key in ("schema_version", "alpha", "primary", "verdicts", "atypical", "stability"):
        old.pop(key)
    for key in ("tuning", "saliency_checks", "tables", "peak_gpu_memory_gib"):
        old.pop(key)
    del old["config"]["saliency_method"]
    old["results"] = [
        {k: v for k, v in row.items() if k != "model"}
        for row in old["results"]
        if row["model"] == "cnn"
    ]
    for models in old["saliency"].values():
        for maps in models.values():
            for entry in maps.values():
                entry.pop("method")
    return old


@pytest.fixture(scope="module")
def older_run(tiny_home: Path, tmp_path_factory) -> tuple[RunResults, RunResults]:
    """(the tiny run as written, a copy whose study.json is as an older emocore wrote it)."""
    root = tmp_path_factory.mktemp("older-run")
    shutil.copytree(tiny_home / "registry", root / "registry")
    registry, run_id, path = _tiny_study(root)
    current = json.loads(path.read_text())
    path.write_text(json.dumps(_as_written_by_an_older_emocore(current)))
    now = RunResults(Registry(tiny_home / "registry"), run_id)
    return now, RunResults(registry, run_id)


def test_an_older_run_folder_still_opens(older_run) -> None:
    now, old = older_run
    assert "schema_version" not in json.loads((old.folder / "study.json").read_text())
    assert old.study["schema_version"] == STUDY_SCHEMA_VERSION
    assert old.study_record.to_dict() == old.study
    assert old.classes == now.classes
    # a config recorded before --saliency-method: its maps were integrated gradients
    assert old.config == {**now.config, "saliency_method": "integrated-gradients"}
    assert old.designs == now.designs
    for design in now.designs:
        assert old.headline(design) == now.headline(design)
        assert old.headline(design, "linear") == {}  # an older run had no linear rows
        assert old.evaluation(design) == now.evaluation(design)
        pd.testing.assert_frame_equal(old.per_subject(design), now.per_subject(design))
        pd.testing.assert_frame_equal(old.predictions(design), now.predictions(design))
    subject = now.study["subjects"][0]
    assert old.misclassification(now.designs[0], subject, "LOVE") == now.misclassification(
        now.designs[0], subject, "LOVE"
    )
    assert old.metrics == now.metrics
    assert (old.primary.design, old.primary.model) == (now.primary.design, now.primary.model)
    assert old.primary.how == "older run"
    # verdicts are computed from the stored predictions, as the study computed them
    assert [(v["subject"], v["status"]) for v in old.verdicts] == [
        (v["subject"], v["status"]) for v in now.verdicts
    ]
    assert old.verdict(subject) is not None
    assert old.findings.available
    assert old.findings.alpha == now.findings.alpha
    for name in ("predictions", "baseline", "curves", "embeddings"):  # rows checked from metrics
        if now.has_table(name):
            pd.testing.assert_frame_equal(old.table(name), now.table(name))
    assert old.models == now.models
    for model in now.models:
        assert old.model_path(model).name == now.model_path(model).name
    model = old.preferred_model(subject)
    assert model is not None and model == now.preferred_model(subject)
    assert old.inference_path(model, subject).name == f"sub-{subject}.tsv"
    assert old.assessed == [] and old.assessment(subject) is None
    maps = 0
    for design, models in now.study["saliency"].items():
        for name, by_emotion in models.items():
            for emotion in by_emotion:
                maps += 1
                old_path = old.saliency_path(design, name, emotion)
                assert old_path is not None and old_path.is_file()
                assert old_path.name == now.saliency_path(design, name, emotion).name
                assert old.map_entry(design, name, emotion)["method"] == "integrated-gradients"
                pattern = old.linear_pattern_path(design, name, emotion)
                assert (pattern is None) == (now.linear_pattern_path(design, name, emotion) is None)
    assert maps > 0
