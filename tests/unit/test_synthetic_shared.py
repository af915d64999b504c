"""The synthetic cohort's shared response to the movie: the same time course in everyone, an
inter-subject correlation in the auditory cortex, per-person maps, an emotion share, options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.signal import clean

from emocore.cli import main
from emocore.constants import EMOTIONS, RUN_N_VOLUMES, TR_S, bold_filename
from emocore.data.synthetic import SynthConfig, generate_cohort
from emocore.data.synthetic.movie import emotion_regressors as _regressors
from emocore.errors import ConfigError, DataError

# 13 x 18 x 5 voxels; signal 0, so the emotion responses (shared by the timeline too) stay out
QUIET = SynthConfig(n_subjects=3, grid_mm=12.0, signal=0.0)
PEOPLE = QUIET.subjects


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """The same cohort with the default shared response and without; about 8 s on 2 cores."""
    root = tmp_path_factory.mktemp("shared")
    return {
        "on": generate_cohort(root / "on", QUIET),
        "off": generate_cohort(root / "off", QUIET.replace(shared=0.0)),
    }


def image(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)


def bold(root: Path, subject: str, run: int) -> np.ndarray:
    return image(root / bold_filename(subject, run))


def envelope(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "ground_truth/shared/envelope.tsv", sep="\t")


def cleaned(root: Path, subject: str, voxels: np.ndarray) -> np.ndarray:
    """(volume, voxel) time courses: each run detrended and high-passed at 1/128 Hz, as an ISC
    analysis of real data would."""
    runs = [bold(root, subject, r)[voxels].T for r in range(1, 9)]
    kw = {"detrend": True, "high_pass": 1 / 128, "t_r": TR_S, "standardize": None}
    return np.concatenate([clean(x, **kw) for x in runs])


def leave_one_out_isc(root: Path, *regions: np.ndarray) -> list[list[float]]:
    """Per region: each person's region-mean time course against the mean of the others'
    (the leave-one-out ISC of Nastase et al. 2019)."""
    both = np.any(regions, axis=0)
    data = {s: cleaned(root, s, both) for s in PEOPLE}
    out = []
    for region in regions:
        mean = {s: x[:, region[both]].mean(axis=1) for s, x in data.items()}
        others = {s: np.mean([mean[o] for o in PEOPLE if o != s], axis=0) for s in PEOPLE}
        out.append([float(np.corrcoef(mean[s], others[s])[0, 1]) for s in PEOPLE])
    return out


# -- the same time course in everyone ------------------------------------------------------------
def test_shared_response_is_one_movie_time_course_in_everyone(made):
    env = envelope(made["on"])
    assert len(env) == sum(RUN_N_VOLUMES)
    assert env.envelope.mean() == pytest.approx(0, abs=1e-4)
    assert env.envelope.std() == pytest.approx(1, abs=1e-3)
    # The 16-s run overlaps repeat movie time, and with it the same envelope value.
    again = env[env.duplicated("movie_time_s", keep=False)].groupby("movie_time_s").envelope
    assert again.size().min() == 2 and len(again.size()) == 7 * 8
    assert (again.max() - again.min()).max() == 0
    # The noise is the same with and without the shared response, so the difference is it alone:
    # in each person, at each voxel of their map, times shared * map.
    for subject in PEOPLE:
        own = image(made["on"] / f"ground_truth/shared/sub-{subject}_map.nii.gz")
        peak = own > 0.5 * own.max()
        for run in (1, 2):  # run 1's last 8 volumes are run 2's first 8
            on, off = bold(made["on"], subject, run), bold(made["off"], subject, run)
            pct = 100 * (on - off)[peak] / off[peak].mean(axis=1, keepdims=True)
            course = env[env.run == run].envelope.to_numpy()
            slope = pct @ course / (course @ course)
            assert slope == pytest.approx(QUIET.shared * own[peak], rel=0.05)
            assert min(np.corrcoef(p, course)[0, 1] for p in pct) > 0.97
        same = [bold(made["on"], subject, 1)[..., -8:], bold(made["on"], subject, 2)[..., :8]]
        shared_part = [same[0] - bold(made["off"], subject, 1)[..., -8:]]
        shared_part += [same[1] - bold(made["off"], subject, 2)[..., :8]]
        assert np.abs(shared_part[0] - shared_part[1]).max() <= 1  # int16 rounding


def test_shared_zero_changes_nothing_else(made):
    """``shared=0`` adds nothing and draws nothing: its noise, patterns, annotations and
    episodes are those of the default cohort (and of cohorts made before the option)."""
    on, off = made["on"], made["off"]
    assert not (off / "ground_truth/shared").exists()
    for name in ("ground_truth/episodes.tsv", "annotations/raw/av1o03.csv"):
        assert (on / name).read_bytes() == (off / name).read_bytes()
    for e in EMOTIONS:
        name = f"ground_truth/patterns/sub-02_{e}.nii.gz"
        assert np.array_equal(image(on / name), image(off / name))
    outside = image(on / "ground_truth/shared/map.nii.gz") == 0  # no shared response there
    outside &= image(on / "ground_truth/shared/sub-02_map.nii.gz") == 0
    assert np.array_equal(bold(on, "02", 5)[outside], bold(off, "02", 5)[outside])
    meta = json.loads((off / "ground_truth/cohort.json").read_text())
    assert meta["config"]["shared"] == 0.0 and meta["shared_response"]["strength_pct"] == 0.0


def test_cohorts_made_before_the_option_count_as_shared_zero(made, tmp_path):
    old = shutil.copytree(made["off"], tmp_path / "old")
    meta = json.loads((old / "ground_truth/cohort.json").read_text())
    del meta["config"]["shared"], meta["config"]["shared_emotion"]
    (old / "ground_truth/cohort.json").write_text(json.dumps(meta))
    assert generate_cohort(old, QUIET.replace(shared=0.0)) == old  # the same cohort
    with pytest.raises(DataError, match="another config"):  # the default now differs
        generate_cohort(old, QUIET)


# -- inter-subject correlation -------------------------------------------------------------------
def test_auditory_cortex_correlates_across_people_only_with_the_shared_response(made):
    cohort_map = image(made["on"] / "ground_truth/shared/map.nii.gz")
    brain = image(made["on"] / "ground_truth/brain_mask.nii.gz") > 0
    auditory, elsewhere = cohort_map > 0.5, brain & (cohort_map < 0.02)
    (on, rest), (off,) = (
        leave_one_out_isc(made["on"], auditory, elsewhere),
        leave_one_out_isc(made["off"], auditory),
    )
    # Measured 0.52-0.54 with the default, 0.04-0.05 without; elsewhere 0.04-0.08.
    assert min(on) > 0.35 and max(np.abs(off)) < 0.15
    assert min(on) > max(off) + 0.3
    assert max(np.abs(rest)) < 0.15


def test_each_person_has_their_own_map(made):
    meta = json.loads((made["on"] / "ground_truth/cohort.json").read_text())
    shared = meta["shared_response"]
    assert shared["strength_pct"] == QUIET.shared and shared["emotion_share"] == 0.0
    cohort_map = image(made["on"] / "ground_truth/shared/map.nii.gz")
    assert cohort_map.max() == pytest.approx(1.0)
    maps = [image(made["on"] / f"ground_truth/shared/sub-{s}_map.nii.gz") for s in PEOPLE]
    for subject, own in zip(PEOPLE, maps, strict=True):
        made_as = meta["subjects"][subject]["shared"]
        assert len(made_as["shift_mm"]) == 3 and any(made_as["shift_mm"])
        assert own.max() == pytest.approx(made_as["gain"], rel=0.05)  # the peak, times the gain
        assert 0.8 < np.corrcoef(own.ravel(), cohort_map.ravel())[0, 1] < 0.9999
    assert len({m["shared"]["gain"] for m in meta["subjects"].values()}) == len(PEOPLE)
    assert not np.allclose(maps[0], maps[1])


# -- the emotion share ---------------------------------------------------------------------------
def test_shared_emotion_makes_the_shared_response_follow_the_emotions(made, tmp_path):
    half = SynthConfig(n_subjects=1, grid_mm=12.0, shared_emotion=0.5)
    root = generate_cohort(tmp_path / "half", half)
    env = envelope(root)
    regressors = _regressors(pd.read_csv(root / "ground_truth/episodes.tsv", sep="\t"))
    plain = envelope(made["on"]).envelope.to_numpy()  # shared_emotion 0 (same seed)

    def r(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1])

    # About half its variance is the emotion mix (r ~ sqrt(0.5)); without it, chance alone.
    assert 0.6 < r(env.envelope, env.mix) < 0.8 and abs(r(plain, env.mix)) < 0.2
    louder = {e: r(env.envelope, regressors[i]) for i, e in enumerate(EMOTIONS)}
    assert louder["ANGER"] > 0.2 and louder["FEAR"] > 0.15
    assert louder["SADNESS"] < -0.15 and louder["LOVE"] < 0
    assert max(abs(r(plain, reg)) for reg in regressors) < 0.15
    meta = json.loads((root / "ground_truth/cohort.json").read_text())["shared_response"]
    assert meta["emotion_share"] == 0.5
    assert meta["envelope_vs_emotion_mix_r"] == pytest.approx(r(env.envelope, env.mix), abs=1e-3)
    # With no emotion signal, no emotion in the shared response either: the plain envelope.
    silent = generate_cohort(tmp_path / "silent", half.replace(signal=0.0))
    assert np.array_equal(envelope(silent).envelope.to_numpy(), plain)


# -- options -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shared": -0.5}, r"'shared' must be between 0 and 100 \(% signal SD.*; -0\.5 was given"),
        ({"shared": 101.0}, r"'shared' must be between 0 and 100 .*; 101\.0 was given"),
        ({"shared_emotion": 1.5}, r"'shared_emotion' must be between 0 and 1 .*; 1\.5 was given"),
        ({"shared_emotion": -0.1}, r"'shared_emotion' must be between 0 and 1"),
        (
            {"shared": 0.0, "shared_emotion": 0.3},
            r"'shared_emotion' 0\.3 has no effect with 'shared' 0 .*set 'shared' \(--shared\)",
        ),
    ],
)
def test_bad_shared_options_name_the_option(options, message):
    with pytest.raises(ConfigError, match=message):
        SynthConfig(**options)


def test_options_are_recorded_and_the_cli_sets_them(made, tmp_path, capsys):
    cfg = SynthConfig()
    assert (cfg.shared, cfg.shared_emotion) == (0.8, 0.0)
    assert {"shared": 0.8, "shared_emotion": 0.0}.items() <= cfg.to_dict().items()
    desc = json.loads((made["on"] / "dataset_description.json").read_text())
    assert desc["emocore_synthetic_config"]["shared"] == 0.8
    out = tmp_path / "c"
    argv = ["synth", "--out", str(out), "--subjects", "1", "--grid-mm", "12", "--json"]
    assert main([*argv, "--shared", "1.5", "--shared-emotion", "0.25"]) == 0
    printed = json.loads(capsys.readouterr().out)["config"]
    written = json.loads((out / "ground_truth/cohort.json").read_text())["config"]
    assert (printed["shared"], printed["shared_emotion"]) == (1.5, 0.25)
    assert written == printed
    assert main(["synth", "--out", str(tmp_path / "bad"), "--shared", "-1"]) != 0
    assert "--shared must be between 0 and 100" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
