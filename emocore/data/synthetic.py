"""A synthetic studyforrest-like cohort that the real reading code consumes unchanged.

What is written below ``out``::

    dataset_description.json, README
    derivatives/non-linear_anatomical_alignment/sub-XX/ses-forrestgump/func/
        sub-XX_ses-forrestgump_task-forrestgump_rec-dico7Tad2grpbold7TadNL_run-0N_bold.nii.gz
    annotations/raw/av1o01..09.csv, ao1o01..03.csv   raw observer format (Labs et al. 2015)
    annotations/movie_scenes.csv                      start, location, DAY|NIGHT, INT|EXT
    ground_truth/patterns/<EMOTION>.nii.gz            cohort pattern of each emotion
    ground_truth/patterns/sub-XX_<EMOTION>.nii.gz     each person's actual pattern
    ground_truth/episodes.tsv, brain_mask.nii.gz, cohort.json

Signal model, per person and volume (acquired at movie time ``start_k + 2 i``)::

    bold = baseline * (1 + 0.01 * (signal * amp * sum_e pattern_e * hrf_e(t) + noise(t)))

* baseline: nilearn's MNI152 template (no download), resampled to the grid.
* pattern_e: Gaussian blobs at plausible MNI coordinates per emotion, shifted and scaled per
  person (fear most consistent, love most variable); the atypical person's LOVE pattern is mostly
  their SADNESS pattern.
* hrf_e: the true emotion episodes (boxcars) convolved with nilearn's Glover HRF.
* noise: spatially smoothed AR(1) noise, a global fluctuation shared by all voxels, slow drift
  per run (low-order cosines) and a per-run offset. ``signal=0`` leaves only these.

Synthetic observers annotate the true episodes with jittered boundaries, several rows per
episode (different characters), rows without emotion and false alarms, so that the prototype's
label recipe loses about as much as it does on the real annotations.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.signal import lfilter

from emocore import __version__
from emocore.constants import (
    CATEGORY_MAP,
    EMOTIONS,
    RUN_N_VOLUMES,
    RUN_STARTS_S,
    TR_S,
    bold_filename,
)
from emocore.errors import ConfigError, DataError

__all__ = ["SynthConfig", "generate_cohort", "grid_for", "FOV_MM"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]

#: Field of view in MNI mm (low corner, extent): the brain in x and y, a slab in z covering the
#: amygdala, insula, superior temporal gyrus, orbitofrontal cortex and temporal poles. At 1.2 mm
#: it is exactly the 132 x 175 x 48 grid of the studyforrest derivative.
FOV_MM = {"low": (-79.2, -122.0, -34.0), "extent": (158.4, 210.0, 57.6)}

# Blob centres (MNI mm) per emotion; distinct regions, all inside the slab.
_CENTRES: dict[str, list[tuple[float, float, float]]] = {
    "FEAR": [(-22, -4, -18), (22, -4, -18), (-34, 18, 2)],
    "HAPPINESS": [(0, 50, -8), (-12, 12, -8), (12, 12, -8)],
    "SADNESS": [(0, 24, -14), (-44, 12, -28), (44, 12, -28)],
    "LOVE": [(0, 44, 14), (-36, -58, -16), (36, -58, -16)],
    "ANGER": [(-52, -24, 6), (52, -24, 6), (40, 34, -12)],
}
_SHIFT_SD_MM = {"FEAR": 1.0, "HAPPINESS": 3.0, "SADNESS": 3.0, "ANGER": 3.0, "LOVE": 9.0}
_GAIN_SD = {"FEAR": 0.08, "HAPPINESS": 0.2, "SADNESS": 0.2, "ANGER": 0.2, "LOVE": 0.45}
# Share of the 3,599 volumes labelled with each emotion in the real data (poster recipe, lag 0).
_CLASS_FRACTION = {"HAPPINESS": 218, "FEAR": 170, "SADNESS": 243, "LOVE": 105, "ANGER": 80}
_MAIN_WORD = {
    "HAPPINESS": "HAPPINESS",
    "FEAR": "FEAR",
    "SADNESS": "SADNESS",
    "LOVE": "LOVE",
    "ANGER": "ANGERRAGE",
}
_CHARACTERS = ["FORREST", "FORRESTVO", "JENNY", "DAN", "BUBBA", "MRSGUMP", "MAN", "CROWD"]
_LOCATIONS = [
    "SAVANNAH BUS STOP",
    "GREENBOW HOUSE",
    "SCHOOL BUS",
    "COLLEGE STADIUM",
    "VIETNAM JUNGLE",
    "HOSPITAL",
    "WASHINGTON MALL",
    "SHRIMP BOAT",
    "BAYOU LA BATRE",
    "JENNY'S APARTMENT",
    "ROAD ACROSS AMERICA",
    "CHURCH",
    "PING PONG HALL",
    "GREENBOW PORCH",
]
_MOVIE_END_S = RUN_STARTS_S[-1] + 2 * RUN_N_VOLUMES[-1]


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """Options of the generator; saved in ``ground_truth/cohort.json``."""

    n_subjects: int = 4
    grid_mm: float = 7.2
    seed: int = 0
    signal: float = 1.0
    noise: float = 1.0
    amplitude: float = 2.0  # % signal change of a pattern's peak at signal=1
    atypical: tuple[str, ...] | None = (
        None  # default: the last subject, or 18 in a 20-person cohort
    )

    def __post_init__(self) -> None:
        checks = [
            (
                1 <= self.n_subjects <= 99,
                f"n_subjects must be between 1 and 99; {self.n_subjects} was given",
            ),
            (
                1.0 <= self.grid_mm <= 20.0,
                f"grid_mm must be between 1 and 20 mm; {self.grid_mm} was given",
            ),
            (
                self.signal >= 0,
                f"signal must be >= 0 (0 = no emotion signal); {self.signal} was given",
            ),
            (self.noise >= 0, f"noise must be >= 0; {self.noise} was given"),
            (self.amplitude > 0, f"amplitude must be > 0; {self.amplitude} was given"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        if self.atypical is not None:
            bad = [s for s in self.atypical if not (s.isdigit() and 1 <= int(s) <= self.n_subjects)]
            if bad:
                raise ConfigError(
                    f"atypical must name subjects 01..{self.n_subjects:02d}; {bad} was given"
                )

    @classmethod
    def full_size(cls, **overrides: Any) -> SynthConfig:
        """The real study's size: 20 people on the 132 x 175 x 48 grid (1.2 mm)."""
        return cls(**{"n_subjects": 20, "grid_mm": 1.2, **overrides})

    def replace(self, **changes: Any) -> SynthConfig:
        return replace(self, **changes)

    @property
    def subjects(self) -> list[str]:
        return [f"{i:02d}" for i in range(1, self.n_subjects + 1)]

    @property
    def atypical_subjects(self) -> list[str]:
        if self.atypical is not None:
            return list(self.atypical)
        return (
            ["18"] if self.n_subjects >= 18 else [self.subjects[-1]] if self.n_subjects > 1 else []
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["atypical"] = self.atypical_subjects
        return d


def grid_for(grid_mm: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and RAS affine of the synthetic field of view at ``grid_mm``."""
    shape = tuple(max(4, int(round(e / grid_mm))) for e in FOV_MM["extent"])
    affine = np.diag([grid_mm, grid_mm, grid_mm, 1.0])
    affine[:3, 3] = np.asarray(FOV_MM["low"]) + grid_mm / 2
    return shape, affine  # type: ignore[return-value]


# -- anatomy and patterns ------------------------------------------------------------------------
def _template(shape, affine) -> tuple[np.ndarray, np.ndarray]:
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template
    from nilearn.image import resample_img

    tpl = resample_img(
        load_mni152_template(resolution=2),
        target_affine=affine,
        target_shape=shape,
        interpolation="continuous",
        force_resample=True,
        copy_header=True,
    )
    msk = resample_img(
        load_mni152_brain_mask(resolution=2),
        target_affine=affine,
        target_shape=shape,
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    t = np.asarray(tpl.dataobj, dtype=np.float32)
    mask = np.asarray(msk.dataobj) > 0.5
    t = np.clip(t / max(float(np.percentile(t[mask], 99)), 1e-6), 0, 1.2)
    baseline = np.where(mask, 500.0 + 500.0 * t, 30.0 + 50.0 * t).astype(np.float32)
    return baseline, mask


def _world(shape, affine) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).reshape(
        -1, 3
    )
    return (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*shape, 3)


def _blobs(world: np.ndarray, centres, sigma_mm: float = 7.0) -> np.ndarray:
    out = np.zeros(world.shape[:3], np.float32)
    for c in centres:
        d2 = ((world - np.asarray(c, dtype=np.float32)) ** 2).sum(-1)
        out += np.exp(-d2 / (2 * sigma_mm**2)).astype(np.float32)
    return out


def _patterns(
    world, mask, rng: np.random.Generator | None, atypical: bool
) -> dict[str, np.ndarray]:
    pats = {}
    for e in EMOTIONS:
        centres = np.asarray(_CENTRES[e], dtype=float)
        gain = 1.0
        if rng is not None:
            centres = centres + rng.normal(0, _SHIFT_SD_MM[e], centres.shape)
            gain = float(np.exp(rng.normal(0, _GAIN_SD[e])))
        p = _blobs(world, centres) * mask
        pats[e] = (gain * p / max(float(p.max()), 1e-6)).astype(np.float32)
    if atypical:
        pats["LOVE"] = (0.85 * pats["SADNESS"] + 0.15 * pats["LOVE"]).astype(np.float32)
    return pats


# -- timeline ------------------------------------------------------------------------------------
def _episodes(rng: np.random.Generator) -> pd.DataFrame:
    names = list(_CLASS_FRACTION)
    p = np.asarray([_CLASS_FRACTION[n] for n in names], float)
    p /= p.sum()
    covered = sum(_CLASS_FRACTION.values()) / sum(RUN_N_VOLUMES)
    rows, t = [], float(rng.uniform(20, 60))
    while t < _MOVIE_END_S - 10:
        dur = float(np.clip(rng.lognormal(np.log(11.0), 0.5), 4, 40))
        rows.append(
            (round(t, 1), round(min(dur, _MOVIE_END_S - t), 1), names[rng.choice(len(names), p=p)])
        )
        t += dur + float(rng.exponential(dur * (1 - covered) / covered))
    return pd.DataFrame(rows, columns=["onset", "duration", "emotion"])


def _acquisition_times() -> np.ndarray:
    return np.concatenate(
        [start + TR_S * np.arange(n) for start, n in zip(RUN_STARTS_S, RUN_N_VOLUMES, strict=True)]
    )


def _regressors(episodes: pd.DataFrame) -> dict[str, np.ndarray]:
    """HRF-convolved time course of each emotion at every volume's acquisition time (peak 1)."""
    from nilearn.glm.first_level import compute_regressor

    times = _acquisition_times()
    grid = np.unique(times)
    out = {}
    for e in EMOTIONS:
        ep = episodes[episodes.emotion == e]
        if ep.empty:
            out[e] = np.zeros(len(times), np.float32)
            continue
        cond = np.vstack([ep.onset, ep.duration, np.ones(len(ep))])
        reg, _ = compute_regressor(cond, "glover", grid, oversampling=10)
        reg = reg[:, 0] / max(float(reg.max()), 1e-9)
        out[e] = np.interp(times, grid, reg).astype(np.float32)
    return out


# -- annotations ---------------------------------------------------------------------------------
def _observer_rows(
    rng: np.random.Generator, episodes: pd.DataFrame, audio_only: bool
) -> pd.DataFrame:
    rows = []
    detect = 0.8 if audio_only else 0.9
    for ep in episodes.itertuples():
        if rng.random() > detect:
            continue
        words = [w for w, c in CATEGORY_MAP.items() if c == ep.emotion]
        for k in range(1 + rng.poisson(1.5)):
            start = max(0.0, ep.onset + rng.normal(0, 1.5))
            end = max(start + 1, ep.onset + ep.duration + rng.normal(0, 2.0))
            word = _MAIN_WORD[ep.emotion] if rng.random() < 0.7 else str(rng.choice(words))
            char = "FORREST" if k == 0 and rng.random() < 0.6 else str(rng.choice(_CHARACTERS))
            neg = ep.emotion in ("FEAR", "SADNESS", "ANGER")
            rows.append(
                (
                    start,
                    end,
                    char,
                    "HIGH" if ep.emotion in ("FEAR", "ANGER") else str(rng.choice(["LOW", "HIGH"])),
                    "NEG" if neg else "POS",
                    str(rng.choice(["SELF", "OTHER"])),
                    word,
                    str(rng.choice(["FACE", "VERBAL", "AUDIO", "NARRATOR", "FACE VERBAL"])),
                    str(rng.choice(["EMOFADED", "SCENEEND", "EMOCHANGE"])),
                )
            )
    n_plain = int(
        len(episodes) * 0.8
    )  # annotations without an emotion word, mostly minor characters
    for _ in range(n_plain):
        start = float(rng.uniform(0, _MOVIE_END_S - 20))
        rows.append(
            (
                start,
                start + float(rng.uniform(2, 15)),
                str(rng.choice(_CHARACTERS[2:])),
                "LOW",
                str(rng.choice(["POS", "NEG"])),
                "OTHER",
                "",
                "VERBAL",
                "EMOFADED",
            )
        )
    for _ in range(int(len(episodes) * 0.1)):  # false alarms
        start = float(rng.uniform(0, _MOVIE_END_S - 20))
        e = str(rng.choice(list(_MAIN_WORD)))
        rows.append(
            (
                start,
                start + float(rng.uniform(2, 10)),
                "FORREST",
                "LOW",
                "POS",
                "SELF",
                _MAIN_WORD[e],
                "FACE",
                "EMOFADED",
            )
        )
    df = pd.DataFrame(
        rows,
        columns=[
            "start",
            "end",
            "character",
            "arousal",
            "valence",
            "direction",
            "emotion",
            "oncue",
            "offcue",
        ],
    )
    df = df.sort_values("start", kind="stable").reset_index(drop=True)
    if audio_only:
        df["start"], df["end"] = df["start"].round(1), df["end"].round(1)
    else:
        df["start"], df["end"] = (
            df["start"].round(0),
            np.maximum(df["end"].round(0), df["start"].round(0) + 1),
        )
    return df


def _scenes(rng: np.random.Generator) -> pd.DataFrame:
    starts, t = [], 17.0
    while t < _MOVIE_END_S - 5:
        starts.append(round(t, 2))
        t += float(rng.gamma(2.0, 17.0)) + 3
    loc = [str(rng.choice(_LOCATIONS)) for _ in starts]
    return pd.DataFrame(
        {
            "start": starts,
            "location": loc,
            "daytime": rng.choice(["DAY", "NIGHT"], len(starts), p=[0.75, 0.25]),
            "setting": rng.choice(["INT", "EXT"], len(starts)),
        }
    )


# -- writing -------------------------------------------------------------------------------------
def _save(data: np.ndarray, affine: np.ndarray, path: Path, *, tr: float | None = None) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        zooms = img.header.get_zooms()
        img.header.set_zooms((*zooms[:3], tr))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)


def _run_bold(
    rng, baseline, patterns, regressors, rows: slice, cfg: SynthConfig, smooth_vox: float
) -> np.ndarray:
    n = rows.stop - rows.start
    shape = baseline.shape
    pct = np.zeros((n, *shape), np.float32)
    if cfg.signal > 0:
        for e in EMOTIONS:
            pct += (
                (cfg.signal * cfg.amplitude)
                * regressors[e][rows, None, None, None]
                * patterns[e][None]
            )
    if cfg.noise > 0:
        white = rng.standard_normal((n, *shape), dtype=np.float32)
        if smooth_vox > 0.3:
            white = gaussian_filter(white, sigma=(0, smooth_vox, smooth_vox, smooth_vox))
            white /= max(float(white.std()), 1e-6)
        ar = lfilter([np.sqrt(1 - 0.5**2)], [1, -0.5], white, axis=0).astype(np.float32)
        t = np.arange(n) / max(n - 1, 1)
        drift = sum(rng.normal(0, 0.8) * np.cos(np.pi * k * t) for k in (1, 2, 3))
        glob = lfilter([1.0], [1, -0.8], rng.normal(0, 0.25, n))
        pct += cfg.noise * (
            1.2 * ar + (drift + glob + rng.normal(0, 0.5))[:, None, None, None].astype(np.float32)
        )
    bold = baseline[None] * (1 + 0.01 * pct)
    return np.clip(np.rint(np.moveaxis(bold, 0, -1)), -32768, 32767).astype(np.int16)


def generate_cohort(
    out_dir: str | Path,
    config: SynthConfig | None = None,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic cohort to ``out_dir`` (see the module docstring); return ``out_dir``.

    Re-running with the same config returns at once; a different config needs ``overwrite``.
    The cohort is written next door and renamed into place, so a killed run leaves no half cohort.
    """
    cfg = config or SynthConfig()
    out = Path(out_dir)
    meta_path = out / "ground_truth" / "cohort.json"
    if out.exists():
        try:
            old = json.loads(meta_path.read_text())["config"]
        except (OSError, KeyError, json.JSONDecodeError):
            old = None
        if old == cfg.to_dict():
            logger.info("%s already holds this cohort; nothing to do", out)
            return out
        if not overwrite:
            what = "a cohort made with other options" if old is not None else "other files"
            raise DataError(
                f"{out} already holds {what}; pass --overwrite to replace it or choose another --out folder"
            )
    work = out.parent / f"{out.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        _write(work, cfg, progress)
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def _write(root: Path, cfg: SynthConfig, progress: Progress | None) -> None:
    shape, affine = grid_for(cfg.grid_mm)
    baseline, mask = _template(shape, affine)
    world = _world(shape, affine)
    ss = np.random.SeedSequence(cfg.seed)
    timeline_seed, *subject_seeds = ss.spawn(1 + cfg.n_subjects)
    trng = np.random.default_rng(timeline_seed)
    episodes = _episodes(trng)
    regressors = _regressors(episodes)
    # annotations and scenes
    raw = root / "annotations" / "raw"
    raw.mkdir(parents=True)
    for i in range(1, 10):
        _observer_rows(trng, episodes, audio_only=False).to_csv(
            raw / f"av1o{i:02d}.csv", index=False
        )
    for i in range(1, 4):
        _observer_rows(trng, episodes, audio_only=True).to_csv(
            raw / f"ao1o{i:02d}.csv", index=False
        )
    _scenes(trng).to_csv(root / "annotations" / "movie_scenes.csv", index=False, header=False)
    # ground truth
    gt = root / "ground_truth"
    for e, p in _patterns(world, mask, None, False).items():
        _save(p, affine, gt / "patterns" / f"{e}.nii.gz")
    _save(mask.astype(np.uint8), affine, gt / "brain_mask.nii.gz")
    episodes.to_csv(gt / "episodes.tsv", sep="\t", index=False)
    starts = np.cumsum([0, *RUN_N_VOLUMES])
    smooth_vox = 4.0 / cfg.grid_mm
    subjects_info = {}
    total = cfg.n_subjects * len(RUN_N_VOLUMES)
    for si, subject in enumerate(cfg.subjects):
        srng = np.random.default_rng(subject_seeds[si])
        atypical = subject in cfg.atypical_subjects
        pats = _patterns(world, mask, srng, atypical)
        for e, p in pats.items():
            _save(p, affine, gt / "patterns" / f"sub-{subject}_{e}.nii.gz")
        subjects_info[subject] = {
            "atypical": atypical,
            "pattern_peak": {e: round(float(p.max()), 3) for e, p in pats.items()},
        }
        for k in range(len(RUN_N_VOLUMES)):
            rrng = np.random.default_rng(np.random.SeedSequence([cfg.seed, si, k + 1, 7]))
            data = _run_bold(
                rrng,
                baseline,
                pats,
                regressors,
                slice(int(starts[k]), int(starts[k + 1])),
                cfg,
                smooth_vox,
            )
            _save(data, affine, root / bold_filename(subject, k + 1), tr=TR_S)
            if progress is not None:
                progress(si * len(RUN_N_VOLUMES) + k + 1, total, f"sub-{subject} run {k + 1}")
    meta = {
        "generated_by": f"emocore {__version__}",
        "config": cfg.to_dict(),
        "grid": {"shape": list(shape), "affine": affine.tolist()},
        "subjects": subjects_info,
        "episodes": int(len(episodes)),
    }
    (gt / "cohort.json").write_text(json.dumps(meta, indent=1))
    (root / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "emocore synthetic studyforrest-like cohort",
                "BIDSVersion": "1.8.0",
                "DatasetType": "raw",
                "GeneratedBy": [
                    {
                        "Name": "emocore",
                        "Version": __version__,
                        "Description": "synthetic data; no real person",
                    }
                ],
                "emocore_synth": cfg.to_dict(),
            },
            indent=1,
        )
    )
    (root / "README").write_text(
        "Synthetic fMRI cohort written by `emocore synth` in the layout of OpenNeuro ds000113 (studyforrest).\nNo real person was scanned. Ground truth (patterns, episodes) is in ground_truth/.\n"
    )
