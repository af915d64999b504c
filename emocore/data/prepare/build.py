"""Build, extend or reuse the volume cache: :func:`prepare` and :func:`prepare_cache`.

A build is written in a sibling folder ``<cache>.partial-<pid>`` and renamed into place at the
end, so a killed job never leaves half a cache; a cache that exists is first handed to
:func:`~emocore.data.prepare.update.update_cache`, which adds people, relabels, or finds that it
must be rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emocore import __version__
from emocore._io import os_error_message
from emocore.data.bids import Dataset
from emocore.data.cache import CACHE_FORMAT, VolumeCache, mean_epi_file, volume_key
from emocore.data.prepare.folder import (
    check_only_cache_files,
    check_space,
    clean_partials,
    refuse_foreign_folder,
    swap_into_place,
)
from emocore.data.prepare.grid import target_grid
from emocore.data.prepare.lock import cache_lock, real_cache_path
from emocore.data.prepare.manifest import describe, existing_manifest, merge_warnings
from emocore.data.prepare.mask import save_mean_epi
from emocore.data.prepare.options import PrepareOptions, PrepareResult
from emocore.data.prepare.request import Request, read_request
from emocore.data.prepare.update import update_cache
from emocore.data.prepare.volumes import run_ticker, write_subject
from emocore.errors import CacheError
from emocore.progress import Progress

logger = logging.getLogger(__name__)


def prepare(
    bids: str | Path,
    annotations: str | Path,
    cache: str | Path,
    *,
    options: PrepareOptions | None = None,
    subjects: Sequence[str] | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> PrepareResult:
    """Build, extend or reuse the cache for ``bids`` with labels from ``annotations``.

    ``subjects`` limits which people of the dataset are asked for (default: all found);
    ``progress(fraction, message)`` is called after each run written. On an existing cache:

    * People asked for that the cache does not hold are **added**: only their runs are read,
      onto the cache's grid; the other people's arrays, the mask and the label table are not
      touched (the manifest is replaced last, atomically). Adding needs the options
      (:class:`PrepareOptions`: grid, lag, recipe, observers, nonfinite, task), the cache format
      and the annotation files to be the cache's own; otherwise a
      :class:`~emocore.errors.ConfigError` says what differs and suggests ``force``.
    * People in the cache that are not asked for are **kept**, never dropped; ``force=True``
      rebuilds from scratch with exactly the people asked for.
    * Without new people, the rules of a single build hold: the same inputs do nothing; other
      label options (lag, recipe, observers, annotations) rewrite the label table only; a changed
      source file of a person asked for, or another grid or NaN policy, rebuilds the cache, and
      that rebuild reads every person in it again (so people not asked for must still be below
      ``bids``). A changed source file with new people also rebuilds everybody.

    A rebuild happens in a sibling folder renamed into place, an addition writes new files next to
    the old ones before the manifest names them: either way a killed job leaves the old cache
    readable.

    Problems with the cache folder itself (no permission, a read-only or full disk, a symbolic
    link loop) are a :class:`~emocore.errors.CacheError` naming the file and the fix.
    """
    cache = Path(cache)
    try:
        real = real_cache_path(cache)
        with cache_lock(real):  # one prepare at a time reads, changes and writes the manifest
            return _prepare(
                bids,
                annotations,
                real,
                options=options or PrepareOptions(),
                subjects=subjects,
                progress=progress,
                force=force,
            )
    except OSError as exc:
        name = Path(os.fsdecode(exc.filename)) if exc.filename is not None else cache
        ours = name == cache or cache in name.parents or name.name.startswith(cache.name + ".")
        raise CacheError(
            os_error_message(
                exc,
                f"prepare the cache at {cache}",
                choose="another --cache" if ours else "another folder",
                near=cache,
            )
        ) from exc


def _prepare(
    bids: str | Path,
    annotations: str | Path,
    cache: Path,
    *,
    options: PrepareOptions,
    subjects: Sequence[str] | None,
    progress: Progress | None,
    force: bool,
) -> PrepareResult:
    """:func:`prepare` on the real cache folder, with the cache's lock held."""
    refuse_foreign_folder(cache)
    t0 = time.perf_counter()
    request = read_request(bids, annotations, options, subjects)
    clean_partials(cache)
    previous = existing_manifest(cache, force)
    held = list(previous.get("subjects") or {}) if previous is not None else []
    if previous is not None and not force and isinstance(previous.get("subjects"), dict):
        outcome = update_cache(cache, previous, request, options, progress, t0)
        if isinstance(outcome, PrepareResult):
            return outcome
        request = outcome  # a rebuild, of everybody the cache holds
    return _build(cache, request, options, progress, held, t0)


def _build(
    cache: Path,
    request: Request,
    opts: PrepareOptions,
    progress: Progress | None,
    held: Sequence[str],
    t0: float,
) -> PrepareResult:
    """Write the whole cache in ``<cache>.partial-<pid>`` and rename it into place; ``held``
    are the people the cache held before (an added person was not among them)."""
    dataset = request.dataset
    shape, affine = target_grid(dataset, opts.grid_mm)
    manifest = _new_manifest(request, opts, shape, affine)
    label_text = request.label_text
    check_only_cache_files(cache)
    check_space(cache.parent, dataset.subjects, shape, "build the cache", labels=len(label_text))
    work = cache.parent / f"{cache.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        manifest["subjects"], blank = _write_subjects(
            work, dataset, shape, affine, opts, progress, request.sources
        )
        manifest["warnings"] = merge_warnings(manifest["warnings"], blank)
        (work / "labels.tsv").write_bytes(label_text)
        manifest["prepare_seconds"] = round(time.perf_counter() - t0, 2)
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
        describe(work, manifest)
        swap_into_place(work, cache)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    built = tuple(dataset.subject_labels)
    dropped = tuple(s for s in held if s not in built)
    logger.info("cache written to %s in %.1f s", cache, time.perf_counter() - t0)
    if dropped:
        logger.info(
            "--force: %s left out of the rebuilt cache", ", ".join(f"sub-{s}" for s in dropped)
        )
    return PrepareResult(
        VolumeCache(cache),
        "built",
        added=tuple(s for s in built if s not in held),
        streamed=built,
        dropped=dropped,
    )


def _new_manifest(
    request: Request, opts: PrepareOptions, shape: tuple[int, int, int], affine: np.ndarray
) -> dict[str, Any]:
    """The manifest of a new build, but for its people (``subjects``) and their blank runs."""
    dataset = request.dataset
    return {
        "cache_format": CACHE_FORMAT,
        "emocore_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "volume_key": volume_key(
            grid_mm=opts.grid_mm,
            nonfinite=opts.nonfinite,
            sources=request.sources,
            cleaning=opts.cleaning,
        ),
        "label_key": request.label_key,
        "options": asdict(opts),
        "cleaning": opts.cleaning,
        "source": {
            "root": request.bids_path,
            "layout": dataset.layout,
            "folder": request.folder,
            "entities": dict(dataset.entities),
            "annotations": request.annotations_path,
        },
        "grid": {
            "shape": list(shape),
            "affine": affine.tolist(),
            "voxel_mm": [float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0))],
        },
        "labels": request.labels_block,
        "warnings": [*dataset.warnings, *request.label_warnings],
    }


def prepare_cache(
    bids: str | Path,
    annotations: str | Path,
    cache: str | Path,
    *,
    options: PrepareOptions | None = None,
    subjects: Sequence[str] | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> VolumeCache:
    """:func:`prepare`, returning only the opened cache (see :func:`prepare` for the rules)."""
    return prepare(
        bids,
        annotations,
        cache,
        options=options,
        subjects=subjects,
        progress=progress,
        force=force,
    ).cache


def _write_subjects(
    work: Path,
    dataset: Dataset,
    shape,
    affine,
    opts: PrepareOptions,
    progress: Progress | None,
    sources: dict[str, list[str]],
) -> tuple[dict[str, Any], list[str]]:
    """Write every person's array and mean EPI into ``work`` and the cohort's brain mask (the
    intersection of theirs); return their manifest entries and a warning per blank run."""
    tick = run_ticker(progress, sum(len(s.runs) for s in dataset.subjects))
    cohort_mask = np.ones(shape, bool)
    subjects: dict[str, Any] = {}
    blank: list[str] = []
    for subj in dataset.subjects:
        info, mask, messages, epi = write_subject(
            work / f"sub-{subj.subject}.npy",
            subj,
            dataset.root,
            shape,
            affine,
            opts,
            tick,
            sources[subj.subject],
        )
        info["mean_epi"] = mean_epi_file(subj.subject)
        save_mean_epi(work / info["mean_epi"], epi)
        cohort_mask &= mask
        subjects[subj.subject] = info
        blank += messages
    np.save(work / "mask.npy", cohort_mask.astype(np.uint8))
    return subjects, blank
