"""Each person's mean EPI in the cache: what it is, where it comes from, and caches without it."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_img

from emocore.constants import RUN_N_VOLUMES, bold_filename
from emocore.data.cache import open_cache, volume_key
from emocore.data.prepare import PrepareOptions, prepare, prepare_cache
from emocore.data.prepare.request import fingerprint
from tests.conftest import SHAPE


def _expected(root, subject: str, runs, cache) -> np.ndarray:
    """The mean over ``runs`` of each run's mean raw intensity on the cache's grid, worked out
    from the NIfTI files with nibabel and nilearn, independently of prepare."""
    means = []
    for run in runs:
        img = nib.load(root / bold_filename(subject, run))
        on_grid = resample_img(
            img,
            target_affine=cache.affine,
            target_shape=cache.grid_shape,
            interpolation="continuous",
            force_resample=True,
            copy_header=True,
        )
        means.append(np.asarray(on_grid.dataobj, dtype=np.float64).mean(axis=-1))
    return np.mean(means, axis=0)


def test_mean_epi_is_the_mean_of_the_raw_runs_and_an_old_cache_has_none(tiny_dataset, tmp_path):
    root, ann = tiny_dataset
    cache = prepare_cache(root, ann, tmp_path / "cache", subjects=["01"])
    epi = cache.mean_epi("01")
    assert epi is not None and epi.dtype == np.float32 and epi.shape == SHAPE
    raw = [
        np.asarray(nib.load(root / bold_filename("01", r)).dataobj, dtype=np.float64).mean(-1)
        for r in range(1, len(RUN_N_VOLUMES) + 1)
    ]
    assert np.allclose(epi, np.mean(raw, axis=0), rtol=1e-5, atol=1e-3)
    assert epi.max() > 900  # raw intensities (the "brain" box is ~1000), not z-scores
    entry = cache.manifest["subjects"]["01"]
    assert entry["mean_epi"] == "sub-01_mean-epi.npy"
    # the key covers only what models train on: computed from the sources as before
    fingerprints = [fingerprint(root / bold_filename("01", r)) for r in range(1, 9)]
    expected_key = volume_key(
        grid_mm=None,
        nonfinite="error",
        sources={"01": fingerprints},
        cleaning=PrepareOptions().cleaning,
    )
    assert cache.manifest["volume_key"] == expected_key
    key, array_mtime = cache.key, (cache.path / "sub-01.npy").stat().st_mtime_ns

    # a cache made before the mean EPI was stored: no file, no manifest entry
    (cache.path / "sub-01_mean-epi.npy").unlink()
    assert open_cache(cache.path).mean_epi("01") is None
    manifest = json.loads((cache.path / "manifest.json").read_text())
    del manifest["subjects"]["01"]["mean_epi"]
    (cache.path / "manifest.json").write_text(json.dumps(manifest))
    old = open_cache(cache.path)
    assert old.mean_epi("01") is None and old.key == key

    # re-running prepare stores it, and changes neither the arrays nor the key
    result = prepare(root, ann, cache.path, subjects=["01"])
    assert result.action == "unchanged"
    again = result.cache
    assert np.array_equal(again.mean_epi("01"), epi)
    assert again.key == key and again.key_for(["01"]) == key
    assert (cache.path / "sub-01.npy").stat().st_mtime_ns == array_mtime


@pytest.mark.filterwarnings("ignore:Resampling binary images")  # nilearn, on the blank run
def test_mean_epi_on_a_resampled_grid_skips_blank_runs_and_comes_with_added_people(
    tiny_dataset, tmp_path
):
    root, ann = tiny_dataset
    path = root / bold_filename("01", 2)
    img = nib.load(path)
    blank = nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine, img.header)
    nib.save(blank, path)  # a run with no signal: zeros in the cache, not in the mean EPI
    opts = PrepareOptions(grid_mm=6.0)
    cache = prepare_cache(root, ann, tmp_path / "c6", options=opts, subjects=["01"])
    assert cache.manifest["subjects"]["01"]["runs"][1]["blank"] == "zero"
    kept = [1, *range(3, len(RUN_N_VOLUMES) + 1)]
    epi = cache.mean_epi("01")
    assert epi is not None and epi.shape == cache.grid_shape == (4, 4, 4)
    assert np.allclose(epi, _expected(root, "01", kept, cache), rtol=1e-4, atol=1e-2)

    # adding a person to the cache stores theirs too, renamed into place with their array
    grown = prepare_cache(root, ann, cache.path, options=opts)
    assert grown.subjects == ["01", "02"]
    assert grown.manifest["subjects"]["02"]["mean_epi"] == "sub-02_mean-epi.npy"
    assert np.allclose(
        grown.mean_epi("02"),
        _expected(root, "02", range(1, len(RUN_N_VOLUMES) + 1), grown),
        rtol=1e-4,
        atol=1e-2,
    )
    assert np.array_equal(grown.mean_epi("01"), epi)
    assert not list(grown.path.glob("*.partial-*"))
