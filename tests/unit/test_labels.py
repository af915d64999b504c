"""Tests of emocore.data.labels.

The real studyforrest annotations (shared data folder) must reproduce the published counts
exactly; tiny hand-made CSVs check each rule and every error message.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emocore.constants import (
    CATEGORY_MAP,
    CLASSES,
    NONE,
    RAW_CATEGORIES,
    RUN_N_VOLUMES,
    RUN_STARTS_S,
)
from emocore.data.labels import (
    COLUMNS,
    LABEL_COLUMNS,
    Annotations,
    build_movie_labels,
    build_volume_labels,
    category_cooccurrence,
    find_annotation_files,
    label_counts,
    load_annotations,
    raw_category_counts,
    read_observer_csv,
    write_label_table,
)
from emocore.errors import AnnotationError, ConfigError

HEADER = ",".join(COLUMNS)
AV8 = ("av1o01", "av1o02", "av1o03", "av1o05", "av1o06", "av1o07", "av1o08", "av1o09")


def _real_folder() -> Path:
    """studyforrest-emotions; EMOCORE_SHARED_DATA may name it or the shared data folder above it."""
    env = os.environ.get("EMOCORE_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return (
        base if (base / "expected_label_counts.json").is_file() else base / "studyforrest-emotions"
    )


def _per_run(table: pd.DataFrame) -> list[dict[str, int]]:
    return [label_counts(group) for _, group in table.groupby("run")]


# -- real data ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real() -> Path:
    folder = _real_folder()
    if not (folder / "expected_label_counts.json").is_file():
        pytest.skip(f"studyforrest annotations not found at {folder}; set EMOCORE_SHARED_DATA")
    return folder


@pytest.fixture(scope="module")
def expected(real: Path) -> dict:
    return json.loads((real / "expected_label_counts.json").read_text())


@pytest.fixture(scope="module")
def annotations(real: Path) -> Annotations:
    return load_annotations(real)


@pytest.fixture(scope="module")
def poster_lag0(annotations: Annotations) -> pd.DataFrame:
    return build_volume_labels(annotations, lag_s=0.0)


def test_find_annotation_files_accepts_every_layout(real: Path) -> None:
    raw = real / "labs2015-emotionannotation" / "data" / "raw"
    found = [find_annotation_files(p) for p in (real, raw.parent, raw)]
    assert {f.folder for f in found} == {raw}
    assert all(f.scenes == raw.parent / "movie_scenes.csv" for f in found)
    assert list(found[0].observers) == [f"ao1o0{i}" for i in (1, 2, 3)] + [
        f"av1o0{i}" for i in range(1, 10)
    ]


def test_raw_annotation_facts(annotations: Annotations, expected: dict) -> None:
    facts = expected["raw_annotation_facts"]
    av = {o: t for o, t in annotations.observers.items() if o.startswith("av")}
    ao = [t for o, t in annotations.observers.items() if o.startswith("ao")]
    rows = pd.concat(av.values())
    assert len(rows) == facts["av_rows"]
    assert sum(map(len, ao)) == facts["ao_rows"]
    assert int((np.trunc(rows["start"]) % 2 == 1).sum()) == facts["av_rows_with_odd_int_start"]
    assert int((rows["emotion"] == "").sum()) == facts["av_rows_without_emotion_label"]
    multi = {o: int(t["emotion"].str.contains(" ").sum()) for o, t in av.items()}
    assert multi == facts["av_rows_with_multiple_emotion_tokens"]
    assert annotations.report_summary()["unknown_words"] == {}
    assert len(annotations.scenes) == 205


def test_poster_lag0_reproduces_expected_counts(poster_lag0: pd.DataFrame, expected: dict) -> None:
    want = expected["per_volume_counts_replica_correct_offsets_lag0"]
    assert len(poster_lag0) == expected["fmri_runs"]["total_volumes"] == 3599
    assert label_counts(poster_lag0) == want["total"]
    assert _per_run(poster_lag0) == want["per_run"]


def test_poster_lag0_spot_checks(poster_lag0: pd.DataFrame, expected: dict) -> None:
    table = poster_lag0.set_index(["run", "volume"])
    for check in expected["spot_checks_replica_correct_offsets_lag0"]:
        row = table.loc[(check["run"], check["volume_index0"])]
        assert (row["movie_time"], row["label"]) == (check["movie_time_s"], check["label"]), check


def test_poster_lag4_per_run(annotations: Annotations, expected: dict) -> None:
    want = expected["per_volume_counts_replica_correct_offsets_lag4s"]
    table = build_volume_labels(annotations, lag_s=4.0)
    assert _per_run(table) == want["per_run"]
    assert label_counts(table) == want["total"]


def test_poster_movie_grid_and_judges(annotations: Annotations, expected: dict) -> None:
    replica = expected["replica_from_raw"]
    grid = build_movie_labels(annotations)
    assert grid["movie_time"].iloc[-1] == 7084
    assert label_counts(grid) == replica["counts_movie_grid_0_7084"]
    authors = grid[grid["movie_time"] <= 7032]
    assert label_counts(authors) == replica["counts_movie_grid_0_7032"]
    # num_judges counted the pooled label once more as a ninth judge
    judges = np.rint(authors["agreement"] * 8).astype(int) + (authors["label"] != NONE)
    wanted = {
        int(k): v for k, v in expected["authors_classification_tsv"]["num_judges_counts"].items()
    }
    assert judges.where(authors["label"] != NONE, 0).value_counts().to_dict() == wanted


@pytest.mark.parametrize(
    ("key", "observers"), [("av9_min5of9", "av9"), ("av8_min4of8", "av8"), ("ao3_min2of3", "ao3")]
)
def test_overlap_recipes(
    annotations: Annotations, expected: dict, key: str, observers: str
) -> None:
    want = expected["alternative_recipes_overlap_ioa"][key]
    grid = build_movie_labels(annotations, recipe="overlap", observers=observers)
    assert label_counts(grid) == want["movie_grid_0_7084"]
    assert int(grid["tied"].sum()) == want["ties_set_to_NONE"]
    assert (grid.loc[grid["tied"], "label"] == NONE).all()
    poster = build_movie_labels(annotations).iloc[: 7032 // 2 + 1]
    same = (grid["label"].iloc[: len(poster)] == poster["label"]).mean()
    assert same == pytest.approx(want["agreement_with_authors_on_0_7032"])
    table = build_volume_labels(annotations, lag_s=0, recipe="overlap", observers=observers)
    assert _per_run(table) == want["fmri_correct_offsets_lag0"]["per_run"]
    assert label_counts(table) == want["fmri_correct_offsets_lag0"]["total"]


def test_overlap_defaults_to_av9(annotations: Annotations) -> None:
    default = build_movie_labels(annotations, recipe="overlap")
    pd.testing.assert_frame_equal(
        default, build_movie_labels(annotations, recipe="overlap", observers="av9")
    )


def test_wrong_poster_offsets_reproduce_the_prototype(
    annotations: Annotations, expected: dict
) -> None:
    want = expected["per_volume_counts_authors_pipeline_wrong_offsets"]
    table = build_volume_labels(annotations, lag_s=0, run_offsets="poster")
    labelled = want["labeled_volumes_per_run"]
    # the prototype labelled only the volumes it had grid steps for; ours are NONE past that
    kept = table["volume"] < np.asarray(labelled)[table["run"] - 1]
    assert _per_run(table[kept]) == want["per_run"]
    assert label_counts(table[kept]) == want["total"]
    assert (table.loc[~kept, "label"] == NONE).all() and int((~kept).sum()) == 338 - 256
    assert table.loc[table["run"] == 8, "movie_time"].iloc[0] == 6522


def test_authors_vs_correct_agreement(annotations: Annotations, expected: dict) -> None:
    want = expected["authors_vs_correct_per_run_agreement"]
    labelled = np.asarray(
        expected["per_volume_counts_authors_pipeline_wrong_offsets"]["labeled_volumes_per_run"]
    )
    correct = build_volume_labels(annotations, lag_s=0)
    wrong = build_volume_labels(annotations, lag_s=0, run_offsets="poster")
    kept = correct["volume"] < labelled[correct["run"] - 1]
    same = correct["label"] == wrong["label"]
    emotional = (correct["label"] != NONE) | (wrong["label"] != NONE)
    for mask, key in (
        (kept, "all_volumes"),
        (kept & emotional, "volumes_where_either_is_not_NONE"),
    ):
        assert same[mask].groupby(correct["run"][mask]).mean().round(3).tolist() == want[key]


def test_volume_table_schema(annotations: Annotations) -> None:
    table = build_volume_labels(annotations, lag_s=4.0)
    assert tuple(table.columns) == LABEL_COLUMNS
    assert table.groupby("run").size().tolist() == list(RUN_N_VOLUMES)
    starts = np.asarray(RUN_STARTS_S)[table["run"] - 1]
    np.testing.assert_array_equal(table["movie_time"], starts + 2.0 * table["volume"])
    np.testing.assert_array_equal(table["label_time"], table["movie_time"] - 4.0)
    assert table["volume"].min() == 0 and set(table["label"]) <= set(CLASSES)
    assert table["agreement"].between(0, 1).all()
    assert table.loc[(table["run"] == 1) & (table["volume"] < 2), "agreement"].eq(1.0).all()
    assert ((table["scene"] == 0) == (table["scene_location"] == "")).all()
    assert table.groupby("run")["scene"].apply(lambda s: s.is_monotonic_increasing).all()
    assert table["scene"].max() == 205 and table.loc[1002, "scene_location"] == "CLUB IN MEMPHIS"


def test_odd_lag_floors_to_the_grid(annotations: Annotations) -> None:
    lag3 = build_volume_labels(annotations, lag_s=3.0)
    lag4 = build_volume_labels(annotations, lag_s=4.0)
    assert lag3["label"].equals(lag4["label"])
    assert not lag3["label"].equals(build_volume_labels(annotations, lag_s=6.0)["label"])


def test_raw_category_counts_real(annotations: Annotations) -> None:
    counts = raw_category_counts(annotations, "av9")
    assert tuple(counts.index) == RAW_CATEGORIES
    assert counts["class"].to_dict() == CATEGORY_MAP
    words = pd.concat(annotations.observers[f"av1o0{i}"]["emotion"] for i in range(1, 10))
    assert counts["count"].sum() == words.str.split().str.len().sum()
    assert counts["observers"].between(1, 9).all()


def test_category_cooccurrence_real(annotations: Annotations) -> None:
    matrix = category_cooccurrence(annotations, "av9")
    assert matrix.shape == (22, 22) and tuple(matrix.index) == RAW_CATEGORIES
    np.testing.assert_array_equal(matrix.to_numpy(), matrix.to_numpy().T)
    assert (matrix.to_numpy() >= 0).all() and matrix.loc["FEAR", "FEAR"] > 0


# -- tiny hand-made annotations -----------------------------------------------------------------
def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _row(start: float, end: float, emotion: str = "", character: str = "FORREST") -> str:
    return f"{start},{end},{character},HIGH,NEG,SELF,{emotion},FACE,EMOFADED"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """Nine AV observers in a raw/ folder, the scene list beside it; rules planted at 10-60 s."""
    rows: dict[str, list[str]] = {o: [] for o in (*AV8, "av1o04")}
    for o in AV8[:4]:  # 4 of 8 -> FEAR at 10 and 12 s
        rows[o].append(_row(10, 14, "FEAR"))
    for o in AV8[:3]:  # 3 of 8 -> not enough
        rows[o].append(_row(20, 22, "LOVE"))
    for o in AV8[:5]:  # odd start: the poster rule never sees it
        rows[o].append(_row(31, 35, "HOPE"))
    for o in AV8[:4]:  # the FORREST row wins at 40 s, and it has no emotion
        rows[o] += [_row(40, 42, "FEAR", "MAN"), _row(40, 42, "", "FORREST")]
    for i, o in enumerate(AV8):  # 4 LOVE : 4 FEAR, av1o01 (LOVE) first
        rows[o].append(_row(50, 52, "LOVE" if i in (0, 3, 5, 7) else "FEAR"))
    rows["av1o04"] += [_row(60, 62, "ADMIRATION GRATITUDE"), _row(62, 64, "JOY FEAR")]
    for o, r in rows.items():
        _write(tmp_path / "data" / "raw" / f"{o}.csv", r)
    (tmp_path / "data" / "movie_scenes.csv").write_text("5.0,BENCH,DAY,EXT\n45.5,BUS,DAY,INT\n")
    return tmp_path / "data"


def test_tiny_poster_rules(tiny: Path) -> None:
    grid = build_movie_labels(load_annotations(tiny), end_s=70).set_index("movie_time")
    assert grid.loc[[10, 12, 14], "label"].tolist() == ["FEAR", "FEAR", NONE]
    assert grid.loc[10, "agreement"] == 0.5
    assert grid.loc[[20, 30, 32, 34, 40], "label"].eq(NONE).all()
    assert (grid.loc[50, "label"], grid.loc[50, "tied"]) == ("LOVE", True)
    assert grid.loc[40, "agreement"] == 1.0  # everyone votes NONE there


def test_tiny_overlap_rules(tiny: Path) -> None:
    ann = load_annotations(tiny)
    av9 = build_movie_labels(ann, recipe="overlap", end_s=70).set_index("movie_time")
    assert av9.loc[[30, 32, 34, 36], "label"].tolist() == ["HAPPINESS"] * 3 + [NONE]
    assert av9.loc[30, "agreement"] == pytest.approx(5 / 9)
    av8 = build_movie_labels(ann, recipe="overlap", observers="av8", end_s=70).set_index(
        "movie_time"
    )
    assert av8.loc[40, "label"] == "FEAR"  # every overlapping annotation counts
    assert (av8.loc[50, "label"], av8.loc[50, "tied"]) == (NONE, True)


def test_tiny_volume_table_with_lag_and_scenes(tiny: Path) -> None:
    ann = load_annotations(tiny)
    table = build_volume_labels(ann, lag_s=4, run_starts=(0, 40), run_n_volumes=(26, 16))
    assert len(table) == 42 and table["run"].tolist() == [1] * 26 + [2] * 16
    first = table.iloc[0]
    assert (first["label_time"], first["label"], first["agreement"], first["scene"]) == (
        -4,
        NONE,
        1.0,
        0,
    )
    row = table.set_index(["run", "volume"])
    assert row.loc[(1, 7), ["label", "scene_location"]].tolist() == ["FEAR", "BENCH"]
    assert row.loc[(2, 7), ["movie_time", "label", "scene", "scene_location"]].tolist() == [
        54,
        "LOVE",
        2,
        "BUS",
    ]


def test_layouts_and_missing_scenes(tiny: Path, tmp_path: Path) -> None:
    assert find_annotation_files(tiny).folder == tiny / "raw"
    assert find_annotation_files(tiny / "raw").scenes == tiny / "movie_scenes.csv"
    alone = tmp_path / "alone"
    for i in (1, 2, 3):
        _write(alone / f"ao1o0{i}.csv", [_row(0, 4, "FEAR")])
    ann = load_annotations(alone)
    assert ann.files.scenes is None and ann.scenes.empty
    table = build_volume_labels(
        ann, lag_s=0, recipe="overlap", observers="ao3", run_starts=(0,), run_n_volumes=(3,)
    )
    assert table["label"].tolist() == ["FEAR", "FEAR", NONE]
    assert table["scene"].eq(0).all() and table["scene_location"].eq("").all()


def test_unknown_emotion_word_is_counted_and_dropped(
    tiny: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="emocore.data.labels"):
        ann = load_annotations(tiny)
    assert "av1o04.csv" in caplog.text and "'JOY'" in caplog.text and "1 row" in caplog.text
    assert ann.report.unknown_words["av1o04.csv"] == {"JOY": 1}
    assert ann.report_summary()["unknown_words"] == {"av1o04.csv": {"JOY": 1}}
    assert ann.observers["av1o04"]["emotion"].tolist() == ["ADMIRATION GRATITUDE", "FEAR"]
    only = _write(tiny.parent / "x" / "av1o01.csv", [_row(0, 2, "JOY"), _row(2, 4, "joy")])
    table = read_observer_csv(only)
    assert table.attrs["unknown_words"] == {"JOY": 2} and table["emotion"].eq("").all()


def test_multi_word_emotions(tiny: Path) -> None:
    ann = load_annotations(tiny)
    counts = raw_category_counts(ann)
    assert counts.loc["ADMIRATION", "count"] == 1 and counts.loc["GRATITUDE", "observers"] == 1
    assert counts.loc["FEAR", "count"] == 4 + 4 + 4 + 1
    # av9 overlap: av1o04's two words vote for LOVE and HAPPINESS at once (one observer only)
    grid = build_movie_labels(ann, recipe="overlap", end_s=70).set_index("movie_time")
    assert grid.loc[60, "label"] == NONE and grid.loc[60, "agreement"] == pytest.approx(8 / 9)


def test_category_cooccurrence_counts_pairs_of_observers(tmp_path: Path) -> None:
    _write(
        tmp_path / "av1o01.csv",
        [_row(0, 2, "FEAR LOVE"), _row(2, 4, "HOPE"), _row(4, 6, "FEAR LOVE")],
    )
    _write(tmp_path / "av1o02.csv", [_row(0, 2, "FEAR")])
    matrix = category_cooccurrence(load_annotations(tmp_path), end_s=6)
    nonzero = {k: v for k, v in matrix.stack().items() if v}
    assert nonzero == {("FEAR", "FEAR"): 1, ("FEAR", "LOVE"): 1, ("LOVE", "FEAR"): 1}


def test_label_counts_and_atomic_write(tiny: Path, tmp_path: Path) -> None:
    table = build_volume_labels(load_annotations(tiny), run_starts=(0,), run_n_volumes=(30,))
    counts = label_counts(table)
    assert list(counts) == list(CLASSES) and sum(counts.values()) == 30 and counts["ANGER"] == 0
    assert label_counts(pd.Series([], dtype=str)) == dict.fromkeys(CLASSES, 0)
    out = write_label_table(table, tmp_path / "out" / "labels.tsv")
    back = pd.read_csv(out, sep="\t", keep_default_na=False)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert [p.name for p in out.parent.iterdir()] == ["labels.tsv"]
    with pytest.raises(AnnotationError, match=r"\['JOY'\] are not classes"):
        label_counts(pd.Series(["FEAR", "JOY"]))
    with pytest.raises(AnnotationError, match="no 'label' column"):
        label_counts(table.drop(columns="label"))


# -- errors -------------------------------------------------------------------------------------
def test_missing_columns(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "av1o01.csv", ["1,2,FORREST,HIGH,NEG,SELF,FEAR"], header=HEADER.rsplit(",", 2)[0]
    )
    with pytest.raises(
        AnnotationError, match=r"av1o01\.csv lacks the column\(s\) oncue, offcue.*start,end"
    ):
        read_observer_csv(path)


def test_end_before_start_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", [_row(0, 2), "", _row(10, 4), _row(5, 3)])
    with pytest.raises(AnnotationError, match=r"bad\.csv: end is before start.* line\(s\) 4, 5;"):
        read_observer_csv(path)


def test_non_numeric_times_name_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", [_row(0, 2), "ten,12,FORREST,HIGH,NEG,SELF,,FACE,EMOFADED"])
    with pytest.raises(
        AnnotationError, match=r"bad\.csv: start/end are not numbers on line\(s\) 3;"
    ):
        read_observer_csv(path)


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(AnnotationError, match=r"cannot read .*empty\.csv.*header start,end"):
        read_observer_csv(tmp_path / "empty.csv")
    with pytest.raises(AnnotationError, match=r"cannot read .*nothere\.csv"):
        read_observer_csv(tmp_path / "nothere.csv")


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        AnnotationError, match=r"empty holds no observer CSV files; expected .*av1o01\.csv"
    ):
        find_annotation_files(tmp_path / "empty")
    with pytest.raises(AnnotationError, match=r"nowhere does not exist; expected .*raw"):
        load_annotations(tmp_path / "nowhere")


def test_bad_scene_file(tiny: Path) -> None:
    (tiny / "movie_scenes.csv").write_text("5.0,BENCH,DAY,EXT\n4.0,BUS,DAY,INT\n")
    with pytest.raises(AnnotationError, match=r"movie_scenes\.csv: scene start .* line\(s\) 2;"):
        load_annotations(tiny)


def test_unknown_options_suggest_the_closest(tiny: Path) -> None:
    ann = load_annotations(tiny)
    with pytest.raises(
        ConfigError,
        match=r"'recipe' must be one of 'poster', 'overlap'; 'postr' was provided; did you mean 'poster'\?",
    ):
        build_volume_labels(ann, recipe="postr")
    with pytest.raises(ConfigError, match=r"'observers' must be one of .*'av9'.*did you mean"):
        build_movie_labels(ann, recipe="overlap", observers="av99")
    with pytest.raises(
        ConfigError, match=r"'run_offsets' .* 'corect' was provided; did you mean 'correct'\?"
    ):
        build_volume_labels(ann, run_offsets="corect")
    with pytest.raises(ConfigError, match="lag_s must be a finite number"):
        build_volume_labels(ann, lag_s=-2)
    with pytest.raises(ConfigError, match="one value per run"):
        build_volume_labels(ann, run_offsets="poster", run_starts=(0,), run_n_volumes=(3,))


def test_missing_observer_of_a_set(tiny: Path) -> None:
    (tiny / "raw" / "av1o04.csv").unlink()
    ann = load_annotations(tiny)
    build_movie_labels(ann, end_s=10)  # the poster's av8 set does not need av1o04
    with pytest.raises(
        AnnotationError, match=r"raw lacks av1o04\.csv, needed by observer set 'av9'"
    ):
        build_movie_labels(ann, recipe="overlap")
