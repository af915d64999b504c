"""Annotations and lags that gave all NONE, or asked for terabytes, are refused (issue 10)."""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.constants import MAX_LAG_S
from emocore.data.labels import build_volume_labels, label_counts, load_annotations
from emocore.data.prepare import PrepareOptions
from emocore.errors import EXIT_CODES, AnnotationError, ConfigError
from tests.faults.conftest import checksums

HEADER = "start,end,character,arousal,valence,direction,emotion,oncue,offcue\n"
EPISODES = [(100, 140, "FEAR"), (900, 950, "HAPPINESS"), (2000, 2040, "SADNESS")]


def observer_rows(episodes=EPISODES, *, scale: float = 1.0) -> str:
    return "".join(
        f"{a * scale},{b * scale},FORREST,HIGH,NEG,SELF,{e},FACE,EMOFADED\n" for a, b, e in episodes
    )


def write_observers(folder: Path, bodies: dict[str, str] | None = None, n: int = 9) -> Path:
    """av1o01 ... av1o0n agreeing on EPISODES; ``bodies`` replaces some files' rows."""
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        name = f"av1o{i:02d}"
        (raw / f"{name}.csv").write_text(HEADER + (bodies or {}).get(name, observer_rows()))
    return raw


def labels_cli(ann: Path, out: Path, *extra: str) -> list[str]:
    return ["labels", "--annotations", str(ann), "--out", str(out), *extra]


# -- one rule for the lag (item 2) ----------------------------------------------------------
@pytest.mark.parametrize("lag", ["1e9", "20.5", "-1", "nan", "inf"])
def test_labels_and_prepare_refuse_the_same_lags(tmp_path: Path, capsys, lag: str) -> None:
    raw = write_observers(tmp_path / "ann")
    out = tmp_path / "out" / "labels.tsv"
    assert main(labels_cli(raw, out, "--lag", lag)) == EXIT_CODES["config"]
    err = capsys.readouterr().err
    assert f"--lag must be a finite number of seconds from 0 to {MAX_LAG_S:g}" in err, err
    assert not out.parent.exists()
    argv = ["prepare", "--bids", str(tmp_path / "nowhere"), "--annotations", str(raw)]
    assert main([*argv, "--cache", str(tmp_path / "cache"), "--lag", lag]) == EXIT_CODES["config"]
    assert f"--lag must be a finite number of seconds from 0 to {MAX_LAG_S:g}" in (
        capsys.readouterr().err
    )
    with pytest.raises(ConfigError, match=r"lag_s must be .* from 0 to 20"):
        PrepareOptions(lag_s=float(lag))
    with pytest.raises(ConfigError, match=r"lag_s must be .* from 0 to 20"):
        build_volume_labels(load_annotations(raw), lag_s=float(lag))


def test_the_largest_lag_is_accepted_by_both(tmp_path: Path) -> None:
    raw = write_observers(tmp_path / "ann")
    assert PrepareOptions(lag_s=MAX_LAG_S).lag_s == MAX_LAG_S
    counts = label_counts(build_volume_labels(load_annotations(raw), lag_s=MAX_LAG_S))
    assert counts["FEAR"] > 0


# -- observer files that give no vote (item 3) ----------------------------------------------
def test_every_file_header_only_is_an_error_naming_them(tmp_path: Path, capsys) -> None:
    raw = write_observers(tmp_path / "ann", {f"av1o{i:02d}": "" for i in range(1, 10)})
    out = tmp_path / "labels.tsv"
    assert main(labels_cli(raw, out)) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert "every volume would be NONE" in err and "holds no annotation rows" in err
    assert str(raw / "av1o01.csv") in err and str(raw / "av1o09.csv") in err
    assert not out.exists()


def test_one_header_only_observer_is_a_warning_naming_the_file(tmp_path: Path, caplog) -> None:
    raw = write_observers(tmp_path / "ann", {"av1o03": ""})
    with caplog.at_level(logging.WARNING, logger="emocore.data.labels"):
        ann = load_annotations(raw)
        counts = label_counts(build_volume_labels(ann))
    assert counts["FEAR"] > 0  # the seven others still agree
    assert f"{raw / 'av1o03.csv'} holds no annotation rows" in caplog.text
    assert "7 of 8 votes" in caplog.text
    assert ann.report.as_dict()["unusable"] == {
        "av1o03.csv": "holds no annotation rows (only the header)"
    }


def test_every_emotion_word_unknown_is_an_error_naming_the_words(tmp_path: Path, capsys) -> None:
    unknown = observer_rows([(100, 140, "JOY"), (900, 950, "TERROR")])
    raw = write_observers(tmp_path / "ann", {f"av1o{i:02d}": unknown for i in range(1, 10)})
    assert main(labels_cli(raw, tmp_path / "labels.tsv")) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert "names no known emotion category" in err and "'JOY'" in err and "'TERROR'" in err
    assert str(raw / "av1o05.csv") in err and not (tmp_path / "labels.tsv").exists()


def test_milliseconds_for_seconds_names_file_and_rows(tmp_path: Path, capsys) -> None:
    raw = write_observers(tmp_path / "ann", {"av1o02": observer_rows(scale=1000)})
    assert main(labels_cli(raw, tmp_path / "labels.tsv")) == EXIT_CODES["data"]
    err = capsys.readouterr().err
    assert f"{raw / 'av1o02.csv'}: start/end beyond the movie's end (7086 s" in err
    assert "line(s) 2, 3, 4" in err and "look like milliseconds" in err


# -- annotation times bounded by the movie (item 4) -----------------------------------------
@pytest.mark.parametrize(
    ("row", "given"), [("1e12,1e12", "1e+12"), ("100,2e9", "2e+09"), ("7200,7300", "7300")]
)
def test_times_past_the_movie_are_refused_fast(tmp_path: Path, row: str, given: str) -> None:
    body = observer_rows() + f"{row},FORREST,HIGH,NEG,SELF,FEAR,FACE,EMOFADED\n"
    raw = write_observers(tmp_path / "ann", {"av1o04": body})
    before = checksums(raw)
    tracemalloc.start()
    try:
        with pytest.raises(AnnotationError) as info:
            load_annotations(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MiB: a vote grid over the given times was built"
    message = str(info.value)
    assert message.startswith(f"{raw / 'av1o04.csv'}: start/end beyond the movie's end")
    assert f"up to {given} s given" in message and "on line(s) 5" in message
    assert "at most 7146" in message and "milliseconds" not in message
    assert checksums(raw) == before


def test_the_last_real_annotation_time_is_accepted(tmp_path: Path) -> None:
    body = observer_rows() + "7000,7085,FORREST,HIGH,NEG,SELF,LOVE,FACE,EMOFADED\n"
    raw = write_observers(tmp_path / "ann", {"av1o04": body})
    assert load_annotations(raw).report.n_rows["av1o04.csv"] == 4


def test_an_unreadable_annotation_folder_is_named(tmp_path: Path, capsys) -> None:
    from tests.faults.conftest import read_only

    raw = write_observers(tmp_path / "ann")
    with read_only(raw, mode=0o000):
        code = main(labels_cli(raw, tmp_path / "labels.tsv"))
    err = capsys.readouterr().err
    assert (
        code == EXIT_CODES["data"]
        and f"cannot read the annotation folder {raw} (permission denied)" in err
    )
