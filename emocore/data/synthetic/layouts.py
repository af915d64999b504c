"""Writing a cohort's files: NIfTI images, and each run in its layout (``derivative``, ``raw``,
``fmriprep``) with what goes with it there: the file names, the JSON sidecars, the acq-raw copy
and fMRIPrep's brain mask and confounds table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from emocore.constants import TR_S, bold_filename
from emocore.data.synthetic.config import BLOCK_VALUES, SynthConfig

_FUNC_DIR = "sub-{s}/ses-forrestgump/func/sub-{s}_ses-forrestgump_task-forrestgump"
_SPACE = "MNI152NLin2009cAsym"  # the fMRIPrep name of the space the template is in
# fMRIPrep's names of the six head-motion parameters, in its order (see signal.motion_traces).
_MOTION_NAMES = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_HIGH_PASS_S = 128.0  # fMRIPrep's cosine regressors: a high-pass filter at 1/128 Hz


def save_nifti(
    data: np.ndarray, affine: np.ndarray, path: Path, *, tr: float | None = None
) -> None:
    """Save ``data`` as a NIfTI image at ``path`` (folders made), in mm and s (``tr``: the time
    between volumes of a 4-D image)."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        img.header.set_zooms((*img.header.get_zooms()[:3], tr))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)  # nibabel gzips at level 1


def confound_regions(baseline: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Voxels whose mean gives fMRIPrep's global_signal (the brain), white_matter (the brightest
    fifth of the brain: the baseline is the T1 template) and csf (the darkest tenth), as boolean
    vectors over the brain's voxels in C order."""
    values = baseline[mask]
    return {
        "global_signal": np.ones(values.size, bool),
        "csf": values <= np.percentile(values, 10),
        "white_matter": values >= np.percentile(values, 80),
    }


def _with_expansions(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """fMRIPrep's 24-parameter expansion: x, x_derivative1, x_derivative1_power2, x_power2
    (the derivative is a backward difference, n/a at the first volume)."""
    out: dict[str, np.ndarray] = {}
    for name, x in table.items():
        d = np.concatenate([[np.nan], np.diff(x)])
        out |= {
            name: x,
            f"{name}_derivative1": d,
            f"{name}_derivative1_power2": d**2,
            f"{name}_power2": x**2,
        }
    return out


def _confounds(data: np.ndarray, mask: np.ndarray, regions, traces: np.ndarray) -> pd.DataFrame:
    """fMRIPrep's confounds table of one run (int16 (x, y, z, t) ``data``), in its column names:
    global_signal, csf, white_matter (means, with their expansions), csf_wm, dvars, std_dvars
    (as nipype computes them), framewise_displacement (Power: 50-mm sphere), the six motion
    parameters with expansions and cosine00.. (DCT high-pass at 1/128 Hz).

    No non_steady_state_outlier columns: the synthetic runs have no dummy volumes.
    Reads the brain's voxels in blocks, so a full-size run needs little extra memory.
    """
    n = data.shape[-1]
    flat = data.reshape(-1, n)
    brain = np.flatnonzero(mask.ravel())
    sums = {k: np.zeros(n) for k in regions}
    diff_sq, diff_sd = np.zeros(n - 1), 0.0
    block = max(1, BLOCK_VALUES // (4 * n))
    for b0 in range(0, brain.size, block):
        x = flat[brain[b0 : b0 + block]].astype(np.float64)
        for k, member in regions.items():
            sums[k] += x[member[b0 : b0 + block]].sum(axis=0)
        diff_sq += (np.diff(x, axis=1) ** 2).sum(axis=0)
        q25, q75 = np.percentile(x, [25, 75], axis=1, method="lower")
        xc = x - x.mean(axis=1, keepdims=True)
        var = (xc**2).sum(axis=1)
        ar1 = (xc[:, 1:] * xc[:, :-1]).sum(axis=1) / np.where(var > 0, var, 1.0)
        diff_sd += float((np.sqrt(2 * (1 - ar1)) * (q75 - q25) / 1.349).sum())
    means = {k: sums[k] / max(int(regions[k].sum()), 1) for k in regions}
    dvars = np.concatenate([[np.nan], np.sqrt(diff_sq / max(brain.size, 1))])
    table = _with_expansions(means)
    table["csf_wm"] = (sums["csf"] + sums["white_matter"]) / max(
        int(regions["csf"].sum() + regions["white_matter"].sum()), 1
    )
    table["dvars"] = dvars
    table["std_dvars"] = dvars / max(diff_sd / max(brain.size, 1), 1e-12)
    moves = np.abs(np.diff(traces, axis=1))
    fd = moves[:3].sum(axis=0) + 50.0 * moves[3:].sum(axis=0)  # rad -> mm on a 50-mm sphere
    table["framewise_displacement"] = np.concatenate([[np.nan], fd])
    table |= _with_expansions(dict(zip(_MOTION_NAMES, traces, strict=True)))
    order = int(np.floor(2 * n * TR_S / _HIGH_PASS_S))
    frames = np.arange(n)
    for k in range(1, order):
        table[f"cosine{k - 1:02d}"] = np.sqrt(2.0 / n) * np.cos(np.pi / n * (frames + 0.5) * k)
    return pd.DataFrame(table)


_CONFOUND_DOCS = {
    "global_signal": "mean of the brain mask",
    "csf": "mean of the darkest tenth of the brain",
    "white_matter": "mean of the brightest fifth of the brain",
    "csf_wm": "mean of the csf and white_matter voxels together",
    "dvars": "RMS over the brain of the temporal difference",
    "std_dvars": "dvars over its expected value (nipype's AR(1) estimate)",
    "framewise_displacement": "Power et al. 2012: sum of |d trans| + 50 mm * sum of |d rot|",
    "trans_x": "synthetic head motion, mm",
    "rot_x": "synthetic head motion, rad",
    "cosine00": "DCT basis of a 1/128 Hz high-pass filter",
}


def bold_template(layout: str) -> str:
    """Path of each run's BOLD file (the one to read) below the root, with {s} and {run:02d}."""
    if layout == "derivative":
        return bold_filename("{s}", 0).replace("run-00", "run-{run:02d}")
    if layout == "raw":
        return _FUNC_DIR + "_acq-dico_run-{run:02d}_bold.nii.gz"
    return _FUNC_DIR + f"_run-{{run:02d}}_space-{_SPACE}_desc-preproc_bold.nii.gz"


def _sidecar(path: Path, **extra: Any) -> None:
    meta = {"RepetitionTime": TR_S, "TaskName": "forrestgump", **extra}
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(meta, indent=1))


def write_run(root: Path, cfg: SynthConfig, subject: str, run: int, data, affine, extra) -> None:
    """Save one run in ``cfg.layout``; ``extra`` is ``(mask, regions, traces)`` (fmriprep)."""
    path = root / bold_template(cfg.layout).format(s=subject, run=run)
    save_nifti(data, affine, path, tr=TR_S)
    if cfg.layout == "raw":
        _sidecar(path)
        # The uncorrected acquisition: the same data one voxel further along y (the phase-encoding
        # axis, along which distortion correction moves voxels); the edge row is repeated.
        moved = np.concatenate([data[:, :1], data[:, :-1]], axis=1)
        raw = path.with_name(path.name.replace("_acq-dico_", "_acq-raw_"))
        save_nifti(moved, affine, raw, tr=TR_S)
        _sidecar(raw)
    elif cfg.layout == "fmriprep":
        mask, regions, traces = extra
        _sidecar(path, SkullStripped=False)
        stem = path.name.split(f"_space-{_SPACE}")[0]
        brain = path.with_name(f"{stem}_space-{_SPACE}_desc-brain_mask.nii.gz")
        save_nifti(mask.astype(np.uint8), affine, brain)
        table = _confounds(data, mask, regions, traces)
        tsv = path.with_name(f"{stem}_desc-confounds_timeseries.tsv")
        table.to_csv(tsv, sep="\t", index=False, na_rep="n/a", float_format="%.8g")
        docs = {c: {"Description": _CONFOUND_DOCS[c]} for c in table.columns if c in _CONFOUND_DOCS}
        tsv.with_suffix(".json").write_text(json.dumps(docs, indent=1))
