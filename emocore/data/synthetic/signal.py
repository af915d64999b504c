"""The BOLD signal of one person: the template brain, their emotion patterns and map of the
shared response, head motion, and each run's time series (see the package docstring)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from scipy.signal import lfilter

from emocore.constants import EMOTIONS
from emocore.data.synthetic.config import BLOCK_VALUES, random_stream

_RHO = 0.5  # AR(1) coefficient of the voxel noise
# Head motion: the typical sd of each of fMRIPrep's six parameters (trans_x/y/z, rot_x/y/z).
_MOTION_SD = np.array([0.15, 0.15, 0.15, 0.002, 0.002, 0.002])  # mm, rad

# Blob centres (MNI mm) per emotion: distinct regions, all inside the slab.
CENTRES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "HAPPINESS": ((-12, 12, -8), (12, 12, -8), (0, 50, -8)),  # ventral striatum, vmPFC
    "FEAR": ((-22, -4, -18), (22, -4, -18), (-34, 18, 2)),  # amygdalae, anterior insula
    "SADNESS": ((0, 26, -12), (-44, 12, -30), (44, 12, -30)),  # subgenual ACC, temporal poles
    "LOVE": ((0, 42, 16), (-30, -60, -16), (30, -60, -16)),  # pregenual ACC/mOFC, fusiform
    "ANGER": ((-52, -24, 6), (52, -24, 6), (40, 34, -12)),  # posterior insula/STG, lateral OFC
}
_SIGMA_MM = 7.0
# The response to the movie shared by everyone (see the package docstring): its map (MNI mm) is
# the auditory cortex at full weight plus a weaker language/narrative network, each blob a
# Gaussian.
AUDITORY_CENTRES = (
    (-44, -22, 8),  # left Heschl's gyrus (primary auditory cortex)
    (46, -18, 8),  # right Heschl's gyrus
    (-58, -24, 4),  # left lateral superior temporal gyrus
    (60, -22, 2),  # right lateral superior temporal gyrus
)
NETWORK_CENTRES = (
    (-54, -44, 8),  # posterior superior temporal sulcus
    (54, -40, 6),
    (-54, 6, -16),  # anterior superior temporal gyrus / sulcus
    (54, 8, -16),
    (-48, 24, 4),  # inferior frontal gyrus (pars triangularis)
    (48, 26, 4),
)
NETWORK_WEIGHT = 0.35  # the network's peak relative to the auditory cortex's
_SHARED_SHIFT_SD_MM = 2.0  # per-person shift of the whole map (sd per axis, times variability)
_SHARED_GAIN_SD = 0.2  # per-person log-gain sd of the map (times variability)
_SHARED_MAP_STREAM = 200  # each person's stream of their map's shift and gain
# Per-person variability: pattern shift (sd per axis, mm) and log-gain sd per emotion.
_SHIFT_SD_MM = {"HAPPINESS": 3.0, "FEAR": 1.0, "SADNESS": 3.0, "LOVE": 8.0, "ANGER": 3.0}
_GAIN_SD = {"HAPPINESS": 0.2, "FEAR": 0.08, "SADNESS": 0.2, "LOVE": 0.45, "ANGER": 0.2}


def template_baseline(shape, affine) -> tuple[np.ndarray, np.ndarray]:
    """BOLD-like baseline (about 500-1,100 in the brain, < 100 outside) and the brain mask."""
    # Imported here, as all of nilearn in this package: it takes about a second to import, and
    # the dashboard's pages import the package for planted_subjects alone.
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template
    from nilearn.image import resample_img

    def resample(img, interpolation: str) -> np.ndarray:
        out = resample_img(
            img,
            target_affine=affine,
            target_shape=shape,
            interpolation=interpolation,
            force_resample=True,
            copy_header=True,
        )
        return np.asarray(out.dataobj, dtype=np.float32)

    t = resample(load_mni152_template(resolution=2), "continuous")
    mask = resample(load_mni152_brain_mask(resolution=2), "nearest") > 0.5
    t = np.clip(t / max(float(np.percentile(t[mask], 99)), 1e-6), 0, 1.2)
    baseline = np.where(mask, 500.0 + 500.0 * t, 30.0 + 50.0 * t).astype(np.float32)
    return baseline, mask


def pattern(world: np.ndarray, mask: np.ndarray, centres: np.ndarray) -> np.ndarray:
    out = np.zeros(world.shape[:3], np.float32)
    for c in centres:
        out += np.exp(-((world - c.astype(np.float32)) ** 2).sum(-1) / (2 * _SIGMA_MM**2))
    out *= mask
    return out / max(float(out.max()), 1e-6)


def subject_patterns(cfg, world, mask, si: int, atypical: bool):
    """One person's patterns and how they were made (shift in mm, gain)."""
    rng = random_stream(cfg, si, 0)
    pats, info = {}, {}
    for e in EMOTIONS:
        shift = rng.normal(0.0, _SHIFT_SD_MM[e], 3) * cfg.variability
        gain = float(np.exp(rng.normal(0.0, _GAIN_SD[e]) * cfg.variability))
        pats[e] = gain * pattern(world, mask, np.asarray(CENTRES[e]) + shift)
        info[e] = {"shift_mm": np.round(shift, 2).tolist(), "gain": round(gain, 3)}
    if atypical:
        w = cfg.atypical_weight
        pats["LOVE"] = w * pats["SADNESS"] + (1 - w) * pats["LOVE"]
    return pats, info


def shared_map(world, mask, shift: np.ndarray) -> np.ndarray:
    """The shared response's map (peak 1): the auditory cortex plus the weaker network."""
    core = pattern(world, mask, np.asarray(AUDITORY_CENTRES, float) + shift)
    network = pattern(world, mask, np.asarray(NETWORK_CENTRES, float) + shift)
    out = np.maximum(core, NETWORK_WEIGHT * network)  # the network never adds to the core
    return out / max(float(out.max()), 1e-6)


def subject_shared_map(cfg, world, mask, si: int) -> tuple[np.ndarray, dict[str, Any]]:
    """One person's map of the shared response (shifted, times a gain) and how it was made; from
    its own stream, so the emotion patterns and the noise are those of ``shared=0``."""
    rng = random_stream(cfg, si, _SHARED_MAP_STREAM)
    shift = rng.normal(0.0, _SHARED_SHIFT_SD_MM, 3) * cfg.variability
    gain = float(np.exp(rng.normal(0.0, _SHARED_GAIN_SD) * cfg.variability))
    info = {"shift_mm": np.round(shift, 2).tolist(), "gain": round(gain, 3)}
    return (gain * shared_map(world, mask, shift)).astype(np.float32), info


def run_bold(
    rng,
    cfg,
    baseline,
    patterns: np.ndarray,
    regressors: np.ndarray,
    motion: tuple[np.ndarray, np.ndarray] | None = None,
    shared: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """One run as int16 (x, y, z, t); ``patterns`` is (emotion, x, y, z), ``regressors`` (e, t).

    ``motion`` is ``(maps, traces)`` from :func:`motion_maps` and :func:`motion_traces`, added
    times ``cfg.motion`` when that is > 0 (nothing else depends on it). ``shared`` is
    ``(map, envelope)``: the person's map of the shared response and the run's part of the
    envelope, added times ``cfg.shared`` (it draws nothing from ``rng``).
    """
    n = regressors.shape[1]
    out = np.empty((*baseline.shape, n), np.int16)
    sigma = 4.0 / cfg.grid_mm  # voxels; mild spatial smoothing of the voxel noise
    t = np.arange(n) / max(n - 1, 1)
    # Scaled after drawing, so the random stream (and drift=1) is as before.
    drift = cfg.drift * sum(rng.normal(0, 0.8) * np.cos(np.pi * k * t) for k in (1, 2, 3))
    glob = lfilter([1.0], [1, -0.8], rng.normal(0, 0.25, n)) + drift + rng.normal(0, 0.5)
    state, block = None, int(np.clip(BLOCK_VALUES // baseline.size, 8, 64))
    response = None  # the shared response's map (scaled, once per run) and time course
    if shared is not None and cfg.shared > 0:
        response = ((cfg.shared * shared[0])[..., None], shared[1].astype(np.float32))
    for t0 in range(0, n, block):
        t1 = min(n, t0 + block)
        pct = np.tensordot(patterns, (cfg.signal * cfg.amplitude) * regressors[:, t0:t1], (0, 0))
        white = rng.standard_normal((*baseline.shape, t1 - t0), dtype=np.float32)
        if sigma > 0.3:
            white = gaussian_filter(white, sigma=(sigma, sigma, sigma, 0), truncate=3.0)
            white /= max(float(white.std()), 1e-6)
        if state is None:  # start in the stationary distribution
            state = _RHO * rng.standard_normal((*baseline.shape, 1), dtype=np.float32)
        ar, state = lfilter([np.sqrt(1 - _RHO**2)], [1, -_RHO], white, axis=-1, zi=state)
        pct += cfg.noise * (1.2 * ar + glob[t0:t1].astype(np.float32))
        if response is not None:
            pct += response[0] * response[1][t0:t1]
        if motion is not None and cfg.motion > 0:
            maps, traces = motion
            pct += np.tensordot(maps, (cfg.motion * traces[:, t0:t1]).astype(np.float32), (0, 0))
        bold = baseline[..., None] * (1 + 0.01 * pct)
        out[..., t0:t1] = np.clip(np.rint(bold), -32768, 32767)
    return out


def motion_traces(rng: np.random.Generator, n: int) -> np.ndarray:
    """(6, n) head-motion parameters of one run in fMRIPrep's order and units (trans_x/y/z in
    mm, rot_x/y/z in rad): a smoothed random walk (slow drift of the head) plus smoothed jitter,
    each half the variance, zero mean, sd ``_MOTION_SD``."""

    def unit(a: np.ndarray) -> np.ndarray:
        a = a - a.mean(axis=1, keepdims=True)
        return a / np.maximum(a.std(axis=1, keepdims=True), 1e-12)

    walk = np.cumsum(gaussian_filter1d(rng.standard_normal((6, n)), 3.0, axis=1), axis=1)
    jitter = gaussian_filter1d(rng.standard_normal((6, n)), 2.5, axis=1)
    return unit(unit(walk) + unit(jitter)) * _MOTION_SD[:, None]


def motion_maps(baseline, mask: np.ndarray, world: np.ndarray, grid_mm: float) -> np.ndarray:
    """(6, x, y, z) % signal change per mm of translation / rad of rotation (float32).

    Moving the head by a displacement field d changes the image to ``b(x - d) ~ b - grad(b) . d``;
    d is a unit shift along x, y or z, or a unit rotation about x, y or z through the brain's
    centre. Scaled so that traces with sd ``_MOTION_SD`` give an RMS of 1 % over the brain.
    """
    b = baseline.astype(np.float64)
    grad = np.stack(np.gradient(b, grid_mm))  # (3, x, y, z), per mm along the world axes (RAS)
    rel = -100.0 * grad / np.maximum(b, 1.0)
    r = np.moveaxis(world - world[mask].mean(axis=0), -1, 0).astype(np.float64)  # from the centre
    rotations = (  # e_axis x r: the displacement of a unit rotation about each axis
        (np.zeros_like(r[0]), -r[2], r[1]),
        (r[2], np.zeros_like(r[0]), -r[0]),
        (-r[1], r[0], np.zeros_like(r[0])),
    )
    maps = [rel[a] for a in range(3)]
    maps += [sum(rel[c] * d[c] for c in range(3)) for d in rotations]
    out = np.stack(maps)
    rms = np.sqrt(np.mean(np.sum((out[:, mask] * _MOTION_SD[:, None]) ** 2, axis=0)))
    return (out / max(float(rms), 1e-12)).astype(np.float32)
