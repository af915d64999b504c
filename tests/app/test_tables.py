"""The pages' display tables (emocore.stats.summaries): few merged columns that fit 1280 px, numbers
formatted as the pages format them, and the per-fold tuning table. Pure functions: no AppTest."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from emocore.runs.registry import Registry
from emocore.stats.findings import (
    RunFindings,
    flagged_table,
    person_table,
    run_findings,
    verdict_table,
)
from emocore.stats.summaries import (
    cell_volumes_table,
    recall_order,
    results_table,
    runs_table,
    scenes_table,
    tuning_table,
)
from emocore.ui.tables import (
    CELL_COLUMNS,
    FLAGGED_COLUMNS,
    PERSON_COLUMNS,
    RESULTS_COLUMNS,
    RUNS_COLUMNS,
    SCENES_COLUMNS,
    VERDICT_COLUMNS,
)

RESULT = {
    "model": "cnn",
    "design": "single-subject",
    "split": "leave-one-run-out",
    "leaky": False,
    "balanced_accuracy": 0.746875,
    "chance_balanced_accuracy": 0.1578125,
    "p_value": 0.0001,
    "ci95": [0.7277213541666667, 0.7724348958333334],
    "per_class_accuracy": {
        "HAPPINESS": 0.77,
        "FEAR": 0.786,
        "SADNESS": 0.745,
        "LOVE": 0.68,
        "ANGER": 0.753,
    },
}


def test_results_table_merges_columns_and_formats_numbers() -> None:
    leaky = {**RESULT, "model": "linear", "leaky": True, "p_value": 0.0196, "ci95": None}
    table = results_table([RESULT, leaky], n_classes=5, run_id="20261130-000000-abcd", recall=True)
    assert list(table.columns) == [
        "run",
        "design · split",
        "model",
        "balanced accuracy",
        "95 % interval",
        "p",
        "chance",
        "recall per emotion",
    ]
    first, second = table.to_dict("records")
    assert first["design · split"] == "single-subject · leave-1-run-out"
    assert first["balanced accuracy"] == "74.7 %" and first["95 % interval"] == "72.8–77.2"
    assert first["p"] == "< 0.001" and second["p"] == "0.020"
    assert first["chance"] == "15.8 % perm. · 1/5"
    assert first["recall per emotion"] == "77/79/74/68/75 %"
    assert second["design · split"].endswith("(leaky)") and second["95 % interval"] == "n/a"
    assert recall_order([RESULT]) == "HAPPINESS · FEAR · SADNESS · LOVE · ANGER"
    assert set(table.columns) <= set(RESULTS_COLUMNS)
    assert results_table([], n_classes=5).empty


def test_scenes_table_says_where_and_what_it_was_taken_for() -> None:
    scenes = pd.DataFrame(
        [
            {
                "run": 2,
                "scene": 21,
                "scene_location": "PLACE 1",
                "start_movie_time": 938.0,
                "end_movie_time": 944.0,
                "n_volumes": 4,
                "most_common_prediction": "SADNESS",
                "most_common_fraction": 0.75,
            },
            {
                "run": 1,
                "scene": 3,
                "scene_location": "PLACE 0",
                "start_movie_time": 98.0,
                "end_movie_time": 98.0,
                "n_volumes": 1,
                "most_common_prediction": "FEAR",
                "most_common_fraction": 1.0,
            },
        ]
    )
    table = scenes_table(scenes)
    assert list(table.columns) == list(SCENES_COLUMNS)
    assert table.to_dict("records") == [
        {
            "where": "run 2 · 15:38",
            "scene": "21 (Place 1)",
            "volumes": 4,
            "predicted as": "SADNESS (75 %)",
        },
        {
            "where": "run 1 · 1:38",
            "scene": "3 (Place 0)",
            "volumes": 1,
            "predicted as": "FEAR (100 %)",
        },
    ]
    assert scenes_table(scenes.iloc[:0]).empty


def test_tuning_table_names_fixed_settings_and_inner_fold_choices() -> None:
    study = {
        "tuning": {
            "single-subject": {
                "cnn": {
                    "sub-01 runs 1+3+5+7": {"epochs": 12, "how": "inner fold", "inner_fold": "x"},
                    "sub-01 final": {"epochs": 1, "how": "median of the folds' choices"},
                },
                "linear": {"sub-01 runs 1+3+5+7": {"C": 0.01, "how": "fixed"}},
            }
        }
    }
    table = tuning_table(study, "single-subject")
    assert list(table.columns) == ["model", "fold", "CNN", "linear"]
    assert table.to_dict("records") == [
        {
            "model": "sub-01",
            "fold": "runs 1+3+5+7",
            "CNN": "12 epochs · inner fold",
            "linear": "C = 0.01 · fixed (poster setting)",
        },
        {
            "model": "sub-01",
            "fold": "final",
            "CNN": "1 epoch · median of the folds' choices",
            "linear": "—",
        },
    ]
    assert tuning_table({}, "single-subject").empty  # a study from before tuning was recorded


def test_flagged_columns_hide_what_the_other_cells_say() -> None:
    hidden = {name for name, config in FLAGGED_COLUMNS.items() if config is None}
    assert hidden == {"split", "emotion", "measure", "sentence"}  # the finding says them
    assert "adjusted p" in FLAGGED_COLUMNS and "others' range" in FLAGGED_COLUMNS


def _width(config: dict, columns: list[str] | None = None) -> int:
    chosen = config if columns is None else {c: config[c] for c in columns}
    return sum(c["width"] for c in chosen.values() if c is not None)


def test_column_layouts_fit_beside_the_sidebar() -> None:
    """Fixed widths that add up to less than the ~800 px a 1280-px window leaves for a table,
    for each table as a page shows it (Overview's results name the run, Emotion accuracy's
    add recall)."""
    overview = list(results_table([RESULT], n_classes=5, run_id="x").columns)
    emotion_accuracy = list(results_table([RESULT], n_classes=5, recall=True).columns)
    assert _width(RESULTS_COLUMNS, overview) <= 800
    assert _width(RESULTS_COLUMNS, emotion_accuracy) <= 800
    for config in (FLAGGED_COLUMNS, RUNS_COLUMNS, CELL_COLUMNS, VERDICT_COLUMNS):
        assert _width(config) < 800, list(config)
    assert _width(RUNS_COLUMNS) < 780  # inside an expander, whose padding takes 16 px more


def test_runs_table_merges_status_progress_and_notes() -> None:
    runs = pd.DataFrame(
        [
            {
                "id": "20261130-052002-a834",
                "kind": "study",
                "status": "completed",
                "design": None,
                "split": "leave-one-run-out",
                "leaky": False,
                "subjects": ["01", "02"],
                "progress": 1.0,
                "message": "done",
                "error": None,
                "config": {"designs": ["single-subject", "loso"]},
                "created_at": "2026-11-30T05:20:02.438188Z",
            },
            {
                "id": "20261130-060000-beef",
                "kind": "train",
                "status": "running",
                "design": "single-subject",
                "split": "random volumes",
                "leaky": True,
                "subjects": ["01"],
                "progress": 0.4,
                "message": "fold 2 of 5",
                "error": None,
                "config": {},
                "created_at": "2026-11-30T06:00:00Z",
            },
            {
                "id": "20261130-070000-dead",
                "kind": "evaluate",
                "status": "failed",
                "design": "loso",
                "split": "leave-one-subject-out",
                "leaky": False,
                "subjects": None,
                "progress": 0.1,
                "message": "fold 1",
                "error": "out of memory",
                "config": None,
                "created_at": None,
            },
        ]
    )
    table = runs_table(runs)
    assert list(table.columns) == list(RUNS_COLUMNS)
    study, running, failed = table.to_dict("records")
    assert study == {
        "run": "20261130-052002-a834",
        "kind": "study",
        "status": "completed",
        "design · split": "single-subject, loso",
        "created": "2026-11-30 05:20",
        "note": "",  # a completed run's message only says it is done
    }
    assert running["status"] == "running · 40 %" and running["note"] == "fold 2 of 5"
    assert running["design · split"] == "single-subject · random volumes (leaky)"
    assert failed["status"] == "failed" and failed["note"] == "out of memory"
    assert failed["created"] == "?"
    assert runs_table(runs.iloc[:0]).empty


def test_runs_table_marks_unreadable_rows_and_missing_folders(tmp_path) -> None:
    """Before anyone picks a run: a registry row that cannot be read, and a run whose folder
    was deleted by hand, say so in the table with what to do."""
    import shutil

    from emocore.runs.registry import Registry

    registry = Registry(tmp_path / "registry")
    kept = registry.create_run(kind="train", subjects=["01"], status="completed").id
    gone = registry.create_run(kind="train", subjects=["01"], status="completed").id
    shutil.rmtree(registry.run_dir(gone))
    runs = registry.list_runs()
    runs.loc[runs["id"] == kept, "unreadable"] = "'config' is not JSON"
    table = runs_table(runs, folder_problem=registry.folder_problem).set_index("run")
    assert table.loc[kept, "status"] == "UNREADABLE"
    assert table.loc[kept, "note"] == "'config' is not JSON"
    assert table.loc[gone, "status"] == "files missing"
    assert f"emocore runs --forget {gone}" in table.loc[gone, "note"]
    # without the registry's check, a missing folder is not guessed at
    assert runs_table(runs).set_index("run").loc[gone, "status"] != "files missing"


def test_cell_volumes_table_keeps_one_cell_in_time_order() -> None:
    rows = [
        # subject, run, volume, movie_time, true, pred, prob of FEAR, prob of SADNESS
        ("01", 2, 7, 938.0, "FEAR", "SADNESS", 0.2, 0.61),
        ("01", 1, 12, 24.0, "FEAR", "SADNESS", 0.3, 0.452),
        ("01", 1, 13, 26.0, "FEAR", "FEAR", 0.5, 0.3),  # right: another cell
        ("02", 1, 12, 24.0, "FEAR", "SADNESS", 0.1, 0.9),  # another person
    ]
    held = pd.DataFrame(
        [
            {
                "subject": subject,
                "run": run,
                "volume": volume,
                "movie_time": time,
                "scene": 21,
                "scene_location": "CHURCH",
                "agreement": 0.625,
                "true": true,
                "pred": pred,
                "prob_FEAR": fear,
                "prob_SADNESS": sadness,
                "fold_name": "runs 1+3+5+7",
            }
            for subject, run, volume, time, true, pred, fear, sadness in rows
        ]
    )
    table = cell_volumes_table(held, subject="sub-01", true="FEAR", pred="SADNESS")
    assert list(table.columns) == list(CELL_COLUMNS)
    assert table.to_dict("records") == [
        {
            "where": "run 1 · 0:24",
            "volume": 12,
            "scene": "21 (Church)",
            "agreement": "62.5 %",
            "P(predicted)": "45.2 %",
            "P(true)": "30.0 %",
            "fold": "runs 1+3+5+7",
        },
        {
            "where": "run 2 · 15:38",
            "volume": 7,
            "scene": "21 (Church)",
            "agreement": "62.5 %",
            "P(predicted)": "61.0 %",
            "P(true)": "20.0 %",
            "fold": "runs 1+3+5+7",
        },
    ]
    empty = cell_volumes_table(held, subject="02", true="FEAR", pred="FEAR")
    assert empty.empty and list(empty.columns) == list(CELL_COLUMNS)


# -- every cell fits its column --------------------------------------------------------------
_NARROW = set("fijlrtI .,:;'·()-/|[]!")
_WIDE = set("mwMW%→—")


def text_px(text: object) -> float:
    """The estimated width of ``text`` in a table cell or header (Streamlit's Source Sans at
    14 px) with the cell's 16 px padding: 7.5 px a character, 5 for narrow ones (i, l, t,
    punctuation, space), 9 for capitals, 12 for wide ones (m, w, M, W, %). Against the font it
    overestimates by 5-15 % ("single-subject · leave-one-run-out": 213 px, estimated 230)."""
    return 16 + sum(
        5.0 if c in _NARROW else 12.0 if c in _WIDE else 9.0 if c.isupper() else 7.5
        for c in str(text)
    )


def assert_cells_fit(config: dict, table: pd.DataFrame) -> None:
    """Every shown column of ``table`` is at least as wide as its header and its longest cell."""
    assert len(table), "no rows to measure"
    for name, column in config.items():
        if column is None or name not in table:
            continue
        texts = [column["label"], *table[name].astype(str)]
        longest = max(texts, key=text_px)
        assert text_px(longest) <= column["width"], (
            f"{name!r} is {column['width']} px; {longest!r} needs {text_px(longest):.0f}"
        )


#: Widths measured in Streamlit's font (14 px, with 16 px padding) in a 1280-px browser: the
#: estimate :func:`text_px` must not fall below them, or a cell it calls fitting is cut off.
MEASURED_PX = {
    "single-subject · leave-one-run-out": 213,
    "20261130-062306-3cfc": 146,
    "HAPPINESS->SADNESS": 150,
    "44 (COLLEGE STADIUM)": 151,
    "100.0–100.0 %": 100,
}


REALISTIC_RESULTS = [
    RESULT,
    {**RESULT, "design": "cross-subject", "per_class_accuracy": {"A": 1.0, "B": 0.99}},
    {**RESULT, "split": "run-wise 2-fold", "ci95": [0.991, 1.0], "p_value": 0.0196},
    {**RESULT, "model": "linear", "split": "random", "leaky": True, "ci95": None},
    {**RESULT, "design": "loso", "split": "leave-one-subject-out", "balanced_accuracy": 1.0},
    {**RESULT, "per_class_accuracy": {"A": 1.0, "B": 1.0, "C": 0.99, "D": 0.99, "E": 0.99}},
]


def test_results_cells_fit_their_columns() -> None:
    for text, px in MEASURED_PX.items():  # the measuring stick first
        assert px <= text_px(text) <= 1.2 * px, text
    overview = results_table(REALISTIC_RESULTS, n_classes=5, run_id="20261130-062306-3cfc")
    emotion_accuracy = results_table(REALISTIC_RESULTS, n_classes=5, recall=True)
    assert_cells_fit(RESULTS_COLUMNS, overview)
    assert_cells_fit(RESULTS_COLUMNS, emotion_accuracy)


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> RunFindings:
    """The findings of eight people in two designs (sub-05 planted), from the real evaluation."""
    from tests.conftest import write_findings_run

    registry = Registry(tmp_path_factory.mktemp("tables") / "registry")
    run_id = write_findings_run(registry)
    folder = registry.run_dir(run_id)
    study = json.loads((folder / "study.json").read_text())
    return run_findings(study, json.loads((folder / "metrics.json").read_text()))


def test_flagged_cells_fit_their_columns(found: RunFindings) -> None:
    """The planted person's findings, and every test of every person as if flagged (the longest
    finding is "HAPPINESS decoded correctly less often")."""
    flagged = flagged_table(found)
    assert {"LOVE decoded as SADNESS", "LOVE decoded correctly less often"} <= set(
        flagged["finding"]
    )
    assert_cells_fit(FLAGGED_COLUMNS, flagged)
    everything = RunFindings(
        table=found.table.assign(flagged=True), stability=found.stability, splits=found.splits
    )
    assert_cells_fit(FLAGGED_COLUMNS, flagged_table(everything))
    shown = [c for c in flagged_table(everything).columns if FLAGGED_COLUMNS[c] is not None]
    assert _width(FLAGGED_COLUMNS, shown) < 800


def test_person_cells_fit_their_columns(found: RunFindings) -> None:
    """Every test of every person and design: 26 measures each, in plain words that name the
    emotion ("LOVE decoded correctly", "HAPPINESS decoded as SADNESS")."""
    table = person_table(found.table)
    assert "LOVE decoded correctly" in set(table["measure"])
    assert set(table.columns) == set(PERSON_COLUMNS)
    assert_cells_fit(PERSON_COLUMNS, table)
    assert _width(PERSON_COLUMNS) < 780  # in an expander


def test_verdict_cells_fit_their_columns(found: RunFindings) -> None:
    """The Overview's verdict table, with a person flagged for every finding at once."""
    rows = found.table[(found.table["design"] == "loso") & (found.table["model"] == "cnn")]
    everything = {
        "subject": "05",
        "status": "flagged",
        "sentence": "…",
        "flagged": rows[rows["subject"] == "05"].head(4).to_dict("records"),
    }
    table = verdict_table([everything, {**everything, "subject": "01", "flagged": []}])
    assert len(table) == 2 and table["verdict"].eq("atypical decoding").all()
    assert_cells_fit(VERDICT_COLUMNS, table)


def test_scenes_cells_fit_their_columns() -> None:
    """Late in the two-hour movie (three-digit minutes), the synthetic cohort's longest place."""
    scenes = pd.DataFrame(
        [
            {
                "run": 8,
                "scene": 244,
                "scene_location": place,
                "start_movie_time": 7190.0,
                "end_movie_time": 7208.0,
                "n_volumes": 120,
                "most_common_prediction": "HAPPINESS",
                "most_common_fraction": 1.0,
            }
            for place in (
                "SAVANNAH BUS STOP",
                "COLLEGE STADIUM",
                "GREENBOW HOUSE",
                "BAYOU LA BATRE",
            )
        ]
    )
    table = scenes_table(scenes)
    assert table["scene"].iloc[0] == "244 (Savannah Bus Stop)"
    assert table["where"].iloc[0] == "run 8 · 1:59:50"  # h:mm:ss past the hour, as everywhere
    assert_cells_fit(SCENES_COLUMNS, table)
    assert _width(SCENES_COLUMNS) < 480  # 3/5 of the main area beside the pie


def test_runs_and_cell_cells_fit_their_columns() -> None:
    runs = pd.DataFrame(
        [
            {
                "id": "20261130-062306-3cfc",
                "kind": kind,
                "status": status,
                "design": design,
                "split": split,
                "leaky": False,
                "progress": 0.4,
                "message": "",
                "error": None,
                "config": {"designs": ["single-subject", "cross-subject", "loso"]},
                "created_at": "2026-11-30T05:20:02Z",
            }
            for kind, status, design, split in (
                ("study", "completed", None, None),
                ("evaluate", "running", "single-subject", "leave-one-run-out"),
                ("train", "queued", "cross-subject", "leave-one-run-out"),
            )
        ]
    )
    assert_cells_fit({k: v for k, v in RUNS_COLUMNS.items() if k != "note"}, runs_table(runs))
    held = pd.DataFrame(
        [
            {
                "subject": "01",
                "run": 8,
                "volume": 451,
                "movie_time": 7190.0,
                "scene": 244,
                "scene_location": "SAVANNAH BUS STOP",
                "agreement": 0.625,
                "true": "HAPPINESS",
                "pred": "SADNESS",
                "prob_HAPPINESS": 0.1,
                "prob_SADNESS": 1.0,
                "fold_name": fold,
            }
            for fold in ("runs 1+3+5+7", "runs 2+4+6+8", "sub-01", "random 1/5", "run-8")
        ]
    )
    cell = cell_volumes_table(held, subject="01", true="HAPPINESS", pred="SADNESS")
    assert_cells_fit(CELL_COLUMNS, cell)
