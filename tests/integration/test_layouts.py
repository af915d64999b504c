"""The three data layouts through the same commands: synth -> prepare -> train.

Each layout of the same tiny synthetic cohort (``emocore synth --layout``) is prepared and
trained with the commands README.md gives; the bad mixes a lab meets (two fMRIPrep spaces, a
missing or short confounds table) stop with the file and the fix named; and regressing the
fMRIPrep motion confounds brings the cache closer to the same cohort scanned without motion.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emocore.cli import main
from emocore.data.cache import open_cache
from emocore.data.prepare import PrepareOptions, prepare_cache
from emocore.data.synthetic import SynthConfig, generate_cohort
from emocore.errors import DataError

pytestmark = pytest.mark.slow

TINY = SynthConfig(n_subjects=2, grid_mm=12.0, atypical=())  # 13 x 18 x 5 voxels, 8 runs each
FUNC = "sub-01/ses-forrestgump/func/sub-01_ses-forrestgump_task-forrestgump"
OPTIONS = {"derivative": [], "raw": ["--acq", "dico"], "fmriprep": ["--confounds", "motion"]}


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    made = {layout: TINY.replace(layout=layout, motion=1.0) for layout in OPTIONS}
    made["still"] = TINY.replace(layout="fmriprep", motion=0.0)
    return {name: generate_cohort(root / name, cfg) for name, cfg in made.items()}


def _prepare(cohort: Path, cache: Path, *extra: str) -> int:
    return main(
        [
            "prepare",
            "--bids",
            str(cohort),
            "--annotations",
            str(cohort / "annotations" / "raw"),
            "--cache",
            str(cache),
            "--json",
            *extra,
        ]
    )


@pytest.mark.parametrize("layout", list(OPTIONS))
def test_every_layout_prepares_and_trains_through_the_same_commands(
    cohorts, tmp_path, capsys, layout
):
    cohort = cohorts[layout]
    assert _prepare(cohort, tmp_path / "cache", *OPTIONS[layout]) == 0
    capsys.readouterr()
    cache = open_cache(tmp_path / "cache")
    source = cache.manifest["source"]
    assert cache.subjects == ["01", "02"]
    assert source["layout"] == {"derivative": "ds000113-derivative", "raw": "bids"}.get(
        layout, "fmriprep"
    )
    runs = cache.manifest["subjects"]["01"]["runs"]
    assert cache.manifest["cleaning"]["detrend"] and cache.manifest["cleaning"]["high_pass_hz"]
    if layout == "raw":
        assert source["entities"]["acq"] == "dico" and "_acq-dico_" in runs[0]["source"]
    if layout == "fmriprep":
        assert runs[0]["cleaning"]["confounds_file"].endswith("_desc-confounds_timeseries.tsv")
        assert "trans_x" in runs[0]["cleaning"]["confound_columns"]
    if layout == "derivative":
        return  # training on the derivative layout is what test_pipeline.py does end to end
    code = main(
        [
            "train",
            "--cache",
            str(tmp_path / "cache"),
            "--registry",
            str(tmp_path / "reg"),
            "--design",
            "cross-subject",
            "--epochs",
            "1",
            "--n-folds",
            "2",
            "--permutations",
            "20",
            "--no-saliency",
            "--no-baseline",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    (headline,) = out["results"]
    assert headline["design"] == "cross-subject" and headline["n_volumes"] > 0


def test_raw_layout_without_acq_names_the_clash(cohorts, tmp_path, capsys):
    assert _prepare(cohorts["raw"], tmp_path / "cache") != 0
    err = capsys.readouterr().err
    assert "differ in acq (dico, raw): choose one with --acq" in err
    assert not (tmp_path / "cache").exists()


def test_two_fmriprep_spaces_without_space_are_refused(cohorts, tmp_path, capsys):
    cohort = tmp_path / "fmriprep"
    shutil.copytree(cohorts["fmriprep"], cohort)
    for bold in cohort.glob(
        "sub-*/ses-*/func/*_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    ):
        shutil.copy(bold, bold.with_name(bold.name.replace("MNI152NLin2009cAsym", "T1w")))
    assert _prepare(cohort, tmp_path / "cache") != 0
    err = capsys.readouterr().err
    assert "differ in space (MNI152NLin2009cAsym, T1w): choose one with --space" in err
    assert _prepare(cohort, tmp_path / "cache", "--space", "T1w") == 0


def test_a_missing_or_short_confounds_table_names_the_file(cohorts, tmp_path):
    cohort = tmp_path / "fmriprep"
    shutil.copytree(cohorts["fmriprep"], cohort)
    options = PrepareOptions(confounds="motion")
    table = cohort / f"{FUNC}_run-03_desc-confounds_timeseries.tsv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:-5]) + "\n")
    with pytest.raises(DataError) as err:
        prepare_cache(cohort, cohort / "annotations" / "raw", tmp_path / "c", options=options)
    assert f"{table} has {len(lines) - 6} rows but" in str(err.value)
    assert "one row per volume" in str(err.value)
    table.unlink()
    with pytest.raises(DataError) as err:
        prepare_cache(cohort, cohort / "annotations" / "raw", tmp_path / "c", options=options)
    message = str(err.value)
    assert "run-03_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz" in message
    assert "_run-03_desc-confounds_timeseries.tsv" in message and "--confounds" in message
    assert not (tmp_path / "c").exists()


def test_regressing_motion_confounds_recovers_the_motion_free_data(cohorts, tmp_path):
    # The same people scanned without head motion ('still') are the truth: the motion noise in
    # the 'fmriprep' cohort comes from its own random stream, everything else is identical.
    def cache(name: str, confounds: str | None):
        return prepare_cache(
            cohorts[name],
            cohorts[name] / "annotations" / "raw",
            tmp_path / f"{name}-{confounds}",
            options=PrepareOptions(confounds=confounds),
            subjects=["01"],
        )

    truth = cache("still", "motion")
    inside = truth.mask

    def error(c) -> float:
        a = np.asarray(c.array("01"), np.float32)[:, inside]
        b = np.asarray(truth.array("01"), np.float32)[:, inside]
        return float(np.mean((a - b) ** 2))

    without, regressed = error(cache("fmriprep", None)), error(cache("fmriprep", "motion"))
    assert regressed < 0.6 * without, (regressed, without)
