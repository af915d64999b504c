"""The pages' display tables (emocore.summaries): few merged columns that fit 1280 px, numbers
formatted as the pages format them, and the per-fold tuning table. Pure functions: no AppTest."""

from __future__ import annotations

import pandas as pd

from emocore.summaries import recall_order, results_table, scenes_table, tuning_table
from emocore.ui.tables import FLAGGED_COLUMNS, RESULTS_COLUMNS, SCENES_COLUMNS

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
    assert first["design · split"] == "single-subject · leave-one-run-out"
    assert first["balanced accuracy"] == "74.7 %" and first["95 % interval"] == "72.8–77.2 %"
    assert first["p"] == "< 0.001" and second["p"] == "0.020"
    assert first["chance"] == "15.8 % perm. · 20.0 % 1/K"
    assert first["recall per emotion"] == "77 · 79 · 74 · 68 · 75 %"
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
            "where": "run 2 · 15:38–15:44",
            "scene": "21 (PLACE 1)",
            "volumes": 4,
            "predicted as": "SADNESS (75 %)",
        },
        {
            "where": "run 1 · 1:38",
            "scene": "3 (PLACE 0)",
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
    assert hidden == {"split", "emotion"}
    assert "Holm p" in FLAGGED_COLUMNS and "others' range" in FLAGGED_COLUMNS
