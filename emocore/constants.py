"""Facts about the studyforrest 7-Tesla audio-movie data and the emotion classes.

Sources
-------
* Run timing: movie starts from the fMRI timing table of Labs et al. (2015), volume counts from
  Hanke et al. (2014), as collected in ``studyforrest-emotions/fmri_runs.tsv``. Each run repeats the
  last 16 s (8 volumes) of the run before it.
* ``POSTER_RUN_OFFSETS_S`` are the cumulative run durations the DeepEmotion prototype used; they
  ignore the overlap and shift the labels of run k by 16 (k - 1) s. Kept only to show the error.
* The 22 -> 5 category map is the prototype's "heuristic clustering" (see the README of the
  annotation folder).
"""

from __future__ import annotations

__all__ = [
    "TR_S",
    "movie_clock",
    "MAX_LAG_S",
    "MOVIE_END_S",
    "ANNOTATION_SLACK_S",
    "N_RUNS",
    "RUN_STARTS_S",
    "RUN_N_VOLUMES",
    "RUN_OVERLAP_VOLUMES",
    "POSTER_RUN_OFFSETS_S",
    "NONE",
    "EMOTIONS",
    "CLASSES",
    "CATEGORY_MAP",
    "RAW_CATEGORIES",
    "EMOTION_COLORS",
    "DERIVATIVE_DIR",
    "FULL_GRID_SHAPE",
    "bold_filename",
]

TR_S: float = 2.0
N_RUNS: int = 8
RUN_STARTS_S: tuple[int, ...] = (0, 886, 1752, 2612, 3572, 4480, 5342, 6410)
RUN_N_VOLUMES: tuple[int, ...] = (451, 441, 438, 488, 462, 439, 542, 338)
RUN_OVERLAP_VOLUMES: int = 8
POSTER_RUN_OFFSETS_S: tuple[int, ...] = (0, 902, 1784, 2660, 3636, 4560, 5438, 6522)
#: The end of the stimulus: the end of the last run's last volume (7086 s).
MOVIE_END_S: float = RUN_STARTS_S[-1] + TR_S * RUN_N_VOLUMES[-1]
#: How far past MOVIE_END_S an annotation may reach (an emotion running into the credits); the
#: labs2015 files end by 7085 s. Times beyond are refused: a typo, or milliseconds for seconds.
ANNOTATION_SLACK_S: float = 60.0
#: The largest hemodynamic lag (s) labels may be built with, by prepare and `emocore labels`
#: alike; the BOLD response peaks 4-6 s after an event, and 20 s is ten volumes.
MAX_LAG_S: float = 20.0

NONE: str = "NONE"
# Order follows the prototype's class index (NONE = 0), so tables stay comparable with the poster.
EMOTIONS: tuple[str, ...] = ("HAPPINESS", "FEAR", "SADNESS", "LOVE", "ANGER")
CLASSES: tuple[str, ...] = (NONE, *EMOTIONS)

CATEGORY_MAP: dict[str, str] = {
    "ANGERRAGE": "ANGER",
    "CONTEMPT": "ANGER",
    "HATE": "ANGER",
    "RESENTMENT": "ANGER",
    "SADNESS": "SADNESS",
    "REMORSE": "SADNESS",
    "DISAPPOINTMENT": "SADNESS",
    "SHAME": "SADNESS",
    "FEAR": "FEAR",
    "FEARSCONFIRMED": "FEAR",
    "LOVE": "LOVE",
    "COMPASSION": "LOVE",
    "ADMIRATION": "LOVE",
    "HAPPINESS": "HAPPINESS",
    "HOPE": "HAPPINESS",
    "HAPPYFOR": "HAPPINESS",
    "RELIEF": "HAPPINESS",
    "PRIDE": "HAPPINESS",
    "SATISFACTION": "HAPPINESS",
    "GRATIFICATION": "HAPPINESS",
    "GRATITUDE": "HAPPINESS",
    "GLOATING": NONE,
}
RAW_CATEGORIES: tuple[str, ...] = tuple(sorted(CATEGORY_MAP))

# One colour per class, used by every figure. Chosen by a search over a 6-level RGB grid, one
# hue family per emotion: any two emotions are at least CIE76 dE 74 apart, and at least dE 34
# under a simulated deuteranopia (Machado et al. 2009, severity 1). Okabe-Ito's orange and
# vermillion (dE 33) and sky blue and blue (dE 26) read as one colour in thin timeline bars.
EMOTION_COLORS: dict[str, str] = {
    NONE: "#999999",
    "HAPPINESS": "#CC9900",
    "FEAR": "#33CC99",
    "SADNESS": "#0066CC",
    "LOVE": "#FF00CC",
    "ANGER": "#CC0033",
}

DERIVATIVE_DIR: str = "derivatives/non-linear_anatomical_alignment"
FULL_GRID_SHAPE: tuple[int, int, int] = (132, 175, 48)


def bold_filename(subject: str, run: int) -> str:
    """Path of one run's BOLD file below the dataset root, in the ds000113 derivative layout.

    ``subject`` is the label without ``sub-`` (e.g. ``"01"``); ``run`` counts from 1.
    """
    return (
        f"{DERIVATIVE_DIR}/sub-{subject}/ses-forrestgump/func/"
        f"sub-{subject}_ses-forrestgump_task-forrestgump_rec-dico7Tad2grpbold7TadNL"
        f"_run-{run:02d}_bold.nii.gz"
    )


def movie_clock(seconds: object) -> str:
    """Movie time as the pages write it: m:ss, or h:mm:ss from an hour on (7086 s ->
    "1:58:06"); "?" for a missing or non-numeric time."""
    try:
        value = float(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"
    if value != value or value in (float("inf"), float("-inf")):
        return "?"
    total = int(round(value))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
