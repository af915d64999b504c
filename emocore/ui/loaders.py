"""Cached loaders of the dashboard: objects via ``st.cache_resource``, tables via ``st.cache_data``.

Files are keyed by path *and* modification time, so a re-run study or a rebuilt cache is picked up
without restarting the server. Everything is read below the configured roots (:class:`Settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from emocore.constants import CLASSES, RUN_STARTS_S
from emocore.data.cache import VolumeCache
from emocore.derivatives import saliency_map_path
from emocore.errors import CacheError, EmocoreError
from emocore.findings import RunFindings, run_findings
from emocore.registry import Registry
from emocore.report import read_json, read_tsv
from emocore.settings import Settings

__all__ = [
    "annotations",
    "cache",
    "category_cooccurrence",
    "design_predictions",
    "findings",
    "inference_engine",
    "label_count_grid",
    "mni_underlay",
    "per_subject",
    "raw_category_counts",
    "registry",
    "saliency_map",
    "settings",
    "study",
    "subject_volume",
    "table",
    "volume_labels",
    "world_image",
]

#: Tables of a run's bundle the pages read, by short name.
TABLES = ("predictions", "baseline", "curves", "embeddings")


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def settings() -> Settings:
    """The configured roots, read afresh on every run (cheap; env vars may change)."""
    return Settings.from_env()


# -- objects ---------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _registry(root: str) -> Registry:
    return Registry(root)


def registry(s: Settings, *, create: bool = False) -> Registry | None:
    """The run registry; None when there is none yet and ``create`` is False."""
    if not s.has_registry and not create:
        return None
    return _registry(str(s.registry))


@st.cache_resource(show_spinner=False)
def _cache(path: str, mtime: int) -> VolumeCache:
    return VolumeCache(path)


def cache(s: Settings) -> VolumeCache:
    """The volume cache (CacheError, naming manifest.json, when it is missing)."""
    return _cache(str(s.cache), _mtime(s.cache / "manifest.json"))


@st.cache_resource(show_spinner=False)
def _annotations(path: str, mtime: int) -> Any:
    from emocore.labels import load_annotations

    return load_annotations(path)


def annotations(s: Settings) -> Any:
    return _annotations(str(s.annotations), _mtime(s.annotations))


@st.cache_resource(show_spinner=False, max_entries=2)
def _engine(registry_root: str, run_id: str, model: str, grid: tuple[int, ...], mtime: int):
    from emocore.engine import FastOptions
    from emocore.inference import load_engine

    # Streamlit calls from a different thread on each rerun, and torch.compile's CUDA graphs
    # are recorded per thread: compile without them here
    return load_engine(
        _registry(registry_root),
        run_id,
        model,
        grid_shape=grid,
        options=FastOptions(cuda_graphs=False),
    )


def inference_engine(reg: Registry, run_id: str, model: str, grid: tuple[int, ...]):
    """A stored model prepared once for the fast path (GPU when there is one), kept for reuse.

    At most two are kept: a full-grid model holds about 0.6 GB on its device.
    """
    from emocore.inference import model_path

    path = model_path(reg, run_id, model)
    return _engine(str(reg.root), run_id, model, tuple(grid), _mtime(path))


# -- a run's bundle --------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=64)
def _json(path: str, mtime: int) -> dict[str, Any]:
    return read_json(path)


@st.cache_data(show_spinner=False, max_entries=32)
def _tsv(path: str, mtime: int) -> pd.DataFrame:
    return read_tsv(path)


def study(reg: Registry, run_id: str) -> dict[str, Any]:
    path = reg.run_dir(run_id) / "study.json"
    return _json(str(path), _mtime(path))


def metrics(reg: Registry, run_id: str) -> dict[str, Any]:
    path = reg.run_dir(run_id) / "metrics.json"
    return _json(str(path), _mtime(path))


@st.cache_data(show_spinner=False, max_entries=16)
def _findings(study_path: str, study_mtime: int, metrics_path: str, metrics_mtime: int):
    metrics_json = read_json(metrics_path) if metrics_mtime >= 0 else None
    return run_findings(read_json(study_path), metrics_json)


def findings(reg: Registry, run_id: str) -> RunFindings:
    """The run's single-case findings and fold stability (metrics.json, else study.json), read
    once per change of the files; ``available`` is False for runs that predate them."""
    folder = reg.run_dir(run_id)
    study_path, metrics_path = folder / "study.json", folder / "metrics.json"
    return _findings(str(study_path), _mtime(study_path), str(metrics_path), _mtime(metrics_path))


def table(reg: Registry, run_id: str, name: str) -> pd.DataFrame:
    """One of :data:`TABLES` of a run (a copy is not made: do not modify it)."""
    if name not in TABLES:
        raise EmocoreError(f"'name' must be one of {TABLES}; '{name}' was provided")
    path = reg.run_dir(run_id) / f"{name}.tsv"
    frame = _tsv(str(path), _mtime(path))
    if name in ("predictions", "baseline"):
        _check_complete(reg, run_id, path, frame)
    return frame


def _check_complete(reg: Registry, run_id: str, path: Path, frame: pd.DataFrame) -> None:
    """A cut-off prediction table is named here (EmocoreError), not summarised as what is left
    or as 'the prediction table is empty'."""
    from emocore.bundle import check_rows, expected_rows

    folder = reg.run_dir(run_id)
    found = {}
    for name, read in (("study.json", study), ("metrics.json", metrics)):
        try:
            found[name] = read(reg, run_id) if (folder / name).is_file() else None
        except EmocoreError:
            found[name] = None  # the page that needs it names that file
    check_rows(path, frame, expected_rows(found["study.json"], found["metrics.json"], path.name))


def design_predictions(
    reg: Registry, run_id: str, design: str, *, baseline: bool = False
) -> pd.DataFrame:
    frame = table(reg, run_id, "baseline" if baseline else "predictions")
    return frame[frame["design"] == design]


@st.cache_data(show_spinner=False, max_entries=32)
def _per_subject(path: str, mtime: int, design: str, classes: tuple[str, ...]) -> pd.DataFrame:
    from emocore.summaries import per_subject_metrics

    frame = read_tsv(path)
    return per_subject_metrics(frame[frame["design"] == design], classes=list(classes))


def per_subject(reg: Registry, run_id: str, design: str, classes: list[str]) -> pd.DataFrame:
    """Per-subject accuracy and per-emotion recall of one design's held-out predictions."""
    table(reg, run_id, "predictions")  # a cut-off file is named, not scored
    path = reg.run_dir(run_id) / "predictions.tsv"
    return _per_subject(str(path), _mtime(path), design, tuple(classes))


@st.cache_data(show_spinner=False, max_entries=64)
def _nifti(path: str, mtime: int) -> np.ndarray:
    import nibabel as nib

    try:
        return np.asarray(nib.load(path).dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many kinds for a damaged file
        raise EmocoreError(f"{path} cannot be read as NIfTI ({exc}); re-run the study") from exc


def saliency_map(
    reg: Registry, run_id: str, design: str, name: str, emotion: str
) -> np.ndarray | None:
    """Mean |attribution| of one model for one emotion; None when the run saved none.

    The file is the one study.json records (BIDS names such as
    ``sub-03/sub-03_desc-love_saliency.nii.gz``, or the older ``sub-03_LOVE.nii.gz``); see
    :func:`emocore.derivatives.saliency_map_path`.
    """
    folder = reg.run_dir(run_id)
    entries = study(reg, run_id).get("saliency") if (folder / "study.json").is_file() else None
    entry = ((entries or {}).get(design) or {}).get(name, {}).get(emotion)
    path = saliency_map_path(folder / "saliency" / design, name, emotion, entry)
    return _nifti(str(path), _mtime(path)) if path is not None else None


@st.cache_data(show_spinner=False, max_entries=8)
def _new_people(
    folder: str, mtime: int, cohort: tuple[str, ...], entities: tuple[tuple[str, str], ...]
) -> list[str]:
    from emocore.assess import new_people as find

    return find(folder, cohort, dict(entities))


def new_people(folder: Path, cohort: list[str], cache: VolumeCache | None = None) -> list[str]:
    """People of a dataset folder outside ``cohort``; the headers are read once per change of
    the folders that hold ``sub-XX`` (a new person changes their modification time), not on
    every rerun."""
    from emocore.constants import DERIVATIVE_DIR

    changed = max(_mtime(folder), _mtime(folder / DERIVATIVE_DIR))
    from emocore.assess import chosen_entities

    entities = tuple(sorted(chosen_entities(cache).items()))
    return _new_people(str(folder), changed, tuple(cohort), entities)


def subject_volume(s: Settings, subject: str, run: int, volume: int) -> np.ndarray:
    return np.asarray(cache(s).volume(subject, run, volume), dtype=np.float32)


@st.cache_data(show_spinner=False, max_entries=4)
def _mni_underlay(shape: tuple[int, ...], affine: tuple[tuple[float, ...], ...]):
    from emocore.anatomy import mni_underlay as build

    return build(shape, np.asarray(affine))


def mni_underlay(shape: tuple[int, ...], affine: np.ndarray):
    """The MNI152 template over a grid's field of view (:func:`emocore.anatomy.mni_underlay`),
    resampled once per grid (shape and affine) and server, not on every rerun."""
    key = tuple(tuple(round(float(v), 4) for v in row) for row in np.asarray(affine))
    return _mni_underlay(tuple(int(n) for n in shape), key)


@st.cache_data(show_spinner=False, max_entries=16)
def _world_image(data: np.ndarray, affine: np.ndarray):
    from emocore.anatomy import to_world

    return to_world(data, affine)


def world_image(data: np.ndarray, affine: np.ndarray):
    """``data`` on a RAS+ grid in mm (:func:`emocore.anatomy.to_world`); an oblique grid is
    resampled once per array, not on every rerun."""
    return _world_image(np.asarray(data, dtype=np.float32), np.asarray(affine, dtype=np.float64))


def movie_time(run: int, volume: int) -> float:
    return float(RUN_STARTS_S[run - 1] + 2 * volume)


# -- annotations -----------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _volume_labels(
    path: str, mtime: int, lag: float, recipe: str, observers: str | None
) -> pd.DataFrame:
    from emocore.labels import build_volume_labels

    return build_volume_labels(
        _annotations(path, mtime), lag_s=lag, recipe=recipe, observers=observers
    )


def volume_labels(s: Settings, *, lag: float, recipe: str, observers: str | None) -> pd.DataFrame:
    return _volume_labels(str(s.annotations), _mtime(s.annotations), lag, recipe, observers)


@st.cache_data(show_spinner=False, max_entries=8)
def _raw_counts(path: str, mtime: int, observers: str | None) -> pd.DataFrame:
    from emocore.labels import raw_category_counts as counts

    return counts(_annotations(path, mtime), observers)


def raw_category_counts(s: Settings, observers: str | None) -> pd.DataFrame:
    return _raw_counts(str(s.annotations), _mtime(s.annotations), observers)


@st.cache_data(show_spinner=False, max_entries=8)
def _cooccurrence(path: str, mtime: int, observers: str | None) -> pd.DataFrame:
    from emocore.labels import category_cooccurrence as cooc

    return cooc(_annotations(path, mtime), observers)


def category_cooccurrence(s: Settings, observers: str | None) -> pd.DataFrame:
    return _cooccurrence(str(s.annotations), _mtime(s.annotations), observers)


def label_count_grid(
    s: Settings, *, lags: tuple[float, ...] = (0, 2, 4, 6), observers: str | None = None
) -> pd.DataFrame:
    """Volumes per class (columns) for each recipe x lag (rows like 'poster, lag 4 s')."""
    from emocore.labels import RECIPES, label_counts

    rows = {
        f"{recipe}, lag {lag:g} s": label_counts(
            volume_labels(s, lag=lag, recipe=recipe, observers=observers)
        )
        for recipe in RECIPES
        for lag in lags
    }
    return pd.DataFrame.from_dict(rows, orient="index")[list(CLASSES)]


def cache_or_none(s: Settings) -> tuple[VolumeCache | None, str | None]:
    """The cache, or None and the reason (for pages that can do without it)."""
    try:
        return cache(s), None
    except CacheError as exc:
        return None, str(exc)
