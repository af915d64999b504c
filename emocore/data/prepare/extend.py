"""Change a cache in place: add people next to the others, or store the mean EPIs that a cache
made before they existed lacks. Either way new files are written first and the manifest that
names them replaces the old one last, so a killed job leaves the old cache readable."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emocore._io import atomic_write_bytes, atomic_write_json
from emocore.data.bids import Dataset, SubjectRuns
from emocore.data.cache import VolumeCache, mean_epi_file, recorded_path, volume_key
from emocore.data.prepare.folder import check_space
from emocore.data.prepare.grid import grid_difference
from emocore.data.prepare.manifest import describe, merge_warnings, with_array_fingerprints
from emocore.data.prepare.mask import mean_epi, save_mean_epi
from emocore.data.prepare.options import PrepareOptions, PrepareResult
from emocore.data.prepare.volumes import run_mean, run_ticker, write_subject
from emocore.errors import DataError
from emocore.progress import Progress

logger = logging.getLogger(__name__)


def add_subjects(
    cache: Path,
    old: dict[str, Any],
    dataset: Dataset,
    new: Sequence[str],
    sources: dict[str, list[str]],
    opts: PrepareOptions,
    progress: Progress | None,
    bids: str,
    not_requested: tuple[str, ...],
    t0: float,
    *,
    labels: tuple[bytes, dict[str, Any]] | None = None,
) -> PrepareResult:
    """Write the arrays of ``new`` people next to the others', then replace the manifest.

    ``labels`` (the label table's bytes and the manifest's ``labels`` block) rewrites a
    ``labels.tsv`` that does not belong to the old manifest (an interrupted relabel), before
    the new manifest names it.

    Nothing the old manifest names is written: the new arrays (and mean EPIs) go to
    ``sub-XX.npy.partial-<pid>`` (``sub-XX_mean-epi.npy.partial-<pid>``), are renamed once
    complete, and the manifest that lists them replaces the old one last (atomically). A job
    killed before that leaves the old cache as it was, plus files it does not name, which the
    next prepare removes or overwrites.
    """
    shape = tuple(int(v) for v in old["grid"]["shape"])
    affine = np.asarray(old["grid"]["affine"], dtype=np.float64)
    people = [dataset.get(s) for s in new]
    if opts.grid_mm is None:
        _check_cache_grid(cache, people, shape, affine)
    # The cache's mask (the intersection of the masks of the people it was built with) stays as
    # it is: shrinking it to the new person's brain would change what the saliency scores and the
    # linear baseline of studies already run on this cache see. Each new person is z-scored
    # inside their own brain mask, exactly as a full build would do, so their array is the one a
    # rebuild would write; where their brain misses part of the cache's mask they hold zeros.
    cache_mask = np.load(cache / "mask.npy").astype(bool)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    read_elsewhere = bids != _recorded_root(cache, old)
    stamp = {"added_at": now, **({"source_root": bids} if read_elsewhere else {})}
    staged: list[Path] = []
    check_space(
        cache,
        people,
        shape,
        f"add {', '.join(f'sub-{s}' for s in new)}",
        labels=len(labels[0]) if labels is not None else 0,
        mask=False,
    )
    try:
        entries, blank = _stage_people(
            cache,
            people,
            dataset.root,
            (shape, affine),
            opts,
            progress,
            sources,
            cache_mask,
            staged,
            stamp,
        )
        _rename_staged(cache, staged)
        manifest = _manifest_with(
            cache,
            old,
            entries,
            dataset,
            new,
            opts,
            blank,
            None if labels is None else labels[1],
            now,
            t0,
        )
        if labels is not None:
            _rewrite_labels(cache, labels[0])
        atomic_write_json(cache / "manifest.json", manifest)
        describe(cache, manifest)
    except BaseException:
        for path in staged:  # none of them is named by the manifest still in place
            path.unlink(missing_ok=True)
        raise
    logger.info(
        "added %s to the cache at %s in %.1f s; kept %s as they were",
        ", ".join(f"sub-{s}" for s in new),
        cache,
        time.perf_counter() - t0,
        ", ".join(f"sub-{s}" for s in old["subjects"]),
    )
    return PrepareResult(
        VolumeCache(cache),
        "added",
        added=tuple(new),
        streamed=tuple(new),
        kept=tuple(old["subjects"]),
        not_requested=not_requested,
    )


def _manifest_with(
    cache: Path,
    old: dict[str, Any],
    entries: dict[str, Any],
    dataset: Dataset,
    new: Sequence[str],
    opts: PrepareOptions,
    blank: list[str],
    labels_block: dict[str, Any] | None,
    now: str,
    t0: float,
) -> dict[str, Any]:
    """The manifest ``old`` with the ``new`` people's ``entries``, the volume key of everybody,
    their warnings and ``labels_block`` (a rewritten label table's, when there is one)."""
    manifest = with_array_fingerprints(cache, dict(old))
    every = {**manifest["subjects"], **entries}
    if labels_block is not None:
        manifest["labels"] = labels_block
    manifest.update(
        subjects={s: every[s] for s in sorted(every)},
        volume_key=volume_key(
            grid_mm=opts.grid_mm,
            nonfinite=opts.nonfinite,
            sources={s: [r["fingerprint"] for r in info["runs"]] for s, info in every.items()},
            cleaning=opts.cleaning,
        ),
        earlier_subjects=[*old.get("earlier_subjects", []), list(old["subjects"])],
        updated_at=now,
        add_seconds=round(time.perf_counter() - t0, 2),
        warnings=merge_warnings(
            old.get("warnings", []),
            [w for w in dataset.warnings if any(f"sub-{s}" in w for s in new)],
            blank,
        ),
    )
    return manifest


def _recorded_root(cache: Path, old: dict[str, Any]) -> Any:
    """The dataset folder the manifest ``old`` records (``source.root``), as an absolute path
    where it is a path; a new person read from elsewhere records their own folder."""
    recorded_root = (old.get("source") or {}).get("root")
    if isinstance(recorded_root, str) and recorded_root:
        recorded_root = str(recorded_path(cache, recorded_root) or recorded_root)
    return recorded_root


def _check_cache_grid(
    cache: Path, people: Sequence[SubjectRuns], shape: tuple[int, ...], affine: np.ndarray
) -> None:
    """Without ``--grid-mm`` a new person's runs must be on the cache's own grid."""
    for subj in people:
        if subj.shape != shape or not np.allclose(subj.affine, affine, atol=1e-3):
            raise DataError(
                f"sub-{subj.subject} ({subj.runs[0].path}) "
                + grid_difference(subj.shape, subj.affine, shape, affine, f"the cache at {cache}")
                + "; a cache needs one grid for everybody: rebuild it with --grid-mm and "
                "--force to resample everybody"
            )


def _stage_people(
    cache: Path,
    people: Sequence[SubjectRuns],
    root: Path,
    grid: tuple[tuple[int, ...], np.ndarray],
    opts: PrepareOptions,
    progress: Progress | None,
    sources: dict[str, list[str]],
    cache_mask: np.ndarray,
    staged: list[Path],
    stamp: dict[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    """Stage each new person's files (see :func:`_stage_subject`); return their manifest entries,
    each ending with ``stamp`` (when they were added, and from where), and the warnings."""
    tick = run_ticker(progress, sum(len(p.runs) for p in people))
    entries: dict[str, Any] = {}
    blank: list[str] = []
    for subj in people:
        info, messages = _stage_subject(
            cache, subj, root, grid, opts, tick, sources[subj.subject], cache_mask, staged
        )
        blank += messages
        entries[subj.subject] = {**info, **stamp}
    return entries, blank


def _stage_subject(
    cache: Path,
    subj: SubjectRuns,
    root: Path,
    grid: tuple[tuple[int, ...], np.ndarray],
    opts: PrepareOptions,
    tick: Callable[[str], None],
    fingerprints: Sequence[str],
    cache_mask: np.ndarray,
    staged: list[Path],
) -> tuple[dict[str, Any], list[str]]:
    """Write one new person's array and mean EPI as ``.partial-<pid>`` files in ``cache``, each
    put in ``staged`` before it is written and synced to disk once complete; return their
    manifest entry, with the share of the cache's mask their brain covers, and their warnings."""
    tmp = cache / f"sub-{subj.subject}.npy.partial-{os.getpid()}"
    staged.append(tmp)
    shape, affine = grid
    info, mask, messages, epi = write_subject(
        tmp, subj, root, shape, affine, opts, tick, fingerprints
    )
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    info["mean_epi"] = mean_epi_file(subj.subject)
    epi_tmp = cache / f"{info['mean_epi']}.partial-{os.getpid()}"
    staged.append(epi_tmp)
    with open(epi_tmp, "wb") as out:  # renamed into place with the array, by _rename_staged
        np.save(out, epi)
        out.flush()
        os.fsync(out.fileno())
    coverage = float(mask[cache_mask].mean()) if cache_mask.any() else 1.0
    if coverage < 0.9:
        logger.warning(
            "sub-%s's brain mask covers only %.0f%% of the cache's mask; check that "
            "their runs are registered like the others'",
            subj.subject,
            100 * coverage,
        )
    info["cache_mask_coverage"] = round(coverage, 4)
    return info, messages


def _rewrite_labels(cache: Path, label_text: bytes) -> None:
    """Replace a ``labels.tsv`` that does not belong to the cache's manifest, saying so."""
    logger.warning(
        "%s does not belong to the manifest of the cache at %s (a relabel was "
        "interrupted?): rewriting it",
        cache / "labels.tsv",
        cache,
    )
    atomic_write_bytes(cache / "labels.tsv", label_text)


def _rename_staged(cache: Path, staged: list[Path]) -> None:
    """Rename each ``.partial-<pid>`` file of ``staged`` to its final name, in place in the list,
    so that a failure before the manifest names them still finds (and removes) every one."""
    for tmp in list(staged):
        final = cache / tmp.name.rsplit(".partial-", 1)[0]
        os.replace(tmp, final)
        staged[staged.index(tmp)] = final


def store_missing_mean_epis(
    cache: Path, old: dict[str, Any], dataset: Dataset, progress: Progress | None
) -> dict[str, Any]:
    """Store the mean EPI of each person asked for whom a cache made before it existed lacks
    (their runs are read once more; their arrays, the keys and the labels stay as they were);
    return the manifest, replaced atomically once every file is in place when any was added."""
    shape = tuple(int(v) for v in old["grid"]["shape"])
    affine = np.asarray(old["grid"]["affine"], dtype=np.float64)
    lacking = [
        subj
        for subj in dataset.subjects
        if subj.subject in old["subjects"]
        and not (
            isinstance(name := old["subjects"][subj.subject].get("mean_epi"), str)
            and (cache / name).is_file()
        )
    ]
    if not lacking:
        return old
    total_runs = sum(len(subj.runs) for subj in lacking)
    done = 0
    subjects = dict(old["subjects"])
    for subj in lacking:
        same_grid = subj.shape == shape and np.allclose(subj.affine, affine, atol=1e-3)
        recorded = subjects[subj.subject].get("runs", [])
        run_means = []
        for k, run in enumerate(subj.runs):
            if not (k < len(recorded) and recorded[k].get("blank")):
                run_means.append(run_mean(run, shape, affine, same_grid))
            done += 1
            if progress is not None:
                progress(done / total_runs, f"sub-{subj.subject} run {run.run} (mean EPI)")
        name = mean_epi_file(subj.subject)
        save_mean_epi(cache / name, mean_epi(run_means, shape))
        subjects[subj.subject] = {**subjects[subj.subject], "mean_epi": name}
    manifest = {**old, "subjects": subjects}
    atomic_write_json(cache / "manifest.json", manifest)
    logger.info(
        "stored the mean EPI of %s in the cache at %s (made before prepare stored it)",
        ", ".join(f"sub-{subj.subject}" for subj in lacking),
        cache,
    )
    return manifest
