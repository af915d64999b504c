"""Stream BOLD runs into a person's float16 array.

Each run is decompressed once, in chunks of volumes: a chunk is (optionally) resampled, shifted
by a per-voxel reference and written as float16, and the sums that give each voxel's regressor
weights and residual SD are accumulated on the way. A second, cheap pass over the float16 rows
just written removes the regressors, z-scores them and zeroes voxels outside the brain.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import nibabel as nib
import numpy as np
from nibabel.arrayproxy import ArrayProxy

from emocore.data.bids import BoldRun, SubjectRuns
from emocore.data.cache import array_fingerprint
from emocore.data.clean import RunDesign, parse_confounds, run_design
from emocore.data.prepare.grid import resample
from emocore.data.prepare.mask import brain_mask, mean_epi
from emocore.data.prepare.options import PrepareOptions
from emocore.errors import DataError
from emocore.progress import Progress

logger = logging.getLogger(__name__)


_CHUNK_BYTES = 256 * 2**20  # float32 bytes of BOLD decompressed at a time


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
            data = resample(data, run.affine, shape, affine)
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


def run_mean(run: BoldRun, shape, affine, same_grid: bool) -> np.ndarray:
    """The mean raw intensity of one run on the cache's grid (float64, voxels), as
    :func:`_write_run` computes it, for a cache made before the mean EPI was stored. The run was
    prepared once already, so non-finite values can only be ones ``--nonfinite zero`` zeroed."""
    n_vox = int(np.prod(shape))
    chunk = _chunk_volumes(run, n_vox)
    raw_total = np.zeros(n_vox)
    for _, data in _read_chunks(run, chunk):
        data[~np.isfinite(data)] = 0.0
        if not same_grid:
            data = resample(data, run.affine, shape, affine)
        raw_total += data.reshape(n_vox, data.shape[-1]).sum(axis=1, dtype=np.float64)
    return raw_total / run.n_volumes


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


def write_subject(
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
    brain mask, a warning per blank run and their mean EPI (see :func:`mean_epi`); the caller
    stores the mean EPI and names it in the entry. ``fingerprints`` are their runs' source
    fingerprints, computed once by :func:`~emocore.data.prepare.prepare`."""
    vol_bytes = int(np.prod(shape)) * 2
    n_total = sum(r.n_volumes for r in subj.runs)
    same_grid = subj.shape == tuple(shape) and np.allclose(subj.affine, affine, atol=1e-3)
    runs_info: list[dict[str, Any]] = []
    mask = None
    blank: list[tuple[BoldRun, str]] = []
    run_means: list[np.ndarray] = []
    with open(path, "w+b") as fh:
        header_len = _start_npy(fh, (n_total, *shape), vol_bytes)
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
                    mask = brain_mask(mean_img.reshape(shape), affine)
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
                _run_entry(run, start, root, fingerprints[len(runs_info)], design, empty)
            )
            start += run.n_volumes
            tick(f"sub-{subj.subject} run {run.run}")
    if mask is None:  # every person has at least one run (discover_dataset checks)
        raise DataError(
            f"every run of sub-{subj.subject} is blank ({', '.join(str(r.path) for r, _ in blank)}"
            "): no voxel changes over time, so there is no brain to mask and nothing to decode. "
            "Re-export or re-download the runs, or leave the person out (--subject)"
        )
    info = {
        "file": f"sub-{subj.subject}.npy",
        "n_volumes": n_total,
        "runs": runs_info,
        "mask_voxels": int(mask.sum()),
        "array_fingerprint": array_fingerprint(path),  # what a reader checks it still holds
    }
    return info, mask, _blank_warnings(blank), mean_epi(run_means, shape)


def _run_entry(
    run: BoldRun,
    start: int,
    root: Path,
    fingerprint: str,
    design: RunDesign,
    blank: str | None,
) -> dict[str, Any]:
    """The manifest's record of one run: where its rows start in the array, its source file and
    fingerprint, what was removed from it, and whether it was blank."""
    return {
        "run": run.run,
        "start": start,
        "n_volumes": run.n_volumes,
        "source": str(run.path.relative_to(root)),
        "fingerprint": fingerprint,
        "tr": run.tr,
        "cleaning": design.record(),
        **({"blank": blank} if blank else {}),
    }


def _start_npy(fh, shape: tuple[int, ...], vol_bytes: int) -> int:
    """Write the header of a float16 .npy array of ``shape`` to ``fh`` and make the file its full
    size (the volumes are written into it run by run); return the header's length."""
    np.lib.format.write_array_header_1_0(
        fh,
        {
            "descr": np.dtype(np.float16).str,
            "fortran_order": False,
            "shape": shape,
        },
    )
    header_len = fh.tell()
    fh.truncate(header_len + shape[0] * vol_bytes)
    return header_len


def _blank_warnings(blank: Sequence[tuple[BoldRun, str]]) -> list[str]:
    """Log and return a warning for each blank run (``(run, 'zero' or 'constant')``)."""
    messages = []
    for run, empty in blank:
        message = (
            f"{run.path} is blank: every voxel is {empty} over its {run.n_volumes} volumes, so "
            "they hold no signal (zeros in the cache) and are left out of training and evaluation; "
            "the brain mask comes from the person's other runs. Re-export or re-download the run"
        )
        logger.warning(message)
        messages.append(message)
    return messages


def run_ticker(progress: Progress | None, total_runs: int) -> Callable[[str], None]:
    """A ``tick(message)`` to call after each run written: it reports the share of
    ``total_runs`` done so far to ``progress`` (when there is one)."""
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / max(total_runs, 1), message)

    return tick


def _blank(sd: np.ndarray, mean_img: np.ndarray) -> str | None:
    """'zero' or 'constant' when no voxel of a run changes over time (None when some do)."""
    if float(np.max(sd, initial=0.0)) > 0:
        return None
    return "zero" if not np.any(mean_img) else "constant"
