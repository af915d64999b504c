"""Cached loaders of the dashboard: objects via ``st.cache_resource``, tables via ``st.cache_data``.

Files are keyed by path *and* modification time, so a re-run study or a rebuilt cache is picked up
without restarting the server. Everything is read below the configured roots (:class:`Settings`).
"""

# No ``from __future__ import annotations`` here: it binds the name ``annotations``, which the
# loader of that name below (pages/annotations.py calls it) would redefine; every annotation in
# this module is a name imported at run time, so none needs the deferred evaluation.

from pathlib import Path
from typing import Any, cast

import nibabel as nib
import numpy as np
import pandas as pd
import streamlit as st

from emocore.constants import CLASSES, DERIVATIVE_DIR
from emocore.data import labels
from emocore.data.cache import VolumeCache, mean_epi_file
from emocore.data.labels import RECIPES
from emocore.errors import CacheError, EmocoreError
from emocore.models.engine import FastOptions
from emocore.reporting import anatomy
from emocore.runs.registry import Registry
from emocore.runs.results import TABLES, RunResults
from emocore.ui.settings import Settings
from emocore.workflows import assess, inference

__all__ = [
    "annotations",
    "cache",
    "category_cooccurrence",
    "inference_engine",
    "label_count_grid",
    "linear_pattern",
    "mean_epi_underlay",
    "mni_underlay",
    "raw_category_counts",
    "registry",
    "run_results",
    "saliency_map",
    "settings",
    "volume_labels",
    "world_image",
]


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
    return labels.load_annotations(path)


def annotations(s: Settings) -> Any:
    return _annotations(str(s.annotations), _mtime(s.annotations))


@st.cache_resource(show_spinner=False, max_entries=2)
def _engine(registry_root: str, run_id: str, model: str, grid: tuple[int, ...], mtime: int):
    # Streamlit calls from a different thread on each rerun, and torch.compile's CUDA graphs
    # are recorded per thread: compile without them here
    return inference.load_engine(
        RunResults(_registry(registry_root), run_id),
        model,
        grid_shape=grid,
        options=FastOptions(cuda_graphs=False),
    )


def inference_engine(results: RunResults, model: str, grid: tuple[int, ...]):
    """A stored model prepared once for the fast path (GPU when there is one), kept for reuse.

    At most two are kept: a full-grid model holds about 0.6 GB on its device.
    """
    path = results.model_path(model)
    return _engine(str(results.registry.root), results.run_id, model, tuple(grid), _mtime(path))


# -- a run's results --------------------------------------------------------------------------
#: Files whose change means the run's results must be read again.
_RESULT_FILES = ("study.json", "metrics.json", *(f"{t}.tsv" for t in TABLES))


@st.cache_resource(show_spinner=False, max_entries=8)
def _run_results(root: str, run_id: str, stamp: tuple[int, ...]) -> RunResults:
    return RunResults(_registry(root), run_id)


def run_results(reg: Registry, run_id: str) -> RunResults:
    """The run's :class:`~emocore.runs.results.RunResults`, shared by every page and session and
    opened again only when one of its files changes (each file is read once, when first asked)."""
    folder = reg.run_dir(run_id)
    stamp = tuple(_mtime(folder / name) for name in _RESULT_FILES)
    return _run_results(str(reg.root), run_id, stamp)


@st.cache_data(show_spinner=False, max_entries=64)
def _nifti(path: str, mtime: int) -> np.ndarray:
    try:
        image = cast(nib.Nifti1Image, nib.load(path))  # load() is typed FileBasedImage
        return np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many kinds for a damaged file
        raise EmocoreError(f"{path} cannot be read as NIfTI ({exc}); re-run the study") from exc


def saliency_map(results: RunResults, design: str, name: str, emotion: str) -> np.ndarray | None:
    """Mean |attribution| of one model for one emotion; None when the run saved none (the file
    study.json records: see :meth:`~emocore.runs.results.RunResults.saliency_path`)."""
    path = results.saliency_path(design, name, emotion)
    return _nifti(str(path), _mtime(path)) if path is not None else None


def linear_pattern(results: RunResults, design: str, name: str, emotion: str) -> np.ndarray | None:
    """The linear decoder's Haufe activation pattern beside a CNN map; None when the run has none."""
    path = results.linear_pattern_path(design, name, emotion)
    return _nifti(str(path), _mtime(path)) if path is not None else None


@st.cache_data(show_spinner=False, max_entries=8)
def _new_people(
    folder: str, mtime: int, cohort: tuple[str, ...], entities: tuple[tuple[str, str], ...]
) -> list[str]:
    return assess.new_people(folder, cohort, dict(entities))


def new_people(folder: Path, cohort: list[str], cache: VolumeCache | None = None) -> list[str]:
    """People of a dataset folder outside ``cohort``; the headers are read once per change of
    the folders that hold ``sub-XX`` (a new person changes their modification time), not on
    every rerun."""
    changed = max(_mtime(folder), _mtime(folder / DERIVATIVE_DIR))
    entities = tuple(sorted(assess.chosen_entities(cache).items()))
    return _new_people(str(folder), changed, tuple(cohort), entities)


@st.cache_data(show_spinner=False, max_entries=4)
def _mni_underlay(shape: tuple[int, ...], affine: tuple[tuple[float, ...], ...]):
    return anatomy.mni_underlay(shape, np.asarray(affine))


def mni_underlay(shape: tuple[int, ...], affine: np.ndarray):
    """The MNI152 template over a grid's field of view (:func:`emocore.reporting.anatomy.mni_underlay`),
    resampled once per grid (shape and affine) and server, not on every rerun."""
    key = tuple(tuple(round(float(v), 4) for v in row) for row in np.asarray(affine))
    return _mni_underlay(tuple(int(n) for n in shape), key)


@st.cache_data(show_spinner=False, max_entries=8)
def _mean_epi(path: str, subject: str, mtime: int, file_mtime: int):
    cache = _cache(path, mtime)
    image = cache.mean_epi(subject)
    return None if image is None else anatomy.to_world(image, cache.affine)


def mean_epi_underlay(c: VolumeCache, subject: str):
    """The person's mean EPI on a RAS+ grid in mm (:meth:`VolumeCache.mean_epi`), read once per
    state of the manifest and of the file; None for a cache made before prepare stored it."""
    return _mean_epi(
        str(c.path),
        subject,
        _mtime(c.path / "manifest.json"),
        _mtime(c.path / mean_epi_file(subject)),
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _world_image(data: np.ndarray, affine: np.ndarray):
    return anatomy.to_world(data, affine)


def world_image(data: np.ndarray, affine: np.ndarray):
    """``data`` on a RAS+ grid in mm (:func:`emocore.reporting.anatomy.to_world`); an oblique grid is
    resampled once per array, not on every rerun."""
    return _world_image(np.asarray(data, dtype=np.float32), np.asarray(affine, dtype=np.float64))


# -- annotations -----------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _volume_labels(
    path: str, mtime: int, lag: float, recipe: str, observers: str | None
) -> pd.DataFrame:
    return labels.build_volume_labels(
        _annotations(path, mtime), lag_s=lag, recipe=recipe, observers=observers
    )


def volume_labels(s: Settings, *, lag: float, recipe: str, observers: str | None) -> pd.DataFrame:
    return _volume_labels(str(s.annotations), _mtime(s.annotations), lag, recipe, observers)


@st.cache_data(show_spinner=False, max_entries=8)
def _raw_counts(path: str, mtime: int, observers: str | None) -> pd.DataFrame:
    return labels.raw_category_counts(_annotations(path, mtime), observers)


def raw_category_counts(s: Settings, observers: str | None) -> pd.DataFrame:
    return _raw_counts(str(s.annotations), _mtime(s.annotations), observers)


@st.cache_data(show_spinner=False, max_entries=8)
def _cooccurrence(path: str, mtime: int, observers: str | None) -> pd.DataFrame:
    return labels.category_cooccurrence(_annotations(path, mtime), observers)


def category_cooccurrence(s: Settings, observers: str | None) -> pd.DataFrame:
    return _cooccurrence(str(s.annotations), _mtime(s.annotations), observers)


def label_count_grid(
    s: Settings, *, lags: tuple[float, ...] = (0, 2, 4, 6), observers: str | None = None
) -> pd.DataFrame:
    """Volumes per class (columns) for each recipe x lag (rows like 'poster, lag 4 s')."""
    rows = {
        f"{recipe}, lag {lag:g} s": labels.label_counts(
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
