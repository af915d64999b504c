"""What a BOLD header or the dataset folder says that prepare must not take on trust (issue 22,
"also found"): a TR other than the labels' 2 s, a volume count the file does not hold, links that
lead outside the dataset, and option errors that name the option as typed."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.constants import DERIVATIVE_DIR, RUN_N_VOLUMES, bold_filename
from emocore.data.bids import discover_dataset
from emocore.errors import EXIT_CODES, DataError
from tests.conftest import write_run


def _prepare(root: Path, ann: Path, cache: Path, *extra: str) -> list[str]:
    argv = ["prepare", "--bids", str(root), "--annotations", str(ann), "--cache", str(cache)]
    return [*argv, "-q", *extra]


# -- the repetition time -------------------------------------------------------------------------
@pytest.mark.parametrize("tr", [3.0, 0.001, 2000.0])
def test_a_header_tr_other_than_2_s_is_refused_naming_the_header(
    tiny_dataset, tmp_path: Path, capsys, tr: float
) -> None:
    root, ann = tiny_dataset
    path = write_run(root / bold_filename("02", 4), RUN_N_VOLUMES[3], tr=tr)
    code = main(_prepare(root, ann, tmp_path / "cache"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert f"{path}: its header gives a repetition time (TR, pixdim[4]) of {tr:g} s" in err
    assert "the labels are built for one volume every 2 s" in err and "fix the header" in err
    assert "--high-pass" not in err  # the header is at fault, not the cleaning option
    if tr == 2000.0:
        assert "a TR written in milliseconds" in err
    assert not (tmp_path / "cache").exists()


# -- the volume count ------------------------------------------------------------------------------
def _claim_volumes(path: Path, n: int) -> None:
    """Write ``n`` into the header's dim[4], leaving the data as they are."""
    data = bytearray(gzip.decompress(path.read_bytes()))
    struct.pack_into("<h", data, 48, n)  # NIfTI-1: dim[0..7] are int16 from byte 40
    path.write_bytes(gzip.compress(bytes(data), compresslevel=1))


def test_a_header_claiming_30000_volumes_says_what_is_wrong(tiny_dataset, tmp_path, capsys):
    root, ann = tiny_dataset
    path = root / bold_filename("01", 2)
    _claim_volumes(path, 30000)
    code = main(_prepare(root, ann, tmp_path / "cache"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert (
        f"{path}: its header says it holds 30000 volumes (dim[4]), but studyforrest run 2 has "
        f"{RUN_N_VOLUMES[1]}; the data in the file hold {RUN_N_VOLUMES[1]}"
    ) in err
    assert "fix dim[4] in the header" in err and "cut short" not in err


def test_a_run_cut_short_says_so_with_what_the_file_holds(tiny_dataset) -> None:
    root, _ = tiny_dataset
    path = write_run(root / bold_filename("01", 5), 100)
    _claim_volumes(path, RUN_N_VOLUMES[4] - 1)  # the header still claims nearly all of them
    with pytest.raises(DataError) as info:
        discover_dataset(root)
    said = str(info.value)
    assert f"{path} has {RUN_N_VOLUMES[4] - 1} volumes; studyforrest run 5 has" in said
    assert "the data in the file hold 100" in said and "cut short" in said


# -- links out of the dataset ---------------------------------------------------------------------
def test_derivatives_linked_outside_the_dataset_are_refused(tiny_dataset, tmp_path, capsys):
    root, ann = tiny_dataset
    elsewhere = tmp_path / "elsewhere"
    shutil.move(root / "derivatives", elsewhere)
    (root / "derivatives").symlink_to(elsewhere)
    code = main(_prepare(root, ann, tmp_path / "cache"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"], err
    assert (
        f"{root / 'derivatives'} is a symbolic link to {elsewhere}, outside the dataset folder "
        f"{root}"
    ) in err
    assert "emocore reads nothing outside the folder it is given" in err and "cp -rL" in err
    assert not (tmp_path / "cache").exists()


def test_a_run_file_linked_outside_the_dataset_is_refused(tiny_dataset, tmp_path) -> None:
    root, _ = tiny_dataset
    path = root / bold_filename("02", 7)
    outside = tmp_path / "elsewhere.nii.gz"
    shutil.move(path, outside)
    path.symlink_to(outside)
    with pytest.raises(DataError, match=rf"{path} is a symbolic link to {outside}, outside"):
        discover_dataset(root)


def test_links_that_stay_inside_the_dataset_are_read(tiny_dataset) -> None:
    root, _ = tiny_dataset
    aligned = root / DERIVATIVE_DIR
    (root / "store").mkdir()
    shutil.move(aligned / "sub-02", root / "store" / "sub-02")
    (aligned / "sub-02").symlink_to(Path("..") / ".." / "store" / "sub-02")
    assert discover_dataset(root).subject_labels == ["01", "02"]


# -- options named as typed ----------------------------------------------------------------------
def test_grid_mm_errors_name_the_option_as_typed(tiny_dataset, tmp_path, capsys) -> None:
    root, ann = tiny_dataset
    code = main(_prepare(root, ann, tmp_path / "cache", "--grid-mm", "0.1"))
    err = capsys.readouterr().err
    assert code == EXIT_CODES["config"], err
    assert "--grid-mm (grid_mm) must be a voxel size from 0.5 to 20 mm" in err
    assert "0.1 was given" in err and not (tmp_path / "cache").exists()
