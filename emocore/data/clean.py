"""Drift and confound removal for one run, as a linear projection that streams.

What is removed from every voxel's time series is what ``nilearn.signal.clean(signals,
detrend=..., high_pass=..., t_r=..., filter="cosine", confounds=..., standardize=None)`` removes:
the mean, a linear trend (``detrend``), the discrete cosine drift basis below ``high_pass`` Hz
(the same columns as nilearn's ``make_first_level_design_matrix(..., drift_model="cosine")``)
and, for fMRIPrep input, the confounds that ``nilearn.interfaces.fmriprep.load_confounds``
selects with a named strategy. By the Frisch-Waugh-Lovell theorem, nilearn's detrend -> filter
-> regress sequence equals one projection onto the complement of all those regressors together,
and a test checks that against ``nilearn.signal.clean`` itself.

Why not call ``nilearn.signal.clean`` on the run: it needs the run's (time x voxels) array in
memory, several times over as float64 (a 7-T studyforrest run is 1.1 M voxels x 451 volumes).
A projection needs only the orthonormal basis ``Q`` (time x k) and ``Q.T @ data`` (k x voxels),
which the cache builder accumulates chunk by chunk while it reads the run once; the residuals
and their SD follow without a second read of the NIfTI file (see ``emocore.data.prepare``).
Why the cosine filter and not nilearn's default Butterworth: a Butterworth filter is not a
projection onto a few regressors, so it cannot stream this way; the cosine basis is what SPM,
nilearn's GLM and fMRIPrep's ``cosine*`` confounds use for the same purpose.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emocore.errors import ConfigError, DataError

__all__ = [
    "CONFOUND_STRATEGIES",
    "RunDesign",
    "parse_confounds",
    "run_design",
]

logger = logging.getLogger(__name__)

#: Strategy names of ``load_confounds`` that keep every volume. 'scrub' is left out: it drops
#: volumes, and every volume must keep its place on the movie's time line (its label). The
#: non-steady-state volumes fMRIPrep marks are regressed out one by one instead of dropped.
CONFOUND_STRATEGIES: tuple[str, ...] = (
    "motion",
    "wm_csf",
    "global_signal",
    "compcor",
    "high_pass",
)
_REFUSED = {
    "scrub": "it drops volumes, and each volume must keep its place (and label) in the movie",
    "ica_aroma": "it needs fMRIPrep's ICA-AROMA outputs, which emocore does not read",
    "tedana": "it needs tedana's outputs, which emocore does not read",
    "non_steady_state": "non-steady-state volumes are always regressed out when fMRIPrep marks them",
}


def parse_confounds(text: str | None) -> tuple[str, ...]:
    """``'motion,wm_csf'`` -> ``('motion', 'wm_csf')``, checked; None or '' -> ()."""
    if not text:
        return ()
    parts = tuple(p.strip() for p in str(text).split(",") if p.strip())
    for p in parts:
        if p in _REFUSED:
            raise ConfigError(f"--confounds '{p}' is not offered: {_REFUSED[p]}")
        if p not in CONFOUND_STRATEGIES:
            raise ConfigError(
                f"--confounds must be a comma-separated list of {{{', '.join(CONFOUND_STRATEGIES)}}}"
                f" (nilearn's load_confounds strategies); '{p}' was provided"
            )
    if len(set(parts)) != len(parts):
        raise ConfigError(f"--confounds names a strategy twice: '{text}'")
    if "compcor" in parts and "high_pass" not in parts:
        raise ConfigError(
            "--confounds compcor needs high_pass too (fMRIPrep's CompCor components are computed "
            "after its cosine high-pass): use e.g. --confounds motion,compcor,high_pass"
        )
    return parts


@dataclass(frozen=True)
class RunDesign:
    """What is projected out of one run: an orthonormal basis and what it was built from."""

    basis: np.ndarray  # (n_volumes, k) float64, orthonormal columns, the constant among them
    columns: tuple[str, ...]  # names of the regressors before orthonormalisation
    confounds_file: str | None = None
    spikes: tuple[int, ...] = ()  # volumes fMRIPrep marked non-steady, regressed out one by one

    @property
    def n_regressors(self) -> int:
        return len(self.columns)

    def record(self) -> dict[str, Any]:
        """The manifest's account of this run's cleaning."""
        out: dict[str, Any] = {"n_regressors": self.n_regressors, "rank": int(self.basis.shape[1])}
        if self.confounds_file is not None:
            out["confounds_file"] = self.confounds_file
            out["confound_columns"] = [
                c for c in self.columns if not c.startswith(("constant", "linear", "cosine_"))
            ]
        if self.spikes:
            out["non_steady_state_volumes"] = list(self.spikes)
        return out


def _cosine_drifts(n: int, tr: float, high_pass: float) -> np.ndarray:
    # here: the GPU machine has no nilearn, and only prepare needs it
    from nilearn.glm.first_level import make_first_level_design_matrix

    frame_times = np.arange(n) * tr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn warns when no drift term fits: handled here
        dm = make_first_level_design_matrix(frame_times, drift_model="cosine", high_pass=high_pass)
    return dm[[c for c in dm.columns if c.startswith("drift")]].to_numpy(dtype=np.float64)


def _confounds(
    path: Path, n: int, strategy: tuple[str, ...]
) -> tuple[np.ndarray, list[str], str, list[int]]:
    """fMRIPrep confounds of the run at ``path``, through nilearn's load_confounds."""
    # here: the GPU machine has no nilearn, and only prepare needs it
    from nilearn.interfaces.fmriprep import load_confounds

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table, sample_mask = load_confounds(
                str(path), strategy=strategy, motion="full", wm_csf="basic", global_signal="basic"
            )
    except (ValueError, FileNotFoundError, KeyError, OSError) as exc:
        expected = path.name.split("_space-")[0] + "_desc-confounds_timeseries.tsv"
        raise DataError(
            f"{path}: the confounds for --confounds {','.join(strategy)} could not be read "
            f"({exc}). fMRIPrep writes them as {path.parent / expected}; check that file is there "
            "and has the columns of that strategy, or choose another --confounds (or none)"
        ) from exc
    # here: the GPU machine has no nilearn, and only prepare needs it
    from nilearn.interfaces.fmriprep.load_confounds_utils import get_confounds_file

    tsv = str(get_confounds_file(str(path), flag_full_aroma=False, flag_tedana=False))
    values = np.asarray(table, dtype=np.float64) if table is not None else np.zeros((n, 0))
    if len(values) != n:
        raise DataError(
            f"{tsv} has {len(values)} rows but {path} has {n} volumes; a confounds table must "
            "have one row per volume. Use the confounds fMRIPrep wrote for this run"
        )
    if not np.isfinite(values).all():  # fMRIPrep leaves n/a in the first row of derivatives
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    names = [str(c) for c in table.columns] if table is not None else []
    spikes = (
        [] if sample_mask is None else sorted(set(range(n)) - set(np.asarray(sample_mask).tolist()))
    )
    return values, names, tsv, spikes


def run_design(
    path: Path,
    n_volumes: int,
    tr: float,
    *,
    detrend: bool,
    high_pass: float | None,
    confounds: tuple[str, ...] = (),
) -> RunDesign:
    """The regressors projected out of one run and their orthonormal basis.

    Always the constant (z-scoring removes the mean); with ``detrend`` a linear trend; with
    ``high_pass`` (Hz) the cosine drift terms below it; with ``confounds`` the fMRIPrep confounds
    that strategy selects, plus one indicator per non-steady-state volume fMRIPrep marked.
    """
    n = int(n_volumes)
    cols: list[np.ndarray] = [np.ones(n)]
    names = ["constant"]
    if detrend and n > 1:
        cols.append(np.arange(n) - (n - 1) / 2.0)
        names.append("linear")
    if high_pass is not None and n > 1:
        drifts = _cosine_drifts(n, tr, high_pass)
        cols += list(drifts.T)
        names += [f"cosine_{i:02d}" for i in range(drifts.shape[1])]
    tsv: str | None = None
    spikes: list[int] = []
    if confounds:
        values, conf_names, tsv, spikes = _confounds(path, n, confounds)
        cols += list(values.T)
        names += conf_names
        for v in spikes:
            cols.append(np.eye(n)[v])
            names.append(f"non_steady_state_{v:03d}")
    X = np.column_stack(cols)
    if X.shape[1] >= n:
        raise DataError(
            f"{path}: {X.shape[1]} regressors for {n} volumes leave nothing to decode; lower "
            "--high-pass or choose fewer --confounds"
        )
    # An SVD, not a QR: fMRIPrep's cosine columns and ours span the same space, and a rank
    # deficient basis must not divide by zero.
    u, s, _ = np.linalg.svd(X / np.linalg.norm(X, axis=0).clip(1e-12), full_matrices=False)
    basis = u[:, s > s.max() * 1e-8]
    return RunDesign(basis=basis, columns=tuple(names), confounds_file=tsv, spikes=tuple(spikes))
