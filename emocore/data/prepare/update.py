"""What a prepare does to a cache that exists: add the people it lacks, keep it as it is, rewrite
its label table only, or find that it must be rebuilt (and with whom)."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from emocore._io import atomic_write_bytes, atomic_write_json
from emocore.data.bids import discover_dataset
from emocore.data.cache import VolumeCache, array_problems, manifest_problem
from emocore.data.prepare.extend import add_subjects, store_missing_mean_epis
from emocore.data.prepare.manifest import (
    VOLUME_OPTIONS,
    describe,
    differences,
    labels_belong,
    merge_warnings,
    record_missing,
    stored_fingerprints,
    with_array_fingerprints,
)
from emocore.data.prepare.options import PrepareOptions, PrepareResult
from emocore.data.prepare.request import Request, check_lengths, fingerprint
from emocore.errors import ConfigError, DataError
from emocore.progress import Progress

logger = logging.getLogger(__name__)


def update_cache(
    cache: Path,
    old: dict[str, Any],
    request: Request,
    opts: PrepareOptions,
    progress: Progress | None,
    t0: float,
) -> PrepareResult | Request:
    """Bring the cache whose manifest is ``old`` to what ``request`` asks for, where that needs
    no rebuild: new people are added, other label options rewrite the label table, and the same
    inputs change nothing. Otherwise the request to rebuild from, with every person the cache
    holds (see :func:`~emocore.data.prepare.prepare` for the rules)."""
    held = list(old["subjects"])
    requested = request.dataset.subject_labels
    not_requested = tuple(s for s in held if s not in requested)
    sources = request.sources
    new = [s for s in requested if s not in held]
    changed = [s for s in requested if s in held and stored_fingerprints(old, s) != sources[s]]
    differ = differences(old, opts, request.annotation_sha)
    if not_requested:
        logger.info(
            "%s not requested but in the cache at %s: kept (pass --force to rebuild with "
            "exactly %s)",
            ", ".join(f"sub-{s}" for s in not_requested),
            cache,
            ", ".join(f"sub-{s}" for s in requested),
        )
    if new and differ:
        raise ConfigError(
            f"cannot add {', '.join(f'sub-{s}' for s in new)} to the cache at {cache}: it was "
            f"made with other options ({'; '.join(differ.values())}), and new people must be "
            "prepared like the people already there. Re-run with the cache's options, or pass "
            f"--force to rebuild it from scratch with exactly the given subjects "
            f"(it now holds {', '.join(held)})"
        )
    # Arrays cut short, rewritten as another dtype or shape, or overwritten: rebuilt, as a
    # changed source file is (the cache cannot be trusted for those people any more).
    damaged = array_problems(cache, old) if manifest_problem(old) is None else {}
    for problem in damaged.values():
        logger.warning("%s; the cache will be rebuilt", problem)
    belongs = labels_belong(cache, old, request.label_text)
    if new and not changed and not damaged:
        return add_subjects(
            cache,
            old,
            request.dataset,
            new,
            sources,
            opts,
            progress,
            request.bids_path,
            not_requested,
            t0,
            labels=None if belongs else (request.label_text, request.labels_block),
        )
    rebuild_why = (
        [f"sub-{s}'s source files changed" for s in changed]
        + [f"{problem}" for problem in damaged.values()]
        + [differ[k] for k in VOLUME_OPTIONS if k in differ]
    )
    if not rebuild_why:
        return _keep_voxel_data(cache, old, request, opts, progress, belongs, not_requested)
    if not_requested:
        request = _with_people_kept(request, opts, cache, rebuild_why, not_requested)
    logger.info("rebuilding the cache at %s: %s", cache, "; ".join(rebuild_why))
    return request


def _keep_voxel_data(
    cache: Path,
    old: dict[str, Any],
    request: Request,
    opts: PrepareOptions,
    progress: Progress | None,
    belongs: bool,
    not_requested: tuple[str, ...],
) -> PrepareResult:
    """The cache's arrays are what a rebuild would write: store the mean EPIs an older cache
    lacks, then leave it as it is or, for other label options (or a ``labels.tsv`` that does not
    ``belong`` to the manifest), rewrite its label table."""
    before = old
    old = store_missing_mean_epis(cache, old, request.dataset, progress)
    result = dict(kept=tuple(before["subjects"]), not_requested=not_requested)
    if old.get("label_key") == request.label_key and belongs:
        if old is before:  # else store_missing_mean_epis has said what it stored
            logger.info("cache at %s is up to date; nothing to do", cache)
        old = record_missing(
            cache,
            old,
            request.label_text,
            root=request.bids_path,
            annotations=request.annotations_path,
            folder=request.folder,
        )
        if not (cache / "dataset_description.json").is_file():  # made before prepare wrote one
            describe(cache, old)
        return PrepareResult(VolumeCache(cache), "unchanged", **result)
    if old.get("label_key") == request.label_key:
        logger.warning(
            "%s does not belong to the manifest of the cache at %s (a relabel was "
            "interrupted?): rewriting it",
            cache / "labels.tsv",
            cache,
        )
    else:
        logger.info("voxel data unchanged; rewriting the label table of %s", cache)
    manifest = dict(old)
    manifest.update(
        label_key=request.label_key,
        options=asdict(opts),
        labels=request.labels_block,
        source={**old.get("source", {}), "annotations": request.annotations_path},
        warnings=merge_warnings(
            old.get("warnings", []), request.dataset.warnings, request.label_warnings
        ),
    )
    manifest = with_array_fingerprints(cache, manifest)
    atomic_write_bytes(cache / "labels.tsv", request.label_text)
    atomic_write_json(cache / "manifest.json", manifest)
    describe(cache, manifest)
    return PrepareResult(VolumeCache(cache), "relabelled", **result)


def _with_people_kept(
    request: Request,
    opts: PrepareOptions,
    cache: Path,
    rebuild_why: list[str],
    not_requested: tuple[str, ...],
) -> Request:
    """``request`` with the people the cache holds but who were not asked for: a rebuild keeps
    everybody, so it reads their runs again too."""
    requested = request.dataset.subject_labels
    try:
        dataset = discover_dataset(
            request.bids,
            task=opts.task,
            acq=opts.acq,
            space=opts.space,
            desc=opts.desc,
            subjects=sorted({*requested, *not_requested}),
        )
    except DataError as exc:
        raise DataError(
            f"the cache at {cache} must be rebuilt ({'; '.join(rebuild_why)}) and it also "
            f"holds {', '.join(f'sub-{s}' for s in not_requested)}, which a rebuild reads "
            f"again, but: {exc}. Point --bids at a dataset that has them, or pass --force "
            f"to rebuild with exactly {', '.join(f'sub-{s}' for s in requested)}"
        ) from exc
    check_lengths(dataset, request.labels)
    sources = dict(request.sources)
    for s in dataset.subjects:
        if s.subject not in sources:
            sources[s.subject] = [fingerprint(r.path) for r in s.runs]
    return replace(request, dataset=dataset, sources=sources)
