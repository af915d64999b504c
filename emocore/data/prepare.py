"""Build the volume cache: BOLD runs on disk + annotations -> z-scored float16 arrays + labels.

Each run is decompressed once, in chunks of volumes, so memory stays bounded whatever the size of
the cohort: a chunk is (optionally) resampled, shifted by a per-voxel reference and written as
float16; the per-voxel mean and SD of the run are accumulated on the way. A second, cheap pass
over the float16 rows just written (from the page cache, not the .nii.gz) z-scores them and zeroes
voxels outside the brain.

The cache is built in a sibling folder ``<cache>.partial-<pid>`` and renamed into place at the
end, so a killed job never leaves half a cache; leftovers of dead jobs are removed on the next run.
Re-running with the same inputs and options does nothing; changing only the label options
(lag, recipe, observers) rewrites the label table and keeps the voxel data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from emocore import __version__
from emocore._io import atomic_write_json, atomic_write_text
from emocore.constants import CLASSES
from emocore.data.bids import BoldRun, Dataset, discover_dataset
from emocore.data.cache import CACHE_FORMAT, VolumeCache
from emocore.errors import CacheError, ConfigError, DataError
from emocore.labels import (
    build_volume_labels,
    find_annotation_files,
    label_counts,
    load_annotations,
)

__all__ = ["PrepareOptions", "prepare_cache"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]

_CHUNK_BYTES = 256 * 2**20  # float32 bytes of BOLD decompressed at a time


@dataclass(frozen=True, kw_only=True)
class PrepareOptions:
    """How the cache is made; saved in the manifest."""

    grid_mm: float | None = None
    lag_s: float = 4.0
    recipe: str = "poster"
    observers: str | None = None
    nonfinite: str = "error"  # or "zero"
    task: str | None = None

    def __post_init__(self) -> None:
        if self.grid_mm is not None and not 0.5 <= self.grid_mm <= 20:
            raise ConfigError(
                f"grid_mm must be between 0.5 and 20 mm (or None for the native grid); {self.grid_mm} was given"
            )
        if not -20 <= self.lag_s <= 20:
            raise ConfigError(f"lag_s must be between -20 and 20 s; {self.lag_s} was given")
        if self.nonfinite not in ("error", "zero"):
            raise ConfigError(
                f"nonfinite must be one of {{'error', 'zero'}}; '{self.nonfinite}' was provided"
            )


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
def _target_grid(
    dataset: Dataset, grid_mm: float | None
) -> tuple[tuple[int, int, int], np.ndarray]:
    ref = dataset.subjects[0]
    if grid_mm is None:
        for s in dataset.subjects[1:]:
            if s.shape != ref.shape or not np.allclose(s.affine, ref.affine, atol=1e-3):
                raise DataError(
                    f"sub-{s.subject} ({s.runs[0].path}) is on grid {s.shape}, sub-{ref.subject} on "
                    f"{ref.shape}; a cache needs one grid for everybody: pass --grid-mm to resample"
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
def _read_chunks(run: BoldRun, chunk: int):
    try:
        img = nib.load(run.path, keep_file_open=True)
        for a in range(0, run.n_volumes, chunk):
            b = min(a + chunk, run.n_volumes)
            yield a, np.asarray(img.dataobj[..., a:b], dtype=np.float32)
    except (EOFError, zlib.error, OSError, ValueError) as exc:
        raise DataError(
            f"{run.path} is truncated or corrupt ({exc.__class__.__name__}: {exc}); "
            "re-download it (e.g. `datalad get` again) and run prepare again"
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
) -> tuple[np.ndarray, np.ndarray]:
    """Write one run as float16 (value - reference); return per-voxel mean and SD of the run."""
    n_vox = int(np.prod(shape))
    chunk = max(1, _CHUNK_BYTES // (4 * int(np.prod(run.shape))))
    ref = total = total_sq = None
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
        d = vols - ref
        total += d.sum(axis=0, dtype=np.float64)
        total_sq += np.einsum("tv,tv->v", d, d, dtype=np.float64)
        out = np.ascontiguousarray(d.reshape(len(d), *shape), dtype=np.float16)
        fh.seek(header_len + (start_row + a) * vol_bytes)
        fh.write(out.tobytes())
    n = run.n_volumes
    mean_d = total / n
    sd = np.sqrt(np.maximum(total_sq / n - mean_d**2, 0.0))
    return (ref + mean_d).astype(np.float32), np.stack([mean_d, sd]).astype(np.float32)


def _normalise_run(
    fh,
    header_len: int,
    vol_bytes: int,
    start_row: int,
    n: int,
    shape,
    stats: np.ndarray,
    mask: np.ndarray,
) -> None:
    mean_d, sd = stats
    keep = mask.reshape(-1) & (sd > 1e-6 * max(float(sd.max()), 1e-12))
    scale = np.where(keep, 1.0 / np.where(sd > 0, sd, 1.0), 0.0).astype(np.float32)
    chunk = max(1, (64 * 2**20) // vol_bytes)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        fh.seek(header_len + (start_row + a) * vol_bytes)
        raw = np.frombuffer(fh.read((b - a) * vol_bytes), dtype=np.float16).reshape(b - a, -1)
        z = ((raw.astype(np.float32) - mean_d) * scale).astype(np.float16)
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
def _clean_partials(cache: Path) -> None:
    for p in cache.parent.glob(cache.name + ".partial-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
            continue  # a live job is still writing it
        except (ValueError, ProcessLookupError):
            pass
        except PermissionError:
            continue
        logger.info("removing %s left by an interrupted prepare", p)
        shutil.rmtree(p, ignore_errors=True)
    old = cache.parent / (cache.name + ".old")
    if old.exists():
        if not cache.exists():
            old.rename(cache)  # a swap was interrupted between its two renames
        else:
            shutil.rmtree(old, ignore_errors=True)


def _existing_manifest(cache: Path) -> dict[str, Any] | None:
    try:
        return json.loads((cache / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


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
    """Build (or reuse) the cache for the dataset at ``bids`` with labels from ``annotations``.

    Returns the opened cache. ``progress(done, total, message)`` is called after each run.
    """
    opts = options or PrepareOptions()
    cache = Path(cache)
    if cache.exists() and (
        not cache.is_dir() or (any(cache.iterdir()) and not (cache / "manifest.json").exists())
    ):
        raise CacheError(
            f"{cache} exists and is not an emocore cache; choose another --cache folder (emocore never writes over other files)"
        )
    t0 = time.perf_counter()
    dataset = discover_dataset(bids, task=opts.task, subjects=subjects)
    files = find_annotation_files(annotations)
    ann = load_annotations(annotations)
    labels = build_volume_labels(
        ann, lag_s=opts.lag_s, recipe=opts.recipe, observers=opts.observers
    )
    n_expected = sum(r.n_volumes for r in dataset.subjects[0].runs)
    if len(labels) != n_expected:
        raise DataError(
            f"the label table has {len(labels)} volumes but sub-{dataset.subjects[0].subject} has {n_expected}"
        )
    shape, affine = _target_grid(dataset, opts.grid_mm)

    ann_files = sorted(list(files.observers.values()) + ([files.scenes] if files.scenes else []))
    volume_inputs = {
        "cache_format": CACHE_FORMAT,
        "grid_mm": opts.grid_mm,
        "nonfinite": opts.nonfinite,
        "sources": {s.subject: [_fingerprint(r.path) for r in s.runs] for s in dataset.subjects},
    }
    label_inputs = {
        "lag_s": opts.lag_s,
        "recipe": opts.recipe,
        "observers": opts.observers,
        "annotations": {p.name: _sha256(p) for p in ann_files},
    }
    volume_key, label_key = _digest(volume_inputs), _digest(label_inputs)

    _clean_partials(cache)
    old = _existing_manifest(cache)
    reuse_volumes = (
        not force
        and old is not None
        and old.get("cache_format") == CACHE_FORMAT
        and old.get("volume_key") == volume_key
    )
    manifest = {
        "cache_format": CACHE_FORMAT,
        "emocore_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "volume_key": volume_key,
        "label_key": label_key,
        "options": asdict(opts),
        "source": {
            "root": str(Path(bids)),
            "layout": dataset.layout,
            "annotations": str(Path(annotations)),
        },
        "grid": {
            "shape": list(shape),
            "affine": affine.tolist(),
            "voxel_mm": [float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0))],
        },
        "labels": {
            "file": "labels.tsv",
            "classes": list(CLASSES),
            "counts": label_counts(labels),
            "annotation_sha256": label_inputs["annotations"],
            "report": getattr(ann, "report_summary", lambda: {})(),
        },
        "warnings": list(dataset.warnings),
    }
    if reuse_volumes:
        if old.get("label_key") == label_key:  # type: ignore[union-attr]
            logger.info("cache at %s is up to date; nothing to do", cache)
            return VolumeCache(cache)
        logger.info("voxel data unchanged; rewriting the label table of %s", cache)
        manifest["subjects"] = old["subjects"]  # type: ignore[index]
        manifest["created_at"] = old.get("created_at")  # type: ignore[union-attr]
        manifest["prepare_seconds"] = old.get("prepare_seconds")  # type: ignore[union-attr]
        atomic_write_text(cache / "labels.tsv", labels.to_csv(sep="\t", index=False))
        atomic_write_json(cache / "manifest.json", manifest)
        return VolumeCache(cache)

    work = cache.parent / f"{cache.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        manifest["subjects"] = _write_subjects(work, dataset, shape, affine, opts, progress)
        labels.to_csv(work / "labels.tsv", sep="\t", index=False)
        manifest["prepare_seconds"] = round(time.perf_counter() - t0, 2)
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _swap_into_place(work, cache)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info("cache written to %s in %.1f s", cache, time.perf_counter() - t0)
    return VolumeCache(cache)


def _write_subjects(
    work: Path, dataset: Dataset, shape, affine, opts: PrepareOptions, progress: Progress | None
) -> dict[str, Any]:
    vol_bytes = int(np.prod(shape)) * 2
    total_runs = sum(len(s.runs) for s in dataset.subjects)
    done = 0
    cohort_mask = np.ones(shape, bool)
    subjects: dict[str, Any] = {}
    for subj in dataset.subjects:
        n_total = sum(r.n_volumes for r in subj.runs)
        fname = f"sub-{subj.subject}.npy"
        same_grid = subj.shape == tuple(shape) and np.allclose(subj.affine, affine, atol=1e-3)
        runs_info = []
        with open(work / fname, "w+b") as fh:
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
            mask = None
            for run in subj.runs:
                mean_img, stats = _write_run(
                    fh, header_len, vol_bytes, start, run, shape, affine, same_grid, opts.nonfinite
                )
                if mask is None:
                    mask = _brain_mask(mean_img.reshape(shape), affine)
                _normalise_run(fh, header_len, vol_bytes, start, run.n_volumes, shape, stats, mask)
                runs_info.append(
                    {
                        "run": run.run,
                        "start": start,
                        "n_volumes": run.n_volumes,
                        "source": str(run.path.relative_to(dataset.root)),
                        "fingerprint": _fingerprint(run.path),
                        "tr": run.tr,
                    }
                )
                start += run.n_volumes
                done += 1
                if progress is not None:
                    progress(done, total_runs, f"sub-{subj.subject} run {run.run}")
        cohort_mask &= mask  # type: ignore[operator]
        subjects[subj.subject] = {
            "file": fname,
            "n_volumes": n_total,
            "runs": runs_info,
            "mask_voxels": int(mask.sum()),
        }  # type: ignore[union-attr]
    np.save(work / "mask.npy", cohort_mask.astype(np.uint8))
    return subjects


def _swap_into_place(work: Path, cache: Path) -> None:
    if cache.exists():
        if not (cache / "manifest.json").exists() and any(cache.iterdir()):
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
