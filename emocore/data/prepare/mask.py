"""The images prepare derives from a person's runs: the brain mask and the mean EPI."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from emocore._io import atomic_path

logger = logging.getLogger(__name__)


def mean_epi(run_means: Sequence[np.ndarray], shape) -> np.ndarray:
    """A person's mean EPI: the plain mean of their non-blank runs' mean images, float32."""
    return (np.mean(run_means, axis=0)).reshape(shape).astype(np.float32)


def save_mean_epi(path: Path, image: np.ndarray) -> None:
    """Write a mean EPI to ``path`` atomically (readers see the old file or the whole new one)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: np.save adds no .npy
        np.save(fh, image.astype(np.float32))


def brain_mask(mean_img: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The brain mask of a mean image (nilearn's ``compute_epi_mask``); where that finds no
    brain (an empty mask or a flat image), the voxels whose mean is not zero."""
    # Imported here: nilearn takes about a second to import, which the CLI and the pages (they
    # import this package for its options) should not pay.
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
