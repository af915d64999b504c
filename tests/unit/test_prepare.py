from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import emocore.data.prepare as prep
from emocore.cli import main
from emocore.constants import RUN_N_VOLUMES, bold_filename
from emocore.data.cache import CACHE_FORMAT, open_cache
from emocore.data.prepare import PrepareOptions, prepare, prepare_cache
from emocore.data.prepare import volumes as prep_volumes
from emocore.errors import CacheError, ConfigError, DataError
from tests.conftest import SHAPE, write_run


@pytest.fixture
def built(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    cache = prepare_cache(root, ann, tmp_path / "cache")
    return root, ann, cache


def test_cache_layout_and_manifest(built):
    root, _, cache = built
    assert cache.subjects == ["01", "02"]
    assert cache.grid_shape == SHAPE
    m = cache.manifest
    assert m["cache_format"] == CACHE_FORMAT and m["emocore_version"]
    assert m["options"]["lag_s"] == 4.0 and m["options"]["recipe"] == "poster"
    assert [r["n_volumes"] for r in m["subjects"]["01"]["runs"]] == list(RUN_N_VOLUMES)
    assert m["subjects"]["01"]["runs"][2]["source"].endswith("run-03_bold.nii.gz")
    assert len(m["subjects"]["01"]["runs"][0]["fingerprint"]) == 64
    assert sum(m["labels"]["counts"].values()) == sum(RUN_N_VOLUMES)
    arr = cache.array("01")
    assert arr.dtype == np.float16 and arr.shape == (sum(RUN_N_VOLUMES), *SHAPE)
    assert isinstance(arr, np.memmap)
    description = json.loads((cache.path / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "emocore"
    assert description["SourceDatasets"][0]["URL"] == root.resolve().as_uri()
    assert "linear trend" in description["GeneratedBy"][0]["Description"]


def test_runs_are_zscored_inside_the_brain_and_zero_outside(built):
    _, _, cache = built
    arr = cache.array("02")
    span = cache.runs("02")[4]
    run = np.asarray(arr[span.start : span.start + span.n_volumes], dtype=np.float32)
    inside = cache.mask
    assert inside.sum() > 0 and not inside.all()
    assert np.abs(run[:, inside].mean(axis=0)).max() < 0.01
    assert np.allclose(run[:, inside].std(axis=0), 1.0, atol=0.01)
    assert np.all(run[:, ~inside] == 0)


def _cleaned(src: np.ndarray, **clean) -> np.ndarray:
    """nilearn.signal.clean's answer for every voxel of a 4-D run, z-scored per voxel."""
    from nilearn.signal import clean as nilearn_clean

    series = src.reshape(-1, src.shape[-1]).T
    out = nilearn_clean(series, standardize=None, t_r=2.0, filter="cosine", **clean)
    sd = out.std(axis=0)
    z = out / np.where(sd > 1e-9, sd, 1.0)
    return z.T.reshape(src.shape)


def test_random_access_matches_the_source_file(built):
    # The default cleaning is nilearn.signal.clean's detrend + 0.008-Hz cosine high-pass.
    root, _, cache = built
    src = nib.load(root / bold_filename("01", 3)).get_fdata()
    expected = np.where(cache.mask, _cleaned(src, detrend=True, high_pass=0.008)[..., 17], 0)
    got = cache.volume("01", 3, 17).astype(np.float32)
    assert got.shape == SHAPE
    assert np.allclose(got, expected, atol=0.01)
    table = cache.table(["01"])
    row = table[(table.run == 3) & (table.volume == 17)].iloc[0]
    assert np.array_equal(cache.read("01", [row["row"]])[0], cache.volume("01", 3, 17))
    m = cache.manifest
    assert m["cleaning"]["detrend"] is True and m["cleaning"]["high_pass_hz"] == 0.008
    assert m["subjects"]["01"]["runs"][2]["cleaning"]["n_regressors"] > 2


def test_without_cleaning_only_the_mean_is_removed(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    opts = PrepareOptions(detrend=False, high_pass=None)
    cache = prepare_cache(root, ann, tmp_path / "plain", options=opts, subjects=["01"])
    src = nib.load(root / bold_filename("01", 3)).get_fdata()
    mean, sd = src.mean(axis=-1), src.std(axis=-1)
    expected = np.where(cache.mask, (src[..., 17] - mean) / np.where(sd > 0, sd, 1), 0)
    assert np.allclose(cache.volume("01", 3, 17).astype(np.float32), expected, atol=0.01)
    assert cache.manifest["subjects"]["01"]["runs"][2]["cleaning"]["n_regressors"] == 1
    assert prep.cleaning_sentence(cache.manifest["options"]).startswith("mean removed only")
    # Turning drift removal on rebuilds the voxel data, and the checkpoints' key changes.
    cleaned = prepare_cache(root, ann, cache.path, subjects=["01"])
    assert cleaned.key != cache.key
    assert not np.allclose(cleaned.volume("01", 3, 17), cache.volume("01", 3, 17), atol=0.01)


def test_a_drift_removed_cache_has_no_slow_trend_left(tiny_dataset, tmp_path):
    # A strong linear drift in every voxel survives plain z-scoring but not the default cleaning.
    root, ann = tiny_dataset
    path = root / bold_filename("01", 2)
    img = nib.load(path)
    data = img.get_fdata()
    data += np.linspace(0, 30 * data.std(), data.shape[-1])
    nib.save(nib.Nifti1Image(data.astype(np.float32), img.affine, img.header), path)

    def trend(options):
        cache = prepare_cache(
            root,
            ann,
            tmp_path / str(len(list(tmp_path.iterdir()))),
            options=options,
            subjects=["01"],
        )
        span = cache.runs("01")[1]
        run = np.asarray(cache.array("01")[span.start : span.start + span.n_volumes], np.float32)
        inside = run[:, cache.mask]
        t = np.arange(len(run)) - (len(run) - 1) / 2
        return float(np.abs(np.corrcoef(t, inside.mean(axis=1))[0, 1]))

    assert trend(PrepareOptions(detrend=False, high_pass=None)) > 0.9
    assert trend(PrepareOptions()) < 0.05


def test_table_rows_carry_labels_and_scenes(built):
    _, _, cache = built
    t = cache.table()
    assert len(t) == 2 * sum(RUN_N_VOLUMES)
    assert {"subject", "row", "run", "volume", "movie_time", "label", "agreement", "scene"} <= set(
        t.columns
    )
    fear = t[(t.subject == "01") & (t.label == "FEAR")]
    # annotated 100-140 s, seen with a 4-s lag: volumes acquired 104..140 s
    assert fear.movie_time.min() >= 100 and fear.movie_time.max() <= 146 and len(fear) > 10


def test_rerun_with_same_inputs_is_a_no_op(built, tmp_path):
    root, ann, cache = built
    before = {p.name: p.stat().st_mtime_ns for p in cache.path.iterdir()}
    again = prepare_cache(root, ann, cache.path)
    after = {p.name: p.stat().st_mtime_ns for p in again.path.iterdir()}
    assert before == after


def test_new_lag_rewrites_only_the_labels(built):
    root, ann, cache = built
    data_mtime = (cache.path / "sub-01.npy").stat().st_mtime_ns
    again = prepare_cache(root, ann, cache.path, options=PrepareOptions(lag_s=0.0))
    assert (again.path / "sub-01.npy").stat().st_mtime_ns == data_mtime
    assert again.manifest["options"]["lag_s"] == 0.0
    fear = again.table(["01"]).query("label == 'FEAR'")
    assert fear.movie_time.min() == 100


def test_changed_source_rebuilds(built):
    root, ann, cache = built
    old_key = cache.manifest["volume_key"]
    write_run(root / bold_filename("02", 8), RUN_N_VOLUMES[7], seed=999)
    again = prepare_cache(root, ann, cache.path)
    assert again.manifest["volume_key"] != old_key


def test_resampling_to_a_coarser_grid(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    cache = prepare_cache(
        root, ann, tmp_path / "c6", options=PrepareOptions(grid_mm=6.0), subjects=["01"]
    )
    assert cache.grid_shape == (4, 4, 4)  # 21 x 24 x 27 mm at 6 mm
    assert np.allclose(np.diag(cache.affine)[:3], 6.0)


def test_old_cache_format_asks_for_a_rebuild(built):
    _, _, cache = built
    m = json.loads((cache.path / "manifest.json").read_text())
    m["cache_format"] = CACHE_FORMAT - 1
    m["emocore_version"] = "0.0.1"
    (cache.path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CacheError, match=r"made by emocore 0.0.1.*Rebuild it"):
        open_cache(cache.path)


def test_missing_cache_says_how_to_build(tmp_path):
    with pytest.raises(CacheError, match="emocore prepare"):
        open_cache(tmp_path / "none")


def test_unknown_subject_is_named(built):
    _, _, cache = built
    with pytest.raises(CacheError, match="subject '09' is not in the cache.*01, 02"):
        cache.array("09")


def test_truncated_gz_is_named_and_old_cache_survives(built):
    root, ann, cache = built
    path = root / bold_filename("01", 2)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"run-02_bold.nii.gz is truncated or corrupt"):
        prepare_cache(root, ann, cache.path)
    assert open_cache(cache.path).manifest["volume_key"] == cache.manifest["volume_key"]
    assert not list(cache.path.parent.glob("cache.partial-*"))


def test_nonfinite_values_error_or_zero(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    path = root / bold_filename("02", 7)
    img = nib.load(path)
    data = img.get_fdata(dtype=np.float32)
    data[3, 3, 3, 5] = np.nan
    data[2, 2, 2, 9] = np.inf
    nib.save(nib.Nifti1Image(data, img.affine, img.header), path)
    with pytest.raises(
        DataError,
        match=r"run-07_bold.nii.gz has 2 NaN/Inf voxel values in volume\(s\) 5, 9.*--nonfinite zero",
    ):
        prepare_cache(root, ann, tmp_path / "c")
    cache = prepare_cache(root, ann, tmp_path / "c", options=PrepareOptions(nonfinite="zero"))
    assert np.isfinite(cache.array("02")).all()


def test_option_errors_name_the_option():
    with pytest.raises(ConfigError, match="grid_mm"):
        PrepareOptions(grid_mm=0.01)
    with pytest.raises(ConfigError, match="'nonfinite' must be one of"):
        PrepareOptions(nonfinite="drop")
    with pytest.raises(ConfigError, match=r"--high-pass \(high_pass\) must be a cut-off in Hz"):
        PrepareOptions(high_pass=0.5)
    with pytest.raises(ConfigError, match="scrub.*drops volumes"):
        PrepareOptions(confounds="motion,scrub")
    with pytest.raises(ConfigError, match=r"must be a comma-separated list of \{motion"):
        PrepareOptions(confounds="motoin")


def test_killed_prepare_leaves_no_half_cache_and_rerun_recovers(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    cache_dir = tmp_path / "cache"
    code = (
        "import sys, time; import emocore.data.prepare as p, emocore.data.prepare.volumes as v\n"
        "orig = v._normalise_run\n"
        "def slow(*a, **k):\n    time.sleep(0.3); return orig(*a, **k)\n"
        "v._normalise_run = slow\n"
        f"p.prepare_cache({str(root)!r}, {str(ann)!r}, {str(cache_dir)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2])
    deadline = time.time() + 60
    while not list(tmp_path.glob("cache.partial-*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not cache_dir.exists(), "a killed prepare must not leave a cache folder"
    assert list(tmp_path.glob("cache.partial-*")), "the partial folder shows the job was mid-way"
    cache = prepare_cache(root, ann, cache_dir)
    assert cache.subjects == ["01", "02"]
    assert not list(tmp_path.glob("cache.partial-*"))


def test_refuses_to_write_over_a_foreign_folder(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(CacheError, match="is not an emocore cache"):
        prepare_cache(root, ann, foreign)
    assert (foreign / "holiday.jpg").read_bytes() == b"jpeg"


# -- adding people to an existing cache ---------------------------------------------------------
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(cache_dir: Path, subject: str) -> dict[str, str]:
    """Checksums of a person's array, their label-table rows, the mask and the label file."""
    cache = open_cache(cache_dir)
    rows = cache.table([subject]).to_csv(sep="\t", index=False).encode()
    return {
        "array": _sha(cache_dir / f"sub-{subject}.npy"),
        "rows": hashlib.sha256(rows).hexdigest(),
        "mask": _sha(cache_dir / "mask.npy"),
        "labels": _sha(cache_dir / "labels.tsv"),
        "entry": json.dumps(cache.manifest["subjects"][subject], sort_keys=True),
    }


@pytest.fixture
def one_person(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    cache = prepare_cache(root, ann, tmp_path / "cache", subjects=["01"])
    return root, ann, cache


def test_adding_a_person_streams_only_them_and_leaves_the_others_byte_identical(
    one_person, tmp_path, monkeypatch
):
    root, ann, cache = one_person
    before = _snapshot(cache.path, "01")
    inode = (cache.path / "sub-01.npy").stat().st_ino
    read = []
    real_read = prep_volumes._read_chunks

    def spy(run, chunk):
        read.append(run.subject)
        return real_read(run, chunk)

    monkeypatch.setattr(prep_volumes, "_read_chunks", spy)
    result = prepare(root, ann, cache.path)
    assert result.action == "added" and result.added == ("02",) and result.kept == ("01",)
    assert set(read) == {"02"}
    assert _snapshot(cache.path, "01") == before
    assert (cache.path / "sub-01.npy").stat().st_ino == inode  # left in place, not copied
    grown = open_cache(cache.path)
    assert grown.subjects == ["01", "02"]
    assert grown.array("02").shape == (sum(RUN_N_VOLUMES), *SHAPE)
    assert len(grown.table()) == 2 * sum(RUN_N_VOLUMES)
    # the same person and key as a build of both from scratch
    monkeypatch.setattr(prep_volumes, "_read_chunks", real_read)
    fresh = prepare_cache(root, ann, tmp_path / "fresh")
    assert np.array_equal(grown.array("02"), fresh.array("02"))
    assert grown.key == fresh.key
    # the key changed, but a run trained before the addition is still recognised
    assert grown.key != cache.key and grown.recognises(cache.key)
    assert grown.key_for(["01"]) == cache.key
    assert not grown.recognises("0" * 16 + "-" + "0" * 16)
    assert prepare(root, ann, cache.path).action == "unchanged"


def test_a_new_label_table_no_longer_recognises_the_old_key(one_person):
    root, ann, cache = one_person
    prepare(root, ann, cache.path)
    relabelled = prepare_cache(root, ann, cache.path, options=PrepareOptions(lag_s=0.0))
    assert relabelled.subjects == ["01", "02"]
    assert not relabelled.recognises(cache.key)


def test_subject_flag_keeps_people_it_does_not_name(built):
    root, ann, cache = built
    before = _snapshot(cache.path, "02")
    result = prepare(root, ann, cache.path, subjects=["01"])
    assert result.action == "unchanged" and result.not_requested == ("02",)
    assert result.cache.subjects == ["01", "02"] and _snapshot(cache.path, "02") == before
    # changing only the lag for one person rewrites the shared label table and still keeps sub-02
    again = prepare(root, ann, cache.path, subjects=["01"], options=PrepareOptions(lag_s=0.0))
    assert again.action == "relabelled" and again.cache.subjects == ["01", "02"]
    assert _snapshot(cache.path, "02")["array"] == before["array"]


def test_force_rebuilds_with_exactly_the_given_subjects(built):
    root, ann, cache = built
    result = prepare(root, ann, cache.path, subjects=["01"], force=True)
    assert result.action == "built" and result.dropped == ("02",)
    assert result.cache.subjects == ["01"] and not (cache.path / "sub-02.npy").exists()


def test_cli_prepare_says_who_was_added_kept_and_dropped(one_person, capsys):
    root, ann, cache = one_person
    base = ["prepare", "--bids", str(root), "--annotations", str(ann), "--cache", str(cache.path)]
    assert main([*base, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["subjects"] == ["01", "02"] and out["added"] == ["02"] and out["kept"] == ["01"]
    assert main([*base, "--subject", "01"]) == 0
    text = capsys.readouterr().out
    assert "kept although not requested: sub-02" in text and "--force" in text
    assert (
        "each run: linear trend, drift slower than 0.008 Hz (cosine) removed, then z-scored" in text
    )
    assert main([*base, "--subject", "01", "--force", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["subjects"] == ["01"] and out["dropped"] == ["02"]


def test_cli_force_help_says_it_keeps_exactly_the_given_subjects(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    assert "exactly the given subjects" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("options", "what"),
    [
        (PrepareOptions(lag_s=0.0), "lag_s 4.0 in the cache, 0.0 now"),
        (PrepareOptions(recipe="overlap"), "recipe 'poster' in the cache"),
        (PrepareOptions(grid_mm=6.0), "grid_mm None in the cache, 6.0 now"),
    ],
)
def test_adding_with_other_options_is_refused(one_person, options, what):
    root, ann, cache = one_person
    manifest = (cache.path / "manifest.json").read_bytes()
    with pytest.raises(ConfigError, match=rf"cannot add sub-02 .*{re.escape(what)}.*--force"):
        prepare_cache(root, ann, cache.path, options=options)
    assert (cache.path / "manifest.json").read_bytes() == manifest
    assert not (cache.path / "sub-02.npy").exists()


def test_adding_changed_annotations_is_refused(one_person):
    root, ann, cache = one_person
    path = ann / "av1o01.csv"
    path.write_text(path.read_text() + "3000.0,3010.0,FORREST,HIGH,NEG,SELF,FEAR,FACE,EMOFADED\n")
    with pytest.raises(ConfigError, match=r"av1o01.csv differ.*--force"):
        prepare_cache(root, ann, cache.path)


def test_adding_a_person_on_another_native_grid_is_refused(one_person):
    root, ann, cache = one_person
    for run, n in enumerate(RUN_N_VOLUMES, start=1):
        write_run(root / bold_filename("03", run), n, shape=(6, 8, 9), seed=30 + run)
    with pytest.raises(DataError, match=r"sub-03 .* grid \(6, 8, 9\).*--grid-mm and --force"):
        prepare_cache(root, ann, cache.path, subjects=["03"])
    assert open_cache(cache.path).subjects == ["01"]


def test_added_person_is_resampled_to_the_cache_grid(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    opts = PrepareOptions(grid_mm=6.0)
    cache = prepare_cache(root, ann, tmp_path / "c6", options=opts, subjects=["01"])
    mask = _sha(cache.path / "mask.npy")
    grown = prepare_cache(root, ann, cache.path, options=opts, subjects=["02"])
    assert grown.subjects == ["01", "02"] and grown.array("02").shape[1:] == (4, 4, 4)
    assert _sha(grown.path / "mask.npy") == mask  # the cache's mask stays the cache's mask
    assert 0 < grown.manifest["subjects"]["02"]["cache_mask_coverage"] <= 1


@pytest.mark.parametrize("step", ["volumes._normalise_run", "extend.atomic_write_json"])
def test_a_crash_while_adding_leaves_the_old_cache_intact(one_person, monkeypatch, step):
    root, ann, cache = one_person
    files = {p.name: _sha(p) for p in cache.path.iterdir()}

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(f"emocore.data.prepare.{step}", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_cache(root, ann, cache.path)
    assert {p.name: _sha(p) for p in cache.path.iterdir()} == files
    survivor = open_cache(cache.path)
    assert survivor.subjects == ["01"] and survivor.array("01").shape[0] == sum(RUN_N_VOLUMES)
    monkeypatch.undo()
    assert prepare_cache(root, ann, cache.path).subjects == ["01", "02"]


def test_arrays_left_by_a_killed_addition_are_removed(one_person):
    root, ann, cache = one_person
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    leftover = cache.path / f"sub-02.npy.partial-{int(dead.stdout)}"
    leftover.write_bytes(b"half an array")
    prepare_cache(root, ann, cache.path, subjects=["01"])  # nothing to add: still tidies up
    assert not leftover.exists()
