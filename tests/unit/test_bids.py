from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from emocore.constants import RUN_N_VOLUMES, bold_filename
from emocore.data.bids import discover_dataset
from emocore.errors import DataError
from tests.conftest import SHAPE, write_run


def test_finds_every_run_of_the_derivative_layout(tiny_dataset):
    root, _ = tiny_dataset
    ds = discover_dataset(root)
    assert ds.layout == "ds000113-derivative"
    assert ds.subject_labels == ["01", "02"]
    runs = ds.get("01").runs
    assert [r.run for r in runs] == list(range(1, 9))
    assert [r.n_volumes for r in runs] == list(RUN_N_VOLUMES)
    assert runs[0].shape == SHAPE and runs[0].tr == 2.0
    assert runs[0].voxel_mm == (3.0, 3.0, 3.0)


def test_plain_bids_layout_with_task_filter(tmp_path):
    root = tmp_path / "bids"
    for run, n in enumerate(RUN_N_VOLUMES, start=1):
        write_run(
            root
            / f"sub-07/ses-movie/func/sub-07_ses-movie_task-forrestgump_run-{run:02d}_bold.nii.gz",
            n,
        )
    write_run(root / "sub-07/ses-movie/func/sub-07_ses-movie_task-rest_run-01_bold.nii.gz", 10)
    with pytest.raises(DataError, match="several tasks.*--task"):
        discover_dataset(root)
    ds = discover_dataset(root, task="forrestgump")
    assert ds.layout == "bids" and ds.subject_labels == ["07"] and len(ds.get("07").runs) == 8


def test_reads_a_real_nifti_header_that_nibabel_ships(tmp_path):
    # example4d.nii.gz is a real scanner export: 128x96x24, 2 volumes, and a TR stored as 2000 "sec".
    target = tmp_path / "bids/sub-01/func/sub-01_task-x_run-01_bold.nii.gz"
    target.parent.mkdir(parents=True)
    shutil.copy(Path(data_path) / "example4d.nii.gz", target)
    with pytest.raises(DataError, match=r"run-01_bold.nii.gz: its header gives a repetition time"):
        discover_dataset(tmp_path / "bids", expected_runs=(1,), expected_volumes=None)
    img = nib.load(target)  # the header fixed as the message says: read as it is
    img.header.set_zooms(img.header.get_zooms()[:3] + (2.0,))
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header), target)
    ds = discover_dataset(tmp_path / "bids", expected_runs=(1,), expected_volumes=None)
    run = ds.get("01").runs[0]
    assert run.shape == (128, 96, 24) and run.n_volumes == 2
    assert np.allclose(run.affine, nib.load(target).affine)
    assert run.tr == pytest.approx(2.0) and not ds.warnings


def test_empty_folder_says_what_is_expected(tmp_path):
    with pytest.raises(DataError, match="no BOLD runs found.*emocore synth"):
        discover_dataset(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        discover_dataset(tmp_path / "nope")


def test_missing_run_is_named(tiny_dataset):
    root, _ = tiny_dataset
    (root / bold_filename("02", 5)).unlink()
    with pytest.raises(DataError, match=r"sub-02.*missing run\(s\) 5"):
        discover_dataset(root)


def test_extra_run_is_named(tiny_dataset):
    root, _ = tiny_dataset
    write_run(root / bold_filename("01", 9), 20)
    with pytest.raises(DataError, match=r"unexpected run\(s\) 9"):
        discover_dataset(root)


def test_run_on_another_grid_is_named(tiny_dataset):
    root, _ = tiny_dataset
    write_run(root / bold_filename("01", 3), RUN_N_VOLUMES[2], shape=(7, 8, 10))
    with pytest.raises(DataError, match=r"run-03_bold.nii.gz has grid \(7, 8, 10\)"):
        discover_dataset(root)


def test_run_with_another_affine_is_named(tiny_dataset):
    root, _ = tiny_dataset
    write_run(root / bold_filename("02", 4), RUN_N_VOLUMES[3], affine=np.diag([3.0, 3.0, 3.5, 1.0]))
    with pytest.raises(DataError, match=r"run-04_bold.nii.gz has a different affine"):
        discover_dataset(root)


def test_3d_file_is_rejected(tiny_dataset):
    root, _ = tiny_dataset
    path = root / bold_filename("01", 2)
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.float32), np.eye(4)), path)
    with pytest.raises(DataError, match=r"run-02_bold.nii.gz is 3-D \(7, 8, 9\); expected 4-D"):
        discover_dataset(root)


def test_short_run_is_reported(tiny_dataset):
    root, _ = tiny_dataset
    write_run(root / bold_filename("01", 6), 100)
    with pytest.raises(
        DataError, match=r"run-06_bold.nii.gz has 100 volumes; studyforrest run 6 has 439"
    ):
        discover_dataset(root)


def test_non_2s_tr_is_refused_naming_the_header(tiny_dataset):
    # the labels are built every 2 s: a run at 2.5 s would get the wrong moment's labels
    root, _ = tiny_dataset
    write_run(root / bold_filename("01", 1), RUN_N_VOLUMES[0], tr=2.5)
    with pytest.raises(DataError, match=r"run-01_bold.nii.gz: its header gives .* of 2.5 s"):
        discover_dataset(root)


def test_unreadable_file_is_named(tiny_dataset):
    root, _ = tiny_dataset
    (root / bold_filename("02", 1)).write_bytes(b"not a nifti at all")
    with pytest.raises(DataError, match=r"run-01_bold.nii.gz cannot be read as NIfTI"):
        discover_dataset(root)


def _raw_layout(root: Path, subjects=("01",), acqs=("dico", "raw"), n_runs=2) -> Path:
    for subject in subjects:
        func = root / f"sub-{subject}/ses-forrestgump/func"
        for run in range(1, n_runs + 1):
            for acq in acqs:
                name = f"sub-{subject}_ses-forrestgump_task-forrestgump_acq-{acq}_run-{run:02d}_bold.nii.gz"
                write_run(func / name, 6)
    return root


def test_raw_ds000113_copies_are_told_apart_by_acq(tmp_path):
    root = _raw_layout(tmp_path / "raw")
    kw = {"expected_runs": (1, 2), "expected_volumes": None}
    with pytest.raises(DataError) as err:
        discover_dataset(root, **kw)
    message = str(err.value)
    assert "sub-01 run 1 has 2 BOLD files" in message
    assert "differ in acq (dico, raw): choose one with --acq" in message
    assert "'dico' is the distortion-corrected run" in message
    ds = discover_dataset(root, acq="dico", **kw)
    assert ds.layout == "bids" and ds.entities["acq"] == "dico"
    assert all("_acq-dico_" in r.path.name for r in ds.get("01").runs)


def test_an_entity_value_nobody_has_lists_what_was_found(tmp_path):
    root = _raw_layout(tmp_path / "raw")
    with pytest.raises(DataError, match=r"no BOLD runs below .* have acq-dic;.*acq: dico, raw"):
        discover_dataset(root, acq="dic", expected_runs=(1, 2), expected_volumes=None)
    with pytest.raises(DataError, match="--acq must be a BIDS label"):
        discover_dataset(root, acq="dico_x", expected_runs=(1, 2), expected_volumes=None)


def test_acq_reads_raw_runs_next_to_the_aligned_derivative(tiny_dataset):
    # ds000113 holds both: without --acq the aligned derivative is read, with it the raw runs.
    root, _ = tiny_dataset
    _raw_layout(root, subjects=("01", "02"), acqs=("dico", "raw"), n_runs=8)
    kw = {"expected_volumes": None}
    assert discover_dataset(root, **kw).layout == "ds000113-derivative"
    ds = discover_dataset(root, acq="dico", **kw)
    assert ds.layout == "bids" and ds.base == root and len(ds.get("02").runs) == 8


def _fmriprep_layout(root: Path, spaces=("MNI152NLin2009cAsym",), res=None) -> Path:
    func = root / "sub-01/ses-forrestgump/func"
    for run in (1, 2):
        stem = f"sub-01_ses-forrestgump_task-forrestgump_run-{run:02d}"
        for space in spaces:
            for r in res or [None]:
                ent = f"space-{space}" + (f"_res-{r}" if r else "")
                write_run(func / f"{stem}_{ent}_desc-preproc_bold.nii.gz", 6)
                (func / f"{stem}_{ent}_desc-brain_mask.nii.gz").write_bytes(b"")
        (func / f"{stem}_desc-confounds_timeseries.tsv").write_text("trans_x\n" + "0\n" * 6)
    return root


def test_fmriprep_output_spaces_are_chosen_with_space(tmp_path):
    root = _fmriprep_layout(tmp_path / "fmriprep", spaces=("MNI152NLin2009cAsym", "T1w"))
    kw = {"expected_runs": (1, 2), "expected_volumes": None}
    with pytest.raises(
        DataError, match=r"differ in space \(MNI152NLin2009cAsym, T1w\): choose one with --space"
    ):
        discover_dataset(root, **kw)
    ds = discover_dataset(root, space="T1w", **kw)
    assert ds.layout == "fmriprep"
    assert ds.entities == {
        "ses": "forrestgump",
        "task": "forrestgump",
        "space": "T1w",
        "desc": "preproc",
    }


def test_fmriprep_resolutions_are_chosen_with_the_space(tmp_path):
    root = _fmriprep_layout(tmp_path / "fmriprep", res=("1", "2"))
    kw = {"expected_runs": (1, 2), "expected_volumes": None}
    with pytest.raises(
        DataError, match=r"differ in res \(1, 2\): give the resolution with the space"
    ):
        discover_dataset(root, space="MNI152NLin2009cAsym", **kw)
    ds = discover_dataset(root, space="MNI152NLin2009cAsym:res-2", **kw)
    assert all("_res-2_" in r.path.name for r in ds.get("01").runs)
