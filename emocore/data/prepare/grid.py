"""The cache's grid: the one everybody shares, how two grids differ, and resampling onto it."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from emocore.data.bids import Dataset
from emocore.errors import DataError


def grid_difference(shape, affine, ref_shape, ref_affine, ref: str) -> str:
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


def target_grid(dataset: Dataset, grid_mm: float | None) -> tuple[tuple[int, int, int], np.ndarray]:
    ref = dataset.subjects[0]
    if grid_mm is None:
        for s in dataset.subjects[1:]:
            if s.shape != ref.shape or not np.allclose(s.affine, ref.affine, atol=1e-3):
                raise DataError(
                    f"sub-{s.subject} ({s.runs[0].path}) "
                    + grid_difference(
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


def resample(
    chunk: np.ndarray, src_affine: np.ndarray, shape: tuple[int, int, int], affine: np.ndarray
) -> np.ndarray:
    """``chunk`` (x, y, z, t on ``src_affine``) on the grid ``shape``/``affine``, trilinear."""
    # Imported here: nilearn.image takes about a second to import, and only a prepare that
    # resamples needs it (the CLI and the pages import this package for its options).
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
