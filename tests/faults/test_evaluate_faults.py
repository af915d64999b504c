"""evaluate and the dashboard on a cut-off predictions.tsv or a damaged study.json (issue 10)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from emocore.cli import main
from emocore.errors import EXIT_CODES
from emocore.runs.registry import Registry
from tests.faults.conftest import checksums


@pytest.fixture
def registry(finished_run, tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the finished registry, for a test that damages it."""
    root, run_id = finished_run
    return Path(shutil.copytree(root, tmp_path / "registry")), run_id


def evaluate(root: Path, run_id: str, *extra: str) -> list[str]:
    return ["evaluate", "--registry", str(root), "--run", run_id, "--permutations", "5", *extra]


def cut_rows(path: Path, keep: int) -> int:
    """Keep the header and ``keep`` rows (a copy that stopped between rows); return the total."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: 1 + keep]))
    return len(lines) - 1


def test_a_run_records_the_rows_of_its_tables(finished_run) -> None:
    root, run_id = finished_run
    folder = Registry(root).run_dir(run_id)
    study = json.loads((folder / "study.json").read_text())
    rows = len(pd.read_csv(folder / "predictions.tsv", sep="\t"))
    assert study["tables"]["predictions.tsv"] == {
        "rows": rows,
        "rows_per_design": {"single-subject": rows},
    }


def test_evaluate_refuses_predictions_cut_between_rows(registry, capsys) -> None:
    root, run_id = registry
    folder = Registry(root).run_dir(run_id)
    total = cut_rows(folder / "predictions.tsv", 30)
    before = checksums(root / "runs")
    assert main(evaluate(root, run_id)) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert f"{folder / 'predictions.tsv'} holds 30 rows but the run wrote {total}" in err, err
    assert f"single-subject: 30 of {total}" in err and "cut short" in err
    assert len(Registry(root).list_runs()) == 1  # no evaluation recorded as completed
    assert checksums(root / "runs") == before


def test_evaluate_refuses_predictions_cut_inside_a_row(registry, capsys) -> None:
    root, run_id = registry
    path = Registry(root).run_dir(run_id) / "predictions.tsv"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])  # the last row loses its end
    assert main(evaluate(root, run_id)) == EXIT_CODES["data"]
    assert f"{path} ends inside a row" in capsys.readouterr().err
    assert len(Registry(root).list_runs()) == 1


def test_an_older_run_is_checked_against_metrics_json(registry, capsys) -> None:
    root, run_id = registry
    folder = Registry(root).run_dir(run_id)
    study = json.loads((folder / "study.json").read_text())
    del study["tables"]  # as runs made before the rows were recorded
    (folder / "study.json").write_text(json.dumps(study))
    total = cut_rows(folder / "predictions.tsv", 12)
    assert main(evaluate(root, run_id)) == EXIT_CODES["data"]
    assert f"holds 12 rows but the run wrote {total}" in capsys.readouterr().err


def test_an_intact_run_still_evaluates(registry, capsys) -> None:
    root, run_id = registry
    assert main(evaluate(root, run_id, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["designs"]["single-subject"]["summary"]["n_volumes"] > 30


STUDY_DAMAGE = {
    "binary": (b"\x00\xff\xfe\x00 not json", "is damaged: it is not JSON"),
    "cut off": (b'{"run_id": "x", "classes": ["FEAR", ', "is damaged: it is not JSON"),
    "a list": (b"[1, 2, 3]", "is damaged: it holds list, not a JSON object"),
    "no classes": (b'{"config": {}}', "is damaged: 'classes' is missing"),
    "no config": (b'{"classes": ["FEAR", "LOVE"]}', "is damaged: 'config' is missing"),
}


@pytest.mark.parametrize("case", list(STUDY_DAMAGE))
def test_evaluate_names_a_damaged_study_json(registry, capsys, case: str) -> None:
    root, run_id = registry
    path = Registry(root).run_dir(run_id) / "study.json"
    data, said = STUDY_DAMAGE[case]
    path.write_bytes(data)
    before = checksums(root / "runs")
    assert main(evaluate(root, run_id)) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert f"{path} {said}" in err and "re-run the study" in err and "Traceback" not in err
    assert len(Registry(root).list_runs()) == 1 and checksums(root / "runs") == before


@pytest.mark.parametrize(
    ("data", "said"),
    [(b"", "EmptyDataError"), (b"\x00\xff\x89PNG\n\x01\x02", "UnicodeDecodeError")],
    ids=["empty", "binary"],
)
def test_evaluate_names_a_damaged_predictions_table(registry, capsys, data, said) -> None:
    root, run_id = registry
    path = Registry(root).run_dir(run_id) / "predictions.tsv"
    path.write_bytes(data)
    assert main(evaluate(root, run_id)) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert f"{path} is damaged ({said}" in err and "Traceback" not in err
    assert len(Registry(root).list_runs()) == 1


def test_evaluate_with_zero_permutations_records_no_run(registry, capsys) -> None:
    root, run_id = registry
    assert main(evaluate(root, run_id)[:-2] + ["--permutations", "0"]) == EXIT_CODES["config"]
    assert "permutations must be at least 1" in capsys.readouterr().err
    assert len(Registry(root).list_runs()) == 1  # no evaluate run left 'running'
