"""A synthetic studyforrest-like cohort that the real reading code consumes unchanged.

The same cohort (the same BOLD data for the same config) is written in one of three layouts
(``SynthConfig.layout``); ``annotations/`` and ``ground_truth/`` are at the same places in all
three, so ``emocore prepare --bids OUT --annotations OUT/annotations`` is the command in every
layout (raw: add ``--acq dico``, as for the real ds000113)::

    annotations/raw/av1o01..09.csv, ao1o01..03.csv   raw observer format (Labs et al. 2015)
    annotations/movie_scenes.csv                      start, location, DAY|NIGHT, INT|EXT
    ground_truth/patterns/<EMOTION>.nii.gz            cohort pattern of each emotion (peak 1)
    ground_truth/patterns/sub-XX_<EMOTION>.nii.gz     each person's pattern (shift, gain, atypical)
    ground_truth/shared/map.nii.gz                    the shared response's map (peak 1)
    ground_truth/shared/sub-XX_map.nii.gz             each person's map (shift, gain)
    ground_truth/shared/envelope.tsv                  its time course (not written at shared=0)
    ground_truth/episodes.tsv, brain_mask.nii.gz
    ground_truth/cohort.json        config, layout, bold_file (path template), people
    dataset_description.json, README

``derivative`` (default): the ds000113 aligned derivative, as the DeepEmotion prototype read it::

    derivatives/non-linear_anatomical_alignment/sub-XX/ses-forrestgump/func/
        sub-XX_ses-forrestgump_task-forrestgump_rec-dico7Tad2grpbold7TadNL_run-0N_bold.nii.gz

``raw``: like OpenNeuro ds000113 (no ``derivatives/``); ``acq-dico`` holds the same data as the
derivative layout, ``acq-raw`` the same data shifted by one voxel along y (the geometry before
distortion correction), so reading the wrong one is not silently identical::

    sub-XX/ses-forrestgump/func/sub-XX_ses-forrestgump_task-forrestgump_acq-dico_run-0N_bold.nii.gz
    sub-XX/ses-forrestgump/func/sub-XX_ses-forrestgump_task-forrestgump_acq-raw_run-0N_bold.nii.gz
        (each with a .json sidecar: RepetitionTime 2.0, TaskName forrestgump)

``fmriprep``: ``out`` is an fMRIPrep derivative folder (``DatasetType`` "derivative"); the
confounds table is what ``nilearn.interfaces.fmriprep.load_confounds`` reads (motion, wm_csf,
global_signal, high_pass, scrub)::

    sub-XX/ses-forrestgump/func/sub-XX_ses-forrestgump_task-forrestgump_run-0N_
        space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz (+ .json)
        space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz
    sub-XX/ses-forrestgump/func/sub-XX_ses-forrestgump_task-forrestgump_run-0N_
        desc-confounds_timeseries.tsv (+ .json)

Signal model, per person and volume (acquired at movie time ``start_k + 2 i``)::

    bold = baseline * (1 + 0.01 * (signal * amplitude * sum_e pattern_e * hrf_e(t)
                                   + shared * map(x) * envelope(t) + noise * n(t)))

* baseline: nilearn's MNI152 template (shipped, no download), resampled to the grid.
* pattern_e: Gaussian blobs at plausible MNI coordinates per emotion, shifted and scaled per
  person (fear most consistent, love most variable). The atypical person's LOVE pattern is mostly
  their SADNESS pattern (like subject 18 of the poster).
* hrf_e: the true episodes (boxcars) convolved with nilearn's Glover HRF, 1 on a long block. The
  16-s run overlaps repeat the same movie time, hence the same stimulus.
* shared response (``shared`` > 0, default 0.8): everybody hears the same movie, so real BOLD
  carries a strong stimulus-driven response common to all people (inter-subject correlation,
  Hasson et al. 2004). envelope(t) is the soundtrack's loudness (smoothed Gaussian noise on
  time scales of 2 and 20 s) convolved with the Glover HRF, scaled to sd 1 over the movie; it is
  drawn from the cohort's own stream (the seed alone), on movie time, so it is the same time
  course in everyone and the 16-s run overlaps repeat it. map(x) peaks at 1 on the auditory
  cortex (bilateral Heschl's gyri and lateral superior temporal gyri) and reaches 0.35 on a
  wider language network (posterior STS, anterior STG, inferior frontal gyri); each person's map
  is shifted (sd 2 mm per axis) and scaled (log-gain sd 0.2), both times ``variability``.
  ``shared`` is thus the response's sd in % signal at the auditory peak. ``shared_emotion`` f
  makes about f of the envelope's variance a mix of the emotion regressors (louder in ANGER and
  FEAR, quieter in SADNESS and LOVE); ``signal=0`` turns that part off. The map and envelope are
  in ``ground_truth/shared/``.
* n(t): voxelwise AR(1) noise (rho 0.5, mildly smoothed in space), a global fluctuation shared by
  all voxels, slow cosine drift (times ``drift``) and an offset per run. ``signal=0`` leaves only
  these; the noise does not depend on ``signal``, so cohorts that differ only in ``signal`` share
  their noise.
* head motion (``motion`` > 0): ``+ motion * sum_j m_j(t) * map_j(x)`` in the % change, not scaled
  by ``noise``. m_j are six smooth traces per run (trans_x/y/z in mm, rot_x/y/z in rad; a smoothed
  random walk plus smoothed jitter, sd 0.15 mm and 0.002 rad); map_j is the first-order change of
  the baseline when its content moves (``-100 * grad(baseline) . displacement_j / baseline``: a
  shift along an axis for translations, a rotation about the brain's centre for rotations), so it
  is strongest at the brain's edges. The maps are scaled so that ``motion=1`` gives an RMS of 1 %
  over the brain, like the voxel noise (1.2 %). The traces come from their own random stream, so
  ``motion=0`` changes nothing else; the fmriprep layout writes them to the confounds table.

Random streams are seeded from ``(seed, subject, run)`` (the motion traces from
``(seed, subject, 100 + run)``, each person's shared map from ``(seed, subject, 200)``, the
soundtrack from ``(seed, 0, 300)``), so one person's files do not depend on how many others are
made, and ``motion=0``, ``shared=0`` give the data of cohorts made before those options existed.
Runs are computed in blocks of volumes, so a full-size run never needs more than its int16
output plus a few blocks in memory.

Synthetic observers annotate the true episodes with jittered boundaries, several rows per episode
(different characters), rows without emotion and false alarms. Calibrated so that the poster's
label recipe (4-s lag) gives per-class counts near the real ones and mostly matches the episodes.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from scipy.signal import lfilter

from emocore import __version__
from emocore._io import current_umask
from emocore.constants import (
    CATEGORY_MAP,
    DERIVATIVE_DIR,
    EMOTIONS,
    RUN_N_VOLUMES,
    RUN_STARTS_S,
    TR_S,
    bold_filename,
)
from emocore.data.labels import COLUMNS as OBSERVER_COLUMNS  # the columns labels.py reads
from emocore.errors import ConfigError, DataError, check_choice
from emocore.progress import Progress

__all__ = [
    "OtherCohortError",
    "SynthConfig",
    "LAYOUTS",
    "generate_cohort",
    "planted_subjects",
    "grid_for",
    "FOV_LOW_MM",
    "FOV_EXTENT_MM",
]

logger = logging.getLogger(__name__)


class OtherCohortError(DataError):
    """The output folder already holds a synthetic cohort made with other options."""


#: Field of view in MNI mm (x, y, z): the brain in x and y, a slab in z covering the amygdala,
#: insula, superior temporal gyrus, orbitofrontal cortex, ACC and temporal poles. At 1.2 mm it is
#: exactly the 132 x 175 x 48 grid of the studyforrest derivative; at 7.2 mm it is 22 x 29 x 8.
FOV_LOW_MM: tuple[float, float, float] = (-79.2, -122.0, -34.0)
FOV_EXTENT_MM: tuple[float, float, float] = (158.4, 210.0, 57.6)
_FORMAT = 1  # bump when the generator's output changes, so old cohorts count as different
_BLOCK_VALUES = 2**24  # voxel values computed at once (64 MiB as float32)
_RHO = 0.5  # AR(1) coefficient of the voxel noise
_MOVIE_END_S = float(RUN_STARTS_S[-1] + TR_S * RUN_N_VOLUMES[-1])

#: Where the BOLD files go (see the module docstring).
LAYOUTS: tuple[str, ...] = ("derivative", "raw", "fmriprep")
_FUNC_DIR = "sub-{s}/ses-forrestgump/func/sub-{s}_ses-forrestgump_task-forrestgump"
_SPACE = "MNI152NLin2009cAsym"  # the fMRIPrep name of the space the template is in
# Options added after cohorts were first written, with the value that reproduces those cohorts.
_ADDED_OPTIONS = {
    "layout": "derivative",
    "motion": 0.0,
    "drift": 1.0,
    "shared": 0.0,
    "shared_emotion": 0.0,
}
# Head motion: fMRIPrep's parameter names, units and the typical sd of each trace.
_MOTION_NAMES = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_MOTION_SD = np.array([0.15, 0.15, 0.15, 0.002, 0.002, 0.002])  # mm, rad
_HIGH_PASS_S = 128.0  # fMRIPrep's cosine regressors: a high-pass filter at 1/128 Hz

# Blob centres (MNI mm) per emotion: distinct regions, all inside the slab.
_CENTRES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "HAPPINESS": ((-12, 12, -8), (12, 12, -8), (0, 50, -8)),  # ventral striatum, vmPFC
    "FEAR": ((-22, -4, -18), (22, -4, -18), (-34, 18, 2)),  # amygdalae, anterior insula
    "SADNESS": ((0, 26, -12), (-44, 12, -30), (44, 12, -30)),  # subgenual ACC, temporal poles
    "LOVE": ((0, 42, 16), (-30, -60, -16), (30, -60, -16)),  # pregenual ACC/mOFC, fusiform
    "ANGER": ((-52, -24, 6), (52, -24, 6), (40, 34, -12)),  # posterior insula/STG, lateral OFC
}
_SIGMA_MM = 7.0
# The response to the movie shared by everyone (see the module docstring): its map (MNI mm) is the
# auditory cortex at full weight plus a weaker language/narrative network, each blob a Gaussian.
_AUDITORY_CENTRES = (
    (-44, -22, 8),  # left Heschl's gyrus (primary auditory cortex)
    (46, -18, 8),  # right Heschl's gyrus
    (-58, -24, 4),  # left lateral superior temporal gyrus
    (60, -22, 2),  # right lateral superior temporal gyrus
)
_NETWORK_CENTRES = (
    (-54, -44, 8),  # posterior superior temporal sulcus
    (54, -40, 6),
    (-54, 6, -16),  # anterior superior temporal gyrus / sulcus
    (54, 8, -16),
    (-48, 24, 4),  # inferior frontal gyrus (pars triangularis)
    (48, 26, 4),
)
_NETWORK_WEIGHT = 0.35  # the network's peak relative to the auditory cortex's
_SHARED_SHIFT_SD_MM = 2.0  # per-person shift of the whole map (sd per axis, times variability)
_SHARED_GAIN_SD = 0.2  # per-person log-gain sd of the map (times variability)
_SHARED_STREAM = 300  # the cohort's random stream of the soundtrack (``_rng(cfg, 0, 300)``)
_SHARED_MAP_STREAM = 200  # each person's stream of their map's shift and gain
_SOUND_DT_S = 0.5  # time step of the soundtrack's loudness
_SOUND_SCALES_S = (2.0, 20.0)  # its two time scales (words and phrases, scenes), equal variance
# Loudness of the soundtrack per emotion (``shared_emotion`` > 0): arousal-like, louder in angry
# and fearful scenes, quieter in sad and tender ones, so the shared response tells them apart.
_SOUND_BY_EMOTION = {"HAPPINESS": 0.4, "FEAR": 0.8, "SADNESS": -0.8, "LOVE": -0.4, "ANGER": 1.0}
# Per-person variability: pattern shift (sd per axis, mm) and log-gain sd per emotion.
_SHIFT_SD_MM = {"HAPPINESS": 3.0, "FEAR": 1.0, "SADNESS": 3.0, "LOVE": 8.0, "ANGER": 3.0}
_GAIN_SD = {"HAPPINESS": 0.2, "FEAR": 0.08, "SADNESS": 0.2, "LOVE": 0.45, "ANGER": 0.2}
# Real per-volume counts of the poster labels (3,599 volumes, lag 0): the episode quota per class.
_REAL_COUNTS = {"HAPPINESS": 218, "FEAR": 170, "SADNESS": 243, "LOVE": 105, "ANGER": 80}
_MAIN_WORD = {e: e for e in EMOTIONS} | {"ANGER": "ANGERRAGE"}
_CHARACTERS = ("FORREST", "FORRESTVO", "JENNY", "DAN", "BUBBA", "MRSGUMP", "MAN", "CROWD", "WOMAN")
_LOCATIONS = (
    "SAVANNAH BUS STOP",
    "GREENBOW HOUSE",
    "SCHOOL BUS",
    "COLLEGE STADIUM",
    "VIETNAM",
    "WASHINGTON MALL",
    "SHRIMP BOAT",
    "BAYOU LA BATRE",
    "ROAD",
    "CHURCH",
)


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """Options of the generator; saved in ``ground_truth/cohort.json``.

    ``amplitude`` is the % signal change at a pattern's peak for a sustained episode at
    ``signal=1``. ``atypical`` names the people whose LOVE response is mostly their SADNESS
    pattern; by default the last person (sub-18 in a cohort of 18 or more), none for one person
    (an empty tuple plants nobody). ``atypical_weight`` is the share of their LOVE pattern taken
    from their SADNESS pattern (1 = their LOVE response is their SADNESS response).
    ``variability`` scales the between-person spread of every pattern (shift and log-gain SDs;
    1 = the defaults above, 0 = everybody's patterns alike).

    ``layout`` is where the BOLD files go: ``"derivative"`` (the ds000113 aligned derivative),
    ``"raw"`` (OpenNeuro ds000113: ``acq-dico`` and ``acq-raw``) or ``"fmriprep"`` (an fMRIPrep
    derivative with a brain mask and a confounds table); the BOLD data are the same in all three.
    ``motion`` is the head-motion noise (% signal RMS over the brain at 1; 0 = none); ``None``
    means 1.0 for the fmriprep layout, whose confounds table holds the motion traces, and 0.0
    otherwise. ``drift`` scales the slow cosine drift of each run (1 = as before; real scanner
    drift is far larger). ``motion=0``, ``drift=1`` and ``shared=0`` give the BOLD data of
    earlier versions. :meth:`replace` resolves a defaulted ``motion`` again for a new ``layout``.

    ``shared`` is the response to the movie that every person shares (see the module docstring),
    as its standard deviation in % signal change at the auditory peak of a typical person's map
    (the units of ``amplitude`` and ``noise``; 0 = none). Real data: during naturalistic listening
    the auditory cortex's inter-subject correlation (ISC) is high, roughly 0.3-0.6 (Hasson et al.
    2004; Lerner et al. 2011; the region-averaged, leave-one-out ISC in early auditory cortex of
    the Narratives stories, Nastase et al. 2021), lower in language and default-mode areas and
    near 0 where nothing follows the stimulus. The default 0.8 assumes a typical listener:
    measured on default cohorts (4 people, 7.2 mm, noise 1, high-pass 1/128 Hz) it gives a
    region-averaged leave-one-out ISC of about 0.55 over the auditory blobs (a voxel's pairwise
    ISC about 0.15-0.2 there), about 0.3 on the network and about 0.05 elsewhere (from the
    emotion responses, which the movie's timeline also shares); with ``shared=0`` the auditory
    value is about 0.13. ``shared_emotion`` (0-1, default 0: the soundtrack ignores the
    emotions) is the share of the shared response's variance that follows the emotion
    regressors, so a model can learn the emotions from the shared response alone, with no
    person's own patterns; it needs ``shared`` > 0 and has no effect at ``signal=0``.
    """

    n_subjects: int = 4
    grid_mm: float = 7.2
    seed: int = 0
    signal: float = 1.0
    noise: float = 1.0
    amplitude: float = 2.0
    atypical: tuple[str, ...] | None = None
    atypical_weight: float = 0.85
    variability: float = 1.0
    layout: str = "derivative"
    motion: float | None = None
    drift: float = 1.0
    shared: float = 0.8
    shared_emotion: float = 0.0
    _motion_defaulted: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def check(ok: bool, option: str, allowed: str, given: object) -> None:
            if not ok:
                raise ConfigError(f"'{option}' must be {allowed}; {given!r} was given")

        n = self.n_subjects
        check(isinstance(n, int) and 1 <= n <= 99, "n_subjects", "an integer in 1..99", n)
        check(1.0 <= self.grid_mm <= 20.0, "grid_mm", "between 1.0 and 20.0 (mm)", self.grid_mm)
        check(isinstance(self.seed, int) and self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(0.0 <= self.signal <= 100.0, "signal", "between 0 and 100 (0 = none)", self.signal)
        check(0.0 <= self.noise <= 100.0, "noise", "between 0 and 100", self.noise)
        check(0.0 < self.amplitude <= 20.0, "amplitude", "in (0, 20] (% signal)", self.amplitude)
        w = self.atypical_weight
        check(0.0 <= w <= 1.0, "atypical_weight", "between 0 and 1", w)
        v = self.variability
        check(0.0 <= v <= 5.0, "variability", "between 0 and 5 (1 = default spread)", v)
        check_choice("layout", self.layout, LAYOUTS)
        m = self.motion
        if m is None:
            m = 1.0 if self.layout == "fmriprep" else 0.0
            object.__setattr__(self, "motion", m)
            object.__setattr__(self, "_motion_defaulted", True)
        check(0.0 <= m <= 100.0, "motion", "between 0 and 100 (% signal; 0 = none)", m)
        d = self.drift
        check(0.0 <= d <= 100.0, "drift", "between 0 and 100 (1 = default drift)", d)
        c = self.shared
        check(0.0 <= c <= 100.0, "shared", "between 0 and 100 (% signal SD; 0 = none)", c)
        f = self.shared_emotion
        check(0.0 <= f <= 1.0, "shared_emotion", "between 0 and 1 (a share of variance)", f)
        if f > 0 and c == 0:
            raise ConfigError(
                f"'shared_emotion' {f!r} has no effect with 'shared' 0 (no shared response); "
                "set 'shared' (--shared) above 0 or leave 'shared_emotion' at 0"
            )
        if self.atypical is not None:
            object.__setattr__(self, "atypical", tuple(str(s) for s in self.atypical))
            allowed = {f"{i:02d}" for i in range(1, n + 1)}
            bad = [s for s in self.atypical if s not in allowed]
            check(not bad, "atypical", f"a list of subjects 01..{n:02d}", bad)

    @classmethod
    def full_size(cls, **overrides: Any) -> SynthConfig:
        """The real study's size: 20 people on the 132 x 175 x 48 grid (1.2 mm)."""
        return cls(**{"n_subjects": 20, "grid_mm": 1.2, **overrides})

    def replace(self, **changes: Any) -> SynthConfig:
        """A copy with some options changed (validated again); a ``motion`` that was not given
        is resolved again (so ``replace(layout="fmriprep")`` gets the fmriprep default)."""
        if self._motion_defaulted and "motion" not in changes:
            changes["motion"] = None
        return replace(self, **changes)

    @property
    def subjects(self) -> list[str]:
        return [f"{i:02d}" for i in range(1, self.n_subjects + 1)]

    @property
    def atypical_subjects(self) -> list[str]:
        if self.atypical is not None:
            return list(self.atypical)
        if self.n_subjects == 1:
            return []
        return ["18"] if self.n_subjects >= 18 else [self.subjects[-1]]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; ``atypical`` resolved to the subjects it means, ``motion`` to its
        value."""
        d = asdict(self) | {"atypical": self.atypical_subjects}
        del d["_motion_defaulted"]
        return d


def grid_for(grid_mm: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and RAS affine (voxel centres, MNI mm) of the field of view at ``grid_mm``."""
    shape = tuple(max(2, round(e / grid_mm)) for e in FOV_EXTENT_MM)
    affine = np.diag([grid_mm, grid_mm, grid_mm, 1.0])
    affine[:3, 3] = np.asarray(FOV_LOW_MM) + grid_mm / 2
    return shape, affine  # type: ignore[return-value]


def _rng(cfg: SynthConfig, subject: int, run: int) -> np.random.Generator:
    """Stream for (seed, subject, run); subject 0 is the cohort, run 0 the person's patterns."""
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, subject, run, _FORMAT]))


# -- anatomy and patterns ------------------------------------------------------------------------
def _template(shape, affine) -> tuple[np.ndarray, np.ndarray]:
    """BOLD-like baseline (about 500-1,100 in the brain, < 100 outside) and the brain mask."""
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


def _pattern(world: np.ndarray, mask: np.ndarray, centres: np.ndarray) -> np.ndarray:
    out = np.zeros(world.shape[:3], np.float32)
    for c in centres:
        out += np.exp(-((world - c.astype(np.float32)) ** 2).sum(-1) / (2 * _SIGMA_MM**2))
    out *= mask
    return out / max(float(out.max()), 1e-6)


def _subject_patterns(cfg, world, mask, si: int, atypical: bool):
    """One person's patterns and how they were made (shift in mm, gain)."""
    rng = _rng(cfg, si, 0)
    pats, info = {}, {}
    for e in EMOTIONS:
        shift = rng.normal(0.0, _SHIFT_SD_MM[e], 3) * cfg.variability
        gain = float(np.exp(rng.normal(0.0, _GAIN_SD[e]) * cfg.variability))
        pats[e] = gain * _pattern(world, mask, np.asarray(_CENTRES[e]) + shift)
        info[e] = {"shift_mm": np.round(shift, 2).tolist(), "gain": round(gain, 3)}
    if atypical:
        w = cfg.atypical_weight
        pats["LOVE"] = w * pats["SADNESS"] + (1 - w) * pats["LOVE"]
    return pats, info


def _shared_map(world, mask, shift: np.ndarray) -> np.ndarray:
    """The shared response's map (peak 1): the auditory cortex plus the weaker network."""
    core = _pattern(world, mask, np.asarray(_AUDITORY_CENTRES, float) + shift)
    network = _pattern(world, mask, np.asarray(_NETWORK_CENTRES, float) + shift)
    out = np.maximum(core, _NETWORK_WEIGHT * network)  # the network never adds to the core
    return out / max(float(out.max()), 1e-6)


def _subject_shared_map(cfg, world, mask, si: int) -> tuple[np.ndarray, dict[str, Any]]:
    """One person's map of the shared response (shifted, times a gain) and how it was made; from
    its own stream, so the emotion patterns and the noise are those of ``shared=0``."""
    rng = _rng(cfg, si, _SHARED_MAP_STREAM)
    shift = rng.normal(0.0, _SHARED_SHIFT_SD_MM, 3) * cfg.variability
    gain = float(np.exp(rng.normal(0.0, _SHARED_GAIN_SD) * cfg.variability))
    info = {"shift_mm": np.round(shift, 2).tolist(), "gain": round(gain, 3)}
    return (gain * _shared_map(world, mask, shift)).astype(np.float32), info


# -- timeline ------------------------------------------------------------------------------------
def _volume_times() -> np.ndarray:
    """Movie time (s) of every volume, the runs one after another (the overlaps repeat times)."""
    return np.concatenate(
        [s + TR_S * np.arange(n) for s, n in zip(RUN_STARTS_S, RUN_N_VOLUMES, strict=True)]
    )


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / max(float(x.std()), 1e-12)


def _shared_envelope(cfg: SynthConfig, regressors: np.ndarray) -> dict[str, np.ndarray]:
    """The shared response's time course at every volume (movie time, so the same in everyone
    and at the run overlaps): ``envelope`` (mean 0, sd 1), its ``sound`` part and the emotion
    ``mix`` (both mean 0, sd 1).

    The soundtrack's loudness is smoothed Gaussian noise on two time scales
    (``_SOUND_SCALES_S``), drawn from the cohort's own stream (seed only: neither the person nor
    any other option), convolved with nilearn's Glover HRF. With ``shared_emotion`` f > 0 (and
    ``signal`` > 0) the envelope is ``sqrt(1 - f) * sound + sqrt(f) * mix``, rescaled to sd 1,
    where ``mix`` weights the emotion regressors by ``_SOUND_BY_EMOTION``: about f of its
    variance then follows the emotions.
    """
    from nilearn.glm.first_level import glover_hrf

    rng = _rng(cfg, 0, _SHARED_STREAM)
    fine = np.arange(0.0, _MOVIE_END_S + TR_S, _SOUND_DT_S)
    loudness = sum(
        _unit(gaussian_filter1d(rng.standard_normal(fine.size), scale / _SOUND_DT_S))
        for scale in _SOUND_SCALES_S
    )
    hrf = glover_hrf(TR_S, oversampling=round(TR_S / _SOUND_DT_S))  # sampled every 0.5 s
    response = np.convolve(np.asarray(loudness), hrf)[: fine.size]
    sound = _unit(np.interp(_volume_times(), fine, response))
    weights = np.array([_SOUND_BY_EMOTION[e] for e in EMOTIONS])
    mix = _unit(weights @ regressors.astype(np.float64))
    f = cfg.shared_emotion if cfg.signal > 0 else 0.0  # signal 0: no emotion anywhere
    envelope = sound if f == 0 else _unit(np.sqrt(1 - f) * sound + np.sqrt(f) * mix)
    return {"envelope": envelope, "sound": sound, "mix": mix}


def _episodes(rng: np.random.Generator) -> pd.DataFrame:
    """Non-overlapping episodes; each class gets about its real share of the movie."""
    labels, durations = [], []
    for e in EMOTIONS:
        total, quota = 0.0, _REAL_COUNTS[e] * TR_S
        while total < quota:
            d = float(np.clip(rng.lognormal(np.log(10.0), 0.5), 4.0, 40.0))
            labels.append(e)
            durations.append(round(d, 1))
            total += d
    order = rng.permutation(len(labels))
    dur = np.asarray(durations)[order]
    free = _MOVIE_END_S - 30.0 - dur.sum() - 4.0 * len(dur)
    gaps = 4.0 + free * rng.dirichlet(np.ones(len(dur) + 1))[:-1]
    onsets = 10.0 + np.cumsum(gaps) + np.concatenate([[0.0], np.cumsum(dur)[:-1]])
    return pd.DataFrame(
        {"onset": np.round(onsets, 1), "duration": dur, "emotion": np.asarray(labels)[order]}
    )


def _regressors(episodes: pd.DataFrame) -> np.ndarray:
    """(emotion, volume) HRF-convolved time courses at each volume's acquisition time."""
    from nilearn.glm.first_level import compute_regressor

    times = _volume_times()
    grid = np.arange(0.0, _MOVIE_END_S + TR_S, TR_S)  # the runs' times all lie on this grid

    def convolve(onset, duration) -> np.ndarray:
        cond = np.vstack([onset, duration, np.ones(len(onset))])
        return compute_regressor(cond, "glover", grid, oversampling=10)[0][:, 0]

    plateau = float(convolve([100.0], [60.0]).max())
    out = np.zeros((len(EMOTIONS), len(times)), np.float32)
    for i, e in enumerate(EMOTIONS):
        ep = episodes[episodes.emotion == e]
        if len(ep):
            out[i] = np.interp(times, grid, convolve(ep.onset, ep.duration) / plateau)
    return out


# -- annotations ---------------------------------------------------------------------------------
def _observer(rng: np.random.Generator, episodes: pd.DataFrame, audio_only: bool) -> pd.DataFrame:
    """One observer's raw CSV table: jittered episodes, emotion-less rows and false alarms."""
    rows = []

    def row(start, end, char, emotion, word, cue="FACE"):
        neg = emotion in ("FEAR", "SADNESS", "ANGER")
        high = emotion in ("FEAR", "ANGER") or rng.random() < 0.3
        off = str(rng.choice(["EMOFADED", "SCENEEND", "EMOCHANGE", "CHARLEFT"]))
        direction = "SELF" if rng.random() < 0.6 else "OTHER"
        row_ = (start, end, char, "HIGH" if high else "LOW", "NEG" if neg else "POS", direction)
        rows.append((*row_, word, cue, off))

    for ep in episodes.itertuples():
        if rng.random() > (0.8 if audio_only else 0.9):
            continue
        words = [w for w, c in CATEGORY_MAP.items() if c == ep.emotion and w != _MAIN_WORD[c]]
        for k in range(1 + rng.poisson(1.5)):
            start = max(0.0, ep.onset + rng.normal(0, 1.5))
            end = max(start + 1, ep.onset + ep.duration + rng.normal(0, 2.0))
            word = _MAIN_WORD[ep.emotion] if rng.random() < 0.75 else str(rng.choice(words))
            char = "FORREST" if k == 0 and rng.random() < 0.6 else str(rng.choice(_CHARACTERS))
            cue = str(rng.choice(["FACE", "VERBAL", "AUDIO", "NARRATOR", "FACE VERBAL", "CONTEXT"]))
            row(start, end, char, ep.emotion, word, cue)
    for _ in range(int(len(episodes) * 0.8)):  # no emotion word, mostly minor characters
        start = float(rng.uniform(0, _MOVIE_END_S - 20))
        char = str(rng.choice(_CHARACTERS[2:]))
        row(start, start + float(rng.uniform(2, 15)), char, str(rng.choice(EMOTIONS)), "", "VERBAL")
    for _ in range(int(len(episodes) * 0.1)):  # false alarms
        start, e = float(rng.uniform(0, _MOVIE_END_S - 20)), str(rng.choice(EMOTIONS))
        row(start, start + float(rng.uniform(2, 10)), "FORREST", e, _MAIN_WORD[e])
    df = pd.DataFrame(rows, columns=list(OBSERVER_COLUMNS)).sort_values("start", kind="stable")
    digits = 1 if audio_only else 0  # the AV observers wrote whole seconds
    df["start"] = df["start"].round(digits)
    df["end"] = np.maximum(df["end"].round(digits), df["start"] + 10.0**-digits)
    return df.reset_index(drop=True)


def _scenes(rng: np.random.Generator) -> pd.DataFrame:
    starts, t = [], 17.0
    while t < _MOVIE_END_S - 5:
        starts.append(round(t, 2))
        t += float(rng.gamma(2.0, 17.0)) + 3.0
    n = len(starts)
    return pd.DataFrame(
        {
            "start": starts,
            "location": rng.choice(_LOCATIONS, n),
            "daytime": rng.choice(["DAY", "NIGHT"], n, p=[0.75, 0.25]),
            "setting": rng.choice(["INT", "EXT"], n),
        }
    )


# -- BOLD ----------------------------------------------------------------------------------------
def _save(data: np.ndarray, affine: np.ndarray, path: Path, *, tr: float | None = None) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        img.header.set_zooms((*img.header.get_zooms()[:3], tr))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)  # nibabel gzips at level 1


def _run_bold(
    rng,
    cfg,
    baseline,
    patterns: np.ndarray,
    regressors: np.ndarray,
    motion: tuple[np.ndarray, np.ndarray] | None = None,
    shared: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """One run as int16 (x, y, z, t); ``patterns`` is (emotion, x, y, z), ``regressors`` (e, t).

    ``motion`` is ``(maps, traces)`` from :func:`_motion_maps` and :func:`_motion_traces`, added
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
    state, block = None, int(np.clip(_BLOCK_VALUES // baseline.size, 8, 64))
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


# -- head motion and confounds -------------------------------------------------------------------
def _motion_traces(rng: np.random.Generator, n: int) -> np.ndarray:
    """(6, n) head-motion parameters of one run in fMRIPrep's order and units (trans_x/y/z in
    mm, rot_x/y/z in rad): a smoothed random walk (slow drift of the head) plus smoothed jitter,
    each half the variance, zero mean, sd ``_MOTION_SD``."""

    def unit(a: np.ndarray) -> np.ndarray:
        a = a - a.mean(axis=1, keepdims=True)
        return a / np.maximum(a.std(axis=1, keepdims=True), 1e-12)

    walk = np.cumsum(gaussian_filter1d(rng.standard_normal((6, n)), 3.0, axis=1), axis=1)
    jitter = gaussian_filter1d(rng.standard_normal((6, n)), 2.5, axis=1)
    return unit(unit(walk) + unit(jitter)) * _MOTION_SD[:, None]


def _motion_maps(baseline, mask: np.ndarray, world: np.ndarray, grid_mm: float) -> np.ndarray:
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


def _confound_regions(baseline: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
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
    block = max(1, _BLOCK_VALUES // (4 * n))
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


# -- writing -------------------------------------------------------------------------------------
def generate_cohort(
    out_dir: str | Path,
    config: SynthConfig | None = None,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic cohort to ``out_dir`` (see the module docstring) and return its path.

    If ``out_dir`` already holds a cohort made with the same config, it is returned untouched.
    A cohort with another config raises :class:`DataError` unless ``overwrite`` is set; a folder
    with other files always does (it is never deleted).
    The cohort is written to a hidden sibling folder and renamed into place when complete, so a
    killed run leaves no half cohort and ``overwrite`` keeps the old one until then.
    ``progress(fraction, message)`` is called after each step.
    """
    cfg = config or SynthConfig()
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        try:
            old = json.loads((out / "ground_truth" / "cohort.json").read_text())
            config = old.get("config")  # older cohorts lack the options added since
            same = (
                old.get("format") == _FORMAT
                and isinstance(config, dict)
                and {**_ADDED_OPTIONS, **config} == cfg.to_dict()
            )
        except (OSError, AttributeError, json.JSONDecodeError):
            old, same = None, False
        if same:
            logger.info("%s already holds a cohort with this config; nothing to do", out)
            return out
        if old is None or not overwrite:  # never delete a folder that is not a cohort
            what = "a cohort made with another config" if old else "other files"
            fix = "pass --overwrite (overwrite=True) to replace it, or " if old else ""
            error = OtherCohortError if old else DataError
            raise error(f"{out} already holds {what}; {fix}choose another --out folder")
        foreign = _not_written_by_synth(out)
        if foreign:  # a cache or an fMRIPrep run kept in the cohort would go with it
            raise DataError(
                f"{out} also holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}, "
                "which the generator did not write; --overwrite replaces the whole folder and "
                "would delete them. Move them out first, or choose another --out folder"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    work.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would become the cohort's mode
    try:
        _write(work, cfg, progress)
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        if out.exists():  # swap in the complete new cohort, then delete the old one
            out.rename(trash / "old")
        work.rename(out)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info(
        "wrote a synthetic cohort of %d people to %s (%s layout)", cfg.n_subjects, out, cfg.layout
    )
    return out


#: What a cohort holds at its top (besides sub-XX folders), and below derivatives/.
_COHORT_ENTRIES = frozenset({"annotations", "ground_truth", "dataset_description.json", "README"})


def _not_written_by_synth(out: Path) -> list[str]:
    """Entries of the cohort folder ``out`` that the generator does not write (hidden ones
    aside): what an --overwrite would delete along with the cohort."""
    derivative_top, _, derivative_name = DERIVATIVE_DIR.partition("/")
    found = []
    for p in sorted(out.iterdir()):
        if p.name.startswith(".") or p.name in _COHORT_ENTRIES or p.name.startswith("sub-"):
            continue
        if p.name == derivative_top and p.is_dir():
            found += [
                f"{p.name}/{q.name}"
                for q in sorted(p.iterdir())
                if q.name != derivative_name and not q.name.startswith(".")
            ]
            continue
        found.append(p.name)
    return found


def _bold_template(layout: str) -> str:
    """Path of each run's BOLD file (the one to read) below the root, with {s} and {run:02d}."""
    if layout == "derivative":
        return bold_filename("{s}", 0).replace("run-00", "run-{run:02d}")
    if layout == "raw":
        return _FUNC_DIR + "_acq-dico_run-{run:02d}_bold.nii.gz"
    return _FUNC_DIR + f"_run-{{run:02d}}_space-{_SPACE}_desc-preproc_bold.nii.gz"


def _sidecar(path: Path, **extra: Any) -> None:
    meta = {"RepetitionTime": TR_S, "TaskName": "forrestgump", **extra}
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(meta, indent=1))


def _write_run(root: Path, cfg: SynthConfig, subject: str, run: int, data, affine, extra) -> None:
    """Save one run in ``cfg.layout``; ``extra`` is ``(mask, regions, traces)`` (fmriprep)."""
    path = root / _bold_template(cfg.layout).format(s=subject, run=run)
    _save(data, affine, path, tr=TR_S)
    if cfg.layout == "raw":
        _sidecar(path)
        # The uncorrected acquisition: the same data one voxel further along y (the phase-encoding
        # axis, along which distortion correction moves voxels); the edge row is repeated.
        moved = np.concatenate([data[:, :1], data[:, :-1]], axis=1)
        raw = path.with_name(path.name.replace("_acq-dico_", "_acq-raw_"))
        _save(moved, affine, raw, tr=TR_S)
        _sidecar(raw)
    elif cfg.layout == "fmriprep":
        mask, regions, traces = extra
        _sidecar(path, SkullStripped=False)
        stem = path.name.split(f"_space-{_SPACE}")[0]
        brain = path.with_name(f"{stem}_space-{_SPACE}_desc-brain_mask.nii.gz")
        _save(mask.astype(np.uint8), affine, brain)
        table = _confounds(data, mask, regions, traces)
        tsv = path.with_name(f"{stem}_desc-confounds_timeseries.tsv")
        table.to_csv(tsv, sep="\t", index=False, na_rep="n/a", float_format="%.8g")
        docs = {c: {"Description": _CONFOUND_DOCS[c]} for c in table.columns if c in _CONFOUND_DOCS}
        tsv.with_suffix(".json").write_text(json.dumps(docs, indent=1))


def _write(root: Path, cfg: SynthConfig, progress: Progress | None) -> None:  # noqa: PLR0915
    total = 1 + cfg.n_subjects * len(RUN_N_VOLUMES)
    shape, affine = grid_for(cfg.grid_mm)
    baseline, mask = _template(shape, affine)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = (ijk @ affine[:3, :3].T + affine[:3, 3]).astype(np.float32)  # MNI mm of each voxel
    # motion is resolved (never None) once the config exists, and at least 0
    maps = _motion_maps(baseline, mask, world, cfg.grid_mm) if cfg.motion else None
    regions = _confound_regions(baseline, mask)
    rng = _rng(cfg, 0, 0)
    episodes = _episodes(rng)
    regressors = _regressors(episodes)
    timeline = _shared_envelope(cfg, regressors) if cfg.shared > 0 else None
    raw = root / "annotations" / "raw"
    raw.mkdir(parents=True)
    observers = [f"av1o{i:02d}" for i in range(1, 10)] + [f"ao1o{i:02d}" for i in range(1, 4)]
    for name in observers:
        table = _observer(rng, episodes, audio_only=name.startswith("ao"))
        table.to_csv(raw / f"{name}.csv", index=False)
    _scenes(rng).to_csv(root / "annotations" / "movie_scenes.csv", index=False, header=False)
    gt = root / "ground_truth"
    for e in EMOTIONS:
        cohort_pattern = _pattern(world, mask, np.asarray(_CENTRES[e], float))
        _save(cohort_pattern, affine, gt / "patterns" / f"{e}.nii.gz")
    _save(mask.astype(np.uint8), affine, gt / "brain_mask.nii.gz")
    episodes.to_csv(gt / "episodes.tsv", sep="\t", index=False)
    bounds = np.cumsum([0, *RUN_N_VOLUMES])
    if timeline is not None:
        _save(_shared_map(world, mask, np.zeros(3)), affine, gt / "shared" / "map.nii.gz")
        run = np.repeat(np.arange(1, len(RUN_N_VOLUMES) + 1), RUN_N_VOLUMES)
        volume = np.arange(bounds[-1]) - bounds[:-1][run - 1]
        table = {"run": run, "volume": volume, "movie_time_s": _volume_times()}
        table |= {k: np.round(v, 6) for k, v in timeline.items()}
        pd.DataFrame(table).to_csv(gt / "shared" / "envelope.tsv", sep="\t", index=False)
    if progress is not None:
        progress(1 / total, "annotations and ground truth")
    people, jobs, done = {}, [], 1
    with ThreadPoolExecutor(max_workers=1) as pool:  # gzip one run while the next is computed
        for si, subject in enumerate(cfg.subjects, start=1):
            atypical = subject in cfg.atypical_subjects
            pats, info = _subject_patterns(cfg, world, mask, si, atypical)
            for e, p in pats.items():
                _save(p, affine, gt / "patterns" / f"sub-{subject}_{e}.nii.gz")
            people[subject] = {"atypical": atypical, "patterns": info}
            smap = None
            if timeline is not None:
                smap, people[subject]["shared"] = _subject_shared_map(cfg, world, mask, si)
                _save(smap, affine, gt / "shared" / f"sub-{subject}_map.nii.gz")
            stack = np.stack([pats[e] for e in EMOTIONS])
            for k in range(len(RUN_N_VOLUMES)):
                regs = regressors[:, bounds[k] : bounds[k + 1]]
                # Own stream, so the motion traces change nothing else (motion=0: as before).
                traces = _motion_traces(_rng(cfg, si, 101 + k), regs.shape[1])
                motion = None if maps is None else (maps, traces)
                shared = None
                if timeline is not None and smap is not None:
                    shared = (smap, timeline["envelope"][bounds[k] : bounds[k + 1]])
                rng = _rng(cfg, si, k + 1)
                data = _run_bold(rng, cfg, baseline, stack, regs, motion, shared)
                extra = (mask, regions, traces)
                name = _bold_template(cfg.layout).format(s=subject, run=k + 1).split("/")[-1]
                job = pool.submit(_write_run, root, cfg, subject, k + 1, data, affine, extra)
                jobs.append((job, name))
                del data  # two runs in memory: one being written (raw: and its acq-raw copy),
                # one computed
                last = si == cfg.n_subjects and k == len(RUN_N_VOLUMES) - 1
                while len(jobs) > (0 if last else 1):
                    future, name = jobs.pop(0)
                    future.result()
                    done += 1
                    if progress is not None:
                        progress(done / total, name)
    meta = {
        "format": _FORMAT,
        "generated_by": f"emocore {__version__}",
        "config": cfg.to_dict(),
        "grid": {"shape": list(shape), "affine": affine.tolist(), "fov_low_mm": FOV_LOW_MM},
        "units": "patterns peak at 1 (times gain); bold % change = signal * amplitude * pattern"
        " + shared * shared map * envelope",
        "shared_response": _shared_meta(cfg, timeline),
        "atypical": cfg.atypical_subjects,
        "subjects": people,
        "n_episodes": len(episodes),
        "layout": cfg.layout,
        "bold_file": _bold_template(cfg.layout),
    }
    description = {
        "Name": "emocore synthetic studyforrest-like cohort (no real person)",
        "BIDSVersion": "1.8.0",
        "DatasetType": "raw",
        "emocore_synthetic_config": cfg.to_dict(),
        "GeneratedBy": [{"Name": "emocore", "Version": __version__, "Description": "synthetic"}],
    }
    where = "OpenNeuro\nds000113 (studyforrest)"
    if cfg.layout == "fmriprep":
        description["Name"] = "emocore synthetic studyforrest-like cohort, fMRIPrep layout"
        description["DatasetType"] = "derivative"
        description["GeneratedBy"][0]["Description"] = (  # type: ignore[index]
            "synthetic; named and shaped like fMRIPrep's outputs, not made by fMRIPrep"
        )
        where = "an fMRIPrep\nderivative of ds000113 (studyforrest)"
    (root / "dataset_description.json").write_text(json.dumps(description, indent=1))
    (root / "README").write_text(
        f"Synthetic fMRI cohort written by emocore (`emocore synth`) in the layout of {where}. "
        "No real person was scanned. The true emotion episodes and\n"
        "patterns are in ground_truth/; the observer annotations in annotations/.\n"
    )
    (gt / "cohort.json").write_text(json.dumps(meta, indent=1))  # written last


def _shared_meta(cfg: SynthConfig, timeline: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """What cohort.json says about the shared response (its files, its make-up)."""
    if timeline is None:
        return {"strength_pct": 0.0, "note": "no shared response (shared = 0)"}
    return {
        "strength_pct": cfg.shared,
        "emotion_share": cfg.shared_emotion if cfg.signal > 0 else 0.0,
        "map": "ground_truth/shared/map.nii.gz (each person's: sub-XX_map.nii.gz)",
        "envelope": "ground_truth/shared/envelope.tsv (column envelope: mean 0, sd 1)",
        "auditory_centres_mm": [list(c) for c in _AUDITORY_CENTRES],
        "network_centres_mm": [list(c) for c in _NETWORK_CENTRES],
        "network_weight": _NETWORK_WEIGHT,
        "sound_by_emotion": _SOUND_BY_EMOTION,
        "envelope_vs_emotion_mix_r": round(
            float(np.corrcoef(timeline["envelope"], timeline["mix"])[0, 1]), 3
        ),
    }


def planted_subjects(root: str | Path) -> list[str] | None:
    """The people planted as atypical in the synthetic cohort at ``root`` (``[]`` when none was),
    or None when ``root`` is not a synthetic cohort (no readable ``ground_truth/cohort.json``)."""
    try:
        info = json.loads((Path(root) / "ground_truth" / "cohort.json").read_text())
    except (OSError, ValueError):
        return None
    planted = info.get("atypical", info.get("config", {}).get("atypical"))
    return [str(s) for s in planted] if isinstance(planted, list) else None
