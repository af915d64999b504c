"""Verdicts on a cohort built without emocore's generator (tests/integration/independent_cohort.py):
one person planted atypical for FEAR, seven typical people, a response shared by everybody."""

from __future__ import annotations

import json

import pytest

from emocore.cli import main
from tests.integration.independent_cohort import write_cohort

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("independent")
    raw = write_cohort(root / "data", n_subjects=8, planted="08")
    cache, reg = root / "cache", root / "registry"
    assert (
        main(
            [
                "prepare",
                "--bids",
                str(root / "data"),
                "--annotations",
                str(raw),
                "--cache",
                str(cache),
                "-q",
            ]
        )
        == 0
    )
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "study",
                "--designs",
                "loso",
                "--epochs",
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
                "-q",
            ]
        )
    assert code == 0
    return json.loads(out.getvalue())


def test_the_default_verdicts_find_the_planted_person_and_clear_the_others(study):
    assert study["primary"]["design"] == "loso" and study["primary"]["how"] == "default"
    verdicts = {v["subject"]: v for v in study["verdicts"]}
    assert set(verdicts) == {f"{s:02d}" for s in range(1, 9)}
    planted = verdicts["08"]
    assert planted["status"] == "flagged", planted["sentence"]
    assert any(f["emotion"] == "FEAR" for f in planted["flagged"]), planted["sentence"]
    typical_flagged = [s for s, v in verdicts.items() if s != "08" and v["status"] == "flagged"]
    assert len(typical_flagged) <= 1, [verdicts[s]["sentence"] for s in typical_flagged]
    for subject, v in verdicts.items():
        if v["status"] != "flagged":
            assert v["sentence"].startswith(f"No evidence of atypical decoding for sub-{subject}")
            assert v["detectable_effect"], subject
