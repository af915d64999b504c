"""A studyforrest-like cohort written without emocore's synthetic generator.

emocore's own generator (``emocore.data.synthetic``) plants Gaussian blobs on the MNI template,
convolves episodes with a canonical HRF and plants LOVE as SADNESS. A verdict that only works
on it could be tuned to it. This cohort is built another way, with nibabel and numpy only:

* an ellipsoid "brain" on a small box grid, each emotion a sparse random pattern (a fifth of
  the voxels, signed weights), each person's patterns a perturbed copy of the population's;
* the response to an emotion rises and decays exponentially around its labelled volumes
  (not an HRF), on top of AR(1) noise, a slow drift, and a response **shared by everybody**
  (the same "movie" time course in every person, with a common spatial map): the part of real
  BOLD that inter-subject correlation measures;
* the labels come from the episodes written as Labs et al.-style observer files (nine
  observers who agree), placed on each run's volumes with the dataset's run starts and a 4-s
  lag, as emocore's prepare will place them;
* one person is planted atypical for one emotion: their FEAR volumes carry mostly the ANGER
  pattern (emocore's generator plants LOVE as SADNESS instead).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emocore.constants import RUN_N_VOLUMES, RUN_STARTS_S, bold_filename

EMOTIONS = ("HAPPINESS", "FEAR", "SADNESS", "LOVE", "ANGERRAGE")  # the observers' words
SHAPE = (10, 12, 8)
LAG_S = 4.0


def _episodes(rng: np.random.Generator, end_s: float) -> list[tuple[float, float, str]]:
    """Emotion episodes of 20-50 s with gaps of 20-70 s, emotions in random order."""
    out, t = [], 30.0
    while t < end_s - 60:
        length = float(rng.uniform(20, 50))
        out.append((t, t + length, EMOTIONS[int(rng.integers(len(EMOTIONS)))]))
        t += length + float(rng.uniform(20, 70))
    return out


def _write_annotations(root: Path, episodes: list[tuple[float, float, str]]) -> Path:
    raw = root / "annotations" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    header = "start,end,character,arousal,valence,direction,emotion,oncue,offcue\n"
    for i in range(1, 10):
        # observers who agree, each placing the boundaries a little differently (identical
        # files would be refused as copies of one another)
        d = 0.1 * (i - 5)
        rows = "".join(
            f"{a + d:.1f},{b + d:.1f},FORREST,HIGH,NEG,SELF,{e},FACE,EMOFADED\n"
            for a, b, e in episodes
        )
        (raw / f"av1o{i:02d}.csv").write_text(header + rows)
    (root / "annotations" / "movie_scenes.csv").write_text("0.0,SAVANNAH,DAY,EXT\n")
    return raw


def _labels(episodes, times: np.ndarray) -> np.ndarray:
    """Emotion index (or -1) at each volume's label time (4 s earlier, on the 2-s grid)."""
    step = np.floor((times - LAG_S) / 2.0) * 2.0
    out = np.full(len(times), -1)
    for a, b, emotion in episodes:
        out[(step + 2.0 > a) & (step < b)] = EMOTIONS.index(emotion)
    return out


def write_cohort(
    root: Path,
    *,
    n_subjects: int = 8,
    planted: str = "08",
    seed: int = 0,
    amplitude: float = 3.0,
    shared: float = 1.0,
) -> Path:
    """Write the cohort in ds000113's aligned-derivative layout below ``root``; return the
    observer folder (``annotations/raw``)."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    end_s = RUN_STARTS_S[-1] + 2.0 * RUN_N_VOLUMES[-1]
    episodes = _episodes(rng, end_s)
    raw = _write_annotations(root, episodes)
    grid = np.indices(SHAPE).astype(float)
    centre = (np.array(SHAPE) - 1) / 2
    brain = (((grid - centre[:, None, None, None]) / (centre[:, None, None, None] + 0.5)) ** 2).sum(
        0
    ) <= 1.0
    n_vox = int(brain.sum())
    population = rng.normal(size=(len(EMOTIONS), n_vox)) * (
        rng.random((len(EMOTIONS), n_vox)) < 0.2
    )
    shared_map = rng.normal(size=n_vox)
    anger, fear = EMOTIONS.index("ANGERRAGE"), EMOTIONS.index("FEAR")
    # the shared "movie" response: one slow time course per run, the same in everybody
    movie = {
        run: np.convolve(rng.normal(size=n + 20), np.ones(8) / 8, mode="same")[10 : 10 + n]
        for run, n in enumerate(RUN_N_VOLUMES, start=1)
    }
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    for s in range(1, n_subjects + 1):
        subject = f"{s:02d}"
        patterns = population + 0.4 * rng.normal(size=population.shape) * (population != 0)
        if subject == planted:
            patterns[fear] = 0.85 * patterns[anger] + 0.15 * patterns[fear]
        gain = float(rng.uniform(0.7, 1.3))  # people differ overall
        for run, n in enumerate(RUN_N_VOLUMES, start=1):
            times = RUN_STARTS_S[run - 1] + 2.0 * np.arange(n)
            labels = _labels(episodes, times)
            drive = np.zeros((n, len(EMOTIONS)))
            drive[labels >= 0, labels[labels >= 0]] = 1.0
            # rise and decay: a two-sided exponential smoothing of the labelled volumes
            kernel = np.exp(-np.abs(np.arange(-3, 4)) / 1.5)
            drive = np.stack(
                [np.convolve(drive[:, e], kernel / kernel.max(), mode="same") for e in range(5)],
                axis=1,
            ).clip(0, 1)
            noise = np.zeros((n, n_vox))
            eps = rng.normal(size=(n, n_vox))
            for t in range(n):
                noise[t] = (0.4 * noise[t - 1] if t else 0.0) + eps[t]
            drift = np.linspace(-1, 1, n)[:, None] * rng.normal(size=n_vox) * 0.5
            signal = amplitude * gain * drive @ patterns
            bold = signal + noise + drift + shared * movie[run][:, None] * shared_map
            data = np.zeros((*SHAPE, n), dtype=np.float32)
            data[brain] = (1000.0 + 10.0 * bold).T
            img = nib.Nifti1Image(data, affine)
            img.header.set_xyzt_units("mm", "sec")
            img.header["pixdim"][4] = 2.0
            path = root / bold_filename(subject, run)
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(img, path)
    return raw
