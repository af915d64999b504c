"""emocore.stats.findings (what the pages and the report say about single-case findings) and its chart."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from emocore.constants import EMOTIONS
from emocore.reporting import figures
from emocore.runs.registry import Registry
from emocore.stats.evaluate import evaluate_predictions
from emocore.stats.findings import (
    RunFindings,
    flagged_elsewhere,
    flagged_table,
    measure_label,
    p_text,
    person_summary,
    person_table,
    power_note,
    predates_message,
    run_findings,
    run_summary,
    stability_sentence,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    from tests.conftest import write_findings_run

    registry = Registry(tmp_path_factory.mktemp("findings") / "registry")
    folder = registry.run_dir(write_findings_run(registry))
    return (
        json.loads((folder / "study.json").read_text()),
        json.loads((folder / "metrics.json").read_text()),
    )


@pytest.fixture(scope="module")
def found(bundle) -> RunFindings:
    from emocore.stats.verdict import Primary

    return run_findings(*bundle, primary=Primary("loso"))


def test_run_findings_reads_every_finding_and_the_planted_person(found: RunFindings) -> None:
    assert found.available and found.alpha == 0.05
    assert found.splits == {"single-subject": "leave-one-run-out", "loso": "leave-one-subject-out"}
    assert len(found.table) == 8 * 26 * 2 * 2  # people x tests x designs x families
    assert set(found.flagged()["subject"]) == {"05"}
    assert found.primary == ("loso", "cnn") and found.role("single-subject") == "exploratory"
    table = flagged_table(found)
    assert {"LOVE->SADNESS", "recall"} <= set(table["measure"])
    assert table["split"].tolist()[:2] == ["leave-one-subject-out"] * 2
    # the primary analysis' flags are the verdict's; the rest are exploratory
    primary = found.flagged("primary")
    assert set(primary["design"]) == {"loso"} and len(primary) == len(found.flagged()) - len(
        found.flagged("exploratory")
    )
    assert set(found.flagged("exploratory")["design"]) == {"single-subject"}
    n = len(found.flagged())
    assert run_summary(found).startswith(f"{n} findings flagged at α = 0.05 in 1 person (8 people")


def test_study_json_alone_gives_the_same_findings(bundle, found: RunFindings) -> None:
    study, _ = bundle
    alone = run_findings(study)
    assert alone.available and len(alone.table) == len(found.table)
    assert alone.flagged()["sentence"].tolist() == found.flagged()["sentence"].tolist()
    assert person_table(alone.person("05", "loso"))["others' range"].eq("n/a").all()


def test_a_run_before_the_findings_is_not_available(bundle) -> None:
    study, metrics = bundle
    old_study = {k: v for k, v in study.items() if k not in ("alpha", "atypical", "stability")}
    old_metrics = {
        d: {
            f: {k: v for k, v in ev.items() if k not in ("findings", "stability", "alpha")}
            for f, ev in families.items()
        }
        for d, families in metrics.items()
    }
    old = run_findings(old_study, old_metrics)
    assert not old.available and old.table.empty and old.stability.empty
    message = predates_message("run-7")
    assert "run-7 predates single-case findings" in message and "emocore study" in message


def test_person_findings_flagged_first_then_by_holm_p(found: RunFindings) -> None:
    mine = found.person("05", "single-subject")
    assert len(mine) == 26 and mine["flagged"].tolist()[:2] == [True, True]
    assert not mine["flagged"].iloc[2:].any()
    rest = mine["p_adjusted"].iloc[2:].dropna()
    assert rest.is_monotonic_increasing
    assert [r["measure"] for r in found.headline("05", "loso")][:2] == ["LOVE->SADNESS", "recall"]
    assert [r["measure"] for r in found.headline("01", "loso")] == ["balanced_accuracy"]


def test_emotion_findings_are_recall_and_the_smallest_p_confusion(found: RunFindings) -> None:
    rows = found.emotion_findings("05", "single-subject", "LOVE")
    assert [r["measure"] for r in rows] == ["recall", "LOVE->SADNESS"]
    assert rows[0]["js_distance"] is not None and rows[1]["js_distance"] is None
    values = found.values("single-subject", "cnn", "LOVE", "LOVE->SADNESS")
    assert len(values) == 8 and values.set_index("subject")["value"].idxmax() == "05"


def test_summaries_stability_and_p_text(found: RunFindings) -> None:
    assert person_summary(found, "02", "single-subject").startswith(
        "No evidence of atypical decoding for sub-02 at α = 0.05 in single-subject, CNN, split "
        "leave-one-run-out: 26 tests against 7 other people (exploratory: not part of the "
        "verdict; Holm-adjusted"
    )
    primary = replace(found, primary=("loso", "cnn"))
    assert person_summary(primary, "02", "loso").endswith(
        "in the primary analysis (loso, CNN, split leave-one-subject-out): 26 tests against 7 "
        "other people, in the verdict's order fixed in advance."
    )
    row = found.stability_of("05", "single-subject")
    assert row["n_folds"] == 4
    assert "SD of balanced accuracy" in stability_sentence(
        row, subject="05", design="single-subject", split="leave-one-run-out"
    )
    loso = stability_sentence(
        found.stability_of("05", "loso"), subject="05", design="loso", split="x"
    )
    assert "one fold: no spread" in loso
    assert "not recorded" in stability_sentence(None, subject="05", design="loso", split="x")
    assert [p_text(p) for p in (1 / 1001, 0.0123, 1.0, None, float("nan"))] == [
        "< 0.001",
        "0.012",
        "1.000",
        "n/a",
        "n/a",
    ]
    assert measure_label({"measure": "LOVE->SADNESS", "emotion": "LOVE"}) == (
        "share of LOVE volumes decoded as SADNESS"
    )


def test_too_few_people_flag_nothing_and_say_why() -> None:
    from tests.conftest import findings_predictions

    table = findings_predictions("single-subject", seed=3)
    table = table[table["subject"].isin(["01", "02", "05"])]
    ev = evaluate_predictions(
        table,
        classes=list(EMOTIONS),
        split="leave-one-run-out",
        design="single-subject",
        leaky=False,
        n_permutations=10,
    )
    few = run_findings({}, {"single-subject": {"cnn": ev}})
    assert few.available and few.flagged().empty
    assert run_summary(few).startswith("Too few people for single-case tests")
    rows = few.emotion_findings("05", "single-subject", "LOVE")
    assert "too little power" in power_note(rows, design="single-subject")
    assert "not tested in single-subject" in person_summary(few, "05", "single-subject")
    assert person_table(few.person("05", "single-subject"))["p"].eq("n/a").all()


def test_empty_findings_give_empty_tables() -> None:
    empty = run_findings({"atypical": [], "stability": []})
    assert empty.available and empty.table.empty and empty.flagged().empty
    assert empty.person("01", "loso").empty and empty.emotion_findings("01", "loso", "LOVE") == []
    assert person_table(empty.table).empty and flagged_table(empty).empty
    assert empty.stability_of("01", "loso") is None


def test_single_case_dots_marks_the_person(found: RunFindings) -> None:
    values = found.values("loso", "cnn", "LOVE", "LOVE->SADNESS")
    fig = figures.single_case_dots(
        values,
        subject="05",
        measure="share of LOVE volumes decoded as SADNESS",
        design="loso",
        split="leave-one-subject-out",
        chance=0.2,
    )
    others, me = fig.data
    assert len(others.x) == 7 and "05" not in "".join(others.customdata)
    assert me.marker.symbol == "diamond" and me.text[0].startswith("sub-05 ")
    assert me.x[0] > max(others.x)
    assert fig.layout.xaxis.tickformat == ".0%"
    title = fig.layout.title.text
    assert "SADNESS" in title and "loso" in title and "leave-one-subject-out" in title
    assert figures.single_case_dots(
        values.iloc[:0], subject="05", measure="m", design="d", split="s"
    ).data


def test_a_page_on_one_design_names_the_findings_of_the_others(found: RunFindings) -> None:
    """As exploratory flags, in words: never as if they counted like the verdict's."""
    unnamed = replace(found, primary=None)  # every design exploratory
    line = flagged_elsewhere(unnamed, "05", "single-subject")
    assert line is not None and line.startswith(
        "Exploratory (not part of the verdict, and not controlled across designs): sub-05 is "
        "also flagged in loso (CNN): "
    )
    assert "LOVE decoded as SADNESS" in line and "LOVE decoded correctly less often" in line
    assert flagged_elsewhere(unnamed, "01", "single-subject") is None
    # the primary analysis' (loso's) flags are the verdict, shown above every page: not here
    assert flagged_elsewhere(found, "05", "single-subject") is None
    assert "single-subject (CNN)" in (flagged_elsewhere(found, "05", "loso") or "")


def test_plain_words_name_the_measures(found: RunFindings) -> None:
    """What a clinician reads first: "decoded correctly", not "recall"."""
    measures = set(person_table(found.person("05", "loso"))["measure"])
    assert {"LOVE decoded correctly", "LOVE decoded as SADNESS", "balanced accuracy"} <= measures
    assert not any("recall" in m for m in measures)
    assert measure_label({"measure": "recall", "emotion": "FEAR"}) == (
        "share of FEAR volumes decoded correctly"
    )
    assert "adjusted p" in person_table(found.person("05", "loso")).columns


def test_verdict_table_and_the_no_evidence_line() -> None:
    """The Overview's first lines: who is flagged for what, then the others in one line with
    what the test could have found (never "typical")."""
    from emocore.stats.findings import no_evidence_line, verdict_emotion, verdict_table

    def detectable(emotion: str, rate: float | None) -> dict:
        return {"measure": "recall", "emotion": emotion, "direction": "below", "rate": rate,
                "power": 0.8}  # fmt: skip

    flagged = {
        "subject": "05",
        "status": "flagged",
        "sentence": "Atypical decoding for sub-05 (...): ...",
        "flagged": [
            {"measure": "LOVE->SADNESS", "emotion": "LOVE", "predicted_as": "SADNESS"},
            {"measure": "balanced_accuracy", "emotion": "ALL"},
        ],
        "n_others": 7,
        "detectable_effect": [],
    }
    clear = [
        {
            "subject": s,
            "status": "no evidence",
            "sentence": f"No evidence of atypical decoding for sub-{s} (...).",
            "flagged": [],
            "n_others": 7,
            "detectable_effect": [detectable("FEAR", rate), detectable("LOVE", None)],
        }
        for s, rate in (("01", 0.26), ("02", 0.30))
    ]
    table = verdict_table([flagged, *clear])
    assert table.to_dict("records") == [
        {
            "person": "sub-05",
            "verdict": "atypical decoding",
            "for what": "LOVE decoded as SADNESS · balanced accuracy lower",
            "sentence": flagged["sentence"],
            "subject": "05",
        }
    ]
    assert len(verdict_table([flagged, *clear], status=None)) == 3
    many = {**flagged, "flagged": flagged["flagged"] * 2}
    assert verdict_table([many])["for what"][0] == (
        "LOVE decoded as SADNESS · balanced accuracy lower (+ 2 more)"
    )
    line = no_evidence_line([flagged, *clear]) or ""
    assert line.startswith("**No evidence of atypical decoding** for 2 people (sub-01, sub-02)")
    assert "FEAR decoded correctly below 26–30 %" in line and "for LOVE, not even 0 %" in line
    assert "typical." in line and no_evidence_line([flagged]) is None
    classes = ["HAPPINESS", "FEAR", "SADNESS", "LOVE", "ANGER"]
    assert verdict_emotion(flagged, classes) == "LOVE"
    assert verdict_emotion({**flagged, "flagged": flagged["flagged"][1:]}, classes) == "LOVE"
    fear = {**flagged, "flagged": [{"measure": "FEAR->ANGER", "emotion": "FEAR"}]}
    assert verdict_emotion(fear, classes) == "FEAR"
    assert verdict_emotion(clear[0], classes) == "LOVE"
    assert verdict_emotion({"status": "not tested"}, classes) is None


def test_recall_heatmap_is_white_at_chance_not_at_one_half() -> None:
    """Plotly ignores zmid once zmin and zmax are set; the scale itself must turn at chance, so
    an above-chance 30 % is not drawn red."""
    import pandas as pd

    table = pd.DataFrame(
        {"subject": ["01", "02"], "accuracy_LOVE": [0.3, 0.1], "accuracy_FEAR": [0.6, 0.2]}
    )
    fig = figures.accuracy_heatmap(table, ["LOVE", "FEAR"], split="s", chance=0.2, title="t")
    scale = [(stop, colour.lower()) for stop, colour in fig.data[0].colorscale]
    assert (0.2, "#f7f7f7") in scale
    assert all(colour != "#f7f7f7" for stop, colour in scale if stop != 0.2)
