"""One emotion label per fMRI volume, built from the studyforrest observer annotations.

The raw annotations (Labs et al. 2015) are one CSV per observer: ``av1o01`` ... ``av1o09`` watched
the audio-visual movie, ``ao1o01`` ... ``ao1o03`` heard the audio-only version (the stimulus of the
fMRI). Labels are made on a 2-s movie grid, then looked up per volume at ``start_k + 2 i - lag``.

* ``"poster"`` rebuilds the DeepEmotion labels exactly (one vote per observer per even second,
  chosen by character; at least 4 of 8 votes); its quirks are kept so results stay comparable.
* ``"overlap"`` is the rule of Labs et al.: an observer votes for every class annotated during
  ``[t, t + 2)``; the winner is the unique top class with at least the set's threshold of votes.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emocore._io import atomic_write_text
from emocore.constants import (
    ANNOTATION_SLACK_S,
    CATEGORY_MAP,
    CLASSES,
    EMOTIONS,
    MAX_LAG_S,
    MOVIE_END_S,
    NONE,
    POSTER_RUN_OFFSETS_S,
    RAW_CATEGORIES,
    RUN_N_VOLUMES,
    RUN_STARTS_S,
    TR_S,
)
from emocore.errors import AnnotationError, ConfigError, check_choice

__all__ = [
    "COLUMNS",
    "LABEL_COLUMNS",
    "RECIPES",
    "RUN_OFFSETS",
    "OBSERVER_SETS",
    "AnnotationFiles",
    "AnnotationReport",
    "Annotations",
    "find_annotation_files",
    "read_observer_csv",
    "load_annotations",
    "build_movie_labels",
    "build_volume_labels",
    "label_counts",
    "write_label_table",
    "raw_category_counts",
    "category_cooccurrence",
    "check_lag",
]

logger = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (
    "start",
    "end",
    "character",
    "arousal",
    "valence",
    "direction",
    "emotion",
    "oncue",
    "offcue",
)
LABEL_COLUMNS: tuple[str, ...] = (
    "run",
    "volume",
    "movie_time",
    "label_time",
    "label",
    "agreement",
    "scene",
    "scene_location",
)
RECIPES: tuple[str, ...] = ("poster", "overlap")
RUN_OFFSETS: tuple[str, ...] = ("correct", "poster")
_AV = tuple(f"av1o0{i}" for i in range(1, 10))
# name -> (observer ids, minimum votes for a class)
OBSERVER_SETS: dict[str, tuple[tuple[str, ...], int]] = {
    "av9": (_AV, 5),
    "av8": (tuple(o for o in _AV if o != "av1o04"), 4),
    "ao3": (("ao1o01", "ao1o02", "ao1o03"), 2),
}
_DEFAULT_OBSERVERS = {"poster": "av8", "overlap": "av9"}
_RANK = {c: i for i, c in enumerate(("FORREST", "FORRESTVO", "JENNY", "DAN", "BUBBA", "MRSGUMP"))}
_RAW = {c: c for c in RAW_CATEGORIES}
_OBSERVER_FILE = re.compile(r"^a[ov]\d+o\d+\.csv$")
_STEP = int(TR_S)  # both recipes work on the 2-s grid of the poster
_SCENE_COLUMNS = ("start", "location", "daytime", "setting")


@dataclass(frozen=True)
class AnnotationFiles:
    """Where the annotation files are: the raw folder, one CSV per observer id, the scene list."""

    folder: Path
    observers: Mapping[str, Path]
    scenes: Path | None


@dataclass(frozen=True)
class AnnotationReport:
    """What reading the files noticed: unknown emotion words (file name -> word -> rows) and the
    files that give no vote at all (file name -> why: no rows, or no known emotion word)."""

    unknown_words: Mapping[str, Mapping[str, int]]
    n_rows: Mapping[str, int]
    unusable: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain-JSON form, for manifests and the dashboard."""
        out: dict[str, object] = {
            "unknown_words": {f: dict(w) for f, w in self.unknown_words.items() if w},
            "n_rows": dict(self.n_rows),
        }
        if self.unusable:
            out["unusable"] = dict(self.unusable)
        return out


@dataclass(frozen=True, eq=False)
class Annotations:
    """The observers' tables (by id), the scene list and the reading report."""

    files: AnnotationFiles
    observers: Mapping[str, pd.DataFrame]
    scenes: pd.DataFrame
    report: AnnotationReport

    def report_summary(self) -> dict[str, object]:
        """Same as ``report.as_dict()``."""
        return self.report.as_dict()


# -- reading ------------------------------------------------------------------------------------
def _observer_csvs(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.glob("*.csv")) if _OBSERVER_FILE.match(p.name)}


def find_annotation_files(path: str | Path) -> AnnotationFiles:
    """Locate the observer CSVs and ``movie_scenes.csv`` below ``path``.

    ``path`` may be the raw folder itself, a folder holding ``raw/``, or the studyforrest-emotions
    folder holding ``labs2015-emotionannotation/data/raw``. The scene list is looked for next to
    the raw folder, then inside it; without it ``scenes`` is None.
    """
    root = Path(path)
    expected = (
        "expected the observer files av1o01.csv ... av1o09.csv / ao1o01.csv ... ao1o03.csv in it, "
        "in its raw/ folder or in labs2015-emotionannotation/data/raw"
    )
    if not root.is_dir():
        raise AnnotationError(f"annotation folder {root} does not exist; {expected}")
    for folder in (root, root / "raw", root / "labs2015-emotionannotation" / "data" / "raw"):
        try:
            if folder == root:
                os.listdir(root)  # glob would pass over a folder it cannot read in silence
            observers = _observer_csvs(folder) if folder.is_dir() else {}
        except PermissionError as exc:
            raise AnnotationError(
                f"cannot read the annotation folder {exc.filename or folder} (permission "
                f"denied); make it readable (chmod -R u+rX {root}) or copy the files elsewhere"
            ) from exc
        if observers:
            scenes = [p / "movie_scenes.csv" for p in (folder.parent, folder)]
            for p in scenes:  # a folder or a dangling link there would drop the scenes silently
                if (p.exists() or p.is_symlink()) and not p.is_file():
                    kind = "a folder" if p.is_dir() else "not a file"
                    raise AnnotationError(
                        f"the scene list {p} is {kind}; it must be the CSV file movie_scenes.csv "
                        "(rows 'start,place,DAY,INT', from labs2015-emotionannotation/data): "
                        "put the file in its place, or remove it to build labels without scenes"
                    )
            scenes = [p for p in scenes if p.is_file()]
            return AnnotationFiles(folder, observers, scenes[0] if scenes else None)
    raise AnnotationError(f"annotation folder {root} holds no observer CSV files; {expected}")


def _check_rows(path: Path, bad: np.ndarray, lines: np.ndarray, problem: str, fix: str) -> None:
    if bad.any():
        shown = ", ".join(str(int(n)) for n in lines[bad][:10])
        more = f" and {int(bad.sum()) - 10} more" if bad.sum() > 10 else ""
        raise AnnotationError(f"{path}: {problem} on line(s) {shown}{more}; {fix}")


def _clean_emotions(column: pd.Series) -> tuple[pd.Series, Counter[str]]:
    """Upper-case the emotion words, drop unknown ones and count them (rows per word)."""
    unknown: Counter[str] = Counter()
    cleaned: dict[str, str] = {}
    for value, n in column.value_counts().items():
        words = str(value).upper().split()
        unknown.update({w: int(n) for w in words if w not in CATEGORY_MAP})
        cleaned[value] = " ".join(w for w in words if w in CATEGORY_MAP)
    return column.map(cleaned).fillna(""), unknown


def read_observer_csv(path: str | Path) -> pd.DataFrame:
    """Read and check one observer's annotation CSV.

    Returns the nine columns of :data:`COLUMNS`: ``start``/``end`` as float seconds, the others as
    stripped upper-case text ("" when empty). ``emotion`` holds zero or more space-separated raw
    categories. Words outside the 22 raw categories are dropped (so they count as no emotion),
    logged as a warning and counted in ``table.attrs["unknown_words"]`` (word -> rows).
    """
    path = Path(path)
    header = ",".join(COLUMNS)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (OSError, ValueError) as exc:  # missing, unreadable, not CSV, empty, not UTF-8
        raise AnnotationError(
            f"cannot read {path} ({exc}); expected a CSV with header {header}"
        ) from exc
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise AnnotationError(
            f"{path} lacks the column(s) {', '.join(missing)}; the first line must be the header {header}"
        )
    table = raw.loc[:, list(COLUMNS)].apply(lambda s: s.str.strip().str.upper())
    table = table[(table != "").any(axis=1)]  # blank lines; the index keeps the line numbers
    lines = table.index.to_numpy() + 2
    start = pd.to_numeric(table["start"], errors="coerce").to_numpy(dtype=float)
    end = pd.to_numeric(table["end"], errors="coerce").to_numpy(dtype=float)
    fix = "give start <= end in seconds (e.g. 192.0,260.0) or delete those rows"
    _check_rows(path, ~np.isfinite(start + end), lines, "start/end are not numbers", fix)
    _check_rows(path, (end < start) | (start < 0), lines, "end is before start (or start < 0)", fix)
    _check_times(path, start, end, lines)
    emotion, unknown = _clean_emotions(table["emotion"])
    for word, n in sorted(unknown.items()):
        logger.warning(
            "%s: unknown emotion word %r on %d row(s); treated as no emotion (NONE)", path, word, n
        )
    out = table.assign(start=start, end=end, emotion=emotion).reset_index(drop=True)
    out.attrs["unknown_words"] = dict(unknown)
    out.attrs["unusable"] = _unusable(out, unknown)
    return out


def _check_times(path: Path, start: np.ndarray, end: np.ndarray, lines: np.ndarray) -> None:
    """Refuse times past the movie's end: they would ask for a vote grid of that length."""
    limit = MOVIE_END_S + ANNOTATION_SLACK_S
    late = (start > limit) | (end > limit)
    if not late.any():
        return
    largest = float(max(start[late].max(), end[late].max()))
    hint = (
        "; the times look like milliseconds: give seconds (divide by 1000)"
        if late.mean() >= 0.5 and (end / 1000 <= limit).all()  # most rows late, all fit in ms
        else ""
    )
    _check_rows(
        path,
        late,
        lines,
        f"start/end beyond the movie's end ({MOVIE_END_S:g} s; up to {largest:.6g} s given)",
        f"annotation times are seconds from the start of the movie, at most {limit:g}{hint}; "
        "fix or delete those rows",
    )


def _unusable(table: pd.DataFrame, unknown: Counter[str]) -> str | None:
    """Why an observer's table gives no vote at all (None when it gives some)."""
    if len(table) == 0:
        return "holds no annotation rows (only the header)"
    if (table["emotion"] != "").any():
        return None
    if unknown:
        words = ", ".join(repr(w) for w, _ in unknown.most_common(5))
        return (
            f"names no known emotion category in its {len(table)} rows (it has {words}); "
            f"expected words such as {', '.join(RAW_CATEGORIES[:4])} (the 22 categories of Labs "
            "et al. 2015)"
        )
    return f"has no emotion in any of its {len(table)} rows (the emotion column is empty)"


def _read_scenes(path: Path | None) -> pd.DataFrame:
    if path is None:
        return pd.DataFrame(
            {c: pd.Series(dtype=float if c == "start" else str) for c in _SCENE_COLUMNS}
        )
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise AnnotationError(
            f"cannot read {path} ({exc}); expected rows 'start,place,DAY,INT'"
        ) from exc
    raw = raw.reindex(columns=range(4), fill_value="").set_axis(list(_SCENE_COLUMNS), axis=1)
    start = pd.to_numeric(raw["start"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(start) | (np.diff(start, prepend=-np.inf) <= 0)
    lines = np.arange(len(start)) + 1
    _check_rows(path, bad, lines, "scene start is not a number above the one before", "fix it")
    return raw.assign(start=start, location=raw["location"].str.strip())


def load_annotations(path: str | Path) -> Annotations:
    """Find (see :func:`find_annotation_files`) and read every observer CSV and the scene list."""
    files = find_annotation_files(path)
    tables = {obs: read_observer_csv(p) for obs, p in files.observers.items()}
    names = {o: p.name for o, p in files.observers.items()}
    unknown = {names[o]: t.attrs["unknown_words"] for o, t in tables.items()}
    unusable = {names[o]: t.attrs["unusable"] for o, t in tables.items() if t.attrs["unusable"]}
    report = AnnotationReport(unknown, {names[o]: len(t) for o, t in tables.items()}, unusable)
    logger.info("read %d observer files from %s", len(tables), files.folder)
    return Annotations(files, tables, _read_scenes(files.scenes), report)


# -- options ------------------------------------------------------------------------------------
def _choose(value: str, allowed: Sequence[str], option: str) -> str:
    check_choice(option, value, allowed)
    return value


def check_lag(lag_s: float, option: str = "lag_s") -> float:
    """``lag_s`` as a float if it is a lag labels can be built with: 0 to MAX_LAG_S seconds.

    The one rule of ``emocore labels --lag``, ``emocore prepare --lag`` and
    :class:`~emocore.data.prepare.PrepareOptions`; a ConfigError names ``option`` otherwise.
    """
    try:
        lag = float(lag_s)
    except (TypeError, ValueError):
        lag = float("nan")
    if not 0.0 <= lag <= MAX_LAG_S:  # False for NaN too
        raise ConfigError(
            f"{option} must be a finite number of seconds from 0 to {MAX_LAG_S:g} (the "
            f"hemodynamic lag: the BOLD response peaks 4-6 s after an event, so 4 is usual); "
            f"{lag_s!r} was given"
        )
    return lag


def _observer_tables(
    annotations: Annotations, observers: str | None
) -> tuple[list[pd.DataFrame], int]:
    """The tables of a named observer set (None: every loaded file) and its vote threshold."""
    if observers is None:
        ids, threshold = tuple(annotations.observers), 1
    else:
        ids, threshold = OBSERVER_SETS[_choose(observers, list(OBSERVER_SETS), "observers")]
    missing = [o for o in ids if o not in annotations.observers]
    if missing:
        raise AnnotationError(
            f"{annotations.files.folder} lacks {', '.join(o + '.csv' for o in missing)}, needed by "
            f"observer set {observers!r}; add the files or choose another set"
        )
    _check_usable(annotations, ids, observers)
    _check_distinct(annotations, ids)
    return [annotations.observers[o] for o in ids], threshold


#: Observer files alike in this many rows or more are refused (fewer: a warning). Independent
#: observers of the whole movie never write the same hundreds of rows (the real files hold
#: 221-751 rows each, no two alike); a file copied over another does. A hand-made set of a few
#: episodes (a pilot, a test) may agree row for row by design, so it is only warned about.
DUPLICATE_ROWS_REFUSED = 20


def _check_distinct(annotations: Annotations, ids: Sequence[str]) -> None:
    """Refuse observer files that hold the same annotations (all nine columns of every row
    alike once read) when they hold :data:`DUPLICATE_ROWS_REFUSED` rows or more: one observer
    would vote twice or more and the labels would change without a word. Smaller identical
    files are a warning naming them."""
    groups: dict[tuple[int, int], list[str]] = {}
    for o in ids:
        table = annotations.observers[o]
        if len(table):  # empty files give no vote; _check_usable speaks of them
            key = (len(table), int(pd.util.hash_pandas_object(table, index=False).sum()))
            groups.setdefault(key, []).append(o)
    same = []
    for group in groups.values():
        while len(group) > 1:  # the hash groups candidates; equality decides
            first = annotations.observers[group[0]]
            alike = [o for o in group if annotations.observers[o].equals(first)]
            if len(alike) > 1:
                same.append(alike)
            group = [o for o in group if o not in alike]
    paths = annotations.files.observers
    refused, votes = [], 0
    for group in same:
        n_rows = len(annotations.observers[group[0]])
        files = ", ".join(str(paths[o]) for o in group)
        if n_rows >= DUPLICATE_ROWS_REFUSED:
            refused.append(f"{files} hold the same {n_rows} annotation rows")
            votes = max(votes, len(group))
        else:
            logger.warning(
                "%s hold the same %d annotation row(s): counted as %d observers who agree "
                "exactly; if one file was copied over another, restore the original",
                files,
                n_rows,
                len(group),
            )
    if refused:
        raise AnnotationError(
            f"{'; '.join(refused)}. Each file is one observer's annotations, and independent "
            "observers do not write the same rows, so a file was copied over another: that "
            f"observer would vote {votes} times and the labels would change. "
            "Restore the original files (data/raw of github.com/psychoinformatics-de/"
            "studyforrest-paper-emotionannotation), or remove the copies and choose an observer "
            "set (--observers) without them"
        )


def _check_usable(annotations: Annotations, ids: Sequence[str], observers: str | None) -> None:
    """An error when no observer of ``ids`` gives a vote, a warning per silent one otherwise."""
    silent = {
        o: annotations.observers[o].attrs.get("unusable")
        for o in ids
        if annotations.observers[o].attrs.get("unusable")
    }
    if not silent:
        return
    paths = annotations.files.observers
    said = "; ".join(f"{paths[o]} {why}" for o, why in silent.items())
    which = f"observer set {observers!r}" if observers else "the observer files"
    if len(silent) == len(ids):
        raise AnnotationError(
            f"no file of {which} gives a single vote, so every volume would be NONE: {said}. "
            "Fix the files (header start,end,character,arousal,valence,direction,emotion,"
            "oncue,offcue, then one row per annotation) or point --annotations at the right folder"
        )
    for o, why in silent.items():
        logger.warning(
            "%s %s; it counts as an observer who annotated nothing (%d of %d votes of %s left)",
            paths[o],
            why,
            len(ids) - len(silent),
            len(ids),
            which,
        )


def _n_steps(end_s: float) -> int:
    return int(np.floor(end_s / _STEP)) + 1


# -- per-observer votes -------------------------------------------------------------------------
def _word_matrix(emotion: pd.Series, keys: Sequence[str], to_key: Mapping[str, str]) -> np.ndarray:
    """Bool (rows, keys): which keys the emotion words of each row map to."""
    index = {k: i for i, k in enumerate(keys)}
    codes, uniques = pd.factorize(emotion)
    rows = np.zeros((len(uniques) + 1, len(keys)), dtype=bool)  # last row: missing values
    for u, value in enumerate(uniques):
        rows[u, [index[to_key[w]] for w in str(value).split() if to_key.get(w) in index]] = True
    return rows[codes]


def _covered(table: pd.DataFrame, marks: np.ndarray, n_steps: int) -> np.ndarray:
    """Bool (steps, k): whether an annotation with each mark overlaps [t, t + 2) (Labs' rule)."""
    first = np.floor(table["start"].to_numpy() / _STEP).astype(np.int64)
    last = np.minimum(np.ceil(table["end"].to_numpy() / _STEP).astype(np.int64) - 1, n_steps - 1)
    rows, cols = np.nonzero(marks & (first <= last)[:, None])
    diff = np.zeros((n_steps + 1, marks.shape[1]), dtype=np.int64)
    np.add.at(diff, (first[rows], cols), 1)
    np.add.at(diff, (last[rows] + 1, cols), -1)
    return np.cumsum(diff, axis=0)[:n_steps] > 0


def _poster_vote(table: pd.DataFrame, n_steps: int) -> np.ndarray:
    """Class index (0 = NONE) per step: one annotation per even second, chosen by character."""
    start = np.trunc(table["start"].to_numpy()).astype(np.int64)
    end = np.trunc(table["end"].to_numpy()).astype(np.int64)
    n = np.where(start % _STEP == 0, np.maximum(end - start + 1, 0) // _STEP, 0)
    rows = np.repeat(np.arange(len(table)), n)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(n) - n, n)
    step = start[rows] // _STEP + within
    keep = step < n_steps
    rank = table["character"].map(_RANK).fillna(len(_RANK)).to_numpy(dtype=np.int64)
    key = rank[rows] * len(table) + rows  # ties: the earlier row
    best = np.full(n_steps, np.iinfo(np.int64).max)
    np.minimum.at(best, step[keep], key[keep])
    classes = _word_matrix(table["emotion"], EMOTIONS, CATEGORY_MAP)
    # a field naming two different classes is no vote (the prototype left such strings unmapped)
    row_vote = np.where(classes.sum(axis=1) == 1, classes.argmax(axis=1) + 1, 0)
    chosen = best < np.iinfo(np.int64).max
    vote = np.zeros(n_steps, dtype=np.int64)
    vote[chosen] = row_vote[best[chosen] % len(table)]
    return vote


def _pool_poster(votes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.stack([(votes == c).sum(axis=0) for c in range(1, len(CLASSES))], axis=1)
    top = counts.max(axis=1)
    at_top = counts == top[:, None]
    steps = np.arange(votes.shape[1])
    hits = at_top[steps[None, :], np.maximum(votes - 1, 0)] & (votes > 0)
    first = votes[hits.argmax(axis=0), steps]  # ties: the class met first in observer order
    label = np.where(top >= threshold, first, 0)
    agreement = (votes == label[None, :]).mean(axis=0)
    return label, agreement, (top >= threshold) & (at_top.sum(axis=1) > 1)


def _pool_overlap(votes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = votes.sum(axis=0)  # votes: (observers, steps, emotions)
    top = counts.max(axis=1)
    tied = (top >= threshold) & ((counts == top[:, None]).sum(axis=1) > 1)
    label = np.where((top >= threshold) & ~tied, counts.argmax(axis=1) + 1, 0)
    with_none = np.concatenate([~votes.any(axis=2, keepdims=True), votes], axis=2)
    agreement = with_none[:, np.arange(len(label)), label].mean(axis=0)
    return label, agreement, tied


# -- label tables -------------------------------------------------------------------------------
def _movie_end_s(run_starts: Sequence[float], run_n_volumes: Sequence[int]) -> float:
    return float(max(s + TR_S * (n - 1) for s, n in zip(run_starts, run_n_volumes, strict=True)))


def build_movie_labels(
    annotations: Annotations,
    *,
    recipe: str = "poster",
    observers: str | None = None,
    end_s: float | None = None,
) -> pd.DataFrame:
    """Labels on the 2-s movie grid 0, 2, ..., ``end_s`` (default: the last volume, 7084 s).

    Columns: ``movie_time`` (s), ``label`` (one of CLASSES), ``agreement`` (fraction of the
    observers whose vote is the label) and ``tied`` (two classes shared the top vote at or above
    the threshold: the poster rule then takes the one met first in observer order, the overlap
    rule gives NONE). ``observers`` names a set of :data:`OBSERVER_SETS`; by default "av8" for the
    poster rule (the only set that reproduces the poster) and "av9" for the overlap rule.
    """
    recipe = _choose(recipe, RECIPES, "recipe")
    tables, threshold = _observer_tables(annotations, observers or _DEFAULT_OBSERVERS[recipe])
    end = _movie_end_s(RUN_STARTS_S, RUN_N_VOLUMES) if end_s is None else float(end_s)
    if not np.isfinite(end) or end < 0:
        raise ConfigError(f"end_s must be a finite number of seconds >= 0; got {end_s!r}")
    n_steps = _n_steps(end)
    if recipe == "poster":
        votes = np.stack([_poster_vote(t, n_steps) for t in tables])
        label, agreement, tied = _pool_poster(votes, threshold)
    else:
        marks = [_word_matrix(t["emotion"], EMOTIONS, CATEGORY_MAP) for t in tables]
        votes = np.stack([_covered(t, m, n_steps) for t, m in zip(tables, marks, strict=True)])
        label, agreement, tied = _pool_overlap(votes, threshold)
    movie_time = np.arange(n_steps, dtype=float) * _STEP
    label = np.asarray(CLASSES, dtype=object)[label]
    return pd.DataFrame(
        {"movie_time": movie_time, "label": label, "agreement": agreement, "tied": tied}
    )


def build_volume_labels(
    annotations: Annotations,
    *,
    lag_s: float = 4.0,
    recipe: str = "poster",
    observers: str | None = None,
    run_offsets: str = "correct",
    run_starts: Sequence[float] = RUN_STARTS_S,
    run_n_volumes: Sequence[int] = RUN_N_VOLUMES,
) -> pd.DataFrame:
    """One row per fMRI volume, with the columns of :data:`LABEL_COLUMNS`.

    Volume i of run k was acquired at ``movie_time = start_k + 2 i`` and takes the movie-grid
    label (see :func:`build_movie_labels`) at ``label_time = movie_time - lag_s``, floored to the
    2-s grid. Label times before 0 s or after the last volume of the movie get NONE with
    agreement 1.0 (no observer annotated them). ``run_offsets="poster"`` replaces the run starts
    with the prototype's cumulative durations (POSTER_RUN_OFFSETS_S), which ignore the 16-s run
    overlaps: kept only to show that error. ``movie_time`` is then the time the prototype
    assumed, and run 8 from volume 282 on falls past the movie (NONE); the prototype itself
    labelled only its first 256 volumes. ``scene`` is the 1-based scene of ``movie_scenes.csv``
    at ``label_time`` (0 before the first scene or without the file).
    """
    _choose(run_offsets, RUN_OFFSETS, "run_offsets")
    lag_s = check_lag(lag_s)
    offsets = POSTER_RUN_OFFSETS_S if run_offsets == "poster" else run_starts
    if not len(run_starts) == len(offsets) == len(run_n_volumes) or min(run_n_volumes) < 1:
        raise ConfigError(
            f"run_starts/run offsets ({len(run_starts)}/{len(offsets)} values) and run_n_volumes "
            f"({len(run_n_volumes)}) need one value per run, each run at least one volume"
        )
    end_s = _movie_end_s(run_starts, run_n_volumes)
    grid = build_movie_labels(annotations, recipe=recipe, observers=observers, end_s=end_s)
    n_vol = np.asarray(run_n_volumes, dtype=np.int64)
    run = np.repeat(np.arange(1, len(n_vol) + 1), n_vol)
    volume = np.arange(n_vol.sum()) - np.repeat(np.cumsum(n_vol) - n_vol, n_vol)
    movie_time = np.repeat(np.asarray(offsets, dtype=float), n_vol) + TR_S * volume
    label_time = movie_time - float(lag_s)
    step = np.floor(label_time / _STEP).astype(np.int64)
    inside = (label_time >= 0) & (step < len(grid))
    at = np.clip(step, 0, len(grid) - 1)
    scenes = annotations.scenes
    scene = np.searchsorted(scenes["start"].to_numpy(dtype=float), label_time, side="right")
    locations = np.asarray(["", *scenes["location"].tolist()], dtype=object)
    label = np.where(inside, grid["label"].to_numpy(dtype=object)[at], NONE)
    agreement = np.where(inside, grid["agreement"].to_numpy()[at], 1.0)
    values = (run, volume, movie_time, label_time, label, agreement, scene, locations[scene])
    return pd.DataFrame(dict(zip(LABEL_COLUMNS, values, strict=True)))


def label_counts(table: pd.DataFrame | pd.Series) -> dict[str, int]:
    """Volumes (or grid steps) per class, in CLASSES order, zeros included."""
    labels = table["label"] if isinstance(table, pd.DataFrame) and "label" in table else table
    if not isinstance(labels, pd.Series):
        raise AnnotationError("the table has no 'label' column; make it with build_volume_labels")
    unknown = sorted(set(labels.astype(str)) - set(CLASSES))
    if unknown:
        raise AnnotationError(f"labels {unknown} are not classes; expected {list(CLASSES)}")
    found = labels.value_counts()
    return {c: int(found.get(c, 0)) for c in CLASSES}


def write_label_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the table as TSV, atomically (a temporary file in the same folder, then renamed),
    with the mode the umask gives a new file."""
    return atomic_write_text(path, table.to_csv(sep="\t", index=False))


# -- summaries for the Annotations page ---------------------------------------------------------
def raw_category_counts(annotations: Annotations, observers: str | None = None) -> pd.DataFrame:
    """How often each of the 22 raw categories was annotated, indexed by category.

    Columns: ``class`` (its class after the 22 -> 5 map), ``count`` (annotation rows carrying
    it) and ``observers`` (how many observers used it). ``observers`` names a set of
    :data:`OBSERVER_SETS`; None counts every loaded file.
    """
    tables, _ = _observer_tables(annotations, observers)
    marks = [_word_matrix(t["emotion"], RAW_CATEGORIES, _RAW) for t in tables]
    per_observer = np.array([m.sum(axis=0) for m in marks]).reshape(len(marks), len(_RAW))
    classes = [CATEGORY_MAP[c] for c in RAW_CATEGORIES]
    count, used = per_observer.sum(axis=0), (per_observer > 0).sum(axis=0)
    table = pd.DataFrame(
        {"class": classes, "count": count, "observers": used}, index=RAW_CATEGORIES
    )
    return table.rename_axis("category").astype({"count": np.int64, "observers": np.int64})


def category_cooccurrence(
    annotations: Annotations, observers: str | None = None, *, end_s: float | None = None
) -> pd.DataFrame:
    """22 x 22 counts of 2-s steps at which one observer annotated category a and another b.

    A step counts for (a, b) when two *different* observers have annotations overlapping
    [t, t + 2) tagged a and b; the diagonal counts steps where at least two observers agree on a.
    The matrix is symmetric; rows and columns follow RAW_CATEGORIES.
    """
    tables, _ = _observer_tables(annotations, observers)
    n_steps = _n_steps(_movie_end_s(RUN_STARTS_S, RUN_N_VOLUMES) if end_s is None else end_s)
    k = len(RAW_CATEGORIES)
    has = np.zeros((len(tables), n_steps, k), dtype=np.int64)
    for i, t in enumerate(tables):
        has[i] = _covered(t, _word_matrix(t["emotion"], RAW_CATEGORIES, _RAW), n_steps)
    n_with = has.sum(axis=0)  # observers per step and category
    both = np.einsum("ota,otb->tab", has, has)  # observers with a and b at one step
    alone = (n_with[:, :, None] == 1) & (n_with[:, None, :] == 1) & (both == 1)
    pairs = (n_with[:, :, None] > 0) & (n_with[:, None, :] > 0) & ~alone
    diagonal = np.arange(k)
    pairs[:, diagonal, diagonal] = n_with >= 2
    index = pd.Index(RAW_CATEGORIES, name="category")
    return pd.DataFrame(pairs.sum(axis=0), index=index, columns=index.rename("with"))
