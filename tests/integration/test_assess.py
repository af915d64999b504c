"""A newly scanned person: added to the cache after a study, then assessed against its cohort."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.runs.registry import Registry
from emocore.stats.single_case import FINDING_KEYS


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cohort_run(tmp_path_factory):
    """Eight people in a study (single-subject + LOSO, one epoch); two more in the dataset
    only: sub-09, typical, and sub-10, planted like the demo's sub-10 (LOVE mostly SADNESS)."""
    home = tmp_path_factory.mktemp("assess")
    cohort, cache, reg = home / "cohort", home / "cache", home / "registry"
    synth = ["synth", "--out", str(cohort), "--subjects", "10", "--grid-mm", "9"]
    assert main([*synth, "--amplitude", "4", "--variability", "0.5", "--atypical", "10"]) == 0
    ann = cohort / "annotations" / "raw"
    people = [a for s in range(1, 9) for a in ("--subject", f"{s:02d}")]
    assert (
        main(
            [
                "prepare",
                "--bids",
                str(cohort),
                "--annotations",
                str(ann),
                "--cache",
                str(cache),
                *people,
            ]
        )
        == 0
    )
    run = json.loads(
        _run(
            [
                "study",
                "--designs",
                "single-subject",
                "loso",
                "--epochs",
                "1",
                "--n-folds",
                "2",
                "--class-weights",
                "--no-saliency",
                "--no-baseline",
                "--permutations",
                "20",
                "--cache",
                str(cache),
                "--registry",
                str(reg),
                "--json",
            ]
        )
    )
    return {"home": home, "cohort": cohort, "ann": ann, "cache": cache, "reg": reg, "run": run}


def _assess(c, subject: str, *extra: str) -> list[str]:
    return [
        "assess",
        "--run",
        c["run"]["run_id"],
        "--subject",
        subject,
        "--bids",
        str(c["cohort"]),
        "--annotations",
        str(c["ann"]),
        "--cache",
        str(c["cache"]),
        "--registry",
        str(c["reg"]),
        "--json",
        *extra,
    ]


def _run(argv: list[str]) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


def test_a_person_added_after_training_is_assessed_without_touching_the_cohort(cohort_run, capsys):
    c = cohort_run
    run_id = c["run"]["run_id"]
    folder = c["reg"] / "runs" / run_id
    before = _digest(folder / "models") | {"predictions.tsv": _digest(folder)["predictions.tsv"]}
    cohort_arrays = {s: (c["cache"] / f"sub-{s}.npy").read_bytes() for s in ("01", "08")}
    # the study names its primary analysis (LOSO CNN, the default) and gives one verdict each
    assert c["run"]["primary"]["design"] == "loso" and c["run"]["primary"]["model"] == "cnn"
    assert [v["subject"] for v in c["run"]["verdicts"]] == [f"{s:02d}" for s in range(1, 9)]
    assert {f["design"] for f in c["run"]["atypical"]} == {"single-subject", "loso"}
    assert len([f for f in c["run"]["atypical"] if f["design"] == "loso"]) == 8 * 26

    out = _json(capsys, _assess(c, "09"))
    assert out["subject"] == "09" and out["run_id"] == run_id and not out["reused"]
    # the primary analysis only: decoded by every stored LOSO model, none of which saw sub-09
    assert set(out["designs"]) == {"loso"} and out["designs"]["loso"]["role"] == "primary"
    assert len(out["designs"]["loso"]["models"]) == 8
    verdict = out["verdict"]
    assert verdict["primary"] == c["run"]["primary"] and verdict["n_others"] == 8
    assert verdict["status"] == "no evidence", verdict["sentence"]
    assert verdict["sentence"].startswith("No evidence of atypical decoding for sub-09")
    assert any(d["measure"] == "LOVE->SADNESS" for d in verdict["detectable_effect"])
    assert len(out["atypical"]) == 26
    for finding in out["atypical"]:
        assert set(FINDING_KEYS) <= set(finding)
        assert finding["subject"] == "09" and finding["procedure"] == "verdict"
        assert finding["n_others"] == 8 and finding["df"] == 7
        assert 0 <= finding["p"] <= finding["p_adjusted"] <= 1
    # the cohort's models, predictions and cache arrays are untouched
    after = _digest(folder / "models") | {"predictions.tsv": _digest(folder)["predictions.tsv"]}
    assert after == before
    for s, data in cohort_arrays.items():
        assert (c["cache"] / f"sub-{s}.npy").read_bytes() == data
    # stored with the run, and recorded as an assess run whose parent is the study
    stored = json.loads((folder / "assessments" / "sub-09" / "assessment.json").read_text())
    assert stored["verdict"] == verdict and stored["atypical"] == out["atypical"]
    record = Registry(c["reg"]).get_run(out["assess_run_id"])
    assert record.kind == "assess" and record.status == "completed"
    assert record.parent == run_id
    # the person's report says they were assessed, and opens with their verdict
    from emocore.reporting.report import subject_report_html

    html = subject_report_html(c["reg"], run_id, "09")
    assert "sub-09 was not in run" in html
    assert html.index("No evidence of atypical decoding") < html.index("Model and data")


def test_a_planted_newcomer_is_flagged(cohort_run, capsys):
    out = _json(capsys, _assess(cohort_run, "10"))
    verdict = out["verdict"]
    assert verdict["status"] == "flagged", verdict["sentence"]
    assert any(f["emotion"] == "LOVE" for f in verdict["flagged"])
    assert verdict["detectable_effect"] and verdict["primary"]["design"] == "loso"


def test_a_person_already_assessed_is_shown_not_assessed_again(cohort_run, capsys):
    c = cohort_run
    first = _json(capsys, _assess(c, "09"))  # assessed by the first test or now
    n_runs = len(Registry(c["reg"]).list_runs())
    again = _json(capsys, _assess(c, "09"))
    assert again["reused"] and again["assess_run_id"] == first["assess_run_id"]
    assert len(Registry(c["reg"]).list_runs()) == n_runs  # no run added
    assert main(_assess(c, "09")[:-1]) == 0
    assert "already assessed" in capsys.readouterr().out
    # --force replaces it; --exploratory adds the other designs, labelled and apart
    forced = _json(capsys, _assess(c, "09", "--force", "--exploratory"))
    assert not forced["reused"] and forced["assess_run_id"] != first["assess_run_id"]
    assert forced["designs"]["single-subject"]["role"] == "exploratory"
    assert forced["verdict"]["sentence"] == first["verdict"]["sentence"]
    holm = [f for f in forced["atypical"] if f["design"] == "single-subject"]
    assert len(holm) == 26 and {f["procedure"] for f in holm} == {"holm"}


def test_assess_refuses_a_cohort_member_and_a_person_not_in_the_cache(cohort_run, capsys):
    c = cohort_run
    base = [
        "assess",
        "--run",
        c["run"]["run_id"],
        "--cache",
        str(c["cache"]),
        "--registry",
        str(c["reg"]),
    ]
    assert main([*base, "--subject", "03"]) != 0
    assert "is in run" in capsys.readouterr().err
    assert main([*base, "--subject", "12"]) != 0
    err = capsys.readouterr().err
    assert "not in the cache" in err and "emocore prepare" in err
