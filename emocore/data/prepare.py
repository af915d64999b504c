"""Build the volume cache: BOLD runs on disk + annotations -> z-scored float16 arrays + labels.

Each run is decompressed once, in chunks of volumes, so memory stays bounded whatever the size of
the cohort: a chunk is (optionally) resampled, shifted by a per-voxel reference and written as
float16; the per-voxel mean and SD of the run are accumulated on the way. A second, cheap pass
over the float16 rows just written (from the page cache, not the .nii.gz) z-scores them and zeroes
voxels outside the brain.

The cache is built in a sibling folder ``<cache>.partial-<pid>`` and renamed into place at the
end, so a killed job never leaves half a cache; leftovers of dead jobs are removed on the next run.
Re-running with the same inputs and options does nothing; changing only the label options
(lag, recipe, observers) rewrites the label table and keeps the voxel data. People the cache does
not hold yet are added next to the others (only their runs are read; the manifest that names them
is replaced last), and people it holds are never dropped unless ``force`` rebuilds it with exactly
the people asked for: see :func:`prepare`.

A re-run also checks what the cache holds against its manifest: a ``labels.tsv`` that is not the
one the manifest records (a relabel killed between its two writes) is rewritten, and arrays cut
short, rewritten as another dtype or overwritten (their fingerprint changed) make it rebuild,
where it would otherwise have called the cache up to date. The manifest records absolute paths.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import logging
import os
import shutil
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import nibabel as nib
import numpy as np
from nibabel.arrayproxy import ArrayProxy

from emocore import __version__
from emocore._io import atomic_path, atomic_write_bytes, atomic_write_json, os_error_message
from emocore.constants import CLASSES
from emocore.data.bids import BoldRun, Dataset, SubjectRuns, discover_dataset
from emocore.data.cache import (
    CACHE_FORMAT,
    VolumeCache,
    array_fingerprint,
    array_problems,
    labels_sha256,
    manifest_problem,
    mean_epi_file,
    read_manifest,
    recorded_path,
    volume_key,
)
from emocore.data.clean import RunDesign, parse_confounds, run_design
from emocore.data.derivatives import write_dataset_description
from emocore.data.labels import (
    build_volume_labels,
    check_lag,
    find_annotation_files,
    label_counts,
    load_annotations,
)
from emocore.errors import CacheError, ConfigError, DataError, check_choice
from emocore.progress import Progress

__all__ = ["PrepareOptions", "PrepareResult", "cleaning_sentence", "prepare", "prepare_cache"]

logger = logging.getLogger(__name__)


_CHUNK_BYTES = 256 * 2**20  # float32 bytes of BOLD decompressed at a time


@dataclass(frozen=True, kw_only=True)
class PrepareOptions:
    """How the cache is made; saved in the manifest.

    Which files: ``task``, ``acq``, ``space`` and ``desc`` choose among BIDS entities (see
    :func:`~emocore.data.bids.discover_dataset`). What is removed from every voxel's time series
    before z-scoring (see :mod:`emocore.data.clean`): a linear trend (``detrend``), cosine drift
    below ``high_pass`` Hz (None: none) and, for fMRIPrep input, the ``confounds`` strategy of
    ``nilearn.interfaces.fmriprep.load_confounds`` (e.g. ``'motion,wm_csf'``).
    """

    grid_mm: float | None = None
    lag_s: float = 4.0
    recipe: str = "poster"
    observers: str | None = None
    nonfinite: str = "error"  # or "zero"
    task: str | None = None
    acq: str | None = None
    space: str | None = None
    desc: str | None = None
    detrend: bool = True
    high_pass: float | None = 0.008
    confounds: str | None = None

    def __post_init__(self) -> None:
        # The messages name the options as `emocore prepare` spells them (--grid-mm), which is
        # what a user of the CLI or the dashboard typed; the field names follow in brackets.
        if self.grid_mm is not None and not 0.5 <= self.grid_mm <= 20:
            raise ConfigError(
                f"--grid-mm (grid_mm) must be a voxel size from 0.5 to 20 mm, or left out to keep "
                f"the data's own grid; {self.grid_mm} was given"
            )
        object.__setattr__(self, "lag_s", check_lag(self.lag_s))
        check_choice("nonfinite", self.nonfinite, ("error", "zero"))
        if self.high_pass is not None and not 0.0 < self.high_pass < 0.25:
            raise ConfigError(
                f"--high-pass (high_pass) must be a cut-off in Hz above 0 and below the Nyquist "
                f"frequency of a 2-s TR (0.25 Hz), or 0 (None) for no high-pass; "
                f"{self.high_pass} was given (0.008 Hz, a 125-s period, is usual)"
            )
        if not isinstance(self.detrend, bool):
            raise ConfigError(
                f"--detrend/--no-detrend (detrend) must be True or False; {self.detrend!r} was given"
            )
        confounds = parse_confounds(self.confounds)
        object.__setattr__(self, "confounds", ",".join(confounds) or None)

    @classmethod
    def from_manifest(cls, options: dict[str, Any]) -> PrepareOptions:
        """The options a cache's manifest records; caches made before drift removal existed
        (no ``detrend`` recorded) were made without it, and read so. Options prepare does not
        know (a cache laid out by ``create_cache`` for a benchmark) are a CacheError."""
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise CacheError(
                f"the cache's manifest records options prepare does not know ({', '.join(unknown)}"
                "): it was not made by `emocore prepare` (a benchmark cache?), so people cannot "
                "be added to it the way it was made. Build a cache with `emocore prepare`"
            )
        try:
            return cls(**{**_BEFORE_CLEANING, **options})
        except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
            raise CacheError(
                f"the options the cache's manifest records cannot be used ({exc}); rebuild the "
                "cache with `emocore prepare --force`"
            ) from exc

    @property
    def cleaning(self) -> dict[str, Any]:
        """What is removed from each run, in the words of ``nilearn.signal.clean``."""
        return {
            "detrend": self.detrend,
            "high_pass_hz": self.high_pass,
            "filter": "cosine" if self.high_pass is not None else None,
            "confounds": self.confounds,
            "standardize": "zscore per run and voxel, after the regressors above",
        }

    @property
    def entities(self) -> dict[str, str | None]:
        return {"task": self.task, "acq": self.acq, "space": self.space, "desc": self.desc}


def cleaning_sentence(options: dict[str, Any]) -> str:
    """What a cache's recorded ``options`` removed from each run, in words (for pages and CLI)."""
    options = {**_BEFORE_CLEANING, **options}
    parts = ["linear trend"] if options.get("detrend") else []
    if options.get("high_pass") is not None:
        parts.append(f"drift slower than {options['high_pass']:g} Hz (cosine)")
    if options.get("confounds"):
        parts.append(f"fMRIPrep confounds ({options['confounds']})")
    removed = ", ".join(parts) + " removed" if parts else "mean removed only (no drift removal)"
    return f"{removed}, then z-scored per voxel"


#: Options a manifest written before they existed means (nothing was removed, no entity chosen).
_BEFORE_CLEANING: dict[str, Any] = {
    "detrend": False,
    "high_pass": None,
    "confounds": None,
    "acq": None,
    "space": None,
    "desc": None,
}


# -- fingerprints ------------------------------------------------------------------------------
def _fingerprint(path: Path, head: int = 2**20) -> str:
    """Size plus SHA-256 of the first and last MiB: cheap on 1.5 GB files, catches re-exports."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(head))
        if size > head:
            fh.seek(max(size - head, head))
            h.update(fh.read(head))
    return h.hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# -- grid ------------------------------------------------------------------------------------
def _grid_difference(shape, affine, ref_shape, ref_affine, ref: str) -> str:
    """How one grid differs from ``ref``'s, in words: the sides, else the affine (two grids of
    the same sides may still map voxels to different places)."""
    if tuple(shape) != tuple(ref_shape):
        return f"is on grid {tuple(shape)}, {ref} on {tuple(ref_shape)}"
    affine, ref_affine = np.asarray(affine, float), np.asarray(ref_affine, float)
    voxel = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    ref_voxel = np.sqrt((ref_affine[:3, :3] ** 2).sum(axis=0))
    parts = []
    if not np.allclose(voxel, ref_voxel, atol=1e-3):
        parts.append(f"voxels of {_mm(voxel)} mm against {_mm(ref_voxel)}")
    if not np.allclose(affine[:3, 3], ref_affine[:3, 3], atol=1e-3):
        parts.append(f"origin at {_mm(affine[:3, 3])} mm against {_mm(ref_affine[:3, 3])}")
    if not np.allclose(affine[:3, :3] / voxel, ref_affine[:3, :3] / ref_voxel, atol=1e-3):
        parts.append("axes rotated or flipped")
    return (
        f"has the grid {tuple(shape)} of {ref} but another affine (voxel-to-world mapping: "
        f"{'; '.join(parts) or 'it differs by more than 0.001'}), so the same voxel is a "
        "different place in the brain"
    )


def _mm(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _target_grid(
    dataset: Dataset, grid_mm: float | None
) -> tuple[tuple[int, int, int], np.ndarray]:
    ref = dataset.subjects[0]
    if grid_mm is None:
        for s in dataset.subjects[1:]:
            if s.shape != ref.shape or not np.allclose(s.affine, ref.affine, atol=1e-3):
                raise DataError(
                    f"sub-{s.subject} ({s.runs[0].path}) "
                    + _grid_difference(
                        s.shape, s.affine, ref.shape, ref.affine, f"sub-{ref.subject}"
                    )
                    + "; a cache needs one grid for everybody: pass --grid-mm to resample"
                )
        return ref.shape, ref.affine
    # Same field of view as the first subject, voxels of grid_mm on RAS axes.
    corners = np.array(
        [
            [i, j, k, 1]
            for i in (0, ref.shape[0] - 1)
            for j in (0, ref.shape[1] - 1)
            for k in (0, ref.shape[2] - 1)
        ],
        dtype=float,
    )
    world = (ref.affine @ corners.T).T[:, :3]
    lo, hi = world.min(axis=0), world.max(axis=0)
    voxel = np.sqrt((ref.affine[:3, :3] ** 2).sum(axis=0))
    extent = hi - lo + voxel
    shape = tuple(max(1, int(round(e / grid_mm))) for e in extent)
    affine = np.diag([grid_mm, grid_mm, grid_mm, 1.0])
    affine[:3, 3] = lo - voxel / 2 + grid_mm / 2
    return shape, affine  # type: ignore[return-value]


def _resample(
    chunk: np.ndarray, src_affine: np.ndarray, shape: tuple[int, int, int], affine: np.ndarray
) -> np.ndarray:
    from nilearn.image import resample_img

    img = nib.Nifti1Image(chunk, src_affine)
    out = resample_img(
        img,
        target_affine=affine,
        target_shape=shape,
        interpolation="continuous",
        force_resample=True,
        copy_header=True,
    )
    return np.asarray(out.dataobj, dtype=np.float32)


# -- one run -----------------------------------------------------------------------------------
_FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504


def _scaling(path: Path) -> str:
    """The header's scl_slope and scl_inter as text, for error messages."""
    try:  # nibabel moves the header's scaling into the array proxy when it loads the file
        # load() is typed FileBasedImage and dataobj ArrayLike; a NIfTI file's is an ArrayProxy
        proxy = cast(ArrayProxy, cast(nib.Nifti1Image, nib.load(path)).dataobj)
        slope, inter = float(proxy.slope), float(proxy.inter)
    except Exception:  # the message is about the data; an unreadable header adds nothing
        return "its scaling"
    return f"its header's scl_slope {slope:.3g} and scl_inter {inter:.3g}"


def _fit_float16(values: np.ndarray, run: BoldRun, first: int, nonfinite: str, when: str):
    """``values`` (t, voxels) once every one fits float16; as the ``nonfinite`` option says else.

    A wrong header scaling (scl_slope 1e30) gives values float16 cannot hold, which the cast
    would turn into Inf and then NaN: with nonfinite='error' that is a DataError naming the file,
    with 'zero' those values are set to 0, as NaN/Inf voxels are.
    """
    bad = ~np.isfinite(values) | (np.abs(values) > _FLOAT16_MAX)
    if not bad.any():
        return values
    vols = sorted(set((np.nonzero(bad.any(axis=1))[0] + first).tolist()))
    if nonfinite == "error":
        finite = np.abs(values[np.isfinite(values)])
        largest = f"; the largest is {finite.max():.3g}" if finite.size else ""
        raise DataError(
            f"{run.path} has {int(bad.sum())} voxel values in volume(s) "
            f"{', '.join(map(str, vols[:10]))}{' ...' if len(vols) > 10 else ''} beyond float16's "
            f"range (+-{_FLOAT16_MAX:.0f}) or not finite {when}{largest}, so the cache would hold "
            f"Inf/NaN. Check {_scaling(run.path)} (e.g. a wrong scl_slope): fix the header and "
            "run prepare again, or pass --nonfinite zero to set them to 0"
        )
    logger.warning(
        "%s: %d voxel values beyond float16's range %s set to 0 (--nonfinite zero)",
        run.path,
        int(bad.sum()),
        when,
    )
    values = values.copy()
    values[bad] = 0.0
    return values


def _read_chunks(run: BoldRun, chunk: int):
    """(first volume, float32 volumes) of ``run``, ``chunk`` volumes at a time, the file read
    once from its start to its end.

    A ``.nii.gz`` is read through Python's gzip *to the end of the stream*: the gzip trailer's
    CRC-32 and length are only checked by a read past the last byte of the data, which slicing
    the image never makes, so a byte flipped in the middle of the compressed stream (wrong voxels,
    no error from zlib), a lost trailer or an altered CRC would otherwise be cached silently. The
    check is free: the whole stream is decompressed anyway, and the last read finds only the
    trailer.
    """
    try:
        with contextlib.ExitStack() as stack:
            stream = None
            if run.path.name.endswith(".gz"):
                # The class nib.load picks from the header (NIfTI-1 or -2), read from our stream.
                kind = cast(type[nib.Nifti1Image], type(nib.load(run.path)))
                stream = stack.enter_context(gzip.open(run.path, "rb"))
                img = kind.from_stream(stream)
            else:
                img = cast(nib.Nifti1Image, nib.load(run.path, keep_file_open=True))
            for a in range(0, run.n_volumes, chunk):
                b = min(a + chunk, run.n_volumes)
                yield a, np.asarray(img.dataobj[..., a:b], dtype=np.float32)
            while stream is not None and stream.read(2**20):  # EOF: the CRC is checked here
                pass
    except (EOFError, zlib.error, OSError, ValueError) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"{run.path} is truncated or corrupt ({exc.__class__.__name__}: {exc}); "
            "re-download or re-copy it (e.g. `datalad get` again) and run prepare again"
        ) from exc


def _write_run(
    fh,
    header_len: int,
    vol_bytes: int,
    start_row: int,
    run: BoldRun,
    shape,
    affine,
    same_grid: bool,
    nonfinite: str,
    design: RunDesign,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Write one run as float16 (value - reference), reading the NIfTI file once.

    Returns the run's mean image as the cache will hold it (reference plus the mean of the
    float16 differences written: what the brain mask and the blank-run test look at),
    ``basis.T @ data`` (k x voxels: the regressors' weights, since the basis is orthonormal),
    the SD of each voxel's residual after the projection, all from sums accumulated chunk by
    chunk (see :mod:`emocore.data.clean`), and the exact mean of the raw intensities on the
    cache's grid (float64 sums, before any float16 rounding: the mean EPI's share of this run).
    """
    n_vox = int(np.prod(shape))
    chunk = _chunk_volumes(run, n_vox)
    basis = design.basis
    ref = total = total_sq = weights = raw_total = None
    for a, data in _read_chunks(run, chunk):
        bad = ~np.isfinite(data)
        if bad.any():
            vols = sorted(
                set((np.nonzero(bad.reshape(-1, data.shape[-1]).any(axis=0))[0] + a).tolist())
            )
            if nonfinite == "error":
                raise DataError(
                    f"{run.path} has {int(bad.sum())} NaN/Inf voxel values in volume(s) "
                    f"{', '.join(map(str, vols[:10]))}{' ...' if len(vols) > 10 else ''}; fix the file "
                    "or pass --nonfinite zero to set them to 0"
                )
            data[bad] = 0.0
        if not same_grid:
            data = _resample(data, run.affine, shape, affine)
        vols = np.moveaxis(data, -1, 0).reshape(data.shape[-1], n_vox)  # (t, voxels)
        if ref is None:
            ref = vols.mean(axis=0)
            total = np.zeros(n_vox)
            total_sq = np.zeros(n_vox)
            weights = np.zeros((basis.shape[1], n_vox))
            raw_total = np.zeros(n_vox)
        raw_total += vols.sum(axis=0, dtype=np.float64)
        d = vols - ref
        d = _fit_float16(
            d,
            run,
            a,
            nonfinite,
            "after intensity scaling, as a difference from the run's first volumes",
        )
        d16 = np.ascontiguousarray(d, dtype=np.float16)
        d = d16.astype(np.float32)  # the sums describe exactly what the second pass reads back
        total += d.sum(axis=0, dtype=np.float64)
        total_sq += np.einsum("tv,tv->v", d, d, dtype=np.float64)
        weights += basis[a : a + len(d)].astype(np.float32).T @ d
        fh.seek(header_len + (start_row + a) * vol_bytes)
        fh.write(d16.tobytes())
    if ref is None or total is None or total_sq is None or weights is None or raw_total is None:
        raise DataError(f"{run.path} has no volumes; remove the run or re-export it")
    n = run.n_volumes
    # The residual of an orthogonal projection: |d - Q Q'd|^2 = |d|^2 - |Q'd|^2 per voxel.
    residual_ss = total_sq - np.einsum("kv,kv->v", weights, weights)
    sd = np.sqrt(np.maximum(residual_ss / n, 0.0))
    return (
        (ref + total / n).astype(np.float32),
        weights.astype(np.float32),
        sd.astype(np.float32),
        raw_total / n,
    )


def _chunk_volumes(run: BoldRun, n_vox: int) -> int:
    """Volumes read at a time: float32 bytes of the larger of the two grids, since resampling to
    a finer grid (--grid-mm 0.5) makes each volume many times the size of the source's."""
    return max(1, _CHUNK_BYTES // (4 * max(int(np.prod(run.shape)), n_vox)))


def _run_mean(run: BoldRun, shape, affine, same_grid: bool) -> np.ndarray:
    """The mean raw intensity of one run on the cache's grid (float64, voxels), as
    :func:`_write_run` computes it, for a cache made before the mean EPI was stored. The run was
    prepared once already, so non-finite values can only be ones ``--nonfinite zero`` zeroed."""
    n_vox = int(np.prod(shape))
    chunk = _chunk_volumes(run, n_vox)
    raw_total = np.zeros(n_vox)
    for _, data in _read_chunks(run, chunk):
        data[~np.isfinite(data)] = 0.0
        if not same_grid:
            data = _resample(data, run.affine, shape, affine)
        raw_total += data.reshape(n_vox, data.shape[-1]).sum(axis=1, dtype=np.float64)
    return raw_total / run.n_volumes


def _mean_epi(run_means: Sequence[np.ndarray], shape) -> np.ndarray:
    """A person's mean EPI: the plain mean of their non-blank runs' mean images, float32."""
    return (np.mean(run_means, axis=0)).reshape(shape).astype(np.float32)


def _save_mean_epi(path: Path, image: np.ndarray) -> None:
    """Write a mean EPI to ``path`` atomically (readers see the old file or the whole new one)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: np.save adds no .npy
        np.save(fh, image.astype(np.float32))


def _normalise_run(
    fh,
    header_len: int,
    vol_bytes: int,
    start_row: int,
    run: BoldRun,
    shape,
    basis: np.ndarray,
    weights: np.ndarray,
    sd: np.ndarray,
    mask: np.ndarray,
    nonfinite: str = "error",
) -> None:
    """Second pass over the float16 rows just written: remove the regressors, z-score, mask."""
    n = run.n_volumes
    keep = mask.reshape(-1) & (sd > 1e-6 * max(float(sd.max()), 1e-12))
    scale = np.where(keep, 1.0 / np.where(sd > 0, sd, 1.0), 0.0).astype(np.float32)
    basis32 = basis.astype(np.float32)
    chunk = max(1, (64 * 2**20) // vol_bytes)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        fh.seek(header_len + (start_row + a) * vol_bytes)
        raw = np.frombuffer(fh.read((b - a) * vol_bytes), dtype=np.float16).reshape(b - a, -1)
        fitted = basis32[a:b] @ weights
        z = _fit_float16(
            (raw.astype(np.float32) - fitted) * scale, run, a, nonfinite, "after z-scoring"
        )
        z = z.astype(np.float16)
        fh.seek(header_len + (start_row + a) * vol_bytes)
        fh.write(z.tobytes())


def _brain_mask(mean_img: np.ndarray, affine: np.ndarray) -> np.ndarray:
    from nilearn.masking import compute_epi_mask

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty mask is handled below
            mask = np.asarray(compute_epi_mask(nib.Nifti1Image(mean_img, affine)).dataobj).astype(
                bool
            )
    except Exception as exc:  # nilearn raises ValueError for flat images
        logger.warning("compute_epi_mask failed (%s); using voxels with non-zero mean", exc)
        mask = np.zeros(mean_img.shape, bool)
    if mask.sum() < 0.02 * mask.size:
        mask = np.abs(mean_img) > 1e-6
    return mask


# -- the whole cache -----------------------------------------------------------------------------
# What changes the voxel data (the entity options choose files, whose fingerprints then differ).
_VOLUME_OPTIONS = ("cache_format", "grid_mm", "nonfinite", "detrend", "high_pass", "confounds")
_MISSING = object()


@dataclass(frozen=True)
class PrepareResult:
    """What one :func:`prepare` call did to the cache, for logs and the CLI summary."""

    cache: VolumeCache
    action: str  # "built", "added", "relabelled" or "unchanged"
    added: tuple[str, ...] = ()  # people who were not in the cache before
    streamed: tuple[str, ...] = ()  # people whose runs were read and written by this call
    kept: tuple[str, ...] = ()  # people whose arrays were left exactly as they were
    not_requested: tuple[str, ...] = ()  # people in the cache that were not asked for, kept
    dropped: tuple[str, ...] = ()  # people a ``force`` rebuild left out

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "added": list(self.added),
            "streamed": list(self.streamed),
            "kept": list(self.kept),
            "not_requested": list(self.not_requested),
            "dropped": list(self.dropped),
        }


def _left_by_dead_job(path: Path) -> bool:
    """Whether ``path``, named ``*.partial-<pid>``, was left by a job that no longer runs."""
    try:
        os.kill(int(path.name.rsplit("-", 1)[1]), 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return False  # a live job is still writing it


def _clean_partials(cache: Path) -> None:
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


def _existing_manifest(cache: Path, force: bool) -> dict[str, Any] | None:
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


def _differences(
    old: dict[str, Any], opts: PrepareOptions, annotation_sha: dict[str, str]
) -> dict[str, str]:
    """What differs between how the cache was made and how it is asked for now, in words."""
    out: dict[str, str] = {}
    if old.get("cache_format") != CACHE_FORMAT:
        out["cache_format"] = (
            f"cache format {old.get('cache_format')} in the cache, {CACHE_FORMAT} now"
        )
    recorded = {**_BEFORE_CLEANING, **(old.get("options") or {})}
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


def _stored_fingerprints(old: dict[str, Any], subject: str) -> list[str | None]:
    return [r.get("fingerprint") for r in old["subjects"][subject].get("runs", [])]


def _merge_warnings(*lists: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(w for ws in lists for w in ws))


def _absolute(path: str | Path) -> str:
    """``path`` as the absolute path the manifest records (links followed, ``~`` expanded)."""
    return str(Path(path).expanduser().resolve())


def _labels_belong(cache: Path, manifest: dict[str, Any], fresh: bytes) -> bool:
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


def _with_array_fingerprints(cache: Path, manifest: dict[str, Any]) -> dict[str, Any]:
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


def _record_missing(
    cache: Path, old: dict[str, Any], label_text: bytes, **source_paths: str
) -> dict[str, Any]:
    """The manifest of an up-to-date cache made by an older emocore, completed with what this
    one records: the label table's hash, the arrays' fingerprints and absolute source paths
    (the ones given now, where it recorded paths relative to where prepare ran). Written when
    anything was added; a cache that cannot be written (read-only) stays as it was."""
    manifest = _with_array_fingerprints(cache, old)
    labels = dict(manifest.get("labels") or {})
    if "sha256" not in labels:
        labels["sha256"] = labels_sha256(label_text)  # _labels_belong found them equal
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
        real = _real_cache_path(cache)
        with _cache_lock(real):  # one prepare at a time reads, changes and writes the manifest
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


#: The lock file inside a cache folder (hidden: it is not one of the cache's files).
_LOCK_NAME = ".prepare.lock"
#: Why a lock file may not be made where prepare can still run: no permission, a read-only or
#: full disk (a read-only cache can be found up to date; a full one is refused by its own check).
_UNLOCKABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, getattr(errno, "EDQUOT", -1))


def _lock_path(cache: Path) -> Path:
    """The file prepare locks for ``cache``: inside the folder once it exists; before the first
    build, beside where the folder will be (the build renames a finished folder into place)."""
    return cache / _LOCK_NAME if cache.is_dir() else cache.parent / f".{cache.name}{_LOCK_NAME}"


@contextlib.contextmanager
def _cache_lock(cache: Path) -> Iterator[None]:
    """Hold ``cache`` for this prepare: a second prepare of the same cache (another process,
    another person) waits here until this one has written its manifest, then reads that manifest
    and adds to it. Without it, two additions each read the manifest of before and the manifest
    written last keeps only its own person (issue 22, item 4).

    An exclusive ``flock`` on :func:`_lock_path`. The file is removed when the lock is let go and
    a rebuild renames the whole folder away, so a process that obtains the lock checks that the
    file it locked is still the one at the lock's path (the path may now be inside the new
    folder) and otherwise locks again. Where no lock file can be made (a read-only cache or disk,
    which this prepare cannot change either, or a full one; or Windows, without ``fcntl``) it
    goes on unlocked.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; prepares there are not serialised
        yield
        return
    made: list[Path] = []  # folders made for the lock file, removed again if left empty
    while True:
        path = _lock_path(cache)
        missing = [f for f in (path.parent, *path.parent.parents) if not f.exists()]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            made += [f for f in missing if f not in made]
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:  # prepare's own checks then say what is wrong with the disk
            if exc.errno not in _UNLOCKABLE:
                raise
            logger.debug("cannot make the lock file %s (%s): preparing unlocked", path, exc)
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.warning("waiting for another prepare of the cache at %s to finish", cache)
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _lock_path(cache) == path and _same_file(path, fd):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was removed or the folder replaced meanwhile: lock again
    try:
        yield
    finally:
        try:  # nobody else removes a lock file they do not hold: ours if it is still there
            if _same_file(path, fd):
                path.unlink()
            for folder in sorted(made, key=lambda f: len(f.parts), reverse=True):
                folder.rmdir()  # only if empty: a failed first build leaves no folders behind
        except OSError:
            pass
        finally:
            os.close(fd)  # lets the lock go


def _same_file(path: Path, fd: int) -> bool:
    try:
        there, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


def _real_cache_path(cache: Path) -> Path:
    """``cache`` with a symbolic link followed; a loop or a dangling link is refused up front
    (the build would otherwise run to its end and fail at the final rename)."""
    if not cache.is_symlink():
        return cache
    try:
        return cache.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a loop, before Python 3.13
        raise CacheError(
            f"--cache {cache} is a symbolic link that leads nowhere ({exc}): a loop or a missing "
            "target. Remove the link or point it at a folder, or choose another --cache"
        ) from exc


def _prepare(  # noqa: C901, PLR0915
    bids: str | Path,
    annotations: str | Path,
    cache: Path,
    *,
    options: PrepareOptions,
    subjects: Sequence[str] | None,
    progress: Progress | None,
    force: bool,
) -> PrepareResult:
    opts = options
    if cache.exists() and (
        not cache.is_dir()
        or (
            any(p.name != _LOCK_NAME for p in cache.iterdir())
            and not (cache / "manifest.json").exists()
        )
    ):
        raise CacheError(
            f"{cache} exists and is not an emocore cache; choose another --cache folder (emocore never writes over other files)"
        )
    t0 = time.perf_counter()
    dataset = discover_dataset(
        bids, task=opts.task, acq=opts.acq, space=opts.space, desc=opts.desc, subjects=subjects
    )
    files = find_annotation_files(annotations)
    ann = load_annotations(annotations)
    labels = build_volume_labels(
        ann, lag_s=opts.lag_s, recipe=opts.recipe, observers=opts.observers
    )
    _check_lengths(dataset, labels)
    ann_files = sorted(list(files.observers.values()) + ([files.scenes] if files.scenes else []))
    annotation_sha = {p.name: _sha256(p) for p in ann_files}
    label_inputs = {
        "lag_s": opts.lag_s,
        "recipe": opts.recipe,
        "observers": opts.observers,
        "annotations": annotation_sha,
    }
    label_key = _digest(label_inputs)
    sources = {s.subject: [_fingerprint(r.path) for r in s.runs] for s in dataset.subjects}
    label_text = labels.to_csv(sep="\t", index=False).encode()
    labels_block = {
        "file": "labels.tsv",
        "classes": list(CLASSES),
        "counts": label_counts(labels),
        "annotation_sha256": annotation_sha,
        "report": getattr(ann, "report_summary", lambda: {})(),
        "sha256": labels_sha256(label_text),  # the table this manifest belongs to
    }
    # Absolute: a dashboard or a job started in another folder finds the data again.
    bids_path, annotations_path = _absolute(bids), _absolute(annotations)

    label_warnings = [
        f"{files.folder / name} {why}; it gives no vote"
        for name, why in ann.report.unusable.items()
    ]

    _clean_partials(cache)
    previous = _existing_manifest(cache, force)
    held = list(previous.get("subjects") or {}) if previous is not None else []
    requested = dataset.subject_labels
    not_requested = tuple(s for s in held if s not in requested)
    if previous is not None and not force and isinstance(previous.get("subjects"), dict):
        old = previous
        new = [s for s in requested if s not in held]
        changed = [s for s in requested if s in held and _stored_fingerprints(old, s) != sources[s]]
        differ = _differences(old, opts, annotation_sha)
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
        labels_belong = _labels_belong(cache, old, label_text)
        if new and not changed and not damaged:
            return _add_subjects(
                cache,
                old,
                dataset,
                new,
                sources,
                opts,
                progress,
                bids_path,
                not_requested,
                t0,
                labels=None if labels_belong else (label_text, labels_block),
            )
        rebuild_why = (
            [f"sub-{s}'s source files changed" for s in changed]
            + [f"{problem}" for problem in damaged.values()]
            + [differ[k] for k in _VOLUME_OPTIONS if k in differ]
        )
        if not rebuild_why:
            before = old
            old = _store_missing_mean_epis(cache, old, dataset, progress)
            result = dict(kept=tuple(held), not_requested=not_requested)
            if old.get("label_key") == label_key and labels_belong:
                if old is before:  # else _store_missing_mean_epis has said what it stored
                    logger.info("cache at %s is up to date; nothing to do", cache)
                old = _record_missing(
                    cache,
                    old,
                    label_text,
                    root=bids_path,
                    annotations=annotations_path,
                    folder=_absolute(dataset.base or bids),
                )
                if not (
                    cache / "dataset_description.json"
                ).is_file():  # made before prepare wrote one
                    _describe(cache, old)
                return PrepareResult(VolumeCache(cache), "unchanged", **result)
            if old.get("label_key") == label_key:
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
                label_key=label_key,
                options=asdict(opts),
                labels=labels_block,
                source={**old.get("source", {}), "annotations": annotations_path},
                warnings=_merge_warnings(old.get("warnings", []), dataset.warnings, label_warnings),
            )
            manifest = _with_array_fingerprints(cache, manifest)
            atomic_write_bytes(cache / "labels.tsv", label_text)
            atomic_write_json(cache / "manifest.json", manifest)
            _describe(cache, manifest)
            return PrepareResult(VolumeCache(cache), "relabelled", **result)
        if not_requested:
            # A rebuild keeps everybody: read the people who were not asked for again too.
            try:
                dataset = discover_dataset(
                    bids,
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
            _check_lengths(dataset, labels)
            for s in dataset.subjects:
                if s.subject not in sources:
                    sources[s.subject] = [_fingerprint(r.path) for r in s.runs]
        logger.info("rebuilding the cache at %s: %s", cache, "; ".join(rebuild_why))

    shape, affine = _target_grid(dataset, opts.grid_mm)
    manifest = {
        "cache_format": CACHE_FORMAT,
        "emocore_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "volume_key": volume_key(
            grid_mm=opts.grid_mm,
            nonfinite=opts.nonfinite,
            sources=sources,
            cleaning=opts.cleaning,
        ),
        "label_key": label_key,
        "options": asdict(opts),
        "cleaning": opts.cleaning,
        "source": {
            "root": bids_path,
            "layout": dataset.layout,
            "folder": _absolute(dataset.base or bids),
            "entities": dict(dataset.entities),
            "annotations": annotations_path,
        },
        "grid": {
            "shape": list(shape),
            "affine": affine.tolist(),
            "voxel_mm": [float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0))],
        },
        "labels": labels_block,
        "warnings": [*dataset.warnings, *label_warnings],
    }
    _check_only_cache_files(cache)
    _check_space(cache.parent, dataset.subjects, shape, "build the cache", labels=len(label_text))
    work = cache.parent / f"{cache.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        manifest["subjects"], blank = _write_subjects(
            work, dataset, shape, affine, opts, progress, sources
        )
        manifest["warnings"] = _merge_warnings(manifest["warnings"], blank)
        (work / "labels.tsv").write_bytes(label_text)
        manifest["prepare_seconds"] = round(time.perf_counter() - t0, 2)
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _describe(work, manifest)
        _swap_into_place(work, cache)
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


def _store_missing_mean_epis(
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
                run_means.append(_run_mean(run, shape, affine, same_grid))
            done += 1
            if progress is not None:
                progress(done / total_runs, f"sub-{subj.subject} run {run.run} (mean EPI)")
        name = mean_epi_file(subj.subject)
        _save_mean_epi(cache / name, _mean_epi(run_means, shape))
        subjects[subj.subject] = {**subjects[subj.subject], "mean_epi": name}
    manifest = {**old, "subjects": subjects}
    atomic_write_json(cache / "manifest.json", manifest)
    logger.info(
        "stored the mean EPI of %s in the cache at %s (made before prepare stored it)",
        ", ".join(f"sub-{subj.subject}" for subj in lacking),
        cache,
    )
    return manifest


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


def _describe(folder: Path, manifest: dict[str, Any]) -> None:
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


def _check_lengths(dataset: Dataset, labels) -> None:
    for subj in dataset.subjects:
        n = sum(r.n_volumes for r in subj.runs)
        if n != len(labels):
            raise DataError(
                f"the label table has {len(labels)} volumes but sub-{subj.subject} has {n}"
            )


def _add_subjects(  # noqa: PLR0915
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
    ``sub-XX.npy.partial-<pid>`` (``sub-XX_mean-epi.npy.partial-<pid>``), are renamed once complete, and the manifest that lists them replaces the
    old one last (atomically). A job killed before that leaves the old cache as it was, plus
    files it does not name, which the next prepare removes or overwrites.
    """
    shape = tuple(int(v) for v in old["grid"]["shape"])
    affine = np.asarray(old["grid"]["affine"], dtype=np.float64)
    people = [dataset.get(s) for s in new]
    if opts.grid_mm is None:
        for subj in people:
            if subj.shape != shape or not np.allclose(subj.affine, affine, atol=1e-3):
                raise DataError(
                    f"sub-{subj.subject} ({subj.runs[0].path}) "
                    + _grid_difference(
                        subj.shape, subj.affine, shape, affine, f"the cache at {cache}"
                    )
                    + "; a cache needs one grid for everybody: rebuild it with --grid-mm and "
                    "--force to resample everybody"
                )
    # The cache's mask (the intersection of the masks of the people it was built with) stays as
    # it is: shrinking it to the new person's brain would change what the saliency scores and the
    # linear baseline of studies already run on this cache see. Each new person is z-scored
    # inside their own brain mask, exactly as a full build would do, so their array is the one a
    # rebuild would write; where their brain misses part of the cache's mask they hold zeros.
    cache_mask = np.load(cache / "mask.npy").astype(bool)
    total_runs = sum(len(p.runs) for p in people)
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / max(total_runs, 1), message)

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    root = bids
    recorded_root = (old.get("source") or {}).get("root")
    if isinstance(recorded_root, str) and recorded_root:
        recorded_root = str(recorded_path(cache, recorded_root) or recorded_root)
    staged: list[Path] = []
    entries: dict[str, Any] = {}
    blank: list[str] = []
    _check_space(
        cache,
        people,
        shape,
        f"add {', '.join(f'sub-{s}' for s in new)}",
        labels=len(labels[0]) if labels is not None else 0,
        mask=False,
    )
    try:
        for subj in people:
            tmp = cache / f"sub-{subj.subject}.npy.partial-{os.getpid()}"
            staged.append(tmp)
            info, mask, messages, mean_epi = _write_subject(
                tmp, subj, dataset.root, shape, affine, opts, tick, sources[subj.subject]
            )
            blank += messages
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            info["mean_epi"] = mean_epi_file(subj.subject)
            epi_tmp = cache / f"{info['mean_epi']}.partial-{os.getpid()}"
            staged.append(epi_tmp)
            with open(epi_tmp, "wb") as out:  # renamed into place with the array, below
                np.save(out, mean_epi)
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
            info.update(cache_mask_coverage=round(coverage, 4), added_at=now)
            if root != recorded_root:
                info["source_root"] = root
            entries[subj.subject] = info
        for tmp in list(staged):
            final = cache / tmp.name.rsplit(".partial-", 1)[0]
            os.replace(tmp, final)
            staged[staged.index(tmp)] = final
        manifest = _with_array_fingerprints(cache, dict(old))
        every = {**manifest["subjects"], **entries}
        if labels is not None:
            logger.warning(
                "%s does not belong to the manifest of the cache at %s (a relabel was "
                "interrupted?): rewriting it",
                cache / "labels.tsv",
                cache,
            )
            atomic_write_bytes(cache / "labels.tsv", labels[0])
            manifest["labels"] = labels[1]
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
            warnings=_merge_warnings(
                old.get("warnings", []),
                [w for w in dataset.warnings if any(f"sub-{s}" in w for s in new)],
                blank,
            ),
        )
        atomic_write_json(cache / "manifest.json", manifest)
        _describe(cache, manifest)
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


def _write_subject(
    path: Path,
    subj: SubjectRuns,
    root: Path,
    shape,
    affine,
    opts: PrepareOptions,
    tick: Callable[[str], None],
    fingerprints: Sequence[str],
) -> tuple[dict[str, Any], np.ndarray, list[str], np.ndarray]:
    """Stream one person's runs into the .npy file ``path``; return their manifest entry, their
    brain mask, a warning per blank run and their mean EPI (see :func:`_mean_epi`); the caller
    stores the mean EPI and names it in the entry. ``fingerprints`` are their runs' source
    fingerprints, computed once by :func:`prepare`."""
    vol_bytes = int(np.prod(shape)) * 2
    n_total = sum(r.n_volumes for r in subj.runs)
    same_grid = subj.shape == tuple(shape) and np.allclose(subj.affine, affine, atol=1e-3)
    runs_info: list[dict[str, Any]] = []
    mask = None
    blank: list[tuple[BoldRun, str]] = []
    run_means: list[np.ndarray] = []
    with open(path, "w+b") as fh:
        np.lib.format.write_array_header_1_0(
            fh,
            {
                "descr": np.dtype(np.float16).str,
                "fortran_order": False,
                "shape": (n_total, *shape),
            },
        )
        header_len = fh.tell()
        fh.truncate(header_len + n_total * vol_bytes)
        start = 0
        for run in subj.runs:
            design = run_design(
                run.path,
                run.n_volumes,
                run.tr,
                detrend=opts.detrend,
                high_pass=opts.high_pass,
                confounds=parse_confounds(opts.confounds),
            )
            mean_img, weights, sd, raw_mean = _write_run(
                fh,
                header_len,
                vol_bytes,
                start,
                run,
                shape,
                affine,
                same_grid,
                opts.nonfinite,
                design,
            )
            empty = _blank(sd, mean_img)
            if empty:  # no signal: kept (the rows stay aligned with the labels) but named
                blank.append((run, empty))
            else:
                run_means.append(raw_mean)
                if mask is None:  # the brain mask comes from the first run that has a signal
                    mask = _brain_mask(mean_img.reshape(shape), affine)
            _normalise_run(
                fh,
                header_len,
                vol_bytes,
                start,
                run,
                shape,
                design.basis,
                weights,
                sd,
                np.zeros(shape, bool) if mask is None else mask,  # a blank run: all zeros
                opts.nonfinite,
            )
            del weights
            runs_info.append(
                {
                    "run": run.run,
                    "start": start,
                    "n_volumes": run.n_volumes,
                    "source": str(run.path.relative_to(root)),
                    "fingerprint": fingerprints[len(runs_info)],
                    "tr": run.tr,
                    "cleaning": design.record(),
                    **({"blank": empty} if empty else {}),
                }
            )
            start += run.n_volumes
            tick(f"sub-{subj.subject} run {run.run}")
    if mask is None:  # every person has at least one run (discover_dataset checks)
        raise DataError(
            f"every run of sub-{subj.subject} is blank ({', '.join(str(r.path) for r, _ in blank)}"
            "): no voxel changes over time, so there is no brain to mask and nothing to decode. "
            "Re-export or re-download the runs, or leave the person out (--subject)"
        )
    messages = []
    for run, empty in blank:
        message = (
            f"{run.path} is blank: every voxel is {empty} over its {run.n_volumes} volumes, so "
            "they hold no signal (zeros in the cache) and are left out of training and evaluation; "
            "the brain mask comes from the person's other runs. Re-export or re-download the run"
        )
        logger.warning(message)
        messages.append(message)
    info = {
        "file": f"sub-{subj.subject}.npy",
        "n_volumes": n_total,
        "runs": runs_info,
        "mask_voxels": int(mask.sum()),
        "array_fingerprint": array_fingerprint(path),  # what a reader checks it still holds
    }
    return info, mask, messages, _mean_epi(run_means, shape)


def _blank(sd: np.ndarray, mean_img: np.ndarray) -> str | None:
    """'zero' or 'constant' when no voxel of a run changes over time (None when some do)."""
    if float(np.max(sd, initial=0.0)) > 0:
        return None
    return "zero" if not np.any(mean_img) else "constant"


#: Room left for the manifest, dataset_description.json and each file's last part-filled block.
_SMALL_FILES_BYTES = 256 * 2**10


def _check_space(
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


def _write_subjects(
    work: Path,
    dataset: Dataset,
    shape,
    affine,
    opts: PrepareOptions,
    progress: Progress | None,
    sources: dict[str, list[str]],
) -> tuple[dict[str, Any], list[str]]:
    total_runs = sum(len(s.runs) for s in dataset.subjects)
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / max(total_runs, 1), message)

    cohort_mask = np.ones(shape, bool)
    subjects: dict[str, Any] = {}
    blank: list[str] = []
    for subj in dataset.subjects:
        info, mask, messages, mean_epi = _write_subject(
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
        _save_mean_epi(work / info["mean_epi"], mean_epi)
        cohort_mask &= mask
        subjects[subj.subject] = info
        blank += messages
    np.save(work / "mask.npy", cohort_mask.astype(np.uint8))
    return subjects, blank


def _check_only_cache_files(cache: Path) -> None:
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


def _swap_into_place(work: Path, cache: Path) -> None:
    if cache.exists():
        if not (cache / "manifest.json").exists() and any(
            p.name != _LOCK_NAME for p in cache.iterdir()
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
