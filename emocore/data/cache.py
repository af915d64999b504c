"""Read the volume cache that :func:`emocore.data.prepare.prepare_cache` writes.

Layout of a cache folder::

    manifest.json      what is here and how it was made (see MANIFEST KEYS below)
    labels.tsv         one row per volume of the movie (run, volume, movie_time, label, ...)
    mask.npy           uint8 brain mask shared by all subjects: the intersection of the masks of
                       the people the cache was built with (people added later do not change it)
    sub-XX.npy         float16, shape (volumes, x, y, z): every run of one person, z-scored per
                       run, zero outside that person's brain, in run order
    sub-XX_mean-epi.npy
                       float32, shape (x, y, z): the person's mean EPI on the grid (the mean of
                       their runs' mean images before cleaning), an anatomical underlay for the
                       viewers; caches made before it existed lack it (:meth:`VolumeCache.mean_epi`)

MANIFEST KEYS: ``volume_key`` hashes what makes the voxel data (format, grid option, NaN policy
and each person's source fingerprints, see :func:`volume_key`), ``label_key`` what makes the label
table; :attr:`VolumeCache.key` joins the two. ``subjects`` maps each person to their file, runs
(with source fingerprints), mask size and ``mean_epi`` file (which no key covers: it changes
nothing a model trains on) and ``array_fingerprint`` (see :func:`array_fingerprint`: what the
array held when prepare wrote it). ``labels.sha256`` is the SHA-256 of the ``labels.tsv`` the
manifest belongs to. ``earlier_subjects`` lists the sets of people the cache held before people
were added to it, so :meth:`VolumeCache.recognises` still knows the key a run recorded before an
addition. ``source`` records the folders read (absolute since this version; older caches hold
them relative to where prepare ran: :meth:`VolumeCache.source_path` finds those).

Opening a cache checks what is cheap to check: every array's header and size against the
manifest (a truncated array, or one of another dtype or shape, is a CacheError naming it).
Reading the label table checks it against ``labels.sha256`` (an interrupted relabel leaves a table
that does not belong to its manifest), and the first read of a person's array checks its
fingerprint (an array overwritten with other values).

Only numpy and pandas are needed to read it (no nibabel), so GPU machines and training jobs
stay light. Subject arrays are memory-mapped: a random volume costs one page-cache read.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from emocore import __version__
from emocore._io import os_error_message
from emocore.constants import CLASSES
from emocore.errors import CacheError

__all__ = [
    "CACHE_FORMAT",
    "VolumeCache",
    "array_fingerprint",
    "array_problems",
    "labels_sha256",
    "mean_epi_file",
    "manifest_problem",
    "open_cache",
    "read_manifest",
    "recorded_path",
    "create_cache",
    "volume_key",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the on-disk layout changes; a cache of another format must be rebuilt.
CACHE_FORMAT = 1


def mean_epi_file(subject: str) -> str:
    """The name of a person's mean-EPI file in the cache folder.

    A plain .npy, not a NIfTI: the grid's affine is in the manifest already, and the cache is
    read with numpy alone (no nibabel on training machines).
    """
    return f"sub-{subject}_mean-epi.npy"


#: An array's fingerprint reads its size, its first 4 KiB (the .npy header) and this many more
#: blocks of 4 KiB spread evenly up to its end: about 260 KiB whatever the size.
_SAMPLED_BLOCKS = 64
_BLOCK_BYTES = 4096
_fingerprints: dict[tuple[str, int, int, int, int], str] = {}


def array_fingerprint(path: str | Path) -> str:
    """A cheap content fingerprint of an array file: SHA-256 of its size, its first 4 KiB and
    64 blocks of 4 KiB spread evenly over the rest.

    ``prepare`` records it per person (``array_fingerprint`` in the manifest) and stored
    predictions record the fingerprint of the array they were made from. A truncated or
    extended file, another dtype or shape (the header), or values written over the array
    (random values, another person's data) change it; a handful of voxels changed between the
    blocks may not. It reads about 260 KiB (1-3 ms from the page cache, 65 random reads from a
    cold disk); a full SHA-256 of a native-grid person (8 GB) would take seconds. The result is
    kept per (file, size, modification time) for the life of the process, so checking an
    unchanged file again costs one ``stat``.
    """
    path = Path(path)
    info = path.stat()
    memo = (str(path.resolve()), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    known = _fingerprints.get(memo)
    if known is not None:
        return known
    size = info.st_size
    digest = hashlib.sha256(str(size).encode())
    fd = os.open(path, os.O_RDONLY)
    try:
        last = max(size - _BLOCK_BYTES, 0)  # where the last block starts
        for k in range(_SAMPLED_BLOCKS + 1 if last else 1):  # block 0 holds the .npy header
            digest.update(os.pread(fd, _BLOCK_BYTES, k * last // _SAMPLED_BLOCKS))
    finally:
        os.close(fd)
    _fingerprints[memo] = digest.hexdigest()
    return _fingerprints[memo]


def labels_sha256(data: bytes) -> str:
    """The SHA-256 a manifest records of its ``labels.tsv`` (``labels.sha256``)."""
    return hashlib.sha256(data).hexdigest()


def _array_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes of header) of a .npy file, read without mapping the data."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        return tuple(shape), np.dtype(dtype), fh.tell()


def _array_problem(path: Path, expected: tuple[int, ...]) -> str | None:
    """What is wrong with the array file at ``path`` for float16 data of shape ``expected``
    (missing, not a .npy array, another dtype or shape, cut short or too long), or None."""
    try:
        shape, dtype, header = _array_header(path)
        size = path.stat().st_size
    except FileNotFoundError:
        return "is missing"
    except PermissionError as exc:
        return f"cannot be read ({exc.strerror})"
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # numpy's header parser
        return f"is not a .npy array ({exc})"
    if shape != expected or dtype != np.float16:
        return (
            f"holds {dtype} {shape}, the manifest says float16 {expected}: it was replaced or "
            "rewritten after the cache was made"
        )
    data = size - header
    need = int(np.prod(expected)) * 2
    if data != need:
        what = "is cut short" if data < need else "is longer than its header says"
        return f"{what}: its header promises {need:,} bytes of data, the file holds {data:,}"
    return None


def array_problems(
    folder: str | Path, manifest: Mapping[str, Any], *, content: bool = True
) -> dict[str, str]:
    """Person -> what is wrong with their array in the cache ``folder`` (see :func:`_array_problem`),
    and, with ``content``, whether it still has the :func:`array_fingerprint` the manifest
    recorded (caches made before fingerprints were recorded are not checked for that).
    Empty when every array is as the manifest says."""
    folder = Path(folder)
    shape = tuple(int(v) for v in manifest["grid"]["shape"])
    out: dict[str, str] = {}
    for subject, info in manifest["subjects"].items():
        path = folder / info["file"]
        problem = _array_problem(path, (int(info["n_volumes"]), *shape))
        recorded = info.get("array_fingerprint")
        if problem is None and content and isinstance(recorded, str):
            try:
                if array_fingerprint(path) != recorded:
                    problem = (
                        "no longer holds what prepare wrote: its content fingerprint differs "
                        "from the one the manifest recorded (values were written over it)"
                    )
            except OSError as exc:
                problem = f"cannot be read ({exc.strerror or exc})"
        if problem is not None:
            out[subject] = f"{path} {problem}"
    return out


def _rebuild_hint(cache: Path) -> str:
    return (
        f"re-run `emocore prepare` with the cache's --bids and --annotations and --cache {cache}: "
        "it finds the damage and rebuilds the cache (or add --force to rebuild it from scratch)"
    )


def volume_key(
    *,
    grid_mm: float | None,
    nonfinite: str,
    sources: Mapping[str, Sequence[str]],
    cache_format: int = CACHE_FORMAT,
    cleaning: Mapping[str, Any] | None = None,
) -> str:
    """SHA-256 of what makes the voxel data of the people in ``sources`` (person -> run fingerprints).

    :func:`~emocore.data.prepare.prepare_cache` stores it as the manifest's ``volume_key``; the
    cache recomputes it for a subset of its people in :meth:`VolumeCache.key_for`.
    """
    inputs: dict[str, Any] = {
        "cache_format": cache_format,
        "grid_mm": grid_mm,
        "nonfinite": nonfinite,
        "sources": {s: list(f) for s, f in sources.items()},
    }
    if cleaning is not None and (
        cleaning.get("detrend")
        or cleaning.get("high_pass_hz") is not None
        or cleaning.get("confounds")
    ):  # left out otherwise, so caches made before drift removal keep their key
        inputs["cleaning"] = dict(cleaning)
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _subject_problem(subject: str, info: Any) -> str | None:
    if not isinstance(info, dict):
        return f"subjects.{subject} is {type(info).__name__}, not an object"
    if not isinstance(info.get("file"), str) or not _is_int(info.get("n_volumes")):
        return f"subjects.{subject} lacks its file name or volume count"
    runs = info.get("runs")
    if not isinstance(runs, list) or not all(
        isinstance(r, dict) and all(_is_int(r.get(k)) for k in ("run", "start", "n_volumes"))
        for r in runs
    ):
        return f"subjects.{subject}.runs is not a list of runs (run, start, n_volumes)"
    return None


def manifest_problem(manifest: Any) -> str | None:
    """What makes a parsed manifest unusable (a missing or mistyped key), or None.

    Checks what every reader relies on: ``subjects`` (each with file, volume count and runs),
    ``grid`` (shape and affine), ``labels.classes``, the two keys and ``options``. The cache
    format is checked separately (an old format asks for a rebuild, not a repair).
    """
    if not isinstance(manifest, dict):
        return f"it holds {type(manifest).__name__}, not a JSON object"
    for key, kind in (
        ("subjects", dict),
        ("grid", dict),
        ("labels", dict),
        ("options", dict),
        ("volume_key", str),
        ("label_key", str),
    ):
        if key not in manifest:
            return f"it lacks the key {key!r}"
        if not isinstance(manifest[key], kind):
            return f"{key!r} is {type(manifest[key]).__name__}, not {kind.__name__}"
    for subject, info in manifest["subjects"].items():
        problem = _subject_problem(subject, info)
        if problem:
            return problem
    grid = manifest["grid"]
    shape, affine = grid.get("shape"), grid.get("affine")
    if not (
        isinstance(shape, list) and len(shape) == 3 and all(_is_int(v) and v > 0 for v in shape)
    ):
        return f"grid.shape is {shape!r}, not three positive sides"
    try:
        ok = np.asarray(affine, dtype=np.float64).shape == (4, 4)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        return "grid.affine is not a 4 x 4 matrix"
    classes = manifest["labels"].get("classes")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        return "labels.classes is not a list of class names"
    return None


def read_manifest(path: Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` at ``path``; CacheError naming it when it cannot be read,
    is not JSON (binary garbage, a cut-off file) or lacks what readers need."""
    cache = path.parent
    fix = (
        f"restore it from a backup, or rebuild the cache: `emocore prepare --bids DIR "
        f"--annotations DIR --cache {cache} --force` (or delete {cache} and run prepare again)"
    )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CacheError(f"{path} cannot be read ({exc.strerror or exc}); {fix}") from exc
    except ValueError as exc:  # not UTF-8 (binary garbage) or not JSON (cut off)
        raise CacheError(f"{path} is damaged: it is not JSON ({exc}); {fix}") from exc
    problem = manifest_problem(manifest)
    if problem and (not isinstance(manifest, dict) or manifest.get("cache_format") == CACHE_FORMAT):
        raise CacheError(f"{path} is damaged: {problem}; {fix}")
    return manifest


@dataclass(frozen=True)
class RunSpan:
    run: int
    start: int  # first row of this run in the subject array
    n_volumes: int
    blank: str | None = None  # "zero" or "constant": the source run held no signal (prepare)


class VolumeCache:
    """A prepared cache folder, opened read-only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.is_file():
            raise CacheError(
                f"no cache at {self.path} (manifest.json missing); build it with "
                f"`emocore prepare --bids DIR --annotations DIR --cache {self.path}` "
                "or `emocore demo` for the demo cohort"
            )
        self.manifest: dict[str, Any] = read_manifest(manifest_path)
        fmt = self.manifest.get("cache_format")
        if fmt != CACHE_FORMAT:
            made_by = self.manifest.get("emocore_version", "an unknown version")
            raise CacheError(
                f"the cache at {self.path} was made by emocore {made_by} (cache format {fmt}); "
                f"emocore {__version__} reads format {CACHE_FORMAT}. Rebuild it: run "
                f"`emocore prepare` with the same --bids/--annotations and --cache {self.path}"
            )
        self._arrays: dict[str, np.ndarray] = {}
        damaged = array_problems(self.path, self.manifest, content=False)
        if damaged:
            more = f" ({len(damaged) - 1} more array(s) too)" if len(damaged) > 1 else ""
            raise CacheError(
                f"{next(iter(damaged.values()))}; the cache at {self.path} is damaged{more}: "
                + _rebuild_hint(self.path)
            )

    # -- what is in the cache ---------------------------------------------------------------
    @property
    def subjects(self) -> list[str]:
        return list(self.manifest["subjects"])

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest["grid"]["shape"])  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        return np.asarray(self.manifest["grid"]["affine"], dtype=np.float64)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["labels"]["classes"])

    @property
    def key(self) -> str:
        """Content hash of the cache (volumes and labels): runs record it as their data version."""
        return f"{self.manifest['volume_key'][:16]}-{self.manifest['label_key'][:16]}"

    def key_for(self, subjects: Iterable[str]) -> str:
        """The :attr:`key` a cache holding only ``subjects`` (same data, same labels) would have.

        Adding people leaves the others' arrays as they were, so the key of the cache before an
        addition is ``key_for(the people it held then)``; a changed source or label table changes
        it. Needs the source fingerprints that ``prepare_cache`` stores.
        """
        sources = {}
        for subject in subjects:
            runs = self._subject_info(subject)["runs"]
            if any("fingerprint" not in r for r in runs):
                raise CacheError(
                    f"the cache at {self.path} has no source fingerprints for sub-{subject} "
                    "(it was not made by `emocore prepare`), so it has no key per set of people"
                )
            sources[subject] = [r["fingerprint"] for r in runs]
        options = self.manifest.get("options", {})
        vkey = volume_key(
            grid_mm=options.get("grid_mm"),
            nonfinite=options.get("nonfinite", "error"),
            sources=sources,
            cache_format=self.manifest.get("cache_format", CACHE_FORMAT),
            cleaning=self.manifest.get("cleaning"),
        )
        return f"{vkey[:16]}-{self.manifest['label_key'][:16]}"

    def recognises(self, key: str | None) -> bool:
        """Whether a run that recorded ``key`` was trained on data this cache still holds unchanged.

        True for the present key and for the key of every earlier state of the cache before
        people were added (``earlier_subjects`` in the manifest), recomputed from the data now
        here, so a rebuilt person or a rewritten label table is not recognised.
        """
        if not key:
            return False
        if key == self.key:
            return True
        for subjects in self.manifest.get("earlier_subjects", []):
            try:
                if self.key_for(subjects) == key:
                    return True
            except CacheError:
                continue
        return False

    @cached_property
    def mask(self) -> np.ndarray:
        path = self.path / "mask.npy"
        try:
            mask = np.load(path)
        except (OSError, ValueError, EOFError) as exc:  # missing, unreadable, not an array
            raise self._file_error(path, exc) from exc
        if mask.shape != self.grid_shape:
            raise CacheError(
                f"{path} holds a {mask.shape} mask, the manifest says the grid is "
                f"{self.grid_shape}; rebuild the cache with `emocore prepare --force`"
            )
        return mask.astype(bool)

    @cached_property
    def labels(self) -> pd.DataFrame:
        """The per-volume label table of the movie (identical for every subject).

        A CacheError when it is not the table the manifest was written with (its SHA-256 is not
        the manifest's ``labels.sha256``): a relabel killed between writing the two leaves the
        labels of other options under the manifest. Caches made before the hash was recorded
        are read as they are."""
        path = self.path / "labels.tsv"
        try:
            data = path.read_bytes()
            table = pd.read_csv(io.BytesIO(data), sep="\t", keep_default_na=False)
        except (OSError, ValueError) as exc:  # missing, unreadable, empty, not a table
            raise self._file_error(path, exc) from exc
        recorded = self.manifest["labels"].get("sha256")
        if isinstance(recorded, str) and labels_sha256(data) != recorded:
            raise CacheError(
                f"{path} does not belong to the cache's manifest ({self.path / 'manifest.json'}):"
                " its SHA-256 is not the one the manifest recorded, so it may hold the labels "
                "of other options (lag, recipe, observers), e.g. after a relabel that was "
                "interrupted. Re-run `emocore prepare` with the cache's --bids and --annotations, "
                f"the label options you want and --cache {self.path}: it rewrites the label table"
            )
        return table

    def _file_error(self, path: Path, exc: BaseException) -> CacheError:
        """A CacheError for a cache file that cannot be read, with the fix its error calls for."""
        if isinstance(exc, PermissionError):
            return CacheError(os_error_message(exc, f"read {path}", choose="another --cache"))
        return CacheError(
            f"{path} is missing or damaged ({exc}); rebuild the cache with `emocore prepare "
            f"--bids DIR --annotations DIR --cache {self.path} --force`"
        )

    def runs(self, subject: str) -> list[RunSpan]:
        info = self._subject_info(subject)
        return [RunSpan(r["run"], r["start"], r["n_volumes"], r.get("blank")) for r in info["runs"]]

    def _subject_info(self, subject: str) -> dict[str, Any]:
        try:
            return self.manifest["subjects"][subject]
        except KeyError:
            raise CacheError(
                f"subject '{subject}' is not in the cache at {self.path}; it holds "
                f"{', '.join(self.subjects)}. Add it with `emocore prepare` or pick one of those"
            ) from None

    # -- voxel data -------------------------------------------------------------------------
    def array(self, subject: str) -> np.ndarray:
        """The subject's float16 array (volumes, x, y, z), memory-mapped read-only."""
        arr = self._arrays.get(subject)
        if arr is None:
            info = self._subject_info(subject)
            path = self.path / info["file"]
            self.check_array(subject)
            try:
                arr = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise self._file_error(path, exc) from exc
            expected = (info["n_volumes"], *self.grid_shape)
            if arr.shape != expected or arr.dtype != np.float16:  # changed since the check
                raise CacheError(
                    f"{path} holds {arr.dtype} {arr.shape}, the manifest says float16 {expected}; "
                    + _rebuild_hint(self.path)
                )
            self._arrays[subject] = arr
        return arr

    def check_array(self, subject: str) -> str:
        """The :func:`array_fingerprint` of the person's array now, once its header, size and
        fingerprint agree with the manifest; a CacheError naming the file and the fix otherwise.

        Cheap (a few hundred KiB read, then one ``stat`` while the file is unchanged): done on
        the first :meth:`array` of a person and before a stored prediction is reused."""
        info = self._subject_info(subject)
        manifest = {**self.manifest, "subjects": {subject: info}}
        damaged = array_problems(self.path, manifest)
        if damaged:
            raise CacheError(
                f"{damaged[subject]}; the cache at {self.path} is damaged: "
                + _rebuild_hint(self.path)
            )
        try:
            return array_fingerprint(self.path / info["file"])
        except OSError as exc:
            raise self._file_error(self.path / info["file"], exc) from exc

    def source_path(self, what: str = "root") -> Path | None:
        """A folder the manifest's ``source`` records (``root``, ``folder`` or ``annotations``),
        as an absolute path; None when none is recorded or it cannot be found.

        Caches made before prepare stored absolute paths hold them relative to where prepare
        ran, which was not recorded: such a path is looked up among the absolute folders the
        cache's ``dataset_description.json`` lists (its SourceDatasets), matched by their last
        parts, and must exist."""
        value = (self.manifest.get("source") or {}).get(what)
        return recorded_path(self.path, value) if isinstance(value, str) and value else None

    def mean_epi(self, subject: str) -> np.ndarray | None:
        """The person's mean EPI, float32 (x, y, z) on the grid: the mean over their runs (blank
        runs left out) of each run's mean raw intensity, after any resampling and before cleaning.

        None for a cache made before prepare stored it (re-running ``emocore prepare`` adds it).
        """
        name = self._subject_info(subject).get("mean_epi")
        if not isinstance(name, str) or not (self.path / name).is_file():
            return None
        path = self.path / name
        try:
            image = np.load(path)
        except (OSError, ValueError, EOFError) as exc:
            raise CacheError(
                f"{path} is damaged ({exc}); delete it and re-run `emocore prepare` with the "
                "same --bids/--annotations to store it again"
            ) from exc
        if image.shape != self.grid_shape:
            raise CacheError(
                f"{path} holds a {image.shape} image, the manifest says the grid is "
                f"{self.grid_shape}; delete it and re-run `emocore prepare` to store it again"
            )
        return np.asarray(image, dtype=np.float32)

    def volume(self, subject: str, run: int, volume: int) -> np.ndarray:
        """One volume as float16 (x, y, z), read without loading the rest of the subject."""
        for span in self.runs(subject):
            if span.run == run:
                if not 0 <= volume < span.n_volumes:
                    raise CacheError(
                        f"run {run} of sub-{subject} has volumes 0-{span.n_volumes - 1}; got {volume}"
                    )
                return np.asarray(self.array(subject)[span.start + volume])
        raise CacheError(f"sub-{subject} has no run {run} in the cache at {self.path}")

    def read(self, subject: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows of one subject's array as float16 (n, x, y, z); rows are read in sorted order."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.grid_shape), dtype=np.float16)
        out[order] = self.array(subject)[rows[order]]
        return out

    # -- metadata ---------------------------------------------------------------------------
    def table(self, subjects: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per (subject, volume): subject, row (in the subject array) and the label columns."""
        subjects = self.subjects if subjects is None else list(subjects)
        labels = self.labels
        frames = []
        for subject in subjects:
            spans = self.runs(subject)
            n = sum(s.n_volumes for s in spans)
            if n != len(labels):
                raise CacheError(
                    f"sub-{subject} has {n} volumes in the cache but the label table has "
                    f"{len(labels)}; rebuild the cache with `emocore prepare`"
                )
            frame = labels.copy()
            frame.insert(0, "subject", subject)
            frame.insert(1, "row", np.arange(n, dtype=np.int64))
            frames.append(frame)
        if not frames:
            return labels.iloc[:0].assign(
                subject=pd.Series(dtype=str), row=pd.Series(dtype=np.int64)
            )
        return pd.concat(frames, ignore_index=True)


def recorded_path(cache: str | Path, value: str) -> Path | None:
    """The absolute folder a cache's manifest means by ``value`` (see
    :meth:`VolumeCache.source_path`): itself when absolute, else the one folder of the cache's
    ``dataset_description.json`` (SourceDatasets, absolute ``file://`` URIs) that ends with its
    parts and exists; None when there is none."""
    path = Path(value)
    if path.is_absolute():
        return path
    parts = [p for p in path.parts if p not in (".", "..")]
    try:
        description = json.loads((Path(cache) / "dataset_description.json").read_text())
        uris = [str(d.get("URL", "")) for d in description.get("SourceDatasets", [])]
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    found = []
    for uri in uris:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            continue
        candidate = Path(unquote(parsed.path))
        if parts and list(candidate.parts[-len(parts) :]) == parts and candidate.is_dir():
            found.append(candidate)
    return found[0] if len(set(found)) == 1 else None


def open_cache(path: str | Path) -> VolumeCache:
    """Open a cache folder; :class:`~emocore.errors.CacheError` says how to build a missing one."""
    return VolumeCache(path)


def create_cache(
    path: str | Path,
    *,
    grid: Sequence[int],
    labels: pd.DataFrame,
    subjects: Sequence[str],
    affine: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    note: str = "made by create_cache",
) -> dict[str, np.memmap]:
    """Lay out an empty cache at ``path`` and return one writable float16 memmap per subject.

    For benchmarks and tests that make volumes themselves (``emocore bench`` writes planted
    volumes at any grid this way); real data go through :func:`emocore.data.prepare.prepare_cache`.
    ``labels`` is the per-volume table (needs ``run`` and ``label``; its length is the number of
    volumes per subject). Fill the arrays, then ``flush()`` them and open the cache with
    :func:`open_cache`. The folder must not exist yet.
    """
    path = Path(path)
    if path.exists():
        raise CacheError(f"{path} already exists; create_cache only makes new caches")
    grid = tuple(int(g) for g in grid)
    if len(grid) != 3 or min(grid) < 1:
        raise CacheError(f"grid must be three positive sides (x, y, z); got {grid}")
    missing = {"run", "label"} - set(labels.columns)
    if missing:
        raise CacheError(f"the label table needs the columns {sorted(missing)}")
    path.mkdir(parents=True)
    n = len(labels)
    runs, start = [], 0
    for run, count in labels.groupby("run", sort=False).size().items():
        runs.append({"run": int(run), "start": start, "n_volumes": int(count)})
        start += int(count)
    label_text = labels.to_csv(sep="\t", index=False).encode()
    (path / "labels.tsv").write_bytes(label_text)
    np.save(path / "mask.npy", (np.ones(grid, bool) if mask is None else mask).astype(np.uint8))
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=float)
    arrays = {
        str(s): np.lib.format.open_memmap(
            path / f"sub-{s}.npy", mode="w+", dtype=np.float16, shape=(n, *grid)
        )
        for s in subjects
    }
    manifest = {
        "cache_format": CACHE_FORMAT,
        "emocore_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "volume_key": uuid.uuid4().hex,
        "label_key": uuid.uuid4().hex,
        "options": {"note": note},
        "source": {"root": None, "layout": "arrays", "annotations": None},
        "grid": {
            "shape": list(grid),
            "affine": affine.tolist(),
            "voxel_mm": [float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0))],
        },
        "labels": {
            "file": "labels.tsv",
            "classes": list(CLASSES),
            "sha256": labels_sha256(label_text),
        },
        "warnings": [],
        "subjects": {
            str(s): {"file": f"sub-{s}.npy", "n_volumes": n, "runs": runs} for s in subjects
        },
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return arrays
