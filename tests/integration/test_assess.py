"""A newly scanned person: added to the cache after a study, then assessed against its cohort."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.registry import Registry
from emocore.single_case import FINDING_KEYS


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
    """Six people in a study (single-subject + LOSO, one epoch); a seventh in the dataset only."""
    home = tmp_path_factory.mktemp("assess")
    cohort, cache, reg = home / "cohort", home / "cache", home / "registry"
    assert main(["synth", "--out", str(cohort), "--subjects", "7", "--grid-mm", "12"]) == 0
    ann = cohort / "annotations" / "raw"
    people = [a for s in ("01", "02", "03", "04", "05", "06") for a in ("--subject", s)]
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
    cohort_arrays = {s: (c["cache"] / f"sub-{s}.npy").read_bytes() for s in ("01", "06")}
    # the study's own --json carries one finding per person x measure (26 with 5 emotions)
    assert {f["design"] for f in c["run"]["atypical"]} == {"single-subject", "loso"}
    assert len([f for f in c["run"]["atypical"] if f["design"] == "loso"]) == 6 * 26

    out = _json(
        capsys,
        [
            "assess",
            "--run",
            run_id,
            "--subject",
            "07",
            "--bids",
            str(c["cohort"]),
            "--annotations",
            str(c["ann"]),
            "--cache",
            str(c["cache"]),
            "--registry",
            str(c["reg"]),
            "--json",
        ],
    )
    assert out["subject"] == "07" and out["run_id"] == run_id
    assert out["designs"]["single-subject"]["status"] == "assessed"
    assert out["designs"]["loso"]["status"] == "assessed"
    assert len(out["designs"]["loso"]["models"]) == 6  # every LOSO model, none saw sub-07
    assert len(out["atypical"]) == 2 * 26
    for finding in out["atypical"]:
        assert set(FINDING_KEYS) <= set(finding)
        assert finding["subject"] == "07" and finding["model"] == "cnn"
        assert finding["n_others"] == 6 and finding["df"] == 5
        assert 0 <= finding["p"] <= finding["p_adjusted"] <= 1
    # the cohort's models, predictions and cache arrays are untouched
    after = _digest(folder / "models") | {"predictions.tsv": _digest(folder)["predictions.tsv"]}
    assert after == before
    for s, data in cohort_arrays.items():
        assert (c["cache"] / f"sub-{s}.npy").read_bytes() == data
    # stored with the run, and recorded as an assess run whose parent is the study
    stored = json.loads((folder / "assessments" / "sub-07" / "assessment.json").read_text())
    assert stored["atypical"] == out["atypical"]
    record = Registry(c["reg"]).get_run(out["assess_run_id"])
    assert record.kind == "assess" and record.status == "completed"
    assert record.parent == run_id
    # the person's report says they were assessed, and opens with their findings
    from emocore.report import subject_report_html

    html = subject_report_html(c["reg"], run_id, "07")
    assert "sub-07 was not in run" in html
    assert html.index("id='findings'") < html.index("Model and data")


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
