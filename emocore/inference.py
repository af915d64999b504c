"""Predictions of a stored model for one person, computed once and kept with the run.

The dashboard and ``emocore predict`` call :func:`subject_predictions`: it returns the stored
table when there is one and otherwise runs the model over the person's volumes (on the GPU when
there is one) and stores the result under ``<run>/inference/<design>/<model>/sub-XX.tsv``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from emocore._io import atomic_write_text
from emocore.constants import CLASSES
from emocore.data.cache import VolumeCache
from emocore.data.dataset import VolumeSource, select
from emocore.errors import ConfigError, RegistryError
from emocore.registry import Registry
from emocore.study import prediction_table
from emocore.train import load_checkpoint, predict_proba

__all__ = ["list_models", "model_path", "subject_predictions", "stored_predictions_path"]

Progress = Callable[[float, str], None]


def list_models(registry: Registry, run_id: str) -> list[str]:
    """Final models of a run as ``<design>/<name>`` (e.g. ``single-subject/sub-01``, ``loso/sub-03``)."""
    folder = registry.run_dir(run_id) / "models"
    return (
        sorted(f"{p.parent.name}/{p.stem}" for p in folder.glob("*/*.pt"))
        if folder.is_dir()
        else []
    )


def model_path(registry: Registry, run_id: str, model: str) -> Path:
    path = registry.run_dir(run_id) / "models" / f"{model}.pt"
    if not path.is_file():
        models = list_models(registry, run_id)
        raise RegistryError(
            f"run {run_id} has no model '{model}'; it has: {', '.join(models) or 'none'}"
        )
    return path


def stored_predictions_path(registry: Registry, run_id: str, model: str, subject: str) -> Path:
    return registry.run_dir(run_id) / "inference" / model / f"sub-{subject}.tsv"


def subject_predictions(
    registry: Registry,
    run_id: str,
    model: str,
    cache: VolumeCache,
    subject: str,
    *,
    device: str = "auto",
    batch_size: int = 64,
    compute: bool = True,
    progress: Progress | None = None,
) -> pd.DataFrame | None:
    """Every labelled volume of ``subject`` predicted by ``model`` of run ``run_id``.

    The table has the prediction-table columns plus ``seen`` (the model was trained on this
    person) and ``seconds``/``volumes_per_s`` in ``attrs``. Returns None when nothing is stored
    and ``compute`` is False.
    """
    path = stored_predictions_path(registry, run_id, model, subject)
    if path.exists():
        return pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"subject": str})
    if not compute:
        return None
    net, state = load_checkpoint(model_path(registry, run_id, model), grid_shape=cache.grid_shape)
    classes = list(state["extra"].get("classes", CLASSES[1:]))
    if subject not in cache.subjects:
        raise ConfigError(
            f"subject '{subject}' is not in the cache at {cache.path}; it holds {', '.join(cache.subjects)}"
        )
    meta = select(cache, subjects=[subject], classes=classes)
    if progress is not None:
        progress(0.05, f"loading {len(meta)} volumes of sub-{subject}")
    source = VolumeSource(cache, meta)
    t0 = time.perf_counter()
    probs = predict_proba(net, source, batch_size=batch_size, device=device)
    seconds = time.perf_counter() - t0
    seen = subject in state["extra"].get("trained_on", [])
    table = prediction_table(meta, probs, classes, seen=np.full(len(meta), seen), model=model)
    atomic_write_text(path, table.to_csv(sep="\t", index=False))
    table.attrs.update(seconds=seconds, volumes_per_s=len(meta) / seconds if seconds > 0 else None)
    if progress is not None:
        progress(1.0, f"{len(meta)} volumes in {seconds:.1f} s")
    return table
