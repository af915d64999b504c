"""The synthetic cohort in its three layouts (derivative, raw, fmriprep), head motion and drift."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from emocore.cli import main
from emocore.constants import EMOTIONS, RUN_N_VOLUMES, bold_filename
from emocore.data.synthetic import SynthConfig, generate_cohort, grid_for
from emocore.data.synthetic.signal import motion_traces as _motion_traces
from emocore.errors import ConfigError

TINY = SynthConfig(n_subjects=1, grid_mm=12.0)  # 13 x 18 x 5 voxels, 8 runs
FUNC = "sub-01/ses-forrestgump/func/sub-01_ses-forrestgump_task-forrestgump"
SPACE = "space-MNI152NLin2009cAsym"
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
RUNS = range(1, 9)


def raw_bold(run: int, acq: str = "dico") -> str:
    return f"{FUNC}_acq-{acq}_run-{run:02d}_bold.nii.gz"


def preproc(run: int) -> str:
    return f"{FUNC}_run-{run:02d}_{SPACE}_desc-preproc_bold.nii.gz"


def confounds(run: int) -> str:
    return f"{FUNC}_run-{run:02d}_desc-confounds_timeseries.tsv"


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """The cohorts the tests compare; about 1 s each on 2 cores."""
    root = tmp_path_factory.mktemp("layouts")
    configs = {
        "default": TINY,  # derivative, motion 0, drift 1 (with shared 0: earlier versions' data)
        "derivative": TINY.replace(motion=1.0),
        "raw": TINY.replace(layout="raw", motion=1.0),
        "fmriprep": TINY.replace(layout="fmriprep"),  # motion 1 by default
        "still": TINY.replace(layout="fmriprep", motion=0.0, drift=1.0),
        "drifting": TINY.replace(drift=4.0),
    }
    return {name: generate_cohort(root / name, cfg) for name, cfg in configs.items()}


def data(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def shared_files() -> set[str]:
    """annotations/, ground_truth/ and the dataset's description: the same in every layout."""
    observers = [f"av1o{i:02d}" for i in range(1, 10)] + [f"ao1o{i:02d}" for i in range(1, 4)]
    out = {"dataset_description.json", "README", "annotations/movie_scenes.csv"}
    out |= {f"annotations/raw/{o}.csv" for o in observers}
    out |= {f"ground_truth/{n}" for n in ("episodes.tsv", "cohort.json", "brain_mask.nii.gz")}
    out |= {f"ground_truth/patterns/{e}.nii.gz" for e in EMOTIONS}
    out |= {f"ground_truth/shared/{n}" for n in ("map.nii.gz", "sub-01_map.nii.gz", "envelope.tsv")}
    return out | {f"ground_truth/patterns/sub-01_{e}.nii.gz" for e in EMOTIONS}


# -- file names ----------------------------------------------------------------------------------
def test_each_layout_writes_bids_names_and_the_same_shared_folders(made):
    assert files(made["derivative"]) == shared_files() | {bold_filename("01", r) for r in RUNS}
    raw = {raw_bold(r, acq) for r in RUNS for acq in ("dico", "raw")}
    raw |= {n.replace(".nii.gz", ".json") for n in raw}
    assert files(made["raw"]) == shared_files() | raw
    prep = {preproc(r) for r in RUNS} | {confounds(r) for r in RUNS}
    prep |= {preproc(r).replace(".nii.gz", ".json") for r in RUNS}
    prep |= {confounds(r).replace(".tsv", ".json") for r in RUNS}
    prep |= {f"{FUNC}_run-{r:02d}_{SPACE}_desc-brain_mask.nii.gz" for r in RUNS}
    assert files(made["fmriprep"]) == shared_files() | prep

    for layout in ("derivative", "raw", "fmriprep"):
        meta = json.loads((made[layout] / "ground_truth/cohort.json").read_text())
        assert meta["layout"] == meta["config"]["layout"] == layout
    sidecar = json.loads((made["raw"] / raw_bold(3, "raw").replace(".nii.gz", ".json")).read_text())
    assert sidecar == {"RepetitionTime": 2.0, "TaskName": "forrestgump"}
    desc = json.loads((made["fmriprep"] / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "emocore"
    assert (
        json.loads((made["raw"] / "dataset_description.json").read_text())["DatasetType"] == "raw"
    )
    mask = data(made["fmriprep"] / f"{FUNC}_run-05_{SPACE}_desc-brain_mask.nii.gz")
    assert np.array_equal(mask, data(made["fmriprep"] / "ground_truth/brain_mask.nii.gz"))


# -- the same data in every layout ---------------------------------------------------------------
def test_bold_is_the_same_in_every_layout_and_acq_raw_is_shifted(made):
    shape, affine = grid_for(TINY.grid_mm)
    for r in RUNS:
        deriv = data(made["derivative"] / bold_filename("01", r))
        assert deriv.shape == (*shape, RUN_N_VOLUMES[r - 1])
        assert np.array_equal(data(made["raw"] / raw_bold(r)), deriv)
        assert np.array_equal(data(made["fmriprep"] / preproc(r)), deriv)
        moved = data(made["raw"] / raw_bold(r, "raw"))  # one voxel further along y
        assert not np.array_equal(moved, deriv)
        assert np.array_equal(moved[:, 1:], deriv[:, :-1])
    img = nib.load(made["fmriprep"] / preproc(2))
    assert np.allclose(img.affine, affine) and img.header.get_zooms()[3] == 2.0


def test_motion_zero_and_drift_one_give_the_data_of_earlier_versions(made):
    mask = data(made["default"] / "ground_truth/brain_mask.nii.gz") > 0
    for r in RUNS:  # the fmriprep layout draws motion traces, from their own stream
        before = data(made["default"] / bold_filename("01", r))
        assert np.array_equal(data(made["still"] / preproc(r)), before)
        moving = data(made["derivative"] / bold_filename("01", r))  # motion 1: more than rounding
        assert np.abs(moving.astype(float) - before)[mask].mean() > 2.0


def test_drift_scales_only_the_slow_drift(made):
    mask = data(made["default"] / "ground_truth/brain_mask.nii.gz") > 0
    for r in (1, 7):
        base = data(made["default"] / bold_filename("01", r)).astype(float)
        more = data(made["drifting"] / bold_filename("01", r)).astype(float)
        change = (more - base)[mask].mean(0) / base[mask].mean()  # 3x the drift, in every voxel
        t = np.linspace(0.0, 1.0, len(change))
        slow = np.column_stack([np.cos(np.pi * k * t) for k in range(4)])
        fit = slow @ np.linalg.lstsq(slow, change, rcond=None)[0]
        assert np.std(change) > 0.003  # at least 0.3 % signal
        assert 1 - np.var(change - fit) / np.var(change) > 0.99


# -- fMRIPrep confounds --------------------------------------------------------------------------
def test_nilearn_load_confounds_reads_the_table(made):
    from nilearn.interfaces.fmriprep import load_confounds

    for r in (1, 8):
        img = str(made["fmriprep"] / preproc(r))
        table, sample_mask = load_confounds(
            img, strategy=("motion", "wm_csf", "high_pass"), motion="full", wm_csf="full"
        )
        assert sample_mask is None and len(table) == RUN_N_VOLUMES[r - 1]
        assert {f"{m}_derivative1_power2" for m in MOTION} <= set(table.columns)
        assert {"csf_power2", "white_matter_derivative1", "cosine00"} <= set(table.columns)
        assert table.shape[1] == 24 + 8 + int(2 * RUN_N_VOLUMES[r - 1] * 2.0 / 128) - 1
        assert np.isfinite(table.to_numpy()).all()
        full, sample_mask = load_confounds(
            img,
            strategy=("motion", "wm_csf", "global_signal", "high_pass", "scrub"),
            motion="full",
            wm_csf="full",
            global_signal="full",
        )
        assert sample_mask is None and "global_signal_power2" in full.columns
    raw = pd.read_csv(made["fmriprep"] / confounds(4), sep="\t")
    assert len(raw) == RUN_N_VOLUMES[3]
    assert raw["trans_x_derivative1"].isna().sum() == 1 == raw["framewise_displacement"].isna()[0]
    assert 0.05 < raw["framewise_displacement"].median() < 0.3  # mm, like a still adult
    assert 0.05 < raw[MOTION[:3]].to_numpy().std() < 0.5  # mm
    assert not [c for c in raw.columns if "non_steady_state" in c]


def removed_share(y: np.ndarray, base: np.ndarray, extra: np.ndarray) -> float:
    """Share of the variance left after ``base`` (OLS) that ``extra`` removes."""
    left = y - base @ np.linalg.lstsq(base, y, rcond=None)[0]
    both = np.column_stack([base, extra])
    rest = y - both @ np.linalg.lstsq(both, y, rcond=None)[0]
    return 1.0 - float((rest**2).sum() / (left**2).sum())


@pytest.mark.parametrize(("cohort", "low", "high"), [("fmriprep", 3.0, np.inf), ("still", 0, 1.5)])
def test_motion_regressors_explain_the_motion_noise(made, cohort, low, high):
    """Beyond the high-pass filter, the six motion traces remove several times the variance that
    six random traces of the same smoothness remove; without motion noise, no more."""
    root = made[cohort]
    mask = data(root / "ground_truth/brain_mask.nii.gz") > 0
    true, chance = [], []
    for r in (1, 2, 3):
        y = data(root / preproc(r))[mask].T.astype(float)  # (volumes, in-brain voxels)
        table = pd.read_csv(root / confounds(r), sep="\t")
        base = np.column_stack([np.ones(len(y)), table.filter(like="cosine")])
        true.append(removed_share(y, base, table[MOTION].to_numpy()))
        for i in range(3):
            fake = _motion_traces(np.random.default_rng([99, r, i]), len(y)).T
            chance.append(removed_share(y, base, fake))
    ratio = np.mean(true) / np.mean(chance)
    assert low < ratio < high, (cohort, ratio, true, chance)
    if cohort == "fmriprep":
        assert np.mean(true) > 0.15


# -- options ---------------------------------------------------------------------------------------
def test_motion_default_follows_the_layout_and_is_recorded(made, capsys):
    assert SynthConfig().motion == 0.0 and SynthConfig(layout="raw").motion == 0.0
    prep = SynthConfig(layout="fmriprep")
    assert prep.motion == 1.0 and prep.to_dict()["motion"] == 1.0
    assert "_motion_defaulted" not in prep.to_dict()
    assert prep.replace(layout="raw").motion == 0.0  # a defaulted motion follows the layout
    assert SynthConfig(motion=0.5).replace(layout="fmriprep").motion == 0.5  # a chosen one stays
    assert prep == SynthConfig(layout="fmriprep", motion=1.0)
    # The CLI resolves the same way: this config is the fixture's, so nothing is written again.
    out = made["fmriprep"]
    argv = [
        "synth",
        "--out",
        str(out),
        "--layout",
        "fmriprep",
        "--subjects",
        "1",
        "--grid-mm",
        "12",
    ]
    assert main([*argv, "--json"]) == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert (cfg["layout"], cfg["motion"], cfg["drift"]) == ("fmriprep", 1.0, 1.0)


def test_cohorts_from_before_these_options_are_still_recognised(made, tmp_path):
    old = shutil.copytree(made["default"], tmp_path / "old")
    meta = json.loads((old / "ground_truth/cohort.json").read_text())
    for key in ("layout", "motion", "drift"):
        del meta["config"][key]
    (old / "ground_truth/cohort.json").write_text(json.dumps(meta))
    stamp = (old / "ground_truth/cohort.json").stat().st_mtime_ns
    assert generate_cohort(old, TINY) == old  # the same cohort: nothing to do
    assert (old / "ground_truth/cohort.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"layout": "fmriprap"},
            r"'layout' must be one of 'derivative', 'raw', 'fmriprep'; "
            r"'fmriprap' was provided; did you mean 'fmriprep'\?",
        ),
        ({"layout": "bids"}, r"'layout' must be one of .*; 'bids' was provided$"),
        ({"motion": -1.0}, r"'motion' must be between 0 and 100 .*; -1\.0 was given"),
        ({"drift": -0.5}, r"'drift' must be between 0 and 100 .*; -0\.5 was given"),
    ],
)
def test_bad_options_name_the_option_and_the_allowed_values(options, message):
    with pytest.raises(ConfigError, match=message):
        SynthConfig(**options)


def test_cli_rejects_an_unknown_layout(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["synth", "--out", str(tmp_path / "c"), "--layout", "bids"])
    assert exit_.value.code == 2
    assert "invalid choice: 'bids' (choose from 'derivative', 'raw', 'fmriprep')" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "c").exists()
