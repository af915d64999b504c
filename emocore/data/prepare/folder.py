"""The cache folder on disk: leftovers of killed jobs, room on the disk, files that are not the
cache's, and the rename that puts a finished build into place."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emocore.data.bids import SubjectRuns
from emocore.data.prepare.lock import LOCK_NAME
from emocore.errors import CacheError

logger = logging.getLogger(__name__)


def refuse_foreign_folder(cache: Path) -> None:
    """Refuse a ``cache`` that is a file, or a folder of other files without a manifest: emocore
    never writes over what it did not make."""
    if cache.exists() and (
        not cache.is_dir()
        or (
            any(p.name != LOCK_NAME for p in cache.iterdir())
            and not (cache / "manifest.json").exists()
        )
    ):
        raise CacheError(
            f"{cache} exists and is not an emocore cache; choose another --cache folder (emocore never writes over other files)"
        )


def _left_by_dead_job(path: Path) -> bool:
    """Whether ``path``, named ``*.partial-<pid>``, was left by a job that no longer runs."""
    try:
        os.kill(int(path.name.rsplit("-", 1)[1]), 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return False  # a live job is still writing it


def clean_partials(cache: Path) -> None:
    for p in cache.parent.glob(cache.name + ".partial-*"):
        if _left_by_dead_job(p):
            logger.info("removing %s left by an interrupted prepare", p)
            shutil.rmtree(p, ignore_errors=True)
    old = cache.parent / (cache.name + ".old")
    if old.exists():
        if not cache.exists():
            old.rename(cache)  # a swap was interrupted between its two renames
        else:
            shutil.rmtree(old, ignore_errors=True)
    if cache.is_dir():  # arrays of an interrupted addition (the manifest never listed them)
        for p in cache.glob("sub-*.npy.partial-*"):
            if p.is_file() and _left_by_dead_job(p):
                logger.info("removing %s left by an interrupted prepare", p)
                p.unlink(missing_ok=True)


#: Room left for the manifest, dataset_description.json and each file's last part-filled block.
_SMALL_FILES_BYTES = 256 * 2**10


def check_space(
    folder: Path,
    people: Sequence[SubjectRuns],
    shape,
    doing: str,
    *,
    labels: int = 0,
    mask: bool = True,
) -> None:
    """Refuse a cache the disk cannot hold before hours are spent writing it: the float16
    arrays, each person's float32 mean EPI, the mask (``mask``: a build writes one), the label
    table (``labels`` bytes) and room for the small files."""
    voxels = int(np.prod(shape))
    arrays = sum(r.n_volumes for p in people for r in p.runs) * voxels * 2
    rest = len(people) * voxels * 4 + (voxels if mask else 0) + labels + _SMALL_FILES_BYTES
    need = arrays + rest
    probe = next((f for f in (folder, *folder.parents) if f.exists()), None)
    if probe is None:
        return
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if need > free:
        raise CacheError(
            f"cannot {doing}: its arrays need {_size(arrays)} ({len(people)} people on a "
            f"{' x '.join(map(str, shape))} grid, float16) and its other files {_size(rest)} "
            f"(mean EPIs, {'mask, ' if mask else ''}label table, manifest), {_size(need)} in all, "
            f"but {probe} has {_size(free)} free; choose a coarser --grid-mm, fewer people "
            "(--subject), or another --cache on a larger disk"
        )


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def check_only_cache_files(cache: Path) -> None:
    """Refuse to rebuild a cache folder that also holds other files: the rebuilt folder replaces
    the whole old one, and would take a registry or notes kept there with it."""
    if not cache.is_dir():
        return
    foreign = sorted(
        p.name
        for p in cache.iterdir()
        if p.name not in _CACHE_FILES
        and not p.name.startswith(".")  # .DS_Store and the like go with the folder
        and not (p.name.startswith("sub-") and ".npy" in p.name and p.is_file())
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise CacheError(
            f"the cache folder {cache} also holds {shown}, which the cache did not write; a "
            "rebuild replaces the whole folder and would delete them. Move them out (a run "
            "registry belongs in its own --registry folder) and run prepare again"
        )


#: The files a cache folder holds besides its sub-XX.npy arrays.
_CACHE_FILES = frozenset({"manifest.json", "labels.tsv", "mask.npy", "dataset_description.json"})


def swap_into_place(work: Path, cache: Path) -> None:
    if cache.exists():
        if not (cache / "manifest.json").exists() and any(
            p.name != LOCK_NAME for p in cache.iterdir()
        ):
            raise CacheError(
                f"{cache} exists and is not an emocore cache; choose another --cache folder"
            )
        old = cache.parent / (cache.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        cache.rename(old)
        work.rename(cache)
        shutil.rmtree(old, ignore_errors=True)
    else:
        work.rename(cache)
