"""What happens in the synthetic movie: the emotion episodes and their HRF-convolved
regressors, the soundtrack that everybody hears (the shared response's time course), and the
observers' annotations and the scene list that describe it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d

from emocore.constants import CATEGORY_MAP, EMOTIONS, RUN_N_VOLUMES, RUN_STARTS_S, TR_S
from emocore.data.labels import COLUMNS as OBSERVER_COLUMNS  # the columns labels.py reads
from emocore.data.synthetic.config import SynthConfig, random_stream

_MOVIE_END_S = float(RUN_STARTS_S[-1] + TR_S * RUN_N_VOLUMES[-1])
# The cohort's random stream of the soundtrack (``random_stream(cfg, 0, _SHARED_STREAM)``).
_SHARED_STREAM = 300
_SOUND_DT_S = 0.5  # time step of the soundtrack's loudness
_SOUND_SCALES_S = (2.0, 20.0)  # its two time scales (words and phrases, scenes), equal variance
# Loudness of the soundtrack per emotion (``shared_emotion`` > 0): arousal-like, louder in angry
# and fearful scenes, quieter in sad and tender ones, so the shared response tells them apart.
SOUND_BY_EMOTION = {"HAPPINESS": 0.4, "FEAR": 0.8, "SADNESS": -0.8, "LOVE": -0.4, "ANGER": 1.0}
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


def volume_times() -> np.ndarray:
    """Movie time (s) of every volume, the runs one after another (the overlaps repeat times)."""
    return np.concatenate(
        [s + TR_S * np.arange(n) for s, n in zip(RUN_STARTS_S, RUN_N_VOLUMES, strict=True)]
    )


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / max(float(x.std()), 1e-12)


def shared_envelope(cfg: SynthConfig, regressors: np.ndarray) -> dict[str, np.ndarray]:
    """The shared response's time course at every volume (movie time, so the same in everyone
    and at the run overlaps): ``envelope`` (mean 0, sd 1), its ``sound`` part and the emotion
    ``mix`` (both mean 0, sd 1).

    The soundtrack's loudness is smoothed Gaussian noise on two time scales
    (``_SOUND_SCALES_S``), drawn from the cohort's own stream (seed only: neither the person nor
    any other option), convolved with nilearn's Glover HRF. With ``shared_emotion`` f > 0 (and
    ``signal`` > 0) the envelope is ``sqrt(1 - f) * sound + sqrt(f) * mix``, rescaled to sd 1,
    where ``mix`` weights the emotion regressors by ``SOUND_BY_EMOTION``: about f of its
    variance then follows the emotions.
    """
    # Imported here: nilearn is slow to import (see signal.template_baseline).
    from nilearn.glm.first_level import glover_hrf

    rng = random_stream(cfg, 0, _SHARED_STREAM)
    fine = np.arange(0.0, _MOVIE_END_S + TR_S, _SOUND_DT_S)
    loudness = sum(
        _unit(gaussian_filter1d(rng.standard_normal(fine.size), scale / _SOUND_DT_S))
        for scale in _SOUND_SCALES_S
    )
    hrf = glover_hrf(TR_S, oversampling=round(TR_S / _SOUND_DT_S))  # sampled every 0.5 s
    response = np.convolve(np.asarray(loudness), hrf)[: fine.size]
    sound = _unit(np.interp(volume_times(), fine, response))
    weights = np.array([SOUND_BY_EMOTION[e] for e in EMOTIONS])
    mix = _unit(weights @ regressors.astype(np.float64))
    f = cfg.shared_emotion if cfg.signal > 0 else 0.0  # signal 0: no emotion anywhere
    envelope = sound if f == 0 else _unit(np.sqrt(1 - f) * sound + np.sqrt(f) * mix)
    return {"envelope": envelope, "sound": sound, "mix": mix}


def draw_episodes(rng: np.random.Generator) -> pd.DataFrame:
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


def emotion_regressors(episodes: pd.DataFrame) -> np.ndarray:
    """(emotion, volume) HRF-convolved time courses at each volume's acquisition time."""
    # Imported here: nilearn is slow to import (see signal.template_baseline).
    from nilearn.glm.first_level import compute_regressor

    times = volume_times()
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


def observer_table(
    rng: np.random.Generator, episodes: pd.DataFrame, audio_only: bool
) -> pd.DataFrame:
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


def scene_table(rng: np.random.Generator) -> pd.DataFrame:
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
