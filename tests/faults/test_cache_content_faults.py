"""The cache's files are checked against its manifest (issue 22, item 7): a label table left by an
interrupted relabel, and subject arrays cut short, rewritten as float32 or overwritten with other
values, are named with the fix; prepare repairs them instead of calling the cache up to date, and
predict never returns a stored answer for data that changed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emocore.cli import main
from emocore.data.cache import open_cache
from emocore.data.labels import build_volume_labels, load_annotations
from emocore.data.prepare import PrepareOptions, prepare
from emocore.data.prepare import update as prepare_update
from emocore.errors import EXIT_CODES, CacheError


@pytest.fixture
def cache_copy(tiny_cache, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_cache.path, tmp_path / "cache"))


def _inputs(tiny_cache) -> tuple[Path, Path]:
    cohort = tiny_cache.path.parent / "cohort"
    return cohort, cohort / "annotations" / "raw"


def _relabel_killed_before_the_manifest(
    cohort: Path, ann: Path, cache: Path, monkeypatch, subjects=None
) -> None:
    """prepare --lag 0 on a lag-4 cache, killed after labels.tsv is written and before
    manifest.json is (the moment a kill leaves the two apart)."""
    real = prepare_update.atomic_write_json

    def killed(path, *args, **kwargs):
        if Path(path).name == "manifest.json":
            raise KeyboardInterrupt  # the job dies here
        return real(path, *args, **kwargs)

    monkeypatch.setattr(prepare_update, "atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare(cohort, ann, cache, options=PrepareOptions(lag_s=0.0), subjects=subjects)
    monkeypatch.setattr(prepare_update, "atomic_write_json", real)


def _table(ann: Path, lag: float) -> pd.DataFrame:
    return build_volume_labels(load_annotations(ann), lag_s=lag)


# -- a label table that is not the manifest's ------------------------------------------------
def test_a_killed_relabel_is_named_on_open_and_repaired_by_prepare(
    tiny_cache, cache_copy: Path, monkeypatch, capsys
) -> None:
    cohort, ann = _inputs(tiny_cache)
    _relabel_killed_before_the_manifest(cohort, ann, cache_copy, monkeypatch)
    manifest = json.loads((cache_copy / "manifest.json").read_text())
    assert manifest["options"]["lag_s"] == 4.0  # the manifest says lag 4 ...
    lag0 = _table(ann, 0.0)
    on_disk = pd.read_csv(cache_copy / "labels.tsv", sep="\t", keep_default_na=False)
    assert on_disk["label"].tolist() == lag0["label"].tolist()  # ... the table is lag 0

    with pytest.raises(CacheError) as info:
        _ = open_cache(cache_copy).labels
    said = str(info.value)
    assert f"{cache_copy / 'labels.tsv'} does not belong to the cache's manifest" in said
    assert "Re-run `emocore prepare`" in said and f"--cache {cache_copy}" in said

    # prepare with the manifest's own options: not "up to date", the table is rewritten
    code = main(
        ["prepare", "--bids", str(cohort), "--annotations", str(ann)]
        + ["--cache", str(cache_copy), "-q"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "relabelled" in out.out and "unchanged" not in out.out
    cache = open_cache(cache_copy)
    assert cache.labels["label"].tolist() == _table(ann, 4.0)["label"].tolist()
    assert cache.manifest["options"]["lag_s"] == 4.0


def test_an_addition_after_a_killed_relabel_rewrites_the_table(
    tiny_dataset, tmp_path: Path, monkeypatch
) -> None:
    root, ann = tiny_dataset
    cache_dir = tmp_path / "cache"
    prepare(root, ann, cache_dir, subjects=["01"])
    _relabel_killed_before_the_manifest(root, ann, cache_dir, monkeypatch, subjects=["01"])
    result = prepare(root, ann, cache_dir, subjects=["01", "02"])
    assert result.action == "added" and result.cache.subjects == ["01", "02"]
    assert result.cache.labels["label"].tolist() == _table(ann, 4.0)["label"].tolist()


def test_a_manifest_without_the_hash_still_opens_and_gets_it(tiny_cache, cache_copy: Path) -> None:
    """Caches made before the hash was recorded are read as they are; prepare records it."""
    path = cache_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["labels"]["sha256"]
    for info in manifest["subjects"].values():
        del info["array_fingerprint"]
    path.write_text(json.dumps(manifest))
    cache = open_cache(cache_copy)
    assert len(cache.labels) == 3599 and cache.array("01").shape[0] == 3599
    result = prepare(*_inputs(tiny_cache), cache_copy)
    assert result.action == "unchanged"
    again = json.loads(path.read_text())
    assert (
        again["labels"]["sha256"]
        == json.loads((tiny_cache.path / "manifest.json").read_text())["labels"]["sha256"]
    )
    assert all("array_fingerprint" in info for info in again["subjects"].values())


# -- damaged subject arrays --------------------------------------------------------------------
def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _float32(path: Path) -> None:
    np.save(path, np.load(path).astype(np.float32))


def _random(path: Path) -> None:
    data = np.load(path)
    np.save(path, np.random.default_rng(0).normal(size=data.shape).astype(np.float16))


DAMAGE = {"cut short": _truncate, "made float32": _float32, "random values": _random}
SAID = {
    "cut short": "is cut short: its header promises",
    "made float32": "holds float32 (3599, 13, 18, 5), the manifest says float16",
    "random values": "no longer holds what prepare wrote",
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_array_is_named_and_rebuilt_by_prepare(
    tiny_cache, cache_copy: Path, how: str
) -> None:
    path = cache_copy / "sub-02.npy"
    DAMAGE[how](path)
    with pytest.raises(CacheError) as info:
        if how == "random values":  # passes the header and size checks made on open ...
            cache = open_cache(cache_copy)
            assert cache.array("01").shape[0] == 3599  # ... and the others stay readable
            cache.array("02")
        else:
            open_cache(cache_copy)
    said = str(info.value)
    assert f"{path} {SAID[how]}" in said
    assert f"the cache at {cache_copy} is damaged" in said and "re-run `emocore prepare`" in said

    result = prepare(*_inputs(tiny_cache), cache_copy)
    assert result.action == "built"  # not "unchanged": the damaged array was written again
    rebuilt = open_cache(cache_copy)
    assert np.array_equal(rebuilt.array("02"), tiny_cache.array("02"))


# -- stored predictions ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stored_once(tiny_cache, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A folder with a copy of the cache and a registry holding one completed run (a
    single-subject model), whose predictions of sub-01 are stored; made once (3-4 s)."""
    from emocore.models.cnn3d import SeedCNN
    from emocore.runs.registry import Registry
    from emocore.runs.results import RunResults
    from emocore.training.train import TrainConfig, save_checkpoint
    from emocore.workflows.inference import subject_predictions

    home = tmp_path_factory.mktemp("stored")
    cache = Path(shutil.copytree(tiny_cache.path, home / "cache"))
    registry = Registry(home / "registry")
    run = registry.create_run(kind="train", status="completed")
    config = TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu", compile="off")
    net = SeedCNN(tiny_cache.grid_shape, 5, widths=config.widths, hidden=config.hidden)
    save_checkpoint(
        registry.run_dir(run.id) / "models" / "single-subject" / "sub-01.pt",
        net,
        config=config,
        classes_n=5,
        epoch=1,
    )
    results = RunResults(registry, run.id)
    assert (
        subject_predictions(results, "single-subject/sub-01", open_cache(cache), "01") is not None
    )
    return home, run.id


@pytest.fixture
def stored_run(stored_once, tmp_path: Path):
    """A copy of ``stored_once``: (registry, run id, its results, the stored table, the cache)."""
    from emocore.runs.registry import Registry
    from emocore.runs.results import RunResults, read_table

    home = Path(shutil.copytree(stored_once[0], tmp_path / "home"))
    registry = Registry(home / "registry")
    results = RunResults(registry, stored_once[1])
    first = read_table(results.inference_path("single-subject/sub-01", "01"))
    return registry, stored_once[1], results, first, home / "cache"


def _predict_argv(registry, run_id: str, cache: Path) -> list[str]:
    return ["predict", "--registry", str(registry.root), "--cache", str(cache)] + [
        "--run",
        run_id,
        "--model",
        "single-subject/sub-01",
        "--subject",
        "01",
        "--device",
        "cpu",
    ]


def test_an_unchanged_cache_reuses_the_stored_prediction(stored_run) -> None:
    from emocore.workflows.inference import subject_predictions

    _, _, results, first, cache_copy = stored_run
    path = results.inference_path("single-subject/sub-01", "01")
    stamp = path.stat().st_mtime_ns
    again = subject_predictions(
        results, "single-subject/sub-01", open_cache(cache_copy), "01", compute=False
    )
    assert again is not None and path.stat().st_mtime_ns == stamp  # read, not recomputed
    assert again["pred"].tolist() == first["pred"].tolist()


@pytest.mark.parametrize("how", list(DAMAGE))
def test_predict_refuses_a_damaged_array_instead_of_the_stored_result(
    stored_run, capsys, how: str
) -> None:
    registry, run_id, _, _, cache_copy = stored_run
    path = cache_copy / "sub-01.npy"
    DAMAGE[how](path)
    code = main(_predict_argv(registry, run_id, cache_copy))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"{path} {SAID[how]}" in err and "re-run `emocore prepare`" in err
    assert "Traceback" not in err


def test_a_relabelled_cache_is_predicted_again(tiny_cache, stored_run) -> None:
    """A stored table holds the labels of its day: after a relabel it is not returned."""
    from emocore.workflows.inference import subject_predictions

    _, _, results, _, cache_copy = stored_run
    prepare(*_inputs(tiny_cache), cache_copy, options=PrepareOptions(lag_s=0.0))
    cache = open_cache(cache_copy)
    assert subject_predictions(results, "single-subject/sub-01", cache, "01", compute=False) is None
    again = subject_predictions(results, "single-subject/sub-01", cache, "01", device="cpu")
    assert again is not None
    assert again["true"].tolist() == cache.table(["01"]).query("label != 'NONE'")["label"].tolist()
