"""Brain images in world coordinates (mm) for the viewers: axes, slices and the MNI152 underlay.

* :class:`WorldImage` is a 3-D array on a grid whose axes run along the world axes in mm, x from
  left to right, y from posterior to anterior, z from inferior to superior (RAS+), so that a
  slice is a plain array index and its axes are labelled in mm without an extra transform.
* :func:`to_world` brings an array with any affine onto such a grid (axis flips and
  permutations by reordering, oblique grids by resampling).
* :func:`mni_underlay` is nilearn's MNI152 template (shipped with nilearn, no download) over the
  field of view of a grid, at a finer voxel than the data's so the anatomy stays readable.
* :func:`robust_max` is the colour limit of a map, computed once per map.

No streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["UNDERLAY_VOXEL_MM", "WorldImage", "mni_underlay", "robust_max", "to_world"]

#: The voxel (mm) of the template underlay; a finer data grid gets its own voxel instead.
UNDERLAY_VOXEL_MM = 2.0
#: World axes, with the side each end of the axis points to.
AXES = ("x", "y", "z")
ENDS = {"x": ("L", "R"), "y": ("P", "A"), "z": ("I", "S")}


@dataclass(frozen=True)
class WorldImage:
    """A 3-D array whose voxel axes are the world's x, y, z (RAS+, increasing), in mm.

    ``affine`` is diagonal with positive voxel sizes, plus the centre of voxel (0, 0, 0).
    """

    data: np.ndarray
    affine: np.ndarray

    def __post_init__(self) -> None:
        data, affine = np.asarray(self.data), np.asarray(self.affine, dtype=np.float64)
        if data.ndim != 3:
            raise ValueError(f"'data' must be 3-D (x, y, z), got {data.ndim}-D {data.shape}")
        if affine.shape != (4, 4):
            raise ValueError(f"'affine' must be 4 x 4, got {affine.shape}")
        linear = affine[:3, :3]
        if not np.allclose(linear, np.diag(np.diag(linear))) or (np.diag(linear) <= 0).any():
            raise ValueError(
                "'affine' must be diagonal with positive voxel sizes (a RAS+ grid); got "
                f"{np.round(linear, 3).tolist()}: pass the image through to_world() first"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def voxel_mm(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.diag(self.affine)[:3])  # type: ignore[return-value]

    def axis_mm(self, axis: int) -> np.ndarray:
        """World coordinates (mm) of the voxel centres along ``axis`` (0 = x, 1 = y, 2 = z)."""
        return self.affine[axis, 3] + self.affine[axis, axis] * np.arange(self.shape[axis])

    def index(self, point_mm: Sequence[float]) -> tuple[int, int, int]:
        """The voxel nearest to ``point_mm`` (clipped to the grid)."""
        ijk = np.rint((np.asarray(point_mm, float) - self.affine[:3, 3]) / np.diag(self.affine)[:3])
        return tuple(int(np.clip(i, 0, n - 1)) for i, n in zip(ijk, self.shape, strict=True))  # type: ignore[return-value]

    def snap(self, point_mm: Sequence[float]) -> tuple[float, float, float]:
        """The centre (mm) of the voxel nearest to ``point_mm``."""
        return tuple(float(self.axis_mm(a)[i]) for a, i in enumerate(self.index(point_mm)))  # type: ignore[return-value]

    def plane(self, axis: int, point_mm: Sequence[float]) -> np.ndarray:
        """The slice through ``point_mm`` across ``axis``, as (rows = the later axis, columns =
        the earlier one): axial (z) is y by x, coronal (y) is z by x, sagittal (x) is z by y."""
        i = self.index(point_mm)[axis]
        return np.take(self.data, i, axis=axis).T

    def peak_mm(self) -> tuple[float, float, float]:
        """The centre (mm) of the voxel with the largest value (the grid's centre if none)."""
        finite = np.where(np.isfinite(self.data), self.data, -np.inf)
        if not np.isfinite(finite).any():
            return self.snap([float(self.axis_mm(a).mean()) for a in range(3)])
        ijk = np.unravel_index(int(np.argmax(finite)), self.shape)
        return tuple(float(self.axis_mm(a)[i]) for a, i in enumerate(ijk))  # type: ignore[return-value]


def _is_ras(affine: np.ndarray) -> bool:
    linear = affine[:3, :3]
    return bool(
        np.allclose(linear, np.diag(np.diag(linear)), atol=1e-6) and (np.diag(linear) > 0).all()
    )


def to_world(data: np.ndarray, affine: np.ndarray, *, interpolation: str = "linear") -> WorldImage:
    """``data`` on a RAS+ grid with a diagonal affine: unchanged when it already is one, axes
    flipped and permuted when the grid is a flip or permutation of one (no interpolation), and
    resampled (``interpolation``: 'linear', 'continuous' or 'nearest') when it is oblique."""
    import nibabel as nib  # here: the GPU machine has no nibabel; only anatomy labels need it

    data = np.asarray(data, dtype=np.float32)
    affine = np.asarray(affine, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"'data' must be 3-D (x, y, z), got {data.ndim}-D {data.shape}")
    if _is_ras(affine):
        return WorldImage(data, affine)
    img = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    if _is_ras(img.affine):
        return WorldImage(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    from nilearn.image import resample_img  # here: nilearn takes 1.4 s to import

    voxel = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    out = resample_img(
        img,
        target_affine=np.diag(voxel),
        interpolation=interpolation,
        force_resample=True,
        copy_header=True,
    )
    return WorldImage(np.asarray(out.dataobj, dtype=np.float32), out.affine)


def mni_underlay(
    shape: Sequence[int], affine: np.ndarray, *, voxel_mm: float = UNDERLAY_VOXEL_MM
) -> WorldImage:
    """nilearn's MNI152 T1 template over the field of view of the grid (``shape``, ``affine``),
    on a RAS+ grid of ``voxel_mm`` (or the data's voxel where that is finer), scaled to 0..1.

    A data grid of 7.2 mm holds too few voxels to show anatomy, so the underlay keeps the grid's
    field of view and orientation but not its voxel size; the slices are drawn in mm, so the two
    grids line up. The template is MNI space: it is anatomy for data in MNI space (the demo
    cohort, fMRIPrep's MNI outputs), only an orientation aid for data in a scanner's space.
    """
    from nilearn.datasets import load_mni152_template  # here: as above
    from nilearn.image import resample_img  # here: nilearn takes 1.4 s to import

    affine = np.asarray(affine, dtype=np.float64)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise ValueError(f"'shape' must have 3 sides (x, y, z), got {shape}")
    corners = np.array(
        [
            [a, b, c, 1.0]
            for a in (-0.5, shape[0] - 0.5)
            for b in (-0.5, shape[1] - 0.5)
            for c in (-0.5, shape[2] - 0.5)
        ]
    )
    world = (affine @ corners.T).T[:, :3]
    low, high = world.min(axis=0), world.max(axis=0)
    data_voxel = float(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)).min())
    step = min(float(voxel_mm), data_voxel)
    sides = tuple(
        max(2, math.ceil((hi - lo) / step - 1e-6)) for lo, hi in zip(low, high, strict=True)
    )
    target = np.diag([step, step, step, 1.0])
    target[:3, 3] = low + step / 2
    out = resample_img(
        load_mni152_template(),
        target_affine=target,
        target_shape=sides,
        interpolation="continuous",
        force_resample=True,
        copy_header=True,
    )
    t = np.clip(np.asarray(out.dataobj, dtype=np.float32), 0, None)
    top = float(np.percentile(t[t > 0], 99)) if (t > 0).any() else 1.0
    t = np.clip(t / max(top, 1e-6), 0, 1)
    t[t < 0.05] = 0.0  # the spline's ringing outside the head, drawn as stripes by view_img
    return WorldImage(t.astype(np.float32), target)


def robust_max(values: np.ndarray, *, percentile: float = 99.5) -> float:
    """The colour limit of a map: the ``percentile`` of its finite non-zero absolute values, so
    one hot voxel does not wash out the rest; 1.0 for a map with nothing in it."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return 1.0
    return float(np.percentile(v, percentile)) or float(v.max())
