"""A header scaling float16 cannot hold is refused by prepare (issue 10, item 3)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from emocore.cli import main
from emocore.constants import bold_filename
from emocore.data.prepare import PrepareOptions, prepare_cache
from emocore.errors import EXIT_CODES, DataError
from tests.faults.conftest import checksums

_SCL_SLOPE_OFFSET = 112  # float32 scl_slope in the NIfTI-1 header; scl_inter follows at 116


def write_scaled_run(path: Path, slope: float) -> Path:
    """Rewrite ``path`` as int16 voxels whose header says value = raw * ``slope``."""
    img = nib.load(path)
    raw = np.clip(np.round(img.get_fdata(dtype=np.float32)), -32768, 32767).astype(np.int16)
    out = nib.Nifti1Image(raw, img.affine, img.header)
    out.set_data_dtype(np.int16)
    out.header.set_slope_inter(1.0, 0.0)
    nib.save(out, path)
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[_SCL_SLOPE_OFFSET : _SCL_SLOPE_OFFSET + 8] = struct.pack("<ff", slope, 0.0)
    path.write_bytes(gzip.compress(bytes(data), compresslevel=1))
    assert nib.load(path).dataobj.slope == pytest.approx(slope, rel=1e-6)
    return path


def test_huge_scl_slope_is_refused_and_the_old_cache_kept(tiny_dataset, tmp_path: Path) -> None:
    root, ann = tiny_dataset
    cache_dir = tmp_path / "cache"
    prepare_cache(root, ann, cache_dir, subjects=["01"])
    before = checksums(cache_dir)
    bad = write_scaled_run(root / bold_filename("01", 3), 1e30)
    with pytest.raises(DataError, match=r"beyond float16's range \(\+-65504\)") as info:
        prepare_cache(root, ann, cache_dir, subjects=["01"], force=True)
    message = str(info.value)
    assert str(bad) in message and "scl_slope 1e+30 and scl_inter 0" in message
    assert "fix the header and run prepare again" in message and "--nonfinite zero" in message
    assert checksums(cache_dir) == before
    assert not list(tmp_path.glob("cache.partial-*"))


def test_huge_scl_slope_with_nonfinite_zero_writes_a_finite_cache(
    tiny_dataset, tmp_path: Path
) -> None:
    root, ann = tiny_dataset
    write_scaled_run(root / bold_filename("01", 3), 1e30)
    cache = prepare_cache(
        root, ann, tmp_path / "cache", subjects=["01"], options=PrepareOptions(nonfinite="zero")
    )
    assert np.isfinite(cache.array("01")).all()


def test_prepare_command_exits_2_naming_the_file(tiny_dataset, tmp_path: Path, capsys) -> None:
    root, ann = tiny_dataset
    write_scaled_run(root / bold_filename("01", 5), 1e30)
    code = main(
        ["prepare", "--bids", str(root), "--annotations", str(ann)]
        + ["--cache", str(tmp_path / "cache"), "--subject", "01"]
    )
    err = capsys.readouterr().err
    assert code == EXIT_CODES["data"]
    assert "run-05_bold.nii.gz" in err and "beyond float16's range" in err
    assert not (tmp_path / "cache").exists()
