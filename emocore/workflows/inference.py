"""Predictions of a stored model for one person, computed once and kept with the run.

The dashboard and ``emocore predict`` call :func:`subject_predictions`: it returns the stored
table when there is one and otherwise runs the model over the person's volumes (on the GPU when
there is one) and stores the result under ``<run>/inference/<design>/<model>/sub-XX.tsv``, with
``sub-XX.json`` beside it recording the cache content it was made from: the key of the person's
data and labels (:meth:`VolumeCache.key_for`) and their array's fingerprint
(:func:`emocore.data.cache.array_fingerprint`). A stored table is reused only while both are
unchanged (a rebuilt, relabelled or overwritten cache makes it compute again), and a damaged array
is a CacheError naming the file and the fix, never an old answer.

Inference runs on emocore's fast path (:class:`emocore.models.engine.InferenceEngine`): volumes stream
from the memory-mapped cache through read-ahead threads, batch norm is folded, and on CUDA bf16,
channels_last_3d and torch.compile with CUDA graphs apply. :func:`load_engine` prepares a stored
model once, so a caller predicting several people (the dashboard keeps engines cached) pays the
preparation and compilation once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emocore._io import atomic_write_json, atomic_write_text
from emocore.constants import CLASSES
from emocore.data.cache import VolumeCache
from emocore.data.dataset import VolumeSource, select
from emocore.errors import CacheError, ConfigError
from emocore.models.engine import FastOptions, InferenceEngine
from emocore.progress import Progress
from emocore.runs.results import VOLUME_SETS, RunResults, read_table, seen_in_training
from emocore.training.designs import prediction_table
from emocore.training.train import load_checkpoint

__all__ = [
    "load_engine",
    "prediction_source",
    "subject_predictions",
    "seen_in_training",
    "VOLUME_SETS",
]


def load_engine(
    results: RunResults,
    model: str,
    *,
    grid_shape: tuple[int, ...] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    options: FastOptions | None = None,
) -> tuple[InferenceEngine, dict]:
    """A stored model prepared for inference, and its checkpoint state (classes, trained_on)."""
    net, state = load_checkpoint(results.model_path(model), grid_shape=grid_shape)
    engine = InferenceEngine(net, device=device, options=options, batch_size=batch_size)
    return engine, state


def prediction_source(cache: VolumeCache, subject: str) -> dict[str, Any]:
    """What a stored prediction of ``subject`` records of the cache content it was made from:
    ``data_key``, the key of the person's data and the label table (the cache's whole key for a
    cache without source fingerprints), and ``array_fingerprint``. Checks the array on the way:
    a CacheError names a damaged one and the fix."""
    fingerprint = cache.check_array(subject)
    try:
        data_key = cache.key_for([subject])
    except CacheError:  # a cache laid out by create_cache: no per-person key
        data_key = cache.key
    return {"data_key": data_key, "array_fingerprint": fingerprint}


def _record_path(table: Path) -> Path:
    """sub-01.tsv -> sub-01.json, sub-01.all.tsv -> sub-01.all.json."""
    return table.with_suffix(".json")


def _recorded_source(table: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(_record_path(table).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("source") if isinstance(record, dict) else None


def subject_predictions(
    results: RunResults,
    model: str,
    cache: VolumeCache,
    subject: str,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    compute: bool = True,
    progress: Progress | None = None,
    engine: tuple[InferenceEngine, dict] | None = None,
    volumes: str = "labelled",
) -> pd.DataFrame | None:
    """Every labelled volume of ``subject`` predicted by ``model`` of the run, or with
    ``volumes="all"`` every volume, NONE included (its ``true`` is ``"NONE"``: a volume no
    emotion was labelled in, which has no correct answer; see
    :func:`emocore.stats.summaries.every_volume_summary`).

    The table has the prediction-table columns plus ``seen`` (the model was trained on this
    person) and ``seconds``, ``volumes_per_s`` and ``engine`` (what the fast path did) in
    ``attrs``. A stored table is returned only when the record beside it matches
    :func:`prediction_source` now (tables stored before the record existed are computed again);
    returns None when no such table is stored and ``compute`` is False. ``engine`` is the
    pair :func:`load_engine` returns, for callers that keep it between people; without it the
    model is loaded here (``device`` and ``batch_size`` apply only then).
    """
    path = results.inference_path(model, subject, volumes=volumes)
    if subject not in cache.subjects:
        raise ConfigError(
            f"subject '{subject}' is not in the cache at {cache.path}; it holds {', '.join(cache.subjects)}"
        )
    made_from = prediction_source(cache, subject)  # a damaged array stops here, named
    if path.exists() and _recorded_source(path) == made_from:
        return read_table(path)
    if not compute:
        return None
    if engine is None:
        engine = load_engine(
            results,
            model,
            grid_shape=cache.grid_shape,
            device=device,
            batch_size=batch_size,
        )
    runner, state = engine  # an engine on another grid refuses the volumes with the fix
    classes = list(state["extra"].get("classes", CLASSES[1:]))
    meta = select(cache, subjects=[subject], classes=classes if volumes == "labelled" else CLASSES)
    if progress is not None:
        progress(0.05, f"loading {len(meta)} volumes of sub-{subject}")
    source = VolumeSource(cache, meta, preload=False)  # one pass: stream, do not load twice
    t0 = time.perf_counter()

    def step(fraction: float, message: str) -> None:
        if progress is not None:
            progress(0.05 + 0.9 * fraction, message)

    probs = runner.predict_proba(source, progress=step)
    seconds = time.perf_counter() - t0
    seen = subject in state["extra"].get("trained_on", [])
    known = meta["label"].isin(classes).to_numpy()
    index = pd.Index(classes).get_indexer(meta["label"])  # -1 for NONE, when volumes == "all"
    table = prediction_table(
        meta.assign(y=np.where(known, index, 0)),
        probs,
        classes,
        seen=np.full(len(meta), seen),
        model=model,
    )
    table["true"] = meta["label"].to_numpy()  # NONE stays NONE, not classes[0]
    atomic_write_text(path, table.to_csv(sep="\t", index=False))
    atomic_write_json(_record_path(path), {"table": path.name, "source": made_from})
    table.attrs.update(
        seconds=seconds,
        volumes_per_s=len(meta) / seconds if seconds > 0 else None,
        engine=runner.describe(),
    )
    if progress is not None:
        progress(1.0, f"{len(meta)} volumes in {seconds:.1f} s")
    return table
