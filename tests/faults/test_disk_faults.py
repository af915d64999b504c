"""Files keep the user's umask; unwritable and unreadable folders give clear errors (issue 10)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from emocore._io import atomic_path, atomic_write_json, atomic_write_text
from emocore.data.labels import write_label_table
from emocore.errors import EXIT_CODES
from tests.faults.conftest import checksums, read_only


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)

    def use(mask: int) -> None:
        os.umask(mask)

    yield use
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writers_keep_the_umask(tmp_path: Path, umask, mask: int, expected: int) -> None:
    umask(mask)
    written = [
        atomic_write_text(tmp_path / "predictions.tsv", "a\tb\n"),
        atomic_write_json(tmp_path / "study.json", {"a": 1}),
        write_label_table(pd.DataFrame({"run": [1], "label": ["NONE"]}), tmp_path / "l.tsv"),
    ]
    with atomic_path(tmp_path / "model.pt") as tmp:
        tmp.write_bytes(b"weights")
    written.append(tmp_path / "model.pt")
    assert {p.name: oct(_mode(p)) for p in written} == {p.name: oct(expected) for p in written}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_synthetic_cohort_folder_keeps_the_umask(tmp_path: Path, umask, monkeypatch) -> None:
    from emocore.data import synthetic

    # the folder only
    monkeypatch.setattr(synthetic.cohort, "_write", lambda root, cfg, progress: None)
    umask(0o022)
    out = synthetic.generate_cohort(tmp_path / "cohort", synthetic.SynthConfig(n_subjects=1))
    assert oct(_mode(out)) == oct(0o755)


# -- unwritable --out (item 9) ----------------------------------------------------------------
def test_labels_out_in_a_read_only_folder_fails_before_reading(tmp_path: Path, capsys) -> None:
    from emocore.cli import main
    from tests.faults.test_label_faults import write_observers

    raw = write_observers(tmp_path / "ann")
    folder = tmp_path / "results"
    folder.mkdir()
    with read_only(folder):
        code = main(["labels", "--annotations", str(raw), "--out", str(folder / "labels.tsv")])
    err = capsys.readouterr().err
    assert code == EXIT_CODES["config"], err
    assert f"cannot write --out {folder / 'labels.tsv'}: " in err and "Permission denied" in err
    assert f"make {folder} accessible to you" in err and "choose another --out" in err
    assert list(folder.iterdir()) == []


def test_labels_out_that_is_a_folder_is_refused(tmp_path: Path, capsys) -> None:
    from emocore.cli import main
    from tests.faults.test_label_faults import write_observers

    raw = write_observers(tmp_path / "ann")
    assert (
        main(["labels", "--annotations", str(raw), "--out", str(tmp_path)]) == EXIT_CODES["config"]
    )
    assert f"cannot write --out {tmp_path}: it is a folder, not a file" in capsys.readouterr().err


def test_predict_out_in_a_read_only_folder_fails_before_the_model_runs(
    tiny_cache, tmp_path: Path, capsys
) -> None:
    from emocore.cli import main
    from emocore.models.cnn3d import SeedCNN
    from emocore.runs.registry import Registry
    from emocore.training.train import TrainConfig, save_checkpoint

    registry = Registry(tmp_path / "registry")
    run = registry.create_run(kind="train", status="completed")
    config = TrainConfig(epochs=1, widths=(4, 8, 8), hidden=16, device="cpu", compile="off")
    net = SeedCNN(tiny_cache.grid_shape, 5, widths=config.widths, hidden=config.hidden)
    folder = registry.run_dir(run.id)
    save_checkpoint(
        folder / "models" / "single-subject" / "sub-01.pt", net, config=config, classes_n=5, epoch=1
    )
    before = checksums(folder)
    out = tmp_path / "results"
    out.mkdir()
    with read_only(out):
        code = main(
            ["predict", "--registry", str(registry.root), "--cache", str(tiny_cache.path)]
            + ["--run", run.id, "--model", "single-subject/sub-01", "--subject", "01"]
            + ["--device", "cpu", "--out", str(out / "sub-01.tsv")]
        )
    err = capsys.readouterr().err
    assert code == EXIT_CODES["config"], err
    assert f"cannot write --out {out / 'sub-01.tsv'}: " in err and "Permission denied" in err
    assert checksums(folder) == before and list(out.iterdir()) == []


@pytest.mark.parametrize("kept", ["cache", "derivatives/fmriprep"])
def test_synth_overwrite_keeps_what_it_did_not_write(tmp_path: Path, monkeypatch, kept) -> None:
    from emocore.data import synthetic
    from emocore.errors import DataError

    def write(root, cfg, progress):  # the folders of a cohort, not its data
        (root / "ground_truth").mkdir(parents=True)
        (root / "ground_truth" / "cohort.json").write_text(
            json.dumps({"format": synthetic.config.FORMAT, "config": cfg.to_dict()})
        )
        (root / synthetic.cohort.DERIVATIVE_DIR).mkdir(parents=True)

    monkeypatch.setattr(synthetic.cohort, "_write", write)
    out = synthetic.generate_cohort(tmp_path / "cohort", synthetic.SynthConfig(n_subjects=1))
    (out / kept).mkdir(parents=True)
    (out / kept / "manifest.json").write_text("{}")
    before = checksums(out)
    with pytest.raises(DataError, match=rf"also holds {kept}, which the generator did not write"):
        synthetic.generate_cohort(out, synthetic.SynthConfig(n_subjects=1, seed=1), overwrite=True)
    assert checksums(out) == before
    (out / kept / "manifest.json").unlink()
    (out / kept).rmdir()
    synthetic.generate_cohort(out, synthetic.SynthConfig(n_subjects=1, seed=1), overwrite=True)


def test_labels_out_in_new_folders_is_written_and_nothing_left_on_failure(
    tmp_path: Path, capsys
) -> None:
    from emocore.cli import main
    from tests.faults.test_label_faults import write_observers

    raw = write_observers(tmp_path / "ann")
    out = tmp_path / "new" / "deeper" / "labels.tsv"
    assert (
        main(["labels", "--annotations", str(tmp_path / "nowhere"), "--out", str(out)])
        == EXIT_CODES["data"]  # no annotations there
    )
    assert not (tmp_path / "new").exists()  # the check made no folder for a failed command
    assert main(["labels", "--annotations", str(raw), "--out", str(out)]) == 0
    assert out.is_file()
