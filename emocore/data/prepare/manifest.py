"""The cache's manifest: the one on disk, how it differs from what is asked for now, what an
older emocore left out of it, and the ``dataset_description.json`` written beside it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from emocore._io import atomic_write_json
from emocore.data.cache import (
    CACHE_FORMAT,
    array_fingerprint,
    array_problems,
    labels_sha256,
    read_manifest,
)
from emocore.data.derivatives import write_dataset_description
from emocore.data.prepare.options import BEFORE_CLEANING, PrepareOptions
from emocore.errors import CacheError

logger = logging.getLogger(__name__)


# What changes the voxel data (the entity options choose files, whose fingerprints then differ).
VOLUME_OPTIONS = ("cache_format", "grid_mm", "nonfinite", "detrend", "high_pass", "confounds")


_MISSING = object()


def existing_manifest(cache: Path, force: bool) -> dict[str, Any] | None:
    """The cache's manifest; None when there is none. A damaged one (not JSON, keys missing)
    is an error: without it prepare cannot tell whom the cache holds, and must not drop them.
    ``force`` rebuilds over it."""
    path = cache / "manifest.json"
    if not path.is_file():
        return None
    try:
        return read_manifest(path)
    except CacheError as exc:
        if force:
            logger.warning("%s; --force: rebuilding the cache from scratch", exc)
            return None
        held = sorted(p.name for p in cache.glob("sub-*.npy") if "_" not in p.name)
        raise CacheError(
            f"{exc}. Without it prepare cannot tell whom the cache holds (its arrays: "
            f"{', '.join(held) or 'none'}), and a --force rebuild keeps only the people you ask for"
        ) from exc


def differences(
    old: dict[str, Any], opts: PrepareOptions, annotation_sha: dict[str, str]
) -> dict[str, str]:
    """What differs between how the cache was made and how it is asked for now, in words."""
    out: dict[str, str] = {}
    if old.get("cache_format") != CACHE_FORMAT:
        out["cache_format"] = (
            f"cache format {old.get('cache_format')} in the cache, {CACHE_FORMAT} now"
        )
    recorded = {**BEFORE_CLEANING, **(old.get("options") or {})}
    for name, value in asdict(opts).items():
        was = recorded.get(name, _MISSING)
        if was != value:
            shown = "not recorded" if was is _MISSING else repr(was)
            out[name] = f"{name} {shown} in the cache, {value!r} now"
    were = (old.get("labels") or {}).get("annotation_sha256") or {}
    changed = sorted(
        k for k in set(were) | set(annotation_sha) if were.get(k) != annotation_sha.get(k)
    )
    if changed:
        out["annotations"] = f"annotation file(s) {', '.join(changed)} differ from the cache's"
    return out


def stored_fingerprints(old: dict[str, Any], subject: str) -> list[str | None]:
    return [r.get("fingerprint") for r in old["subjects"][subject].get("runs", [])]


def merge_warnings(*lists: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(w for ws in lists for w in ws))


def absolute(path: str | Path) -> str:
    """``path`` as the absolute path the manifest records (links followed, ``~`` expanded)."""
    return str(Path(path).expanduser().resolve())


def labels_belong(cache: Path, manifest: dict[str, Any], fresh: bytes) -> bool:
    """Whether the cache's ``labels.tsv`` is the table its manifest was written with: the
    SHA-256 the manifest records, or (a manifest from before the hash was recorded) the
    table these label options make, byte for byte. False for a missing or unreadable file."""
    try:
        data = (cache / "labels.tsv").read_bytes()
    except OSError:
        return False
    recorded = (manifest.get("labels") or {}).get("sha256")
    if isinstance(recorded, str):
        return labels_sha256(data) == recorded
    return data == fresh


def with_array_fingerprints(cache: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with the :func:`~emocore.data.cache.array_fingerprint` of each array a cache
    made before they were recorded lacks (sound arrays only: prepare has checked them)."""
    lacking = [s for s, info in manifest["subjects"].items() if "array_fingerprint" not in info]
    if not lacking:
        return manifest
    damaged = array_problems(cache, manifest, content=False)
    subjects = dict(manifest["subjects"])
    for subject in lacking:
        if subject not in damaged:
            path = cache / subjects[subject]["file"]
            subjects[subject] = {**subjects[subject], "array_fingerprint": array_fingerprint(path)}
    return {**manifest, "subjects": subjects}


def record_missing(
    cache: Path, old: dict[str, Any], label_text: bytes, **source_paths: str
) -> dict[str, Any]:
    """The manifest of an up-to-date cache made by an older emocore, completed with what this
    one records: the label table's hash, the arrays' fingerprints and absolute source paths
    (the ones given now, where it recorded paths relative to where prepare ran). Written when
    anything was added; a cache that cannot be written (read-only) stays as it was."""
    manifest = with_array_fingerprints(cache, old)
    labels = dict(manifest.get("labels") or {})
    if "sha256" not in labels:
        labels["sha256"] = labels_sha256(label_text)  # labels_belong has found them equal
        manifest = {**manifest, "labels": labels}
    source = dict(manifest.get("source") or {})
    for key, value in source_paths.items():  # root, annotations, folder: the ones read now
        if isinstance(source.get(key), str) and not Path(source[key]).is_absolute():
            source[key] = value
    if source != (manifest.get("source") or {}):
        manifest = {**manifest, "source": source}
    if manifest == old:
        return old
    try:
        atomic_write_json(cache / "manifest.json", manifest)
    except OSError as exc:
        logger.info("could not complete the manifest of %s (%s); left as it was", cache, exc)
        return old
    logger.info(
        "recorded in the manifest of %s what this emocore checks (label-table hash, array "
        "fingerprints, absolute source paths)",
        cache,
    )
    return manifest


def describe(folder: Path, manifest: dict[str, Any]) -> None:
    """The cache's ``dataset_description.json`` (a BIDS derivative of the folders it read)."""
    source = manifest.get("source") or {}
    found = [source.get("root")] + [
        info.get("source_root") for info in (manifest.get("subjects") or {}).values()
    ]
    roots = [r for r in dict.fromkeys([*found, source.get("annotations")]) if r]
    cleaning = manifest.get("cleaning") or {}
    removed = ", ".join(
        part
        for part, on in (
            ("linear trend", cleaning.get("detrend")),
            (f"cosine drift below {cleaning.get('high_pass_hz')} Hz", cleaning.get("high_pass_hz")),
            (f"fMRIPrep confounds ({cleaning.get('confounds')})", cleaning.get("confounds")),
        )
        if on
    )
    write_dataset_description(
        folder,
        name="emocore volume cache",
        source_datasets=roots,
        description=(
            "BOLD runs as float16 arrays (sub-XX.npy, volumes x grid), each voxel's time series "
            f"{'with ' + removed + ' removed and ' if removed else ''}z-scored per run inside "
            "the brain mask (mask.npy); each person's mean EPI before cleaning, float32 "
            "(sub-XX_mean-epi.npy); one label per volume (labels.tsv); see manifest.json"
        ),
    )
