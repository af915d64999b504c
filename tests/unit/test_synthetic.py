"""The synthetic cohort: layout, headers, determinism, ground truth, labels and difficulty."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from emocore.constants import (
    EMOTIONS,
    FULL_GRID_SHAPE,
    RUN_N_VOLUMES,
    RUN_STARTS_S,
    bold_filename,
)
from emocore.data.bids import discover_dataset
from emocore.data.labels import COLUMNS, build_volume_labels, label_counts, load_annotations
from emocore.data.synthetic import SynthConfig, generate_cohort, grid_for
from emocore.data.synthetic.movie import emotion_regressors as _regressors
from emocore.errors import ConfigError, DataError

TINY = SynthConfig(n_subjects=3, grid_mm=12.0)  # 13 x 18 x 5 voxels
REAL_COUNTS = {"HAPPINESS": 218, "FEAR": 170, "SADNESS": 243, "LOVE": 105, "ANGER": 80}
OBSERVERS = [f"av1o{i:02d}" for i in range(1, 10)] + [f"ao1o{i:02d}" for i in range(1, 4)]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return generate_cohort(tmp_path_factory.mktemp("synth") / "cohort", TINY)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """One person, same seed and grid as TINY: must equal TINY's sub-01."""
    return generate_cohort(tmp_path_factory.mktemp("single") / "c", TINY.replace(n_subjects=1))


def bold(root: Path, subject: str, run: int) -> np.ndarray:
    return np.asarray(nib.load(root / bold_filename(subject, run)).dataobj)


def volume_truth(root: Path, lag_s: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """True class index (-1 = none) of every volume at ``movie time - lag``, and its run (0-7)."""
    episodes = pd.read_csv(root / "ground_truth/episodes.tsv", sep="\t")
    run = np.repeat(np.arange(8), RUN_N_VOLUMES)
    start = np.cumsum([0, *RUN_N_VOLUMES])[:-1]
    t = np.repeat(RUN_STARTS_S, RUN_N_VOLUMES) + 2.0 * (np.arange(len(run)) - start[run]) - lag_s
    y = np.full(len(t), -1)
    for ep in episodes.itertuples():
        y[(t >= ep.onset) & (t < ep.onset + ep.duration)] = EMOTIONS.index(ep.emotion)
    return y, run


# -- grid and layout -----------------------------------------------------------------------------
def test_grid_sizes_and_affine():
    assert grid_for(7.2)[0] == (22, 29, 8)
    assert grid_for(1.2)[0] == FULL_GRID_SHAPE
    full = SynthConfig.full_size()
    assert (full.n_subjects, grid_for(full.grid_mm)[0]) == (20, FULL_GRID_SHAPE)
    assert full.atypical_subjects == ["18"]
    shape, affine = grid_for(7.2)
    assert np.allclose(np.diag(affine), [7.2, 7.2, 7.2, 1.0])
    corner = affine @ [0, 0, 0, 1]
    far = affine @ [*(np.asarray(shape) - 1), 1]
    assert np.allclose(corner[:3] - 3.6, (-79.2, -122.0, -34.0))
    assert np.allclose(far[:3] + 3.6, (79.2, 86.8, 23.6))


def test_layout_is_exactly_ds000113_plus_annotations_and_ground_truth(cohort: Path):
    found = {p.relative_to(cohort).as_posix() for p in cohort.rglob("*") if p.is_file()}
    subjects = ["01", "02", "03"]
    expected = {"dataset_description.json", "README", "annotations/movie_scenes.csv"}
    expected |= {f"annotations/raw/{o}.csv" for o in OBSERVERS}
    expected |= {bold_filename(s, r) for s in subjects for r in range(1, 9)}
    gt = "ground_truth"
    expected |= {f"{gt}/episodes.tsv", f"{gt}/cohort.json", f"{gt}/brain_mask.nii.gz"}
    expected |= {f"{gt}/patterns/{e}.nii.gz" for e in EMOTIONS}
    expected |= {f"{gt}/patterns/sub-{s}_{e}.nii.gz" for s in subjects for e in EMOTIONS}
    expected |= {f"{gt}/shared/map.nii.gz", f"{gt}/shared/envelope.tsv"}  # the shared response
    expected |= {f"{gt}/shared/sub-{s}_map.nii.gz" for s in subjects}
    assert found == expected
    assert not [p for p in cohort.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_bold_headers_and_discovery(cohort: Path):
    shape, affine = grid_for(TINY.grid_mm)
    ds = discover_dataset(cohort)
    assert ds.layout == "ds000113-derivative" and ds.subject_labels == ["01", "02", "03"]
    assert not ds.warnings
    for r in ds.get("02").runs:
        img = nib.load(r.path)
        assert img.shape == (*shape, RUN_N_VOLUMES[r.run - 1])
        assert img.header.get_zooms()[3] == 2.0 and r.tr == 2.0
        assert img.header.get_xyzt_units() == ("mm", "sec")
        assert np.allclose(img.affine, affine)
    data = bold(cohort, "01", 1)
    mask = nib.load(cohort / "ground_truth/brain_mask.nii.gz").get_fdata() > 0
    assert 400 < data[mask].mean() < 1200 and data[~mask].mean() < 150


def test_metadata_describes_the_cohort(cohort: Path):
    desc = json.loads((cohort / "dataset_description.json").read_text())
    assert "synthetic" in desc["Name"] and desc["GeneratedBy"][0]["Name"] == "emocore"
    assert desc["emocore_synthetic_config"] == TINY.to_dict()
    meta = json.loads((cohort / "ground_truth/cohort.json").read_text())
    assert meta["config"] == TINY.to_dict() and meta["atypical"] == ["03"]
    assert [s for s, v in meta["subjects"].items() if v["atypical"]] == ["03"]
    fear = meta["subjects"]["01"]["patterns"]["FEAR"]
    assert len(fear["shift_mm"]) == 3 and fear["gain"] > 0


# -- ground truth ----------------------------------------------------------------------------------
def test_ground_truth_maps_share_the_bold_grid(cohort: Path):
    ref = nib.load(cohort / bold_filename("01", 1))
    paths = sorted((cohort / "ground_truth/patterns").glob("*.nii.gz"))
    assert len(paths) == 5 * 4
    for p in [*paths, cohort / "ground_truth/brain_mask.nii.gz"]:
        img = nib.load(p)
        assert img.shape == ref.shape[:3] and np.allclose(img.affine, ref.affine), p.name
    mask = nib.load(cohort / "ground_truth/brain_mask.nii.gz").get_fdata()
    assert set(np.unique(mask)) == {0.0, 1.0}
    for e in EMOTIONS:
        p = nib.load(cohort / f"ground_truth/patterns/{e}.nii.gz").get_fdata()
        assert p.max() == pytest.approx(1.0) and (p[mask == 0] == 0).all()


def test_episodes_do_not_overlap_and_have_real_shares(cohort: Path):
    ep = pd.read_csv(cohort / "ground_truth/episodes.tsv", sep="\t")
    assert list(ep.columns) == ["onset", "duration", "emotion"]
    assert (ep.onset.iloc[1:].to_numpy() >= (ep.onset + ep.duration).iloc[:-1].to_numpy()).all()
    assert ep.duration.between(4, 40).all() and 7 <= ep.duration.median() <= 13
    assert ep.onset.min() >= 0 and (ep.onset + ep.duration).max() <= 7086
    y, _ = volume_truth(cohort, lag_s=0.0)
    for i, e in enumerate(EMOTIONS):
        assert abs((y == i).sum() - REAL_COUNTS[e]) <= 0.2 * REAL_COUNTS[e], e


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_atypical_love_looks_like_sadness(cohort: Path):
    def pattern(name: str) -> np.ndarray:
        return nib.load(cohort / f"ground_truth/patterns/{name}.nii.gz").get_fdata()

    love = pattern("LOVE")
    for subject, atypical in (("01", False), ("02", False), ("03", True)):
        own_love, own_sad = pattern(f"sub-{subject}_LOVE"), pattern(f"sub-{subject}_SADNESS")
        looks_sad = correlation(own_love, own_sad) > correlation(own_love, love)
        assert looks_sad == atypical, subject


# -- determinism and signal ----------------------------------------------------------------------
def test_same_seed_same_files_and_people_are_independent(cohort: Path, single: Path, tmp_path):
    again = generate_cohort(tmp_path / "again", TINY.replace(n_subjects=1))
    for root in (again, cohort):  # TINY's sub-01 does not depend on how many others were made
        assert np.array_equal(bold(root, "01", 3), bold(single, "01", 3))
        for name in ("annotations/raw/av1o05.csv", "ground_truth/episodes.tsv"):
            assert (root / name).read_bytes() == (single / name).read_bytes()
    other = generate_cohort(tmp_path / "other", TINY.replace(n_subjects=1, seed=1))
    assert not np.array_equal(bold(other, "01", 3), bold(single, "01", 3))
    assert (other / "ground_truth/episodes.tsv").read_text() != (
        single / "ground_truth/episodes.tsv"
    ).read_text()


def test_signal_zero_leaves_no_emotion_signal(single: Path, tmp_path):
    quiet = generate_cohort(tmp_path / "quiet", TINY.replace(n_subjects=1, signal=0.0))
    regs = _regressors(pd.read_csv(single / "ground_truth/episodes.tsv", sep="\t"))
    mask = nib.load(single / "ground_truth/brain_mask.nii.gz").get_fdata() > 0

    def series(root: Path) -> np.ndarray:
        return np.concatenate([bold(root, "01", r) for r in range(1, 9)], axis=-1).astype(float)

    loud, silent = series(single), series(quiet)
    for i, e in enumerate(EMOTIONS):
        p = nib.load(single / f"ground_truth/patterns/sub-01_{e}.nii.gz").get_fdata()
        peak = p > 0.8 * p.max()
        for data, low, high in ((loud, 0.2, 1.0), (silent, -0.1, 0.1)):
            r = correlation(data[peak].mean(0) - data[mask].mean(0), regs[i])
            assert low < r < high, (e, r)
        # The same noise in both: the difference is the emotion response alone.
        assert correlation((loud - silent)[peak].mean(0), regs[i]) > 0.99
    assert np.abs(loud - silent)[~mask].max() == 0


# -- options and re-runs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_subjects": 0}, r"'n_subjects' must be an integer in 1\.\.99; 0 was given"),
        ({"grid_mm": 0.5}, r"'grid_mm' must be between 1\.0 and 20\.0 \(mm\); 0\.5 was given"),
        ({"signal": -1.0}, r"'signal' must be between 0 and 100 .*; -1\.0 was given"),
        ({"noise": -0.1}, r"'noise' must be .*; -0\.1 was given"),
        ({"seed": -3}, r"'seed' must be an integer >= 0; -3 was given"),
        ({"amplitude": 0.0}, r"'amplitude' must be .*; 0\.0 was given"),
        ({"n_subjects": 2, "atypical": ("05",)}, r"'atypical' must be .*01\.\.02; \['05'\]"),
    ],
)
def test_config_errors_name_option_range_and_value(options, message):
    with pytest.raises(ConfigError, match=message):
        SynthConfig(**options)


def test_config_is_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        SynthConfig(3)  # type: ignore[misc]
    cfg = SynthConfig()
    with pytest.raises(AttributeError):
        cfg.seed = 2  # type: ignore[misc]
    assert (cfg.n_subjects, cfg.grid_mm, cfg.seed, cfg.signal, cfg.noise) == (4, 7.2, 0, 1.0, 1.0)
    assert cfg.atypical_subjects == ["04"] and SynthConfig(n_subjects=1).atypical_subjects == []


def test_rerun_is_a_no_op_and_another_config_needs_overwrite(single: Path, caplog):
    stamp = (single / "ground_truth/cohort.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="emocore.data.synthetic"):
        assert generate_cohort(single, TINY.replace(n_subjects=1)) == single
    assert "nothing to do" in caplog.text
    assert (single / "ground_truth/cohort.json").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match=r"another config; pass --overwrite .* another --out"):
        generate_cohort(single, TINY.replace(n_subjects=1, seed=5))


def test_overwrite_replaces_only_when_complete_and_never_foreign_folders(tmp_path):
    out = tmp_path / "c"
    first = TINY.replace(n_subjects=1)
    generate_cohort(out, first)
    calls: list[tuple[float, str]] = []
    generate_cohort(out, first.replace(seed=7), overwrite=True, progress=lambda *a: calls.append(a))
    meta = json.loads((out / "ground_truth/cohort.json").read_text())
    assert meta["config"]["seed"] == 7
    assert [c[0] for c in calls] == pytest.approx([i / 9 for i in range(1, 10)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(DataError, match="other files; choose another --out"):
        generate_cohort(foreign, first, overwrite=True)
    assert (foreign / "thesis.tex").exists()


# -- calibration: labels and difficulty ------------------------------------------------------------
def test_poster_labels_are_near_the_real_counts_and_match_the_episodes(cohort: Path):
    raw = cohort / "annotations/raw"
    av, ao = pd.read_csv(raw / "av1o02.csv"), pd.read_csv(raw / "ao1o01.csv")
    assert tuple(av.columns) == COLUMNS and tuple(ao.columns) == COLUMNS
    assert (av.start % 1 == 0).all() and (av.end > av.start).all() and (ao.start % 1 != 0).any()
    assert av.emotion.isna().mean() > 0.2  # rows without an emotion, as in the real files
    scenes = pd.read_csv(cohort / "annotations/movie_scenes.csv", header=None)
    assert 150 <= len(scenes) <= 260 and set(scenes[2]) == {"DAY", "NIGHT"}
    labels = build_volume_labels(load_annotations(cohort / "annotations"), lag_s=4.0)
    counts = label_counts(labels)
    for e, real in REAL_COUNTS.items():
        assert 0.6 * real <= counts[e] <= 1.4 * real, (e, counts[e])
    y, _ = volume_truth(cohort)
    truth = np.where(y >= 0, np.asarray(EMOTIONS, dtype=object)[y], "NONE")
    named = labels.label.to_numpy() != "NONE"
    assert (labels.label.to_numpy()[named] == truth[named]).mean() > 0.8


def test_decoding_difficulty_on_the_default_grid(tmp_path):
    """Linear decoding of the true episodes: clearly above chance, not perfect, ~0.2 without signal.

    Scratch result (4-person default cohort, leave-one-run-out, C=0.001): balanced accuracy
    0.58 / 0.68 / 0.74 / 0.62 per person, fear 0.69 vs love 0.46 on average; signal=0: 0.16-0.21.
    With the default shared response (0.8 %), on this test's 3 people: sub-01 0.554 and sub-02
    0.679 (0.576 and 0.685 at shared=0); the atypical person's LOVE decoded as SADNESS by the
    cross-person model 0.84 (0.86).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    cfg = SynthConfig(n_subjects=3)  # the default grid; sub-03 is atypical
    root = generate_cohort(tmp_path / "demo", cfg)
    quiet = generate_cohort(tmp_path / "quiet", cfg.replace(n_subjects=1, signal=0.0))
    mask = nib.load(root / "ground_truth/brain_mask.nii.gz").get_fdata() > 0
    y, run = volume_truth(root)
    keep = y >= 0

    def features(r: Path, subject: str) -> np.ndarray:
        runs = [bold(r, subject, k)[mask].T.astype(np.float32) for k in range(1, 9)]
        return np.concatenate([(x - x.mean(0)) / (x.std(0) + 1e-6) for x in runs])[keep]

    def model():
        lr = LogisticRegression(C=0.001, max_iter=200, tol=1e-3, class_weight="balanced")
        return make_pipeline(StandardScaler(), lr)

    def leave_one_run_out(x: np.ndarray) -> np.ndarray:
        pred = np.empty(len(x), int)
        for k in range(8):
            test = run[keep] == k
            pred[test] = model().fit(x[~test], y[keep][~test]).predict(x[test])
        return pred

    with threadpool_limits(1):  # BLAS threads make these small fits 20x slower on 2 cores
        x = {s: features(root, s) for s in ("01", "02", "03")}
        pred = leave_one_run_out(x["01"])
        noise_pred = leave_one_run_out(features(quiet, "01"))
        across = model().fit(np.concatenate([x["01"], x["02"]]), np.tile(y[keep], 2))
        atypical_pred = across.predict(x["03"])
    truth = y[keep]
    assert 0.45 <= balanced_accuracy_score(truth, pred) <= 0.85
    recall = {e: (pred[truth == i] == i).mean() for i, e in enumerate(EMOTIONS)}
    assert recall["FEAR"] > recall["LOVE"]
    assert balanced_accuracy_score(truth, noise_pred) < 0.3
    love = atypical_pred[truth == EMOTIONS.index("LOVE")]
    assert (love == EMOTIONS.index("SADNESS")).mean() > 0.4
