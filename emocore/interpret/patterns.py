"""Activation patterns of the linear decoder: a reference information map for the CNN's saliency.

The weights of a linear decoder are *not* a map of where the information is: a voxel that only
carries noise shared with informative voxels gets a large weight (it is used to cancel that
noise, a "suppressor"), and an informative voxel can get a small one. Haufe et al. (2014, "On
the interpretation of weight vectors of linear models in multivariate neuroimaging",
NeuroImage 87:96-110, eq. 6) turn a backward model's weights ``W`` (voxels x components) into
the forward model's *activation patterns*

    A = Cov(X) W Cov(s)^-1,   with s = X W the decoder's latent scores,

which show how each latent score is expressed in the voxels; a suppressor voxel gets ~0.

* :func:`haufe_patterns` computes ``A`` from data and weights, never forming the voxel x voxel
  covariance (``Cov(X) W = X_c^T (X_c W) / (n - 1)``, with ``X_c`` the centred data).
* :func:`linear_patterns` fits the linear baseline's logistic regression (the preprocessing of
  :mod:`emocore.training.baseline`: masked voxels, ``StandardScaler``, L2 ``LogisticRegression``) on rows
  of a cache and returns one pattern volume per emotion.
* :func:`save_linear_patterns` writes them as BIDS-derivative NIfTI files with JSON sidecars.
* :func:`spatial_correlation` compares two maps (Pearson within the mask), e.g. a pattern with
  a CNN saliency map or with a planted truth.
* :func:`correlation_against_randomised` gives the CNN-map vs pattern correlation its null: the
  same correlation with the map of the CNN with re-drawn weights (:mod:`emocore.interpret.saliency_checks`)
  and a bootstrap interval of the difference.

Why that null and not smooth surrogate maps: both maps are smooth and both follow the input
(voxels with more signal variance get larger gradients and larger patterns), so even a CNN that
learnt nothing correlates with the pattern. The randomised model's map has the network's
structure and sees the same volumes (and the same SmoothGrad noise) but has learnt nothing: it
carries exactly the agreement that learning does not explain. Surrogates that only keep the
maps' smoothness (spin or variogram-matched maps) would remove the first part, not the second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import pinvh
from scipy.stats import pearsonr

from emocore._io import atomic_write_json
from emocore.data.cache import VolumeCache
from emocore.data.derivatives import linear_pattern_relpath, sidecar_path
from emocore.errors import ConfigError
from emocore.interpret.saliency import pool_volumes, save_nifti
from emocore.interpret.saliency_checks import N_BOOTSTRAP, paired_bootstrap

# the baseline's own reader and model, so the patterns' preprocessing cannot drift from it
from emocore.training.baseline import linear_pipeline, masked_rows

__all__ = [
    "haufe_patterns",
    "linear_patterns",
    "save_linear_patterns",
    "spatial_correlation",
    "correlation_against_randomised",
]


def haufe_patterns(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Activation patterns ``A`` (p, k) of the linear decoder ``W`` (p, k) on the data ``X`` (n, p).

    ``A = Cov(X) W Cov(s)^-1`` (Haufe et al. 2014, eq. 6) with ``s = X W``; ``Cov(X) W`` is
    computed as ``X_c^T (X_c W) / (n - 1)``, which costs O(n p k) memory-light operations instead
    of the p x p covariance. ``Cov(s)`` is inverted with a pseudo-inverse
    (``scipy.linalg.pinvh``) that drops directions with eigenvalues below ``1e-6`` times the
    largest, so linearly dependent scores (for instance a multinomial decoder's, whose L2-penalised
    class weights sum to zero) do not blow up through rounding error. A 1-D ``W`` (one
    component) gives a 1-D ``A``, ``Cov(X) w / Var(s)``. Scaling ``W`` by ``c`` scales ``A``
    by ``1/c``: a pattern is the data change per unit of score.
    """
    X = np.asarray(X, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    one = W.ndim == 1
    W2 = W[:, None] if one else W
    if X.ndim != 2 or W2.ndim != 2 or X.shape[1] != W2.shape[0]:
        raise ConfigError(
            f"X must be (volumes, voxels) and W (voxels, components) with the same voxels; got "
            f"X {X.shape} and W {W.shape}"
        )
    n = X.shape[0]
    if n < 2:
        raise ConfigError(f"patterns need at least 2 volumes to estimate covariances; got {n}")
    Xc = X - X.mean(axis=0)
    scores = Xc @ W2  # (n, k)
    cov_x_w = Xc.T @ scores / (n - 1)  # (p, k) = Cov(X) W
    cov_s = np.atleast_2d(np.cov(scores, rowvar=False))  # (k, k)
    A = cov_x_w @ pinvh(cov_s, rtol=1e-6)
    return A[:, 0] if one else A


def linear_patterns(
    cache: VolumeCache,
    rows: pd.DataFrame,
    classes: Sequence[str],
    *,
    C: float = 0.01,
) -> dict[str, np.ndarray]:
    """Haufe activation pattern of each emotion's linear-decoder score, as full-grid volumes.

    Fits the linear baseline's model (:mod:`emocore.training.baseline`'s own pipeline) on ``rows``
    (needs ``subject``, ``row`` and ``y``, the class index into ``classes``, as
    :func:`emocore.data.dataset.select` gives): the voxels in the cache's mask, standardised
    per voxel (``StandardScaler``), then an L2 ``LogisticRegression(C=C)``. The patterns are those of the standardised voxels (the data
    the weights act on). Each emotion's score ``s_k = X w_k`` is treated as a decoder of its
    own: its pattern is ``Cov(X) w_k / Var(s_k)``, the voxels' change per unit of that score
    (the multinomial scores sum to zero, so the joint ``Cov(s)`` of eq. 6 is singular and
    partialling the other scores out is not defined). An emotion's pattern is positive where
    its volumes are higher and negative where the other emotions' are. Voxels outside the mask
    are 0. With two emotions scikit-learn fits one score
    (the second class's); the first class's pattern is its negative. Emotions absent from
    ``rows`` get no pattern. Returns ``{emotion: (x, y, z) float32 volume}``.
    """
    if not 0 < C < np.inf:
        raise ConfigError(f"'C' must be a positive number; {C!r} was provided")
    y = rows["y"].to_numpy()
    present = np.unique(y)
    if len(present) < 2:
        raise ConfigError(
            f"patterns need volumes of at least two emotions; the rows hold {len(present)}"
        )
    if present.min() < 0 or present.max() >= len(classes):
        raise ConfigError(f"'y' must index 'classes' ({len(classes)} of them); got {present}")
    voxels = masked_rows(cache, rows)
    model = linear_pipeline(C).fit(voxels, y)
    scaler, clf = model[0], model[-1]
    X = scaler.transform(voxels)
    W = clf.coef_.T  # (voxels, 1) for two classes, else (voxels, classes)
    A = np.column_stack([haufe_patterns(X, W[:, k]) for k in range(W.shape[1])])
    if A.shape[1] == 1:
        A = np.hstack([-A, A])
    mask = cache.mask
    out: dict[str, np.ndarray] = {}
    for column, k in enumerate(clf.classes_):
        volume = np.zeros(mask.shape, np.float32)
        volume[mask] = A[:, column]
        out[classes[int(k)]] = volume
    return out


def save_linear_patterns(
    patterns: Mapping[str, np.ndarray],
    affine: np.ndarray,
    folder: str | Path,
    *,
    subject: str | None,
    sidecar: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write each emotion's pattern as NIfTI with ``affine`` and a JSON sidecar; return the paths.

    Files follow :func:`emocore.data.derivatives.linear_pattern_relpath` below ``folder`` (a design's
    saliency folder, next to the CNN maps): ``sub-XX/sub-XX_desc-<emotion>_linearpattern.nii.gz``
    for one person, ``desc-<emotion>_linearpattern.nii.gz`` for several. The sidecar says what
    the numbers are; ``sidecar`` adds keys (model, volumes, C, ...) to it.
    """
    written: dict[str, Path] = {}
    for emotion, volume in patterns.items():
        path = save_nifti(volume, affine, Path(folder) / linear_pattern_relpath(subject, emotion))
        atomic_write_json(
            sidecar_path(path),
            {
                "Description": (
                    f"Activation pattern (Haufe et al. 2014, NeuroImage 87:96-110) of the linear "
                    f"decoder's {emotion} score: where the information it uses is expressed"
                ),
                "Emotion": emotion,
                "Method": "haufe-activation-pattern",
                "Decoder": "L2 logistic regression on the masked, standardised voxels",
                "Units": (
                    "per voxel, Cov(voxel, score) / Var(score) on voxels standardised to unit "
                    "variance: standard deviations of the voxel per unit of the emotion's "
                    "logistic-regression score; signed; 0 outside the brain mask"
                ),
                **dict(sidecar or {}),
            },
            indent=2,
        )
        written[emotion] = path
    return written


def spatial_correlation(
    map_a: np.ndarray, map_b: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Pearson correlation of two maps over the voxels in ``mask`` (all voxels if None).

    NaN when either map is constant there.
    """
    a, b = np.asarray(map_a, dtype=np.float64), np.asarray(map_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ConfigError(f"the two maps are on different grids: {a.shape} and {b.shape}")
    if mask is not None:
        if mask.shape != a.shape:
            raise ConfigError(
                f"the mask {mask.shape} and the maps {a.shape} are on different grids"
            )
        a, b = a[mask.astype(bool)], b[mask.astype(bool)]
    else:
        a, b = a.reshape(-1), b.reshape(-1)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(pearsonr(a, b).statistic)


def correlation_against_randomised(
    trained_volumes: np.ndarray,
    randomised_volumes: np.ndarray,
    pattern: np.ndarray,
    *,
    n_boot: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """The CNN-map vs linear-pattern correlation beside its null, the randomised model's map.

    ``trained_volumes`` and ``randomised_volumes`` are each explained volume's map of the
    trained and of the weight-randomised CNN within the brain mask (volumes, voxels), as
    :func:`emocore.interpret.saliency_checks.saliency_checks` keeps them (a set of them pools
    into a map by :func:`emocore.interpret.saliency.pool_volumes`); ``pattern`` the same voxels
    of the pattern (its absolute value is compared, as the CNN maps are absolute). Returns

    ``correlation_with_saliency``
        Pearson r of the trained CNN's mean map with |pattern|;
    ``correlation_with_randomised_saliency``
        the same r for the randomised CNN's mean map on the same volumes;
    ``correlation_difference_ci95``
        ``[low, high]``, the 95 % bootstrap interval of their difference, resampling the
        volumes (the same draw for both; :func:`emocore.interpret.saliency_checks.paired_bootstrap`,
        ``n_boot`` draws);
    ``correlation_beyond_randomised``
        whether ``low`` > 0: the trained CNN agrees with the linear decoder more than the
        untrained network on the same input does.
    """
    target = np.abs(np.asarray(pattern, dtype=np.float64)).reshape(-1)
    t = np.asarray(trained_volumes, dtype=np.float64)
    r = np.asarray(randomised_volumes, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] != target.size:
        raise ConfigError(
            f"the per-volume maps must be (volumes, {target.size} voxels of the pattern); got "
            f"{t.shape}"
        )
    centred = target - target.mean()
    scale = np.sqrt((centred**2).sum())

    def pearson(rows: np.ndarray) -> np.ndarray:
        rows = rows - rows.mean(1, keepdims=True)
        norms = np.sqrt((rows**2).sum(1)) * scale
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(norms > 0, rows @ centred / norms, np.nan)

    low, high = paired_bootstrap(t, r, pearson, n_boot=n_boot, seed=seed)
    return {
        "correlation_with_saliency": spatial_correlation(pool_volumes(t), target),
        "correlation_with_randomised_saliency": spatial_correlation(pool_volumes(r), target),
        "correlation_difference_ci95": [low, high],
        "correlation_beyond_randomised": bool(low > 0),
    }
