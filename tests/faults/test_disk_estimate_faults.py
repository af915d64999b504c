"""The up-front disk-space check counts every file of a cache, not only its arrays (issue 22, "also
found"): a disk with room for the arrays but not for the labels and mean EPIs is refused before
anything is written, instead of failing at the end of the build."""

from __future__ import annotations

from pathlib import Path

import pytest

from emocore.data.prepare import prepare
from emocore.errors import CacheError
from tests.faults.conftest import fill, mounted_tmpfs

PAGE = 4096


def _pages(n_bytes: int) -> int:
    return -(-n_bytes // PAGE) * PAGE  # what a file of n_bytes takes on a tmpfs


def test_a_disk_with_room_for_the_arrays_only_is_refused_up_front(tiny_cache, tmp_path: Path):
    cohort = tiny_cache.path.parent / "cohort"
    arrays = sum(_pages((tiny_cache.path / f"sub-{s}.npy").stat().st_size) for s in ("01", "02"))
    labels = (tiny_cache.path / "labels.tsv").stat().st_size
    with mounted_tmpfs(tmp_path / "disk", "24m") as disk:
        filler = fill(disk, leave=arrays + 8 * PAGE)  # the arrays fit; their labels do not
        with pytest.raises(CacheError) as info:
            prepare(cohort, cohort / "annotations" / "raw", disk / "cache")
        said = str(info.value)
        assert "cannot build the cache: its arrays need 16.1 MiB" in said
        assert "and its other files" in said and "(mean EPIs, mask, label table, manifest)" in said
        assert "choose a coarser --grid-mm" in said
        assert labels > 8 * PAGE  # what made the build fail late before
        assert [p.name for p in disk.iterdir()] == [filler.name]  # nothing was written
